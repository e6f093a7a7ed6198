//! `/v1.0/tenantConfiguration`: the tenant as a configuration file (GET), the
//! plan for a file (POST `…/plan`), and applying a file (POST `…/apply`): planned
//! and performed in one database transaction, so a failure half-way leaves the
//! tenant exactly as it was. `If-Match` with the plan's ETag applies only if the
//! plan is still the one reviewed.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminResult, Caller, GraphError, OrFail, Permission};
use crate::app::AppState;
use crate::declarative::{self, Manifest, Plan, PlanContext, Problem};
use crate::store::{DirectoryWrite, StoreError};

#[derive(Deserialize, Default)]
pub struct PlanQuery {
    /// `true`: delete objects an earlier apply created that the file no longer lists.
    #[serde(default)]
    prune: bool,
}

fn invalid(problems: Vec<Problem>) -> GraphError {
    let message = match problems.as_slice() {
        [one] => format!("{}. Nothing was applied.", one.to_string().trim_end_matches('.')),
        many => format!("The configuration has {} problems; nothing was applied.", many.len()),
    };
    let mut error = GraphError::new(StatusCode::BAD_REQUEST, "InvalidConfiguration", message);
    error.details = problems.into_iter().map(|p| (p.path, p.message)).collect();
    error
}

fn parse(body: &Bytes) -> Result<Manifest, GraphError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| GraphError::bad_request(format!("Invalid request body: {e}.")))?;
    declarative::manifest::from_value(value).map_err(|p| invalid(vec![p]))
}

fn context(app: &AppState, caller: &Caller, prune: bool) -> PlanContext {
    PlanContext {
        own_issuer: app.keys.issuer(&caller.tenant_id),
        public_url: app.public_url.clone(),
        max_fics_per_owner: app.max_fics_per_owner,
        prune,
        now: crate::clock::now(),
    }
}

fn plan_body(plan: &Plan, applied: bool) -> Response {
    let etag = plan.etag();
    let body = json!({
        "applied": applied,
        "changes": plan.changes,
        "notes": plan.notes,
        "etag": etag,
    });
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// GET: the live tenant as a configuration file (JSON; the CLI writes YAML).
pub async fn export(State(app): State<AppState>, caller: Caller) -> AdminResult {
    caller.require(Permission::ReadDirectory).or_fail(&caller)?;
    let snapshot = app.store.tenant_snapshot(&caller.tenant_id, &[]).await.or_fail(&caller)?;
    let manifest =
        declarative::export(&snapshot, &app.keys.issuer(&caller.tenant_id)).map_err(invalid).or_fail(&caller)?;
    Ok((StatusCode::OK, axum::Json(manifest)).into_response())
}

/// POST …/plan: what applying the file would change. Changes nothing.
pub async fn plan(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<PlanQuery>,
    body: Bytes,
) -> AdminResult {
    caller.require(Permission::ReadDirectory).or_fail(&caller)?;
    let manifest = parse(&body).or_fail(&caller)?;
    let snapshot =
        app.store.tenant_snapshot(&caller.tenant_id, &manifest.referenced_app_ids()).await.or_fail(&caller)?;
    let plan = declarative::plan(&manifest, &snapshot, &context(&app, &caller, query.prune))
        .map_err(invalid)
        .or_fail(&caller)?;
    Ok(plan_body(&plan, false))
}

/// POST …/apply: plans and performs the file in one transaction.
pub async fn apply(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<PlanQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> AdminResult {
    caller.require(Permission::WriteDirectory).or_fail(&caller)?;
    let manifest = parse(&body).or_fail(&caller)?;
    let expected = headers.get(header::IF_MATCH).map(|v| v.to_str().unwrap_or_default().trim().to_string());
    let mut batch = app.store.begin_batch().await.or_fail(&caller)?;
    let snapshot = batch.tenant_snapshot(&caller.tenant_id, &manifest.referenced_app_ids()).await.or_fail(&caller)?;
    let plan = declarative::plan(&manifest, &snapshot, &context(&app, &caller, query.prune))
        .map_err(invalid)
        .or_fail(&caller)?;
    if let Some(expected) = expected.filter(|e| e != "*")
        && expected.trim_start_matches("W/") != plan.etag()
    {
        return Err(GraphError::new(
            StatusCode::PRECONDITION_FAILED,
            "Request_PreconditionFailed",
            "The tenant changed since the plan was made (another administrator, or another apply); nothing was \
             applied. Review the new plan and apply again.",
        ))
        .or_fail(&caller);
    }
    if plan.writes.is_empty() && plan.forget.is_empty() {
        return Ok(plan_body(&plan, true));
    }
    for planned in &plan.writes {
        // Bookkeeping (which objects apply created) is not a directory change to audit.
        let audit = (!matches!(planned.write, DirectoryWrite::MarkApplied { .. })).then(|| {
            caller.audit(
                &planned.activity,
                planned.target_type,
                &planned.target_id.to_string(),
                planned.old.as_ref(),
                planned.new.as_ref(),
            )
        });
        if let Err(e) = batch.write(&planned.write, audit.as_ref()).await {
            return Err(failed_at(&planned.path, e)).or_fail(&caller);
        }
    }
    batch.forget_deleted(&caller.tenant_id, &plan.forget).await.or_fail(&caller)?;
    batch.commit().await.or_fail(&caller)?;
    Ok(plan_body(&plan, true))
}

/// A write that failed inside the transaction (which is rolled back): the
/// database's reason, at the place in the file that asked for it.
fn failed_at(path: &str, error: StoreError) -> GraphError {
    match error {
        StoreError::Conflict(message) => {
            let problem = Problem { path: path.to_string(), message: message.trim_end_matches('.').to_string() };
            invalid(vec![problem])
        }
        StoreError::PreconditionFailed | StoreError::NotFound => GraphError::new(
            StatusCode::PRECONDITION_FAILED,
            "Request_PreconditionFailed",
            "The tenant changed while the configuration was being applied; nothing was applied. Apply again.",
        ),
        other => GraphError::from(other),
    }
}
