//! Tenants, for the bootstrap tenant's administrators: list and create (the
//! new tenant's first credential is shown once).

use super::forms::*;

#[derive(Template)]
#[template(path = "console/tenants.html")]
pub(super) struct TenantsPage {
    chrome: Chrome,
    tenants: Vec<(String, String)>,
    error: Option<String>,
    created: Option<(String, String, String)>,
}

pub(super) async fn tenants_page(
    app: &AppState,
    console: &Console,
    error: Option<Failure>,
    created: Option<(String, String, String)>,
) -> Response {
    let listed = api(tenants::list(State(app.clone()), console.caller.clone()).await).await;
    if !listed.ok() {
        return page(
            listed.status,
            &TenantsPage {
                chrome: console.chrome("tenants"),
                tenants: Vec::new(),
                error: Some(listed.message()),
                created: None,
            },
        );
    }
    let tenants = list_of(&listed).iter().map(|t| (text(&t["id"]), text(&t["displayName"]))).collect();
    let (status, error) = split(error);
    page(status, &TenantsPage { chrome: console.chrome("tenants"), tenants, error, created })
}

pub async fn tenants(State(app): State<AppState>, console: Console) -> Response {
    let created = console
        .take_flash(&app)
        .await
        .filter(|f| f["tenant"].is_string())
        .map(|f| (text(&f["tenant"]), text(&f["clientId"]), text(&f["clientSecret"])));
    tenants_page(&app, &console, None, created).await
}

pub async fn create_tenant(State(app): State<AppState>, console: Console, Form(form): Form<FormData>) -> Response {
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    let body = json!({"displayName": field(&form, "name")});
    let reply = api(tenants::create(State(app.clone()), console.caller.clone(), json_body(&body)).await).await;
    if !reply.ok() {
        return tenants_page(&app, &console, Some(reply.failure()), None).await;
    }
    let credential = &reply.body["adminCredential"];
    let shown_once = json!({"tenant": reply.body["id"], "clientId": credential["clientId"],
                            "clientSecret": credential["clientSecret"]});
    if let Err(e) = console.flash(&app, &shown_once).await {
        tracing::error!(error = %e, "cannot keep a new tenant's credential for its page");
        let created = (text(&reply.body["id"]), text(&credential["clientId"]), text(&credential["clientSecret"]));
        return tenants_page(&app, &console, None, Some(created)).await;
    }
    to("/console/tenants".into())
}
