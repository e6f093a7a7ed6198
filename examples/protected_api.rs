//! A protected API that accepts wisp access tokens — the code to copy into
//! your own service. It trusts a list of tenant issuers and validates each
//! token with nothing but the issuer's discovery document and JWKS: signature
//! (RS256, the `kid` from the JWKS), `iss`, `aud`, `exp`, and a required app role.
//! It knows nothing else about wisp.
//!
//! Run (after `cargo build --examples`):
//!
//! ```sh
//! PROTECTED_API_ISSUERS=https://localhost:8443/<tenant>/v2.0 \
//! PROTECTED_API_AUDIENCE=<the API's appId> \
//! PROTECTED_API_ROLE=Orders.Read \
//! PROTECTED_API_CA_FILE=wisp-data/tls/ca.pem \
//! PROTECTED_API_LISTEN=127.0.0.1:9000 \
//!   target/debug/examples/protected_api
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:9000/orders
//! ```
//!
//! Answers: 200 with the orders; 401 (with `WWW-Authenticate`) for a missing,
//! malformed, expired, foreign or badly signed token; 403 when the token is
//! valid but lacks the role.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

struct Guard {
    /// Exact `iss` values this API trusts (one per tenant).
    issuers: Vec<String>,
    /// This API's `aud`: its appId (v2 tokens) or identifier URI (v1).
    audience: String,
    role: String,
    http: reqwest::Client,
    /// Each issuer's keys, refreshed hourly or on an unknown `kid` (at most once a minute).
    keys: Mutex<HashMap<String, (Arc<JwkSet>, Instant)>>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str| std::env::var(name).map_err(|_| format!("{name} is required"));
    let mut http = reqwest::Client::builder().timeout(Duration::from_secs(10));
    if let Ok(ca) = std::env::var("PROTECTED_API_CA_FILE") {
        http = http.add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca)?)?);
    }
    let guard = Arc::new(Guard {
        issuers: env("PROTECTED_API_ISSUERS")?.split(',').map(|s| s.trim().to_string()).collect(),
        audience: env("PROTECTED_API_AUDIENCE")?,
        role: env("PROTECTED_API_ROLE")?,
        http: http.build()?,
        keys: Mutex::default(),
    });
    let listen = std::env::var("PROTECTED_API_LISTEN").unwrap_or_else(|_| "127.0.0.1:9000".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("protected API listening on http://{}", listener.local_addr()?);
    let app = Router::new().route("/orders", get(orders)).with_state(guard);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn orders(State(guard): State<Arc<Guard>>, headers: HeaderMap) -> Response {
    let claims = match guard.check(&headers).await {
        Ok(claims) => claims,
        Err(response) => return response,
    };
    let roles: Vec<&str> = claims["roles"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if !roles.contains(&guard.role.as_str()) {
        return (StatusCode::FORBIDDEN, axum::Json(json!({"error": "insufficient_role", "required": guard.role})))
            .into_response();
    }
    let caller = claims["azp"].as_str().or(claims["appid"].as_str()).unwrap_or_default();
    axum::Json(json!({"orders": [{"id": 1, "item": "lamp"}], "caller": caller, "tenant": claims["tid"]}))
        .into_response()
}

impl Guard {
    /// The token's verified claims, or the 401 to send.
    async fn check(&self, headers: &HeaderMap) -> Result<Value, Response> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("a bearer token is required"))?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| unauthorized("malformed token"))?;
        let kid = header.kid.ok_or_else(|| unauthorized("the token has no kid"))?;
        // Read iss without trusting it, only to pick which trusted issuer's keys to use.
        let issuer = unverified_issuer(token).ok_or_else(|| unauthorized("malformed token"))?;
        if !self.issuers.contains(&issuer) {
            return Err(unauthorized("the token's issuer is not trusted"));
        }
        let keys = self.keys(&issuer, &kid).await.map_err(|_| unauthorized("the issuer's keys are unavailable"))?;
        let jwk = keys.find(&kid).ok_or_else(|| unauthorized("unknown signing key"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|_| unauthorized("unusable signing key"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&self.audience]);
        validation.leeway = 60;
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| unauthorized(&format!("invalid token: {e}")))
    }

    async fn keys(&self, issuer: &str, kid: &str) -> Result<Arc<JwkSet>, reqwest::Error> {
        if let Some((keys, fetched)) = self.keys.lock().unwrap().get(issuer).cloned() {
            let fresh = fetched.elapsed() < Duration::from_secs(3600);
            let may_refresh = fetched.elapsed() > Duration::from_secs(60);
            if fresh && (keys.find(kid).is_some() || !may_refresh) {
                return Ok(keys);
            }
        }
        let discovery: Value = self
            .http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let jwks_uri = discovery["jwks_uri"].as_str().unwrap_or_default().to_string();
        let keys: Arc<JwkSet> = Arc::new(self.http.get(jwks_uri).send().await?.error_for_status()?.json().await?);
        self.keys.lock().unwrap().insert(issuer.to_string(), (keys.clone(), Instant::now()));
        Ok(keys)
    }
}

fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?["iss"].as_str().map(str::to_string)
}

fn unauthorized(reason: &str) -> Response {
    let mut response =
        (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "invalid_token", "error_description": reason})))
            .into_response();
    let challenge = format!("Bearer error=\"invalid_token\", error_description=\"{}\"", reason.replace('"', "'"));
    if let Ok(value) = challenge.parse() {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}
