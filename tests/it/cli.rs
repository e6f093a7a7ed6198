//! The `wisp` administration CLI, run as the real binary against a real server:
//! it reads bootstrap.json, signs in at the token endpoint, and its scenario
//! helpers produce the subjects GitHub and Kubernetes actually emit.

use std::path::Path;

use serde_json::Value;

use crate::support::{Run, spawn_wisp};

async fn wisp_cli(bootstrap: &Path, args: &[&str]) -> Run {
    crate::support::run_wisp(bootstrap, &[], args).await
}

async fn ok(bootstrap: &Path, args: &[&str]) -> Run {
    let run = wisp_cli(bootstrap, args).await;
    assert_eq!(run.code, Some(0), "wisp {args:?} failed: {}", run.stderr);
    run
}

#[tokio::test]
async fn the_cli_manages_the_directory_with_scenario_helpers() {
    let wisp = spawn_wisp().await;
    let bootstrap = wisp.data_dir.path().join("bootstrap.json");
    let b = bootstrap.as_path();
    let tenant = wisp.tenant_id();

    let created = ok(b, &["app", "create", "deployer"]).await;
    assert!(created.stdout.starts_with("NAME"), "a table: {}", created.stdout);
    assert!(created.stdout.contains("deployer"));

    let github = ok(
        b,
        &[
            "fic",
            "add",
            "--app",
            "deployer",
            "--name",
            "gh-main",
            "--github-repo",
            "acme/app",
            "--branch",
            "main",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(github.json()["issuer"], "https://token.actions.githubusercontent.com");
    assert_eq!(github.json()["subject"], "repo:acme/app:ref:refs/heads/main");
    assert_eq!(github.json()["audiences"][0], "api://AzureADTokenExchange");
    let env = ok(
        b,
        &[
            "fic",
            "add",
            "--app",
            "deployer",
            "--name",
            "gh-prod",
            "--github-repo",
            "acme/app",
            "--environment",
            "prod",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(env.json()["subject"], "repo:acme/app:environment:prod");
    let pr = ok(
        b,
        &[
            "fic",
            "add",
            "--app",
            "deployer",
            "--name",
            "gh-pr",
            "--github-repo",
            "acme/app",
            "--pull-request",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(pr.json()["subject"], "repo:acme/app:pull_request");
    let k8s = ok(
        b,
        &[
            "fic",
            "add",
            "--app",
            "deployer",
            "--name",
            "k8s",
            "--kubernetes-issuer",
            "https://oidc.example.test/c1/",
            "--namespace",
            "payments",
            "--service-account",
            "api",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(k8s.json()["subject"], "system:serviceaccount:payments:api");
    assert_eq!(k8s.json()["issuer"], "https://oidc.example.test/c1/");

    let mi = ok(b, &["mi", "create", "deployer-mi", "-o", "json"]).await.json();
    let via_mi = ok(
        b,
        &["fic", "add", "--app", "deployer", "--name", "from-mi", "--managed-identity", "deployer-mi", "-o", "json"],
    )
    .await;
    assert_eq!(via_mi.json()["issuer"], format!("{}/{tenant}/v2.0", wisp.base_url));
    assert_eq!(via_mi.json()["subject"], mi["principalId"]);

    let flexible = ok(
        b,
        &[
            "fic",
            "add",
            "--app",
            "deployer",
            "--name",
            "any-prod",
            "--issuer",
            "https://token.actions.githubusercontent.com",
            "--expression",
            "claims['sub'] matches 'repo:acme/*:environment:prod'",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(flexible.json()["claimsMatchingExpression"]["languageVersion"], 1);
    let bad = wisp_cli(
        b,
        &[
            "fic",
            "add",
            "--app",
            "deployer",
            "--name",
            "bad-expr",
            "--issuer",
            "https://token.actions.githubusercontent.com",
            "--expression",
            "claims['sub'] like 'x'",
        ],
    )
    .await;
    assert_eq!(bad.code, Some(1));
    assert!(bad.stderr.contains("position 14"), "{}", bad.stderr);

    let listed = ok(b, &["fic", "list", "--app", "deployer", "-o", "json"]).await.json();
    assert_eq!(listed["value"].as_array().unwrap().len(), 6);

    // Explain a token against the credentials (bare claims: this one is not signed).
    use base64::Engine;
    let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let token = format!(
        "{}.{}.c2ln",
        b64(serde_json::json!({"alg": "RS256", "kid": "k"})),
        b64(
            serde_json::json!({"iss": "https://token.actions.githubusercontent.com", "sub": "repo:acme/app:ref:refs/heads/Main",
                               "aud": "api://AzureADTokenExchange", "exp": 4_000_000_000u64})
        )
    );
    let token_file = wisp.data_dir.path().join("token.jwt");
    std::fs::write(&token_file, token).unwrap();
    let explained = ok(b, &["fic", "explain", "--app", "deployer", token_file.to_str().unwrap(), "--no-verify"]).await;
    assert!(explained.stdout.contains("NOT checked"), "{}", explained.stdout);
    assert!(explained.stdout.contains("FAIL subject"), "{}", explained.stdout);
    assert!(explained.stdout.contains("case"), "{}", explained.stdout);
    assert!(explained.stdout.contains("refused: no credential matches"), "{}", explained.stdout);

    // Refusals carry the server's message and exit non-zero.
    let duplicate = wisp_cli(
        b,
        &["fic", "add", "--app", "deployer", "--name", "gh-main", "--issuer", "https://x.example", "--subject", "s"],
    )
    .await;
    assert_eq!(duplicate.code, Some(1));
    assert!(duplicate.stderr.contains("already exists"), "{}", duplicate.stderr);
    let missing = wisp_cli(b, &["app", "show", "no-such-app"]).await;
    assert_eq!(missing.code, Some(1));
    assert!(missing.stderr.contains("no application named"), "{}", missing.stderr);
    let half = wisp_cli(b, &["fic", "add", "--app", "deployer", "--name", "x1", "--github-repo", "acme/app"]).await;
    assert_eq!(half.code, Some(1), "a GitHub scenario needs an entity");

    // Secrets, roles, resources, tenants.
    let secret = ok(b, &["secret", "add", "deployer", "-o", "json"]).await.json();
    assert!(secret["secretText"].as_str().unwrap().len() >= 40);
    ok(b, &["app", "create", "orders", "--identifier-uri", "api://orders", "--app-role", "Orders.Read"]).await;
    ok(b, &["role", "grant", "--to", "deployer", "--api", "api://orders", "--role", "Orders.Read"]).await;
    let deployer = ok(b, &["app", "show", "deployer", "-o", "json"]).await.json();
    let token = wisp
        .token_with_secret(
            &tenant,
            deployer["appId"].as_str().unwrap(),
            secret["secretText"].as_str().unwrap(),
            "api://orders/.default",
        )
        .await;
    let token: Value = token.json().await.unwrap();
    let orders = ok(b, &["app", "show", "orders", "-o", "json"]).await.json();
    let claims = crate::token::verify_with_jwks(
        &wisp,
        &tenant,
        token["access_token"].as_str().unwrap(),
        orders["appId"].as_str().unwrap(),
    )
    .await;
    assert_eq!(claims["roles"], serde_json::json!(["Orders.Read"]));
    ok(b, &["role", "revoke", "--to", "deployer", "--api", "api://orders", "--role", "Orders.Read"]).await;

    let vm = ok(b, &["resource", "create", "vm1", "--system-assigned", "--identity", "deployer-mi", "-o", "json"])
        .await
        .json();
    assert_eq!(vm["identity"]["type"], "SystemAssigned, UserAssigned");
    let detached = ok(b, &["resource", "detach", "vm1", "deployer-mi", "-o", "json"]).await.json();
    assert_eq!(detached["identity"]["type"], "SystemAssigned");
    let again = wisp_cli(b, &["resource", "detach", "vm1", "deployer-mi"]).await;
    assert_eq!(again.code, Some(1));
    ok(b, &["resource", "attach", "vm1", "deployer-mi"]).await;
    ok(b, &["resource", "delete", "vm1"]).await;

    let customer = ok(b, &["tenant", "create", "Customer", "-o", "json"]).await.json();
    assert!(customer["adminCredential"]["clientSecret"].is_string());
    let tenants = ok(b, &["tenant", "list"]).await;
    assert!(tenants.stdout.contains("Customer"));

    ok(b, &["fic", "remove", "--app", "deployer", "gh-main"]).await;
    ok(b, &["app", "delete", "orders"]).await;
}

#[tokio::test]
async fn the_cli_explains_missing_or_wrong_credentials() {
    let wisp = spawn_wisp().await;
    let nowhere = wisp.data_dir.path().join("absent.json");
    let run = wisp_cli(&nowhere, &["app", "list"]).await;
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("cannot read"), "{}", run.stderr);

    let bootstrap = wisp.data_dir.path().join("bootstrap.json");
    let output = tokio::process::Command::new(crate::support::wisp_binary())
        .args(["app", "list", "--bootstrap"])
        .arg(&bootstrap)
        .env_clear()
        .env("WISP_CLIENT_SECRET", "wrong")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("AADSTS7000215"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}
