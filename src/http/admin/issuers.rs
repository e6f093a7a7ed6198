//! `/v1.0/federatedIssuers`: a tenant registers an issuer's JWKS directly, used
//! instead of discovery for that issuer in that tenant — how air-gapped
//! clusters federate. Uploading keys never makes the server fetch anything;
//! which networks may be reached stays the server operator's decision.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    AdminError, AdminResult, Caller, GraphError, OrFail, Permission, datetime, json_response, no_content, parse_body,
};
use crate::app::AppState;
use crate::directory::validation;
use crate::federation::issuer::parse_uploaded_jwks;
use crate::store::UploadedIssuer;

fn to_json(issuer: &UploadedIssuer) -> Value {
    json!({
        "@odata.etag": super::etag(issuer.version),
        "id": issuer.id,
        "issuer": issuer.issuer,
        "jwks": serde_json::from_str::<Value>(&issuer.jwks).unwrap_or(Value::Null),
        "createdDateTime": datetime(issuer.created_at),
    })
}

async fn load(app: &AppState, caller: &Caller, id: &str) -> Result<UploadedIssuer, AdminError> {
    let not_found = || GraphError::not_found("federatedIssuer", id);
    let id = Uuid::try_parse(id).map_err(|_| not_found()).or_fail(caller)?;
    app.store.uploaded_issuer_by_id(&caller.tenant_id, &id).await.or_fail(caller)?.ok_or_else(not_found).or_fail(caller)
}

fn checked_jwks(jwks: &Value) -> Result<String, GraphError> {
    parse_uploaded_jwks(jwks).map_err(|e| GraphError::bad_request(format!("jwks: {e}.")))?;
    Ok(jwks.to_string())
}

pub async fn list(State(app): State<AppState>, caller: Caller) -> AdminResult {
    caller.require(Permission::ReadApplications).or_fail(&caller)?;
    let issuers = app.store.uploaded_issuers(&caller.tenant_id).await.or_fail(&caller)?;
    Ok(json_response(
        StatusCode::OK,
        json!({"@odata.context": format!("{}/v1.0/$metadata#federatedIssuers", app.public_url),
               "value": issuers.iter().map(to_json).collect::<Vec<_>>()}),
        None,
    ))
}

pub async fn get(State(app): State<AppState>, caller: Caller, Path(id): Path<String>) -> AdminResult {
    caller.require(Permission::ReadApplications).or_fail(&caller)?;
    let issuer = load(&app, &caller, &id).await?;
    Ok(json_response(StatusCode::OK, to_json(&issuer), Some(issuer.version)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    issuer: String,
    jwks: Value,
}

pub async fn create(State(app): State<AppState>, caller: Caller, body: Bytes) -> AdminResult {
    caller.require(Permission::WriteApplications).or_fail(&caller)?;
    let body: CreateBody = parse_body(&body).or_fail(&caller)?;
    validation::fic_issuer(&body.issuer).map_err(GraphError::bad_request).or_fail(&caller)?;
    let issuer = UploadedIssuer {
        id: Uuid::new_v4(),
        tenant_id: caller.tenant_id,
        issuer: body.issuer,
        jwks: checked_jwks(&body.jwks).or_fail(&caller)?,
        version: 1,
        created_at: crate::clock::now(),
    };
    let value = to_json(&issuer);
    let audit =
        caller.audit("Add federated issuer keys", "FederatedIssuer", &issuer.id.to_string(), None, Some(&value));
    app.store.create_uploaded_issuer(&issuer, &audit).await.or_fail(&caller)?;
    Ok(json_response(StatusCode::CREATED, value, Some(1)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateBody {
    jwks: Value,
}

pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AdminResult {
    caller.require(Permission::WriteApplications).or_fail(&caller)?;
    let expected = super::if_match(&headers).or_fail(&caller)?;
    let body: UpdateBody = parse_body(&body).or_fail(&caller)?;
    let before = load(&app, &caller, &id).await?;
    let mut after = before.clone();
    after.jwks = checked_jwks(&body.jwks).or_fail(&caller)?;
    let audit = caller.audit(
        "Update federated issuer keys",
        "FederatedIssuer",
        &before.id.to_string(),
        Some(&to_json(&before)),
        Some(&to_json(&after)),
    );
    let version = app.store.update_uploaded_issuer(&after, expected, &audit).await.or_fail(&caller)?;
    Ok(no_content(Some(version)))
}

pub async fn delete(State(app): State<AppState>, caller: Caller, Path(id): Path<String>) -> AdminResult {
    caller.require(Permission::WriteApplications).or_fail(&caller)?;
    let issuer = load(&app, &caller, &id).await?;
    let audit = caller.audit(
        "Delete federated issuer keys",
        "FederatedIssuer",
        &issuer.id.to_string(),
        Some(&to_json(&issuer)),
        None,
    );
    app.store.delete_uploaded_issuer(&issuer, &audit).await.or_fail(&caller)?;
    Ok(no_content(None))
}
