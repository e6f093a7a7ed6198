//! The configuration file: a tenant's desired state, as written by an
//! administrator (YAML or JSON) and as `wisp export` writes it. Its JSON Schema
//! is generated from these types (`wisp apply --schema`, `schema/tenant.schema.json`).
//!
//! Objects are named, and refer to each other by name. Secrets never appear.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The only `apiVersion` this build understands.
pub const API_VERSION: &str = "wisp/v1";

/// A tenant's desired state. Every list is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "wisp tenant configuration")]
pub struct Manifest {
    /// Format version of this file: `wisp/v1`.
    #[schemars(extend("const" = "wisp/v1"))]
    pub api_version: String,
    /// App registrations, each with its service principal in this tenant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<ApplicationSpec>,
    /// User-assigned managed identities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_identities: Vec<IdentitySpec>,
    /// Compute resources (VMs, container hosts, apps) and the identities attached to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceSpec>,
    /// Other tenants' multi-tenant applications provisioned in this tenant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_principals: Vec<ServicePrincipalSpec>,
    /// App roles granted to applications and managed identities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role_assignments: Vec<RoleAssignmentSpec>,
    /// Signing keys of issuers wisp must not fetch (air-gapped clusters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub federated_issuers: Vec<IssuerSpec>,
}

/// An app registration. Its `name` (the display name) identifies it in the tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationSpec {
    /// Display name; unique among the tenant's applications for the file to refer to it.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Other tenants may provision it (`signInAudience: AzureADMultipleOrgs`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub multi_tenant: bool,
    /// Application ID URIs, e.g. `api://orders`: what clients ask tokens for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier_uris: Vec<String>,
    /// Roles the application exposes as an API, granted with `roleAssignments`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_roles: Vec<AppRoleSpec>,
    /// Access token version its tokens are issued in (`api.requestedAccessTokenVersion`): 1 or 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_version: Option<i32>,
    /// Certificates (public part only) the application may authenticate with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateSpec>,
    /// Federated identity credentials: the external tokens it accepts instead of a secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub federated_credentials: Vec<FederatedCredentialSpec>,
}

/// An app role; identified by its `value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppRoleSpec {
    /// What appears in the token's `roles` claim, e.g. `Orders.Read`.
    pub value: String,
    /// Role id; kept from the live role of the same value, or generated, when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A role must be disabled (and applied) before it can be removed.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
}

/// A certificate's public part; identified by its content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateSpec {
    /// PEM (`-----BEGIN CERTIFICATE-----`) or base64 DER. Never a private key.
    pub certificate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// RFC 3339; when absent: kept as it is, or the time of the first apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<String>,
    /// RFC 3339; when absent: kept as it is, or one year after the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<String>,
}

/// A federated identity credential; identified by its `name` on its owner. Give
/// `issuer` with `subject` or `claimsMatchingExpression`, or one scenario
/// (`github`, `kubernetes`, `managedIdentity`) that fills them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederatedCredentialSpec {
    /// 3–120 letters, digits, `-` and `_`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_matching_expression: Option<ExpressionSpec>,
    /// GitHub Actions: issuer and subject exactly as GitHub emits them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<GitHubSpec>,
    /// A Kubernetes service account of a cluster's OIDC issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesSpec>,
    /// A user-assigned managed identity of this tenant (by name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_identity: Option<String>,
    /// Default `api://AzureADTokenExchange`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A claims-matching expression (see the README for the language).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpressionSpec {
    pub value: String,
    /// 1 (Entra's language) or 2 (wisp's extensions). Default 1.
    #[serde(default = "one")]
    pub language_version: i32,
}

/// The GitHub Actions scenario: `repository` and exactly one of `branch`,
/// `environment`, `tag`, `pullRequest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitHubSpec {
    /// `ORG/REPO`.
    pub repository: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub pull_request: bool,
}

/// The Kubernetes scenario: subject `system:serviceaccount:NAMESPACE:SERVICE_ACCOUNT`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesSpec {
    /// The cluster's service-account issuer URL, exactly as its tokens carry it.
    pub issuer: String,
    pub namespace: String,
    pub service_account: String,
}

/// A user-assigned managed identity; identified by its `name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentitySpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub federated_credentials: Vec<FederatedCredentialSpec>,
}

/// A compute resource; identified by its `name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceSpec {
    /// 1–64 letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// Give it a system-assigned identity, born and deleted with it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub system_assigned: bool,
    /// User-assigned identities attached to it (by name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<String>,
}

/// Another tenant's multi-tenant application, provisioned here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePrincipalSpec {
    /// The application's client id (appId), as its owner published it.
    pub app_id: Uuid,
}

/// A grant of one app role to one principal. Name the principal with exactly one
/// of `application`, `managedIdentity`, `resource` (its system-assigned
/// identity) or `servicePrincipal` (a provisioned application's appId).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleAssignmentSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_principal: Option<Uuid>,
    /// `API/ROLE`: the API is an application's name, an identifier URI
    /// (`api://orders/Orders.Read`) or a provisioned application's appId.
    pub role: String,
}

/// Uploaded signing keys of one issuer; identified by the issuer URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssuerSpec {
    pub issuer: String,
    /// The issuer's public JWKS (`{"keys": [...]}`).
    pub jwks: serde_json::Value,
}

impl Manifest {
    /// Client ids of applications the file names that may live in other tenants.
    pub fn referenced_app_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.service_principals.iter().map(|s| s.app_id.to_string()).collect();
        for assignment in &self.role_assignments {
            ids.extend(assignment.service_principal.map(|id| id.to_string()));
            if let Some((api, _)) = assignment.role.rsplit_once('/')
                && let Ok(id) = Uuid::try_parse(api)
            {
                ids.push(id.to_string());
            }
        }
        ids
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_true(value: &bool) -> bool {
    *value
}

fn yes() -> bool {
    true
}

fn one() -> i32 {
    1
}

/// The file format's JSON Schema, pretty-printed.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Manifest);
    serde_json::to_string_pretty(&schema).expect("schema serializes") + "\n"
}

/// A problem in a configuration file, at a path such as
/// `applications[2].federatedCredentials[0].issuer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

/// Reads a manifest from parsed JSON/YAML, with the path of the first field
/// that does not fit the format.
pub fn from_value(value: serde_json::Value) -> Result<Manifest, Problem> {
    let manifest: Manifest = serde_path_to_error::deserialize(value)
        .map_err(|e| Problem { path: display_path(e.path()), message: e.inner().to_string() })?;
    if manifest.api_version != API_VERSION {
        return Err(Problem {
            path: "apiVersion".into(),
            message: format!("must be '{API_VERSION}' (this server's format), not '{}'", manifest.api_version),
        });
    }
    Ok(manifest)
}

/// `applications[2].federatedCredentials[0]` rather than serde_path_to_error's
/// `applications.2.federatedCredentials.0`.
fn display_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    if out == "?" { String::new() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_name_the_path() {
        let problem = from_value(json!({
            "apiVersion": "wisp/v1",
            "applications": [{"name": "a"}, {"name": "b", "federatedCredentials": [{"name": "x", "isuer": "y"}]}]
        }))
        .unwrap_err();
        assert_eq!(problem.path, "applications[1].federatedCredentials[0].isuer");
        assert!(problem.message.contains("unknown field `isuer`"), "{}", problem.message);

        let problem = from_value(json!({"apiVersion": "v2"})).unwrap_err();
        assert_eq!(problem.path, "apiVersion");
        assert!(from_value(json!({"applications": []})).unwrap_err().message.contains("apiVersion"));
    }

    #[test]
    fn the_published_schema_is_the_generated_one() {
        let published = include_str!("../../schema/tenant.schema.json");
        assert!(
            published == json_schema(),
            "schema/tenant.schema.json is stale: run `cargo run -- export --schema > schema/tenant.schema.json`"
        );
    }

    #[test]
    fn the_schema_describes_the_format() {
        let schema: serde_json::Value = serde_json::from_str(&json_schema()).unwrap();
        assert_eq!(schema["title"], "wisp tenant configuration");
        assert_eq!(schema["additionalProperties"], false);
        assert!(schema["properties"]["applications"].is_object());
        assert_eq!(schema["required"], json!(["apiVersion"]));
    }
}
