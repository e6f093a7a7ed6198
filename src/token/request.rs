//! Parsing a token request body (`application/x-www-form-urlencoded`) into the
//! parameters wisp reads. Unknown parameters are ignored (clients send many);
//! a known parameter given twice is refused, because two values would be two
//! meanings.

use super::Refusal;

/// The client-credentials assertion type (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// RFC 8693's grant type.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 token types wisp accepts as subject tokens.
pub const JWT_TOKEN_TYPES: &[&str] =
    &["urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token"];
/// What an RFC 8693 exchange issues.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The parameters of a token request that wisp acts on.
#[derive(Default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    /// v2 endpoint: `{resource}/.default`.
    pub scope: Option<String>,
    /// v1 endpoint: the resource itself.
    pub resource: Option<String>,
    pub client_secret: Option<String>,
    pub client_assertion: Option<String>,
    pub client_assertion_type: Option<String>,
    /// RFC 8693: the token being exchanged, its type, the target.
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
    pub audience: Option<String>,
    pub requested_token_type: Option<String>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .field("resource", &self.resource)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "(redacted)"))
            .field("client_assertion", &self.client_assertion.as_ref().map(|_| "(redacted)"))
            .field("subject_token", &self.subject_token.as_ref().map(|_| "(redacted)"))
            .finish_non_exhaustive()
    }
}

impl TokenRequest {
    pub fn parse(body: &[u8]) -> Result<Self, Refusal> {
        let mut request = TokenRequest::default();
        for (name, value) in form_urlencoded::parse(body) {
            let slot = match name.as_ref() {
                "grant_type" => &mut request.grant_type,
                "client_id" => &mut request.client_id,
                "scope" => &mut request.scope,
                "resource" => &mut request.resource,
                "client_secret" => &mut request.client_secret,
                "client_assertion" => &mut request.client_assertion,
                "client_assertion_type" => &mut request.client_assertion_type,
                "subject_token" => &mut request.subject_token,
                "subject_token_type" => &mut request.subject_token_type,
                "audience" => &mut request.audience,
                "requested_token_type" => &mut request.requested_token_type,
                _ => continue,
            };
            if slot.is_some() {
                return Err(Refusal::InvalidParameter(
                    known_name(&name),
                    "The parameter appears more than once.".into(),
                ));
            }
            *slot = Some(value.into_owned());
        }
        Ok(request)
    }
}

fn known_name(name: &str) -> &'static str {
    match name {
        "grant_type" => "grant_type",
        "client_id" => "client_id",
        "scope" => "scope",
        "resource" => "resource",
        "client_secret" => "client_secret",
        "client_assertion" => "client_assertion",
        "client_assertion_type" => "client_assertion_type",
        "subject_token" => "subject_token",
        "subject_token_type" => "subject_token_type",
        "audience" => "audience",
        _ => "requested_token_type",
    }
}

/// Decodes `Authorization: Basic` client credentials (RFC 6749 §2.3.1: each part
/// form-urlencoded before base64).
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    use base64::Engine;
    let encoded = header.strip_prefix("Basic ").or_else(|| header.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_parameters_are_read_and_unknown_ones_ignored() {
        let r = TokenRequest::parse(
            b"grant_type=client_credentials&client_id=abc&scope=api%3A%2F%2Fx%2F.default&client_info=1&x-client-SKU=y",
        )
        .unwrap();
        assert_eq!(r.grant_type.as_deref(), Some("client_credentials"));
        assert_eq!(r.scope.as_deref(), Some("api://x/.default"));
        assert!(r.client_secret.is_none());
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        assert!(matches!(TokenRequest::parse(b"scope=a&scope=b"), Err(Refusal::InvalidParameter("scope", _))));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let r = TokenRequest::parse(b"client_secret=hunter2&client_assertion=eyJ").unwrap();
        let shown = format!("{r:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("eyJ"), "{shown}");
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        use base64::Engine;
        let header = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("my%20id:p%3Aw+d"));
        assert_eq!(parse_basic(&header), Some(("my id".into(), "p:w d".into())));
        assert_eq!(parse_basic("Bearer x"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
    }
}
