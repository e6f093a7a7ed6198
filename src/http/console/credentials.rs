//! Certificates & secrets: the federated credentials, certificates and client
//! secrets tabs, and the add-a-federated-credential form with its scenarios.

use super::forms::*;
use super::identities::identity_page;

pub(super) struct FicRow {
    pub(super) name: String,
    pub(super) issuer: String,
    pub(super) subject: String,
    pub(super) audience: String,
}

pub(super) struct KeyRow {
    key_id: String,
    name: String,
    detail: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "console/credentials.html")]
pub(super) struct CredentialsPage {
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

pub(super) async fn credentials_page(
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

pub(super) fn fic_rows(listed: &Reply) -> Vec<FicRow> {
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
    // A secret the previous form created for this application is shown once.
    let flashed = console.take_flash(&app).await;
    let new_secret = flashed.filter(|f| f["application"] == id.as_str()).map(|f| text(&f["secret"]));
    credentials_page(&app, &console, &id, &tab.tab, None, new_secret).await
}

pub async fn add_secret(
    State(app): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(refused) = console.forged(&form) {
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
    // Post, redirect, get: a reload shows the list, it does not add another secret.
    let shown_once = json!({"application": id, "secret": reply.body["secretText"]});
    if let Err(e) = console.flash(&app, &shown_once).await {
        tracing::error!(error = %e, "cannot keep a new secret for its page");
        return credentials_page(&app, &console, &id, "secrets", None, Some(text(&reply.body["secretText"]))).await;
    }
    to(format!("/console/applications/{id}/credentials?tab=secrets"))
}

pub async fn remove_secret(
    State(app): State<AppState>,
    console: Console,
    Path((id, key)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Response {
    if let Some(refused) = console.forged(&form) {
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
pub(super) async fn set_certificates(
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
    if let Some(refused) = console.forged(&form) {
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
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    set_certificates(&app, &console, &id, &form, |kept| {
        kept.into_iter().filter(|k| k["keyId"] != key.as_str()).collect()
    })
    .await
}

/// The scenario form's fields, as posted (or empty for a new form).
#[derive(Debug, Clone, Default)]
pub(super) struct FicFields {
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
pub(super) struct FicFormPage {
    chrome: Chrome,
    owner_path: String,
    owner_name: String,
    f: FicFields,
    own_issuer: String,
    identities: Vec<(String, String)>,
    preview: Option<(String, String)>,
    error: Option<String>,
    /// Under the expression, a `^` at the position the parser stopped.
    caret: Option<String>,
}

/// What the form is shown again with: the computed issuer and subject, the
/// refusal, and where in the expression the parser stopped.
#[derive(Default)]
pub(super) struct Refused {
    preview: Option<(String, String)>,
    error: Option<Failure>,
    caret: Option<String>,
}

impl Refused {
    fn error(failure: Failure) -> Self {
        Refused { error: Some(failure), ..Refused::default() }
    }
}

#[derive(serde::Deserialize, Default)]
pub struct Scenario {
    #[serde(default)]
    scenario: String,
}

/// Which object the credential is for.
#[derive(Clone, Copy)]
pub(super) enum Owner {
    Application,
    Identity,
}

pub(super) async fn owner_name(app: &AppState, console: &Console, owner: Owner, id: &str) -> Result<String, Response> {
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

pub(super) fn owner_path(owner: Owner, id: &str) -> String {
    match owner {
        Owner::Application => format!("/console/applications/{id}"),
        Owner::Identity => format!("/console/identities/{id}"),
    }
}

pub(super) async fn fic_form(
    app: &AppState,
    console: &Console,
    owner: Owner,
    id: &str,
    f: FicFields,
    shown: Refused,
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
    let Refused { preview, error, caret } = shown;
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
            caret,
            error,
        },
    )
}

pub(super) fn new_fields(scenario: &str) -> FicFields {
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
    fic_form(&app, &console, Owner::Application, &id, new_fields(&s.scenario), Refused::default()).await
}

pub async fn new_identity_credential(
    State(app): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Query(s): Query<Scenario>,
) -> Response {
    fic_form(&app, &console, Owner::Identity, &id, new_fields(&s.scenario), Refused::default()).await
}

/// Previews (`action=preview`) or saves a credential from the scenario form.
pub(super) async fn save_credential(
    app: AppState,
    console: Console,
    owner: Owner,
    id: String,
    form: FormData,
) -> Response {
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    let f = FicFields::from_form(&form);
    let (issuer, subject) = match f.resolve(&app.keys.issuer(&console.caller.tenant_id)) {
        Ok(resolved) => resolved,
        Err(e) => return fic_form(&app, &console, owner, &id, f, Refused::error((StatusCode::BAD_REQUEST, e))).await,
    };
    if subject.is_none() {
        // Checked here first, with the parser the API uses, to point at the error.
        let version = f.language_version.parse::<i32>().unwrap_or(1);
        if let Err(e) = crate::federation::expression::compile(&f.expression, version) {
            let caret = format!("{}^", " ".repeat(e.position.min(f.expression.chars().count())));
            let error = Some((StatusCode::BAD_REQUEST, format!("claimsMatchingExpression {e}.")));
            return fic_form(&app, &console, owner, &id, f, Refused { preview: None, error, caret: Some(caret) }).await;
        }
    }
    let shown = subject.clone().unwrap_or_else(|| format!("(expression) {}", f.expression));
    if field(&form, "action") == "preview" {
        return fic_form(
            &app,
            &console,
            owner,
            &id,
            f,
            Refused { preview: Some((issuer, shown)), ..Refused::default() },
        )
        .await;
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
        return fic_form(
            &app,
            &console,
            owner,
            &id,
            f,
            Refused { preview: Some((issuer, shown)), error: Some(reply.failure()), caret: None },
        )
        .await;
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

/// Deletes a credential of an application or identity.
async fn remove_credential(
    app: AppState,
    console: Console,
    owner: Owner,
    id: String,
    fic: String,
    form: FormData,
) -> Response {
    if let Some(refused) = console.forged(&form) {
        return refused;
    }
    let path = Path((id.clone(), fic));
    let (state, caller) = (State(app.clone()), console.caller.clone());
    let reply = match owner {
        Owner::Application => api(fics::delete_for_application(state, caller, path, HeaderMap::new()).await).await,
        Owner::Identity => api(fics::delete_for_identity(state, caller, path, HeaderMap::new()).await).await,
    };
    match (owner, reply.ok()) {
        (Owner::Application, false) => {
            credentials_page(&app, &console, &id, "federated", Some(reply.failure()), None).await
        }
        (Owner::Identity, false) => identity_page(&app, &console, &id, Some(reply.failure())).await,
        (Owner::Application, true) => to(format!("/console/applications/{id}/credentials?tab=federated")),
        (Owner::Identity, true) => to(format!("/console/identities/{id}")),
    }
}

pub async fn delete_federated_credential(
    State(app): State<AppState>,
    console: Console,
    Path((id, fic)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Response {
    remove_credential(app, console, Owner::Application, id, fic, form).await
}

pub async fn delete_identity_credential(
    State(app): State<AppState>,
    console: Console,
    Path((id, fic)): Path<(String, String)>,
    Form(form): Form<FormData>,
) -> Response {
    remove_credential(app, console, Owner::Identity, id, fic, form).await
}
