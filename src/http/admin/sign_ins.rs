//! `/v1.0/auditLogs/signIns`: every token request to this tenant, granted or
//! refused, newest first — and for a refused federated assertion, each
//! credential's checks (the detail the caller was not told).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{AdminResult, Caller, GraphError, ListQuery, OrFail, Permission, datetime, json_response, parse_datetime};
use crate::app::AppState;
use crate::store::{SignInQuery, SignInRow};

pub async fn list(State(app): State<AppState>, caller: Caller, Query(query): Query<ListQuery>) -> AdminResult {
    caller.require(Permission::ReadDirectory).or_fail(&caller)?;
    let mut sign_in_query = SignInQuery { top: query.top().or_fail(&caller)?, ..SignInQuery::default() };
    if let Some(filter) = &query.filter {
        apply_filter(filter, &mut sign_in_query).or_fail(&caller)?;
    }
    if let Some(token) = &query.skiptoken {
        let invalid = || GraphError::bad_request("The $skiptoken is not valid.");
        let (seq, id) = token.split_once('.').ok_or_else(invalid).or_fail(&caller)?;
        let seq = seq.parse().map_err(|_| invalid()).or_fail(&caller)?;
        uuid::Uuid::try_parse(id).map_err(|_| invalid()).or_fail(&caller)?;
        sign_in_query.before = Some((seq, id.to_string()));
    }
    // Read your writes: every request answered so far is in the log.
    if let Err(e) = app.sign_ins.flush().await {
        tracing::warn!(error = %e, "the sign-in log could not be flushed before reading it");
    }
    let mut rows = app.store.sign_ins(&caller.tenant_id, &sign_in_query).await.or_fail(&caller)?;
    let more = rows.len() as i64 > sign_in_query.top;
    rows.truncate(sign_in_query.top as usize);
    let mut body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#auditLogs/signIns", app.public_url),
        "value": rows.iter().map(to_json).collect::<Vec<_>>(),
    });
    if more {
        let last = rows.last().expect("a full page");
        let cursor = format!("{}.{}", last.seq, last.id);
        body["@odata.nextLink"] =
            json!(query.next_link(&format!("{}/v1.0/auditLogs/signIns", app.public_url), &cursor));
    }
    Ok(json_response(StatusCode::OK, body, None))
}

fn to_json(row: &SignInRow) -> Value {
    json!({
        "id": row.id,
        "createdDateTime": datetime(row.at),
        "appId": row.client_id,
        "correlationId": row.correlation_id,
        "ipAddress": row.client_ip,
        "servicePrincipalId": row.service_principal_id,
        "resource": row.resource,
        "clientCredentialType": row.credential_type,
        "credentialId": row.credential_id,
        "assertion": {
            "issuer": row.assertion_issuer,
            "subject": row.assertion_subject,
            "jti": row.assertion_jti,
        },
        "outcome": row.outcome,
        "status": {
            "errorCode": row.error_code.unwrap_or(0),
            "failureReason": row.error_code.map(|code| format!("AADSTS{code}")),
        },
        "uniqueTokenIdentifier": row.token_id,
        "details": row.details.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok()),
    })
}

/// `clause and clause …` with `appId eq '…'`, `correlationId eq '…'`,
/// `outcome eq 'granted'|'refused'`, `createdDateTime ge|le 2026-01-01T00:00:00Z`.
fn apply_filter(filter: &str, query: &mut SignInQuery) -> Result<(), GraphError> {
    let invalid = |clause: &str| {
        GraphError::bad_request(format!(
            "Unsupported filter clause '{}': use appId eq '…', correlationId eq '…', outcome eq 'granted'|'refused', \
             createdDateTime ge|le <date-time>, joined with 'and'.",
            crate::directory::validation::shorten(clause)
        ))
    };
    for clause in filter.split(" and ") {
        let clause = clause.trim();
        let mut words = clause.splitn(3, ' ');
        let (Some(property), Some(op), Some(value)) = (words.next(), words.next(), words.next()) else {
            return Err(invalid(clause));
        };
        let quoted = || value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).map(|v| v.replace("''", "'"));
        match (property, op) {
            ("appId", "eq") => query.client_id = Some(quoted().ok_or_else(|| invalid(clause))?.to_ascii_lowercase()),
            ("correlationId", "eq") => query.correlation_id = Some(quoted().ok_or_else(|| invalid(clause))?),
            ("outcome", "eq") => match quoted().as_deref() {
                Some(outcome @ ("granted" | "refused")) => query.outcome = Some(outcome.to_string()),
                _ => return Err(invalid(clause)),
            },
            ("createdDateTime", "ge") => query.since = Some(parse_datetime(value.trim_matches('\''))?),
            ("createdDateTime", "le") => query.until = Some(parse_datetime(value.trim_matches('\''))?),
            _ => return Err(invalid(clause)),
        }
    }
    Ok(())
}
