//! `/v1.0/applications`: app registrations, their identifier URIs and app roles,
//! client secrets (`addPassword`/`removePassword`) and certificates
//! (`keyCredentials`). Creating an application creates its service principal.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    AdminResult, Caller, GraphError, ListQuery, OrFail, Permission, datetime, json_response, no_content, parse_body,
};
use crate::app::AppState;
use crate::crypto::{generate_client_secret, parse_certificate, x5t_sha1, x5t_sha256};
use crate::directory::{
    AppRole, Application, KeyCredentialInfo, MULTI_TENANT, PasswordCredentialInfo, SINGLE_TENANT, validation,
};
use crate::store::{KeyCredentialChanges, NewPasswordCredential};

/// Properties `$filter` accepts, and their columns.
const FILTERABLE: &[(&str, &str)] = &[("appId", "app_id"), ("displayName", "display_name")];
/// Default lifetime of a new client secret (Entra's portal default is 180 days).
const DEFAULT_SECRET_LIFETIME_SECS: i64 = 180 * 86400;
/// Longest a client secret may live (Entra allows two years).
const MAX_SECRET_LIFETIME_SECS: i64 = 2 * 365 * 86400;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationBody {
    #[serde(rename = "@odata.type")]
    _odata_type: Option<String>,
    display_name: Option<String>,
    description: Option<Value>,
    sign_in_audience: Option<String>,
    identifier_uris: Option<Vec<String>>,
    app_roles: Option<Vec<AppRoleBody>>,
    api: Option<ApiBody>,
    key_credentials: Option<Vec<KeyCredentialBody>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AppRoleBody {
    id: Option<Uuid>,
    value: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    allowed_member_types: Option<Vec<String>>,
    is_enabled: Option<bool>,
    #[serde(rename = "origin")]
    _origin: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ApiBody {
    requested_access_token_version: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeyCredentialBody {
    key_id: Option<Uuid>,
    key: Option<String>,
    display_name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    usage: Option<String>,
    start_date_time: Option<String>,
    end_date_time: Option<String>,
    #[serde(rename = "customKeyIdentifier")]
    _custom_key_identifier: Option<String>,
}

/// The Graph JSON of an application.
pub fn to_json(base: &str, app: &Application, secrets: &[PasswordCredentialInfo], keys: &[KeyCredentialInfo]) -> Value {
    json!({
        "@odata.context": format!("{base}/v1.0/$metadata#applications/$entity"),
        "@odata.etag": super::etag(app.version),
        "id": app.id,
        "appId": app.app_id,
        "displayName": app.display_name,
        "description": app.description,
        "signInAudience": app.sign_in_audience,
        "identifierUris": app.identifier_uris,
        "appRoles": app.app_roles,
        "api": { "requestedAccessTokenVersion": app.requested_token_version },
        "createdDateTime": datetime(app.created_at),
        "passwordCredentials": secrets.iter().map(|s| json!({
            "keyId": s.key_id,
            "displayName": s.display_name,
            "hint": s.hint,
            "startDateTime": datetime(s.start_at),
            "endDateTime": datetime(s.end_at),
            "secretText": null,
        })).collect::<Vec<_>>(),
        "keyCredentials": keys.iter().map(|k| json!({
            "keyId": k.key_id,
            "displayName": k.display_name,
            "type": "AsymmetricX509Cert",
            "usage": "Verify",
            "customKeyIdentifier": thumbprint_hex(&k.thumbprint_sha1),
            "startDateTime": datetime(k.start_at),
            "endDateTime": datetime(k.end_at),
            "key": null,
        })).collect::<Vec<_>>(),
    })
}

/// Graph shows a certificate's SHA-1 thumbprint as upper-case hex.
fn thumbprint_hex(x5t: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(x5t)
        .map(|bytes| bytes.iter().map(|b| format!("{b:02X}")).collect())
        .unwrap_or_default()
}

/// Loads an application of the caller's tenant, or 404.
pub async fn load(app: &AppState, caller: &Caller, id: &str) -> Result<Application, super::AdminError> {
    let not_found = || GraphError::not_found("application", id);
    let object_id = Uuid::try_parse(id).map_err(|_| not_found()).or_fail(caller)?;
    app.store.application(&caller.tenant_id, &object_id).await.or_fail(caller)?.ok_or_else(not_found).or_fail(caller)
}

async fn full_json(app: &AppState, application: &Application) -> Result<Value, crate::store::StoreError> {
    let secrets = app.store.password_credential_infos(&application.id).await?;
    let keys = app.store.key_credentials(&application.id).await?;
    Ok(to_json(&app.public_url, application, &secrets, &keys))
}

pub async fn list(State(app): State<AppState>, caller: Caller, Query(query): Query<ListQuery>) -> AdminResult {
    caller.require(Permission::ReadApplications).or_fail(&caller)?;
    let page = query.page(FILTERABLE).or_fail(&caller)?;
    let listed = app.store.applications(&caller.tenant_id, &page).await.or_fail(&caller)?;
    let ids: Vec<Uuid> = listed.items.iter().map(|a| a.id).collect();
    let mut credentials = app.store.credential_infos(&ids).await.or_fail(&caller)?;
    let mut values = Vec::with_capacity(listed.items.len());
    for application in &listed.items {
        let (secrets, keys) = credentials.remove(&application.id).unwrap_or_default();
        let mut value = to_json(&app.public_url, application, &secrets, &keys);
        value.as_object_mut().expect("object").remove("@odata.context");
        values.push(value);
    }
    let next = listed.more.then(|| listed.items.last().expect("a full page").id.to_string());
    Ok(super::list_response(&app.public_url, "applications", json!(values), next, &query))
}

pub async fn get(State(app): State<AppState>, caller: Caller, Path(id): Path<String>) -> AdminResult {
    caller.require(Permission::ReadApplications).or_fail(&caller)?;
    let application = load(&app, &caller, &id).await?;
    let body = full_json(&app, &application).await.or_fail(&caller)?;
    Ok(json_response(StatusCode::OK, body, Some(application.version)))
}

pub async fn create(State(app): State<AppState>, caller: Caller, body: Bytes) -> AdminResult {
    caller.require(Permission::WriteApplications).or_fail(&caller)?;
    let body: ApplicationBody = parse_body(&body).or_fail(&caller)?;
    if body.key_credentials.as_ref().is_some_and(|k| !k.is_empty()) {
        return Err(GraphError::bad_request("Add certificates with PATCH after creating the application."))
            .or_fail(&caller);
    }
    let now = crate::clock::now();
    let display_name = body
        .display_name
        .clone()
        .ok_or_else(|| GraphError::bad_request("displayName is required."))
        .or_fail(&caller)?;
    let mut application = Application::new(caller.tenant_id, display_name, now);
    apply_body(&mut application, &body, &[]).or_fail(&caller)?;
    let sp_id = Uuid::new_v4();
    let value = to_json(&app.public_url, &application, &[], &[]);
    let audit = caller.audit("Add application", "Application", &application.id.to_string(), None, Some(&value));
    app.store.create_application(&application, &sp_id, &audit).await.or_fail(&caller)?;
    Ok(json_response(StatusCode::CREATED, value, Some(application.version)))
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
    let body: ApplicationBody = parse_body(&body).or_fail(&caller)?;
    let before = load(&app, &caller, &id).await?;
    let before_json = full_json(&app, &before).await.or_fail(&caller)?;
    let mut after = before.clone();
    apply_body(&mut after, &body, &before.app_roles).or_fail(&caller)?;
    let existing_keys = app.store.key_credentials(&before.id).await.or_fail(&caller)?;
    let keys = match &body.key_credentials {
        Some(list) => key_changes(list, &existing_keys, crate::clock::now()).or_fail(&caller)?,
        None => KeyCredentialChanges::default(),
    };
    let after_preview = to_json(&app.public_url, &after, &[], &[]);
    let audit = caller.audit(
        "Update application",
        "Application",
        &before.id.to_string(),
        Some(&before_json),
        Some(&after_preview),
    );
    let version = app.store.update_application(&after, expected, &keys, &audit).await.or_fail(&caller)?;
    Ok(no_content(Some(version)))
}

pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> AdminResult {
    caller.require(Permission::WriteApplications).or_fail(&caller)?;
    let expected = super::if_match(&headers).or_fail(&caller)?;
    let application = load(&app, &caller, &id).await?;
    let before = full_json(&app, &application).await.or_fail(&caller)?;
    let audit = caller.audit("Delete application", "Application", &application.id.to_string(), Some(&before), None);
    app.store.delete_application(&application, expected, &audit).await.or_fail(&caller)?;
    Ok(no_content(None))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AddPasswordBody {
    password_credential: Option<PasswordCredentialBody>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PasswordCredentialBody {
    display_name: Option<String>,
    start_date_time: Option<String>,
    end_date_time: Option<String>,
}

pub async fn add_password(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> AdminResult {
    caller.require(Permission::WriteApplications).or_fail(&caller)?;
    let body: AddPasswordBody =
        if body.is_empty() { AddPasswordBody::default() } else { parse_body(&body).or_fail(&caller)? };
    let application = load(&app, &caller, &id).await?;
    let tenant = app.store.tenant_policy(&caller.tenant_id).await.or_fail(&caller)?;
    if tenant.block_password_credentials {
        return Err(GraphError::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "The tenant's policy blocks adding client secrets (passwordCredentials): use a federated identity \
             credential or a certificate instead.",
        ))
        .or_fail(&caller);
    }
    let requested = body.password_credential.unwrap_or_default();
    let now = crate::clock::now();
    let start_at = match &requested.start_date_time {
        Some(text) => super::parse_datetime(text).or_fail(&caller)?,
        None => now,
    };
    let end_at = match &requested.end_date_time {
        Some(text) => super::parse_datetime(text).or_fail(&caller)?,
        None => start_at + DEFAULT_SECRET_LIFETIME_SECS,
    };
    if end_at <= start_at || end_at - start_at > MAX_SECRET_LIFETIME_SECS {
        return Err(GraphError::bad_request("endDateTime must be after startDateTime and at most two years later."))
            .or_fail(&caller);
    }
    let secret = generate_client_secret();
    let credential = NewPasswordCredential {
        key_id: Uuid::new_v4().to_string(),
        application_id: application.id.to_string(),
        display_name: requested.display_name.clone(),
        hint: secret[..3].to_string(),
        secret_hash: app.master_key.hash_secret(&secret),
        start_at,
        end_at,
    };
    let public = json!({
        "keyId": credential.key_id,
        "displayName": credential.display_name,
        "hint": credential.hint,
        "startDateTime": datetime(start_at),
        "endDateTime": datetime(end_at),
    });
    let audit = caller.audit("Add client secret", "Application", &application.id.to_string(), None, Some(&public));
    app.store.add_password_credential(&credential, &audit).await.or_fail(&caller)?;
    let mut body = public;
    body["@odata.context"] = json!(format!("{}/v1.0/$metadata#microsoft.graph.passwordCredential", app.public_url));
    body["secretText"] = json!(secret);
    Ok(json_response(StatusCode::OK, body, None))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RemovePasswordBody {
    key_id: Uuid,
}

pub async fn remove_password(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> AdminResult {
    caller.require(Permission::WriteApplications).or_fail(&caller)?;
    let body: RemovePasswordBody = parse_body(&body).or_fail(&caller)?;
    let application = load(&app, &caller, &id).await?;
    let audit = caller.audit(
        "Remove client secret",
        "Application",
        &application.id.to_string(),
        Some(&json!({ "keyId": body.key_id })),
        None,
    );
    let removed = app.store.remove_password_credential(&application.id, &body.key_id, &audit).await.or_fail(&caller)?;
    if !removed {
        return Err(GraphError::not_found("passwordCredential", &body.key_id.to_string())).or_fail(&caller);
    }
    Ok(no_content(None))
}

/// Applies a create/update body to `app`, validating every field.
/// `previous_roles` guards Graph's rule that an enabled role cannot be removed.
fn apply_body(app: &mut Application, body: &ApplicationBody, previous_roles: &[AppRole]) -> Result<(), GraphError> {
    fn bad(message: impl Into<String>) -> GraphError {
        GraphError::bad_request(message)
    }
    if let Some(name) = &body.display_name {
        validation::display_name(name).map_err(bad)?;
        app.display_name = name.clone();
    }
    match &body.description {
        None => {}
        Some(Value::Null) => app.description = None,
        Some(Value::String(text)) if text.chars().count() <= 1024 => app.description = Some(text.clone()),
        Some(_) => {
            return Err(bad("description must be a string of at most 1024 characters."));
        }
    }
    if let Some(audience) = &body.sign_in_audience {
        if audience != SINGLE_TENANT && audience != MULTI_TENANT {
            return Err(bad(format!(
                "signInAudience must be '{SINGLE_TENANT}' (single tenant) or '{MULTI_TENANT}' (multi-tenant)."
            )));
        }
        app.sign_in_audience = audience.clone();
    }
    if let Some(uris) = &body.identifier_uris {
        let mut seen = std::collections::HashSet::new();
        for uri in uris {
            validation::identifier_uri(uri).map_err(bad)?;
            if !seen.insert(uri) {
                return Err(bad(format!("The identifier URI '{uri}' is listed twice.")));
            }
            if crate::directory::builtin::by_identifier(uri).is_some() {
                return Err(bad(format!("The identifier URI '{uri}' is reserved for a built-in resource.")));
            }
        }
        app.identifier_uris = uris.clone();
    }
    if let Some(api) = &body.api {
        match api.requested_access_token_version {
            None | Some(1) | Some(2) => app.requested_token_version = api.requested_access_token_version,
            Some(_) => return Err(bad("api.requestedAccessTokenVersion must be 1, 2 or null.")),
        }
    }
    if let Some(roles) = &body.app_roles {
        let mut ids = std::collections::HashSet::new();
        let mut values = std::collections::HashSet::new();
        let mut new_roles = Vec::with_capacity(roles.len());
        for role in roles {
            let value = role.value.clone().ok_or_else(|| bad("Each app role needs a value."))?;
            validation::app_role_value(&value).map_err(bad)?;
            let allowed = role.allowed_member_types.clone().unwrap_or_else(|| vec!["Application".to_string()]);
            if allowed != ["Application"] {
                return Err(bad(format!(
                    "App role '{value}': allowedMemberTypes must be [\"Application\"]; wisp issues app-only tokens."
                )));
            }
            let id = role.id.unwrap_or_else(Uuid::new_v4);
            if !ids.insert(id) || !values.insert(value.clone()) {
                return Err(bad(format!("App role ids and values must be unique; '{value}' repeats one.")));
            }
            new_roles.push(AppRole {
                id,
                value,
                display_name: role.display_name.clone().unwrap_or_default(),
                description: role.description.clone().unwrap_or_default(),
                allowed_member_types: allowed,
                is_enabled: role.is_enabled.unwrap_or(true),
            });
        }
        for old in previous_roles.iter().filter(|r| r.is_enabled) {
            if !new_roles.iter().any(|r| r.id == old.id) {
                return Err(GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "CannotDeleteOrUpdateEnabledEntitlement",
                    format!("App role '{}' must be disabled (isEnabled: false) before it can be removed.", old.value),
                ));
            }
        }
        app.app_roles = new_roles;
    }
    Ok(())
}

/// Graph's PATCH of `keyCredentials` replaces the set: entries with a `key` are
/// new certificates, entries with only a `keyId` keep an existing one, and
/// existing ones not listed are removed.
fn key_changes(
    list: &[KeyCredentialBody],
    existing: &[KeyCredentialInfo],
    now: i64,
) -> Result<KeyCredentialChanges, GraphError> {
    fn bad(message: impl Into<String>) -> GraphError {
        GraphError::bad_request(message)
    }
    let mut changes = KeyCredentialChanges::default();
    let mut kept = Vec::new();
    for entry in list {
        match (&entry.key, entry.key_id) {
            (None, Some(key_id)) => {
                if !existing.iter().any(|k| k.key_id == key_id) {
                    return Err(bad(format!("keyCredentials: no certificate with keyId {key_id} to keep.")));
                }
                kept.push(key_id);
            }
            (None, None) => {
                return Err(bad("keyCredentials: each entry needs a key (new) or a keyId (kept)."));
            }
            (Some(text), _) => {
                if entry.kind.as_deref().is_some_and(|k| k != "AsymmetricX509Cert")
                    || entry.usage.as_deref().is_some_and(|u| u != "Verify")
                {
                    return Err(bad(
                        "keyCredentials: only type 'AsymmetricX509Cert' with usage 'Verify' is supported.",
                    ));
                }
                let der = parse_certificate(text).map_err(bad)?;
                let start_at = match &entry.start_date_time {
                    Some(t) => super::parse_datetime(t)?,
                    None => now,
                };
                let end_at = match &entry.end_date_time {
                    Some(t) => super::parse_datetime(t)?,
                    None => start_at + 365 * 86400,
                };
                if end_at <= start_at {
                    return Err(bad("keyCredentials: endDateTime must be after startDateTime."));
                }
                let info = KeyCredentialInfo {
                    key_id: entry.key_id.unwrap_or_else(Uuid::new_v4),
                    display_name: entry.display_name.clone(),
                    thumbprint_sha1: x5t_sha1(&der),
                    thumbprint_sha256: x5t_sha256(&der),
                    start_at,
                    end_at,
                };
                if existing
                    .iter()
                    .chain(changes.add.iter().map(|(k, _)| k))
                    .any(|k| k.thumbprint_sha1 == info.thumbprint_sha1)
                {
                    return Err(bad("keyCredentials: this certificate is already present."));
                }
                changes.add.push((info, der));
            }
        }
    }
    changes.remove = existing.iter().filter(|k| !kept.contains(&k.key_id)).map(|k| k.key_id).collect();
    Ok(changes)
}
