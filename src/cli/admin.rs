//! `wisp app|fic|secret|sp|role|mi|resource|tenant …`: administration from the
//! command line, through the same admin API every other client uses. Objects
//! are named the way people think of them (display name, appId, identifier
//! URI) and resolved to ids here.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::client::{AdminClient, ConnectionArgs, filter_eq};
use crate::directory::scenario::{self, GitHubEntity};

#[derive(Args, Debug)]
pub struct AdminArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Output format
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum AppCommand {
    /// Register an application (and its service principal in this tenant).
    Create {
        /// Display name
        name: String,
        /// Let other tenants provision it (signInAudience AzureADMultipleOrgs)
        #[arg(long)]
        multi_tenant: bool,
        /// Identifier URI, e.g. api://orders (repeatable)
        #[arg(long = "identifier-uri", value_name = "URI")]
        identifier_uris: Vec<String>,
        /// App role to expose, e.g. Orders.Read (repeatable)
        #[arg(long = "app-role", value_name = "VALUE")]
        app_roles: Vec<String>,
        /// Access token version the API wants (1 or 2)
        #[arg(long, value_name = "N")]
        token_version: Option<i32>,
    },
    /// List applications.
    List,
    /// Show one application (by display name, appId or object id).
    Show { app: String },
    /// Delete an application, its credentials and service principals.
    Delete { app: String },
}

#[derive(Args, Debug)]
#[group(id = "owner", required = true, multiple = false)]
pub struct FicOwnerArgs {
    /// The application (display name, appId or object id)
    #[arg(long, group = "owner")]
    app: Option<String>,
    /// The user-assigned managed identity (display name or id)
    #[arg(long, group = "owner")]
    mi: Option<String>,
}

#[derive(Args, Debug)]
pub struct FicAddArgs {
    #[command(flatten)]
    owner: FicOwnerArgs,
    /// Credential name (3–120 letters, digits, '-', '_')
    #[arg(long)]
    name: String,
    /// Issuer URL (filled by the scenario helpers)
    #[arg(long)]
    issuer: Option<String>,
    /// Subject (filled by the scenario helpers)
    #[arg(long)]
    subject: Option<String>,
    /// Audience [default: api://AzureADTokenExchange]
    #[arg(long)]
    audience: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// GitHub Actions: the repository, ORG/REPO
    #[arg(long, value_name = "ORG/REPO", conflicts_with_all = ["kubernetes_issuer", "managed_identity"])]
    github_repo: Option<String>,
    /// GitHub Actions: a branch
    #[arg(long, requires = "github_repo", conflicts_with_all = ["environment", "tag", "pull_request"])]
    branch: Option<String>,
    /// GitHub Actions: a deployment environment
    #[arg(long, requires = "github_repo", conflicts_with_all = ["tag", "pull_request"])]
    environment: Option<String>,
    /// GitHub Actions: a tag
    #[arg(long, requires = "github_repo", conflicts_with = "pull_request")]
    tag: Option<String>,
    /// GitHub Actions: pull requests
    #[arg(long, requires = "github_repo")]
    pull_request: bool,
    /// Kubernetes: the cluster's service-account issuer URL
    #[arg(long, value_name = "URL", requires_all = ["namespace", "service_account"], conflicts_with = "managed_identity")]
    kubernetes_issuer: Option<String>,
    /// Kubernetes: namespace
    #[arg(long, requires = "kubernetes_issuer")]
    namespace: Option<String>,
    /// Kubernetes: service account
    #[arg(long, requires = "kubernetes_issuer")]
    service_account: Option<String>,
    /// Trust a user-assigned managed identity of this tenant (display name or id)
    #[arg(long, value_name = "NAME")]
    managed_identity: Option<String>,
    /// A claims-matching expression instead of a subject, e.g.
    /// "claims['sub'] matches 'repo:acme/*:environment:prod'" (needs --issuer)
    #[arg(long, value_name = "EXPR", conflicts_with_all = ["subject", "github_repo", "kubernetes_issuer", "managed_identity"])]
    expression: Option<String>,
    /// The expression's language version: 1 (Entra's) or 2 (or, not, in, …)
    #[arg(long, value_name = "N", default_value_t = 1, requires = "expression")]
    language_version: i32,
}

#[derive(Subcommand, Debug)]
pub enum FicCommand {
    /// Add a federated identity credential, by hand or with a scenario helper.
    Add(Box<FicAddArgs>),
    /// List the credentials of an application or identity.
    List {
        #[command(flatten)]
        owner: FicOwnerArgs,
    },
    /// Explain how a token would fare against the credentials, check by check.
    Explain {
        #[command(flatten)]
        owner: FicOwnerArgs,
        /// File holding the token (JWT) to test; `-` for standard input
        token_file: PathBuf,
        /// Evaluate the bare claims without checking signature and time
        #[arg(long)]
        no_verify: bool,
    },
    /// Remove a credential by name.
    Remove {
        #[command(flatten)]
        owner: FicOwnerArgs,
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Add a client secret; it is printed once.
    Add {
        app: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Days until it expires [default: 180]
        #[arg(long)]
        days: Option<i64>,
    },
    /// Remove a client secret by its key id.
    Remove { app: String, key_id: String },
}

#[derive(Subcommand, Debug)]
pub enum SpCommand {
    /// Provision an application in this tenant (another tenant's multi-tenant app, by appId).
    Create { app_id: String },
    /// List service principals.
    List,
}

#[derive(Subcommand, Debug)]
pub enum RoleCommand {
    /// Grant a client an app role on an API.
    Grant(RoleArgs),
    /// Revoke it.
    Revoke(RoleArgs),
}

#[derive(Args, Debug)]
pub struct RoleArgs {
    /// The client: application (display name or appId) or managed identity (display name)
    #[arg(long)]
    to: String,
    /// The API: identifier URI (api://orders), display name or appId
    #[arg(long)]
    api: String,
    /// The role's value, e.g. Orders.Read
    #[arg(long)]
    role: String,
}

#[derive(Subcommand, Debug)]
pub enum MiCommand {
    /// Create a user-assigned managed identity.
    Create {
        name: String,
    },
    List,
    Delete {
        mi: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ResourceCommand {
    /// Create a compute resource.
    Create {
        name: String,
        /// Give it a system-assigned identity
        #[arg(long)]
        system_assigned: bool,
        /// Attach a user-assigned identity (repeatable)
        #[arg(long = "identity", value_name = "MI")]
        identities: Vec<String>,
    },
    List,
    Show {
        resource: String,
    },
    Delete {
        resource: String,
    },
    /// Create a one-time join token that enrolls a `wisp agent` for this resource.
    JoinToken {
        resource: String,
        /// How long it stays usable, e.g. 15m, 1h (at most 24h)
        #[arg(long, default_value = "15m")]
        valid: String,
    },
    /// Attach a user-assigned identity to a resource.
    Attach {
        resource: String,
        mi: String,
    },
    /// Detach a user-assigned identity from a resource.
    Detach {
        resource: String,
        mi: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a tenant; its first administrator credential is printed once.
    Create {
        name: String,
        /// Also write the credential to FILE (mode 0600) in bootstrap.json's
        /// format, for `--bootstrap FILE`
        #[arg(long, value_name = "FILE")]
        save_credentials: Option<std::path::PathBuf>,
    },
    List,
    /// Show, or set, the algorithm the tenant's tokens are signed with. RS256 is
    /// the default and what every Entra client expects; ES256 and EdDSA are far
    /// cheaper to sign, for resource servers that accept them.
    SigningAlgorithm {
        #[arg(value_parser = ["RS256", "ES256", "EdDSA"])]
        algorithm: Option<String>,
    },
}

/// Prints `value` as JSON, or as a table of `columns` (header, JSON pointer).
fn print(output: Output, value: &Value, columns: &[(&str, &str)]) {
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
        return;
    }
    let rows: Vec<&Value> = match value.get("value").and_then(Value::as_array) {
        Some(items) => items.iter().collect(),
        None => vec![value],
    };
    let cell = |row: &Value, pointer: &str| match row.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(Value::Array(items)) => {
            items.iter().map(|i| i.as_str().map(str::to_string).unwrap_or(i.to_string())).collect::<Vec<_>>().join(",")
        }
        Some(other) => other.to_string(),
    };
    let table: Vec<Vec<String>> = rows.iter().map(|row| columns.iter().map(|(_, p)| cell(row, p)).collect()).collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (h, _))| table.iter().map(|r| r[i].chars().count()).chain([h.len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<String>| {
        cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string()
    };
    println!("{}", line(columns.iter().map(|(h, _)| h.to_string()).collect()));
    for row in table {
        println!("{}", line(row));
    }
}

const APP_COLUMNS: &[(&str, &str)] = &[
    ("NAME", "/displayName"),
    ("APP ID", "/appId"),
    ("OBJECT ID", "/id"),
    ("AUDIENCE", "/signInAudience"),
    ("IDENTIFIER URIS", "/identifierUris"),
];
const FIC_COLUMNS: &[(&str, &str)] = &[
    ("NAME", "/name"),
    ("ISSUER", "/issuer"),
    ("SUBJECT", "/subject"),
    ("EXPRESSION", "/claimsMatchingExpression/value"),
    ("AUDIENCES", "/audiences"),
];
const SP_COLUMNS: &[(&str, &str)] =
    &[("NAME", "/displayName"), ("APP ID", "/appId"), ("OBJECT ID", "/id"), ("TYPE", "/servicePrincipalType")];
const MI_COLUMNS: &[(&str, &str)] =
    &[("NAME", "/displayName"), ("CLIENT ID", "/clientId"), ("PRINCIPAL ID", "/principalId"), ("ID", "/id")];
const RESOURCE_COLUMNS: &[(&str, &str)] = &[
    ("NAME", "/name"),
    ("ID", "/id"),
    ("IDENTITY", "/identity/type"),
    ("SYSTEM PRINCIPAL ID", "/identity/principalId"),
];
const TENANT_COLUMNS: &[(&str, &str)] = &[("NAME", "/displayName"), ("ID", "/id"), ("CREATED", "/createdDateTime")];

fn is_guid(text: &str) -> bool {
    uuid::Uuid::try_parse(text).is_ok()
}

/// Exactly one match, or a clear error.
fn single(items: Vec<Value>, what: &str, name: &str) -> anyhow::Result<Value> {
    match items.len() {
        1 => Ok(items.into_iter().next().expect("one item")),
        0 => bail!("no {what} named {name:?} in this tenant"),
        n => bail!("{n} {what}s are named {name:?}; use the id instead"),
    }
}

/// An application by object id, appId or display name.
async fn find_app(client: &AdminClient, text: &str) -> anyhow::Result<Value> {
    if is_guid(text) {
        if let Ok(app) = client.get(&format!("/v1.0/applications/{text}")).await {
            return Ok(app);
        }
        let by_app_id = client.list_all(&format!("/v1.0/applications?$filter={}", filter_eq("appId", text))).await?;
        if let Some(app) = by_app_id.into_iter().next() {
            return Ok(app);
        }
    }
    let named = client.list_all(&format!("/v1.0/applications?$filter={}", filter_eq("displayName", text))).await?;
    single(named, "application", text)
}

/// A user-assigned managed identity by id or display name.
async fn find_mi(client: &AdminClient, text: &str) -> anyhow::Result<Value> {
    if is_guid(text)
        && let Ok(mi) = client.get(&format!("/v1.0/managedIdentities/{text}")).await
    {
        return Ok(mi);
    }
    let named = client.list_all(&format!("/v1.0/managedIdentities?$filter={}", filter_eq("displayName", text))).await?;
    single(named, "managed identity", text)
}

async fn find_resource(client: &AdminClient, text: &str) -> anyhow::Result<Value> {
    if is_guid(text)
        && let Ok(resource) = client.get(&format!("/v1.0/resources/{text}")).await
    {
        return Ok(resource);
    }
    let named = client.list_all(&format!("/v1.0/resources?$filter={}", filter_eq("name", text))).await?;
    single(named, "resource", text)
}

async fn sp_by_app_id(client: &AdminClient, app_id: &str) -> anyhow::Result<Value> {
    let found = client.list_all(&format!("/v1.0/servicePrincipals?$filter={}", filter_eq("appId", app_id))).await?;
    found.into_iter().next().with_context(|| format!("application {app_id} has no service principal in this tenant"))
}

/// The service principal of a client: an application or a managed identity —
/// by appId also when the application is homed in another tenant.
async fn find_client_sp(client: &AdminClient, text: &str) -> anyhow::Result<Value> {
    if is_guid(text)
        && let Ok(sp) = sp_by_app_id(client, text).await
    {
        return Ok(sp);
    }
    match find_app(client, text).await {
        Ok(app) => sp_by_app_id(client, app["appId"].as_str().unwrap_or_default()).await,
        Err(app_error) => match find_mi(client, text).await {
            Ok(mi) => sp_by_app_id(client, mi["clientId"].as_str().unwrap_or_default()).await,
            Err(_) => Err(app_error),
        },
    }
}

/// The service principal of an API, by identifier URI, appId or display name.
async fn find_api_sp(client: &AdminClient, text: &str) -> anyhow::Result<Value> {
    if is_guid(text) {
        return sp_by_app_id(client, text).await;
    }
    let all = client.list_all("/v1.0/servicePrincipals").await?;
    let by_uri: Vec<Value> = all
        .iter()
        .filter(|sp| sp["servicePrincipalNames"].as_array().is_some_and(|names| names.iter().any(|n| n == text)))
        .cloned()
        .collect();
    if !by_uri.is_empty() {
        return single(by_uri, "API", text);
    }
    single(all.into_iter().filter(|sp| sp["displayName"] == text).collect(), "API", text)
}

pub async fn app(args: &AdminArgs, command: &AppCommand) -> anyhow::Result<()> {
    let client = AdminClient::connect(&args.connection).await?;
    match command {
        AppCommand::Create { name, multi_tenant, identifier_uris, app_roles, token_version } => {
            let mut body = json!({
                "displayName": name,
                "signInAudience": if *multi_tenant { "AzureADMultipleOrgs" } else { "AzureADMyOrg" },
                "identifierUris": identifier_uris,
                "appRoles": app_roles.iter().map(|v| json!({"value": v, "displayName": v, "allowedMemberTypes": ["Application"]})).collect::<Vec<_>>(),
            });
            if let Some(version) = token_version {
                body["api"] = json!({"requestedAccessTokenVersion": version});
            }
            let created = client.post("/v1.0/applications", &body).await?;
            print(args.output, &created, APP_COLUMNS);
        }
        AppCommand::List => {
            let items = client.list_all("/v1.0/applications").await?;
            print(args.output, &json!({"value": items}), APP_COLUMNS);
        }
        AppCommand::Show { app } => {
            let found = find_app(&client, app).await?;
            print(args.output, &found, APP_COLUMNS);
        }
        AppCommand::Delete { app } => {
            let found = find_app(&client, app).await?;
            client.delete(&format!("/v1.0/applications/{}", found["id"].as_str().unwrap_or_default())).await?;
            eprintln!("deleted application {}", found["displayName"].as_str().unwrap_or_default());
        }
    }
    Ok(())
}

async fn fic_base(client: &AdminClient, owner: &FicOwnerArgs) -> anyhow::Result<String> {
    match (&owner.app, &owner.mi) {
        (Some(app), _) => {
            let found = find_app(client, app).await?;
            Ok(format!("/v1.0/applications/{}/federatedIdentityCredentials", found["id"].as_str().unwrap_or_default()))
        }
        (None, Some(mi)) => {
            let found = find_mi(client, mi).await?;
            Ok(format!(
                "/v1.0/managedIdentities/{}/federatedIdentityCredentials",
                found["id"].as_str().unwrap_or_default()
            ))
        }
        (None, None) => bail!("give --app or --mi"),
    }
}

pub async fn fic(args: &AdminArgs, command: &FicCommand) -> anyhow::Result<()> {
    let client = AdminClient::connect(&args.connection).await?;
    match command {
        FicCommand::Add(add) => {
            let FicAddArgs {
                owner,
                name,
                issuer,
                subject,
                audience,
                description,
                github_repo,
                branch,
                environment,
                tag,
                pull_request,
                kubernetes_issuer,
                namespace,
                service_account,
                managed_identity,
                expression,
                language_version,
            } = add.as_ref();
            let (scenario_issuer, scenario_subject) = if let Some(repo) = github_repo {
                let entity = match (branch, environment, tag, pull_request) {
                    (Some(b), _, _, _) => GitHubEntity::Branch(b.clone()),
                    (_, Some(e), _, _) => GitHubEntity::Environment(e.clone()),
                    (_, _, Some(t), _) => GitHubEntity::Tag(t.clone()),
                    (_, _, _, true) => GitHubEntity::PullRequest,
                    _ => bail!("with --github-repo give one of --branch, --environment, --tag or --pull-request"),
                };
                let subject = scenario::github_subject(repo, &entity).map_err(anyhow::Error::msg)?;
                (Some(scenario::GITHUB_ISSUER.to_string()), Some(subject))
            } else if let Some(cluster) = kubernetes_issuer {
                let subject = scenario::kubernetes_subject(
                    namespace.as_deref().unwrap_or_default(),
                    service_account.as_deref().unwrap_or_default(),
                )
                .map_err(anyhow::Error::msg)?;
                (Some(cluster.clone()), Some(subject))
            } else if let Some(mi) = managed_identity {
                let found = find_mi(&client, mi).await?;
                let principal = found["principalId"].as_str().context("identity has no principalId")?.to_string();
                (Some(scenario::tenant_issuer(&client.server, &client.tenant)), Some(principal))
            } else {
                (None, None)
            };
            if scenario_issuer.is_some() && (issuer.is_some() || subject.is_some()) {
                bail!("a scenario helper fills --issuer and --subject; do not give them too");
            }
            let issuer =
                scenario_issuer.or(issuer.clone()).context("give --issuer and --subject, or a scenario helper")?;
            let mut body = match expression {
                Some(expression) => json!({"name": name, "issuer": issuer,
                    "claimsMatchingExpression": {"value": expression, "languageVersion": language_version}}),
                None => {
                    let subject = scenario_subject
                        .or(subject.clone())
                        .context("give --subject or --expression, or a scenario helper")?;
                    json!({"name": name, "issuer": issuer, "subject": subject})
                }
            };
            if let Some(audience) = audience {
                body["audiences"] = json!([audience]);
            }
            if let Some(description) = description {
                body["description"] = json!(description);
            }
            let base = fic_base(&client, owner).await?;
            let created = client.post(&base, &body).await?;
            print(args.output, &created, FIC_COLUMNS);
        }
        FicCommand::List { owner } => {
            let base = fic_base(&client, owner).await?;
            let listed = client.get(&base).await?;
            print(args.output, &listed, FIC_COLUMNS);
        }
        FicCommand::Explain { owner, token_file, no_verify } => {
            let token = if token_file.as_os_str() == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
                text
            } else {
                std::fs::read_to_string(token_file).with_context(|| format!("cannot read {}", token_file.display()))?
            };
            let base = fic_base(&client, owner).await?;
            let answer = client
                .post(&format!("{base}/evaluate"), &json!({"assertion": token.trim(), "verifySignature": !no_verify}))
                .await?;
            if args.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
                return Ok(());
            }
            if let Some(error) = answer["error"].as_str() {
                bail!("{error}");
            }
            println!("issuer:  {}", answer["assertion"]["iss"].as_str().unwrap_or_default());
            println!("subject: {}", answer["assertion"]["sub"].as_str().unwrap_or_default());
            if let Some(note) = answer["note"].as_str() {
                println!("NOTE:    {note}");
            }
            for check in answer["checks"].as_array().into_iter().flatten() {
                let mark = if check["passed"] == true { "ok  " } else { "FAIL" };
                println!(
                    "{mark} {} {}",
                    check["check"].as_str().unwrap_or_default(),
                    check["detail"].as_str().unwrap_or_default()
                );
            }
            print_credentials(answer["credentials"].as_array().map(Vec::as_slice).unwrap_or_default());
            match answer["matchedCredential"].as_str() {
                Some(name) => println!("=> accepted by credential {name}"),
                None => println!("=> refused: no credential matches"),
            }
        }
        FicCommand::Remove { owner, name } => {
            let base = fic_base(&client, owner).await?;
            client.delete(&format!("{base}/{name}")).await?;
            eprintln!("removed federated identity credential {name}");
        }
    }
    Ok(())
}

pub async fn secret(args: &AdminArgs, command: &SecretCommand) -> anyhow::Result<()> {
    let client = AdminClient::connect(&args.connection).await?;
    match command {
        SecretCommand::Add { app, display_name, days } => {
            let found = find_app(&client, app).await?;
            let mut credential = json!({"displayName": display_name});
            if let Some(days) = days {
                let end = time::OffsetDateTime::now_utc() + time::Duration::days(*days);
                credential["endDateTime"] =
                    json!(end.format(&time::format_description::well_known::Rfc3339).context("date out of range")?);
            }
            let added = client
                .post(
                    &format!("/v1.0/applications/{}/addPassword", found["id"].as_str().unwrap_or_default()),
                    &json!({"passwordCredential": credential}),
                )
                .await?;
            match args.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&added)?),
                Output::Table => {
                    println!("key id:     {}", added["keyId"].as_str().unwrap_or_default());
                    println!("expires:    {}", added["endDateTime"].as_str().unwrap_or_default());
                    println!("secret:     {}", added["secretText"].as_str().unwrap_or_default());
                    eprintln!(
                        "The secret is shown only this once. Prefer a federated identity credential where you can."
                    );
                }
            }
        }
        SecretCommand::Remove { app, key_id } => {
            let found = find_app(&client, app).await?;
            client
                .post(
                    &format!("/v1.0/applications/{}/removePassword", found["id"].as_str().unwrap_or_default()),
                    &json!({"keyId": key_id}),
                )
                .await?;
            eprintln!("removed client secret {key_id}");
        }
    }
    Ok(())
}

pub async fn sp(args: &AdminArgs, command: &SpCommand) -> anyhow::Result<()> {
    let client = AdminClient::connect(&args.connection).await?;
    match command {
        SpCommand::Create { app_id } => {
            let created = client.post("/v1.0/servicePrincipals", &json!({"appId": app_id})).await?;
            print(args.output, &created, SP_COLUMNS);
        }
        SpCommand::List => {
            let items = client.list_all("/v1.0/servicePrincipals").await?;
            print(args.output, &json!({"value": items}), SP_COLUMNS);
        }
    }
    Ok(())
}

pub async fn role(args: &AdminArgs, command: &RoleCommand) -> anyhow::Result<()> {
    let client = AdminClient::connect(&args.connection).await?;
    let (RoleCommand::Grant(role) | RoleCommand::Revoke(role)) = command;
    let principal = find_client_sp(&client, &role.to).await?;
    let api = find_api_sp(&client, &role.api).await?;
    let api_id = api["id"].as_str().unwrap_or_default().to_string();
    let app_role = api["appRoles"]
        .as_array()
        .and_then(|roles| roles.iter().find(|r| r["value"] == role.role.as_str()))
        .with_context(|| format!("API {} has no app role {:?}", role.api, role.role))?;
    let role_id = app_role["id"].as_str().unwrap_or_default().to_string();
    let principal_id = principal["id"].as_str().unwrap_or_default().to_string();
    match command {
        RoleCommand::Grant(_) => {
            let assigned = client
                .post(
                    &format!("/v1.0/servicePrincipals/{api_id}/appRoleAssignedTo"),
                    &json!({"principalId": principal_id, "resourceId": api_id, "appRoleId": role_id}),
                )
                .await?;
            print(
                args.output,
                &assigned,
                &[
                    ("ID", "/id"),
                    ("CLIENT", "/principalDisplayName"),
                    ("API", "/resourceDisplayName"),
                    ("ROLE ID", "/appRoleId"),
                ],
            );
        }
        RoleCommand::Revoke(_) => {
            let assignments = client.get(&format!("/v1.0/servicePrincipals/{api_id}/appRoleAssignedTo")).await?;
            let assignment = assignments["value"]
                .as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .find(|a| a["principalId"] == principal_id.as_str() && a["appRoleId"] == role_id.as_str())
                })
                .with_context(|| format!("{} does not hold {} on {}", role.to, role.role, role.api))?;
            client
                .delete(&format!(
                    "/v1.0/servicePrincipals/{api_id}/appRoleAssignedTo/{}",
                    assignment["id"].as_str().unwrap_or_default()
                ))
                .await?;
            eprintln!("revoked {} from {} on {}", role.role, role.to, role.api);
        }
    }
    Ok(())
}

pub async fn mi(args: &AdminArgs, command: &MiCommand) -> anyhow::Result<()> {
    let client = AdminClient::connect(&args.connection).await?;
    match command {
        MiCommand::Create { name } => {
            let created = client.post("/v1.0/managedIdentities", &json!({"displayName": name})).await?;
            print(args.output, &created, MI_COLUMNS);
        }
        MiCommand::List => {
            let items = client.list_all("/v1.0/managedIdentities").await?;
            print(args.output, &json!({"value": items}), MI_COLUMNS);
        }
        MiCommand::Delete { mi } => {
            let found = find_mi(&client, mi).await?;
            client.delete(&format!("/v1.0/managedIdentities/{}", found["id"].as_str().unwrap_or_default())).await?;
            eprintln!("deleted managed identity {}", found["displayName"].as_str().unwrap_or_default());
        }
    }
    Ok(())
}

pub async fn resource(args: &AdminArgs, command: &ResourceCommand) -> anyhow::Result<()> {
    let client = AdminClient::connect(&args.connection).await?;
    match command {
        ResourceCommand::Create { name, system_assigned, identities } => {
            let mut ids = Vec::with_capacity(identities.len());
            for mi in identities {
                ids.push(find_mi(&client, mi).await?["id"].clone());
            }
            let kind = match (*system_assigned, !ids.is_empty()) {
                (true, true) => "SystemAssigned, UserAssigned",
                (true, false) => "SystemAssigned",
                (false, true) => "UserAssigned",
                (false, false) => "None",
            };
            let mut identity = json!({"type": kind});
            if !ids.is_empty() {
                identity["userAssignedIdentities"] = json!(ids);
            }
            let created = client.post("/v1.0/resources", &json!({"name": name, "identity": identity})).await?;
            print(args.output, &created, RESOURCE_COLUMNS);
        }
        ResourceCommand::List => {
            let items = client.list_all("/v1.0/resources").await?;
            print(args.output, &json!({"value": items}), RESOURCE_COLUMNS);
        }
        ResourceCommand::Show { resource } => {
            let found = find_resource(&client, resource).await?;
            print(args.output, &found, RESOURCE_COLUMNS);
        }
        ResourceCommand::Attach { resource, mi } | ResourceCommand::Detach { resource, mi } => {
            let found = find_resource(&client, resource).await?;
            let identity = find_mi(&client, mi).await?;
            let id = identity["id"].as_str().unwrap_or_default().to_string();
            let mut attached: Vec<String> = found["identity"]["userAssignedIdentities"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let attach = matches!(command, ResourceCommand::Attach { .. });
            match (attach, attached.contains(&id)) {
                (true, true) => bail!("{mi} is already attached to {resource}"),
                (false, false) => bail!("{mi} is not attached to {resource}"),
                (true, false) => attached.push(id),
                (false, true) => attached.retain(|a| *a != id),
            }
            let system = found["identity"]["principalId"].is_string();
            let kind = match (system, !attached.is_empty()) {
                (true, true) => "SystemAssigned, UserAssigned",
                (true, false) => "SystemAssigned",
                (false, true) => "UserAssigned",
                (false, false) => "None",
            };
            let mut block = json!({"type": kind});
            if !attached.is_empty() {
                block["userAssignedIdentities"] = json!(attached);
            }
            let path = format!("/v1.0/resources/{}", found["id"].as_str().unwrap_or_default());
            client.patch(&path, &json!({"identity": block}), found["@odata.etag"].as_str()).await?;
            let updated = client.get(&path).await?;
            print(args.output, &updated, RESOURCE_COLUMNS);
        }
        ResourceCommand::JoinToken { resource, valid } => {
            let found = find_resource(&client, resource).await?;
            let seconds = crate::config::parse_duration(valid).with_context(|| format!("invalid --valid {valid:?}"))?;
            let created = client
                .post(
                    &format!("/v1.0/resources/{}/joinTokens", found["id"].as_str().unwrap_or_default()),
                    &json!({"validForSeconds": seconds}),
                )
                .await?;
            match args.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&created)?),
                Output::Table => {
                    println!("{}", created["joinToken"].as_str().unwrap_or_default());
                    eprintln!(
                        "One-time join token for {resource}, valid until {}. Enroll with:\n  wisp agent --server {} --ca-file CA.pem --join-token TOKEN",
                        created["expiresDateTime"].as_str().unwrap_or_default(),
                        client.server
                    );
                }
            }
        }
        ResourceCommand::Delete { resource } => {
            let found = find_resource(&client, resource).await?;
            client.delete(&format!("/v1.0/resources/{}", found["id"].as_str().unwrap_or_default())).await?;
            eprintln!("deleted resource {}", found["name"].as_str().unwrap_or_default());
        }
    }
    Ok(())
}

pub async fn tenant(args: &AdminArgs, command: &TenantCommand) -> anyhow::Result<()> {
    let client = AdminClient::connect(&args.connection).await?;
    match command {
        TenantCommand::Create { name, save_credentials } => {
            let created = client.post("/v1.0/tenants", &json!({"displayName": name})).await?;
            if let Some(path) = save_credentials {
                save_tenant_credentials(path, &client, &args.connection, &created)?;
            }
            match args.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&created)?),
                Output::Table => {
                    println!("tenant:         {}", created["id"].as_str().unwrap_or_default());
                    println!("admin client:   {}", created["adminCredential"]["clientId"].as_str().unwrap_or_default());
                    println!(
                        "admin secret:   {}",
                        created["adminCredential"]["clientSecret"].as_str().unwrap_or_default()
                    );
                    eprintln!("The secret is shown only this once.");
                }
            }
        }
        TenantCommand::List => {
            let listed = client.get("/v1.0/tenants").await?;
            print(args.output, &listed, TENANT_COLUMNS);
        }
        TenantCommand::SigningAlgorithm { algorithm } => {
            if let Some(algorithm) = algorithm {
                client.patch("/v1.0/policies/tokenSigning", &json!({"algorithm": algorithm}), None).await?;
            }
            let current = client.get("/v1.0/policies/tokenSigning").await?;
            print(args.output, &current, &[("ALGORITHM", "/algorithm"), ("SIGNING KEY", "/signingKeyId")]);
        }
    }
    Ok(())
}

/// Writes a new tenant's admin credential where `--bootstrap FILE` reads it.
/// Created with mode 0600 and never overwritten: it holds a secret.
fn save_tenant_credentials(
    path: &std::path::Path,
    client: &AdminClient,
    connection: &super::client::ConnectionArgs,
    created: &Value,
) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let ca_file = connection.ca_file.clone().or_else(|| {
        let bootstrap = connection.bootstrap.clone().unwrap_or_else(|| "wisp-data/bootstrap.json".into());
        let text = std::fs::read(bootstrap).ok()?;
        serde_json::from_slice::<Value>(&text).ok()?["ca_file"].as_str().map(Into::into)
    });
    let file = json!({
        "tenant_id": created["id"],
        "admin_client_id": created["adminCredential"]["clientId"],
        "admin_client_secret": created["adminCredential"]["clientSecret"],
        "authority": client.server,
        "ca_file": ca_file,
    });
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    out.write_all(serde_json::to_string_pretty(&file)?.as_bytes())?;
    eprintln!("Saved the credential to {} (use --bootstrap {}).", path.display(), path.display());
    Ok(())
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Only this client (display name, appId)
    #[arg(long)]
    app: Option<String>,
    /// Only granted or refused requests
    #[arg(long, value_parser = ["granted", "refused"])]
    outcome: Option<String>,
    /// The correlation id a client received
    #[arg(long)]
    correlation_id: Option<String>,
    /// Only the last DURATION, e.g. 15m, 2h, 7d
    #[arg(long, value_name = "DURATION")]
    since: Option<String>,
    /// How many records [default: 50]
    #[arg(long, default_value_t = 50)]
    top: u32,
    /// Show each credential's checks for refused federated assertions
    #[arg(long)]
    explain: bool,
}

const SIGN_IN_COLUMNS: &[(&str, &str)] = &[
    ("TIME", "/createdDateTime"),
    ("OUTCOME", "/outcome"),
    ("CODE", "/status/failureReason"),
    ("APP ID", "/appId"),
    ("CREDENTIAL", "/clientCredentialType"),
    ("ISSUER", "/assertion/issuer"),
    ("SUBJECT", "/assertion/subject"),
    ("CORRELATION ID", "/correlationId"),
];

pub async fn logs(args: &AdminArgs, logs: &LogsArgs) -> anyhow::Result<()> {
    let client = AdminClient::connect(&args.connection).await?;
    let mut clauses = Vec::new();
    if let Some(app) = &logs.app {
        let app_id = if is_guid(app) {
            app.clone()
        } else {
            find_app(&client, app).await?["appId"].as_str().unwrap_or_default().to_string()
        };
        clauses.push(format!("appId eq '{app_id}'"));
    }
    if let Some(outcome) = &logs.outcome {
        clauses.push(format!("outcome eq '{outcome}'"));
    }
    if let Some(id) = &logs.correlation_id {
        clauses.push(format!("correlationId eq '{}'", id.replace('\'', "''")));
    }
    if let Some(since) = &logs.since {
        let seconds = crate::config::parse_duration(since).with_context(|| format!("invalid --since {since:?}"))?;
        let from = time::OffsetDateTime::now_utc() - time::Duration::seconds(seconds);
        clauses.push(format!("createdDateTime ge {}", from.format(&time::format_description::well_known::Rfc3339)?));
    }
    let mut path = format!("/v1.0/auditLogs/signIns?$top={}", logs.top.clamp(1, 999));
    if !clauses.is_empty() {
        let filter: String = form_urlencoded::byte_serialize(clauses.join(" and ").as_bytes()).collect();
        path.push_str(&format!("&$filter={filter}"));
    }
    let listed = client.get(&path).await?;
    print(args.output, &listed, SIGN_IN_COLUMNS);
    if logs.explain && args.output == Output::Table {
        for entry in listed["value"].as_array().into_iter().flatten() {
            explain(entry);
        }
    }
    Ok(())
}

/// Prints, for one refused sign-in, every credential's checks.
fn explain(entry: &Value) {
    let Some(credentials) = entry.pointer("/details/credentials").and_then(Value::as_array) else { return };
    println!();
    println!(
        "{} {} ({})",
        entry["correlationId"].as_str().unwrap_or_default(),
        entry["outcome"].as_str().unwrap_or_default(),
        entry["status"]["failureReason"].as_str().unwrap_or("granted"),
    );
    if entry.pointer("/details/verified") == Some(&Value::Bool(false)) {
        println!("  (the assertion's signature was not checked: no credential trusts its issuer)");
    }
    print_credentials(credentials);
}

/// Each credential's checks, with hints.
fn print_credentials(credentials: &[Value]) {
    for credential in credentials {
        let verdict = if credential["matched"] == true { "matched" } else { "no match" };
        println!("  credential {}: {verdict}", credential["credentialName"].as_str().unwrap_or_default());
        for check in credential["checks"].as_array().into_iter().flatten() {
            let mark = if check["passed"] == true { "ok  " } else { "FAIL" };
            println!(
                "    {mark} {:<9} expected {:?}, presented {:?}",
                check["check"].as_str().unwrap_or_default(),
                check["expected"].as_str().unwrap_or_default(),
                check["actual"].as_str().unwrap_or_default()
            );
            if let Some(hint) = check["hint"].as_str() {
                println!("         hint: {hint}");
            }
        }
    }
}
