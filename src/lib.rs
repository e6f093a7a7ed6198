//! wisp: a self-hosted, Entra-compatible security token service for secretless
//! workload identity. See ARCHITECTURE.md for the map.

pub mod agent; // `wisp agent`: enrollment and the local managed identity endpoints
pub mod app; // the state shared by request handlers
pub mod bootstrap; // first start: first tenant, admin application, bootstrap.json
pub mod cli; // the `wisp` command line
pub mod clock; // unix time, read only at the edges
pub mod config; // `wisp serve` settings: flags > WISP_* env > TOML > defaults
pub mod crypto; // master key, sealing, secret hashing, random
pub mod datadir; // the data folder and its files
pub mod declarative; // configuration files: `wisp apply` plans, `wisp export`
pub mod directory; // tenants, applications, … as plain types
pub mod federation; // trusting external tokens: assertions, issuer keys, FIC matching
pub mod http; // every route, layer and wire format (the only module that knows HTTP)
pub mod managed_identity; // agent enrollment and authentication, identity selection, MI tokens
pub mod server; // start-up, shutdown, background tasks
pub mod signin; // the sign-in log: a record per token request, group-committed
pub mod signing; // token-signing keys: generation, rotation, key ring, JWS
pub mod store; // SQLite/PostgreSQL (the only module with SQL)
pub mod telemetry; // logs and metrics
pub mod tls; // local CA and server certificate, or operator PEM files
pub mod token; // minting access tokens: client credentials, claims, verifying our own
