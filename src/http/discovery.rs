//! OIDC discovery in Entra's shape: `/{tenant}/v2.0/.well-known/openid-configuration`
//! and the tenant's JWKS at `/{tenant}/discovery/v2.0/keys`.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::context::RequestContext;
use super::error::{EntraError, ErrorResponse};
use crate::app::AppState;
use crate::directory::parse_tenant_id;
use crate::signing::TenantKeys;

/// Discovery never changes for a tenant; MSAL caches it for a day anyway.
const DISCOVERY_MAX_AGE: &str = "max-age=86400, private";

pub async fn openid_configuration(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    context: RequestContext,
) -> Result<Response, ErrorResponse> {
    let keys = tenant_keys(&app, &tenant, &context).await?;
    let base = format!("{}/{}", app.public_url, keys.tenant_id);
    let document = json!({
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": [keys.current.algorithm().as_str()],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": app.keys.issuer(&keys.tenant_id),
        "request_uri_parameter_supported": false,
        // MSAL indexes this key even for client credentials; wisp has no
        // interactive sign-in, so the endpoint answers with an error.
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "grant_types_supported": ["client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
        "claims_supported": ["aud", "iss", "iat", "nbf", "exp", "tid", "oid", "sub", "azp", "azpacr",
                             "appid", "appidacr", "roles", "idtyp", "ver", "uti"],
        "tenant_region_scope": "WW",
    });
    Ok(cached_json(document.to_string().into_bytes(), DISCOVERY_MAX_AGE))
}

/// The v1 document: issuer `{public_url}/{tenant}/` (v1 tokens carry it), the
/// v1 token endpoint, the same keys.
pub async fn openid_configuration_v1(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    context: RequestContext,
) -> Result<Response, ErrorResponse> {
    let keys = tenant_keys(&app, &tenant, &context).await?;
    let base = format!("{}/{}", app.public_url, keys.tenant_id);
    let document = json!({
        "token_endpoint": format!("{base}/oauth2/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/discovery/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": [keys.current.algorithm().as_str()],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "scopes_supported": ["openid"],
        "issuer": format!("{base}/"),
        "authorization_endpoint": format!("{base}/oauth2/authorize"),
        "grant_types_supported": ["client_credentials"],
        "tenant_region_scope": "WW",
    });
    Ok(cached_json(document.to_string().into_bytes(), DISCOVERY_MAX_AGE))
}

pub async fn jwks(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    context: RequestContext,
) -> Result<Response, ErrorResponse> {
    let keys = tenant_keys(&app, &tenant, &context).await?;
    let cache = format!("max-age={}, private", app.jwks_max_age);
    Ok(cached_json(keys.jwks.to_vec(), &cache))
}

async fn tenant_keys(
    app: &AppState,
    tenant: &str,
    context: &RequestContext,
) -> Result<std::sync::Arc<TenantKeys>, ErrorResponse> {
    let Some(tenant_id) = parse_tenant_id(tenant) else {
        return Err(EntraError::tenant_not_found(tenant).with(context));
    };
    match app.keys.tenant(&tenant_id).await {
        Ok(Some(keys)) => Ok(keys),
        Ok(None) => Err(EntraError::tenant_not_found(tenant).with(context)),
        Err(e) => {
            tracing::error!(error = %e, tenant = %tenant_id, correlation_id = %context.correlation_id,
                "cannot load tenant keys");
            Err(EntraError::temporarily_unavailable().with(context))
        }
    }
}

fn cached_json(body: Vec<u8>, cache_control: &str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    if let Ok(value) = HeaderValue::from_str(cache_control) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    // Public documents: browsers and tools on other origins may read them.
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}
