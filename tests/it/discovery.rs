//! Discovery documents and JWKS in Entra's shape, over HTTPS to a real server.

use serde_json::Value;

use crate::support::spawn_wisp;

#[tokio::test]
async fn discovery_document_has_entra_shape_and_points_at_this_tenant() {
    let wisp = spawn_wisp().await;
    let tenant = wisp.tenant_id();
    let response = wisp.get(&format!("/{tenant}/v2.0/.well-known/openid-configuration")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "max-age=86400, private");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let doc: Value = response.json().await.unwrap();
    let base = format!("{}/{tenant}", wisp.base_url);
    assert_eq!(doc["issuer"], format!("{base}/v2.0"));
    assert_eq!(doc["token_endpoint"], format!("{base}/oauth2/v2.0/token"));
    assert_eq!(doc["jwks_uri"], format!("{base}/discovery/v2.0/keys"));
    // MSAL Python indexes authorization_endpoint; msal-node also needs issuer and jwks_uri.
    assert_eq!(doc["authorization_endpoint"], format!("{base}/oauth2/v2.0/authorize"));
    assert!(doc["token_endpoint"].as_str().unwrap().starts_with("https://"));
    assert_eq!(doc["id_token_signing_alg_values_supported"], serde_json::json!(["RS256"]));
    let methods = doc["token_endpoint_auth_methods_supported"].as_array().unwrap();
    for method in ["client_secret_post", "private_key_jwt", "client_secret_basic"] {
        assert!(methods.iter().any(|m| m == method), "{method} advertised");
    }
}

#[tokio::test]
async fn jwks_has_entra_shape_and_verifies_tokens_signed_by_the_current_key() {
    let wisp = spawn_wisp().await;
    let tenant = wisp.tenant_id();
    let response = wisp.get(&format!("/{tenant}/discovery/v2.0/keys")).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["cache-control"].to_str().unwrap().starts_with("max-age="));
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "the current key and the next key are published");
    for key in keys {
        for member in ["kty", "use", "kid", "x5t", "n", "e", "x5c", "issuer"] {
            assert!(key.get(member).is_some(), "JWK member {member} present: {key}");
        }
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kid"], key["x5t"]);
        assert_eq!(key["issuer"], format!("{}/{tenant}/v2.0", wisp.base_url));
        // kid is the base64url SHA-1 thumbprint of the x5c certificate.
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD.decode(key["x5c"][0].as_str().unwrap()).unwrap();
        assert_eq!(key["kid"], wisp::crypto::x5t_sha1(&der));
    }

    // A token signed by the tenant's current key verifies with the published JWKS alone.
    let tenant_id = tenant.parse().unwrap();
    let signing = wisp.server.app.keys.tenant(&tenant_id).await.unwrap().unwrap();
    let token = signing.current.sign_jwt(&serde_json::json!({"aud": "api://x", "exp": 4_000_000_000u64}), false);
    let header = jsonwebtoken::decode_header(&token).unwrap();
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let jwk = set.find(header.kid.as_deref().unwrap()).expect("kid is published");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["api://x"]);
    let decoded =
        jsonwebtoken::decode::<Value>(&token, &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(), &validation);
    assert!(decoded.is_ok(), "{decoded:?}");
    assert_eq!(keys[0]["kid"], header.kid.unwrap(), "the signing key is listed first");
}

#[tokio::test]
async fn unknown_or_malformed_tenants_get_the_entra_error_body() {
    let wisp = spawn_wisp().await;
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/{unknown}/v2.0/.well-known/openid-configuration"),
        format!("/{unknown}/discovery/v2.0/keys"),
        "/contoso.example/v2.0/.well-known/openid-configuration".to_string(),
        format!("/{}/discovery/v2.0/keys", "x".repeat(500)),
    ] {
        let response = wisp.get(&path).await;
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(body["error_codes"], serde_json::json!([90002]));
        let description = body["error_description"].as_str().unwrap();
        assert!(description.starts_with("AADSTS90002: Tenant '"), "{description}");
        assert!(description.len() < 600, "echoed input is bounded");
        for field in ["timestamp", "trace_id", "correlation_id"] {
            assert!(body[field].is_string(), "{field} present");
        }
        let timestamp = body["timestamp"].as_str().unwrap();
        assert_eq!(timestamp.len(), "2026-01-01 00:00:00Z".len(), "{timestamp}");
        assert!(description.contains(body["correlation_id"].as_str().unwrap()));
    }
}

#[tokio::test]
async fn a_client_request_id_is_echoed_as_the_correlation_id() {
    let wisp = spawn_wisp().await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let response = wisp
        .client
        .get(wisp.url(&format!("/{}/discovery/v2.0/keys", uuid::Uuid::new_v4())))
        .header("client-request-id", &request_id)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["client-request-id"], request_id.as_str());
    assert!(response.headers().contains_key("x-ms-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["correlation_id"], request_id.as_str());

    // A non-GUID value is not echoed (it would be an injection vector).
    let response = wisp.client.get(wisp.url("/healthz")).header("client-request-id", "<script>").send().await.unwrap();
    assert!(!response.headers().contains_key("client-request-id"));
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let wisp = spawn_wisp().await;
    let health = wisp.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let ready = wisp.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    wisp.get(&format!("/{}/discovery/v2.0/keys", wisp.tenant_id())).await;
    let metrics = wisp.get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("wisp_http_requests_total"), "{text}");
    assert!(text.contains("route=\"/{tenant}/discovery/v2.0/keys\""), "{text}");
    assert!(text.contains("wisp_http_request_duration_seconds_bucket"), "{text}");
    assert!(text.contains("wisp_cache_requests_total"), "{text}");
    let unknown = wisp.get("/no/such/path").await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let wisp = spawn_wisp().await;
    wisp.server.app.store.close().await;
    let ready = wisp.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    // Liveness is about the process, not its dependencies.
    assert_eq!(wisp.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn plain_http_is_refused_on_the_tls_port() {
    let wisp = spawn_wisp().await;
    let plain =
        reqwest::Client::new().get(format!("http://127.0.0.1:{}/healthz", wisp.server.local_addr.port())).send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    let wisp = spawn_wisp().await;
    let response =
        wisp.client.post(wisp.url("/healthz")).body(vec![b'a'; wisp::http::MAX_BODY_BYTES + 1]).send().await.unwrap();
    assert_eq!(response.status(), 413);
}
