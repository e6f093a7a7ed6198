//! The seed scenario over real processes, set up as a user would with the CLI:
//! `wisp serve`, `wisp agent` on vm1, and the example protected API.
//!
//! Tenant A (a SaaS vendor) has a user-assigned identity `worker` on `vm1` and a
//! multi-tenant app `saas` trusting it. Tenant B (a customer) provisions `saas`
//! and grants it `Orders.Read` on B's `api://orders`. A workload on vm1 gets
//! worker's token from the agent, exchanges it at B's token endpoint, and calls
//! the protected API. No secret is held by the workload anywhere.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::startup;

/// Runs the wisp CLI and returns its JSON output.
async fn cli(args: &[&str], env: &[(&str, &str)]) -> Value {
    let output = Command::new(crate::support::wisp_binary())
        .args(args)
        .args(["-o", "json"])
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "wisp {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

/// Starts a process and waits for a stdout line containing `marker`; returns
/// the child and the text after the marker.
async fn spawn_until(mut command: Command, marker: &str) -> (Child, String) {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some((_, rest)) = line.split_once(marker) {
                return Some(rest.trim().to_string());
            }
        }
        None
    })
    .await
    .expect("the process starts within a minute")
    .expect("the process printed its address");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, found)
}

fn protected_api_binary() -> PathBuf {
    // Integration tests run from target/<profile>/deps; examples sit beside it.
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("examples").join("protected_api")
}

async fn exchange(http: &reqwest::Client, url: &str, tenant: &str, client: &str, assertion: &str) -> Value {
    http.post(format!("{url}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion),
            ("scope", "api://orders/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn imds(agent: &str, query: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("http://{agent}/metadata/identity/oauth2/token?api-version=2018-02-01&{query}"))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn the_seed_scenario_over_real_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("wisp-data");
    let server = startup::start(&data, &[], &[]).await.unwrap_or_else(|f| panic!("{}", f.stderr));
    let url = server.url.clone();
    let ca = data.join("tls/ca.pem");
    let bootstrap = data.join("bootstrap.json");
    let vendor = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(["--bootstrap".to_string(), bootstrap.to_str().unwrap().to_string()]);
        async move { cli(&all.iter().map(String::as_str).collect::<Vec<_>>(), &[]).await }
    };

    // Tenant A, the vendor.
    let worker = vendor(&["mi", "create", "worker"]).await;
    vendor(&["resource", "create", "vm1", "--identity", "worker"]).await;
    let saas = vendor(&["app", "create", "saas", "--multi-tenant"]).await;
    let saas_id = saas["appId"].as_str().unwrap().to_string();
    vendor(&["fic", "add", "--app", "saas", "--name", "worker-mi", "--managed-identity", "worker"]).await;
    let customer = vendor(&["tenant", "create", "Customer"]).await;
    let b = customer["id"].as_str().unwrap().to_string();
    let b_client = customer["adminCredential"]["clientId"].as_str().unwrap().to_string();
    let b_secret = customer["adminCredential"]["clientSecret"].as_str().unwrap().to_string();

    // Tenant B, the customer, with its own credentials.
    let customer_cli = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(
            [
                "--server",
                url.as_str(),
                "--tenant",
                b.as_str(),
                "--client-id",
                b_client.as_str(),
                "--ca-file",
                ca.to_str().unwrap(),
            ]
            .map(str::to_string),
        );
        let secret = b_secret.clone();
        async move {
            cli(&all.iter().map(String::as_str).collect::<Vec<_>>(), &[("WISP_CLIENT_SECRET", secret.as_str())]).await
        }
    };
    let orders = customer_cli(&[
        "app",
        "create",
        "orders",
        "--identifier-uri",
        "api://orders",
        "--app-role",
        "Orders.Read",
        "--app-role",
        "Orders.Write",
    ])
    .await;
    let orders_id = orders["appId"].as_str().unwrap().to_string();

    // The agent on vm1, enrolled with a one-time join token.
    let join = vendor(&["resource", "join-token", "vm1"]).await;
    let mut agent_cmd = Command::new(crate::support::wisp_binary());
    agent_cmd
        .args([
            "agent",
            "--server",
            &url,
            "--ca-file",
            ca.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--log-level",
            "warn",
        ])
        .arg("--state-dir")
        .arg(tmp.path().join("agent"))
        .env_clear()
        .env("WISP_JOIN_TOKEN", join["joinToken"].as_str().unwrap());
    let (mut agent, agent_addr) = spawn_until(agent_cmd, "serving managed identity endpoints at http://").await;

    // The protected API, trusting tenant B's issuer.
    let mut api_cmd = Command::new(protected_api_binary());
    api_cmd
        .env_clear()
        .env("PROTECTED_API_ISSUERS", format!("{url}/{b}/v2.0"))
        .env("PROTECTED_API_AUDIENCE", &orders_id)
        .env("PROTECTED_API_ROLE", "Orders.Read")
        .env("PROTECTED_API_CA_FILE", &ca)
        .env("PROTECTED_API_LISTEN", "127.0.0.1:0");
    let (mut api, api_url) = spawn_until(api_cmd, "protected API listening on ").await;

    let http = crate::support::https_client(&ca, server.port);
    let worker_client = worker["clientId"].as_str().unwrap();
    let (status, mi) =
        imds(&agent_addr, &format!("resource=api://AzureADTokenExchange&client_id={worker_client}")).await;
    assert_eq!(status, 200, "{mi}");
    let assertion = mi["access_token"].as_str().unwrap().to_string();

    // Guard: B has not provisioned the app yet.
    let refused = exchange(&http, &url, &b, &saas_id, &assertion).await;
    assert_eq!(refused["error_codes"][0], 700016, "{refused}");

    customer_cli(&["sp", "create", &saas_id]).await;
    // Guard: provisioned but no role granted yet — a token without roles, which the API forbids.
    let no_role = exchange(&http, &url, &b, &saas_id, &assertion).await;
    let call = |token: String| {
        let api_url = api_url.clone();
        async move { reqwest::Client::new().get(format!("{api_url}/orders")).bearer_auth(token).send().await.unwrap() }
    };
    assert_eq!(call(no_role["access_token"].as_str().unwrap().to_string()).await.status(), 403);

    customer_cli(&["role", "grant", "--to", &saas_id, "--api", "api://orders", "--role", "Orders.Read"]).await;
    let granted = exchange(&http, &url, &b, &saas_id, &assertion).await;
    let response = call(granted["access_token"].as_str().unwrap().to_string()).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["caller"], saas_id.as_str());
    assert_eq!(body["tenant"], b.as_str());

    // Guards at the API: no token, a tampered token, a token of another tenant.
    let anonymous = reqwest::Client::new().get(format!("{api_url}/orders")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    let mut tampered = granted["access_token"].as_str().unwrap().to_string();
    tampered.insert(tampered.len() - 5, 'x');
    assert_eq!(call(tampered).await.status(), 401);
    assert_eq!(
        call(mi["access_token"].as_str().unwrap().to_string()).await.status(),
        401,
        "tenant A's token is not trusted"
    );

    // Guard: detaching worker from vm1 stops new identity tokens.
    vendor(&["resource", "detach", "vm1", "worker"]).await;
    let (status, _) = imds(&agent_addr, &format!("resource=api://wisp-admin&client_id={worker_client}")).await;
    assert_eq!(status, 400);

    api.kill().await.ok();
    agent.kill().await.ok();
    assert_eq!(startup::stop(server).await, Some(0));
}
