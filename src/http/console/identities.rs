//! Managed identities (with their federated credentials) and compute resources
//! (attached identities, agent join tokens).

use super::credentials::{FicRow, fic_rows};
use super::forms::*;

#[derive(Template)]
#[template(path = "console/identities.html")]
pub(super) struct IdentitiesPage {
    chrome: Chrome,
    identities: Vec<(String, String, String, String)>,
    error: Option<String>,
}

pub(super) async fn identities_page(app: &AppState, console: &Console, error: Option<Failure>) -> Response {
    let listed = api(identities::list_identities(State(app.clone()), console.caller.clone(), query(None)).await).await;
    if !listed.ok() {
        return message_page(listed.status, &listed.message());
    }
    let rows = list_of(&listed)
        .iter()
        .map(|i| (text(&i["id"]), text(&i["displayName"]), text(&i["clientId"]), text(&i["principalId"])))
        .collect();
    let (status, error) = split(error);
    page(status, &IdentitiesPage { chrome: console.chrome("identities"), identities: rows, error })
}

pub async fn identities(State(app): State<AppState>, console: Console) -> Response {
    identities_page(&app, &console, None).await
}

pub async fn create_identity(State(app): State<AppState>, console: Console, Form(form): Form<FormData>) -> Response {
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    let body = json!({"displayName": field(&form, "name")});
    let reply =
        api(identities::create_identity(State(app.clone()), console.caller.clone(), json_body(&body)).await).await;
    if !reply.ok() {
        return identities_page(&app, &console, Some(reply.failure())).await;
    }
    to(format!("/console/identities/{}", text(&reply.body["id"])))
}

#[derive(Template)]
#[template(path = "console/identity.html")]
pub(super) struct IdentityPage {
    chrome: Chrome,
    id: String,
    name: String,
    client_id: String,
    principal_id: String,
    fics: Vec<FicRow>,
    error: Option<String>,
}

pub(super) async fn identity_page(app: &AppState, console: &Console, id: &str, error: Option<Failure>) -> Response {
    let reply =
        api(identities::get_identity(State(app.clone()), console.caller.clone(), Path(id.to_string())).await).await;
    if !reply.ok() {
        return message_page(reply.status, &reply.message());
    }
    let listed =
        api(fics::list_for_identity(State(app.clone()), console.caller.clone(), Path(id.to_string()), query(None))
            .await)
        .await;
    let i = &reply.body;
    let (status, error) = split(error);
    page(
        status,
        &IdentityPage {
            chrome: console.chrome("identities"),
            id: text(&i["id"]),
            name: text(&i["displayName"]),
            client_id: text(&i["clientId"]),
            principal_id: text(&i["principalId"]),
            fics: fic_rows(&listed),
            error,
        },
    )
}

pub async fn identity(State(app): State<AppState>, console: Console, Path(id): Path<String>) -> Response {
    identity_page(&app, &console, &id, None).await
}

pub async fn delete_identity(
    State(app): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    let reply =
        api(identities::delete_identity(State(app.clone()), console.caller.clone(), Path(id.clone())).await).await;
    if !reply.ok() {
        return identity_page(&app, &console, &id, Some(reply.failure())).await;
    }
    to("/console/identities".into())
}

#[derive(Template)]
#[template(path = "console/resources.html")]
pub(super) struct ResourcesPage {
    chrome: Chrome,
    resources: Vec<(String, String, String)>,
    identities: Vec<(String, String)>,
    error: Option<String>,
}

pub(super) async fn identity_options(app: &AppState, console: &Console) -> Vec<(String, String)> {
    let listed = api(identities::list_identities(State(app.clone()), console.caller.clone(), query(None)).await).await;
    list_of(&listed).iter().map(|i| (text(&i["id"]), text(&i["displayName"]))).collect()
}

pub(super) fn identity_type(system: bool, user: bool) -> &'static str {
    match (system, user) {
        (true, true) => "SystemAssigned, UserAssigned",
        (true, false) => "SystemAssigned",
        (false, true) => "UserAssigned",
        (false, false) => "None",
    }
}

pub(super) async fn resources_page(app: &AppState, console: &Console, error: Option<Failure>) -> Response {
    let listed = api(identities::list_resources(State(app.clone()), console.caller.clone(), query(None)).await).await;
    if !listed.ok() {
        return message_page(listed.status, &listed.message());
    }
    let rows =
        list_of(&listed).iter().map(|r| (text(&r["id"]), text(&r["name"]), text(&r["identity"]["type"]))).collect();
    let identities = identity_options(app, console).await;
    let (status, error) = split(error);
    page(status, &ResourcesPage { chrome: console.chrome("resources"), resources: rows, identities, error })
}

pub async fn resources(State(app): State<AppState>, console: Console) -> Response {
    resources_page(&app, &console, None).await
}

/// The selected identities of a form (`identity` may repeat).
pub(super) fn selected(raw: &str) -> Vec<String> {
    form_urlencoded::parse(raw.as_bytes()).filter(|(k, _)| k == "identity").map(|(_, v)| v.into_owned()).collect()
}

pub async fn create_resource(State(app): State<AppState>, console: Console, body: axum::body::Bytes) -> Response {
    let raw = String::from_utf8_lossy(&body).to_string();
    let form: FormData = form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    let chosen = selected(&raw);
    let kind = identity_type(form.contains_key("system_assigned"), !chosen.is_empty());
    let body = json!({"name": field(&form, "name"), "identity": {"type": kind, "userAssignedIdentities": chosen}});
    let reply =
        api(identities::create_resource(State(app.clone()), console.caller.clone(), json_body(&body)).await).await;
    if !reply.ok() {
        return resources_page(&app, &console, Some(reply.failure())).await;
    }
    to(format!("/console/resources/{}", text(&reply.body["id"])))
}

#[derive(Template)]
#[template(path = "console/resource.html")]
pub(super) struct ResourcePage {
    chrome: Chrome,
    id: String,
    name: String,
    etag: String,
    system_assigned: bool,
    system_principal: String,
    identities: Vec<(String, String, bool)>,
    join_token: Option<(String, String)>,
    error: Option<String>,
    notice: Option<String>,
}

pub(super) async fn resource_page(
    app: &AppState,
    console: &Console,
    id: &str,
    error: Option<Failure>,
    notice: Option<String>,
    join_token: Option<(String, String)>,
) -> Response {
    let reply =
        api(identities::get_resource(State(app.clone()), console.caller.clone(), Path(id.to_string())).await).await;
    if !reply.ok() {
        return message_page(reply.status, &reply.message());
    }
    let r = &reply.body;
    let attached: Vec<String> = match &r["identity"]["userAssignedIdentities"] {
        Value::Object(map) => map.keys().cloned().collect(),
        Value::Array(items) => items.iter().map(text).collect(),
        _ => Vec::new(),
    };
    let identities = identity_options(app, console)
        .await
        .into_iter()
        .map(|(iid, name)| {
            let on = attached.iter().any(|a| a.ends_with(&iid));
            (iid, name, on)
        })
        .collect();
    let (status, error) = split(error);
    page(
        status,
        &ResourcePage {
            chrome: console.chrome("resources"),
            id: text(&r["id"]),
            name: text(&r["name"]),
            etag: text(&r["@odata.etag"]),
            system_assigned: text(&r["identity"]["type"]).contains("SystemAssigned"),
            system_principal: text(&r["identity"]["principalId"]),
            identities,
            join_token,
            error,
            notice,
        },
    )
}

pub async fn resource(State(app): State<AppState>, console: Console, Path(id): Path<String>) -> Response {
    let flashed = console.take_flash(&app).await;
    let token =
        flashed.filter(|f| f["resource"] == id.as_str()).map(|f| (text(&f["joinToken"]), text(&f["expiresDateTime"])));
    resource_page(&app, &console, &id, None, None, token).await
}

/// Attaches and detaches identities: the form lists every identity with a checkbox.
pub async fn update_resource(
    State(app): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let raw = String::from_utf8_lossy(&body).to_string();
    let form: FormData = form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    let chosen = selected(&raw);
    let kind = identity_type(form.contains_key("system_assigned"), !chosen.is_empty());
    let body = json!({"identity": {"type": kind, "userAssignedIdentities": chosen}});
    let reply = api(identities::update_resource(
        State(app.clone()),
        console.caller.clone(),
        Path(id.clone()),
        if_match(field(&form, "etag")),
        json_body(&body),
    )
    .await)
    .await;
    if !reply.ok() {
        return resource_page(&app, &console, &id, Some(reply.failure()), None, None).await;
    }
    resource_page(&app, &console, &id, None, Some("Saved.".into()), None).await
}

pub async fn create_join_token(
    State(app): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    let reply = api(identities::create_join_token(
        State(app.clone()),
        console.caller.clone(),
        Path(id.clone()),
        json_body(&json!({})),
    )
    .await)
    .await;
    if !reply.ok() {
        return resource_page(&app, &console, &id, Some(reply.failure()), None, None).await;
    }
    let shown_once = json!({"resource": id, "joinToken": reply.body["joinToken"],
                            "expiresDateTime": reply.body["expiresDateTime"]});
    if let Err(e) = console.flash(&app, &shown_once).await {
        tracing::error!(error = %e, "cannot keep a join token for its page");
        let token = (text(&reply.body["joinToken"]), text(&reply.body["expiresDateTime"]));
        return resource_page(&app, &console, &id, None, None, Some(token)).await;
    }
    to(format!("/console/resources/{id}"))
}
