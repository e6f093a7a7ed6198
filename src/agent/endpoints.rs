//! The managed identity endpoints an agent serves to local workloads, in the
//! shapes Azure SDKs expect: IMDS (`/metadata/identity/oauth2/token`, with
//! `Metadata: true`) and App Service (`/msi/token`, with `X-IDENTITY-HEADER`).
//! Unknown identities and resources are answered with 400 — never 404/410/429/5xx,
//! which clients retry for tens of seconds. Tokens are cached per (identity,
//! resource) until five minutes before expiry, and identical concurrent
//! requests share one server call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::state::State as AgentState;

/// Refresh a cached token when less than this is left.
const REFRESH_BEFORE_SECS: i64 = 300;

/// Which token: identity selector and resource.
type CacheKey = (Option<String>, Option<String>, Option<String>, String);

/// A token from the server, as it answered.
#[derive(Clone)]
struct Cached {
    body: Value,
    expires_on: i64,
}

pub struct Agent {
    state: AgentState,
    http: reqwest::Client,
    cache: Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

impl Agent {
    pub fn new(state: AgentState, http: reqwest::Client) -> Self {
        Self { state, http, cache: Mutex::default() }
    }

    /// A token for `key`: from the cache, or from the server (one call for all
    /// identical requests in flight).
    async fn token(&self, key: CacheKey) -> Result<Cached, Failure> {
        let slot = self.cache.lock().expect("cache lock").entry(key.clone()).or_default().clone();
        let mut entry = slot.lock().await;
        let now = crate::clock::now();
        if let Some(cached) = entry.as_ref()
            && cached.expires_on - now > REFRESH_BEFORE_SECS
        {
            metrics::counter!("wisp_cache_requests_total", "cache" => "agent_tokens", "result" => "hit").increment(1);
            return Ok(cached.clone());
        }
        metrics::counter!("wisp_cache_requests_total", "cache" => "agent_tokens", "result" => "miss").increment(1);
        let (client_id, object_id, msi_res_id, resource) = key;
        let response = self
            .http
            .post(format!("{}/agent/v1/token", self.state.server))
            .json(&json!({
                "assertion": self.state.assertion(now),
                "resource": resource,
                "clientId": client_id,
                "objectId": object_id,
                "msiResId": msi_res_id,
            }))
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot reach the wisp server");
                Failure::unavailable()
            })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        if status.is_success() {
            let cached = Cached { expires_on: body["expires_on"].as_i64().unwrap_or(now), body };
            *entry = Some(cached.clone());
            return Ok(cached);
        }
        let message = body["error_description"].as_str().unwrap_or("The request was refused.").to_string();
        if status.is_client_error() {
            // Unknown identity, unknown resource, or a revoked agent: all final.
            let error = if body["error"] == "invalid_resource" { "invalid_resource" } else { "invalid_request" };
            Err(Failure { status: StatusCode::BAD_REQUEST, error, message })
        } else {
            Err(Failure::unavailable())
        }
    }
}

/// An answer that is not a token.
struct Failure {
    status: StatusCode,
    error: &'static str,
    message: String,
}

impl Failure {
    fn bad_request(message: &str) -> Self {
        Self { status: StatusCode::BAD_REQUEST, error: "invalid_request", message: message.to_string() }
    }

    fn unavailable() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "temporarily_unavailable",
            message: "The identity service is unavailable. Retry later.".into(),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        // Both shapes: IMDS reads error/error_description, App Service clients statusCode/message.
        let body = json!({
            "error": self.error,
            "error_description": self.message,
            "statusCode": self.status.as_u16(),
            "message": self.message,
        });
        (self.status, axum::Json(body)).into_response()
    }
}

pub fn router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route("/metadata/identity/oauth2/token", get(imds))
        .route("/metadata/identity/oauth2/token/", get(imds))
        .route("/msi/token", get(app_service))
        .route("/msi/token/", get(app_service))
        .with_state(agent)
}

/// The IMDS shape: every number a string, `expires_in` and `expires_on`.
async fn imds(
    State(agent): State<Arc<Agent>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if headers.contains_key("x-forwarded-for") {
        return Failure::bad_request("Requests through a proxy are not accepted.").into_response();
    }
    let metadata =
        headers.get("metadata").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !metadata {
        return Failure::bad_request("Required metadata header not specified").into_response();
    }
    if !query.contains_key("api-version") {
        return Failure::bad_request("Required query variable 'api-version' is missing").into_response();
    }
    let key = match selection(&query, "client_id", "object_id", "msi_res_id") {
        Ok(key) => key,
        Err(failure) => return failure.into_response(),
    };
    match agent.token(key).await {
        Ok(cached) => {
            let now = crate::clock::now();
            let expires_in = (cached.expires_on - now).max(0).to_string();
            axum::Json(json!({
                "access_token": cached.body["access_token"],
                "client_id": cached.body["client_id"],
                "expires_in": expires_in,
                "expires_on": cached.expires_on.to_string(),
                "ext_expires_in": expires_in,
                "not_before": cached.body["not_before"].as_i64().unwrap_or(now).to_string(),
                "resource": cached.body["resource"],
                "token_type": "Bearer",
            }))
            .into_response()
        }
        Err(failure) => failure.into_response(),
    }
}

/// The App Service shape (`api-version=2019-08-01`): `expires_on` in epoch seconds.
async fn app_service(
    State(agent): State<Arc<Agent>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let presented = headers.get("x-identity-header").map(|v| v.as_bytes()).unwrap_or_default();
    if !bool::from(presented.ct_eq(agent.state.identity_header.as_bytes())) {
        let failure = Failure {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_request",
            message: "The X-IDENTITY-HEADER is missing or wrong.".into(),
        };
        return failure.into_response();
    }
    match query.get("api-version").map(String::as_str) {
        Some("2019-08-01") => {}
        _ => return Failure::bad_request("api-version must be 2019-08-01").into_response(),
    }
    let object_id = if query.contains_key("principal_id") { "principal_id" } else { "object_id" };
    let key = match selection(&query, "client_id", object_id, "mi_res_id") {
        Ok(key) => key,
        Err(failure) => return failure.into_response(),
    };
    match agent.token(key).await {
        Ok(cached) => axum::Json(json!({
            "access_token": cached.body["access_token"],
            "expires_on": cached.expires_on.to_string(),
            "not_before": cached.body["not_before"].as_i64().unwrap_or_default().to_string(),
            "resource": cached.body["resource"],
            "token_type": "Bearer",
            "client_id": cached.body["client_id"],
        }))
        .into_response(),
        Err(failure) => failure.into_response(),
    }
}

/// The resource and at most one identity selector from the query.
fn selection(
    query: &HashMap<String, String>,
    client: &str,
    object: &str,
    resource_id: &str,
) -> Result<CacheKey, Failure> {
    let resource = query
        .get("resource")
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Failure::bad_request("Required query variable 'resource' is missing"))?;
    let pick = |name: &str| query.get(name).filter(|v| !v.is_empty()).cloned();
    let (client_id, object_id, msi_res_id) = (pick(client), pick(object), pick(resource_id));
    if [&client_id, &object_id, &msi_res_id].iter().filter(|v| v.is_some()).count() > 1 {
        return Err(Failure::bad_request("Only one of client_id, object_id or msi_res_id may be specified."));
    }
    Ok((client_id, object_id, msi_res_id, resource))
}
