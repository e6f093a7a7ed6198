-- Per-tenant token signing algorithm (sqlite). Keep in step with the other backend's 0007.
-- RS256 stays the default (Entra's, verified by every client); ES256 and EdDSA are
-- opt-in per tenant. Key maintenance replaces keys of any other algorithm.
ALTER TABLE tenants ADD COLUMN token_signing_algorithm TEXT NOT NULL DEFAULT 'RS256';
