//! wisp's one integration-test binary. Every test starts the real server (in
//! this process on a loopback port, or as the real binary) and talks HTTPS to
//! it; store tests run on SQLite and on PostgreSQL. Add new areas as modules
//! here, never as new files directly under `tests/` (each is a separate binary
//! to link).

mod fake_issuer;
mod support;

mod admin; // the admin API: Graph-shaped CRUD, rules, auth, isolation, audit
mod cli; // the administration CLI as the real binary
mod compat; // the real Microsoft client libraries (Python and Node), installed by tests/compat/setup.sh
mod configuration; // configuration files: wisp apply / export, plans, all-or-nothing, prune
mod console; // the web console in headless Chromium (tests/console/setup.sh installs it)
mod discovery; // discovery documents, JWKS, Entra error bodies, ops endpoints
mod federation; // federated and certificate client assertions, issuers, SSRF policy
mod keys; // signing-key rotation across several processes sharing one database
mod managed_identity; // the agent, IMDS and App Service endpoints, MI as a credential, the seed scenario
mod seed; // the seed scenario over real processes: serve, agent, CLI, protected API
mod sign_ins; // the sign-in log: records, explanations, filters
mod startup; // the real binary: restart, bootstrap once, bad input and faults
mod store; // the store on both backends
mod token; // the token endpoint with client secrets: claims and refusals
