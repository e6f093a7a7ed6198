//! Matching a verified assertion against the federated identity credentials of
//! an application or managed identity: issuer, audience and subject, exactly and
//! case-sensitively, as Entra does. Every credential is evaluated, and each check
//! is recorded so an administrator can see why a request was refused — the
//! caller only ever learns the generic outcome.

use serde::Serialize;
use serde_json::Value;

use crate::directory::FederatedCredential;

/// One check of one credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// `issuer`, `audience` or `subject`.
    pub check: &'static str,
    pub expected: String,
    pub actual: String,
    pub passed: bool,
    /// A near miss worth telling an administrator about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// How one credential fared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialEvaluation {
    pub credential_id: String,
    pub credential_name: String,
    pub checks: Vec<Check>,
    pub matched: bool,
}

/// The most specific reason no credential matched (Entra's AADSTS codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoMatch {
    /// No credential has the assertion's issuer (AADSTS700211).
    Issuer,
    /// The issuer is trusted but not for this audience (AADSTS700212).
    Audience,
    /// Issuer and audience fit, the subject does not (AADSTS700213).
    Subject,
    /// …and a credential's subject differs from it only by case (AADSTS7002138).
    SubjectCase,
}

/// The outcome of matching: the first matching credential, or why none did,
/// plus every credential's evaluation.
#[derive(Debug, Clone)]
pub struct MatchResult {
    pub matched: Option<FederatedCredential>,
    pub no_match: Option<NoMatch>,
    pub evaluations: Vec<CredentialEvaluation>,
}

/// Does any credential trust this issuer at all? Checked before fetching keys,
/// so wisp never fetches an issuer no credential names.
pub fn any_trusts_issuer(credentials: &[FederatedCredential], issuer: &str) -> bool {
    credentials.iter().any(|c| c.issuer == issuer)
}

/// The first credential that accepts the token — what [`evaluate`] would match,
/// without building its explanation (the token path's common case: the
/// explanation is only needed for a refusal).
pub fn first_match<'a>(
    credentials: &'a [FederatedCredential],
    iss: &str,
    sub: &str,
    aud: &[String],
    claims: &Value,
) -> Option<&'a FederatedCredential> {
    credentials.iter().find(|credential| {
        credential.issuer == iss
            && credential.audiences.first().is_some_and(|audience| aud.contains(audience))
            && match (&credential.subject, &credential.expression) {
                (_, Some(expression)) => super::expression::evaluate(&expression.compiled, claims),
                (Some(subject), None) => subject == sub,
                (None, None) => false,
            }
    })
}

/// Evaluates every credential against the verified `iss`, `sub` and `aud`, and
/// for credentials with a claims-matching expression, against all `claims`.
pub fn evaluate(
    credentials: &[FederatedCredential],
    iss: &str,
    sub: &str,
    aud: &[String],
    claims: &Value,
) -> MatchResult {
    let mut evaluations = Vec::with_capacity(credentials.len());
    let mut matched = None;
    let (mut issuer_ok, mut audience_ok, mut case_only) = (false, false, false);
    for credential in credentials {
        let issuer_passed = credential.issuer == iss;
        let audience = credential.audiences.first().cloned().unwrap_or_default();
        let audience_passed = aud.contains(&audience);
        let (subject_check, subject_passed, subject_case) = match (&credential.subject, &credential.expression) {
            (_, Some(expression)) => {
                let passed = super::expression::evaluate(&expression.compiled, claims);
                let missing = super::expression::claim_paths(&expression.compiled)
                    .into_iter()
                    .filter(|path| path.iter().try_fold(claims, |value, segment| value.get(segment)).is_none())
                    .map(|path| path.join("."))
                    .collect::<Vec<_>>();
                let check = Check {
                    check: "expression",
                    expected: expression.value.clone(),
                    actual: format!("sub {sub:?}"),
                    passed,
                    hint: (!passed && !missing.is_empty())
                        .then(|| format!("the token has no claim {}", missing.join(", "))),
                };
                (check, passed, false)
            }
            (Some(subject), None) => {
                let passed = subject == sub;
                let check = Check {
                    check: "subject",
                    expected: subject.clone(),
                    actual: sub.to_string(),
                    passed,
                    hint: (!passed).then(|| near_miss(subject, sub)).flatten(),
                };
                (check, passed, !passed && subject.eq_ignore_ascii_case(sub))
            }
            (None, None) => {
                let check = Check {
                    check: "subject",
                    expected: String::new(),
                    actual: sub.to_string(),
                    passed: false,
                    hint: None,
                };
                (check, false, false)
            }
        };
        issuer_ok |= issuer_passed;
        audience_ok |= issuer_passed && audience_passed;
        case_only |= issuer_passed && audience_passed && subject_case;
        let mut checks = vec![
            Check {
                check: "issuer",
                expected: credential.issuer.clone(),
                actual: iss.to_string(),
                passed: issuer_passed,
                hint: (!issuer_passed).then(|| near_miss(&credential.issuer, iss)).flatten(),
            },
            Check {
                check: "audience",
                expected: audience.clone(),
                actual: aud.join(" "),
                passed: audience_passed,
                hint: None,
            },
            subject_check,
        ];
        // An expression also shows each of its comparisons.
        if let Some(expression) = &credential.expression {
            for (comparison, actual, passed) in super::expression::explain_comparisons(&expression.compiled, claims) {
                checks.push(Check { check: "comparison", expected: comparison, actual, passed, hint: None });
            }
        }
        let all = issuer_passed && audience_passed && subject_passed;
        if all && matched.is_none() {
            matched = Some(credential.clone());
        }
        evaluations.push(CredentialEvaluation {
            credential_id: credential.id.to_string(),
            credential_name: credential.name.clone(),
            checks,
            matched: all,
        });
    }
    let no_match = match (&matched, issuer_ok, audience_ok, case_only) {
        (Some(_), ..) => None,
        (None, false, ..) => Some(NoMatch::Issuer),
        (None, true, false, _) => Some(NoMatch::Audience),
        (None, true, true, true) => Some(NoMatch::SubjectCase),
        (None, true, true, false) => Some(NoMatch::Subject),
    };
    MatchResult { matched, no_match, evaluations }
}

/// A hint when two values differ only in ways people miss.
fn near_miss(expected: &str, actual: &str) -> Option<String> {
    if let (Some(e), Some(a)) = (github_shape(expected), github_shape(actual))
        && e.0 == a.0
        && e.1 != a.1
    {
        return Some(format!(
            "a GitHub subject of another shape: the credential expects '{}', the token has '{}' (environment, ref, pull_request)",
            e.1, a.1
        ));
    }
    if expected.eq_ignore_ascii_case(actual) {
        Some("differs only by upper/lower case; matching is case-sensitive".into())
    } else if expected.trim_end_matches('/') == actual.trim_end_matches('/') {
        Some("differs only by a trailing slash".into())
    } else if expected.trim() == actual.trim() {
        Some("differs only by surrounding whitespace".into())
    } else {
        None
    }
}

/// `repo:ORG/REPO:<kind>:…` → (repository, kind).
fn github_shape(subject: &str) -> Option<(&str, &str)> {
    let rest = subject.strip_prefix("repo:")?;
    let (repo, tail) = rest.split_once(':')?;
    let kind = tail.split(':').next()?;
    Some((repo, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fic(issuer: &str, subject: &str, audience: &str) -> FederatedCredential {
        FederatedCredential {
            id: uuid::Uuid::new_v4(),
            owner_id: uuid::Uuid::new_v4(),
            name: "n".into(),
            issuer: issuer.into(),
            subject: Some(subject.into()),
            expression: None,
            audiences: vec![audience.into()],
            description: None,
            version: 1,
            created_at: 0,
        }
    }

    const GH: &str = "https://token.actions.githubusercontent.com";
    const AUD: &str = "api://AzureADTokenExchange";

    #[test]
    fn exact_issuer_audience_and_subject_match() {
        let fics = [fic(GH, "repo:a/b:ref:refs/heads/main", AUD)];
        let result = evaluate(&fics, GH, "repo:a/b:ref:refs/heads/main", &[AUD.into(), "other".into()], &Value::Null);
        assert!(result.matched.is_some());
        assert_eq!(result.no_match, None);
    }

    #[test]
    fn the_most_specific_failure_is_reported() {
        let fics = [fic(GH, "repo:a/b:ref:refs/heads/main", AUD)];
        let aud = [AUD.to_string()];
        assert_eq!(evaluate(&fics, "https://other", "x", &aud, &Value::Null).no_match, Some(NoMatch::Issuer));
        assert_eq!(
            evaluate(&fics, &format!("{GH}/"), "x", &aud, &Value::Null).no_match,
            Some(NoMatch::Issuer),
            "trailing slash matters"
        );
        assert_eq!(
            evaluate(&fics, GH, "repo:a/b:ref:refs/heads/main", &["api://x".into()], &Value::Null).no_match,
            Some(NoMatch::Audience)
        );
        assert_eq!(
            evaluate(&fics, GH, "repo:a/b:ref:refs/heads/dev", &aud, &Value::Null).no_match,
            Some(NoMatch::Subject)
        );
        assert_eq!(
            evaluate(&fics, GH, "repo:A/B:ref:refs/heads/main", &aud, &Value::Null).no_match,
            Some(NoMatch::SubjectCase)
        );
        let result = evaluate(&fics, &format!("{GH}/"), "x", &aud, &Value::Null);
        assert_eq!(result.evaluations[0].checks[0].hint.as_deref(), Some("differs only by a trailing slash"));
        let result = evaluate(&fics, GH, "repo:a/b:environment:main", &aud, &Value::Null);
        assert!(result.evaluations[0].checks[2].hint.as_deref().unwrap().contains("GitHub subject of another shape"));
    }

    #[test]
    fn every_credential_is_considered() {
        let fics = [fic(GH, "one", AUD), fic(GH, "two", AUD), fic(GH, "two", "api://other")];
        let result = evaluate(&fics, GH, "two", &[AUD.into()], &Value::Null);
        assert_eq!(result.evaluations.len(), 3);
        assert_eq!(result.matched.unwrap().id, fics[1].id);
        assert_eq!(result.evaluations.iter().filter(|e| e.matched).count(), 1);
    }

    #[test]
    fn the_fast_path_matches_exactly_what_evaluate_matches() {
        let mut expression = fic(GH, "unused", AUD);
        expression.subject = None;
        expression.expression = Some(crate::directory::ClaimsExpression {
            value: "claims['sub'] startsWith 'repo:a/'".into(),
            language_version: 2,
            compiled: crate::federation::expression::compile("claims['sub'] startsWith 'repo:a/'", 2).unwrap(),
        });
        let fics = [fic(GH, "one", AUD), fic(GH, "two", "api://other"), fic("https://k8s", "two", AUD), expression];
        let subjects = ["one", "two", "ONE", "repo:a/x", "repo:b/x", ""];
        let issuers = [GH, "https://k8s", "https://other"];
        let audiences = [vec![AUD.to_string()], vec!["api://other".to_string()], vec![]];
        for iss in issuers {
            for sub in subjects {
                for aud in &audiences {
                    let claims = serde_json::json!({"sub": sub});
                    let full = evaluate(&fics, iss, sub, aud, &claims).matched.map(|c| c.id);
                    let fast = first_match(&fics, iss, sub, aud, &claims).map(|c| c.id);
                    assert_eq!(fast, full, "{iss} {sub} {aud:?}");
                }
            }
        }
    }
}
