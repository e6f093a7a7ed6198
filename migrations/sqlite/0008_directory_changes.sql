-- Directory change counter (sqlite). Keep in step with the other backend's 0008.
-- Bumped in the same transaction as every directory change, so each process can
-- tell cheaply that its cached view of the directory is stale (see store/changes.rs).
CREATE TABLE directory_changes (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO directory_changes (id, generation) VALUES (1, 0);
