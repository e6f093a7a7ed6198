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

/// The console's refusals, over plain HTTPS (no browser needed).
#[tokio::test]
async fn the_console_refuses_without_a_session_a_right_or_a_matching_origin() {
    let server = spawn_wisp().await;
    let admin = server.admin().await;
    let tenant = server.tenant_id();
    let (client_id, secret) = server.admin_credentials();
    let no_redirects = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(
            &std::fs::read(server.server.ca_file.as_deref().unwrap()).unwrap(),
        )
        .unwrap()])
        .resolve("localhost", ([127, 0, 0, 1], server.server.local_addr.port()).into())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signin = |client: &str, secret: &str, origin: Option<&str>| {
        let mut request = no_redirects.post(server.url("/console/signin")).form(&[
            ("tenant", tenant.as_str()),
            ("client_id", client),
            ("client_secret", secret),
        ]);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };

    // No session, or one the server does not know: to the sign-in page.
    for cookie in [None, Some("__Host-wisp-console=forged")] {
        let mut request = no_redirects.get(server.url("/console/applications"));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()["location"], "/console/signin");
    }

    // A wrong secret: refused without saying which part was wrong, and logged.
    let wrong = signin(&client_id, "not-the-secret", None).await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let page = wrong.text().await.unwrap();
    assert!(page.contains("The tenant, client id or secret is not valid"), "{page}");
    let refused = admin.get("/v1.0/auditLogs/signIns?$filter=outcome eq 'refused'").await;
    assert_eq!(refused.body["value"][0]["appId"], client_id.as_str(), "{}", refused.body);

    // An application without an admin API role cannot administer through the console.
    let plain = admin.post("/v1.0/applications", json!({"displayName": "no-rights"})).await.body;
    let plain_secret =
        admin.post(&format!("/v1.0/applications/{}/addPassword", plain["id"].as_str().unwrap()), json!({})).await.body
            ["secretText"]
            .as_str()
            .unwrap()
            .to_string();
    let denied = signin(plain["appId"].as_str().unwrap(), &plain_secret, None).await.unwrap();
    assert_eq!(denied.status(), 401);
    assert!(denied.text().await.unwrap().contains("holds no role on the admin API"));

    // A sign-in posted from another site is refused before the credential is checked.
    let foreign = signin(&client_id, &secret, Some("https://evil.example")).await.unwrap();
    assert_eq!(foreign.status(), 403);

    // The right credential: a session cookie with every protection, and the
    // pages carry their security headers.
    let ok = signin(&client_id, &secret, Some(&server.base_url)).await.unwrap();
    assert_eq!(ok.status(), 303);
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["__Host-wisp-console=", "Path=/", "Secure", "HttpOnly", "SameSite=Strict", "Max-Age=3600"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_string();
    let page = no_redirects.get(server.url("/console/applications")).header("cookie", &session).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");

    // A form without the session's CSRF token changes nothing.
    let forged = no_redirects
        .post(server.url("/console/applications"))
        .header("cookie", &session)
        .form(&[("name", "planted")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let planted = admin.get("/v1.0/applications?$filter=displayName eq 'planted'").await;
    assert_eq!(planted.body["value"], json!([]));
}
