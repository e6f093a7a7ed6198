//! The admin API, shaped like Microsoft Graph v1.0 where Graph defines the
//! object: bearer tokens wisp issued for `api://wisp-admin`, role checks,
//! Graph error bodies, `$top`/`$skiptoken` paging, `$filter`, ETags, and an
//! audit record for every change.

pub(super) mod applications;
pub(super) mod audit;
pub(super) mod configuration;
pub(super) mod fics;
pub(super) mod identities;
pub(super) mod issuers;
pub(super) mod principals;
pub(super) mod sign_ins;
pub(super) mod tenants;

use axum::Router;
use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::json;
use uuid::Uuid;

use super::context::RequestContext;
use crate::app::AppState;
use crate::directory::builtin;
use crate::store::{DirectoryAudit, Filter, FilterOp, Page, StoreError};
use crate::token::verify;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1.0/applications", get(applications::list).post(applications::create))
        .route(
            "/v1.0/applications/{id}",
            get(applications::get).patch(applications::update).delete(applications::delete),
        )
        .route("/v1.0/applications/{id}/addPassword", post(applications::add_password))
        .route("/v1.0/applications/{id}/removePassword", post(applications::remove_password))
        .route(
            "/v1.0/applications/{id}/federatedIdentityCredentials",
            get(fics::list_for_application).post(fics::create_for_application),
        )
        .route("/v1.0/applications/{id}/federatedIdentityCredentials/evaluate", post(fics::evaluate_for_application))
        .route("/v1.0/managedIdentities/{id}/federatedIdentityCredentials/evaluate", post(fics::evaluate_for_identity))
        .route(
            "/v1.0/applications/{id}/federatedIdentityCredentials/{fic}",
            get(fics::get_for_application).patch(fics::update_for_application).delete(fics::delete_for_application),
        )
        .route("/v1.0/servicePrincipals", get(principals::list).post(principals::create))
        .route("/v1.0/servicePrincipals/{id}", get(principals::get).delete(principals::delete))
        .route(
            "/v1.0/servicePrincipals/{id}/appRoleAssignedTo",
            get(principals::list_assignments).post(principals::assign),
        )
        .route(
            "/v1.0/servicePrincipals/{id}/appRoleAssignedTo/{assignment}",
            axum::routing::delete(principals::unassign),
        )
        .route("/v1.0/auditLogs/directoryAudits", get(audit::list))
        .route("/v1.0/auditLogs/signIns", get(sign_ins::list))
        .route("/v1.0/tenants", get(tenants::list).post(tenants::create))
        .route("/v1.0/managedIdentities", get(identities::list_identities).post(identities::create_identity))
        .route("/v1.0/managedIdentities/{id}", get(identities::get_identity).delete(identities::delete_identity))
        .route(
            "/v1.0/managedIdentities/{id}/federatedIdentityCredentials",
            get(fics::list_for_identity).post(fics::create_for_identity),
        )
        .route(
            "/v1.0/managedIdentities/{id}/federatedIdentityCredentials/{fic}",
            get(fics::get_for_identity).patch(fics::update_for_identity).delete(fics::delete_for_identity),
        )
        .route("/v1.0/resources", get(identities::list_resources).post(identities::create_resource))
        .route(
            "/v1.0/resources/{id}",
            get(identities::get_resource).patch(identities::update_resource).delete(identities::delete_resource),
        )
        .route("/v1.0/resources/{id}/joinTokens", post(identities::create_join_token))
        .route("/v1.0/federatedIssuers", get(issuers::list).post(issuers::create))
        .route("/v1.0/federatedIssuers/{id}", get(issuers::get).patch(issuers::update).delete(issuers::delete))
        .route("/v1.0/tenantConfiguration", get(configuration::export))
        .route("/v1.0/policies/appManagement", get(tenants::get_policy).patch(tenants::update_policy))
        .route("/v1.0/policies/tokenSigning", get(tenants::get_token_signing).patch(tenants::update_token_signing))
}

/// Routes that take a whole configuration file (with their own body limit).
pub fn configuration_routes() -> Router<AppState> {
    Router::new()
        .route("/v1.0/tenantConfiguration/plan", post(configuration::plan))
        .route("/v1.0/tenantConfiguration/apply", post(configuration::apply))
}

/// What a caller may do, from the roles in its admin token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read applications, FICs and credential metadata.
    ReadApplications,
    /// Change applications and their credentials.
    WriteApplications,
    /// Read everything in the tenant's directory.
    ReadDirectory,
    /// Change anything in the tenant's directory.
    WriteDirectory,
}

/// An authenticated admin API caller: the tenant its token was issued in (all
/// it may see), the client app, and its roles on the admin API.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant_id: Uuid,
    pub app_id: String,
    pub roles: Vec<String>,
    pub context: RequestContext,
}

impl Caller {
    pub fn can(&self, permission: Permission) -> bool {
        use builtin::*;
        let has = |role: &str| self.roles.iter().any(|r| r == role);
        match permission {
            Permission::WriteDirectory => has(DIRECTORY_READ_WRITE_ALL),
            Permission::ReadDirectory => has(DIRECTORY_READ_WRITE_ALL) || has(DIRECTORY_READ_ALL),
            Permission::WriteApplications => has(DIRECTORY_READ_WRITE_ALL) || has(APPLICATION_READ_WRITE_ALL),
            Permission::ReadApplications => {
                has(DIRECTORY_READ_WRITE_ALL)
                    || has(DIRECTORY_READ_ALL)
                    || has(APPLICATION_READ_WRITE_ALL)
                    || has(APPLICATION_READ_ALL)
            }
        }
    }

    /// 403 unless the caller holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), GraphError> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(GraphError::new(
                StatusCode::FORBIDDEN,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            ))
        }
    }

    /// An audit record of a change this caller makes.
    pub fn audit(
        &self,
        activity: &str,
        target_type: &str,
        target_id: &str,
        old: Option<&serde_json::Value>,
        new: Option<&serde_json::Value>,
    ) -> DirectoryAudit {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        DirectoryAudit {
            id: Uuid::new_v4().to_string(),
            tenant_id: self.tenant_id.to_string(),
            at: now.as_secs() as i64,
            seq: now.as_micros() as i64,
            actor_app_id: self.app_id.clone(),
            activity: activity.to_string(),
            target_type: target_type.to_string(),
            target_id: target_id.to_string(),
            old_value: old.map(|v| v.to_string()),
            new_value: new.map(|v| v.to_string()),
            correlation_id: self.context.correlation_id.to_string(),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Self::Rejection> {
        let context = parts.extensions.get::<RequestContext>().copied().expect("context middleware runs first");
        let unauthorized = |message: &str| unauthorized(message, &context);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| unauthorized("Access token is empty."))?;
        let tenant_id = verify::unverified_tenant(token)
            .and_then(|t| Uuid::try_parse(&t).ok())
            .ok_or_else(|| unauthorized("Access token validation failure. Invalid audience or token."))?;
        let keys = match app.keys.tenant_with_kid(&tenant_id, verify::unverified_kid(token).as_deref()).await {
            Ok(Some(keys)) => keys,
            Ok(None) => {
                return Err(unauthorized("Access token validation failure. Invalid audience or token."));
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot load tenant keys for an admin token");
                return Err(GraphError::unavailable().into_response_with(&context));
            }
        };
        let claims = verify::verify(&keys, &app.keys.issuer(&tenant_id), token, crate::clock::now())
            .map_err(|e| unauthorized(&format!("Access token validation failure: {e}.")))?;
        if claims.aud != builtin::ADMIN_API.app_id {
            return Err(unauthorized("Access token validation failure. Invalid audience."));
        }
        let app_id = claims.azp.clone().or(claims.appid.clone()).unwrap_or_default();
        Ok(Caller { tenant_id, app_id, roles: claims.roles, context })
    }
}

fn unauthorized(message: &str, context: &RequestContext) -> Response {
    let mut response =
        GraphError::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message).into_response_with(context);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"wisp\", error=\"invalid_token\", scope=\"api://wisp-admin/.default\""),
    );
    response
}

/// A Graph error: `{"error":{"code","message","innerError":{…}}}`.
#[derive(Debug)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Graph's `details`: one `(target, message)` per problem, when there are several.
    pub details: Vec<(String, String)>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: Vec::new() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!("Resource '{}' ({what}) does not exist or is not in this tenant.", short_id(id)),
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }

    pub fn precondition_failed() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "Request_PreconditionFailed",
            "The object was changed since it was read (ETag mismatch). Read it again and retry.",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "The service is temporarily unavailable. Retry later.",
        )
    }

    pub fn into_response_with(self, context: &RequestContext) -> Response {
        let date =
            time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let details: Vec<_> = self
            .details
            .iter()
            .map(|(target, message)| json!({"code": self.code, "target": target, "message": message}))
            .collect();
        let mut body = json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": date,
                    "request-id": context.trace_id.to_string(),
                    "client-request-id": context.correlation_id.to_string(),
                }
            }
        });
        if !details.is_empty() {
            body["error"]["details"] = json!(details);
        }
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<StoreError> for GraphError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(message) => GraphError::conflict(message),
            StoreError::PreconditionFailed => GraphError::precondition_failed(),
            StoreError::NotFound => {
                GraphError::new(StatusCode::NOT_FOUND, "Request_ResourceNotFound", "The object does not exist.")
            }
            other => {
                tracing::error!(error = %other, "admin API store failure");
                GraphError::unavailable()
            }
        }
    }
}

/// Handlers return this: a response, or a Graph error with the request's ids.
pub type AdminResult = Result<Response, AdminError>;

/// A [`GraphError`] with the context needed to render it.
pub struct AdminError(GraphError, RequestContext);

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        self.0.into_response_with(&self.1)
    }
}

/// Attaches the caller's context to errors: `store_call.await.or_fail(&caller)?`.
pub trait OrFail<T> {
    fn or_fail(self, caller: &Caller) -> Result<T, AdminError>;
}

impl<T, E: Into<GraphError>> OrFail<T> for Result<T, E> {
    fn or_fail(self, caller: &Caller) -> Result<T, AdminError> {
        self.map_err(|e| AdminError(e.into(), caller.context))
    }
}

/// Parses a JSON request body, with Graph's 400 on any problem.
pub fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, GraphError> {
    serde_json::from_slice(body).map_err(|e| GraphError::bad_request(format!("Invalid request body: {e}.")))
}

/// `W/"<version>"`.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// The version an `If-Match` header demands: `None` without the header or with `*`.
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, GraphError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    text.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| GraphError::bad_request("The If-Match header is not an ETag this server issued."))
}

/// A JSON response with status and optional ETag.
pub fn json_response(status: StatusCode, body: serde_json::Value, version: Option<i64>) -> Response {
    with_etag((status, axum::Json(body)).into_response(), version)
}

/// A Graph collection page: `@odata.context`, `value`, and `@odata.nextLink`
/// when the page after the item `next_after` exists.
pub fn list_response(
    public_url: &str,
    collection: &str,
    values: serde_json::Value,
    next_after: Option<String>,
    query: &ListQuery,
) -> Response {
    let mut body = json!({
        "@odata.context": format!("{public_url}/v1.0/$metadata#{collection}"),
        "value": values,
    });
    if let Some(last) = next_after {
        body["@odata.nextLink"] = json!(query.next_link(&format!("{public_url}/v1.0/{collection}"), &last));
    }
    json_response(StatusCode::OK, body, None)
}

/// 204 with an optional ETag (Graph answers PATCH with No Content).
pub fn no_content(version: Option<i64>) -> Response {
    with_etag(StatusCode::NO_CONTENT.into_response(), version)
}

fn with_etag(mut response: Response, version: Option<i64>) -> Response {
    if let Some(value) = version.and_then(|v| HeaderValue::from_str(&etag(v)).ok()) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// Query options of a list request.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    #[serde(rename = "$top")]
    pub top: Option<String>,
    #[serde(rename = "$skiptoken")]
    pub skiptoken: Option<String>,
    #[serde(rename = "$filter")]
    pub filter: Option<String>,
}

/// Default and largest page sizes (Graph's are 100 and 999).
const DEFAULT_TOP: i64 = 100;
const MAX_TOP: i64 = 999;

impl ListQuery {
    /// The store page for this query; `filterable` maps Graph property names to
    /// column names (the only text that reaches SQL).
    pub fn page(&self, filterable: &[(&str, &'static str)]) -> Result<Page, GraphError> {
        let top = self.top()?;
        let after = match &self.skiptoken {
            None => None,
            Some(token) => Some(
                Uuid::try_parse(token)
                    .map(|u| u.to_string())
                    .map_err(|_| GraphError::bad_request("The $skiptoken is not valid."))?,
            ),
        };
        let filter = match &self.filter {
            None => None,
            Some(text) => Some(parse_filter(text, filterable)?),
        };
        Ok(Page { top, after, filter })
    }

    /// `$top`, checked.
    pub fn top(&self) -> Result<i64, GraphError> {
        match &self.top {
            None => Ok(DEFAULT_TOP),
            Some(text) => match text.parse::<i64>() {
                Ok(n) if (1..=MAX_TOP).contains(&n) => Ok(n),
                _ => Err(GraphError::bad_request(format!(
                    "Invalid page size specified: '{}'. Must be between 1 and {MAX_TOP} inclusive.",
                    short_id(text)
                ))),
            },
        }
    }

    /// The `@odata.nextLink` for the page after `last_id`.
    pub fn next_link(&self, base: &str, last_id: &str) -> String {
        let mut url = reqwest::Url::parse(base).expect("public URL is valid");
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(top) = &self.top {
                pairs.append_pair("$top", top);
            }
            if let Some(filter) = &self.filter {
                pairs.append_pair("$filter", filter);
            }
            pairs.append_pair("$skiptoken", last_id);
        }
        url.to_string()
    }
}

/// Parses `prop eq 'value'` or `startswith(prop,'value')` (single quotes, `''`
/// for a quote) for the allowed properties.
pub fn parse_filter(text: &str, filterable: &[(&str, &'static str)]) -> Result<Filter, GraphError> {
    let invalid = || {
        let names: Vec<&str> = filterable.iter().map(|(n, _)| *n).collect();
        GraphError::bad_request(format!(
            "Unsupported or invalid query filter clause: use \"property eq 'value'\" or \"startswith(property,'value')\" with one of: {}.",
            names.join(", ")
        ))
    };
    let text = text.trim();
    let (property, op, literal) = if let Some(rest) = text.strip_prefix("startswith(") {
        let inner = rest.strip_suffix(')').ok_or_else(invalid)?;
        let (property, literal) = inner.split_once(',').ok_or_else(invalid)?;
        (property.trim(), FilterOp::StartsWith, literal.trim())
    } else {
        let (property, rest) = text.split_once(' ').ok_or_else(invalid)?;
        let literal = rest.trim_start().strip_prefix("eq ").ok_or_else(invalid)?;
        (property, FilterOp::Eq, literal.trim())
    };
    let column = filterable.iter().find(|(name, _)| *name == property).map(|(_, c)| *c).ok_or_else(invalid)?;
    let inner = literal.strip_prefix('\'').and_then(|l| l.strip_suffix('\'')).ok_or_else(invalid)?;
    if inner.replace("''", "").contains('\'') {
        return Err(invalid());
    }
    Ok(Filter { column, op, value: inner.replace("''", "'") })
}

/// An id quoted in a message, bounded.
fn short_id(id: &str) -> String {
    crate::directory::validation::shorten(id)
}

/// Unix seconds as Graph's `DateTimeOffset` text.
pub fn datetime(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Parses Graph's `DateTimeOffset` text.
pub fn parse_datetime(text: &str) -> Result<i64, GraphError> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| {
            GraphError::bad_request(format!(
                "'{}' is not a valid date and time (ISO 8601, e.g. 2027-01-31T00:00:00Z).",
                short_id(text)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[(&str, &str)] = &[("appId", "app_id"), ("displayName", "display_name")];

    #[test]
    fn filters_parse_and_quotes_unescape() {
        let f = parse_filter("appId eq 'abc'", FIELDS).unwrap();
        assert_eq!((f.column, f.op, f.value.as_str()), ("app_id", FilterOp::Eq, "abc"));
        let f = parse_filter("startswith(displayName,'O''Brien')", FIELDS).unwrap();
        assert_eq!((f.column, f.op, f.value.as_str()), ("display_name", FilterOp::StartsWith, "O'Brien"));
        for bad in ["appId ne 'x'", "secret eq 'x'", "appId eq x", "appId eq 'a'b'", "startswith(appId 'x')", ""] {
            assert!(parse_filter(bad, FIELDS).is_err(), "{bad}");
        }
    }

    #[test]
    fn if_match_takes_our_etags() {
        let mut headers = HeaderMap::new();
        assert_eq!(if_match(&headers).unwrap(), None);
        headers.insert(header::IF_MATCH, HeaderValue::from_static("W/\"7\""));
        assert_eq!(if_match(&headers).unwrap(), Some(7));
        headers.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert_eq!(if_match(&headers).unwrap(), None);
        headers.insert(header::IF_MATCH, HeaderValue::from_static("garbage"));
        assert!(if_match(&headers).is_err());
    }
}
