//! Minting wisp's access tokens: the client-credentials grant, from a parsed
//! request to a signed token or a precise refusal. No HTTP here — `http::token`
//! turns requests into [`TokenRequest`]s and [`Refusal`]s into Entra errors.
//!
//! Journey: [`issue`] → resolve tenant keys → find the client application and its
//! service principal in this tenant → authenticate it → resolve the resource and
//! its service principal → collect granted roles → build claims → sign.

pub mod claims;
pub mod request;
pub mod verify;

use uuid::Uuid;

use crate::app::App;
use crate::crypto::random_bytes;
use crate::directory::{Application, builtin};
pub use claims::{AccessTokenClaims, ClientAuthMethod};
pub use request::{JWT_BEARER, TokenRequest};

/// Lifetime of an access token, in Entra's range (60–90 minutes).
pub const ACCESS_TOKEN_LIFETIME_SECS: i64 = 3600;

/// Every reason a token request is refused. `http::token` maps each to its
/// AADSTS code, OAuth error and status; the message never reveals directory
/// configuration beyond what Entra reveals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A required parameter is missing.
    MissingParameter(&'static str),
    /// A parameter is present but unusable (repeated, empty, not a GUID, …).
    InvalidParameter(&'static str, String),
    UnsupportedGrantType(String),
    /// The scope lacks the `/.default` suffix client credentials require.
    ScopeWithoutDefault(String),
    /// Several scopes, or an empty one.
    InvalidScope(String),
    TenantNotFound(String),
    /// No such application, or not provisioned in this tenant.
    UnknownClient {
        client_id: String,
        tenant: String,
    },
    /// Neither a secret nor an assertion.
    NoClientCredential,
    /// Both a secret and an assertion, or a body secret and Basic auth that disagree.
    ConflictingClientCredentials,
    InvalidSecret {
        client_id: String,
    },
    /// An assertion whose type is not RFC 7523's JWT bearer.
    UnsupportedAssertionType(String),
    /// Assertions arrive with the token-endpoint issue; until then, refused.
    AssertionNotSupported,
    UnknownResource {
        resource: String,
        tenant: String,
    },
    /// wisp itself failed (database unreachable, …); the caller may retry.
    Unavailable(String),
}

/// A successfully issued token.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub expires_in: i64,
    pub claims: AccessTokenClaims,
}

/// Which endpoint shape the request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/{tenant}/oauth2/v2.0/token`, `scope={resource}/.default`.
    V2,
    /// `/{tenant}/oauth2/token`, `resource={resource}`.
    V1,
}

/// Handles a client-credentials request for `tenant` (the path segment).
/// `basic` carries `Authorization: Basic` credentials when sent.
pub async fn issue(
    app: &App,
    tenant: &str,
    endpoint: Endpoint,
    request: &TokenRequest,
    basic: Option<(String, String)>,
    now: i64,
) -> Result<Issued, Refusal> {
    let tenant_id = crate::directory::parse_tenant_id(tenant).ok_or_else(|| Refusal::TenantNotFound(tenant.into()))?;
    let keys = app
        .keys
        .tenant(&tenant_id)
        .await
        .map_err(|e| Refusal::Unavailable(e.to_string()))?
        .ok_or_else(|| Refusal::TenantNotFound(tenant.into()))?;

    match request.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some("") | None => return Err(Refusal::MissingParameter("grant_type")),
        Some(other) => return Err(Refusal::UnsupportedGrantType(other.to_string())),
    }
    let resource = requested_resource(endpoint, request)?;

    // The client: body client_id, or the Basic user name; both must agree.
    let (basic_id, basic_secret) = match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (None, None),
    };
    let client_id = match (request.client_id.as_deref(), basic_id.as_deref()) {
        (Some(body), Some(header)) if body != header => {
            return Err(Refusal::ConflictingClientCredentials);
        }
        (Some(id), _) | (None, Some(id)) => id.to_string(),
        (None, None) => return Err(Refusal::MissingParameter("client_id")),
    };
    let unknown_client = || Refusal::UnknownClient { client_id: client_id.clone(), tenant: tenant.to_string() };
    if Uuid::try_parse(&client_id).is_err() {
        return Err(unknown_client());
    }
    let unavailable = |e: crate::store::StoreError| Refusal::Unavailable(e.to_string());
    let client = app.store.application_by_app_id(&client_id).await.map_err(unavailable)?.ok_or_else(unknown_client)?;
    let client_sp = app
        .store
        .service_principal_by_app_id(&tenant_id, &client_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(unknown_client)?;

    let method = authenticate(app, &client, request, basic_secret.as_deref(), now).await?;

    // The resource and its presence (service principal) in this tenant.
    let unknown_resource = || Refusal::UnknownResource { resource: resource.clone(), tenant: tenant.to_string() };
    let (resource_app_id, role_values, version) = resolve_resource(app, &tenant_id, &resource).await?;
    let resource_sp = app
        .store
        .service_principal_by_app_id(&tenant_id, &resource_app_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(unknown_resource)?;
    let granted = app.store.assigned_role_ids(&client_sp.id, &resource_sp.id).await.map_err(unavailable)?;
    let mut roles: Vec<String> =
        granted.iter().filter_map(|id| role_values.iter().find(|(rid, _)| rid == id).map(|(_, v)| v.clone())).collect();
    roles.sort();
    roles.dedup();

    let v1 = version == 1;
    let exp = now + ACCESS_TOKEN_LIFETIME_SECS;
    let claims = AccessTokenClaims {
        aud: if v1 { resource.clone() } else { resource_app_id.clone() },
        iss: if v1 { format!("{}/{}/", app.public_url, tenant_id) } else { app.keys.issuer(&tenant_id) },
        iat: now,
        nbf: now,
        exp,
        azp: (!v1).then(|| client_id.clone()),
        azpacr: (!v1).then(|| method.acr().to_string()),
        appid: v1.then(|| client_id.clone()),
        appidacr: v1.then(|| method.acr().to_string()),
        idtyp: "app".into(),
        oid: client_sp.id.to_string(),
        sub: client_sp.id.to_string(),
        tid: tenant_id.to_string(),
        roles,
        uti: {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<16>())
        },
        ver: if v1 { "1.0".into() } else { "2.0".into() },
        xms_mirid: None,
    };
    let access_token = keys.current.sign_jwt(&claims, v1);
    Ok(Issued { access_token, expires_in: ACCESS_TOKEN_LIFETIME_SECS, claims })
}

/// The resource named by `scope` (v2, must end in `/.default`) or `resource` (v1).
fn requested_resource(endpoint: Endpoint, request: &TokenRequest) -> Result<String, Refusal> {
    match endpoint {
        Endpoint::V2 => {
            let scope = request.scope.as_deref().ok_or(Refusal::MissingParameter("scope"))?.trim();
            if scope.is_empty() || scope.split_whitespace().count() != 1 {
                return Err(Refusal::InvalidScope(scope.to_string()));
            }
            match scope.strip_suffix("/.default") {
                Some(resource) if !resource.is_empty() => Ok(resource.to_string()),
                _ => Err(Refusal::ScopeWithoutDefault(scope.to_string())),
            }
        }
        Endpoint::V1 => {
            let resource = request.resource.as_deref().ok_or(Refusal::MissingParameter("resource"))?.trim();
            if resource.is_empty() {
                return Err(Refusal::MissingParameter("resource"));
            }
            Ok(resource.to_string())
        }
    }
}

/// Checks the client's credential; returns how it authenticated.
async fn authenticate(
    app: &App,
    client: &Application,
    request: &TokenRequest,
    basic_secret: Option<&str>,
    now: i64,
) -> Result<ClientAuthMethod, Refusal> {
    let secret = match (request.client_secret.as_deref(), basic_secret) {
        (Some(_), Some(_)) => return Err(Refusal::ConflictingClientCredentials),
        (Some(s), None) | (None, Some(s)) => Some(s),
        (None, None) => None,
    };
    match (secret, request.client_assertion.as_deref()) {
        (Some(_), Some(_)) => Err(Refusal::ConflictingClientCredentials),
        (None, None) => Err(Refusal::NoClientCredential),
        (None, Some(_)) => {
            match request.client_assertion_type.as_deref() {
                Some(JWT_BEARER) => {}
                None => return Err(Refusal::MissingParameter("client_assertion_type")),
                Some(other) => return Err(Refusal::UnsupportedAssertionType(other.to_string())),
            }
            Err(Refusal::AssertionNotSupported)
        }
        (Some(secret), None) => {
            let stored = app
                .store
                .password_credentials(&client.id.to_string())
                .await
                .map_err(|e| Refusal::Unavailable(e.to_string()))?;
            // Check every credential (no early exit), so timing does not reveal
            // which one, if any, matched.
            let matched = stored.iter().fold(false, |found, cred| {
                let valid_now = cred.start_at <= now && now < cred.end_at;
                app.master_key.verify_secret(secret, &cred.secret_hash) && valid_now || found
            });
            if matched {
                Ok(ClientAuthMethod::Secret)
            } else {
                Err(Refusal::InvalidSecret { client_id: client.app_id.to_string() })
            }
        }
    }
}

/// The resource's app id, its role definitions `(id, value)` (enabled ones only)
/// and the token version it wants.
async fn resolve_resource(
    app: &App,
    tenant_id: &Uuid,
    resource: &str,
) -> Result<(String, Vec<(Uuid, String)>, i32), Refusal> {
    if let Some(builtin) = builtin::by_identifier(resource) {
        let roles = builtin
            .roles
            .iter()
            .filter_map(|r| Uuid::try_parse(r.id).ok().map(|id| (id, r.value.to_string())))
            .collect();
        return Ok((builtin.app_id.to_string(), roles, 2));
    }
    let unavailable = |e: crate::store::StoreError| Refusal::Unavailable(e.to_string());
    let by_uri = app.store.application_by_identifier_uri(tenant_id, resource).await.map_err(unavailable)?;
    let resource_app = match by_uri {
        Some(found) => Some(found),
        None if Uuid::try_parse(resource).is_ok() => {
            app.store.application_by_app_id(resource).await.map_err(unavailable)?
        }
        None => None,
    };
    let resource_app = resource_app
        .ok_or_else(|| Refusal::UnknownResource { resource: resource.to_string(), tenant: tenant_id.to_string() })?;
    let roles = resource_app.app_roles.iter().filter(|r| r.is_enabled).map(|r| (r.id, r.value.clone())).collect();
    let version = if resource_app.requested_token_version == Some(1) { 1 } else { 2 };
    Ok((resource_app.app_id.to_string(), roles, version))
}
