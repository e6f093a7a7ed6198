//! Per-request context: the correlation id a client can quote (its own
//! `client-request-id` when it sent a GUID, else a new one) and a trace id, plus
//! the request metrics.

use std::time::Instant;

use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

/// Ids that tie a response, its log lines and (later) its audit record together.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext {
    pub correlation_id: Uuid,
    pub trace_id: Uuid,
    /// The client sent `client-request-id`; echo it back.
    pub echo_client_request_id: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<RequestContext>().copied().ok_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// Outermost middleware: assigns the ids and stamps them on the response.
pub async fn assign_ids(mut request: Request, next: Next) -> Response {
    let client_request_id = request
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::try_parse(v.trim()).ok());
    let context = RequestContext {
        // Ours are time-ordered, so the sign-in log's correlation index grows at its end.
        correlation_id: client_request_id.unwrap_or_else(Uuid::now_v7),
        trace_id: Uuid::new_v4(),
        echo_client_request_id: client_request_id.is_some(),
    };
    request.extensions_mut().insert(context);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert("x-ms-request-id", header_value(context.trace_id));
    if context.echo_client_request_id {
        headers.insert("client-request-id", header_value(context.correlation_id));
    }
    response
}

/// Route middleware: counts requests and their latency by route template (never
/// by raw path, which would let callers create unbounded label values).
pub async fn record_metrics(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let elapsed = start.elapsed();
    let status = response.status();
    metrics::counter!("wisp_http_requests_total", "route" => route.clone(), "method" => method.clone(),
        "status" => status.as_u16().to_string())
    .increment(1);
    metrics::histogram!("wisp_http_request_duration_seconds", "route" => route.clone()).record(elapsed.as_secs_f64());
    if status.is_server_error() {
        tracing::warn!(%method, %route, status = status.as_u16(), elapsed_ms = elapsed.as_millis() as u64, "request failed");
    } else {
        tracing::debug!(%method, %route, status = status.as_u16(), elapsed_us = elapsed.as_micros() as u64, "request");
    }
    response
}

fn header_value(id: Uuid) -> HeaderValue {
    HeaderValue::from_str(&id.to_string()).expect("a GUID is a valid header value")
}
