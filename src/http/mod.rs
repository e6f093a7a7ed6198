//! The only module that knows HTTP. [`router`] lists every route and layer in
//! one place; handlers translate requests into calls on plain Rust modules and
//! their results into Entra-shaped responses.

mod admin;
mod agent;
mod console;
mod context;
mod discovery;
pub mod error;
mod ops;
mod token;

use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;

pub use context::RequestContext;

use crate::app::AppState;

/// Largest request body any endpoint reads, except configuration files.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest configuration file `/v1.0/tenantConfiguration/{plan,apply}` read.
pub const MAX_CONFIGURATION_BYTES: usize = 2 * 1024 * 1024;

pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(discovery::openid_configuration))
        .route("/{tenant}/discovery/v2.0/keys", get(discovery::jwks))
        .route("/{tenant}/.well-known/openid-configuration", get(discovery::openid_configuration_v1))
        .route("/{tenant}/discovery/keys", get(discovery::jwks))
        .route("/{tenant}/oauth2/v2.0/token", post(token::token_v2))
        .route("/{tenant}/oauth2/token", post(token::token_v1))
        .route("/agent/v1/enroll", post(agent::enroll))
        .route("/agent/v1/token", post(agent::token))
        .merge(admin::routes())
        .merge(console::routes())
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        // Configuration files describe a whole tenant: a larger limit, for these routes only.
        .merge(admin::configuration_routes().layer(RequestBodyLimitLayer::new(MAX_CONFIGURATION_BYTES)))
        .route_layer(middleware::from_fn(context::record_metrics))
        .fallback(not_found)
        .layer(middleware::from_fn(context::assign_ids))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
        .with_state(app)
}

async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({"error": "not_found"})))
}
