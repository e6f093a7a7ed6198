-- Node agents (SQLite). Keep in step with migrations/postgres/0004_agents.sql.

-- One-time, expiring tokens an administrator creates to enroll an agent for a resource.
CREATE TABLE join_tokens (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    resource_id TEXT NOT NULL REFERENCES compute_resources(id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,          -- keyed hash, base64; the token itself is never stored
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

-- An enrolled agent: the public key it proves itself with. Deleting the
-- resource deletes the agent, which revokes it at once.
CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    resource_id TEXT NOT NULL REFERENCES compute_resources(id) ON DELETE CASCADE,
    public_key  TEXT NOT NULL,                 -- JWK (EC P-256) as JSON
    created_at  BIGINT NOT NULL
);
CREATE INDEX agents_by_resource ON agents (resource_id);
