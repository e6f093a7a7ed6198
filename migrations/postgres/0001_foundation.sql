-- wisp's foundation schema (PostgreSQL). Keep in step with migrations/sqlite/0001_foundation.sql:
-- same tables, same columns; only BLOB/BYTEA differ. Portable types only (TEXT ids,
-- BIGINT unix seconds, INTEGER flags), because sqlx's Any driver decodes nothing else.

-- Process-wide facts about this database: the master-key check value, who bootstrapped.
CREATE TABLE wisp_meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id             TEXT PRIMARY KEY,           -- GUID, lowercase
    display_name   TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    -- Bumped by every change to the tenant's signing keys: the compare-and-swap that lets
    -- exactly one of several processes rotate, and the signal the others reload on.
    key_generation BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY,       -- = x5t, base64url SHA-1 of the certificate
    tenant_id          TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    algorithm          TEXT NOT NULL,          -- RS256
    state              TEXT NOT NULL CHECK (state IN ('next', 'current', 'previous')),
    certificate        BYTEA NOT NULL,         -- DER, published as x5c
    sealed_private_key BYTEA NOT NULL,         -- PKCS#8 sealed with the master key (AAD = kid)
    created_at         BIGINT NOT NULL,
    activated_at       BIGINT,                 -- when it became current
    retire_at          BIGINT                  -- when a previous key leaves the JWKS
);
CREATE INDEX signing_keys_by_tenant ON signing_keys (tenant_id);
-- At most one current and one next key per tenant.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (tenant_id, state)
    WHERE state IN ('next', 'current');

CREATE TABLE applications (
    id               TEXT PRIMARY KEY,         -- object id
    app_id           TEXT NOT NULL UNIQUE,     -- client id
    tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    display_name     TEXT NOT NULL,
    sign_in_audience TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX applications_by_tenant ON applications (tenant_id);

CREATE TABLE service_principals (
    id           TEXT PRIMARY KEY,             -- object id of the principal in its tenant
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    app_id       TEXT NOT NULL,
    display_name TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (tenant_id, app_id)
);

CREATE TABLE password_credentials (
    key_id         TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    display_name   TEXT,
    hint           TEXT NOT NULL,              -- first characters, as Graph shows them
    secret_hash    BYTEA NOT NULL,             -- keyed HMAC-SHA256, see crypto::MasterKey::hash_secret
    start_at       BIGINT NOT NULL,
    end_at         BIGINT NOT NULL
);
CREATE INDEX password_credentials_by_app ON password_credentials (application_id);
