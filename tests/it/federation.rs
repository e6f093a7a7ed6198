//! Federated client assertions at the token endpoint: GitHub- and
//! Kubernetes-shaped issuers on loopback (allow-listed, own CA), every refusal
//! with its code, key rotation, the SSRF policy, certificate assertions, and the
//! multi-tenant exchange.

use serde_json::{Value, json};

use crate::fake_issuer::{FakeIssuer, TestKey, github_claims, kubernetes_claims};
use crate::support::{Admin, TestServer, spawn_trusting};

const MAIN: &str = "repo:acme/app:ref:refs/heads/main";

/// An application with one FIC for `issuer`/`subject`, and an API it holds
/// `Orders.Read` on. Returns (app appId, api appId).
async fn app_trusting(admin: &Admin, issuer: &str, subject: &str) -> (String, String) {
    let app = admin.post("/v1.0/applications", json!({"displayName": "deployer"})).await.body;
    let fic = admin
        .post(
            &format!("/v1.0/applications/{}/federatedIdentityCredentials", app["id"].as_str().unwrap()),
            json!({"name": "trust", "issuer": issuer, "subject": subject}),
        )
        .await;
    assert_eq!(fic.status, 201, "{}", fic.body);
    let api = admin
        .post("/v1.0/applications", json!({"displayName": "orders", "identifierUris": ["api://orders"], "appRoles": [{"value": "Orders.Read"}]}))
        .await
        .body;
    grant(admin, app["appId"].as_str().unwrap(), &api, "Orders.Read").await;
    (app["appId"].as_str().unwrap().to_string(), api["appId"].as_str().unwrap().to_string())
}

/// Grants the client (by appId) a role of `api` (its Graph JSON) in the admin's tenant.
pub async fn grant(admin: &Admin, client_app_id: &str, api: &Value, role: &str) {
    let sp = |app_id: &str| format!("/v1.0/servicePrincipals?$filter=appId eq '{app_id}'");
    let client_sp = admin.get(&sp(client_app_id)).await.body["value"][0]["id"].clone();
    let api_sp =
        admin.get(&sp(api["appId"].as_str().unwrap())).await.body["value"][0]["id"].as_str().unwrap().to_string();
    let role_id = api["appRoles"].as_array().unwrap().iter().find(|r| r["value"] == role).unwrap()["id"].clone();
    let reply = admin
        .post(
            &format!("/v1.0/servicePrincipals/{api_sp}/appRoleAssignedTo"),
            json!({"principalId": client_sp, "resourceId": api_sp, "appRoleId": role_id}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

fn code(body: &Value) -> u64 {
    body["error_codes"][0].as_u64().unwrap_or_else(|| panic!("no error code: {body}"))
}

#[tokio::test]
async fn a_github_token_is_exchanged_for_an_entra_shaped_access_token() {
    let github = FakeIssuer::start("").await;
    let wisp = spawn_trusting(&[&github]).await;
    let admin = wisp.admin().await;
    let tenant = wisp.tenant_id();
    let (client, api) = app_trusting(&admin, &github.issuer, MAIN).await;

    let assertion = github.mint(github_claims(MAIN));
    let (status, body) = wisp.token_with_assertion(&tenant, &client, &assertion, "api://orders/.default").await;
    assert_eq!(status, 200, "{body}");
    let claims = crate::token::verify_with_jwks(&wisp, &tenant, body["access_token"].as_str().unwrap(), &api).await;
    assert_eq!(claims["azp"], client.as_str());
    assert_eq!(claims["azpacr"], "2", "an assertion is a certificate-class credential");
    assert_eq!(claims["roles"], json!(["Orders.Read"]));
    assert_eq!(claims["tid"], tenant.as_str());
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(github.jwks_fetches(), 1);

    // A second exchange uses the cached keys.
    let again = github.mint(github_claims(MAIN));
    assert_eq!(wisp.token_with_assertion(&tenant, &client, &again, "api://orders/.default").await.0, 200);
    assert_eq!(github.jwks_fetches(), 1, "keys are cached");
}

#[tokio::test]
async fn a_kubernetes_token_with_array_audience_and_trailing_slash_issuer_is_accepted() {
    let cluster = FakeIssuer::start("/cluster-1/").await;
    assert!(cluster.issuer.ends_with('/'));
    let wisp = spawn_trusting(&[&cluster]).await;
    let admin = wisp.admin().await;
    let (client, _) = app_trusting(&admin, &cluster.issuer, "system:serviceaccount:payments:api").await;
    let assertion = cluster.mint(kubernetes_claims("payments", "api"));
    let (status, body) =
        wisp.token_with_assertion(&wisp.tenant_id(), &client, &assertion, "api://orders/.default").await;
    assert_eq!(status, 200, "{body}");
    // The default service account of the same namespace is someone else.
    let other = cluster.mint(kubernetes_claims("payments", "default"));
    let (status, body) = wisp.token_with_assertion(&wisp.tenant_id(), &client, &other, "api://orders/.default").await;
    assert_eq!((status, code(&body)), (401, 700213));
}

#[tokio::test]
async fn ec_and_eddsa_signed_assertions_are_accepted() {
    let issuer = FakeIssuer::start("").await;
    issuer.publish(vec![TestKey::ec("ec1"), TestKey::ed25519("ed1")]);
    let wisp = spawn_trusting(&[&issuer]).await;
    let admin = wisp.admin().await;
    let (client, _) = app_trusting(&admin, &issuer.issuer, MAIN).await;
    for key in [TestKey::ec("ec1"), TestKey::ed25519("ed1")] {
        // Same kid, different key material: the published key must verify it.
        let forged = issuer.mint_with(&key, github_claims(MAIN));
        let (status, body) =
            wisp.token_with_assertion(&wisp.tenant_id(), &client, &forged, "api://orders/.default").await;
        assert_eq!((status, code(&body)), (401, 700027), "{}: a key the issuer never published", key.kid);
    }
    for key in issuer.keys() {
        let assertion = issuer.mint_with(&key, github_claims(MAIN));
        let (status, body) =
            wisp.token_with_assertion(&wisp.tenant_id(), &client, &assertion, "api://orders/.default").await;
        assert_eq!(status, 200, "{:?}: {body}", key.alg);
    }
}

#[tokio::test]
async fn every_assertion_refusal_has_its_code_and_says_only_what_was_presented() {
    let github = FakeIssuer::start("").await;
    let stranger = FakeIssuer::start("").await;
    let wisp = spawn_trusting(&[&github, &stranger]).await;
    let admin = wisp.admin().await;
    let tenant = wisp.tenant_id();
    let (client, _) = app_trusting(&admin, &github.issuer, MAIN).await;
    let exchange = |assertion: String| {
        let (wisp, tenant, client) = (&wisp, tenant.clone(), client.clone());
        async move { wisp.token_with_assertion(&tenant, &client, &assertion, "api://orders/.default").await }
    };
    let now = wisp::clock::now();

    // Subject: wrong branch, and case-only difference.
    let (status, body) = exchange(github.mint(github_claims("repo:acme/app:ref:refs/heads/dev"))).await;
    assert_eq!((status, code(&body)), (401, 700213));
    let description = body["error_description"].as_str().unwrap();
    assert!(description.contains("refs/heads/dev"), "names what was presented");
    assert!(!description.contains("refs/heads/main"), "never reveals the configured subject: {description}");
    let (_, body) = exchange(github.mint(github_claims("repo:ACME/app:ref:refs/heads/main"))).await;
    assert_eq!(code(&body), 7002138);
    // Audience.
    let mut claims = github_claims(MAIN);
    claims["aud"] = json!("https://github.com/acme");
    assert_eq!(code(&exchange(github.mint(claims)).await.1), 700212);
    // Issuer no credential trusts: refused without fetching it.
    assert_eq!(code(&exchange(stranger.mint(github_claims(MAIN))).await.1), 700211);
    assert_eq!(stranger.jwks_fetches(), 0, "an issuer no FIC names is never fetched");
    // Time window: expired, not yet valid, no exp at all.
    let mut expired = github_claims(MAIN);
    expired["exp"] = json!(now - 3600);
    let (status, body) = exchange(github.mint(expired)).await;
    assert_eq!((status, code(&body)), (401, 700024));
    assert!(body["error_description"].as_str().unwrap().contains("valid time range"));
    let mut future = github_claims(MAIN);
    future["nbf"] = json!(now + 3600);
    assert_eq!(code(&exchange(github.mint(future)).await.1), 700024);
    let mut no_exp = github_claims(MAIN);
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(code(&exchange(github.mint(no_exp)).await.1), 700024);
    // Signatures: tampered payload, a key nobody published, alg none, HS256 confusion.
    let good = github.mint(github_claims(MAIN));
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: Value = serde_json::from_slice(&b64.decode(&parts[1]).unwrap()).unwrap();
    payload["sub"] = json!("repo:acme/app:ref:refs/heads/main");
    payload["extra"] = json!("tampered");
    parts[1] = b64.encode(payload.to_string());
    assert_eq!(code(&exchange(parts.join(".")).await.1), 700027);
    let rogue = TestKey::rsa("rogue");
    assert_eq!(code(&exchange(github.mint_with(&rogue, github_claims(MAIN))).await.1), 700027);
    let mut none_claims = github_claims(MAIN);
    none_claims["iss"] = json!(github.issuer);
    let none = format!("{}.{}.", b64.encode(r#"{"alg":"none","kid":"k1"}"#), b64.encode(none_claims.to_string()));
    assert_eq!(code(&exchange(none).await.1), 700027);
    let hmac_key = github.key().jwk["n"].as_str().unwrap().to_string();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("k1".into());
    let confused =
        jsonwebtoken::encode(&header, &none_claims, &jsonwebtoken::EncodingKey::from_secret(hmac_key.as_bytes()))
            .unwrap();
    assert_eq!(code(&exchange(confused).await.1), 700027);
    // Malformed and oversized.
    assert_eq!(code(&exchange("not-a-jwt".into()).await.1), 50027);
    assert_eq!(code(&exchange(format!("{}.e30.x", "a".repeat(20_000))).await.1), 50027);

    // An application without any FIC.
    let bare = admin.post("/v1.0/applications", json!({"displayName": "bare"})).await.body;
    let (status, body) = wisp
        .token_with_assertion(
            &tenant,
            bare["appId"].as_str().unwrap(),
            &github.mint(github_claims(MAIN)),
            "api://orders/.default",
        )
        .await;
    assert_eq!((status, code(&body)), (401, 7000226));
    // Two client credentials at once.
    let response = wisp
        .client
        .post(wisp.url(&format!("/{tenant}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.as_str()),
            ("scope", "api://orders/.default"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", good.as_str()),
            ("client_secret", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // A wrong assertion type.
    let response = wisp
        .client
        .post(wisp.url(&format!("/{tenant}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.as_str()),
            ("scope", "api://orders/.default"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"),
            ("client_assertion", good.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn rotated_issuer_keys_are_picked_up_and_removed_ones_refused() {
    let github = FakeIssuer::start("").await;
    let wisp = spawn_trusting(&[&github]).await;
    let admin = wisp.admin().await;
    let tenant = wisp.tenant_id();
    let (client, _) = app_trusting(&admin, &github.issuer, MAIN).await;
    let old = github.key();
    assert_eq!(
        wisp.token_with_assertion(&tenant, &client, &github.mint(github_claims(MAIN)), "api://orders/.default").await.0,
        200
    );

    // The issuer rotates: k2 replaces k1.
    let new = TestKey::rsa("k2");
    github.publish(vec![new.clone()]);
    let (status, body) = wisp
        .token_with_assertion(&tenant, &client, &github.mint_with(&new, github_claims(MAIN)), "api://orders/.default")
        .await;
    assert_eq!(status, 200, "the unknown kid triggers one refresh: {body}");
    assert_eq!(github.jwks_fetches(), 2);
    // k1 is gone from the refreshed set, and the cooldown stops a refetch.
    let (status, body) = wisp
        .token_with_assertion(&tenant, &client, &github.mint_with(&old, github_claims(MAIN)), "api://orders/.default")
        .await;
    assert_eq!((status, code(&body)), (401, 700027));
    // Made-up kids do not make wisp hammer the issuer.
    for i in 0..5 {
        let bogus = TestKey::rsa(&format!("bogus-{i}"));
        wisp.token_with_assertion(
            &tenant,
            &client,
            &github.mint_with(&bogus, github_claims(MAIN)),
            "api://orders/.default",
        )
        .await;
    }
    assert_eq!(github.jwks_fetches(), 2, "refreshes are rate-limited per issuer");
}

#[tokio::test]
async fn unreachable_and_private_issuers_are_refused() {
    let down = FakeIssuer::start("").await;
    let private = FakeIssuer::start("").await;
    // Only `down` is allow-listed; `private` is on loopback and is not.
    let wisp = spawn_trusting(&[&down]).await;
    let admin = wisp.admin().await;
    let tenant = wisp.tenant_id();
    down.stop();
    let (client, _) = app_trusting(&admin, &down.issuer, MAIN).await;
    let (status, body) =
        wisp.token_with_assertion(&tenant, &client, &down.mint(github_claims(MAIN)), "api://orders/.default").await;
    assert_eq!((status, code(&body)), (401, 50166), "{body}");

    let app = admin.post("/v1.0/applications", json!({"displayName": "private"})).await.body;
    admin
        .post(
            &format!("/v1.0/applications/{}/federatedIdentityCredentials", app["id"].as_str().unwrap()),
            json!({"name": "private", "issuer": private.issuer, "subject": MAIN}),
        )
        .await;
    let (status, body) = wisp
        .token_with_assertion(
            &tenant,
            app["appId"].as_str().unwrap(),
            &private.mint(github_claims(MAIN)),
            "api://orders/.default",
        )
        .await;
    assert_eq!((status, code(&body)), (401, 50166));
    assert!(body["error_description"].as_str().unwrap().contains("not public"), "{body}");
    assert_eq!(private.jwks_fetches(), 0, "a non-allow-listed private issuer is never contacted");
}

/// A certificate (RSA, as MSAL uses) and its key, as an application credential.
fn client_certificate() -> (String, jsonwebtoken::EncodingKey, Vec<u8>) {
    use aws_lc_rs::encoding::AsDer;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pkcs8 = pair.as_der().unwrap().as_ref().to_vec();
    let key = rcgen::KeyPair::try_from(pkcs8.as_slice()).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["client".to_string()]).unwrap().self_signed(&key).unwrap();
    let encoding = jsonwebtoken::EncodingKey::from_rsa_pem(crate::fake_issuer::pkcs8_pem(&pkcs8).as_bytes()).unwrap();
    (cert.pem(), encoding, cert.der().to_vec())
}

#[tokio::test]
async fn certificate_assertions_work_with_ps256_and_padded_x5t() {
    let wisp = spawn_trusting(&[]).await;
    let admin = wisp.admin().await;
    let tenant = wisp.tenant_id();
    let app = admin.post("/v1.0/applications", json!({"displayName": "cert-client"})).await.body;
    let client = app["appId"].as_str().unwrap().to_string();
    let (pem, key, der) = client_certificate();
    let patched = admin
        .patch(
            &format!("/v1.0/applications/{}", app["id"].as_str().unwrap()),
            json!({"keyCredentials": [{"key": pem}]}),
        )
        .await;
    assert_eq!(patched.status, 204);
    let endpoint = format!("{}/{tenant}/oauth2/v2.0/token", wisp.base_url);
    let now = wisp::clock::now();
    let claims = |aud: &str| json!({"iss": client, "sub": client, "aud": aud, "exp": now + 600, "nbf": now, "iat": now, "jti": uuid::Uuid::new_v4()});
    use aws_lc_rs::digest;
    use base64::Engine;
    // MSAL: PS256 with x5t#S256.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
    header.x5t_s256 =
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, &der)));
    let assertion = jsonwebtoken::encode(&header, &claims(&endpoint), &key).unwrap();
    let (status, body) = wisp.token_with_assertion(&tenant, &client, &assertion, "api://wisp-admin/.default").await;
    assert_eq!(status, 200, "{body}");
    // MSAL Python's RS256 form: x5t as padded standard base64.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5t =
        Some(base64::engine::general_purpose::STANDARD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &der)));
    let assertion = jsonwebtoken::encode(&header, &claims(&endpoint), &key).unwrap();
    let (status, body) = wisp.token_with_assertion(&tenant, &client, &assertion, "api://wisp-admin/.default").await;
    assert_eq!(status, 200, "{body}");
    // Another endpoint as audience, and an unregistered certificate.
    let assertion = jsonwebtoken::encode(&header, &claims("https://login.example/token"), &key).unwrap();
    assert_eq!(
        code(&wisp.token_with_assertion(&tenant, &client, &assertion, "api://wisp-admin/.default").await.1),
        700038
    );
    let (_, other_key, other_der) = client_certificate();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5t = Some(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &other_der)),
    );
    let assertion = jsonwebtoken::encode(&header, &claims(&endpoint), &other_key).unwrap();
    assert_eq!(
        code(&wisp.token_with_assertion(&tenant, &client, &assertion, "api://wisp-admin/.default").await.1),
        700027
    );
}

#[tokio::test]
async fn a_multi_tenant_app_is_exchanged_at_the_customer_tenant() {
    let github = FakeIssuer::start("").await;
    let wisp = spawn_trusting(&[&github]).await;
    let vendor = wisp.admin().await;
    let saas = vendor
        .post("/v1.0/applications", json!({"displayName": "saas", "signInAudience": "AzureADMultipleOrgs"}))
        .await
        .body;
    vendor
        .post(
            &format!("/v1.0/applications/{}/federatedIdentityCredentials", saas["id"].as_str().unwrap()),
            json!({"name": "github", "issuer": github.issuer, "subject": MAIN}),
        )
        .await;
    let customer_reply = vendor.post("/v1.0/tenants", json!({"displayName": "Customer"})).await.body;
    let customer = customer_reply["id"].as_str().unwrap().to_string();
    let b = wisp
        .admin_as(
            &customer,
            customer_reply["adminCredential"]["clientId"].as_str().unwrap(),
            customer_reply["adminCredential"]["clientSecret"].as_str().unwrap(),
        )
        .await;
    let client = saas["appId"].as_str().unwrap();
    let api = b.post("/v1.0/applications", json!({"displayName": "orders", "identifierUris": ["api://orders"], "appRoles": [{"value": "Orders.Read"}]})).await.body;

    // Not provisioned in the customer tenant yet.
    let (status, body) =
        wisp.token_with_assertion(&customer, client, &github.mint(github_claims(MAIN)), "api://orders/.default").await;
    assert_eq!((status, code(&body)), (400, 700016));
    let sp = b.post("/v1.0/servicePrincipals", json!({"appId": client})).await.body;
    grant(&b, client, &api, "Orders.Read").await;
    let (status, body) =
        wisp.token_with_assertion(&customer, client, &github.mint(github_claims(MAIN)), "api://orders/.default").await;
    assert_eq!(status, 200, "{body}");
    let claims = crate::token::verify_with_jwks(
        &wisp,
        &customer,
        body["access_token"].as_str().unwrap(),
        api["appId"].as_str().unwrap(),
    )
    .await;
    assert_eq!(claims["tid"], customer.as_str());
    assert_eq!(claims["iss"], format!("{}/{customer}/v2.0", wisp.base_url));
    assert_eq!(claims["oid"], sp["id"]);
    assert_eq!(claims["roles"], json!(["Orders.Read"]));
}

#[tokio::test]
async fn resources_that_ask_for_v1_get_v1_tokens() {
    let github = FakeIssuer::start("").await;
    let wisp = spawn_trusting(&[&github]).await;
    let admin = wisp.admin().await;
    let tenant = wisp.tenant_id();
    let (client, api) = app_trusting(&admin, &github.issuer, MAIN).await;
    let api_object = admin.get(&format!("/v1.0/applications?$filter=appId eq '{api}'")).await.body["value"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin.patch(&format!("/v1.0/applications/{api_object}"), json!({"api": {"requestedAccessTokenVersion": 1}})).await;
    let (status, body) =
        wisp.token_with_assertion(&tenant, &client, &github.mint(github_claims(MAIN)), "api://orders/.default").await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.x5t, header.kid, "v1 tokens carry x5t");
    let claims = crate::token::verify_with_jwks(&wisp, &tenant, token, "api://orders").await;
    assert_eq!(claims["ver"], "1.0");
    assert_eq!(claims["appid"], client.as_str());
    assert_eq!(claims["appidacr"], "2");
    assert_eq!(claims["iss"], format!("{}/{tenant}/", wisp.base_url));
    // The v1 discovery document names that issuer.
    let v1: Value = wisp.get(&format!("/{tenant}/.well-known/openid-configuration")).await.json().await.unwrap();
    assert_eq!(v1["issuer"], format!("{}/{tenant}/", wisp.base_url));
}

/// Keeps `TestServer` in scope for helpers used by other modules.
#[allow(dead_code)]
fn _uses(_: &TestServer) {}

#[tokio::test]
async fn one_expression_credential_replaces_a_dozen_exact_ones() {
    let github = FakeIssuer::start("").await;
    let cluster = FakeIssuer::start("/cluster/").await;
    let wisp = spawn_trusting(&[&github, &cluster]).await;
    let admin = wisp.admin().await;
    let tenant = wisp.tenant_id();
    let app = admin.post("/v1.0/applications", json!({"displayName": "deployer"})).await.body;
    let client = app["appId"].as_str().unwrap().to_string();
    let fics = format!("/v1.0/applications/{}/federatedIdentityCredentials", app["id"].as_str().unwrap());
    let expression = "claims['sub'] matches 'repo:acme/*:environment:prod*' and claims['job_workflow_ref'] matches 'acme/workflows/.github/workflows/deploy.yml@*'";
    let reply = admin.post(&fics, json!({"name": "prod", "issuer": github.issuer, "claimsMatchingExpression": {"value": expression, "languageVersion": 1}})).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = admin
        .post(&fics, json!({"name": "k8s", "issuer": cluster.issuer, "claimsMatchingExpression": {
            "value": "claims['kubernetes.io']['namespace'] in ['payments', 'orders'] and not claims['sub'] matches '*:default'",
            "languageVersion": 2}}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);

    for repo_env in ["repo:acme/app:environment:prod", "repo:acme/billing:environment:prod-eu"] {
        let (status, body) = wisp
            .token_with_assertion(&tenant, &client, &github.mint(github_claims(repo_env)), "api://wisp-admin/.default")
            .await;
        assert_eq!(status, 200, "{repo_env}: {body}");
    }
    let (status, body) = wisp
        .token_with_assertion(
            &tenant,
            &client,
            &github.mint(github_claims("repo:acme/app:environment:staging")),
            "api://wisp-admin/.default",
        )
        .await;
    assert_eq!((status, code(&body)), (401, 700213));
    let mut other_workflow = github_claims("repo:acme/app:environment:prod");
    other_workflow["job_workflow_ref"] = json!("evil/workflows/.github/workflows/deploy.yml@refs/heads/main");
    assert_eq!(
        code(
            &wisp
                .token_with_assertion(&tenant, &client, &github.mint(other_workflow), "api://wisp-admin/.default")
                .await
                .1
        ),
        700213
    );

    let (status, body) = wisp
        .token_with_assertion(
            &tenant,
            &client,
            &cluster.mint(kubernetes_claims("payments", "api")),
            "api://wisp-admin/.default",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = wisp
        .token_with_assertion(
            &tenant,
            &client,
            &cluster.mint(kubernetes_claims("payments", "default")),
            "api://wisp-admin/.default",
        )
        .await;
    assert_eq!(status, 401, "the default service account is excluded");
    let (status, _) = wisp
        .token_with_assertion(
            &tenant,
            &client,
            &cluster.mint(kubernetes_claims("kube-system", "api")),
            "api://wisp-admin/.default",
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn explain_shows_each_check_and_the_near_misses() {
    let github = FakeIssuer::start("").await;
    let wisp = spawn_trusting(&[&github]).await;
    let admin = wisp.admin().await;
    let app = admin.post("/v1.0/applications", json!({"displayName": "explained"})).await.body;
    let fics = format!("/v1.0/applications/{}/federatedIdentityCredentials", app["id"].as_str().unwrap());
    let slash =
        admin.post(&fics, json!({"name": "slash", "issuer": format!("{}/", github.issuer), "subject": MAIN})).await;
    let warnings = slash.body["warnings"].to_string();
    assert!(
        warnings.contains("discovery document names the issuer"),
        "a trailing slash the issuer does not use: {}",
        slash.body
    );
    let exact = admin
        .post(&fics, json!({"name": "case", "issuer": github.issuer, "subject": "repo:ACME/app:ref:refs/heads/main"}))
        .await;
    assert!(!exact.body["warnings"].to_string().contains("discovery"), "{}", exact.body);
    admin
        .post(&fics, json!({"name": "shape", "issuer": github.issuer, "subject": "repo:acme/app:environment:prod"}))
        .await;
    let expr = admin
        .post(&fics, json!({"name": "expr", "issuer": github.issuer, "claimsMatchingExpression": {
            "value": "claims['sub'] matches 'repo:acme/*' and claims['ref'] eq 'refs/heads/dev'", "languageVersion": 1}}))
        .await;
    assert_eq!(expr.status, 201, "{}", expr.body);

    let assertion = github.mint(github_claims(MAIN));
    let reply = admin.post(&format!("{fics}/evaluate"), json!({"assertion": assertion, "verifySignature": true})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = &reply.body;
    assert_eq!(answer["verified"], true);
    assert_eq!(answer["matchedCredential"], Value::Null);
    let hint = |name: &str, check: &str| -> String {
        let credential =
            answer["credentials"].as_array().unwrap().iter().find(|c| c["credentialName"] == name).unwrap();
        let check = credential["checks"].as_array().unwrap().iter().find(|c| c["check"] == check).unwrap();
        assert_eq!(check["passed"], false, "{name}/{check}");
        check["hint"].as_str().unwrap_or_default().to_string()
    };
    assert!(hint("slash", "issuer").contains("trailing slash"));
    assert!(hint("case", "subject").contains("case"));
    assert!(hint("shape", "subject").contains("GitHub subject of another shape"));
    let expr = answer["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["credentialName"] == "expr")
        .unwrap_or_else(|| panic!("{answer}"));
    let comparisons: Vec<(&str, bool)> = expr["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"] == "comparison")
        .map(|c| (c["expected"].as_str().unwrap(), c["passed"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        comparisons,
        vec![("claims['sub'] matches 'repo:acme/*'", true), ("claims['ref'] eq 'refs/heads/dev'", false)]
    );

    // Bare claims: a forged token is evaluated but clearly marked unverified.
    let forged = crate::fake_issuer::TestKey::rsa("k1").sign(&{
        let mut claims = github_claims("repo:acme/app:environment:prod");
        claims["iss"] = json!(github.issuer);
        claims
    });
    let bare =
        admin.post(&format!("{fics}/evaluate"), json!({"assertion": forged, "verifySignature": false})).await.body;
    assert_eq!(bare["verified"], false);
    assert!(bare["note"].as_str().unwrap().contains("NOT checked"));
    assert_eq!(bare["matchedCredential"], "shape");
    let checked = admin.post(&format!("{fics}/evaluate"), json!({"assertion": forged})).await.body;
    assert_eq!(checked["verified"], false);
    assert_eq!(checked["checks"][0]["check"], "signature");
    assert_eq!(checked["checks"][0]["passed"], false);
}

#[tokio::test]
async fn rfc_8693_token_exchange_uses_the_same_credentials() {
    let github = FakeIssuer::start("").await;
    let wisp = spawn_trusting(&[&github]).await;
    let admin = wisp.admin().await;
    let tenant = wisp.tenant_id();
    let (client, api) = app_trusting(&admin, &github.issuer, MAIN).await;
    let exchange = |subject_token: String, target: (&'static str, &'static str), token_type: Option<&'static str>| {
        let (wisp, tenant, client) = (&wisp, tenant.clone(), client.clone());
        async move {
            let mut form = vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange".to_string()),
                ("client_id", client),
                ("subject_token", subject_token),
                (target.0, target.1.to_string()),
            ];
            if let Some(kind) = token_type {
                form.push(("subject_token_type", kind.to_string()));
            }
            let response =
                wisp.client.post(wisp.url(&format!("/{tenant}/oauth2/v2.0/token"))).form(&form).send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let jwt = Some("urn:ietf:params:oauth:token-type:jwt");
    let (status, body) = exchange(github.mint(github_claims(MAIN)), ("scope", "api://orders"), jwt).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token");
    assert_eq!(body["token_type"], "Bearer");
    let claims = crate::token::verify_with_jwks(&wisp, &tenant, body["access_token"].as_str().unwrap(), &api).await;
    assert_eq!(claims["roles"], json!(["Orders.Read"]));
    // resource= and audience= name the target too.
    assert_eq!(exchange(github.mint(github_claims(MAIN)), ("resource", "api://orders"), jwt).await.0, 200);
    assert_eq!(exchange(github.mint(github_claims(MAIN)), ("audience", "api://orders"), jwt).await.0, 200);

    // RFC 8693 error codes.
    let (_, body) =
        exchange(github.mint(github_claims("repo:acme/app:ref:refs/heads/dev")), ("scope", "api://orders"), jwt).await;
    assert_eq!(body["error"], "invalid_grant", "{body}");
    let (_, body) = exchange(github.mint(github_claims(MAIN)), ("scope", "api://nowhere"), jwt).await;
    assert_eq!(body["error"], "invalid_target", "{body}");
    let (_, body) = exchange(github.mint(github_claims(MAIN)), ("scope", "api://orders"), None).await;
    assert_eq!(body["error"], "invalid_request", "{body}");
    let (_, body) = exchange(
        github.mint(github_claims(MAIN)),
        ("scope", "api://orders"),
        Some("urn:ietf:params:oauth:token-type:saml2"),
    )
    .await;
    assert_eq!(body["error"], "invalid_request", "{body}");
}

#[tokio::test]
async fn uploaded_keys_let_an_offline_issuer_federate() {
    let wisp = spawn_trusting(&[]).await;
    let admin = wisp.admin().await;
    let tenant = wisp.tenant_id();
    // An air-gapped cluster: its issuer URL is not reachable from anywhere.
    let issuer = "https://oidc.cluster.invalid/cluster-7/";
    let key = TestKey::rsa("sa-key-1");
    let mint = |namespace: &str| {
        let mut claims = kubernetes_claims(namespace, "api");
        claims["iss"] = json!(issuer);
        key.sign(&claims)
    };
    let (client, _) = app_trusting(&admin, issuer, "system:serviceaccount:payments:api").await;

    // Without uploaded keys the issuer cannot be reached.
    let (status, body) = wisp.token_with_assertion(&tenant, &client, &mint("payments"), "api://orders/.default").await;
    assert_eq!((status, code(&body)), (401, 50166), "{body}");

    // Refused uploads: private key material, a symmetric key, nothing.
    let mut private = key.jwk.clone();
    private["d"] = json!("c2VjcmV0");
    for jwks in [
        json!({"keys": [private]}),
        json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
        json!({"keys": []}),
        json!({"nokeys": 1}),
    ] {
        let reply = admin.post("/v1.0/federatedIssuers", json!({"issuer": issuer, "jwks": jwks})).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
    }
    let uploaded = admin.post("/v1.0/federatedIssuers", json!({"issuer": issuer, "jwks": {"keys": [key.jwk]}})).await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    assert_eq!(
        admin.post("/v1.0/federatedIssuers", json!({"issuer": issuer, "jwks": {"keys": [key.jwk]}})).await.status,
        400,
        "once per issuer"
    );
    assert_eq!(admin.get("/v1.0/federatedIssuers").await.body["value"].as_array().unwrap().len(), 1);

    let (status, body) = wisp.token_with_assertion(&tenant, &client, &mint("payments"), "api://orders/.default").await;
    assert_eq!(status, 200, "{body}");
    // The keys still decide: another key is refused.
    let mut claims = kubernetes_claims("payments", "api");
    claims["iss"] = json!(issuer);
    let rogue = TestKey::rsa("sa-key-1").sign(&claims);
    assert_eq!(code(&wisp.token_with_assertion(&tenant, &client, &rogue, "api://orders/.default").await.1), 700027);

    // Another tenant's upload does not count here, and deleting ours refuses again.
    let id = uploaded.body["id"].as_str().unwrap();
    assert_eq!(admin.delete(&format!("/v1.0/federatedIssuers/{id}")).await.status, 204);
    let (status, body) = wisp.token_with_assertion(&tenant, &client, &mint("payments"), "api://orders/.default").await;
    assert_eq!((status, code(&body)), (401, 50166));
}

/// The token path caches the directory; every change must still count for the
/// very next request on the process that made it, and promptly on the others.
#[tokio::test]
async fn directory_changes_count_at_once_here_and_promptly_on_other_replicas() {
    for db in crate::support::test_databases().await {
        let github = FakeIssuer::start("").await;
        let master = wisp::crypto::MasterKey::generate_base64();
        let here = crate::support::spawn_replica(&db, &master, &[&github]).await;
        let there = crate::support::spawn_replica(&db, &master, &[&github]).await;
        let tenant = here.tenant_id();
        let admin = here.admin().await;
        let (client, api) = app_trusting(&admin, &github.issuer, MAIN).await;
        let exchange = |wisp: &crate::support::TestServer, subject: &str| {
            let assertion = github.mint(github_claims(subject));
            let (tenant, client) = (tenant.clone(), client.clone());
            let wisp_url = wisp.base_url.clone();
            let http = wisp.client.clone();
            async move {
                let response = http
                    .post(format!("{wisp_url}/{tenant}/oauth2/v2.0/token"))
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", client.as_str()),
                        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                        ("client_assertion", assertion.as_str()),
                        ("scope", "api://orders/.default"),
                    ])
                    .send()
                    .await
                    .unwrap();
                (response.status().as_u16(), response.json::<Value>().await.unwrap())
            }
        };
        // Warm both replicas' caches.
        for wisp in [&here, &there] {
            for _ in 0..3 {
                assert_eq!(exchange(wisp, MAIN).await.0, 200, "{}", db.backend);
            }
        }

        // Change the credential's subject.
        let listed = admin.get(&format!("/v1.0/applications?$filter=appId eq '{client}'")).await.body;
        let fics =
            format!("/v1.0/applications/{}/federatedIdentityCredentials", listed["value"][0]["id"].as_str().unwrap());
        let fic_id = admin.get(&fics).await.body["value"][0]["id"].as_str().unwrap().to_string();
        let staging = "repo:acme/app:environment:staging";
        let patched = admin.patch(&format!("{fics}/{fic_id}"), json!({"subject": staging})).await;
        assert_eq!(patched.status, 204, "{}", patched.body);
        // Here: the very next request.
        assert_eq!(exchange(&here, MAIN).await.0, 401, "{}: the old subject is refused at once", db.backend);
        assert_eq!(exchange(&here, staging).await.0, 200, "{}", db.backend);
        // There: as soon as the change reaches it.
        let started = std::time::Instant::now();
        while exchange(&there, MAIN).await.0 != 401 {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(3),
                "{}: replica never saw the change",
                db.backend
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        eprintln!("{}: the other replica saw the change after {:?}", db.backend, started.elapsed());
        assert_eq!(exchange(&there, staging).await.0, 200);

        // Removing the role assignment empties `roles` in the next token here.
        let api_sp =
            admin.get(&format!("/v1.0/servicePrincipals?$filter=appId eq '{api}'")).await.body["value"][0]["id"]
                .as_str()
                .unwrap()
                .to_string();
        let assignments = admin.get(&format!("/v1.0/servicePrincipals/{api_sp}/appRoleAssignedTo")).await.body;
        let assignment = assignments["value"][0]["id"].as_str().unwrap().to_string();
        let (_, before) = exchange(&here, staging).await;
        assert!(before["access_token"].is_string());
        let removed = admin.delete(&format!("/v1.0/servicePrincipals/{api_sp}/appRoleAssignedTo/{assignment}")).await;
        assert_eq!(removed.status, 204, "{}", removed.body);
        let (status, after) = exchange(&here, staging).await;
        assert_eq!(status, 200);
        let claims =
            crate::token::verify_with_jwks(&here, &tenant, after["access_token"].as_str().unwrap(), &api).await;
        assert!(claims.get("roles").is_none_or(|r| r == &json!([])), "{}: {claims}", db.backend);

        // Deleting the credential refuses the next request here.
        assert_eq!(admin.delete(&format!("{fics}/{fic_id}")).await.status, 204);
        assert_eq!(exchange(&here, staging).await.0, 401, "{}", db.backend);
        here.server.shutdown().await.unwrap();
        there.server.shutdown().await.unwrap();
    }
}
