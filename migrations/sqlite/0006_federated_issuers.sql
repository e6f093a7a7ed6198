-- Uploaded issuer keys (SQLite). Keep in step with migrations/postgres/0006_federated_issuers.sql.
-- A tenant can register an issuer's JWKS directly, used instead of discovery
-- for that issuer in that tenant (air-gapped clusters). Never fetched.
CREATE TABLE federated_issuers (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    issuer     TEXT NOT NULL,
    jwks       TEXT NOT NULL,                 -- {"keys": [...]} as uploaded
    version    BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, issuer)
);
