//! `/v1.0/tenants`: the bootstrap tenant's administrators create and list
//! tenants. A new tenant's first administrator credential is returned once.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::{AdminResult, Caller, GraphError, OrFail, Permission, datetime, json_response, parse_body};
use crate::app::AppState;
use crate::directory::validation;

/// 403 unless the caller is an administrator of the bootstrap tenant.
async fn require_bootstrap_tenant(app: &AppState, caller: &Caller) -> Result<(), super::AdminError> {
    let bootstrap = app.store.meta_get("bootstrap").await.or_fail(caller)?;
    if bootstrap.as_deref() != Some(caller.tenant_id.to_string().as_str()) {
        return Err(GraphError::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Only administrators of the bootstrap tenant may manage tenants.",
        ))
        .or_fail(caller);
    }
    Ok(())
}

pub async fn list(State(app): State<AppState>, caller: Caller) -> AdminResult {
    caller.require(Permission::ReadDirectory).or_fail(&caller)?;
    require_bootstrap_tenant(&app, &caller).await?;
    let tenants = app.store.tenants().await.or_fail(&caller)?;
    let values: Vec<_> = tenants
        .iter()
        .map(|t| json!({"id": t.id, "displayName": t.display_name, "createdDateTime": datetime(t.created_at)}))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        json!({"@odata.context": format!("{}/v1.0/$metadata#tenants", app.public_url), "value": values}),
        None,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    display_name: String,
}

pub async fn create(State(app): State<AppState>, caller: Caller, body: Bytes) -> AdminResult {
    caller.require(Permission::WriteDirectory).or_fail(&caller)?;
    require_bootstrap_tenant(&app, &caller).await?;
    let body: CreateBody = parse_body(&body).or_fail(&caller)?;
    validation::display_name(&body.display_name).map_err(GraphError::bad_request).or_fail(&caller)?;
    let now = crate::clock::now();
    // RSA key generation takes tens of milliseconds: keep it off the async workers.
    let worker = app.clone();
    let name = body.display_name.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        crate::bootstrap::prepare_tenant(&worker.keys, &worker.master_key, &name, now)
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))
    .and_then(|r| r)
    .map_err(|e| {
        tracing::error!(error = %e, "cannot prepare a tenant");
        GraphError::unavailable()
    })
    .or_fail(&caller)?;
    let public = json!({
        "id": prepared.tenant.id,
        "displayName": prepared.tenant.display_name,
        "createdDateTime": datetime(now),
        "adminClientId": prepared.admin_client_id,
    });
    let audit = caller.audit("Add tenant", "Tenant", &prepared.tenant.id.to_string(), None, Some(&public));
    app.store.create_tenant(&prepared.as_new_tenant(), Some(&audit)).await.or_fail(&caller)?;
    let body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#tenants/$entity", app.public_url),
        "id": prepared.tenant.id,
        "displayName": prepared.tenant.display_name,
        "createdDateTime": datetime(now),
        "adminCredential": {
            "clientId": prepared.admin_client_id,
            "clientSecret": prepared.admin_client_secret,
        },
    });
    Ok(json_response(StatusCode::CREATED, body, None))
}

/// `GET /v1.0/policies/appManagement`: the tenant's credential policy.
pub async fn get_policy(State(app): State<AppState>, caller: Caller) -> AdminResult {
    caller.require(Permission::ReadDirectory).or_fail(&caller)?;
    let policy = app.store.tenant_policy(&caller.tenant_id).await.or_fail(&caller)?;
    Ok(json_response(StatusCode::OK, json!({"blockPasswordCredentials": policy.block_password_credentials}), None))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PolicyBody {
    block_password_credentials: bool,
}

/// `PATCH /v1.0/policies/appManagement`: forbid (or allow again) new client secrets.
pub async fn update_policy(State(app): State<AppState>, caller: Caller, body: Bytes) -> AdminResult {
    caller.require(Permission::WriteDirectory).or_fail(&caller)?;
    let body: PolicyBody = parse_body(&body).or_fail(&caller)?;
    let before = app.store.tenant_policy(&caller.tenant_id).await.or_fail(&caller)?;
    let policy = crate::store::TenantPolicy { block_password_credentials: body.block_password_credentials };
    let audit = caller.audit(
        "Update app management policy",
        "Policy",
        &caller.tenant_id.to_string(),
        Some(&json!({"blockPasswordCredentials": before.block_password_credentials})),
        Some(&json!({"blockPasswordCredentials": policy.block_password_credentials})),
    );
    app.store.set_tenant_policy(&caller.tenant_id, &policy, &audit).await.or_fail(&caller)?;
    Ok(super::no_content(None))
}

/// `GET /v1.0/policies/tokenSigning`: the algorithm the tenant's tokens are signed with.
pub async fn get_token_signing(State(app): State<AppState>, caller: Caller) -> AdminResult {
    caller.require(Permission::ReadDirectory).or_fail(&caller)?;
    let algorithm = app.store.token_signing_algorithm(&caller.tenant_id).await.or_fail(&caller)?;
    let keys = app.keys.tenant(&caller.tenant_id).await.map_err(key_ring_failure).or_fail(&caller)?;
    Ok(json_response(
        StatusCode::OK,
        json!({
            "algorithm": algorithm,
            "signingKeyId": keys.as_ref().map(|k| k.current.kid().to_string()),
            "supportedAlgorithms": crate::signing::Algorithm::ALL.map(|a| a.as_str()),
        }),
        None,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenSigningBody {
    algorithm: String,
}

/// `PATCH /v1.0/policies/tokenSigning`: sign this tenant's tokens with RS256
/// (the default, Entra's), ES256 or EdDSA. Effective for the next token: the
/// keys are replaced before the answer (the old key stays published until its
/// tokens expire).
pub async fn update_token_signing(State(app): State<AppState>, caller: Caller, body: Bytes) -> AdminResult {
    caller.require(Permission::WriteDirectory).or_fail(&caller)?;
    let body: TokenSigningBody = parse_body(&body).or_fail(&caller)?;
    let Some(algorithm) = crate::signing::Algorithm::parse(&body.algorithm) else {
        return Err(GraphError::bad_request(format!(
            "algorithm must be one of RS256, ES256, EdDSA (got '{}')",
            crate::directory::validation::shorten(&body.algorithm)
        )))
        .or_fail(&caller);
    };
    let before = app.store.token_signing_algorithm(&caller.tenant_id).await.or_fail(&caller)?;
    if before != algorithm.as_str() {
        let audit = caller.audit(
            "Update token signing policy",
            "Policy",
            &caller.tenant_id.to_string(),
            Some(&json!({"algorithm": before})),
            Some(&json!({"algorithm": algorithm.as_str()})),
        );
        app.store.set_token_signing_algorithm(&caller.tenant_id, algorithm.as_str(), &audit).await.or_fail(&caller)?;
    }
    let now = crate::clock::now();
    let rekey = async {
        app.keys.maintain_tenant(&caller.tenant_id, now).await?;
        app.keys.refresh().await
    };
    rekey.await.map_err(key_ring_failure).or_fail(&caller)?;
    Ok(super::no_content(None))
}

fn key_ring_failure(error: crate::signing::KeyRingError) -> GraphError {
    tracing::error!(%error, "signing keys unavailable");
    GraphError::unavailable()
}
