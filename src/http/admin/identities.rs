//! `/v1.0/managedIdentities` (user-assigned identities) and `/v1.0/resources`
//! (compute resources, with an optional system-assigned identity and attached
//! user-assigned identities, in the ARM habit).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{
    AdminError, AdminResult, Caller, GraphError, ListQuery, OrFail, Permission, datetime, json_response, no_content,
    parse_body,
};
use crate::app::AppState;
use crate::directory::{ComputeResource, ManagedIdentity, validation};

const IDENTITY_FILTERABLE: &[(&str, &str)] = &[("displayName", "display_name"), ("clientId", "client_id")];
const RESOURCE_FILTERABLE: &[(&str, &str)] = &[("name", "name")];

pub fn identity_json(identity: &ManagedIdentity) -> Value {
    json!({
        "id": identity.id,
        "displayName": identity.display_name,
        "type": if identity.system_assigned { "SystemAssigned" } else { "UserAssigned" },
        "clientId": identity.client_id,
        "principalId": identity.principal_id,
        "tenantId": identity.tenant_id,
        "createdDateTime": datetime(identity.created_at),
    })
}

/// A user-assigned identity of the caller's tenant, or 404.
pub async fn load_identity(app: &AppState, caller: &Caller, id: &str) -> Result<ManagedIdentity, AdminError> {
    let not_found = || GraphError::not_found("managedIdentity", id);
    let id = Uuid::try_parse(id).map_err(|_| not_found()).or_fail(caller)?;
    app.store
        .managed_identity(&caller.tenant_id, &id)
        .await
        .or_fail(caller)?
        .filter(|i| !i.system_assigned)
        .ok_or_else(not_found)
        .or_fail(caller)
}

pub async fn list_identities(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> AdminResult {
    caller.require(Permission::ReadDirectory).or_fail(&caller)?;
    let page = query.page(IDENTITY_FILTERABLE).or_fail(&caller)?;
    let listed = app.store.managed_identities(&caller.tenant_id, &page).await.or_fail(&caller)?;
    let next = listed.more.then(|| listed.items.last().expect("a full page").id.to_string());
    Ok(super::list_response(
        &app.public_url,
        "managedIdentities",
        json!(listed.items.iter().map(identity_json).collect::<Vec<_>>()),
        next,
        &query,
    ))
}

pub async fn get_identity(State(app): State<AppState>, caller: Caller, Path(id): Path<String>) -> AdminResult {
    caller.require(Permission::ReadDirectory).or_fail(&caller)?;
    let identity = load_identity(&app, &caller, &id).await?;
    Ok(json_response(StatusCode::OK, identity_json(&identity), None))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IdentityBody {
    display_name: String,
}

pub async fn create_identity(State(app): State<AppState>, caller: Caller, body: Bytes) -> AdminResult {
    caller.require(Permission::WriteDirectory).or_fail(&caller)?;
    let body: IdentityBody = parse_body(&body).or_fail(&caller)?;
    validation::display_name(&body.display_name).map_err(GraphError::bad_request).or_fail(&caller)?;
    let identity = new_identity(&caller, &body.display_name, false);
    let value = identity_json(&identity);
    let audit = caller.audit("Add managed identity", "ManagedIdentity", &identity.id.to_string(), None, Some(&value));
    app.store.create_managed_identity(&identity, &audit).await.or_fail(&caller)?;
    Ok(json_response(StatusCode::CREATED, value, None))
}

pub async fn delete_identity(State(app): State<AppState>, caller: Caller, Path(id): Path<String>) -> AdminResult {
    caller.require(Permission::WriteDirectory).or_fail(&caller)?;
    let identity = load_identity(&app, &caller, &id).await?;
    let audit = caller.audit(
        "Delete managed identity",
        "ManagedIdentity",
        &identity.id.to_string(),
        Some(&identity_json(&identity)),
        None,
    );
    app.store.delete_managed_identity(&identity, &audit).await.or_fail(&caller)?;
    Ok(no_content(None))
}

fn new_identity(caller: &Caller, display_name: &str, system_assigned: bool) -> ManagedIdentity {
    ManagedIdentity {
        id: Uuid::new_v4(),
        tenant_id: caller.tenant_id,
        system_assigned,
        display_name: display_name.to_string(),
        client_id: Uuid::new_v4(),
        principal_id: Uuid::new_v4(),
        created_at: crate::clock::now(),
    }
}

/// The ARM `identity` block of a resource.
async fn resource_json(app: &AppState, resource: &ComputeResource) -> Result<Value, crate::store::StoreError> {
    let system = match resource.system_identity_id {
        Some(id) => app.store.managed_identity(&resource.tenant_id, &id).await?,
        None => None,
    };
    let mut attached = Map::new();
    for id in &resource.user_assigned {
        if let Some(identity) = app.store.managed_identity(&resource.tenant_id, id).await? {
            attached
                .insert(id.to_string(), json!({"principalId": identity.principal_id, "clientId": identity.client_id}));
        }
    }
    let kind = match (system.is_some(), !attached.is_empty()) {
        (true, true) => "SystemAssigned, UserAssigned",
        (true, false) => "SystemAssigned",
        (false, true) => "UserAssigned",
        (false, false) => "None",
    };
    let mut identity = json!({ "type": kind, "tenantId": resource.tenant_id });
    if let Some(system) = &system {
        identity["principalId"] = json!(system.principal_id);
        identity["clientId"] = json!(system.client_id);
    }
    if !attached.is_empty() {
        identity["userAssignedIdentities"] = Value::Object(attached);
    }
    Ok(json!({
        "@odata.etag": super::etag(resource.version),
        "id": resource.id,
        "name": resource.name,
        "createdDateTime": datetime(resource.created_at),
        "identity": identity,
    }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResourceBody {
    name: Option<String>,
    identity: Option<IdentityBlock>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct IdentityBlock {
    #[serde(rename = "type")]
    kind: String,
    /// An array of identity ids, or ARM's map keyed by id.
    user_assigned_identities: Option<Value>,
    #[serde(rename = "principalId")]
    _principal_id: Option<Value>,
    #[serde(rename = "clientId")]
    _client_id: Option<Value>,
    #[serde(rename = "tenantId")]
    _tenant_id: Option<Value>,
}

/// What an identity block asks for: a system-assigned identity or not, and
/// which user-assigned identities (checked to exist in the tenant).
async fn wanted_identities(
    app: &AppState,
    caller: &Caller,
    block: &IdentityBlock,
) -> Result<(bool, Vec<Uuid>), AdminError> {
    let bad = |m: String| GraphError::bad_request(m);
    let (system, user) = match block.kind.replace(' ', "").as_str() {
        "None" => (false, false),
        "SystemAssigned" => (true, false),
        "UserAssigned" => (false, true),
        "SystemAssigned,UserAssigned" => (true, true),
        other => {
            return Err(bad(format!(
                "identity.type '{}' is invalid: use None, SystemAssigned, UserAssigned or 'SystemAssigned, UserAssigned'.",
                validation::shorten(other)
            )))
            .or_fail(caller);
        }
    };
    let ids: Vec<String> = match &block.user_assigned_identities {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect(),
        Some(Value::Object(map)) => map.keys().cloned().collect(),
        Some(_) => {
            return Err(bad("identity.userAssignedIdentities must be a list of identity ids.".into())).or_fail(caller);
        }
    };
    if user && ids.is_empty() {
        return Err(bad("identity.type includes UserAssigned but userAssignedIdentities is empty.".into()))
            .or_fail(caller);
    }
    if !user && !ids.is_empty() {
        return Err(bad("userAssignedIdentities requires identity.type to include UserAssigned.".into()))
            .or_fail(caller);
    }
    let mut resolved = Vec::with_capacity(ids.len());
    for id in ids {
        let identity = load_identity(app, caller, &id)
            .await
            .map_err(|_| {
                bad(format!("'{}' is not a user-assigned managed identity of this tenant.", validation::shorten(&id)))
            })
            .or_fail(caller)?;
        if !resolved.contains(&identity.id) {
            resolved.push(identity.id);
        }
    }
    Ok((system, resolved))
}

fn resource_name(name: &str) -> Result<(), GraphError> {
    validation::resource_name(name).map_err(GraphError::bad_request)
}

async fn load_resource(app: &AppState, caller: &Caller, id: &str) -> Result<ComputeResource, AdminError> {
    let not_found = || GraphError::not_found("resource", id);
    let id = Uuid::try_parse(id).map_err(|_| not_found()).or_fail(caller)?;
    app.store.compute_resource(&caller.tenant_id, &id).await.or_fail(caller)?.ok_or_else(not_found).or_fail(caller)
}

pub async fn list_resources(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> AdminResult {
    caller.require(Permission::ReadDirectory).or_fail(&caller)?;
    let page = query.page(RESOURCE_FILTERABLE).or_fail(&caller)?;
    let listed = app.store.compute_resources(&caller.tenant_id, &page).await.or_fail(&caller)?;
    let mut values = Vec::with_capacity(listed.items.len());
    for resource in &listed.items {
        values.push(resource_json(&app, resource).await.or_fail(&caller)?);
    }
    let next = listed.more.then(|| listed.items.last().expect("a full page").id.to_string());
    Ok(super::list_response(&app.public_url, "resources", json!(values), next, &query))
}

pub async fn get_resource(State(app): State<AppState>, caller: Caller, Path(id): Path<String>) -> AdminResult {
    caller.require(Permission::ReadDirectory).or_fail(&caller)?;
    let resource = load_resource(&app, &caller, &id).await?;
    Ok(json_response(StatusCode::OK, resource_json(&app, &resource).await.or_fail(&caller)?, Some(resource.version)))
}

pub async fn create_resource(State(app): State<AppState>, caller: Caller, body: Bytes) -> AdminResult {
    caller.require(Permission::WriteDirectory).or_fail(&caller)?;
    let body: ResourceBody = parse_body(&body).or_fail(&caller)?;
    let name = body.name.clone().ok_or_else(|| GraphError::bad_request("name is required.")).or_fail(&caller)?;
    resource_name(&name).or_fail(&caller)?;
    let (system, user_assigned) = match &body.identity {
        Some(block) => wanted_identities(&app, &caller, block).await?,
        None => (false, Vec::new()),
    };
    let system_identity = system.then(|| new_identity(&caller, &name, true));
    let resource = ComputeResource {
        id: Uuid::new_v4(),
        tenant_id: caller.tenant_id,
        name,
        system_identity_id: system_identity.as_ref().map(|i| i.id),
        user_assigned,
        version: 1,
        created_at: crate::clock::now(),
    };
    let audit_value = json!({"id": resource.id, "name": resource.name});
    let audit = caller.audit("Add resource", "Resource", &resource.id.to_string(), None, Some(&audit_value));
    app.store.create_compute_resource(&resource, system_identity.as_ref(), &audit).await.or_fail(&caller)?;
    let value = resource_json(&app, &resource).await.or_fail(&caller)?;
    Ok(json_response(StatusCode::CREATED, value, Some(resource.version)))
}

pub async fn update_resource(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AdminResult {
    caller.require(Permission::WriteDirectory).or_fail(&caller)?;
    let expected = super::if_match(&headers).or_fail(&caller)?;
    let body: ResourceBody = parse_body(&body).or_fail(&caller)?;
    let before = load_resource(&app, &caller, &id).await?;
    if body.name.as_ref().is_some_and(|n| *n != before.name) {
        return Err(GraphError::bad_request("A resource's name cannot be changed.")).or_fail(&caller);
    }
    let Some(block) = &body.identity else {
        return Ok(no_content(Some(before.version)));
    };
    let (system, user_assigned) = wanted_identities(&app, &caller, block).await?;
    let mut after = before.clone();
    after.user_assigned = user_assigned;
    let mut created = None;
    let mut removed = None;
    match (before.system_identity_id, system) {
        (None, true) => {
            let identity = new_identity(&caller, &before.name, true);
            after.system_identity_id = Some(identity.id);
            created = Some(identity);
        }
        (Some(old), false) => {
            removed = app.store.managed_identity(&caller.tenant_id, &old).await.or_fail(&caller)?;
            after.system_identity_id = None;
        }
        _ => {}
    }
    let before_json = resource_json(&app, &before).await.or_fail(&caller)?;
    let audit = caller.audit(
        "Update resource",
        "Resource",
        &before.id.to_string(),
        Some(&before_json),
        Some(&json!({"identity": {"type": block.kind, "userAssignedIdentities": after.user_assigned}})),
    );
    let version = app
        .store
        .update_compute_resource(&after, expected, created.as_ref(), removed.as_ref(), &audit)
        .await
        .or_fail(&caller)?;
    Ok(no_content(Some(version)))
}

pub async fn delete_resource(State(app): State<AppState>, caller: Caller, Path(id): Path<String>) -> AdminResult {
    caller.require(Permission::WriteDirectory).or_fail(&caller)?;
    let resource = load_resource(&app, &caller, &id).await?;
    let system = match resource.system_identity_id {
        Some(id) => app.store.managed_identity(&caller.tenant_id, &id).await.or_fail(&caller)?,
        None => None,
    };
    let before = resource_json(&app, &resource).await.or_fail(&caller)?;
    let audit = caller.audit("Delete resource", "Resource", &resource.id.to_string(), Some(&before), None);
    app.store.delete_compute_resource(&resource, system.as_ref(), &audit).await.or_fail(&caller)?;
    Ok(no_content(None))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JoinTokenBody {
    /// Seconds the token stays usable (default 15 minutes, at most a day).
    valid_for_seconds: Option<i64>,
}

/// `POST /v1.0/resources/{id}/joinTokens`: a one-time, expiring token that
/// enrolls one agent for this resource. Shown once; stored as a keyed hash.
pub async fn create_join_token(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> AdminResult {
    caller.require(Permission::WriteDirectory).or_fail(&caller)?;
    let body: JoinTokenBody =
        if body.is_empty() { JoinTokenBody::default() } else { parse_body(&body).or_fail(&caller)? };
    let valid_for = body.valid_for_seconds.unwrap_or(900);
    if !(60..=86400).contains(&valid_for) {
        return Err(GraphError::bad_request("validForSeconds must be between 60 and 86400.")).or_fail(&caller);
    }
    let resource = load_resource(&app, &caller, &id).await?;
    let token = format!("wjt_{}", crate::crypto::generate_client_secret());
    let now = crate::clock::now();
    let new = crate::store::NewJoinToken {
        id: Uuid::new_v4(),
        tenant_id: caller.tenant_id,
        resource_id: resource.id,
        token_hash: crate::managed_identity::join_token_hash(&app, &token),
        created_at: now,
        expires_at: now + valid_for,
    };
    let public = json!({"id": new.id, "resourceId": resource.id, "expiresDateTime": datetime(new.expires_at)});
    let audit = caller.audit("Add agent join token", "Resource", &resource.id.to_string(), None, Some(&public));
    app.store.create_join_token(&new, &audit).await.or_fail(&caller)?;
    let mut body = public;
    body["joinToken"] = json!(token);
    Ok(json_response(StatusCode::CREATED, body, None))
}
