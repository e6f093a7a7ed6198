-- The directory (SQLite). Keep in step with migrations/postgres/0002_directory.sql.

-- Optimistic concurrency for admin updates (ETags) and Graph-shaped attributes.
ALTER TABLE applications ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE applications ADD COLUMN app_roles TEXT NOT NULL DEFAULT '[]';          -- JSON array
ALTER TABLE applications ADD COLUMN requested_token_version INTEGER;               -- api.requestedAccessTokenVersion
ALTER TABLE applications ADD COLUMN description TEXT;

-- Identifier URIs, unique within a tenant; also how a scope names its resource.
CREATE TABLE identifier_uris (
    tenant_id      TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    uri            TEXT NOT NULL,
    application_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, uri)
);
CREATE INDEX identifier_uris_by_app ON identifier_uris (application_id);

-- What kind of principal a service principal is: an application's presence in a
-- tenant, a managed identity, or wisp's built-in admin API.
ALTER TABLE service_principals ADD COLUMN principal_type TEXT NOT NULL DEFAULT 'Application';
ALTER TABLE service_principals ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

CREATE TABLE federated_identity_credentials (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL,                  -- application id or managed identity id
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    audiences   TEXT NOT NULL,                  -- JSON array, exactly one element
    description TEXT,
    version     BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL,
    UNIQUE (owner_id, name),
    UNIQUE (owner_id, issuer, subject)
);

CREATE TABLE key_credentials (
    key_id           TEXT PRIMARY KEY,
    application_id   TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    display_name     TEXT,
    certificate      BLOB NOT NULL,             -- DER of the uploaded public certificate
    thumbprint_sha1  TEXT NOT NULL,             -- base64url, the x5t a client sends
    thumbprint_sha256 TEXT NOT NULL,            -- base64url, x5t#S256
    start_at         BIGINT NOT NULL,
    end_at           BIGINT NOT NULL
);
CREATE INDEX key_credentials_by_app ON key_credentials (application_id);

CREATE TABLE app_role_assignments (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    principal_id TEXT NOT NULL REFERENCES service_principals(id) ON DELETE CASCADE,
    resource_id  TEXT NOT NULL REFERENCES service_principals(id) ON DELETE CASCADE,
    app_role_id  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (principal_id, resource_id, app_role_id)
);
CREATE INDEX app_role_assignments_by_resource ON app_role_assignments (resource_id);

CREATE TABLE managed_identities (
    id           TEXT PRIMARY KEY,              -- resource id of the identity object
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('UserAssigned', 'SystemAssigned')),
    display_name TEXT NOT NULL,
    client_id    TEXT NOT NULL UNIQUE,
    principal_id TEXT NOT NULL UNIQUE REFERENCES service_principals(id),
    created_at   BIGINT NOT NULL
);
CREATE INDEX managed_identities_by_tenant ON managed_identities (tenant_id);

CREATE TABLE compute_resources (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    system_identity_id TEXT REFERENCES managed_identities(id),
    version            BIGINT NOT NULL DEFAULT 1,
    created_at         BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE resource_identities (
    resource_id TEXT NOT NULL REFERENCES compute_resources(id) ON DELETE CASCADE,
    identity_id TEXT NOT NULL REFERENCES managed_identities(id) ON DELETE CASCADE,
    PRIMARY KEY (resource_id, identity_id)
);

-- Tenant policy: may new client secrets be added?
ALTER TABLE tenants ADD COLUMN block_password_credentials INTEGER NOT NULL DEFAULT 0;

-- Every change made through the admin API.
CREATE TABLE directory_audits (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    at          BIGINT NOT NULL,
    seq         BIGINT NOT NULL,               -- orders events within one second
    actor_app_id TEXT NOT NULL,
    activity    TEXT NOT NULL,                 -- e.g. "Add application"
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    old_value   TEXT,                          -- JSON, secrets redacted
    new_value   TEXT,
    correlation_id TEXT NOT NULL
);
CREATE INDEX directory_audits_by_tenant_time ON directory_audits (tenant_id, at);
