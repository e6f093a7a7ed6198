//! The web console: server-rendered pages under `/console` for the same
//! administrators, on the same rules, as the admin API. Every action calls the
//! admin API's own handler with the signed-in administrator as its `Caller`, so
//! permissions, validation, messages and audit records are the API's.
//!
//! Sessions: signing in is a client-credentials token request for the admin
//! API (recorded in the sign-in log like any other); the session keeps the
//! roles that token carried, for as long as it would be valid. The cookie
//! (`__Host-wisp-console`: `Secure`, `HttpOnly`, `SameSite=Strict`) holds a
//! random id whose keyed hash is the stored key. Every form carries the
//! session's CSRF token. Forms that create something shown only once (a client
//! secret, a join token, a tenant's credential) post, redirect and get: the
//! value waits sealed in the session for the next page, which clears it, so a
//! reload neither repeats the action nor shows the value again. Pages work
//! without JavaScript; `console.js` only adds the live subject preview and
//! copy buttons.

mod applications;
mod credentials;
mod forms;
mod identities;
mod principals;
mod sign_ins;
mod signin;
mod tenants;

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::admin::{AdminResult, Caller, Permission};
use super::context::RequestContext;
use crate::app::AppState;
use crate::store::ConsoleSession;

const COOKIE: &str = "__Host-wisp-console";
const STYLES: &str = include_str!("../../../static/console/console.css");
const SCRIPT: &str = include_str!("../../../static/console/console.js");

pub fn routes() -> Router<AppState> {
    use {applications::*, credentials::*, identities::*, principals::*, sign_ins::*, signin::*, tenants::*};
    Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .route("/console/static/console.css", get(|| async { asset("text/css; charset=utf-8", STYLES) }))
        .route("/console/static/console.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/console/signin", get(signin_form).post(signin))
        .route("/console/signout", post(signout))
        .route("/console/tenants", get(tenants).post(create_tenant))
        .route("/console/applications", get(applications).post(create_application))
        .route("/console/applications/{id}", get(application).post(update_application))
        .route("/console/applications/{id}/delete", post(delete_application))
        .route("/console/applications/{id}/grants", post(grant_role))
        .route("/console/applications/{id}/credentials", get(credentials))
        .route("/console/applications/{id}/credentials/federated/new", get(new_federated_credential))
        .route("/console/applications/{id}/credentials/federated", post(create_federated_credential))
        .route("/console/applications/{id}/credentials/federated/{fic}/delete", post(delete_federated_credential))
        .route("/console/applications/{id}/credentials/certificates", post(add_certificate))
        .route("/console/applications/{id}/credentials/certificates/{key}/delete", post(remove_certificate))
        .route("/console/applications/{id}/credentials/secrets", post(add_secret))
        .route("/console/applications/{id}/credentials/secrets/{key}/delete", post(remove_secret))
        .route("/console/identities", get(identities).post(create_identity))
        .route("/console/identities/{id}", get(identity))
        .route("/console/identities/{id}/delete", post(delete_identity))
        .route("/console/identities/{id}/credentials/federated/new", get(new_identity_credential))
        .route("/console/identities/{id}/credentials/federated", post(create_identity_credential))
        .route("/console/identities/{id}/credentials/federated/{fic}/delete", post(delete_identity_credential))
        .route("/console/resources", get(resources).post(create_resource))
        .route("/console/resources/{id}", get(resource).post(update_resource))
        .route("/console/resources/{id}/join-token", post(create_join_token))
        .route("/console/enterprise-applications", get(enterprise_applications).post(provision))
        .route("/console/enterprise-applications/{id}/delete", post(remove_principal))
        .route("/console/sign-ins", get(sign_ins))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}

/// The signed-in administrator: an admin API caller, plus the CSRF token.
pub struct Console {
    pub caller: Caller,
    pub csrf: String,
    id_hash: String,
}

impl Console {
    /// What every page's frame shows.
    pub fn chrome(&self, section: &'static str) -> Chrome {
        Chrome {
            section,
            tenant_id: self.caller.tenant_id.to_string(),
            app_id: self.caller.app_id.clone(),
            csrf: self.csrf.clone(),
            can_write_apps: self.caller.can(Permission::WriteApplications),
            can_write_directory: self.caller.can(Permission::WriteDirectory),
            can_read_directory: self.caller.can(Permission::ReadDirectory),
        }
    }

    /// Keeps `value` (sealed under the master key) for the next page only.
    pub async fn flash(&self, app: &AppState, value: &Value) -> Result<(), crate::store::StoreError> {
        let sealed = app.master_key.seal(self.flash_context().as_bytes(), value.to_string().as_bytes());
        app.store.set_console_flash(&self.id_hash, &sealed).await
    }

    /// The value the previous form left, once.
    pub async fn take_flash(&self, app: &AppState) -> Option<Value> {
        let sealed = match app.store.take_console_flash(&self.id_hash).await {
            Ok(sealed) => sealed?,
            Err(e) => {
                tracing::error!(error = %e, "cannot read a console flash value");
                return None;
            }
        };
        let plain = app.master_key.open(self.flash_context().as_bytes(), &sealed).ok()?;
        serde_json::from_slice(&plain).ok()
    }

    fn flash_context(&self) -> String {
        format!("console-flash:{}", self.id_hash)
    }

    /// The refusal (403) of a form without this session's CSRF token; `None` when it has it.
    pub fn forged(&self, form: &HashMap<String, String>) -> Option<Response> {
        let sent = form.get("csrf").map(String::as_bytes).unwrap_or_default();
        let genuine = !sent.is_empty() && bool::from(sent.ct_eq(self.csrf.as_bytes()));
        (!genuine).then(|| {
            message_page(
                StatusCode::FORBIDDEN,
                "This form has expired or was not sent by the console. Reload the page and try again.",
            )
        })
    }
}

/// The frame around every page: who is signed in, the CSRF token for its forms,
/// what they may do (buttons they may not use are not shown).
#[derive(Debug, Clone)]
pub struct Chrome {
    pub section: &'static str,
    pub tenant_id: String,
    pub app_id: String,
    pub csrf: String,
    pub can_write_apps: bool,
    pub can_write_directory: bool,
    pub can_read_directory: bool,
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let context = parts.extensions.get::<RequestContext>().copied().expect("context middleware runs first");
        let to_signin = || Redirect::to("/console/signin").into_response();
        let Some(id) = cookie(&parts.headers, COOKIE) else { return Err(to_signin()) };
        let id_hash = session_hash(app, &id);
        let session = match app.store.console_session(&id_hash, crate::clock::now()).await {
            Ok(Some(session)) => session,
            Ok(None) => return Err(to_signin()),
            Err(e) => {
                tracing::error!(error = %e, "cannot read console sessions");
                return Err(message_page(StatusCode::SERVICE_UNAVAILABLE, "The service is temporarily unavailable."));
            }
        };
        let tenant_id = uuid::Uuid::try_parse(&session.tenant_id).map_err(|_| to_signin())?;
        let roles: Vec<String> = serde_json::from_str(&session.roles).unwrap_or_default();
        let caller = Caller { tenant_id, app_id: session.app_id, roles, context };
        Ok(Console { caller, csrf: session.csrf_token, id_hash })
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
        .filter(|value| value.len() <= 64)
}

/// The stored key of a session id: a keyed hash (see `console_sessions`).
fn session_hash(app: &AppState, id: &str) -> String {
    app.master_key.hash_secret(&format!("console-session:{id}")).iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts a session for an administrator whose admin token carried `roles`.
async fn start_session(
    app: &AppState,
    tenant_id: &str,
    app_id: &str,
    roles: &[String],
    expires_at: i64,
) -> Result<Response, crate::store::StoreError> {
    let random = || base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<32>());
    let id = random();
    let now = crate::clock::now();
    let session = ConsoleSession {
        id_hash: session_hash(app, &id),
        tenant_id: tenant_id.to_string(),
        app_id: app_id.to_string(),
        roles: serde_json::to_string(roles).expect("roles serialize"),
        csrf_token: random(),
        flash: None,
        created_at: now,
        expires_at,
    };
    app.store.create_console_session(&session).await?;
    let mut response = Redirect::to("/console/applications").into_response();
    let cookie = format!("{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}", expires_at - now);
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("cookie is ASCII"));
    Ok(response)
}

async fn end_session(app: &AppState, console: &Console) -> Response {
    if let Err(e) = app.store.delete_console_session(&console.id_hash).await {
        tracing::error!(error = %e, "cannot delete a console session");
        return message_page(StatusCode::SERVICE_UNAVAILABLE, "Signing out failed; try again.");
    }
    let mut response = Redirect::to("/console/signin").into_response();
    let cookie = format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("cookie is ASCII"));
    response
}

/// An admin API handler's answer, read back: status and JSON body.
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    pub fn failure(&self) -> (StatusCode, String) {
        (self.status, self.message())
    }

    /// The API's error message (Graph's `error.message`).
    pub fn message(&self) -> String {
        self.body["error"]["message"].as_str().unwrap_or("The request failed.").to_string()
    }
}

/// Runs an admin API handler's result through to its JSON.
pub async fn api(result: AdminResult) -> Reply {
    let response = match result {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024).await.unwrap_or_default();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
    Reply { status, body }
}

/// A JSON body for an admin API handler.
pub fn json_body(value: &Value) -> Bytes {
    Bytes::from(value.to_string())
}

/// A rendered page with the console's security headers.
pub fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => secured(status, html),
        Err(e) => {
            tracing::error!(error = %e, "console template failed");
            secured(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Error</title><p>The page failed to render.".into(),
            )
        }
    }
}

fn secured(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // `no-referrer` would make browsers send `Origin: null` with the console's own forms.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage<'a> {
    message: &'a str,
}

/// A bare page with one sentence (errors outside a signed-in frame).
pub fn message_page(status: StatusCode, message: &str) -> Response {
    page(status, &MessagePage { message })
}
