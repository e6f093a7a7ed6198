//! Managed identities end to end: a real agent enrolled with a join token,
//! its IMDS and App Service endpoints, identity selection, caching, revocation,
//! and a managed identity token used as a federated credential — across tenants.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wisp::agent::{AgentArgs, RunningAgent};

use crate::support::{Admin, TestServer, spawn_trusting};

/// Starts an agent for `wisp` in `state_dir`, enrolling with `join_token` if given.
async fn start_agent(
    wisp: &TestServer,
    state_dir: &std::path::Path,
    join_token: Option<String>,
) -> anyhow::Result<RunningAgent> {
    wisp::agent::start(&AgentArgs {
        server: Some(wisp.base_url.clone()),
        ca_file: wisp.server.ca_file.clone(),
        join_token,
        state_dir: state_dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        log_format: wisp::config::LogFormat::Human,
        log_level: "warn".into(),
    })
    .await
}

async fn join_token(admin: &Admin, resource_id: &str) -> String {
    let reply = admin.post(&format!("/v1.0/resources/{resource_id}/joinTokens"), json!({})).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["joinToken"].as_str().unwrap().to_string()
}

/// GET on the agent's IMDS endpoint.
async fn imds(agent: &RunningAgent, query: &str, metadata: bool) -> (u16, Value, Duration) {
    let started = Instant::now();
    let mut request =
        reqwest::Client::new().get(format!("http://{}/metadata/identity/oauth2/token?{query}", agent.local_addr));
    if metadata {
        request = request.header("Metadata", "true");
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default(), started.elapsed())
}

struct World {
    wisp: TestServer,
    admin: Admin,
    worker: Value,
    vm: Value,
    agent: RunningAgent,
    _state: tempfile::TempDir,
}

/// A tenant with user-assigned identity `worker` attached to `vm1` (which also
/// has a system-assigned identity) and an agent enrolled for `vm1`.
async fn world() -> World {
    let wisp = spawn_trusting(&[]).await;
    let admin = wisp.admin().await;
    let worker = admin.post("/v1.0/managedIdentities", json!({"displayName": "worker"})).await.body;
    let vm = admin
        .post(
            "/v1.0/resources",
            json!({"name": "vm1", "identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": [worker["id"]]}}),
        )
        .await
        .body;
    let token = join_token(&admin, vm["id"].as_str().unwrap()).await;
    let state = tempfile::tempdir().unwrap();
    let agent = start_agent(&wisp, state.path(), Some(token)).await.expect("the agent enrolls");
    World { wisp, admin, worker, vm, agent, _state: state }
}

#[tokio::test]
async fn the_imds_endpoint_serves_entra_shaped_identity_tokens() {
    let w = world().await;
    let tenant = w.wisp.tenant_id();
    // The header-less probe is answered fast with 400.
    let (status, body, elapsed) =
        imds(&w.agent, "api-version=2018-02-01&resource=api://AzureADTokenExchange", false).await;
    assert_eq!(status, 400);
    assert_eq!(body["error_description"], "Required metadata header not specified");
    assert!(elapsed < Duration::from_millis(300));
    let proxied = reqwest::Client::new()
        .get(format!("http://{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x", w.agent.local_addr))
        .header("Metadata", "true")
        .header("X-Forwarded-For", "10.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 400);
    assert_eq!(imds(&w.agent, "resource=api://AzureADTokenExchange", true).await.0, 400, "api-version is required");

    // The system-assigned identity by default.
    let (status, body, _) = imds(&w.agent, "api-version=2018-02-01&resource=api://AzureADTokenExchange", true).await;
    assert_eq!(status, 200, "{body}");
    for field in ["expires_in", "expires_on", "ext_expires_in", "not_before"] {
        assert!(body[field].is_string(), "{field} is a string: {body}");
    }
    assert_eq!(body["resource"], "api://AzureADTokenExchange");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["client_id"], w.vm["identity"]["clientId"]);
    let claims = crate::token::verify_with_jwks(
        &w.wisp,
        &tenant,
        body["access_token"].as_str().unwrap(),
        "api://AzureADTokenExchange",
    )
    .await;
    assert_eq!(claims["sub"], w.vm["identity"]["principalId"]);
    assert_eq!(claims["oid"], w.vm["identity"]["principalId"]);
    assert_eq!(claims["azp"], w.vm["identity"]["clientId"]);
    assert_eq!(claims["iss"], format!("{}/{tenant}/v2.0", w.wisp.base_url));
    assert_eq!(claims["xms_mirid"], format!("/tenants/{tenant}/resources/vm1"));
    assert_eq!(claims["idtyp"], "app");

    // The user-assigned one by client id, with the trailing-slash path msal-node uses.
    let query = format!(
        "api-version=2018-02-01&resource=api://AzureADTokenExchange&client_id={}",
        w.worker["clientId"].as_str().unwrap()
    );
    let url = format!("http://{}/metadata/identity/oauth2/token/?{query}", w.agent.local_addr);
    let body: Value =
        reqwest::Client::new().get(url).header("Metadata", "true").send().await.unwrap().json().await.unwrap();
    assert_eq!(body["client_id"], w.worker["clientId"]);
    // Cached: the same token again.
    let (_, again, _) = imds(&w.agent, &query, true).await;
    assert_eq!(again["access_token"], body["access_token"]);
    // By object id and by resource id too.
    let by_object = imds(
        &w.agent,
        &format!(
            "api-version=2018-02-01&resource=api://AzureADTokenExchange&object_id={}",
            w.worker["principalId"].as_str().unwrap()
        ),
        true,
    )
    .await;
    assert_eq!(by_object.1["client_id"], w.worker["clientId"]);
    let path = format!("/tenants/{tenant}/managedIdentities/{}", w.worker["id"].as_str().unwrap());
    let by_path =
        imds(&w.agent, &format!("api-version=2018-02-01&resource=api://AzureADTokenExchange&msi_res_id={path}"), true)
            .await;
    assert_eq!(by_path.1["client_id"], w.worker["clientId"]);

    // Unknown identity and unknown resource: 400, promptly (no retry storm).
    let (status, body, elapsed) = imds(
        &w.agent,
        &format!("api-version=2018-02-01&resource=api://AzureADTokenExchange&client_id={}", uuid::Uuid::new_v4()),
        true,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(elapsed < Duration::from_secs(2));
    let (status, body, _) = imds(&w.agent, "api-version=2018-02-01&resource=api://no-such-api", true).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_resource")), "{body}");
    let two = imds(
        &w.agent,
        &format!("api-version=2018-02-01&resource=x&client_id={0}&object_id={0}", uuid::Uuid::new_v4()),
        true,
    )
    .await;
    assert_eq!(two.0, 400);

    // The sign-in log records managed identity tokens.
    let logs = w.admin.get("/v1.0/auditLogs/signIns?$filter=outcome eq 'granted'").await;
    assert!(logs.body["value"].as_array().unwrap().iter().any(|e| e["clientCredentialType"] == "managedIdentity"));
}

#[tokio::test]
async fn the_app_service_endpoint_needs_the_identity_header() {
    let w = world().await;
    let header = std::fs::read_to_string(&w.agent.identity_header_file).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&w.agent.identity_header_file).unwrap().permissions().mode() & 0o777, 0o600);
    let url =
        format!("http://{}/msi/token?api-version=2019-08-01&resource=api://AzureADTokenExchange", w.agent.local_addr);
    let ok = reqwest::Client::new().get(&url).header("X-IDENTITY-HEADER", header.trim()).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert!(body["expires_on"].as_str().unwrap().parse::<i64>().unwrap() > wisp::clock::now());
    assert_eq!(body["client_id"], w.vm["identity"]["clientId"]);
    assert_eq!(body["resource"], "api://AzureADTokenExchange");
    let wrong = reqwest::Client::new().get(&url).header("X-IDENTITY-HEADER", "guess").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let missing = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let old_api = url.replace("2019-08-01", "2017-09-01");
    assert_eq!(
        reqwest::Client::new().get(old_api).header("X-IDENTITY-HEADER", header.trim()).send().await.unwrap().status(),
        400
    );
}

#[tokio::test]
async fn join_tokens_are_one_time_and_deleting_the_resource_revokes_the_agent() {
    let w = world().await;
    let resource_id = w.vm["id"].as_str().unwrap();
    let token = join_token(&w.admin, resource_id).await;
    let first = tempfile::tempdir().unwrap();
    start_agent(&w.wisp, first.path(), Some(token.clone())).await.expect("first use enrolls");
    let second = tempfile::tempdir().unwrap();
    let refused = start_agent(&w.wisp, second.path(), Some(token)).await.err().expect("a used token is refused");
    assert!(refused.to_string().contains("already used"), "{refused}");
    let bogus = start_agent(&w.wisp, tempfile::tempdir().unwrap().path(), Some("wjt_nope".into())).await.err().unwrap();
    assert!(bogus.to_string().contains("not valid"), "{bogus}");

    // Restarting an enrolled agent reuses its state: no join token needed.
    let restarted = start_agent(&w.wisp, first.path(), None).await.expect("restart reuses the state");
    let (status, _, _) = imds(&restarted, "api-version=2018-02-01&resource=api://AzureADTokenExchange", true).await;
    assert_eq!(status, 200);

    // Detaching the user-assigned identity is effective for the next server call.
    w.admin.patch(&format!("/v1.0/resources/{resource_id}"), json!({"identity": {"type": "SystemAssigned"}})).await;
    let query = format!(
        "api-version=2018-02-01&resource=api://wisp-admin&client_id={}",
        w.worker["clientId"].as_str().unwrap()
    );
    assert_eq!(imds(&restarted, &query, true).await.0, 400, "a detached identity gets no token");

    // Deleting the resource revokes its agents at once.
    assert_eq!(w.admin.delete(&format!("/v1.0/resources/{resource_id}")).await.status, 204);
    let (status, body, _) = imds(&restarted, "api-version=2018-02-01&resource=api://wisp-admin", true).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn the_seed_scenario_a_managed_identity_as_credential_across_tenants() {
    let w = world().await;
    let vendor_tenant = w.wisp.tenant_id();
    let own_issuer = format!("{}/{vendor_tenant}/v2.0", w.wisp.base_url);
    // The vendor's multi-tenant app trusts the worker identity.
    let saas = w
        .admin
        .post("/v1.0/applications", json!({"displayName": "saas", "signInAudience": "AzureADMultipleOrgs"}))
        .await
        .body;
    let fics = format!("/v1.0/applications/{}/federatedIdentityCredentials", saas["id"].as_str().unwrap());
    let fic = w
        .admin
        .post(&fics, json!({"name": "worker-mi", "issuer": own_issuer, "subject": w.worker["principalId"]}))
        .await;
    assert_eq!(fic.status, 201, "{}", fic.body);
    // And, wrongly, the system-assigned identity (Entra refuses it at exchange).
    w.admin
        .post(&fics, json!({"name": "system-mi", "issuer": own_issuer, "subject": w.vm["identity"]["principalId"]}))
        .await;

    // The customer tenant provisions the app and grants it Orders.Read on its API.
    let customer = w.admin.post("/v1.0/tenants", json!({"displayName": "Customer"})).await.body;
    let customer_id = customer["id"].as_str().unwrap().to_string();
    let b = w
        .wisp
        .admin_as(
            &customer_id,
            customer["adminCredential"]["clientId"].as_str().unwrap(),
            customer["adminCredential"]["clientSecret"].as_str().unwrap(),
        )
        .await;
    let orders = b.post("/v1.0/applications", json!({"displayName": "orders", "identifierUris": ["api://orders"], "appRoles": [{"value": "Orders.Read"}, {"value": "Orders.Write"}]})).await.body;
    let client = saas["appId"].as_str().unwrap();

    // The workload on vm1 gets its managed identity token from the agent…
    let worker_token = |resource: &'static str| {
        let (agent, client_id) = (&w.agent, w.worker["clientId"].as_str().unwrap().to_string());
        async move {
            imds(agent, &format!("api-version=2018-02-01&resource={resource}&client_id={client_id}"), true).await.1
        }
    };
    let mi = worker_token("api://AzureADTokenExchange").await;
    let assertion = mi["access_token"].as_str().unwrap();

    // Not provisioned in the customer tenant yet.
    let (status, body) = w.wisp.token_with_assertion(&customer_id, client, assertion, "api://orders/.default").await;
    assert_eq!((status, body["error_codes"][0].as_u64()), (400, Some(700016)));
    b.post("/v1.0/servicePrincipals", json!({"appId": client})).await;
    crate::federation::grant(&b, client, &orders, "Orders.Read").await;

    // …and exchanges it at the customer's endpoint for the customer's API.
    let (status, body) = w.wisp.token_with_assertion(&customer_id, client, assertion, "api://orders/.default").await;
    assert_eq!(status, 200, "{body}");
    let claims = crate::token::verify_with_jwks(
        &w.wisp,
        &customer_id,
        body["access_token"].as_str().unwrap(),
        orders["appId"].as_str().unwrap(),
    )
    .await;
    assert_eq!(claims["tid"], customer_id.as_str());
    assert_eq!(claims["roles"], json!(["Orders.Read"]), "only the granted role");
    assert_eq!(claims["azp"], client);

    // Guards: a token for another audience is not an assertion for this FIC…
    let wrong_audience = worker_token("api://wisp-admin").await;
    let (status, body) = w
        .wisp
        .token_with_assertion(
            &customer_id,
            client,
            wrong_audience["access_token"].as_str().unwrap(),
            "api://orders/.default",
        )
        .await;
    assert_eq!((status, body["error_codes"][0].as_u64()), (401, Some(700212)));
    // …the system-assigned identity is refused as a credential…
    let system = imds(&w.agent, "api-version=2018-02-01&resource=api://AzureADTokenExchange", true).await.1;
    let (status, body) = w
        .wisp
        .token_with_assertion(&customer_id, client, system["access_token"].as_str().unwrap(), "api://orders/.default")
        .await;
    assert_eq!((status, body["error_codes"][0].as_u64()), (401, Some(700236)), "{body}");
    // …and the exchange needed no network fetch of any issuer.
}

/// Keeps helpers used when other modules grow.
#[allow(dead_code)]
fn _unused(_: &Admin) {}
