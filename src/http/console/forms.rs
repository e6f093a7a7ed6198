//! What every page handler shares: reading forms and admin API answers,
//! redirects, and the failure a refused form is shown with.

pub(super) use std::collections::HashMap;

pub(super) use askama::Template;
pub(super) use axum::extract::{ConnectInfo, Form, Path, Query, State};
pub(super) use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
pub(super) use axum::response::{IntoResponse, Redirect, Response};
pub(super) use serde_json::{Value, json};

pub(super) use super::{Chrome, Console, Reply, api, json_body, message_page, page};
pub(super) use crate::app::AppState;
pub(super) use crate::directory::scenario::{self, GitHubEntity};
pub(super) use crate::directory::validation::TOKEN_EXCHANGE_AUDIENCE;
pub(super) use crate::http::admin::{ListQuery, applications, fics, identities, principals, sign_ins, tenants};
pub(super) use crate::http::context::RequestContext;

pub(super) type FormData = HashMap<String, String>;

/// Why a form was refused: the API's status and message.
pub(super) type Failure = (StatusCode, String);

pub(super) fn split(error: Option<Failure>) -> (StatusCode, Option<String>) {
    match error {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    }
}

pub(super) fn field<'a>(form: &'a FormData, name: &str) -> &'a str {
    form.get(name).map(|v| v.trim()).unwrap_or_default()
}

pub(super) fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(super) fn list_of(reply: &Reply) -> Vec<Value> {
    reply.body["value"].as_array().cloned().unwrap_or_default()
}

pub(super) fn query(filter: Option<String>) -> Query<ListQuery> {
    Query(ListQuery { top: Some("999".into()), skiptoken: None, filter })
}

/// Rows a long list shows per page.
pub(super) const PAGE_SIZE: &str = "100";

/// One page of a list, after the item `after` (an admin API `$skiptoken`).
pub(super) fn page_query(filter: Option<String>, after: &str) -> Query<ListQuery> {
    let skiptoken = (!after.is_empty()).then(|| after.to_string());
    Query(ListQuery { top: Some(PAGE_SIZE.into()), skiptoken, filter })
}

/// The `$skiptoken` of the next page, from the answer's `@odata.nextLink`.
pub(super) fn next_page(reply: &Reply) -> Option<String> {
    let link = reply.body["@odata.nextLink"].as_str()?;
    let url = reqwest::Url::parse(link).ok()?;
    url.query_pairs().find(|(k, _)| k == "$skiptoken").map(|(_, v)| v.into_owned())
}

/// `If-Match` for a write the form read at `etag`.
pub(super) fn if_match(etag: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(etag)
        && !etag.is_empty()
    {
        headers.insert(header::IF_MATCH, value);
    }
    headers
}

/// The refusal of a POST that did not come from this server's pages (its
/// Origin differs); `None` when it did.
pub(super) fn cross_origin(app: &AppState, headers: &HeaderMap) -> Option<Response> {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())?;
    (origin != app.public_url)
        .then(|| message_page(StatusCode::FORBIDDEN, "This form was posted from another site and was refused."))
}

pub(super) fn to(path: String) -> Response {
    Redirect::to(&path).into_response()
}

pub(super) fn quoted(value: &str) -> String {
    value.replace('\'', "''")
}
