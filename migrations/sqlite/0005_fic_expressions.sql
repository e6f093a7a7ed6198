-- Claims-matching expressions on federated identity credentials (SQLite). Keep
-- in step with migrations/postgres/0005_fic_expressions.sql.
-- A credential has a subject OR an expression, so subject becomes nullable.
-- SQLite cannot drop NOT NULL in place: rebuild the table.
CREATE TABLE federated_identity_credentials_new (
    id                  TEXT PRIMARY KEY,
    owner_id            TEXT NOT NULL,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    issuer              TEXT NOT NULL,
    subject             TEXT,                 -- NULL when an expression decides
    audiences           TEXT NOT NULL,
    description         TEXT,
    version             BIGINT NOT NULL DEFAULT 1,
    created_at          BIGINT NOT NULL,
    expression          TEXT,                 -- claimsMatchingExpression.value as written
    expression_language INTEGER,              -- claimsMatchingExpression.languageVersion
    expression_compiled TEXT,                 -- the checked syntax tree, JSON
    UNIQUE (owner_id, name),
    UNIQUE (owner_id, issuer, subject),
    CHECK ((subject IS NULL) <> (expression IS NULL))
);
INSERT INTO federated_identity_credentials_new
    (id, owner_id, tenant_id, name, issuer, subject, audiences, description, version, created_at)
    SELECT id, owner_id, tenant_id, name, issuer, subject, audiences, description, version, created_at
    FROM federated_identity_credentials;
DROP TABLE federated_identity_credentials;
ALTER TABLE federated_identity_credentials_new RENAME TO federated_identity_credentials;
