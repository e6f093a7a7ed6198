//! The federated-credential scenarios of Entra's portal form: they fill `issuer`
//! and `subject` exactly the way GitHub Actions and Kubernetes emit them
//! (`entra-protocol.md` §8). Used by the CLI's helpers and by configuration files.

/// GitHub Actions' OIDC issuer (no trailing slash).
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// What a GitHub workflow runs for; decides the `sub` GitHub puts in its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitHubEntity {
    Environment(String),
    Branch(String),
    Tag(String),
    PullRequest,
}

/// `sub` of a GitHub Actions token for `repo` (`ORG/REPO`) and `entity`.
pub fn github_subject(repo: &str, entity: &GitHubEntity) -> Result<String, String> {
    let valid_part =
        |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    match repo.split_once('/') {
        Some((org, name)) if valid_part(org) && valid_part(name) => {}
        _ => return Err(format!("the GitHub repository must be ORG/REPO, not {repo:?}")),
    }
    let value_ok = |v: &str| !v.is_empty() && !v.contains(char::is_whitespace);
    Ok(match entity {
        GitHubEntity::Environment(env) if value_ok(env) => format!("repo:{repo}:environment:{env}"),
        GitHubEntity::Branch(branch) if value_ok(branch) => {
            format!("repo:{repo}:ref:refs/heads/{}", branch.trim_start_matches("refs/heads/"))
        }
        GitHubEntity::Tag(tag) if value_ok(tag) => {
            format!("repo:{repo}:ref:refs/tags/{}", tag.trim_start_matches("refs/tags/"))
        }
        GitHubEntity::PullRequest => format!("repo:{repo}:pull_request"),
        _ => return Err("the branch, environment or tag must be non-empty and without spaces".into()),
    })
}

/// `sub` of a Kubernetes service-account token.
pub fn kubernetes_subject(namespace: &str, service_account: &str) -> Result<String, String> {
    let dns_label = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
    };
    if !dns_label(namespace) || !dns_label(service_account) {
        return Err(
            "the namespace and service account must be Kubernetes names (lower-case letters, digits, '-', '.')".into(),
        );
    }
    Ok(format!("system:serviceaccount:{namespace}:{service_account}"))
}

/// The issuer of a wisp tenant's tokens, for the managed-identity scenario.
pub fn tenant_issuer(server: &str, tenant: &str) -> String {
    format!("{}/{tenant}/v2.0", server.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_subjects_match_what_github_emits() {
        let repo = "octo-org/octo-repo";
        assert_eq!(
            github_subject(repo, &GitHubEntity::Environment("prod".into())).unwrap(),
            "repo:octo-org/octo-repo:environment:prod"
        );
        assert_eq!(
            github_subject(repo, &GitHubEntity::Branch("main".into())).unwrap(),
            "repo:octo-org/octo-repo:ref:refs/heads/main"
        );
        assert_eq!(
            github_subject(repo, &GitHubEntity::Branch("refs/heads/release/1.x".into())).unwrap(),
            "repo:octo-org/octo-repo:ref:refs/heads/release/1.x"
        );
        assert_eq!(
            github_subject(repo, &GitHubEntity::Tag("v1.2.3".into())).unwrap(),
            "repo:octo-org/octo-repo:ref:refs/tags/v1.2.3"
        );
        // GitHub writes pull_request with an underscore (Entra's docs say pull-request).
        assert_eq!(github_subject(repo, &GitHubEntity::PullRequest).unwrap(), "repo:octo-org/octo-repo:pull_request");
        assert!(github_subject("octo-org", &GitHubEntity::PullRequest).is_err());
        assert!(github_subject("a/b/c", &GitHubEntity::PullRequest).is_err());
        assert!(github_subject(repo, &GitHubEntity::Branch("".into())).is_err());
    }

    #[test]
    fn kubernetes_subjects() {
        assert_eq!(kubernetes_subject("payments", "api").unwrap(), "system:serviceaccount:payments:api");
        assert!(kubernetes_subject("Payments", "api").is_err());
        assert!(kubernetes_subject("ns", "").is_err());
    }

    #[test]
    fn tenant_issuers() {
        assert_eq!(tenant_issuer("https://sts.test:8443/", "t"), "https://sts.test:8443/t/v2.0");
    }
}
