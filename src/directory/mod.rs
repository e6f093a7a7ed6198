//! The directory's objects as plain Rust types: tenants for now; applications,
//! service principals and credentials grow here. No SQL, no HTTP.

use uuid::Uuid;

/// An isolated directory with its own issuer and signing keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: Uuid,
    pub display_name: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// `signInAudience` of an application.
pub const SINGLE_TENANT: &str = "AzureADMyOrg";

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
