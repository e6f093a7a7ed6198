//! Signing-key rotation with several processes sharing one database: exactly one
//! rotates, every process converges on the new key, a key is published before it
//! signs, and a retired key stays published until its tokens have expired.

use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;
use wisp::crypto::MasterKey;
use wisp::directory::Tenant;
use wisp::signing::rotation::{CLOCK_SKEW_SECS, MAX_TOKEN_LIFETIME_SECS};
use wisp::signing::{KeyRing, RotationPolicy};
use wisp::store::{NewTenant, Store};

use crate::support::test_databases;

const DAY: i64 = 86400;
const T0: i64 = 1_800_000_000;

fn kids(jwks: &[u8]) -> Vec<String> {
    let value: Value = serde_json::from_slice(jwks).unwrap();
    value["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn two_processes_rotate_once_and_converge() {
    let master = MasterKey::generate_base64();
    for db in test_databases().await {
        // Two "processes": separate pools and key rings, one database, one master key.
        let ring = |store: Store| {
            KeyRing::new(
                store,
                Arc::new(MasterKey::from_base64(&master).unwrap()),
                "https://sts.test".into(),
                RotationPolicy::every(30 * DAY),
            )
        };
        let store_a = Store::connect(&db.url).await.unwrap();
        store_a.migrate().await.unwrap();
        let store_b = Store::connect(&db.url).await.unwrap();
        let (a, b) = (ring(store_a.clone()), ring(store_b));

        let tenant = Tenant { id: Uuid::new_v4(), display_name: "t".into(), created_at: T0 };
        let keys = a.initial_keys(&tenant.id, T0).unwrap();
        store_a.create_tenant(&NewTenant { tenant: &tenant, keys: &keys, admin: None }, None).await.unwrap();

        let before = a.tenant(&tenant.id).await.unwrap().unwrap();
        assert_eq!(b.tenant(&tenant.id).await.unwrap().unwrap().current.kid(), before.current.kid());
        let published_before = kids(&before.jwks);
        assert_eq!(published_before.len(), 2);
        let next_kid = published_before[1].clone();
        assert_ne!(next_kid, before.current.kid(), "{}: the next key is published but does not sign", db.backend);

        // Nothing is due a day early.
        assert_eq!(a.maintain(T0 + 29 * DAY).await.unwrap(), 0);

        // Both processes notice the due rotation at the same moment; one wins.
        let rotate_at = T0 + 30 * DAY;
        let (ra, rb) = tokio::join!(a.maintain(rotate_at), b.maintain(rotate_at));
        assert_eq!(ra.unwrap() + rb.unwrap(), 1, "{}: exactly one rotation", db.backend);
        a.refresh().await.unwrap();
        b.refresh().await.unwrap();
        let after_a = a.tenant(&tenant.id).await.unwrap().unwrap();
        let after_b = b.tenant(&tenant.id).await.unwrap().unwrap();
        assert_eq!(after_a.current.kid(), next_kid, "{}: the published next key now signs", db.backend);
        assert_eq!(after_b.current.kid(), next_kid, "{}: the other process converged", db.backend);
        let published = kids(&after_a.jwks);
        assert_eq!(published.len(), 3, "{}: current, new next, previous", db.backend);
        assert!(published.contains(&before.current.kid().to_string()), "the previous key stays published");

        // The previous key leaves only after every token it signed has expired.
        let retire_at = rotate_at + MAX_TOKEN_LIFETIME_SECS + CLOCK_SKEW_SECS;
        assert_eq!(a.maintain(retire_at - 1).await.unwrap(), 0);
        assert_eq!(a.maintain(retire_at).await.unwrap(), 1);
        b.refresh().await.unwrap();
        let final_b = kids(&b.tenant(&tenant.id).await.unwrap().unwrap().jwks);
        assert_eq!(final_b.len(), 2, "{}", db.backend);
        assert!(!final_b.contains(&before.current.kid().to_string()), "{}: retired key removed", db.backend);
    }
}

#[tokio::test]
async fn keys_sealed_under_another_master_key_do_not_load() {
    for db in test_databases().await {
        let store = Store::connect(&db.url).await.unwrap();
        store.migrate().await.unwrap();
        let ring = |key: String| {
            KeyRing::new(
                store.clone(),
                Arc::new(MasterKey::from_base64(&key).unwrap()),
                "https://sts.test".into(),
                RotationPolicy::every(30 * DAY),
            )
        };
        let right = ring(MasterKey::generate_base64());
        let wrong = ring(MasterKey::generate_base64());
        let tenant = Tenant { id: Uuid::new_v4(), display_name: "t".into(), created_at: T0 };
        let keys = right.initial_keys(&tenant.id, T0).unwrap();
        store.create_tenant(&NewTenant { tenant: &tenant, keys: &keys, admin: None }, None).await.unwrap();
        assert!(right.tenant(&tenant.id).await.unwrap().is_some());
        let err = wrong.tenant(&tenant.id).await.unwrap_err().to_string();
        assert!(err.contains("cannot be opened"), "{}: {err}", db.backend);
    }
}

#[tokio::test]
async fn a_tenant_can_sign_its_tokens_with_es256_or_eddsa() {
    let wisp = crate::support::spawn_wisp().await;
    let admin = wisp.admin().await;
    let tenant = wisp.tenant_id();
    let (client_id, secret) = wisp.admin_credentials();
    let policy = admin.get("/v1.0/policies/tokenSigning").await;
    assert_eq!(policy.body["algorithm"], "RS256", "{}", policy.body);

    for bad in ["HS256", "none", "es256", ""] {
        let refused = admin.patch("/v1.0/policies/tokenSigning", serde_json::json!({"algorithm": bad})).await;
        assert_eq!(refused.status, 400, "{bad}: {}", refused.body);
    }

    let mut kids_seen = Vec::new();
    for (name, alg) in [
        ("ES256", jsonwebtoken::Algorithm::ES256),
        ("EdDSA", jsonwebtoken::Algorithm::EdDSA),
        ("RS256", jsonwebtoken::Algorithm::RS256),
    ] {
        let changed = admin.patch("/v1.0/policies/tokenSigning", serde_json::json!({"algorithm": name})).await;
        assert_eq!(changed.status, 204, "{name}: {}", changed.body);
        // The very next token is signed with the new algorithm …
        let response = wisp.token_with_secret(&tenant, &client_id, &secret, "api://wisp-admin/.default").await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap();
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.alg, alg, "{name}");
        let kid = header.kid.unwrap();
        assert!(!kids_seen.contains(&kid), "{name} signs with a new key");
        kids_seen.push(kid.clone());
        // … by a key the JWKS publishes, which verifies it …
        let jwks: Value = wisp.get(&format!("/{tenant}/discovery/v2.0/keys")).await.json().await.unwrap();
        let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid.as_str()).expect("published");
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.validate_aud = false; // the admin API's appId; the signature is what counts here
        validation.set_issuer(&[format!("{}/{tenant}/v2.0", wisp.base_url)]);
        jsonwebtoken::decode::<Value>(token, &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(), &validation)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // … and wisp accepts it back (the admin API verifies its own tokens).
        let session = crate::support::Admin { token: token.to_string(), ..admin.clone() };
        assert_eq!(session.get("/v1.0/policies/tokenSigning").await.body["algorithm"], name);
        // Tokens signed before the change keep verifying: the old keys stay published.
        assert_eq!(admin.get("/v1.0/applications").await.status, 200, "{name}");
        let published = kids(&serde_json::to_vec(&jwks).unwrap());
        assert!(kids_seen.iter().all(|k| published.contains(k)), "{name}: {published:?}");
    }
    // Setting the same algorithm again changes nothing.
    let before = admin.get("/v1.0/policies/tokenSigning").await.body["signingKeyId"].clone();
    assert_eq!(admin.patch("/v1.0/policies/tokenSigning", serde_json::json!({"algorithm": "RS256"})).await.status, 204);
    assert_eq!(admin.get("/v1.0/policies/tokenSigning").await.body["signingKeyId"], before);
}

/// An algorithm switch signs at once with a key nobody published ahead; another
/// replica must accept tokens from that key at once too (it reloads the
/// tenant's keys on an unknown `kid`).
#[tokio::test]
async fn replicas_accept_tokens_signed_right_after_an_algorithm_switch_elsewhere() {
    for db in test_databases().await {
        let master = MasterKey::generate_base64();
        let here = crate::support::spawn_replica(&db, &master, &[]).await;
        // Replicas behind one name share the public URL (the tokens' issuer).
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = crate::support::test_config(data_dir.path(), Some(db.url.clone()));
        config.master_key = Some(master.clone());
        config.public_url = here.base_url.clone();
        config.public_url_explicit = true;
        let mut there = crate::support::spawn_with(config, data_dir).await;
        there.base_url = format!("https://localhost:{}", there.server.local_addr.port());
        let tenant = here.tenant_id();
        let (client_id, secret) = here.admin_credentials();
        let admin_there = there.admin_as(&tenant, &client_id, &secret).await;
        assert_eq!(admin_there.get("/v1.0/applications").await.status, 200, "{}: keys loaded there", db.backend);

        let admin_here = here.admin().await;
        let switched = admin_here.patch("/v1.0/policies/tokenSigning", serde_json::json!({"algorithm": "EdDSA"})).await;
        assert_eq!(switched.status, 204);
        let fresh = here.admin().await;
        assert_eq!(jsonwebtoken::decode_header(&fresh.token).unwrap().alg, jsonwebtoken::Algorithm::EdDSA);
        let presented_there = crate::support::Admin { token: fresh.token.clone(), ..admin_there.clone() };
        let reply = presented_there.get("/v1.0/applications").await;
        assert_eq!(reply.status, 200, "{}: {}", db.backend, reply.body);
        here.server.shutdown().await.unwrap();
        there.server.shutdown().await.unwrap();
    }
}
