//! Resources every tenant has without anyone registering them, like Microsoft
//! Graph in Entra: wisp's own admin API, and the token-exchange audience. Their definitions live in code; each
//! tenant gets a service principal for them at creation, so role assignments
//! can point at it.

/// A built-in resource API.
pub struct BuiltinResource {
    pub app_id: &'static str,
    pub display_name: &'static str,
    pub identifier_uris: &'static [&'static str],
    pub roles: &'static [BuiltinRole],
    /// `aud` is the identifier URI as requested, even in v2 tokens — so a
    /// managed identity token for `api://AzureADTokenExchange` matches a
    /// federated credential whose audience is exactly that.
    pub audience_is_identifier: bool,
}

pub struct BuiltinRole {
    pub id: &'static str,
    pub value: &'static str,
    pub display_name: &'static str,
}

/// Full control of the tenant's directory.
pub const DIRECTORY_READ_WRITE_ALL: &str = "Directory.ReadWrite.All";
/// Read everything in the tenant's directory.
pub const DIRECTORY_READ_ALL: &str = "Directory.Read.All";
/// Manage applications and their credentials.
pub const APPLICATION_READ_WRITE_ALL: &str = "Application.ReadWrite.All";
/// Read applications and their credentials' metadata.
pub const APPLICATION_READ_ALL: &str = "Application.Read.All";

/// wisp's admin API: `scope=api://wisp-admin/.default`.
pub const ADMIN_API: BuiltinResource = BuiltinResource {
    // "wisp" in hex in the second group, Graph-style constant GUID.
    app_id: "00000003-7769-7370-0000-000000000000",
    display_name: "wisp admin API",
    identifier_uris: &["api://wisp-admin"],
    roles: &[
        BuiltinRole {
            id: "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
            value: DIRECTORY_READ_WRITE_ALL,
            display_name: "Read and write directory data",
        },
        BuiltinRole {
            id: "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
            value: DIRECTORY_READ_ALL,
            display_name: "Read directory data",
        },
        BuiltinRole {
            id: "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
            value: APPLICATION_READ_WRITE_ALL,
            display_name: "Read and write all applications",
        },
        BuiltinRole {
            id: "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
            value: APPLICATION_READ_ALL,
            display_name: "Read all applications",
        },
    ],
    audience_is_identifier: false,
};

/// The token-exchange audience: managed identity tokens requested for it are
/// the assertions a federated identity credential trusts (one URI per cloud).
pub const TOKEN_EXCHANGE: BuiltinResource = BuiltinResource {
    app_id: "fb60f99c-7a34-4190-8149-302f77469936",
    display_name: "AzureADTokenExchange",
    identifier_uris: &[
        "api://AzureADTokenExchange",
        "api://AzureADTokenExchangeUSGov",
        "api://AzureADTokenExchangeChina",
    ],
    roles: &[],
    audience_is_identifier: true,
};

/// Every built-in resource.
pub const ALL: &[&BuiltinResource] = &[&ADMIN_API, &TOKEN_EXCHANGE];

/// The built-in resource an identifier URI or appId names, if any.
pub fn by_identifier(identifier: &str) -> Option<&'static BuiltinResource> {
    ALL.iter().copied().find(|r| r.app_id.eq_ignore_ascii_case(identifier) || r.identifier_uris.contains(&identifier))
}

pub fn by_app_id(app_id: &str) -> Option<&'static BuiltinResource> {
    ALL.iter().copied().find(|r| r.app_id.eq_ignore_ascii_case(app_id))
}

impl BuiltinResource {
    pub fn role_by_value(&self, value: &str) -> Option<&BuiltinRole> {
        self.roles.iter().find(|r| r.value == value)
    }
}
