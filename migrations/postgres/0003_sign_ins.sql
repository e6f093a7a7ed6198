-- The sign-in log (PostgreSQL). Keep in step with migrations/sqlite/0003_sign_ins.sql.
-- One row per token request to an existing tenant, granted or refused.
CREATE TABLE sign_ins (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL,
    at                   BIGINT NOT NULL,      -- unix seconds
    seq                  BIGINT NOT NULL,      -- unix microseconds, orders rows within a second
    correlation_id       TEXT NOT NULL,
    client_ip            TEXT,
    client_id            TEXT,
    service_principal_id TEXT,
    resource             TEXT,
    credential_type      TEXT,                 -- federatedIdentityCredential, certificate, clientSecret, managedIdentity
    credential_id        TEXT,                 -- the FIC id, certificate or secret key id that was used
    assertion_issuer     TEXT,
    assertion_subject    TEXT,
    assertion_jti        TEXT,
    outcome              TEXT NOT NULL CHECK (outcome IN ('granted', 'refused')),
    error_code           BIGINT,               -- AADSTS number of a refusal
    token_id             TEXT,                 -- uti of the issued token
    details              TEXT                  -- JSON: per-credential checks (administrators only)
);
CREATE INDEX sign_ins_by_tenant_time ON sign_ins (tenant_id, at);
CREATE INDEX sign_ins_by_correlation ON sign_ins (correlation_id);
