//! The state every request handler shares.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::crypto::MasterKey;
use crate::directory::cache::DirectoryCache;
use crate::federation::IssuerKeys;
use crate::signin::SignInLog;
use crate::signing::KeyRing;
use crate::store::Store;

/// Everything a request may need, built once at start-up.
pub struct App {
    /// Scheme, host and port clients use, without a trailing slash.
    pub public_url: String,
    pub store: Store,
    /// The directory as the token path reads it: cached, invalidated on change.
    pub directory: DirectoryCache,
    pub master_key: Arc<MasterKey>,
    pub keys: KeyRing,
    pub metrics: PrometheusHandle,
    /// Seconds a JWKS response may be cached: shorter than the time a next key
    /// is published before it signs, so clients always see it in time.
    pub jwks_max_age: i64,
    /// Seconds an access token is valid.
    pub access_token_lifetime: i64,
    /// Most federated identity credentials one application or identity may have.
    pub max_fics_per_owner: usize,
    /// External issuers' keys, fetched under the SSRF policy and cached.
    pub issuers: IssuerKeys,
    /// The sign-in log writer.
    pub sign_ins: SignInLog,
}

pub type AppState = Arc<App>;
