-- Objects created by `wisp apply` (postgres). Keep in step with the other backend's 0009.
-- `apply --prune` deletes only objects listed here, never ones created by hand.
-- A row whose object was deleted meanwhile is ignored and removed by the next apply.
CREATE TABLE applied_objects (
    object_id   TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    object_type TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX applied_objects_tenant ON applied_objects (tenant_id);
