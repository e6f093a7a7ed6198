//! The token endpoint with client secrets: Entra-shaped tokens that verify with
//! the JWKS alone, and every refusal with its AADSTS code.

use serde_json::Value;

use crate::support::{TestServer, spawn_wisp};

const ADMIN_SCOPE: &str = "api://wisp-admin/.default";

async fn form(wisp: &TestServer, path: &str, fields: &[(&str, &str)]) -> (u16, Value) {
    let response = wisp.client.post(wisp.url(path)).form(fields).send().await.unwrap();
    let status = response.status().as_u16();
    assert_eq!(response.headers()["cache-control"], "no-store");
    (status, response.json().await.unwrap())
}

/// Verifies `token` with the tenant's published JWKS and returns its claims.
pub async fn verify_with_jwks(wisp: &TestServer, tenant: &str, token: &str, audience: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet =
        wisp.get(&format!("/{tenant}/discovery/v2.0/keys")).await.json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("kid published");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience]);
    jsonwebtoken::decode::<Value>(token, &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("token verifies with the JWKS")
        .claims
}

#[tokio::test]
async fn a_client_secret_gets_an_entra_shaped_v2_token() {
    let wisp = spawn_wisp().await;
    let tenant = wisp.tenant_id();
    let (client_id, secret) = wisp.admin_credentials();
    let (status, body) = form(
        &wisp,
        &format!("/{tenant}/oauth2/v2.0/token"),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("scope", ADMIN_SCOPE),
            ("client_info", "1"),
            ("x-client-SKU", "MSAL.Python"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].is_i64() && body["ext_expires_in"].is_i64());
    let admin_api = "00000003-7769-7370-0000-000000000000";
    let claims = verify_with_jwks(&wisp, &tenant, body["access_token"].as_str().unwrap(), admin_api).await;
    assert_eq!(claims["iss"], format!("{}/{tenant}/v2.0", wisp.base_url));
    assert_eq!(claims["tid"], tenant.as_str());
    assert_eq!(claims["azp"], client_id.as_str());
    assert_eq!(claims["azpacr"], "1");
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(claims["oid"], claims["sub"]);
    assert_eq!(claims["roles"], serde_json::json!(["Directory.ReadWrite.All"]));
    assert!(claims.get("appid").is_none());
    let header = jsonwebtoken::decode_header(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert!(header.x5t.is_none(), "v2 tokens carry kid only");
}

#[tokio::test]
async fn basic_auth_and_the_v1_endpoint_work() {
    let wisp = spawn_wisp().await;
    let tenant = wisp.tenant_id();
    let (client_id, secret) = wisp.admin_credentials();
    let response = wisp
        .client
        .post(wisp.url(&format!("/{tenant}/oauth2/token?api-version=1.0")))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "client_credentials"), ("resource", "api://wisp-admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    // v1 answers with strings and names the resource.
    assert!(body["expires_in"].is_string() && body["expires_on"].is_string());
    assert_eq!(body["resource"], "api://wisp-admin");
}

/// Form fields, expected status, OAuth error and AADSTS code.
type RefusalCase<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str, u64);

#[tokio::test]
async fn every_refusal_has_its_entra_code() {
    let wisp = spawn_wisp().await;
    let tenant = wisp.tenant_id();
    let (client_id, secret) = wisp.admin_credentials();
    let path = format!("/{tenant}/oauth2/v2.0/token");
    let unknown = uuid::Uuid::new_v4().to_string();
    let cases: Vec<RefusalCase> = vec![
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("client_secret", "wrong"),
                ("scope", ADMIN_SCOPE),
            ],
            401,
            "invalid_client",
            7000215,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &unknown),
                ("client_secret", &secret),
                ("scope", ADMIN_SCOPE),
            ],
            400,
            "unauthorized_client",
            700016,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "not-a-guid"),
                ("client_secret", &secret),
                ("scope", ADMIN_SCOPE),
            ],
            400,
            "unauthorized_client",
            700016,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("scope", "api://wisp-admin"),
            ],
            400,
            "invalid_scope",
            1002012,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("scope", "api://wisp-admin/.default api://other/.default"),
            ],
            400,
            "invalid_scope",
            70011,
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("scope", ADMIN_SCOPE),
            ],
            400,
            "unsupported_grant_type",
            70003,
        ),
        (
            vec![("grant_type", "client_credentials"), ("client_secret", &secret), ("scope", ADMIN_SCOPE)],
            400,
            "invalid_request",
            900144,
        ),
        (
            vec![("client_id", &client_id), ("client_secret", &secret), ("scope", ADMIN_SCOPE)],
            400,
            "invalid_request",
            900144,
        ),
        (
            vec![("grant_type", "client_credentials"), ("client_id", &client_id), ("scope", ADMIN_SCOPE)],
            401,
            "invalid_client",
            7000218,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("scope", "api://nothing-here/.default"),
            ],
            400,
            "invalid_resource",
            500011,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("scope", ADMIN_SCOPE),
                ("scope", ADMIN_SCOPE),
            ],
            400,
            "invalid_request",
            90100,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("client_assertion", "eyJ.x.y"),
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("scope", ADMIN_SCOPE),
            ],
            400,
            "invalid_request",
            90100,
        ),
    ];
    for (fields, status, error, code) in cases {
        let (got_status, body) = form(&wisp, &path, &fields).await;
        assert_eq!((got_status, body["error"].as_str().unwrap()), (status, error), "{fields:?}: {body}");
        assert_eq!(body["error_codes"][0], code, "{fields:?}: {body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(description.starts_with(&format!("AADSTS{code}: ")), "{description}");
        assert!(!description.contains(&secret), "the secret is never echoed");
    }

    // Unknown tenants, and a body that is not a form.
    let (status, body) =
        form(&wisp, &format!("/{}/oauth2/v2.0/token", uuid::Uuid::new_v4()), &[("grant_type", "client_credentials")])
            .await;
    assert_eq!((status, body["error_codes"][0].as_u64()), (400, Some(90002)));
    let response = wisp
        .client
        .post(wisp.url(&path))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let oversized = wisp
        .client
        .post(wisp.url(&path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=client_credentials&client_assertion={}", "a".repeat(wisp::http::MAX_BODY_BYTES)))
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), 413);
}

#[tokio::test]
async fn the_access_token_lifetime_is_configurable() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = crate::support::test_config(data_dir.path(), None);
    config.access_token_lifetime_secs = 600;
    let wisp = crate::support::spawn_with(config, data_dir).await;
    let (client_id, secret) = wisp.admin_credentials();
    let body: Value =
        wisp.token_with_secret(&wisp.tenant_id(), &client_id, &secret, ADMIN_SCOPE).await.json().await.unwrap();
    assert_eq!(body["expires_in"], 600);
    let claims = verify_with_jwks(
        &wisp,
        &wisp.tenant_id(),
        body["access_token"].as_str().unwrap(),
        "00000003-7769-7370-0000-000000000000",
    )
    .await;
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 600);
}
