//! The console's pages and forms. Each handler reads or writes through the
//! admin API's handler for the same object and renders what it answered; an
//! API refusal is shown next to the form with the API's own message.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::{Chrome, Console, Reply, api, json_body, message_page, page};
use crate::app::AppState;
use crate::directory::scenario::{self, GitHubEntity};
use crate::directory::validation::TOKEN_EXCHANGE_AUDIENCE;
use crate::http::admin::{ListQuery, applications, fics, identities, principals, sign_ins, tenants};
use crate::http::context::RequestContext;

type FormData = HashMap<String, String>;

/// Why a form was refused: the API's status and message.
type Failure = (StatusCode, String);

fn split(error: Option<Failure>) -> (StatusCode, Option<String>) {
    match error {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    }
}

fn field<'a>(form: &'a FormData, name: &str) -> &'a str {
    form.get(name).map(|v| v.trim()).unwrap_or_default()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn list_of(reply: &Reply) -> Vec<Value> {
    reply.body["value"].as_array().cloned().unwrap_or_default()
}

fn query(filter: Option<String>) -> Query<ListQuery> {
    Query(ListQuery { top: Some("999".into()), skiptoken: None, filter })
}

/// `If-Match` for a write the form read at `etag`.
fn if_match(etag: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(etag)
        && !etag.is_empty()
    {
        headers.insert(header::IF_MATCH, value);
    }
    headers
}

/// A POST that did not come from this server's pages (its Origin differs) is refused.
fn same_origin(app: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) if origin != app.public_url => {
            Err(message_page(StatusCode::FORBIDDEN, "This form was posted from another site and was refused."))
        }
        _ => Ok(()),
    }
}

fn to(path: String) -> Response {
    Redirect::to(&path).into_response()
}

fn quoted(value: &str) -> String {
    value.replace('\'', "''")
}

// ---------------------------------------------------------------- sign-in

#[derive(Template)]
#[template(path = "console/signin.html")]
struct SigninPage {
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
    if let Err(refused) = same_origin(&app, &headers) {
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
    if let Err(refused) = console.check(&form) {
        return refused;
    }
    super::end_session(&app, &console).await
}

// ---------------------------------------------------------------- tenants

#[derive(Template)]
#[template(path = "console/tenants.html")]
struct TenantsPage {
    chrome: Chrome,
    tenants: Vec<(String, String)>,
    error: Option<String>,
    created: Option<(String, String, String)>,
}

async fn tenants_page(
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
    tenants_page(&app, &console, None, None).await
}

pub async fn create_tenant(State(app): State<AppState>, console: Console, Form(form): Form<FormData>) -> Response {
    if let Err(refused) = console.check(&form) {
        return refused;
    }
    let body = json!({"displayName": field(&form, "name")});
    let reply = api(tenants::create(State(app.clone()), console.caller.clone(), json_body(&body)).await).await;
    if !reply.ok() {
        return tenants_page(&app, &console, Some(reply.failure()), None).await;
    }
    let created = (
        text(&reply.body["id"]),
        text(&reply.body["adminCredential"]["clientId"]),
        text(&reply.body["adminCredential"]["clientSecret"]),
    );
    tenants_page(&app, &console, None, Some(created)).await
}

// ---------------------------------------------------------------- applications

struct AppRow {
    id: String,
    app_id: String,
    name: String,
    audience: String,
    uris: String,
}

#[derive(Template)]
#[template(path = "console/applications.html")]
struct ApplicationsPage {
    chrome: Chrome,
    search: String,
    apps: Vec<AppRow>,
    error: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct Search {
    #[serde(default)]
    q: String,
}

async fn applications_page(app: &AppState, console: &Console, search: String, error: Option<Failure>) -> Response {
    let filter = if search.is_empty() {
        None
    } else if uuid::Uuid::try_parse(&search).is_ok() {
        Some(format!("appId eq '{}'", quoted(&search)))
    } else {
        Some(format!("startswith(displayName,'{}')", quoted(&search)))
    };
    let listed = api(applications::list(State(app.clone()), console.caller.clone(), query(filter)).await).await;
    if !listed.ok() {
        return message_page(listed.status, &listed.message());
    }
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
    page(status, &ApplicationsPage { chrome: console.chrome("applications"), search, apps, error })
}

pub async fn applications(State(app): State<AppState>, console: Console, Query(search): Query<Search>) -> Response {
    applications_page(&app, &console, search.q.trim().to_string(), None).await
}

pub async fn create_application(State(app): State<AppState>, console: Console, Form(form): Form<FormData>) -> Response {
    if let Err(refused) = console.check(&form) {
        return refused;
    }
    let audience = if form.contains_key("multi_tenant") { "AzureADMultipleOrgs" } else { "AzureADMyOrg" };
    let body = json!({"displayName": field(&form, "name"), "signInAudience": audience});
    let reply = api(applications::create(State(app.clone()), console.caller.clone(), json_body(&body)).await).await;
    if !reply.ok() {
        return applications_page(&app, &console, String::new(), Some(reply.failure())).await;
    }
    to(format!("/console/applications/{}", text(&reply.body["id"])))
}

struct RoleRow {
    id: String,
    value: String,
    display_name: String,
    enabled: bool,
}

struct GrantRow {
    principal: String,
    role: String,
}

#[derive(Template)]
#[template(path = "console/application.html")]
struct ApplicationPage {
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
    principals: Vec<(String, String)>,
    error: Option<String>,
    notice: Option<String>,
}

async fn application_page(
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
    let mut principals = Vec::new();
    if console.caller.can(crate::http::admin::Permission::ReadDirectory) {
        let sps = api(principals::list(State(app.clone()), console.caller.clone(), query(None)).await).await;
        let sps = list_of(&sps);
        let name_of = |sp_id: &Value| {
            sps.iter().find(|sp| sp["id"] == *sp_id).map(|sp| text(&sp["displayName"])).unwrap_or_else(|| text(sp_id))
        };
        if let Some(own) = sps.iter().find(|sp| sp["appId"] == a["appId"]) {
            let assigned =
                api(principals::list_assignments(State(app.clone()), console.caller.clone(), Path(text(&own["id"])))
                    .await)
                .await;
            for g in list_of(&assigned) {
                let role =
                    roles.iter().find(|r| Value::String(r.id.clone()) == g["appRoleId"]).map(|r| r.value.clone());
                grants.push(GrantRow {
                    principal: name_of(&g["principalId"]),
                    role: role.unwrap_or_else(|| text(&g["appRoleId"])),
                });
            }
        }
        principals = sps
            .iter()
            .filter(|sp| sp["servicePrincipalType"] != "BuiltIn" && sp["appId"] != a["appId"])
            .map(|sp| {
                (text(&sp["id"]), format!("{} ({})", text(&sp["displayName"]), text(&sp["servicePrincipalType"])))
            })
            .collect();
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
            principals,
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
    if let Err(refused) = console.check(&form) {
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
    if let Err(refused) = console.check(&form) {
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
    if let Err(refused) = console.check(&form) {
        return refused;
    }
    let current = api(applications::get(State(app.clone()), console.caller.clone(), Path(id.clone())).await).await;
    let sps = api(principals::list(
        State(app.clone()),
        console.caller.clone(),
        query(Some(format!("appId eq '{}'", quoted(&text(&current.body["appId"]))))),
    )
    .await)
    .await;
    let Some(resource) = list_of(&sps).first().map(|sp| text(&sp["id"])) else {
        return application_page(
            &app,
            &console,
            &id,
            Some((StatusCode::BAD_REQUEST, "This application has no service principal.".into())),
            None,
        )
        .await;
    };
    let body =
        json!({"principalId": field(&form, "principal"), "resourceId": resource, "appRoleId": field(&form, "role")});
    let reply =
        api(principals::assign(State(app.clone()), console.caller.clone(), Path(resource), json_body(&body)).await)
            .await;
    if !reply.ok() {
        return application_page(&app, &console, &id, Some(reply.failure()), None).await;
    }
    application_page(&app, &console, &id, None, Some("Role granted.".into())).await
}

// ---------------------------------------------------------------- certificates & secrets

struct FicRow {
    name: String,
    issuer: String,
    subject: String,
    audience: String,
}

struct KeyRow {
    key_id: String,
    name: String,
    detail: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "console/credentials.html")]
struct CredentialsPage {
    chrome: Chrome,
    owner_path: String,
    owner_name: String,
    tab: String,
    etag: String,
    fics: Vec<FicRow>,
    certificates: Vec<KeyRow>,
    secrets: Vec<KeyRow>,
    secrets_blocked: bool,
    new_secret: Option<String>,
    error: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct Tab {
    #[serde(default)]
    tab: String,
}

async fn credentials_page(
    app: &AppState,
    console: &Console,
    id: &str,
    tab: &str,
    error: Option<Failure>,
    new_secret: Option<String>,
) -> Response {
    let reply = api(applications::get(State(app.clone()), console.caller.clone(), Path(id.to_string())).await).await;
    if !reply.ok() {
        return message_page(reply.status, &reply.message());
    }
    let a = &reply.body;
    let listed =
        api(fics::list_for_application(State(app.clone()), console.caller.clone(), Path(id.to_string()), query(None))
            .await)
        .await;
    let policy = api(tenants::get_policy(State(app.clone()), console.caller.clone()).await).await;
    let keys = |list: &Value, detail: &dyn Fn(&Value) -> String| -> Vec<KeyRow> {
        list.as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|k| KeyRow {
                key_id: text(&k["keyId"]),
                name: text(&k["displayName"]),
                detail: detail(k),
                expires: text(&k["endDateTime"]),
            })
            .collect()
    };
    let tab = match tab {
        "certificates" | "secrets" => tab.to_string(),
        _ => "federated".to_string(),
    };
    let (status, error) = split(error);
    page(
        status,
        &CredentialsPage {
            chrome: console.chrome("applications"),
            owner_path: format!("/console/applications/{id}"),
            owner_name: text(&a["displayName"]),
            tab,
            etag: text(&a["@odata.etag"]),
            fics: fic_rows(&listed),
            certificates: keys(&a["keyCredentials"], &|k| format!("thumbprint {}", text(&k["customKeyIdentifier"]))),
            secrets: keys(&a["passwordCredentials"], &|k| format!("{}…", text(&k["hint"]))),
            secrets_blocked: policy.body["blockPasswordCredentials"] == true,
            new_secret,
            error,
        },
    )
}

fn fic_rows(listed: &Reply) -> Vec<FicRow> {
    list_of(listed)
        .iter()
        .map(|f| FicRow {
            name: text(&f["name"]),
            issuer: text(&f["issuer"]),
            subject: if f["subject"].is_null() {
                format!("expression: {}", text(&f["claimsMatchingExpression"]["value"]))
            } else {
                text(&f["subject"])
            },
            audience: f["audiences"]
                .as_array()
                .map(|a| a.iter().map(text).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
        })
        .collect()
}

pub async fn credentials(
    State(app): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Query(tab): Query<Tab>,
) -> Response {
    credentials_page(&app, &console, &id, &tab.tab, None, None).await
}

pub async fn add_secret(
    State(app): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    if let Err(refused) = console.check(&form) {
        return refused;
    }
    let mut body = json!({});
    if !field(&form, "name").is_empty() {
        body["passwordCredential"] = json!({"displayName": field(&form, "name")});
    }
    let reply =
        api(applications::add_password(State(app.clone()), console.caller.clone(), Path(id.clone()), json_body(&body))
            .await)
        .await;
    if !reply.ok() {
        return credentials_page(&app, &console, &id, "secrets", Some(reply.failure()), None).await;
    }
    credentials_page(&app, &console, &id, "secrets", None, Some(text(&reply.body["secretText"]))).await
}

pub async fn remove_secret(
    State(app): State<AppState>,
    console: Console,
    Path((id, key)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Response {
    if let Err(refused) = console.check(&form) {
        return refused;
    }
    let body = json!({"keyId": key});
    let reply = api(applications::remove_password(
        State(app.clone()),
        console.caller.clone(),
        Path(id.clone()),
        json_body(&body),
    )
    .await)
    .await;
    if !reply.ok() {
        return credentials_page(&app, &console, &id, "secrets", Some(reply.failure()), None).await;
    }
    to(format!("/console/applications/{id}/credentials?tab=secrets"))
}

/// Certificates are replaced as a set (Graph's `keyCredentials`): the kept ones by keyId.
async fn set_certificates(
    app: &AppState,
    console: &Console,
    id: &str,
    form: &FormData,
    change: impl FnOnce(Vec<Value>) -> Vec<Value>,
) -> Response {
    let current = api(applications::get(State(app.clone()), console.caller.clone(), Path(id.to_string())).await).await;
    if !current.ok() {
        return message_page(current.status, &current.message());
    }
    let kept: Vec<Value> = current.body["keyCredentials"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|k| json!({"keyId": k["keyId"]}))
        .collect();
    let body = json!({"keyCredentials": change(kept)});
    let reply = api(applications::update(
        State(app.clone()),
        console.caller.clone(),
        Path(id.to_string()),
        if_match(field(form, "etag")),
        json_body(&body),
    )
    .await)
    .await;
    if !reply.ok() {
        return credentials_page(app, console, id, "certificates", Some(reply.failure()), None).await;
    }
    to(format!("/console/applications/{id}/credentials?tab=certificates"))
}

pub async fn add_certificate(
    State(app): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    if let Err(refused) = console.check(&form) {
        return refused;
    }
    let new = json!({"type": "AsymmetricX509Cert", "usage": "Verify", "key": field(&form, "certificate"),
                     "displayName": field(&form, "name")});
    set_certificates(&app, &console, &id, &form, |mut kept| {
        kept.push(new);
        kept
    })
    .await
}

pub async fn remove_certificate(
    State(app): State<AppState>,
    console: Console,
    Path((id, key)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Response {
    if let Err(refused) = console.check(&form) {
        return refused;
    }
    set_certificates(&app, &console, &id, &form, |kept| {
        kept.into_iter().filter(|k| k["keyId"] != key.as_str()).collect()
    })
    .await
}

// ---------------------------------------------------------------- add federated credential

/// The scenario form's fields, as posted (or empty for a new form).
#[derive(Debug, Clone, Default)]
struct FicFields {
    scenario: String,
    name: String,
    description: String,
    audience: String,
    github_repository: String,
    github_entity: String,
    github_value: String,
    kubernetes_issuer: String,
    namespace: String,
    service_account: String,
    identity: String,
    issuer: String,
    subject: String,
    expression: String,
    language_version: String,
}

impl FicFields {
    fn from_form(form: &FormData) -> Self {
        let f = |name: &str| field(form, name).to_string();
        FicFields {
            scenario: f("scenario"),
            name: f("name"),
            description: f("description"),
            audience: f("audience"),
            github_repository: f("github_repository"),
            github_entity: f("github_entity"),
            github_value: f("github_value"),
            kubernetes_issuer: f("kubernetes_issuer"),
            namespace: f("namespace"),
            service_account: f("service_account"),
            identity: f("identity"),
            issuer: f("issuer"),
            subject: f("subject"),
            expression: form.get("expression").cloned().unwrap_or_default(),
            language_version: f("language_version"),
        }
    }

    /// Issuer and subject as the scenario fills them (what the preview shows).
    fn resolve(&self, own_issuer: &str) -> Result<(String, Option<String>), String> {
        match self.scenario.as_str() {
            "github" => {
                let entity = match self.github_entity.as_str() {
                    "environment" => GitHubEntity::Environment(self.github_value.clone()),
                    "tag" => GitHubEntity::Tag(self.github_value.clone()),
                    "pull_request" => GitHubEntity::PullRequest,
                    _ => GitHubEntity::Branch(self.github_value.clone()),
                };
                let subject = scenario::github_subject(&self.github_repository, &entity)?;
                Ok((scenario::GITHUB_ISSUER.to_string(), Some(subject)))
            }
            "kubernetes" => {
                let subject = scenario::kubernetes_subject(&self.namespace, &self.service_account)?;
                Ok((self.kubernetes_issuer.clone(), Some(subject)))
            }
            "managed_identity" => {
                if uuid::Uuid::try_parse(&self.identity).is_err() {
                    return Err("choose a managed identity".into());
                }
                Ok((own_issuer.to_string(), Some(self.identity.clone())))
            }
            _ if !self.expression.trim().is_empty() => Ok((self.issuer.clone(), None)),
            _ => Ok((self.issuer.clone(), Some(self.subject.clone()))),
        }
    }
}

#[derive(Template)]
#[template(path = "console/fic_form.html")]
struct FicFormPage {
    chrome: Chrome,
    owner_path: String,
    owner_name: String,
    f: FicFields,
    own_issuer: String,
    identities: Vec<(String, String)>,
    preview: Option<(String, String)>,
    error: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct Scenario {
    #[serde(default)]
    scenario: String,
}

/// Which object the credential is for.
#[derive(Clone, Copy)]
enum Owner {
    Application,
    Identity,
}

async fn owner_name(app: &AppState, console: &Console, owner: Owner, id: &str) -> Result<String, Response> {
    let reply = match owner {
        Owner::Application => {
            api(applications::get(State(app.clone()), console.caller.clone(), Path(id.to_string())).await).await
        }
        Owner::Identity => {
            api(identities::get_identity(State(app.clone()), console.caller.clone(), Path(id.to_string())).await).await
        }
    };
    if reply.ok() { Ok(text(&reply.body["displayName"])) } else { Err(message_page(reply.status, &reply.message())) }
}

fn owner_path(owner: Owner, id: &str) -> String {
    match owner {
        Owner::Application => format!("/console/applications/{id}"),
        Owner::Identity => format!("/console/identities/{id}"),
    }
}

async fn fic_form(
    app: &AppState,
    console: &Console,
    owner: Owner,
    id: &str,
    f: FicFields,
    preview: Option<(String, String)>,
    error: Option<Failure>,
) -> Response {
    let name = match owner_name(app, console, owner, id).await {
        Ok(name) => name,
        Err(response) => return response,
    };
    let listed = api(identities::list_identities(State(app.clone()), console.caller.clone(), query(None)).await).await;
    let identities = list_of(&listed)
        .iter()
        .filter(|i| text(&i["id"]) != id)
        .map(|i| (text(&i["principalId"]), text(&i["displayName"])))
        .collect();
    let (status, error) = split(error);
    let section = match owner {
        Owner::Application => "applications",
        Owner::Identity => "identities",
    };
    page(
        status,
        &FicFormPage {
            chrome: console.chrome(section),
            owner_path: owner_path(owner, id),
            owner_name: name,
            f,
            own_issuer: app.keys.issuer(&console.caller.tenant_id),
            identities,
            preview,
            error,
        },
    )
}

fn new_fields(scenario: &str) -> FicFields {
    let scenario = match scenario {
        "kubernetes" | "managed_identity" | "other" => scenario,
        _ => "github",
    };
    FicFields {
        scenario: scenario.to_string(),
        audience: TOKEN_EXCHANGE_AUDIENCE.to_string(),
        github_entity: "branch".into(),
        language_version: "1".into(),
        ..FicFields::default()
    }
}

pub async fn new_federated_credential(
    State(app): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Query(s): Query<Scenario>,
) -> Response {
    fic_form(&app, &console, Owner::Application, &id, new_fields(&s.scenario), None, None).await
}

pub async fn new_identity_credential(
    State(app): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Query(s): Query<Scenario>,
) -> Response {
    fic_form(&app, &console, Owner::Identity, &id, new_fields(&s.scenario), None, None).await
}

/// Previews (`action=preview`) or saves a credential from the scenario form.
async fn save_credential(app: AppState, console: Console, owner: Owner, id: String, form: FormData) -> Response {
    if let Err(refused) = console.check(&form) {
        return refused;
    }
    let f = FicFields::from_form(&form);
    let (issuer, subject) = match f.resolve(&app.keys.issuer(&console.caller.tenant_id)) {
        Ok(resolved) => resolved,
        Err(e) => return fic_form(&app, &console, owner, &id, f, None, Some((StatusCode::BAD_REQUEST, e))).await,
    };
    let shown = subject.clone().unwrap_or_else(|| format!("(expression) {}", f.expression));
    if field(&form, "action") == "preview" {
        return fic_form(&app, &console, owner, &id, f, Some((issuer, shown)), None).await;
    }
    let mut body = json!({
        "name": f.name,
        "issuer": issuer,
        "audiences": [if f.audience.is_empty() { TOKEN_EXCHANGE_AUDIENCE } else { f.audience.as_str() }],
    });
    match &subject {
        Some(subject) => body["subject"] = json!(subject),
        None => {
            body["claimsMatchingExpression"] =
                json!({"value": f.expression, "languageVersion": f.language_version.parse::<i32>().unwrap_or(1)})
        }
    }
    if !f.description.is_empty() {
        body["description"] = json!(f.description);
    }
    let reply = match owner {
        Owner::Application => {
            api(fics::create_for_application(
                State(app.clone()),
                console.caller.clone(),
                Path(id.clone()),
                json_body(&body),
            )
            .await)
            .await
        }
        Owner::Identity => {
            api(fics::create_for_identity(
                State(app.clone()),
                console.caller.clone(),
                Path(id.clone()),
                json_body(&body),
            )
            .await)
            .await
        }
    };
    if !reply.ok() {
        return fic_form(&app, &console, owner, &id, f, Some((issuer, shown)), Some(reply.failure())).await;
    }
    match owner {
        Owner::Application => to(format!("/console/applications/{id}/credentials?tab=federated")),
        Owner::Identity => to(format!("/console/identities/{id}")),
    }
}

pub async fn create_federated_credential(
    State(app): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    save_credential(app, console, Owner::Application, id, form).await
}

pub async fn create_identity_credential(
    State(app): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    save_credential(app, console, Owner::Identity, id, form).await
}

pub async fn delete_federated_credential(
    State(app): State<AppState>,
    console: Console,
    Path((id, fic)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Response {
    if let Err(refused) = console.check(&form) {
        return refused;
    }
    let reply = api(fics::delete_for_application(
        State(app.clone()),
        console.caller.clone(),
        Path((id.clone(), fic)),
        HeaderMap::new(),
    )
    .await)
    .await;
    if !reply.ok() {
        return credentials_page(&app, &console, &id, "federated", Some(reply.failure()), None).await;
    }
    to(format!("/console/applications/{id}/credentials?tab=federated"))
}

pub async fn delete_identity_credential(
    State(app): State<AppState>,
    console: Console,
    Path((id, fic)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Response {
    if let Err(refused) = console.check(&form) {
        return refused;
    }
    let reply = api(fics::delete_for_identity(
        State(app.clone()),
        console.caller.clone(),
        Path((id.clone(), fic)),
        HeaderMap::new(),
    )
    .await)
    .await;
    if !reply.ok() {
        return identity_page(&app, &console, &id, Some(reply.failure())).await;
    }
    to(format!("/console/identities/{id}"))
}

// ---------------------------------------------------------------- managed identities

#[derive(Template)]
#[template(path = "console/identities.html")]
struct IdentitiesPage {
    chrome: Chrome,
    identities: Vec<(String, String, String, String)>,
    error: Option<String>,
}

async fn identities_page(app: &AppState, console: &Console, error: Option<Failure>) -> Response {
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
    if let Err(refused) = console.check(&form) {
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
struct IdentityPage {
    chrome: Chrome,
    id: String,
    name: String,
    client_id: String,
    principal_id: String,
    fics: Vec<FicRow>,
    error: Option<String>,
}

async fn identity_page(app: &AppState, console: &Console, id: &str, error: Option<Failure>) -> Response {
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
    if let Err(refused) = console.check(&form) {
        return refused;
    }
    let reply =
        api(identities::delete_identity(State(app.clone()), console.caller.clone(), Path(id.clone())).await).await;
    if !reply.ok() {
        return identity_page(&app, &console, &id, Some(reply.failure())).await;
    }
    to("/console/identities".into())
}

// ---------------------------------------------------------------- compute resources

#[derive(Template)]
#[template(path = "console/resources.html")]
struct ResourcesPage {
    chrome: Chrome,
    resources: Vec<(String, String, String)>,
    identities: Vec<(String, String)>,
    error: Option<String>,
}

async fn identity_options(app: &AppState, console: &Console) -> Vec<(String, String)> {
    let listed = api(identities::list_identities(State(app.clone()), console.caller.clone(), query(None)).await).await;
    list_of(&listed).iter().map(|i| (text(&i["id"]), text(&i["displayName"]))).collect()
}

fn identity_type(system: bool, user: bool) -> &'static str {
    match (system, user) {
        (true, true) => "SystemAssigned, UserAssigned",
        (true, false) => "SystemAssigned",
        (false, true) => "UserAssigned",
        (false, false) => "None",
    }
}

async fn resources_page(app: &AppState, console: &Console, error: Option<Failure>) -> Response {
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
fn selected(raw: &str) -> Vec<String> {
    form_urlencoded::parse(raw.as_bytes()).filter(|(k, _)| k == "identity").map(|(_, v)| v.into_owned()).collect()
}

pub async fn create_resource(State(app): State<AppState>, console: Console, body: axum::body::Bytes) -> Response {
    let raw = String::from_utf8_lossy(&body).to_string();
    let form: FormData = form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
    if let Err(refused) = console.check(&form) {
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
struct ResourcePage {
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

async fn resource_page(
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
    resource_page(&app, &console, &id, None, None, None).await
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
    if let Err(refused) = console.check(&form) {
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
    if let Err(refused) = console.check(&form) {
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
    let token = (text(&reply.body["joinToken"]), text(&reply.body["expiresDateTime"]));
    resource_page(&app, &console, &id, None, None, Some(token)).await
}

// ---------------------------------------------------------------- sign-in logs

struct CheckRow {
    check: String,
    passed: bool,
    expected: String,
    actual: String,
    hint: String,
}

struct CredentialExplain {
    name: String,
    matched: bool,
    checks: Vec<CheckRow>,
}

struct SignInRow {
    at: String,
    outcome: String,
    code: String,
    app_id: String,
    credential: String,
    resource: String,
    correlation_id: String,
    issuer: String,
    subject: String,
    unverified: bool,
    explain: Vec<CredentialExplain>,
}

#[derive(Template)]
#[template(path = "console/sign_ins.html")]
struct SignInsPage {
    chrome: Chrome,
    app: String,
    outcome: String,
    correlation: String,
    rows: Vec<SignInRow>,
    error: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct SignInFilter {
    #[serde(default)]
    app: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    correlation: String,
}

pub async fn sign_ins(State(app): State<AppState>, console: Console, Query(filter): Query<SignInFilter>) -> Response {
    let mut clauses = Vec::new();
    if !filter.app.trim().is_empty() {
        clauses.push(format!("appId eq '{}'", quoted(filter.app.trim())));
    }
    if matches!(filter.outcome.as_str(), "granted" | "refused") {
        clauses.push(format!("outcome eq '{}'", filter.outcome));
    }
    if !filter.correlation.trim().is_empty() {
        clauses.push(format!("correlationId eq '{}'", quoted(filter.correlation.trim())));
    }
    let filter_text = (!clauses.is_empty()).then(|| clauses.join(" and "));
    let listed = api(sign_ins::list(
        State(app.clone()),
        console.caller.clone(),
        Query(ListQuery { top: Some("100".into()), skiptoken: None, filter: filter_text }),
    )
    .await)
    .await;
    let (rows, error) = if listed.ok() {
        (list_of(&listed).iter().map(sign_in_row).collect(), None)
    } else {
        (Vec::new(), Some(listed.message()))
    };
    let status = if error.is_some() { listed.status } else { StatusCode::OK };
    page(
        status,
        &SignInsPage {
            chrome: console.chrome("sign-ins"),
            app: filter.app,
            outcome: filter.outcome,
            correlation: filter.correlation,
            rows,
            error,
        },
    )
}

fn sign_in_row(entry: &Value) -> SignInRow {
    let explain = entry
        .pointer("/details/credentials")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| CredentialExplain {
            name: text(&c["credentialName"]),
            matched: c["matched"] == true,
            checks: c["checks"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|k| CheckRow {
                    check: text(&k["check"]),
                    passed: k["passed"] == true,
                    expected: text(&k["expected"]),
                    actual: text(&k["actual"]),
                    hint: text(&k["hint"]),
                })
                .collect(),
        })
        .collect();
    SignInRow {
        at: text(&entry["createdDateTime"]),
        outcome: text(&entry["outcome"]),
        code: text(&entry["status"]["failureReason"]),
        app_id: text(&entry["appId"]),
        credential: text(&entry["clientCredentialType"]),
        resource: text(&entry["resource"]),
        correlation_id: text(&entry["correlationId"]),
        issuer: text(&entry["assertion"]["issuer"]),
        subject: text(&entry["assertion"]["subject"]),
        unverified: entry.pointer("/details/verified") == Some(&Value::Bool(false)),
        explain,
    }
}
