//! Access-token claim sets in Entra's shapes (v2 by default, v1 when the
//! resource asks for it).

use serde::{Deserialize, Serialize};

/// Claims of an app-only access token.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct AccessTokenClaims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// v2: the client's app id, and how it authenticated (`1` secret, `2` certificate or assertion).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub azp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub azpacr: Option<String>,
    /// v1: the same, under v1 names.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub appid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub appidacr: Option<String>,
    pub idtyp: String,
    /// Object id of the client's service principal in this tenant.
    pub oid: String,
    pub sub: String,
    pub tid: String,
    /// App roles granted to the client on the resource; absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub roles: Vec<String>,
    /// Token id (Entra's `uti`, a `jti`).
    pub uti: String,
    pub ver: String,
    /// Managed identity tokens: the identity's resource path.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub xms_mirid: Option<String>,
}

/// How the client proved itself: the `azpacr`/`appidacr` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    Secret,
    /// A certificate or a federated assertion.
    Assertion,
}

impl ClientAuthMethod {
    pub fn acr(self) -> &'static str {
        match self {
            ClientAuthMethod::Secret => "1",
            ClientAuthMethod::Assertion => "2",
        }
    }
}
