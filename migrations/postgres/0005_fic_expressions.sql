-- Claims-matching expressions on federated identity credentials (PostgreSQL).
-- Keep in step with migrations/sqlite/0005_fic_expressions.sql.
-- A credential has a subject OR an expression, so subject becomes nullable.
ALTER TABLE federated_identity_credentials ALTER COLUMN subject DROP NOT NULL;
ALTER TABLE federated_identity_credentials ADD COLUMN expression TEXT;
ALTER TABLE federated_identity_credentials ADD COLUMN expression_language INTEGER;
ALTER TABLE federated_identity_credentials ADD COLUMN expression_compiled TEXT;
ALTER TABLE federated_identity_credentials ADD CONSTRAINT fic_subject_or_expression
    CHECK ((subject IS NULL) <> (expression IS NULL));
