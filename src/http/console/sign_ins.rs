//! Sign-in logs with filters, and for a refusal, each credential's checks.

use super::forms::*;

pub(super) struct CheckRow {
    check: String,
    passed: bool,
    expected: String,
    actual: String,
    hint: String,
}

pub(super) struct CredentialExplain {
    name: String,
    matched: bool,
    checks: Vec<CheckRow>,
}

pub(super) struct SignInRow {
    at: String,
    outcome: String,
    code: String,
    app_id: String,
    credential: String,
    resource: String,
    correlation_id: String,
    issuer: String,
    subject: String,
    unverified: bool,
    explain: Vec<CredentialExplain>,
}

#[derive(Template)]
#[template(path = "console/sign_ins.html")]
pub(super) struct SignInsPage {
    chrome: Chrome,
    app: String,
    outcome: String,
    correlation: String,
    rows: Vec<SignInRow>,
    error: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct SignInFilter {
    #[serde(default)]
    app: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    correlation: String,
}

pub async fn sign_ins(State(app): State<AppState>, console: Console, Query(filter): Query<SignInFilter>) -> Response {
    let mut clauses = Vec::new();
    if !filter.app.trim().is_empty() {
        clauses.push(format!("appId eq '{}'", quoted(filter.app.trim())));
    }
    if matches!(filter.outcome.as_str(), "granted" | "refused") {
        clauses.push(format!("outcome eq '{}'", filter.outcome));
    }
    if !filter.correlation.trim().is_empty() {
        clauses.push(format!("correlationId eq '{}'", quoted(filter.correlation.trim())));
    }
    let filter_text = (!clauses.is_empty()).then(|| clauses.join(" and "));
    let listed = api(sign_ins::list(
        State(app.clone()),
        console.caller.clone(),
        Query(ListQuery { top: Some("100".into()), skiptoken: None, filter: filter_text }),
    )
    .await)
    .await;
    let (rows, error) = if listed.ok() {
        (list_of(&listed).iter().map(sign_in_row).collect(), None)
    } else {
        (Vec::new(), Some(listed.message()))
    };
    let status = if error.is_some() { listed.status } else { StatusCode::OK };
    page(
        status,
        &SignInsPage {
            chrome: console.chrome("sign-ins"),
            app: filter.app,
            outcome: filter.outcome,
            correlation: filter.correlation,
            rows,
            error,
        },
    )
}

pub(super) fn sign_in_row(entry: &Value) -> SignInRow {
    let explain = entry
        .pointer("/details/credentials")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| CredentialExplain {
            name: text(&c["credentialName"]),
            matched: c["matched"] == true,
            checks: c["checks"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|k| CheckRow {
                    check: text(&k["check"]),
                    passed: k["passed"] == true,
                    expected: text(&k["expected"]),
                    actual: text(&k["actual"]),
                    hint: text(&k["hint"]),
                })
                .collect(),
        })
        .collect();
    // The credential that came closest (most checks passed) first.
    let mut explain: Vec<CredentialExplain> = explain;
    explain.sort_by_key(|c| std::cmp::Reverse((c.matched, c.checks.iter().filter(|k| k.passed).count())));
    SignInRow {
        at: text(&entry["createdDateTime"]),
        outcome: text(&entry["outcome"]),
        code: text(&entry["status"]["failureReason"]),
        app_id: text(&entry["appId"]),
        credential: text(&entry["clientCredentialType"]),
        resource: text(&entry["resource"]),
        correlation_id: text(&entry["correlationId"]),
        issuer: text(&entry["assertion"]["issuer"]),
        subject: text(&entry["assertion"]["subject"]),
        unverified: entry.pointer("/details/verified") == Some(&Value::Bool(false)),
        explain,
    }
}
