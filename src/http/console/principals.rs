//! Enterprise applications: every service principal of the tenant, and
//! provisioning another tenant's multi-tenant application by its appId.

use super::forms::*;

pub(super) struct PrincipalRow {
    id: String,
    name: String,
    app_id: String,
    kind: String,
    owner: String,
    removable: bool,
}

#[derive(Template)]
#[template(path = "console/principals.html")]
pub(super) struct PrincipalsPage {
    chrome: Chrome,
    principals: Vec<PrincipalRow>,
    next: Option<String>,
    error: Option<String>,
}

pub(super) async fn principals_page(
    app: &AppState,
    console: &Console,
    after: &str,
    error: Option<Failure>,
) -> Response {
    let listed = api(principals::list(State(app.clone()), console.caller.clone(), page_query(None, after)).await).await;
    if !listed.ok() {
        return message_page(listed.status, &listed.message());
    }
    let next = next_page(&listed);
    let tenant = console.caller.tenant_id.to_string();
    let principals = list_of(&listed)
        .iter()
        .map(|sp| {
            let owner = text(&sp["appOwnerOrganizationId"]);
            PrincipalRow {
                id: text(&sp["id"]),
                name: text(&sp["displayName"]),
                app_id: text(&sp["appId"]),
                kind: text(&sp["servicePrincipalType"]),
                removable: sp["servicePrincipalType"] == "Application" && !owner.is_empty() && owner != tenant,
                owner: if owner == tenant {
                    "this tenant".into()
                } else if owner.is_empty() {
                    "built in".into()
                } else {
                    owner
                },
            }
        })
        .collect();
    let (status, error) = split(error);
    page(status, &PrincipalsPage { chrome: console.chrome("principals"), principals, next, error })
}

#[derive(serde::Deserialize, Default)]
pub struct After {
    #[serde(default)]
    after: String,
}

pub(super) async fn enterprise_applications(
    State(app): State<AppState>,
    console: Console,
    Query(after): Query<After>,
) -> Response {
    principals_page(&app, &console, after.after.trim(), None).await
}

pub(super) async fn provision(State(app): State<AppState>, console: Console, Form(form): Form<FormData>) -> Response {
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    let body = json!({"appId": field(&form, "app_id")});
    let reply = api(principals::create(State(app.clone()), console.caller.clone(), json_body(&body)).await).await;
    if !reply.ok() {
        return principals_page(&app, &console, "", Some(reply.failure())).await;
    }
    to("/console/enterprise-applications".into())
}

pub(super) async fn remove_principal(
    State(app): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    let reply = api(principals::delete(State(app.clone()), console.caller.clone(), Path(id)).await).await;
    if !reply.ok() {
        return principals_page(&app, &console, "", Some(reply.failure())).await;
    }
    to("/console/enterprise-applications".into())
}
