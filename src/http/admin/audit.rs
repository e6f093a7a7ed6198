//! `/v1.0/auditLogs/directoryAudits`: who changed what in the directory, newest
//! first, with the object before and after (secrets never recorded).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{AdminResult, Caller, GraphError, ListQuery, OrFail, Permission, datetime, json_response};
use crate::app::AppState;

pub async fn list(State(app): State<AppState>, caller: Caller, Query(query): Query<ListQuery>) -> AdminResult {
    caller.require(Permission::ReadDirectory).or_fail(&caller)?;
    if query.filter.is_some() {
        return Err(GraphError::bad_request("$filter is not supported on directoryAudits yet.")).or_fail(&caller);
    }
    let top = query.top().or_fail(&caller)?;
    // The skiptoken of this list is "at.seq.id" of the last event shown.
    let before = match &query.skiptoken {
        None => None,
        Some(token) => Some(parse_cursor(token).or_fail(&caller)?),
    };
    let mut events = app.store.directory_audits(&caller.tenant_id, top, before).await.or_fail(&caller)?;
    let more = events.len() as i64 > top;
    events.truncate(top as usize);
    let values: Vec<Value> = events
        .iter()
        .map(|e| {
            let parse = |v: &Option<String>| v.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok());
            json!({
                "id": e.id,
                "activityDateTime": datetime(e.at),
                "activityDisplayName": e.activity,
                "category": "ApplicationManagement",
                "correlationId": e.correlation_id,
                "result": "success",
                "initiatedBy": { "app": { "appId": e.actor_app_id } },
                "targetResources": [{
                    "id": e.target_id,
                    "type": e.target_type,
                    "modifiedProperties": [{ "displayName": "object", "oldValue": parse(&e.old_value), "newValue": parse(&e.new_value) }],
                }],
            })
        })
        .collect();
    let mut body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#auditLogs/directoryAudits", app.public_url),
        "value": values,
    });
    if more {
        let last = events.last().expect("a full page");
        let cursor = format!("{}.{}.{}", last.at, last.seq, last.id);
        body["@odata.nextLink"] =
            json!(query.next_link(&format!("{}/v1.0/auditLogs/directoryAudits", app.public_url), &cursor));
    }
    Ok(json_response(StatusCode::OK, body, None))
}

fn parse_cursor(token: &str) -> Result<(i64, i64, String), GraphError> {
    let invalid = || GraphError::bad_request("The $skiptoken is not valid.");
    let mut parts = token.splitn(3, '.');
    let at = parts.next().and_then(|p| p.parse().ok()).ok_or_else(invalid)?;
    let seq = parts.next().and_then(|p| p.parse().ok()).ok_or_else(invalid)?;
    let id = parts.next().filter(|p| uuid::Uuid::try_parse(p).is_ok()).ok_or_else(invalid)?;
    Ok((at, seq, id.to_string()))
}
