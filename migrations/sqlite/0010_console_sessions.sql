-- Web console sessions (sqlite). Keep in step with the other backend's 0010.
-- The cookie carries a random id; only its keyed hash is stored. A session is
-- the roles an administrator's credential held at sign-in, until it expires or
-- is signed out (the row is deleted).
CREATE TABLE console_sessions (
    id_hash    TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    app_id     TEXT NOT NULL,
    roles      TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    -- A value shown once on the page after a form (a new secret, join token or
    -- tenant credential), sealed under the master key; cleared when shown.
    flash      BLOB,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
