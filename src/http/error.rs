//! Every refusal on the Entra-compatible endpoints, as a value with its wire
//! code, and the one place it becomes Entra's error body:
//! `{error, error_description: "AADSTSnnnn: …", error_codes, timestamp, trace_id,
//! correlation_id}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::context::RequestContext;

/// An OAuth/Entra error before it meets its request context.
#[derive(Debug, Clone)]
pub struct EntraError {
    pub status: StatusCode,
    /// The OAuth `error` value clients branch on.
    pub error: &'static str,
    /// The AADSTS number.
    pub code: u32,
    pub message: String,
}

impl EntraError {
    /// AADSTS90002: the tenant in the path does not exist.
    pub fn tenant_not_found(tenant: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            code: 90002,
            message: format!(
                "Tenant '{}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
                truncate(tenant, 100)
            ),
        }
    }

    /// A failure of wisp itself (database unreachable, …): the details go to the
    /// log, the caller learns only that it may retry.
    pub fn temporarily_unavailable() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "temporarily_unavailable",
            code: 90033,
            message: "A transient error has occurred. Please try again.".to_string(),
        }
    }

    /// Pairs the error with the request's ids, ready to send.
    pub fn with(self, context: &RequestContext) -> ErrorResponse {
        ErrorResponse { error: self, context: *context }
    }
}

/// An [`EntraError`] with the request's ids: what handlers return.
#[derive(Debug)]
pub struct ErrorResponse {
    error: EntraError,
    context: RequestContext,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    error_description: String,
    error_codes: [u32; 1],
    timestamp: &'a str,
    trace_id: String,
    correlation_id: String,
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let EntraError { status, error, code, message } = self.error;
        let now = time::OffsetDateTime::now_utc();
        let timestamp = now
            .format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z"))
            .unwrap_or_default();
        let body = Body {
            error,
            error_description: format!(
                "AADSTS{code}: {message} Trace ID: {} Correlation ID: {} Timestamp: {timestamp}",
                self.context.trace_id, self.context.correlation_id
            ),
            error_codes: [code],
            timestamp: &timestamp,
            trace_id: self.context.trace_id.to_string(),
            correlation_id: self.context.correlation_id.to_string(),
        };
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// At most `max` characters of caller-supplied text, for echoing in messages.
fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}
