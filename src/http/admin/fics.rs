//! `/v1.0/applications/{id}/federatedIdentityCredentials`: Graph's
//! federatedIdentityCredential, with Graph's rules (name 3–120 characters and
//! immutable, exactly one audience, issuer+subject unique per owner, at most
//! `max_fics_per_owner` per owner). A change is in the database when the
//! response is sent, so the next token request on any process sees it.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    AdminError, AdminResult, Caller, GraphError, ListQuery, OrFail, Permission, json_response, no_content, parse_body,
};
use crate::app::AppState;
use crate::directory::{ClaimsExpression, FederatedCredential, validation};
use crate::store::FicOwner;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FicBody {
    #[serde(rename = "@odata.type")]
    _odata_type: Option<String>,
    #[serde(rename = "id")]
    _id: Option<String>,
    name: Option<String>,
    issuer: Option<String>,
    /// A string, or null when an expression decides.
    #[serde(default, deserialize_with = "explicit")]
    subject: Option<Value>,
    audiences: Option<Vec<String>>,
    description: Option<Value>,
    /// `{"value": "...", "languageVersion": 1|2}`, or null.
    #[serde(default, deserialize_with = "explicit")]
    claims_matching_expression: Option<Value>,
}

/// Keeps an explicit `null` as `Some(Value::Null)` (absent stays `None`), so
/// PATCH can clear a field.
fn explicit<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExpressionBody {
    value: String,
    language_version: Option<i32>,
}

/// Compiles a `claimsMatchingExpression` body (checked at write time, with the
/// position of any error).
fn compile_expression(body: &Value) -> Result<ClaimsExpression, GraphError> {
    let parsed: ExpressionBody = serde_json::from_value(body.clone()).map_err(|_| {
        GraphError::bad_request("claimsMatchingExpression must be {\"value\": \"...\", \"languageVersion\": 1 or 2}.")
    })?;
    let language_version = parsed.language_version.unwrap_or(1);
    let compiled = crate::federation::expression::compile(&parsed.value, language_version)
        .map_err(|e| GraphError::bad_request(format!("claimsMatchingExpression: {e}.")))?;
    Ok(ClaimsExpression { value: parsed.value, language_version, compiled })
}

fn to_json(context: &str, fic: &FederatedCredential) -> Value {
    json!({
        "@odata.context": context,
        "@odata.etag": super::etag(fic.version),
        "id": fic.id,
        "name": fic.name,
        "issuer": fic.issuer,
        "subject": fic.subject,
        "claimsMatchingExpression": fic.expression.as_ref().map(|e| json!({"value": e.value, "languageVersion": e.language_version})),
        "description": fic.description,
        "audiences": fic.audiences,
    })
}

/// The owner a FIC request addresses: kind, id, and the `@odata.context` stem.
struct Owner {
    kind: FicOwner,
    id: Uuid,
    context: String,
}

async fn application_owner(app: &AppState, caller: &Caller, id: &str) -> Result<Owner, AdminError> {
    let application = super::applications::load(app, caller, id).await?;
    Ok(Owner {
        kind: FicOwner::Application,
        id: application.id,
        context: format!(
            "{}/v1.0/$metadata#applications('{}')/federatedIdentityCredentials",
            app.public_url, application.id
        ),
    })
}

async fn identity_owner(app: &AppState, caller: &Caller, id: &str) -> Result<Owner, AdminError> {
    let identity = super::identities::load_identity(app, caller, id).await?;
    Ok(Owner {
        kind: FicOwner::ManagedIdentity,
        id: identity.id,
        context: format!(
            "{}/v1.0/$metadata#managedIdentities('{}')/federatedIdentityCredentials",
            app.public_url, identity.id
        ),
    })
}

async fn find(app: &AppState, caller: &Caller, owner: &Owner, fic: &str) -> Result<FederatedCredential, AdminError> {
    app.store
        .federated_credential(&owner.id, fic)
        .await
        .or_fail(caller)?
        .ok_or_else(|| GraphError::not_found("federatedIdentityCredential", fic))
        .or_fail(caller)
}

/// Validates the fields of a create or update.
fn validate(fic: &FederatedCredential) -> Result<(), GraphError> {
    let bad = GraphError::bad_request;
    validation::fic_issuer(&fic.issuer).map_err(bad)?;
    match (&fic.subject, &fic.expression) {
        (Some(subject), None) => validation::fic_subject(subject).map_err(bad)?,
        (None, Some(_)) => {}
        _ => return Err(bad("Give exactly one of subject and claimsMatchingExpression.".into())),
    }
    validation::fic_audiences(&fic.audiences).map_err(bad)?;
    if let Some(description) = &fic.description {
        validation::fic_description(description).map_err(bad)?;
    }
    Ok(())
}

/// Write-time advice for a credential (the write still succeeds).
fn lints(fic: &FederatedCredential) -> Vec<String> {
    let everything =
        fic.expression.as_ref().is_some_and(|e| crate::federation::expression::matches_everything(&e.compiled));
    validation::fic_lints(&fic.issuer, fic.subject.as_deref(), everything)
}

/// When the issuer is reachable (under the same policy as token exchanges, and
/// within three seconds), compares it with the issuer its discovery document
/// names: tokens carry that one, so a trailing slash or whitespace the issuer
/// does not use would make the credential never match.
async fn discovery_lint(app: &AppState, caller: &Caller, fic: &FederatedCredential) -> Option<String> {
    if fic.issuer == app.keys.issuer(&caller.tenant_id) {
        return None;
    }
    let lookup = app.issuers.discovered_issuer(&fic.issuer);
    let named = tokio::time::timeout(std::time::Duration::from_secs(3), lookup).await.ok()?.ok()??;
    (named != fic.issuer).then(|| {
        format!(
            "The issuer's discovery document names the issuer '{}', which its tokens carry; this credential expects '{}' \
             and will not match them.",
            validation::shorten(&named),
            validation::shorten(&fic.issuer)
        )
    })
}

/// Graph's rule for an issuer that is this directory itself (a managed identity
/// as the credential): the subject must be the object id of a service principal
/// in this tenant, and another wisp tenant's issuer is refused (identity and
/// application must share a tenant).
async fn check_own_issuer(app: &AppState, caller: &Caller, fic: &FederatedCredential) -> Result<(), AdminError> {
    let own = app.keys.issuer(&caller.tenant_id);
    if fic.issuer == own {
        let Some(subject) = &fic.subject else {
            return Err(GraphError::bad_request(
                "A credential whose issuer is this tenant (a managed identity) needs a subject, not an expression.",
            ))
            .or_fail(caller);
        };
        let principal = Uuid::try_parse(subject).ok();
        let exists = match principal {
            Some(id) => app.store.service_principal(&caller.tenant_id, &id).await.or_fail(caller)?.is_some(),
            None => false,
        };
        if !exists {
            return Err(GraphError::bad_request(format!(
                "The subject '{}' must be the object (principal) id of a managed identity in this tenant when the \
                 issuer is this tenant.",
                validation::shorten(subject)
            )))
            .or_fail(caller);
        }
        return Ok(());
    }
    let other_tenant = fic
        .issuer
        .strip_prefix(&format!("{}/", app.public_url))
        .and_then(|rest| rest.strip_suffix("/v2.0"))
        .and_then(crate::directory::parse_tenant_id);
    if other_tenant.is_some() {
        return Err(GraphError::bad_request(
            "A managed identity used as a federated credential must be in the same tenant as the object that trusts it.",
        ))
        .or_fail(caller);
    }
    Ok(())
}

fn description(value: &Option<Value>, current: Option<String>) -> Result<Option<String>, GraphError> {
    match value {
        None => Ok(current),
        Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(GraphError::bad_request("description must be a string.")),
    }
}

/// `$filter` on a FIC list: `name`, `issuer` or `subject`.
const FILTERABLE: &[(&str, &str)] = &[("name", "name"), ("issuer", "issuer"), ("subject", "subject")];

async fn list(app: AppState, caller: Caller, owner: Owner, query: ListQuery) -> AdminResult {
    let filter = match &query.filter {
        Some(text) => Some(super::parse_filter(text, FILTERABLE).or_fail(&caller)?),
        None => None,
    };
    let keep = |f: &FederatedCredential| match &filter {
        None => true,
        Some(filter) => {
            let field = match filter.column {
                "name" => f.name.as_str(),
                "issuer" => f.issuer.as_str(),
                _ => f.subject.as_deref().unwrap_or_default(),
            };
            match filter.op {
                crate::store::FilterOp::Eq => field == filter.value,
                crate::store::FilterOp::StartsWith => field.starts_with(&filter.value),
            }
        }
    };
    let fics = app.store.federated_credentials(&owner.id).await.or_fail(&caller)?;
    let values: Vec<Value> = fics
        .iter()
        .filter(|f| keep(f))
        .map(|f| {
            let mut v = to_json("", f);
            v.as_object_mut().expect("object").remove("@odata.context");
            v
        })
        .collect();
    Ok(json_response(StatusCode::OK, json!({ "@odata.context": owner.context, "value": values }), None))
}

async fn create(app: AppState, caller: Caller, owner: Owner, body: Bytes) -> AdminResult {
    let body: FicBody = parse_body(&body).or_fail(&caller)?;
    let required = |field: &Option<String>, name: &str| {
        field.clone().ok_or_else(|| GraphError::bad_request(format!("{name} is required.")))
    };
    let name = required(&body.name, "name").or_fail(&caller)?;
    validation::fic_name(&name).map_err(GraphError::bad_request).or_fail(&caller)?;
    let fic = FederatedCredential {
        id: Uuid::new_v4(),
        owner_id: owner.id,
        name,
        issuer: required(&body.issuer, "issuer").or_fail(&caller)?,
        subject: match &body.subject {
            Some(Value::String(subject)) => Some(subject.clone()),
            None | Some(Value::Null) => None,
            Some(_) => return Err(GraphError::bad_request("subject must be a string.")).or_fail(&caller),
        },
        expression: match &body.claims_matching_expression {
            Some(Value::Null) | None => None,
            Some(expression) => Some(compile_expression(expression).or_fail(&caller)?),
        },
        audiences: body.audiences.clone().unwrap_or_else(|| vec![validation::TOKEN_EXCHANGE_AUDIENCE.to_string()]),
        description: description(&body.description, None).or_fail(&caller)?,
        version: 1,
        created_at: crate::clock::now(),
    };
    validate(&fic).or_fail(&caller)?;
    check_own_issuer(&app, &caller, &fic).await?;
    let mut value = to_json(&format!("{}/$entity", owner.context), &fic);
    let audit = caller.audit(
        "Add federated identity credential",
        "FederatedIdentityCredential",
        &fic.id.to_string(),
        None,
        Some(&value),
    );
    app.store
        .create_federated_credential(owner.kind, &caller.tenant_id, &fic, app.max_fics_per_owner, &audit)
        .await
        .or_fail(&caller)?;
    let mut warnings = lints(&fic);
    warnings.extend(discovery_lint(&app, &caller, &fic).await);
    value["warnings"] = json!(warnings);
    Ok(json_response(StatusCode::CREATED, value, Some(fic.version)))
}

async fn update(
    app: AppState,
    caller: Caller,
    owner: Owner,
    fic: String,
    headers: HeaderMap,
    body: Bytes,
) -> AdminResult {
    let expected = super::if_match(&headers).or_fail(&caller)?;
    let body: FicBody = parse_body(&body).or_fail(&caller)?;
    let before = find(&app, &caller, &owner, &fic).await?;
    if body.name.as_ref().is_some_and(|n| *n != before.name) {
        return Err(GraphError::bad_request("The name of a federated identity credential cannot be changed."))
            .or_fail(&caller);
    }
    let mut after = before.clone();
    if let Some(issuer) = &body.issuer {
        after.issuer = issuer.clone();
    }
    match &body.subject {
        None => {}
        Some(Value::String(subject)) => {
            after.subject = Some(subject.clone());
            if body.claims_matching_expression.is_none() {
                after.expression = None;
            }
        }
        Some(Value::Null) => after.subject = None,
        Some(_) => return Err(GraphError::bad_request("subject must be a string.")).or_fail(&caller),
    }
    match &body.claims_matching_expression {
        None => {}
        Some(Value::Null) => after.expression = None,
        Some(expression) => {
            after.expression = Some(compile_expression(expression).or_fail(&caller)?);
            if body.subject.is_none() {
                after.subject = None;
            }
        }
    }
    if let Some(audiences) = &body.audiences {
        after.audiences = audiences.clone();
    }
    after.description = description(&body.description, before.description.clone()).or_fail(&caller)?;
    validate(&after).or_fail(&caller)?;
    check_own_issuer(&app, &caller, &after).await?;
    let audit = caller.audit(
        "Update federated identity credential",
        "FederatedIdentityCredential",
        &before.id.to_string(),
        Some(&to_json("", &before)),
        Some(&to_json("", &after)),
    );
    app.store.update_federated_credential(&after, expected, &audit).await.or_fail(&caller)?;
    let mut response = no_content(Some(before.version + 1));
    // PATCH answers 204 as Graph does; advice rides in RFC 7234 Warning headers.
    let mut warnings = lints(&after);
    if after.issuer != before.issuer {
        warnings.extend(discovery_lint(&app, &caller, &after).await);
    }
    for warning in warnings {
        let ascii: String = warning.chars().map(|c| if c.is_ascii() && c != '"' { c } else { '\'' }).collect();
        let text = format!("299 wisp \"{ascii}\"");
        if let Ok(value) = axum::http::HeaderValue::from_str(&text) {
            response.headers_mut().append(axum::http::header::WARNING, value);
        }
    }
    Ok(response)
}

async fn delete(app: AppState, caller: Caller, owner: Owner, fic: String, headers: HeaderMap) -> AdminResult {
    let expected = super::if_match(&headers).or_fail(&caller)?;
    let existing = find(&app, &caller, &owner, &fic).await?;
    let audit = caller.audit(
        "Delete federated identity credential",
        "FederatedIdentityCredential",
        &existing.id.to_string(),
        Some(&to_json("", &existing)),
        None,
    );
    app.store.delete_federated_credential(&existing, expected, &audit).await.or_fail(&caller)?;
    Ok(no_content(None))
}

pub async fn list_for_application(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> AdminResult {
    caller.require(Permission::ReadApplications).or_fail(&caller)?;
    let owner = application_owner(&app, &caller, &id).await?;
    list(app, caller, owner, query).await
}

pub async fn create_for_application(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> AdminResult {
    caller.require(Permission::WriteApplications).or_fail(&caller)?;
    let owner = application_owner(&app, &caller, &id).await?;
    create(app, caller, owner, body).await
}

pub async fn get_for_application(
    State(app): State<AppState>,
    caller: Caller,
    Path((id, fic)): Path<(String, String)>,
) -> AdminResult {
    caller.require(Permission::ReadApplications).or_fail(&caller)?;
    let owner = application_owner(&app, &caller, &id).await?;
    let found = find(&app, &caller, &owner, &fic).await?;
    Ok(json_response(StatusCode::OK, to_json(&format!("{}/$entity", owner.context), &found), Some(found.version)))
}

pub async fn update_for_application(
    State(app): State<AppState>,
    caller: Caller,
    Path((id, fic)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> AdminResult {
    caller.require(Permission::WriteApplications).or_fail(&caller)?;
    let owner = application_owner(&app, &caller, &id).await?;
    update(app, caller, owner, fic, headers, body).await
}

pub async fn delete_for_application(
    State(app): State<AppState>,
    caller: Caller,
    Path((id, fic)): Path<(String, String)>,
    headers: HeaderMap,
) -> AdminResult {
    caller.require(Permission::WriteApplications).or_fail(&caller)?;
    let owner = application_owner(&app, &caller, &id).await?;
    delete(app, caller, owner, fic, headers).await
}

pub async fn list_for_identity(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> AdminResult {
    caller.require(Permission::ReadDirectory).or_fail(&caller)?;
    let owner = identity_owner(&app, &caller, &id).await?;
    list(app, caller, owner, query).await
}

pub async fn create_for_identity(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> AdminResult {
    caller.require(Permission::WriteDirectory).or_fail(&caller)?;
    let owner = identity_owner(&app, &caller, &id).await?;
    create(app, caller, owner, body).await
}

pub async fn get_for_identity(
    State(app): State<AppState>,
    caller: Caller,
    Path((id, fic)): Path<(String, String)>,
) -> AdminResult {
    caller.require(Permission::ReadDirectory).or_fail(&caller)?;
    let owner = identity_owner(&app, &caller, &id).await?;
    let found = find(&app, &caller, &owner, &fic).await?;
    Ok(json_response(StatusCode::OK, to_json(&format!("{}/$entity", owner.context), &found), Some(found.version)))
}

pub async fn update_for_identity(
    State(app): State<AppState>,
    caller: Caller,
    Path((id, fic)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> AdminResult {
    caller.require(Permission::WriteDirectory).or_fail(&caller)?;
    let owner = identity_owner(&app, &caller, &id).await?;
    update(app, caller, owner, fic, headers, body).await
}

pub async fn delete_for_identity(
    State(app): State<AppState>,
    caller: Caller,
    Path((id, fic)): Path<(String, String)>,
    headers: HeaderMap,
) -> AdminResult {
    caller.require(Permission::WriteDirectory).or_fail(&caller)?;
    let owner = identity_owner(&app, &caller, &id).await?;
    delete(app, caller, owner, fic, headers).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EvaluateBody {
    assertion: String,
    #[serde(default = "yes")]
    verify_signature: bool,
}

fn yes() -> bool {
    true
}

async fn evaluate(app: AppState, caller: Caller, owner: Owner, body: Bytes) -> AdminResult {
    let body: EvaluateBody = parse_body(&body).or_fail(&caller)?;
    let credentials = app.store.federated_credentials(&owner.id).await.or_fail(&caller)?;
    let answer = crate::token::explain_assertion(
        &app,
        &caller.tenant_id,
        &credentials,
        &body.assertion,
        body.verify_signature,
        crate::clock::now(),
    )
    .await;
    Ok(json_response(StatusCode::OK, answer, None))
}

/// `POST /v1.0/applications/{id}/federatedIdentityCredentials/evaluate`: which
/// credential would accept this assertion, and why the others would not.
pub async fn evaluate_for_application(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> AdminResult {
    caller.require(Permission::ReadApplications).or_fail(&caller)?;
    let owner = application_owner(&app, &caller, &id).await?;
    evaluate(app, caller, owner, body).await
}

/// The same for a user-assigned managed identity's credentials.
pub async fn evaluate_for_identity(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> AdminResult {
    caller.require(Permission::ReadDirectory).or_fail(&caller)?;
    let owner = identity_owner(&app, &caller, &id).await?;
    evaluate(app, caller, owner, body).await
}
