//! The real Microsoft client libraries against wisp: Python msal and
//! azure-identity, Node @azure/identity and @azure/msal-node, pinned and
//! installed by `tests/compat/setup.sh` (which `.ci/run` runs). Each token they
//! obtain is verified against the JWKS with a generic JWT library.
//!
//! In CI (`CI=true`) a missing installation fails the suite; elsewhere it is
//! skipped with a notice.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::fake_issuer::{FakeIssuer, github_claims};
use crate::support::spawn_trusting;

const MAIN: &str = "repo:acme/app:ref:refs/heads/main";

fn compat_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/compat")
}

/// The installed clients, or `None` (skip) outside CI.
fn installed(what: &str, path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{what} is not installed at {}: run tests/compat/setup.sh (CI must run the compatibility suite)",
            path.display()
        );
    }
    eprintln!("notice: {what} not installed ({}); skipping — run tests/compat/setup.sh to include it", path.display());
    None
}

/// A client certificate: (key PEM, certificate PEM, SHA-1 thumbprint hex).
fn certificate() -> (String, String, String) {
    use aws_lc_rs::encoding::AsDer;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pkcs8 = pair.as_der().unwrap().as_ref().to_vec();
    let key = rcgen::KeyPair::try_from(pkcs8.as_slice()).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["compat-client".to_string()]).unwrap().self_signed(&key).unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.der());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    (crate::fake_issuer::pkcs8_pem(&pkcs8), cert.pem(), hex)
}

#[tokio::test]
async fn real_microsoft_client_libraries_get_valid_tokens() {
    let python = installed("Python msal/azure-identity", compat_dir().join("venv/bin/python"));
    let node = installed("Node @azure/identity/msal-node", compat_dir().join("node/node_modules/@azure/identity"));
    if python.is_none() && node.is_none() {
        return;
    }

    let github = FakeIssuer::start("").await;
    let wisp = spawn_trusting(&[&github]).await;
    let admin = wisp.admin().await;
    let tenant = wisp.tenant_id();
    let files = tempfile::tempdir().unwrap();
    let grant = crate::federation::grant;
    let create = |body: Value| {
        let admin = admin.clone();
        async move {
            let reply = admin.post("/v1.0/applications", body).await;
            assert_eq!(reply.status, 201, "{}", reply.body);
            reply.body
        }
    };

    let orders = create(
        json!({"displayName": "orders", "identifierUris": ["api://orders"], "appRoles": [{"value": "Orders.Read"}]}),
    )
    .await;
    // A client per credential kind, each granted Orders.Read.
    let assertion_client = create(json!({"displayName": "assertion-client"})).await;
    admin
        .post(
            &format!("/v1.0/applications/{}/federatedIdentityCredentials", assertion_client["id"].as_str().unwrap()),
            json!({"name": "github-main", "issuer": github.issuer, "subject": MAIN}),
        )
        .await;
    let secret_client = create(json!({"displayName": "secret-client"})).await;
    let secret = admin
        .post(&format!("/v1.0/applications/{}/addPassword", secret_client["id"].as_str().unwrap()), json!({}))
        .await
        .body["secretText"]
        .as_str()
        .unwrap()
        .to_string();
    let cert_client = create(json!({"displayName": "cert-client"})).await;
    let (key_pem, cert_pem, thumbprint) = certificate();
    admin
        .patch(
            &format!("/v1.0/applications/{}", cert_client["id"].as_str().unwrap()),
            json!({"keyCredentials": [{"key": cert_pem}]}),
        )
        .await;
    for client in [&assertion_client, &secret_client, &cert_client] {
        grant(&admin, client["appId"].as_str().unwrap(), &orders, "Orders.Read").await;
    }

    // Managed identities on vm1, served by a real agent.
    let worker = admin.post("/v1.0/managedIdentities", json!({"displayName": "worker"})).await.body;
    let vm = admin
        .post("/v1.0/resources", json!({"name": "vm1", "identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": [worker["id"]]}}))
        .await
        .body;
    grant(&admin, worker["clientId"].as_str().unwrap(), &orders, "Orders.Read").await;
    grant(&admin, vm["identity"]["clientId"].as_str().unwrap(), &orders, "Orders.Read").await;
    let join = admin.post(&format!("/v1.0/resources/{}/joinTokens", vm["id"].as_str().unwrap()), json!({})).await.body;
    let state = tempfile::tempdir().unwrap();
    let agent = wisp::agent::start(&wisp::agent::AgentArgs {
        server: Some(wisp.base_url.clone()),
        ca_file: wisp.server.ca_file.clone(),
        join_token: join["joinToken"].as_str().map(str::to_string),
        state_dir: state.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        log_format: wisp::config::LogFormat::Human,
        log_level: "warn".into(),
    })
    .await
    .unwrap();

    // The vendor's multi-tenant app trusts worker; the customer provisions it.
    let saas = create(json!({"displayName": "saas", "signInAudience": "AzureADMultipleOrgs"})).await;
    admin
        .post(
            &format!("/v1.0/applications/{}/federatedIdentityCredentials", saas["id"].as_str().unwrap()),
            json!({"name": "worker-mi", "issuer": format!("{}/{tenant}/v2.0", wisp.base_url), "subject": worker["principalId"]}),
        )
        .await;
    let customer = admin.post("/v1.0/tenants", json!({"displayName": "Customer"})).await.body;
    let customer_id = customer["id"].as_str().unwrap().to_string();
    let b = wisp
        .admin_as(
            &customer_id,
            customer["adminCredential"]["clientId"].as_str().unwrap(),
            customer["adminCredential"]["clientSecret"].as_str().unwrap(),
        )
        .await;
    let customer_orders = b.post("/v1.0/applications", json!({"displayName": "orders", "identifierUris": ["api://orders"], "appRoles": [{"value": "Orders.Read"}]})).await.body;
    b.post("/v1.0/servicePrincipals", json!({"appId": saas["appId"]})).await;
    grant(&b, saas["appId"].as_str().unwrap(), &customer_orders, "Orders.Read").await;

    let write = |name: &str, text: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let github_assertion = github.mint(github_claims(MAIN));
    let config = json!({
        "authority": wisp.base_url,
        "ca_file": wisp.server.ca_file.as_ref().unwrap(),
        "tenant": tenant,
        "orders_app_id": orders["appId"],
        "assertion_client": assertion_client["appId"],
        "github_assertion": github_assertion,
        "github_token_file": write("github-token", &github_assertion),
        "wrong_subject_assertion": github.mint(github_claims("repo:acme/app:ref:refs/heads/feature")),
        "secret_client": secret_client["appId"],
        "secret": secret,
        "cert_client": cert_client["appId"],
        "cert_pem_file": write("cert-and-key.pem", &format!("{key_pem}{cert_pem}")),
        "cert_key_file": write("key.pem", &key_pem),
        "cert_only_file": write("cert.pem", &cert_pem),
        "cert_thumbprint_hex": thumbprint,
        "imds_host": format!("http://{}", agent.local_addr),
        "app_service_endpoint": format!("http://{}/msi/token", agent.local_addr),
        "app_service_header": std::fs::read_to_string(&agent.identity_header_file).unwrap().trim(),
        "system_client_id": vm["identity"]["clientId"],
        "worker_client_id": worker["clientId"],
        "saas_client": saas["appId"],
        "customer_tenant": customer_id,
        "customer_orders_app_id": customer_orders["appId"],
    });
    let config_file = write("config.json", &config.to_string());

    // Both runtimes resolve "localhost" themselves; wisp listens on 127.0.0.1.
    let mut failures = Vec::new();
    if let Some(python) = python {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compat/python/clients.py");
        let output = tokio::process::Command::new(python)
            .arg(script)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", files.path())
            .env("WISP_COMPAT_CONFIG", &config_file)
            .output()
            .await
            .unwrap();
        println!(
            "--- python ---\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if !output.status.success() {
            failures.push("python");
        }
    }
    if node.is_some() {
        // ES modules resolve packages next to the script, so run it from the install.
        let script = compat_dir().join("node/clients.mjs");
        std::fs::copy(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compat/node/clients.mjs"), &script)
            .unwrap();
        let output = tokio::process::Command::new("node")
            .arg(script)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", files.path())
            .env("NODE_EXTRA_CA_CERTS", wisp.server.ca_file.as_ref().unwrap())
            .env("WISP_COMPAT_CONFIG", &config_file)
            .output()
            .await
            .unwrap();
        println!(
            "--- node ---\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if !output.status.success() {
            failures.push("node");
        }
    }
    agent.stop();
    assert!(failures.is_empty(), "client flows failed in: {failures:?} (output above)");
}
