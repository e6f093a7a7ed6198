//! `/v1.0/servicePrincipals`: an application's presence in a tenant (creating one
//! in another tenant is how a customer provisions a multi-tenant app), and
//! `appRoleAssignedTo`: granting a client a role on a resource API.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    AdminError, AdminResult, Caller, GraphError, ListQuery, OrFail, Permission, datetime, json_response, no_content,
    parse_body,
};
use crate::app::AppState;
use crate::directory::{AppRoleAssignment, MULTI_TENANT, ServicePrincipal, builtin};

const FILTERABLE: &[(&str, &str)] = &[("appId", "app_id"), ("displayName", "display_name")];

/// The roles a service principal's resource defines: `(id, value, enabled)`.
async fn resource_roles(app: &AppState, sp: &ServicePrincipal) -> Result<Vec<Value>, crate::store::StoreError> {
    if let Some(resource) = builtin::by_app_id(&sp.app_id) {
        return Ok(resource
            .roles
            .iter()
            .map(|r| json!({"id": r.id, "value": r.value, "displayName": r.display_name, "isEnabled": true,
                            "allowedMemberTypes": ["Application"], "description": r.display_name, "origin": "Application"}))
            .collect());
    }
    Ok(match app.store.application_by_app_id(&sp.app_id).await? {
        Some(application) => {
            application.app_roles.iter().map(|r| serde_json::to_value(r).expect("role serializes")).collect()
        }
        None => Vec::new(),
    })
}

async fn to_json(app: &AppState, sp: &ServicePrincipal) -> Result<Value, crate::store::StoreError> {
    let application = app.store.application_by_app_id(&sp.app_id).await?;
    let roles = match builtin::by_app_id(&sp.app_id) {
        Some(_) => resource_roles(app, sp).await?,
        None => application
            .iter()
            .flat_map(|a| &a.app_roles)
            .map(|r| serde_json::to_value(r).expect("role serializes"))
            .collect(),
    };
    let (owner, names) = match application {
        Some(application) => {
            let mut names = application.identifier_uris.clone();
            names.push(sp.app_id.clone());
            (Some(application.tenant_id.to_string()), names)
        }
        None => {
            let mut names: Vec<String> = builtin::by_app_id(&sp.app_id)
                .map(|b| b.identifier_uris.iter().map(|u| u.to_string()).collect())
                .unwrap_or_default();
            names.push(sp.app_id.clone());
            (None, names)
        }
    };
    Ok(json!({
        "id": sp.id,
        "appId": sp.app_id,
        "displayName": sp.display_name,
        "servicePrincipalType": sp.principal_type,
        "appOwnerOrganizationId": owner,
        "servicePrincipalNames": names,
        "appRoles": roles,
        "accountEnabled": true,
        "createdDateTime": datetime(sp.created_at),
    }))
}

async fn load(app: &AppState, caller: &Caller, id: &str) -> Result<ServicePrincipal, AdminError> {
    let not_found = || GraphError::not_found("servicePrincipal", id);
    let id = Uuid::try_parse(id).map_err(|_| not_found()).or_fail(caller)?;
    app.store.service_principal(&caller.tenant_id, &id).await.or_fail(caller)?.ok_or_else(not_found).or_fail(caller)
}

pub async fn list(State(app): State<AppState>, caller: Caller, Query(query): Query<ListQuery>) -> AdminResult {
    caller.require(Permission::ReadApplications).or_fail(&caller)?;
    let page = query.page(FILTERABLE).or_fail(&caller)?;
    let listed = app.store.service_principals(&caller.tenant_id, &page).await.or_fail(&caller)?;
    let mut values = Vec::with_capacity(listed.items.len());
    for sp in &listed.items {
        values.push(to_json(&app, sp).await.or_fail(&caller)?);
    }
    let next = listed.more.then(|| listed.items.last().expect("a full page").id.to_string());
    Ok(super::list_response(&app.public_url, "servicePrincipals", json!(values), next, &query))
}

pub async fn get(State(app): State<AppState>, caller: Caller, Path(id): Path<String>) -> AdminResult {
    caller.require(Permission::ReadApplications).or_fail(&caller)?;
    let sp = load(&app, &caller, &id).await?;
    Ok(json_response(StatusCode::OK, to_json(&app, &sp).await.or_fail(&caller)?, None))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    app_id: String,
}

pub async fn create(State(app): State<AppState>, caller: Caller, body: Bytes) -> AdminResult {
    caller.require(Permission::WriteDirectory).or_fail(&caller)?;
    let body: CreateBody = parse_body(&body).or_fail(&caller)?;
    let invalid = || {
        GraphError::bad_request(format!(
            "The appId '{}' of the service principal does not reference a valid application object.",
            crate::directory::validation::shorten(&body.app_id)
        ))
    };
    if Uuid::try_parse(&body.app_id).is_err() || builtin::by_app_id(&body.app_id).is_some() {
        return Err(invalid()).or_fail(&caller);
    }
    let application =
        app.store.application_by_app_id(&body.app_id).await.or_fail(&caller)?.ok_or_else(invalid).or_fail(&caller)?;
    if application.tenant_id != caller.tenant_id && application.sign_in_audience != MULTI_TENANT {
        return Err(GraphError::bad_request(format!(
            "Application '{}' is a single-tenant application (signInAudience {}) of another tenant; it cannot be \
             provisioned here. Its owner must make it multi-tenant ({MULTI_TENANT}) first.",
            application.app_id, application.sign_in_audience
        )))
        .or_fail(&caller);
    }
    let sp = ServicePrincipal {
        id: Uuid::new_v4(),
        tenant_id: caller.tenant_id,
        app_id: application.app_id.to_string(),
        display_name: application.display_name.clone(),
        principal_type: "Application".into(),
        created_at: crate::clock::now(),
    };
    let value = to_json(&app, &sp).await.or_fail(&caller)?;
    let audit = caller.audit("Add service principal", "ServicePrincipal", &sp.id.to_string(), None, Some(&value));
    app.store.create_service_principal(&sp, &audit).await.or_fail(&caller)?;
    Ok(json_response(StatusCode::CREATED, value, None))
}

pub async fn delete(State(app): State<AppState>, caller: Caller, Path(id): Path<String>) -> AdminResult {
    caller.require(Permission::WriteDirectory).or_fail(&caller)?;
    let sp = load(&app, &caller, &id).await?;
    if sp.principal_type != "Application" {
        return Err(GraphError::bad_request(format!(
            "A {} service principal cannot be deleted directly.",
            sp.principal_type
        )))
        .or_fail(&caller);
    }
    let before = to_json(&app, &sp).await.or_fail(&caller)?;
    let audit = caller.audit("Delete service principal", "ServicePrincipal", &sp.id.to_string(), Some(&before), None);
    app.store.delete_service_principal(&caller.tenant_id, &sp.id, &audit).await.or_fail(&caller)?;
    Ok(no_content(None))
}

async fn assignment_json(app: &AppState, a: &AppRoleAssignment) -> Result<Value, crate::store::StoreError> {
    let principal = app.store.service_principal(&a.tenant_id, &a.principal_id).await?;
    let resource = app.store.service_principal(&a.tenant_id, &a.resource_id).await?;
    Ok(json!({
        "id": a.id,
        "appRoleId": a.app_role_id,
        "principalId": a.principal_id,
        "principalType": "ServicePrincipal",
        "principalDisplayName": principal.map(|p| p.display_name),
        "resourceId": a.resource_id,
        "resourceDisplayName": resource.map(|r| r.display_name),
        "createdDateTime": datetime(a.created_at),
    }))
}

pub async fn list_assignments(State(app): State<AppState>, caller: Caller, Path(id): Path<String>) -> AdminResult {
    caller.require(Permission::ReadDirectory).or_fail(&caller)?;
    let resource = load(&app, &caller, &id).await?;
    let assignments = app.store.app_role_assignments_to(&caller.tenant_id, &resource.id).await.or_fail(&caller)?;
    let mut values = Vec::with_capacity(assignments.len());
    for a in &assignments {
        values.push(assignment_json(&app, a).await.or_fail(&caller)?);
    }
    Ok(json_response(
        StatusCode::OK,
        json!({
            "@odata.context": format!("{}/v1.0/$metadata#servicePrincipals('{}')/appRoleAssignedTo", app.public_url, resource.id),
            "value": values,
        }),
        None,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AssignBody {
    principal_id: Uuid,
    resource_id: Uuid,
    app_role_id: Uuid,
    #[serde(rename = "principalType")]
    _principal_type: Option<String>,
}

pub async fn assign(State(app): State<AppState>, caller: Caller, Path(id): Path<String>, body: Bytes) -> AdminResult {
    caller.require(Permission::WriteDirectory).or_fail(&caller)?;
    let body: AssignBody = parse_body(&body).or_fail(&caller)?;
    let resource = load(&app, &caller, &id).await?;
    if body.resource_id != resource.id {
        return Err(GraphError::bad_request("resourceId must be the service principal in the request path."))
            .or_fail(&caller);
    }
    let principal = app
        .store
        .service_principal(&caller.tenant_id, &body.principal_id)
        .await
        .or_fail(&caller)?
        .ok_or_else(|| {
            GraphError::bad_request(format!(
                "principalId '{}' is not a service principal of this tenant.",
                body.principal_id
            ))
        })
        .or_fail(&caller)?;
    let roles = resource_roles(&app, &resource).await.or_fail(&caller)?;
    let role = roles.iter().find(|r| r["id"].as_str() == Some(body.app_role_id.to_string().as_str()));
    match role {
        None => {
            return Err(GraphError::bad_request(format!(
                "Permission (appRoleId {}) does not exist on the resource '{}'.",
                body.app_role_id, resource.display_name
            )))
            .or_fail(&caller);
        }
        Some(role) if role["isEnabled"] == json!(false) => {
            return Err(GraphError::bad_request("The app role is disabled and cannot be assigned.")).or_fail(&caller);
        }
        Some(_) => {}
    }
    let assignment = AppRoleAssignment {
        id: Uuid::new_v4(),
        tenant_id: caller.tenant_id,
        principal_id: principal.id,
        resource_id: resource.id,
        app_role_id: body.app_role_id,
        created_at: crate::clock::now(),
    };
    let mut value = json!({
        "id": assignment.id, "appRoleId": assignment.app_role_id, "principalId": principal.id,
        "principalType": "ServicePrincipal", "principalDisplayName": principal.display_name,
        "resourceId": resource.id, "resourceDisplayName": resource.display_name,
        "createdDateTime": datetime(assignment.created_at),
    });
    let audit =
        caller.audit("Add app role assignment", "AppRoleAssignment", &assignment.id.to_string(), None, Some(&value));
    app.store.create_app_role_assignment(&assignment, &audit).await.or_fail(&caller)?;
    value["@odata.context"] = json!(format!("{}/v1.0/$metadata#appRoleAssignments/$entity", app.public_url));
    Ok(json_response(StatusCode::CREATED, value, None))
}

pub async fn unassign(
    State(app): State<AppState>,
    caller: Caller,
    Path((id, assignment)): Path<(String, String)>,
) -> AdminResult {
    caller.require(Permission::WriteDirectory).or_fail(&caller)?;
    let resource = load(&app, &caller, &id).await?;
    let not_found = || GraphError::not_found("appRoleAssignment", &assignment);
    let assignment_id = Uuid::try_parse(&assignment).map_err(|_| not_found()).or_fail(&caller)?;
    let audit = caller.audit(
        "Remove app role assignment",
        "AppRoleAssignment",
        &assignment_id.to_string(),
        Some(&json!({"id": assignment_id, "resourceId": resource.id})),
        None,
    );
    let removed = app
        .store
        .delete_app_role_assignment(&caller.tenant_id, &resource.id, &assignment_id, &audit)
        .await
        .or_fail(&caller)?;
    if !removed {
        return Err(not_found()).or_fail(&caller);
    }
    Ok(no_content(None))
}
