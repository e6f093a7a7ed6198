//! The directory's objects as plain Rust types, and the rules for writing them.
//! No SQL, no HTTP.

pub mod builtin;
pub mod cache;
pub mod scenario;
pub mod validation;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An isolated directory with its own issuer and signing keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: Uuid,
    pub display_name: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// `signInAudience` of an application: usable in its home tenant only.
pub const SINGLE_TENANT: &str = "AzureADMyOrg";
/// `signInAudience`: other tenants may provision the application.
pub const MULTI_TENANT: &str = "AzureADMultipleOrgs";

/// An app role an application exposes, in Graph's shape (also how it is stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRole {
    pub id: Uuid,
    pub value: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "application_member_types")]
    pub allowed_member_types: Vec<String>,
    #[serde(default = "enabled")]
    pub is_enabled: bool,
}

fn application_member_types() -> Vec<String> {
    vec!["Application".to_string()]
}

fn enabled() -> bool {
    true
}

/// An app registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// Object id.
    pub id: Uuid,
    /// Client id.
    pub app_id: Uuid,
    pub tenant_id: Uuid,
    pub display_name: String,
    pub description: Option<String>,
    pub sign_in_audience: String,
    pub identifier_uris: Vec<String>,
    pub app_roles: Vec<AppRole>,
    /// `api.requestedAccessTokenVersion`: `Some(1)` asks for v1 tokens.
    pub requested_token_version: Option<i32>,
    /// Bumped by every update; the ETag.
    pub version: i64,
    pub created_at: i64,
}

impl Application {
    /// A new single-tenant application with fresh object and client ids and no attributes yet.
    pub fn new(tenant_id: Uuid, display_name: String, now: i64) -> Self {
        Application {
            id: Uuid::new_v4(),
            app_id: Uuid::new_v4(),
            tenant_id,
            display_name,
            description: None,
            sign_in_audience: SINGLE_TENANT.to_string(),
            identifier_uris: Vec::new(),
            app_roles: Vec::new(),
            requested_token_version: None,
            version: 1,
            created_at: now,
        }
    }
}

/// A client secret's public metadata (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordCredentialInfo {
    pub key_id: Uuid,
    pub display_name: Option<String>,
    pub hint: String,
    pub start_at: i64,
    pub end_at: i64,
}

/// An uploaded certificate's public metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCredentialInfo {
    pub key_id: Uuid,
    pub display_name: Option<String>,
    /// base64url SHA-1 thumbprint (`x5t`); Graph shows it as `customKeyIdentifier` (hex).
    pub thumbprint_sha1: String,
    pub thumbprint_sha256: String,
    pub start_at: i64,
    pub end_at: i64,
}

/// A federated identity credential on an application or user-assigned identity.
#[derive(Debug, Clone, PartialEq)]
pub struct FederatedCredential {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub name: String,
    pub issuer: String,
    /// Exactly one of `subject` and `expression` is set.
    pub subject: Option<String>,
    pub expression: Option<ClaimsExpression>,
    pub audiences: Vec<String>,
    pub description: Option<String>,
    pub version: i64,
    pub created_at: i64,
}

/// A claims-matching expression, as written and compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimsExpression {
    pub value: String,
    pub language_version: i32,
    pub compiled: crate::federation::expression::Expr,
}

/// A service principal: an application's (or managed identity's, or built-in
/// resource's) presence in one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePrincipal {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub app_id: String,
    pub display_name: String,
    /// `Application`, `ManagedIdentity` or `BuiltIn`.
    pub principal_type: String,
    pub created_at: i64,
}

/// A managed identity: a service principal with no credentials of its own that
/// the platform hands to compute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedIdentity {
    /// The identity object's id (its resource id).
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// System-assigned: born and dies with one compute resource.
    pub system_assigned: bool,
    pub display_name: String,
    pub client_id: Uuid,
    /// Object id of its service principal: `sub`/`oid` of its tokens.
    pub principal_id: Uuid,
    pub created_at: i64,
}

/// A VM, container host or app that managed identities are attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputeResource {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// Unique in the tenant.
    pub name: String,
    pub system_identity_id: Option<Uuid>,
    /// Attached user-assigned identities (their ids).
    pub user_assigned: Vec<Uuid>,
    pub version: i64,
    pub created_at: i64,
}

/// A grant of one app role of a resource to a principal, in one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRoleAssignment {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub principal_id: Uuid,
    pub resource_id: Uuid,
    pub app_role_id: Uuid,
    pub created_at: i64,
}

/// Parses a tenant path segment: a GUID in any of its usual spellings, compared
/// in lowercase hyphenated form everywhere else.
pub fn parse_tenant_id(segment: &str) -> Option<Uuid> {
    // Only the hyphenated form Entra uses; `Uuid::parse_str` would also take
    // braces, URNs and bare hex, which no client sends.
    if segment.len() != 36 {
        return None;
    }
    Uuid::try_parse(segment).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_hyphenated_guids() {
        let id = Uuid::new_v4();
        assert_eq!(parse_tenant_id(&id.to_string()), Some(id));
        assert_eq!(parse_tenant_id(&id.to_string().to_uppercase()), Some(id));
        assert_eq!(parse_tenant_id(&id.simple().to_string()), None);
        assert_eq!(parse_tenant_id("common"), None);
        assert_eq!(parse_tenant_id(""), None);
    }
}
