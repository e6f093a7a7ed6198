//! `POST /{tenant}/oauth2/v2.0/token` and the v1 `POST /{tenant}/oauth2/token`:
//! form in, [`token::issue`] called, Entra-shaped JSON out. Every
//! [`Refusal`] becomes its AADSTS error here, in one `match`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::context::RequestContext;
use super::error::{EntraError, ErrorResponse};
use crate::app::AppState;
use crate::signin::SignInRecord;
use crate::token::request::TOKEN_EXCHANGE;
use crate::token::{self, Endpoint, Refusal, TokenRequest};

pub async fn token_v2(
    state: State<AppState>,
    tenant: Path<String>,
    peer: ConnectInfo<std::net::SocketAddr>,
    context: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ErrorResponse> {
    handle(state, tenant, peer, context, headers, body, Endpoint::V2).await
}

pub async fn token_v1(
    state: State<AppState>,
    tenant: Path<String>,
    peer: ConnectInfo<std::net::SocketAddr>,
    context: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ErrorResponse> {
    handle(state, tenant, peer, context, headers, body, Endpoint::V1).await
}

async fn handle(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    context: RequestContext,
    headers: HeaderMap,
    body: Bytes,
    endpoint: Endpoint,
) -> Result<Response, ErrorResponse> {
    let mut record = SignInRecord {
        correlation_id: context.correlation_id,
        client_ip: Some(peer.ip().to_string()),
        ..SignInRecord::default()
    };
    let result = exchange(&app, &tenant, &headers, &body, endpoint, &mut record).await;
    match result {
        Ok((issued, body)) => {
            // No token leaves without its sign-in record queued (see `signin`).
            if let Err(e) = app.sign_ins.record_grant(record, &issued.claims.uti).await {
                tracing::error!(error = %e, correlation_id = %context.correlation_id, "sign-in log unavailable; token withheld");
                metrics::counter!("wisp_token_requests_total", "outcome" => "failed").increment(1);
                return Err(EntraError::temporarily_unavailable().with(&context));
            }
            metrics::counter!("wisp_token_requests_total", "outcome" => "granted").increment(1);
            let mut response = (StatusCode::OK, Json(body)).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            Ok(response)
        }
        Err(refusal) => {
            metrics::counter!("wisp_token_requests_total", "outcome" => "refused").increment(1);
            if let Refusal::Unavailable(detail) = &refusal {
                tracing::error!(error = %detail, correlation_id = %context.correlation_id, "token request failed");
            }
            let rfc8693 = TokenRequest::parse(&body).ok().and_then(|r| r.grant_type).as_deref() == Some(TOKEN_EXCHANGE);
            let mut error = entra_error(refusal.clone());
            if rfc8693 {
                error.error = rfc8693_error(&refusal, error.error);
            }
            // Requests to tenants that do not exist have no directory to log to.
            if !record.tenant_id.is_empty() {
                app.sign_ins.record_refusal(record, error.code).await;
            }
            Err(error.with(&context))
        }
    }
}

/// Parses the request and issues the token; returns it with the response body.
async fn exchange(
    app: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    body: &Bytes,
    endpoint: Endpoint,
    record: &mut SignInRecord,
) -> Result<(token::Issued, serde_json::Value), Refusal> {
    let is_form = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    if !is_form {
        return Err(Refusal::MissingParameter("grant_type"));
    }
    let request = TokenRequest::parse(body)?;
    let basic = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(token::request::parse_basic);
    let issued = token::issue(app, tenant, endpoint, &request, basic, crate::clock::now(), record).await?;
    if request.grant_type.as_deref() == Some(TOKEN_EXCHANGE) {
        let body = json!({
            "access_token": issued.access_token,
            "issued_token_type": token::request::ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
        });
        return Ok((issued, body));
    }
    let body = match endpoint {
        Endpoint::V2 => json!({
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "ext_expires_in": issued.expires_in,
            "access_token": issued.access_token,
        }),
        // v1 answers with strings, as Entra's v1 endpoint does.
        Endpoint::V1 => json!({
            "token_type": "Bearer",
            "expires_in": issued.expires_in.to_string(),
            "ext_expires_in": issued.expires_in.to_string(),
            "expires_on": issued.claims.exp.to_string(),
            "not_before": issued.claims.nbf.to_string(),
            "resource": request.resource.as_deref().unwrap_or_default().trim(),
            "access_token": issued.access_token,
        }),
    };
    Ok((issued, body))
}

/// RFC 8693's error codes for a token-exchange request (its clients read
/// `error`, not AADSTS numbers): a bad subject token is `invalid_grant`, an
/// unknown target `invalid_target`.
fn rfc8693_error(refusal: &Refusal, entra: &'static str) -> &'static str {
    match refusal {
        Refusal::MalformedAssertion
        | Refusal::AssertionSignature(_)
        | Refusal::AssertionTimeRange { .. }
        | Refusal::IssuerUnavailable { .. }
        | Refusal::NoFederatedCredentials { .. }
        | Refusal::NoMatchingIssuer { .. }
        | Refusal::NoMatchingAudience { .. }
        | Refusal::NoMatchingSubject { .. }
        | Refusal::SubjectCaseMismatch { .. }
        | Refusal::SystemAssignedIdentityAsCredential => "invalid_grant",
        Refusal::UnknownResource { .. } | Refusal::InvalidScope(_) | Refusal::ScopeWithoutDefault(_) => {
            "invalid_target"
        }
        _ => entra,
    }
}

/// The Entra error for each refusal.
pub fn entra_error(refusal: Refusal) -> EntraError {
    use StatusCode as S;
    let (status, error, code, message) = match refusal {
        Refusal::MissingParameter(name) => (
            S::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        ),
        Refusal::InvalidParameter(name, why) => (
            S::BAD_REQUEST,
            "invalid_request",
            90100,
            format!("The parameter '{name}' is empty or not valid. {why}"),
        ),
        Refusal::UnsupportedGrantType(grant) => (
            S::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{}'.", short(&grant)),
        ),
        Refusal::ScopeWithoutDefault(scope) => (
            S::BAD_REQUEST,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {} is not valid. Client credential flows must have a scope value \
                 with /.default suffixed to the resource identifier (application ID URI).",
                short(&scope)
            ),
        ),
        Refusal::InvalidScope(scope) => (
            S::BAD_REQUEST,
            "invalid_scope",
            70011,
            format!(
                "The provided value for the input parameter 'scope' isn't valid. The scope '{}' must name exactly one resource.",
                short(&scope)
            ),
        ),
        Refusal::TenantNotFound(tenant) => return EntraError::tenant_not_found(&tenant),
        Refusal::UnknownClient { client_id, tenant } => (
            S::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{}' was not found in the directory '{}'. This can happen if the \
                 application has not been installed by the administrator of the tenant. You may have sent your \
                 authentication request to the wrong tenant.",
                short(&client_id),
                short(&tenant)
            ),
        ),
        Refusal::NoClientCredential => (
            S::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".into(),
        ),
        Refusal::ConflictingClientCredentials => (
            S::BAD_REQUEST,
            "invalid_request",
            90100,
            "Present exactly one client credential: a client_secret (in the body or with HTTP Basic) or a client_assertion."
                .into(),
        ),
        Refusal::InvalidSecret { client_id } => (
            S::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret \
                 value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        ),
        Refusal::UnsupportedAssertionType(kind) => (
            S::BAD_REQUEST,
            "invalid_request",
            90100,
            format!(
                "The parameter 'client_assertion_type' is empty or not valid: '{}' is not supported; use \
                 urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
                short(&kind)
            ),
        ),
        Refusal::MalformedAssertion => {
            (S::BAD_REQUEST, "invalid_request", 50027, "JWT token is invalid or malformed.".into())
        }
        Refusal::AssertionSignature(reason) => (
            S::UNAUTHORIZED,
            "invalid_client",
            700027,
            format!("Client assertion failed signature validation: {reason}."),
        ),
        Refusal::AssertionTimeRange { now, not_before, expires } => (
            S::UNAUTHORIZED,
            "invalid_client",
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, \
                 expiry time of assertion {}.",
                instant(Some(now)),
                instant(Some(not_before.unwrap_or(0))),
                expires.map(|e| instant(Some(e))).unwrap_or_else(|| "(none: exp is required)".into()),
            ),
        ),
        Refusal::IssuerUnavailable { issuer, reason } => (
            S::UNAUTHORIZED,
            "invalid_client",
            50166,
            format!("Request to External OIDC endpoint failed for issuer '{}': {reason}", short(&issuer)),
        ),
        Refusal::NoFederatedCredentials { client_id } => (
            S::UNAUTHORIZED,
            "invalid_client",
            7000226,
            format!("No federated identity credential policy found on application ({client_id})."),
        ),
        Refusal::NoMatchingIssuer { issuer } => (
            S::UNAUTHORIZED,
            "invalid_client",
            700211,
            format!(
                "No matching federated identity record found for presented assertion issuer '{}'. Please check your \
                 federated identity credential Subject, Audience and Issuer against the presented assertion.",
                short(&issuer)
            ),
        ),
        Refusal::NoMatchingAudience { audience } => (
            S::UNAUTHORIZED,
            "invalid_client",
            700212,
            format!(
                "No matching federated identity record found for presented assertion audience '{}'. Please check your \
                 federated identity credential Subject, Audience and Issuer against the presented assertion.",
                short(&audience)
            ),
        ),
        Refusal::NoMatchingSubject { subject } => (
            S::UNAUTHORIZED,
            "invalid_client",
            700213,
            format!(
                "No matching federated identity record found for presented assertion subject '{}'. Check your federated \
                 identity credential Subject, Audience and Issuer against the presented assertion.",
                short(&subject)
            ),
        ),
        Refusal::SubjectCaseMismatch { subject } => (
            S::UNAUTHORIZED,
            "invalid_client",
            7002138,
            format!(
                "No matching federated identity record found for presented assertion subject '{}'. A federated identity \
                 credential's subject differs from it only by upper/lower case; matching is case-sensitive.",
                short(&subject)
            ),
        ),
        Refusal::CertificateNotRegistered { client_id } => (
            S::UNAUTHORIZED,
            "invalid_client",
            700027,
            format!(
                "Client assertion failed signature validation: the certificate it names (x5t or x5t#S256) is not \
                 registered on application '{client_id}', or is not valid now."
            ),
        ),
        Refusal::CertificateAudience { audience } => (
            S::UNAUTHORIZED,
            "invalid_client",
            700038,
            format!("The client assertion's audience '{}' is not this tenant's token endpoint.", short(&audience)),
        ),
        Refusal::SystemAssignedIdentityAsCredential => (
            S::UNAUTHORIZED,
            "invalid_client",
            700236,
            "Only user-assigned managed identities can be used as federated identity credentials; the presented token \
             belongs to a system-assigned identity."
                .into(),
        ),
        Refusal::UnknownResource { resource, tenant } => (
            S::BAD_REQUEST,
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {} was not found in the tenant named {}. This can happen if the \
                 application has not been installed by the administrator of the tenant.",
                short(&resource),
                short(&tenant)
            ),
        ),
        Refusal::Unavailable(_) => return EntraError::temporarily_unavailable(),
    };
    EntraError { status, error, code, message }
}

/// Caller text echoed in a message, bounded.
fn short(text: &str) -> String {
    crate::directory::validation::shorten(text)
}

/// Unix seconds as Entra writes instants in messages.
fn instant(unix: Option<i64>) -> String {
    unix.and_then(|u| time::OffsetDateTime::from_unix_timestamp(u).ok())
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}
