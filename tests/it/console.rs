//! The web console in a real browser: Debian's headless Chromium driven by
//! playwright-core (`tests/console/e2e.mjs`, installed by
//! `tests/console/setup.sh`, which `.ci/run` runs) against a real server. The
//! script signs in with the keyboard, registers an application, adds a GitHub
//! Actions credential through the scenario form, exchanges a token with it,
//! finds a wrong-branch refusal explained in the sign-in log page, and checks
//! sessions, CSRF, read-only administrators and the forms without JavaScript.
//! Screenshots of the main pages land in `target/console/screenshots/`.
//!
//! In CI (`CI=true`) a missing installation fails; elsewhere it is skipped with a notice.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::fake_issuer::{TestKey, github_claims};
use crate::support::spawn_wisp;

const GITHUB: &str = "https://token.actions.githubusercontent.com";

/// The installation, or `None` (skip) outside CI.
fn installed() -> Option<(PathBuf, PathBuf)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console");
    let chromium =
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().map(PathBuf::from).find(|p| p.exists());
    match (dir.join("node_modules/playwright-core").exists(), chromium) {
        (true, Some(chromium)) => Some((dir, chromium)),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("the console browser test is not installed: run tests/console/setup.sh (CI must run it)")
        }
        _ => {
            eprintln!("notice: Chromium or playwright-core not installed; skipping — run tests/console/setup.sh");
            None
        }
    }
}

/// A GitHub Actions token for `subject`, signed by `key` (whose JWKS the tenant uploaded).
fn github_token(key: &TestKey, subject: &str) -> String {
    let mut claims = github_claims(subject);
    claims["iss"] = json!(GITHUB);
    key.sign(&claims)
}

#[tokio::test]
async fn the_console_walkthrough_in_headless_chromium() {
    let Some((dir, chromium)) = installed() else { return };
    let server = spawn_wisp().await;
    let admin = server.admin().await;
    // GitHub is not reachable from tests: the tenant uploads the keys it signs with.
    let key = TestKey::rsa("github-1");
    let uploaded = admin.post("/v1.0/federatedIssuers", json!({"issuer": GITHUB, "jwks": {"keys": [key.jwk]}})).await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    let (reader_id, reader_secret) = server.credential_with_role("Application.Read.All").await;
    let (client_id, secret) = server.admin_credentials();

    let screenshots = dir.join("screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    // The script imports playwright-core from the folder it runs in.
    std::fs::copy(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/console/e2e.mjs"), dir.join("e2e.mjs"))
        .unwrap();
    let output = tokio::process::Command::new("node")
        .arg(dir.join("e2e.mjs"))
        .current_dir(&dir)
        .env("WISP_URL", &server.base_url)
        .env("WISP_TENANT", server.tenant_id())
        .env("WISP_CLIENT_ID", client_id)
        .env("WISP_CLIENT_SECRET", secret)
        .env("READER_CLIENT_ID", reader_id)
        .env("READER_CLIENT_SECRET", reader_secret)
        .env("ASSERTION_MAIN", github_token(&key, "repo:acme/app:ref:refs/heads/main"))
        .env("ASSERTION_FEATURE", github_token(&key, "repo:acme/app:ref:refs/heads/feature"))
        .env("ASSERTION_MAIN_AGAIN", github_token(&key, "repo:acme/app:ref:refs/heads/main"))
        .env("CHROMIUM", chromium)
        .env("SCREENSHOTS", &screenshots)
        .env("NODE_EXTRA_CA_CERTS", server.server.ca_file.as_deref().unwrap())
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "console e2e failed:\n{stdout}\n{stderr}");
    let results: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();

    // What the browser did is what the directory now holds.
    let apps =
        admin.get(&format!("/v1.0/applications?$filter=appId eq '{}'", results["appId"].as_str().unwrap())).await;
    let app = &apps.body["value"][0];
    assert_eq!(app["displayName"], "deployer");
    let fics =
        admin.get(&format!("/v1.0/applications/{}/federatedIdentityCredentials", app["id"].as_str().unwrap())).await;
    let subjects: Vec<&str> =
        fics.body["value"].as_array().unwrap().iter().map(|f| f["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    assert!(subjects.contains(&"repo:acme/app:ref:refs/heads/main"), "{subjects:?}");
    assert!(subjects.contains(&"system:serviceaccount:payments:api"), "{subjects:?}");
    let worker = admin.get("/v1.0/managedIdentities").await.body["value"][0]["principalId"].clone();
    assert!(subjects.contains(&worker.as_str().unwrap()), "the managed identity credential: {subjects:?}");
    for shot in
        ["00-sign-in", "01-applications", "03-add-github-credential", "05-sign-in-log-refusal", "08-role-granted"]
    {
        assert!(screenshots.join(format!("{shot}.png")).exists(), "{shot}.png");
    }
}
