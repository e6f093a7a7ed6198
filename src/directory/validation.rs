//! Graph's rules for directory objects, checked at write time. Each failure is
//! a sentence an administrator can act on.

/// The most federated identity credentials one application or managed identity
/// may carry by default (Entra's limit).
pub const DEFAULT_MAX_FICS_PER_OWNER: usize = 20;
/// Longest issuer, subject, audience or description Graph accepts.
pub const MAX_FIC_FIELD_LEN: usize = 600;
/// The audience Entra recommends and defaults to.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// A FIC `name`: 3–120 characters of letters, digits, `-` and `_`, starting with
/// a letter or digit.
pub fn fic_name(name: &str) -> Result<(), String> {
    let ok_len = (3..=120).contains(&name.chars().count());
    let ok_first = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok_len && ok_first && ok_chars {
        Ok(())
    } else {
        Err(format!(
            "Federated identity credential name '{}' is invalid: it must be 3 to 120 characters of letters, digits, '-' and '_', starting with a letter or digit.",
            shorten(name)
        ))
    }
}

/// A FIC `issuer`: an https URL (Entra fetches its discovery document).
pub fn fic_issuer(issuer: &str) -> Result<(), String> {
    field_len("issuer", issuer)?;
    if issuer.trim() != issuer {
        return Err("The issuer must not have leading or trailing whitespace.".into());
    }
    let url =
        reqwest::Url::parse(issuer).map_err(|_| format!("The issuer '{}' is not a valid URL.", shorten(issuer)))?;
    if url.scheme() != "https" {
        return Err(format!("The issuer '{}' must be an https URL.", shorten(issuer)));
    }
    if url.host_str().is_none_or(str::is_empty) || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "The issuer '{}' must be an https URL with a host and no query or fragment.",
            shorten(issuer)
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("The issuer must not contain credentials.".into());
    }
    Ok(())
}

/// A FIC `subject`: any non-empty string up to 600 characters (Graph does not
/// validate it further for external issuers).
pub fn fic_subject(subject: &str) -> Result<(), String> {
    if subject.is_empty() {
        return Err("The subject must not be empty.".into());
    }
    field_len("subject", subject)
}

/// FIC `audiences`: exactly one, non-empty, up to 600 characters.
pub fn fic_audiences(audiences: &[String]) -> Result<(), String> {
    match audiences {
        [one] if !one.is_empty() => field_len("audience", one),
        _ => Err("Federated identity credentials must have exactly one audience.".into()),
    }
}

pub fn fic_description(description: &str) -> Result<(), String> {
    field_len("description", description)
}

/// An identifier URI: an absolute URI without a fragment, e.g. `api://orders`.
pub fn identifier_uri(uri: &str) -> Result<(), String> {
    if uri.is_empty() || uri.len() > 256 || uri.trim() != uri {
        return Err(format!("The identifier URI '{}' is invalid.", shorten(uri)));
    }
    match reqwest::Url::parse(uri) {
        Ok(url) if url.fragment().is_none() && !uri.contains('*') => Ok(()),
        _ => Err(format!(
            "The identifier URI '{}' is invalid: it must be an absolute URI such as api://orders, without wildcards or fragment.",
            shorten(uri)
        )),
    }
}

/// A display name: 1–256 characters.
pub fn display_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() || name.chars().count() > 256 {
        Err("displayName must be 1 to 256 characters.".into())
    } else {
        Ok(())
    }
}

/// An app role `value`: what appears in the `roles` claim. No spaces, 1–120
/// characters, not starting with a dot.
pub fn app_role_value(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.chars().count() <= 120
        && !value.starts_with('.')
        && value.chars().all(|c| c.is_ascii_graphic() && c != ',' && c != ';');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "The app role value '{}' is invalid: 1 to 120 printable characters without spaces, ',' or ';', not starting with '.'.",
            shorten(value)
        ))
    }
}

/// A compute resource name: 1–64 letters, digits, `-`, `_`, `.`, starting with a
/// letter or digit.
pub fn resource_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Resource name '{}' is invalid: 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit.",
            shorten(name)
        ))
    }
}

fn field_len(what: &str, value: &str) -> Result<(), String> {
    if value.chars().count() > MAX_FIC_FIELD_LEN {
        Err(format!("The {what} must be at most {MAX_FIC_FIELD_LEN} characters."))
    } else {
        Ok(())
    }
}

/// Advice about a federated credential that is valid but probably not what the
/// administrator wants. The write succeeds; these come back as `warnings`.
pub fn fic_lints(issuer: &str, subject: Option<&str>, trusts_everything: bool) -> Vec<String> {
    let mut warnings = Vec::new();
    if trusts_everything {
        warnings.push(
            "The expression matches every subject of this issuer: any workload that can get a token from it can act as this \
             application."
                .to_string(),
        );
    }
    if let Some(subject) = subject {
        if issuer == "https://token.actions.githubusercontent.com"
            && let Some(rest) = subject.strip_prefix("repo:")
            && let Some((repo, _)) = rest.split_once(':')
            && !repo.contains('@')
        {
            warnings.push(format!(
                "The GitHub subject names the repository '{repo}' by its mutable name; since 2026 GitHub can issue immutable \
                 subjects (repo:OWNER@OWNER_ID/REPO@REPO_ID:...), which survive renames and transfers. Consider them."
            ));
        }
        if subject.starts_with("system:serviceaccount:") && subject.ends_with(":default") {
            warnings.push(
                "The subject is a namespace's 'default' service account, which every pod of the namespace uses unless told \
                 otherwise; a dedicated service account is safer."
                    .to_string(),
            );
        }
    }
    if issuer.trim() != issuer {
        warnings.push("The issuer has surrounding whitespace; tokens never do.".to_string());
    }
    warnings
}

/// Caller input quoted in a message, bounded.
pub fn shorten(text: &str) -> String {
    if text.chars().count() <= 80 {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(80).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fic_names_follow_graph() {
        for good in ["abc", "deploy-prod", "GitHub_main_1", &"a".repeat(120)] {
            assert!(fic_name(good).is_ok(), "{good}");
        }
        for bad in ["ab", "-abc", "_abc", "has space", "dot.name", "ümlaut", &"a".repeat(121), ""] {
            assert!(fic_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn issuers_are_https_urls_without_whitespace() {
        assert!(fic_issuer("https://token.actions.githubusercontent.com").is_ok());
        assert!(fic_issuer("https://oidc.prod-aks.azure.com/tenant/guid/").is_ok());
        for bad in [
            "http://insecure.example",
            "not a url",
            " https://x.example",
            "https://x.example?q=1",
            "https://u:p@x.example",
            "https://x.example#f",
        ] {
            assert!(fic_issuer(bad).is_err(), "{bad}");
        }
        assert!(fic_issuer(&format!("https://x.example/{}", "a".repeat(600))).is_err());
    }

    #[test]
    fn exactly_one_audience() {
        assert!(fic_audiences(&["api://AzureADTokenExchange".into()]).is_ok());
        assert!(fic_audiences(&[]).is_err());
        assert!(fic_audiences(&["a".into(), "b".into()]).is_err());
        assert!(fic_audiences(&["".into()]).is_err());
    }

    #[test]
    fn identifier_uris_and_role_values() {
        assert!(identifier_uri("api://orders").is_ok());
        assert!(identifier_uri("https://orders.example.com").is_ok());
        assert!(identifier_uri("orders").is_err());
        assert!(identifier_uri("api://orders/*").is_err());
        assert!(app_role_value("Orders.Read").is_ok());
        assert!(app_role_value("Orders Read").is_err());
        assert!(app_role_value(".hidden").is_err());
    }
}
