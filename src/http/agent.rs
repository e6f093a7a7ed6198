//! The server side of `wisp agent`: `POST /agent/v1/enroll` (spend a join token,
//! register the agent's public key) and `POST /agent/v1/token` (a managed
//! identity token for an identity attached to the agent's resource, proven by
//! an assertion signed with the agent's key).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::context::RequestContext;
use crate::app::AppState;
use crate::managed_identity::{self, AgentRefusal, Selector};
use crate::signin::SignInRecord;
use crate::store::EnrollRefusal;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnrollBody {
    join_token: String,
    public_key: jsonwebtoken::jwk::Jwk,
}

pub async fn enroll(State(app): State<AppState>, context: RequestContext, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<EnrollBody>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "The body must be {joinToken, publicKey}.", &context);
    };
    match managed_identity::enroll(&app, &body.join_token, &body.public_key, crate::clock::now()).await {
        Ok(agent) => {
            tracing::info!(agent = %agent.id, resource = %agent.resource_id, tenant = %agent.tenant_id, "agent enrolled");
            (
                StatusCode::CREATED,
                Json(json!({
                    "agentId": agent.id, "tenantId": agent.tenant_id, "resourceId": agent.resource_id,
                })),
            )
                .into_response()
        }
        Err(refusal) => refusal_response(refusal, &context),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenBody {
    assertion: String,
    resource: String,
    client_id: Option<String>,
    object_id: Option<String>,
    msi_res_id: Option<String>,
}

pub async fn token(State(app): State<AppState>, context: RequestContext, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<TokenBody>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The body must be {assertion, resource, …}.",
            &context,
        );
    };
    let now = crate::clock::now();
    let (agent, resource) = match managed_identity::authenticate(&app, &body.assertion, now).await {
        Ok(found) => found,
        Err(refusal) => return refusal_response(refusal, &context),
    };
    let mut record = SignInRecord {
        tenant_id: agent.tenant_id.to_string(),
        correlation_id: context.correlation_id,
        resource: Some(body.resource.clone()),
        credential_type: Some("managedIdentity"),
        credential_id: Some(agent.id.to_string()),
        ..SignInRecord::default()
    };
    let selector = Selector { client_id: body.client_id, object_id: body.object_id, resource_id: body.msi_res_id };
    let issued = match managed_identity::select_identity(&app, &resource, &selector).await {
        Ok(identity) => {
            record.client_id = Some(identity.client_id.to_string());
            record.service_principal_id = Some(identity.principal_id.to_string());
            managed_identity::issue(&app, &resource, &identity, &body.resource, now).await.map(|i| (i, identity))
        }
        Err(refusal) => Err(refusal),
    };
    match issued {
        Ok((issued, identity)) => {
            if let Err(e) = app.sign_ins.record_grant(record, &issued.claims.uti).await {
                tracing::error!(error = %e, "sign-in log unavailable; managed identity token withheld");
                return error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "Retry later.", &context);
            }
            metrics::counter!("wisp_token_requests_total", "outcome" => "granted").increment(1);
            let mut response = Json(json!({
                "access_token": issued.access_token,
                "expires_in": issued.expires_in,
                "expires_on": issued.claims.exp,
                "not_before": issued.claims.nbf,
                "resource": body.resource,
                "token_type": "Bearer",
                "client_id": identity.client_id,
            }))
            .into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(refusal) => {
            metrics::counter!("wisp_token_requests_total", "outcome" => "refused").increment(1);
            let code = match &refusal {
                AgentRefusal::BadRequest(r) => super::token::entra_error(r.clone()).code,
                _ => 0,
            };
            app.sign_ins.record_refusal(record, code).await;
            refusal_response(refusal, &context)
        }
    }
}

fn refusal_response(refusal: AgentRefusal, context: &RequestContext) -> Response {
    match refusal {
        AgentRefusal::JoinToken(why) => {
            let message = match why {
                EnrollRefusal::Unknown => "The join token is not valid.",
                EnrollRefusal::Used => "The join token was already used.",
                EnrollRefusal::Expired => "The join token has expired.",
            };
            error(StatusCode::UNAUTHORIZED, "invalid_grant", message, context)
        }
        AgentRefusal::BadPublicKey => {
            error(StatusCode::BAD_REQUEST, "invalid_request", "publicKey must be an EC P-256 JWK.", context)
        }
        AgentRefusal::Unauthenticated(why) => error(StatusCode::UNAUTHORIZED, "invalid_client", &why, context),
        AgentRefusal::IdentityNotFound(why) => error(StatusCode::BAD_REQUEST, "invalid_request", &why, context),
        AgentRefusal::BadRequest(refusal) => {
            let entra = super::token::entra_error(refusal);
            let message = format!("AADSTS{}: {}", entra.code, entra.message);
            error(StatusCode::BAD_REQUEST, entra.error, &message, context)
        }
        AgentRefusal::Unavailable(why) => {
            tracing::error!(error = %why, correlation_id = %context.correlation_id, "agent request failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "Retry later.", context)
        }
    }
}

fn error(status: StatusCode, code: &str, message: &str, context: &RequestContext) -> Response {
    (status, Json(json!({"error": code, "error_description": message, "correlation_id": context.correlation_id})))
        .into_response()
}
