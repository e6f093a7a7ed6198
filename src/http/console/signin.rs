//! Signing in (a client-credentials request for the admin API) and out.

use super::forms::*;

#[derive(Template)]
#[template(path = "console/signin.html")]
pub(super) struct SigninPage {
    error: Option<String>,
    tenant: String,
    client_id: String,
}

pub async fn home(_console: Console) -> Response {
    to("/console/applications".into())
}

pub async fn signin_form() -> Response {
    page(StatusCode::OK, &SigninPage { error: None, tenant: String::new(), client_id: String::new() })
}

/// Signing in is a client-credentials request for the admin API, judged and
/// logged exactly as the token endpoint would.
pub async fn signin(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    context: RequestContext,
    headers: HeaderMap,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(refused) = cross_origin(&app, &headers) {
        return refused;
    }
    let tenant = field(&form, "tenant").to_string();
    let client_id = field(&form, "client_id").to_string();
    let request = crate::token::TokenRequest {
        grant_type: Some("client_credentials".into()),
        client_id: Some(client_id.clone()),
        client_secret: Some(form.get("client_secret").cloned().unwrap_or_default()),
        scope: Some("api://wisp-admin/.default".into()),
        ..Default::default()
    };
    let mut record = crate::signin::SignInRecord {
        correlation_id: context.correlation_id,
        client_ip: Some(peer.ip().to_string()),
        ..Default::default()
    };
    let refused = |message: &str| {
        page(
            StatusCode::UNAUTHORIZED,
            &SigninPage { error: Some(message.to_string()), tenant: tenant.clone(), client_id: client_id.clone() },
        )
    };
    let issued = crate::token::issue(
        &app,
        &tenant,
        crate::token::Endpoint::V2,
        &request,
        None,
        crate::clock::now(),
        &mut record,
    )
    .await;
    match issued {
        Ok(issued) => {
            if app.sign_ins.record_grant(record, &issued.claims.uti).await.is_err() {
                return message_page(StatusCode::SERVICE_UNAVAILABLE, "The service is temporarily unavailable.");
            }
            if issued.claims.roles.is_empty() {
                return refused("This application holds no role on the admin API, so it cannot administer the tenant.");
            }
            let tenant_id = issued.claims.tid.clone();
            let app_id = issued.claims.azp.clone().or(issued.claims.appid.clone()).unwrap_or_default();
            let expires = crate::clock::now() + issued.expires_in;
            match super::start_session(&app, &tenant_id, &app_id, &issued.claims.roles, expires).await {
                Ok(response) => response,
                Err(e) => {
                    tracing::error!(error = %e, "cannot store a console session");
                    message_page(StatusCode::SERVICE_UNAVAILABLE, "The service is temporarily unavailable.")
                }
            }
        }
        Err(refusal) => {
            let error = crate::http::token::entra_error(refusal);
            if !record.tenant_id.is_empty() {
                app.sign_ins.record_refusal(record, error.code).await;
            }
            refused("The tenant, client id or secret is not valid (the sign-in log has the details).")
        }
    }
}

pub async fn signout(State(app): State<AppState>, console: Console, Form(form): Form<FormData>) -> Response {
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    super::end_session(&app, &console).await
}
