//! The sign-in log: every token request recorded with what was presented and
//! which credential matched; refusals carry each credential's checks, found by
//! the correlation id the client received.

use serde_json::json;

use crate::fake_issuer::{FakeIssuer, github_claims};
use crate::support::spawn_trusting;

const MAIN: &str = "repo:acme/app:ref:refs/heads/main";

#[tokio::test]
async fn grants_and_refusals_are_recorded_and_explained() {
    let github = FakeIssuer::start("").await;
    let wisp = spawn_trusting(&[&github]).await;
    let admin = wisp.admin().await;
    let tenant = wisp.tenant_id();
    let app = admin.post("/v1.0/applications", json!({"displayName": "deployer"})).await.body;
    let client = app["appId"].as_str().unwrap().to_string();
    let fic = admin
        .post(
            &format!("/v1.0/applications/{}/federatedIdentityCredentials", app["id"].as_str().unwrap()),
            json!({"name": "main-branch", "issuer": github.issuer, "subject": MAIN}),
        )
        .await
        .body;

    let claims = github_claims(MAIN);
    let jti = claims["jti"].as_str().unwrap().to_string();
    let (status, granted) =
        wisp.token_with_assertion(&tenant, &client, &github.mint(claims), "api://wisp-admin/.default").await;
    assert_eq!(status, 200, "{granted}");
    let (status, refused) = wisp
        .token_with_assertion(
            &tenant,
            &client,
            &github.mint(github_claims("repo:acme/app:ref:refs/heads/Main")),
            "api://wisp-admin/.default",
        )
        .await;
    assert_eq!(status, 401);
    let correlation = refused["correlation_id"].as_str().unwrap();

    // The grant: which credential, what was presented, the token's id.
    let grants =
        admin.get(&format!("/v1.0/auditLogs/signIns?$filter=appId eq '{client}' and outcome eq 'granted'")).await;
    assert_eq!(grants.status, 200, "{}", grants.body);
    let grant = &grants.body["value"][0];
    assert_eq!(grants.body["value"].as_array().unwrap().len(), 1);
    assert_eq!(grant["credentialId"], fic["id"]);
    assert_eq!(grant["clientCredentialType"], "federatedIdentityCredential");
    assert_eq!(grant["assertion"]["issuer"], github.issuer.as_str());
    assert_eq!(grant["assertion"]["subject"], MAIN);
    assert_eq!(grant["assertion"]["jti"], jti.as_str());
    assert_eq!(grant["ipAddress"], "127.0.0.1");
    assert_eq!(grant["resource"], "api://wisp-admin");
    assert_eq!(grant["status"]["errorCode"], 0);
    let token_claims: serde_json::Value = {
        use base64::Engine;
        let payload = granted["access_token"].as_str().unwrap().split('.').nth(1).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    };
    assert_eq!(grant["uniqueTokenIdentifier"], token_claims["uti"]);

    // The refusal, found by the correlation id the client was given.
    let found = admin.get(&format!("/v1.0/auditLogs/signIns?$filter=correlationId eq '{correlation}'")).await;
    let entry = &found.body["value"][0];
    assert_eq!(entry["outcome"], "refused");
    assert_eq!(entry["status"]["errorCode"], 7002138);
    let checks = &entry["details"]["credentials"][0]["checks"];
    let subject = checks.as_array().unwrap().iter().find(|c| c["check"] == "subject").unwrap();
    assert_eq!(subject["passed"], false);
    assert_eq!(subject["expected"], MAIN, "the administrator sees what was expected");
    assert!(subject["hint"].as_str().unwrap().contains("case"));
    // The client saw none of that.
    assert!(!refused.to_string().contains(MAIN));

    // Filters, time range and paging.
    let all = admin.get("/v1.0/auditLogs/signIns").await.body["value"].as_array().unwrap().len();
    assert!(all >= 3, "the admin's own token request is logged too");
    let page = admin.get("/v1.0/auditLogs/signIns?$top=1").await;
    let next = page.body["@odata.nextLink"].as_str().unwrap().to_string();
    assert_ne!(admin.get(&next).await.body["value"][0]["id"], page.body["value"][0]["id"]);
    let future = admin.get("/v1.0/auditLogs/signIns?$filter=createdDateTime ge 2099-01-01T00:00:00Z").await;
    assert!(future.body["value"].as_array().unwrap().is_empty());
    assert_eq!(admin.get("/v1.0/auditLogs/signIns?$filter=outcome eq 'maybe'").await.status, 400);

    // The CLI shows the explanation.
    let output = tokio::process::Command::new(crate::support::wisp_binary())
        .args(["logs", "--correlation-id", correlation, "--explain", "--bootstrap"])
        .arg(wisp.data_dir.path().join("bootstrap.json"))
        .env_clear()
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("AADSTS7002138"), "{stdout}");
    assert!(stdout.contains("FAIL subject"), "{stdout}");
    assert!(stdout.contains("hint:"), "{stdout}");
}

#[tokio::test]
async fn the_sign_in_log_is_tenant_scoped_and_needs_directory_read() {
    let wisp = spawn_trusting(&[]).await;
    let admin = wisp.admin().await;
    let customer = admin.post("/v1.0/tenants", json!({"displayName": "B"})).await.body;
    let b = wisp
        .admin_as(
            customer["id"].as_str().unwrap(),
            customer["adminCredential"]["clientId"].as_str().unwrap(),
            customer["adminCredential"]["clientSecret"].as_str().unwrap(),
        )
        .await;
    let (a_client, _) = wisp.admin_credentials();
    let b_view = b.get(&format!("/v1.0/auditLogs/signIns?$filter=appId eq '{a_client}'")).await;
    assert!(b_view.body["value"].as_array().unwrap().is_empty(), "tenant B sees none of tenant A's sign-ins");
}
