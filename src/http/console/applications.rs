//! App registrations: list and search, register, the overview with identifier
//! URIs, app roles and token version, and role grants on the application as an API.

use super::forms::*;

pub(super) struct AppRow {
    id: String,
    app_id: String,
    name: String,
    audience: String,
    uris: String,
}

#[derive(Template)]
#[template(path = "console/applications.html")]
pub(super) struct ApplicationsPage {
    chrome: Chrome,
    search: String,
    apps: Vec<AppRow>,
    /// The `after` of the next page, when there is one.
    next: Option<String>,
    error: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
}

pub(super) async fn applications_page(
    app: &AppState,
    console: &Console,
    search: String,
    after: &str,
    error: Option<Failure>,
) -> Response {
    let filter = if search.is_empty() {
        None
    } else if uuid::Uuid::try_parse(&search).is_ok() {
        Some(format!("appId eq '{}'", quoted(&search)))
    } else {
        Some(format!("startswith(displayName,'{}')", quoted(&search)))
    };
    let listed =
        api(applications::list(State(app.clone()), console.caller.clone(), page_query(filter, after)).await).await;
    if !listed.ok() {
        return message_page(listed.status, &listed.message());
    }
    let next = next_page(&listed);
    let apps = list_of(&listed)
        .iter()
        .map(|a| AppRow {
            id: text(&a["id"]),
            app_id: text(&a["appId"]),
            name: text(&a["displayName"]),
            audience: if a["signInAudience"] == "AzureADMultipleOrgs" { "Multi-tenant" } else { "Single tenant" }
                .into(),
            uris: a["identifierUris"]
                .as_array()
                .map(|u| u.iter().map(text).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
        })
        .collect();
    let (status, error) = split(error);
    page(status, &ApplicationsPage { chrome: console.chrome("applications"), search, apps, next, error })
}

pub async fn applications(State(app): State<AppState>, console: Console, Query(search): Query<Search>) -> Response {
    applications_page(&app, &console, search.q.trim().to_string(), search.after.trim(), None).await
}

pub async fn create_application(State(app): State<AppState>, console: Console, Form(form): Form<FormData>) -> Response {
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    let audience = if form.contains_key("multi_tenant") { "AzureADMultipleOrgs" } else { "AzureADMyOrg" };
    let body = json!({"displayName": field(&form, "name"), "signInAudience": audience});
    let reply = api(applications::create(State(app.clone()), console.caller.clone(), json_body(&body)).await).await;
    if !reply.ok() {
        return applications_page(&app, &console, String::new(), "", Some(reply.failure())).await;
    }
    to(format!("/console/applications/{}", text(&reply.body["id"])))
}

pub(super) struct RoleRow {
    id: String,
    value: String,
    display_name: String,
    enabled: bool,
}

pub(super) struct GrantRow {
    principal: String,
    role: String,
}

#[derive(Template)]
#[template(path = "console/application.html")]
pub(super) struct ApplicationPage {
    chrome: Chrome,
    id: String,
    app_id: String,
    name: String,
    etag: String,
    multi_tenant: bool,
    uris: String,
    roles: Vec<RoleRow>,
    roles_text: String,
    token_version: String,
    grants: Vec<GrantRow>,
    error: Option<String>,
    notice: Option<String>,
}

pub(super) async fn application_page(
    app: &AppState,
    console: &Console,
    id: &str,
    error: Option<Failure>,
    notice: Option<String>,
) -> Response {
    let reply = api(applications::get(State(app.clone()), console.caller.clone(), Path(id.to_string())).await).await;
    if !reply.ok() {
        return message_page(reply.status, &reply.message());
    }
    let a = &reply.body;
    let roles: Vec<RoleRow> = a["appRoles"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| RoleRow {
            id: text(&r["id"]),
            value: text(&r["value"]),
            display_name: text(&r["displayName"]),
            enabled: r["isEnabled"] != false,
        })
        .collect();
    let mut grants = Vec::new();
    if console.caller.can(crate::http::admin::Permission::ReadDirectory)
        && let Some(own) = own_service_principal(app, console, &text(&a["appId"])).await
    {
        let assigned =
            api(principals::list_assignments(State(app.clone()), console.caller.clone(), Path(own)).await).await;
        for g in list_of(&assigned) {
            let role = roles.iter().find(|r| Value::String(r.id.clone()) == g["appRoleId"]).map(|r| r.value.clone());
            grants.push(GrantRow {
                principal: text(&g["principalDisplayName"]),
                role: role.unwrap_or_else(|| text(&g["appRoleId"])),
            });
        }
    }
    let (status, error) = split(error);
    page(
        status,
        &ApplicationPage {
            chrome: console.chrome("applications"),
            id: text(&a["id"]),
            app_id: text(&a["appId"]),
            name: text(&a["displayName"]),
            etag: text(&a["@odata.etag"]),
            multi_tenant: a["signInAudience"] == "AzureADMultipleOrgs",
            uris: a["identifierUris"]
                .as_array()
                .map(|u| u.iter().map(text).collect::<Vec<_>>().join("\n"))
                .unwrap_or_default(),
            roles_text: roles.iter().map(|r| r.value.clone()).collect::<Vec<_>>().join("\n"),
            roles,
            token_version: text(&a["api"]["requestedAccessTokenVersion"]),
            grants,
            error,
            notice,
        },
    )
}

pub async fn application(State(app): State<AppState>, console: Console, Path(id): Path<String>) -> Response {
    application_page(&app, &console, &id, None, None).await
}

/// Saves the overview form: identifier URIs and app role values one per line
/// (existing roles keep their ids; a removed role must be disabled first, as the API says).
pub async fn update_application(
    State(app): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    let current = api(applications::get(State(app.clone()), console.caller.clone(), Path(id.clone())).await).await;
    if !current.ok() {
        return message_page(current.status, &current.message());
    }
    let existing = current.body["appRoles"].as_array().cloned().unwrap_or_default();
    let lines = |name: &str| -> Vec<String> {
        field(&form, name).lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
    };
    let roles: Vec<Value> = lines("roles")
        .iter()
        .map(|value| match existing.iter().find(|r| r["value"] == value.as_str()) {
            Some(role) => role.clone(),
            None => json!({"value": value, "displayName": value}),
        })
        .collect();
    let version = match field(&form, "token_version") {
        "1" => json!(1),
        "2" => json!(2),
        _ => Value::Null,
    };
    let body = json!({
        "signInAudience": if form.contains_key("multi_tenant") { "AzureADMultipleOrgs" } else { "AzureADMyOrg" },
        "identifierUris": lines("uris"),
        "appRoles": roles,
        "api": {"requestedAccessTokenVersion": version},
    });
    let reply = api(applications::update(
        State(app.clone()),
        console.caller.clone(),
        Path(id.clone()),
        if_match(field(&form, "etag")),
        json_body(&body),
    )
    .await)
    .await;
    if !reply.ok() {
        return application_page(&app, &console, &id, Some(reply.failure()), None).await;
    }
    application_page(&app, &console, &id, None, Some("Saved.".into())).await
}

pub async fn delete_application(
    State(app): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    let reply = api(applications::delete(
        State(app.clone()),
        console.caller.clone(),
        Path(id.clone()),
        if_match(field(&form, "etag")),
    )
    .await)
    .await;
    if !reply.ok() {
        return application_page(&app, &console, &id, Some(reply.failure()), None).await;
    }
    to("/console/applications".into())
}

/// Grants one of this application's roles (it is the API) to a principal.
pub async fn grant_role(
    State(app): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    let refuse = |message: String| (StatusCode::BAD_REQUEST, message);
    let current = api(applications::get(State(app.clone()), console.caller.clone(), Path(id.clone())).await).await;
    let Some(resource) = own_service_principal(&app, &console, &text(&current.body["appId"])).await else {
        let failure = refuse("This application has no service principal.".into());
        return application_page(&app, &console, &id, Some(failure), None).await;
    };
    // The principal by client id or display name: exactly one must match.
    let wanted = field(&form, "principal");
    let filter = if uuid::Uuid::try_parse(wanted).is_ok() {
        format!("appId eq '{}'", quoted(wanted))
    } else {
        format!("displayName eq '{}'", quoted(wanted))
    };
    let found = api(principals::list(State(app.clone()), console.caller.clone(), query(Some(filter))).await).await;
    let principal = match list_of(&found).as_slice() {
        [one] => text(&one["id"]),
        [] => {
            let message =
                format!("No application or managed identity in this tenant is named or has the client id '{wanted}'.");
            return application_page(&app, &console, &id, Some(refuse(message)), None).await;
        }
        _ => {
            let message = format!("Several principals are named '{wanted}'; give the client id instead.");
            return application_page(&app, &console, &id, Some(refuse(message)), None).await;
        }
    };
    let body = json!({"principalId": principal, "resourceId": resource, "appRoleId": field(&form, "role")});
    let reply =
        api(principals::assign(State(app.clone()), console.caller.clone(), Path(resource), json_body(&body)).await)
            .await;
    if !reply.ok() {
        return application_page(&app, &console, &id, Some(reply.failure()), None).await;
    }
    application_page(&app, &console, &id, None, Some("Role granted.".into())).await
}

/// The id of an application's service principal in the signed-in tenant.
async fn own_service_principal(app: &AppState, console: &Console, app_id: &str) -> Option<String> {
    let filter = format!("appId eq '{}'", quoted(app_id));
    let found = api(principals::list(State(app.clone()), console.caller.clone(), query(Some(filter))).await).await;
    list_of(&found).first().map(|sp| text(&sp["id"]))
}
