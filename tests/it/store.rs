//! The store on both backends: SQLite always, PostgreSQL when configured.

use uuid::Uuid;
use wisp::directory::Tenant;
use wisp::store::{KeyChange, NewTenant, Store, StoredSigningKey};

use crate::support::test_databases;

async fn open(url: &str) -> Store {
    let store = Store::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

fn tenant() -> Tenant {
    Tenant { id: Uuid::new_v4(), display_name: "Contoso".into(), created_at: 1_800_000_000 }
}

fn fake_key(tenant: &Tenant, kid: &str, state: &str) -> StoredSigningKey {
    StoredSigningKey {
        kid: kid.into(),
        tenant_id: tenant.id.to_string(),
        algorithm: "RS256".into(),
        state: state.into(),
        certificate: vec![1, 2, 3],
        sealed_private_key: vec![4, 5, 6],
        created_at: tenant.created_at,
        activated_at: (state == "current").then_some(tenant.created_at),
        retire_at: None,
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_tenants_round_trip() {
    for db in test_databases().await {
        let store = open(&db.url).await;
        store.migrate().await.expect("second migrate is a no-op");
        let t = tenant();
        let keys = [fake_key(&t, &format!("k1-{}", t.id), "current"), fake_key(&t, &format!("k2-{}", t.id), "next")];
        store.create_tenant(&NewTenant { tenant: &t, keys: &keys, admin: None }, None).await.unwrap();
        assert_eq!(store.tenant(&t.id).await.unwrap(), Some(t.clone()), "{}", db.backend);
        assert_eq!(store.tenant(&Uuid::new_v4()).await.unwrap(), None);
        let (generation, stored) = store.signing_keys(&t.id.to_string()).await.unwrap().unwrap();
        assert_eq!(generation, 1);
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0].certificate, vec![1, 2, 3], "{}: blobs round-trip", db.backend);
        store.ping().await.unwrap();
    }
}

#[tokio::test]
async fn only_one_of_two_concurrent_bootstraps_wins() {
    for db in test_databases().await {
        let a = open(&db.url).await;
        let b = open(&db.url).await;
        let (ta, tb) = (tenant(), tenant());
        let ka = [fake_key(&ta, "a1", "current")];
        let kb = [fake_key(&tb, "b1", "current")];
        let (na, nb) =
            (NewTenant { tenant: &ta, keys: &ka, admin: None }, NewTenant { tenant: &tb, keys: &kb, admin: None });
        let (ra, rb) = tokio::join!(a.bootstrap(&na), b.bootstrap(&nb));
        let wins = [ra.unwrap(), rb.unwrap()];
        assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{}: exactly one bootstrap", db.backend);
        assert_eq!(a.tenants().await.unwrap().len(), 1, "{}: the loser left nothing behind", db.backend);
        // And later attempts never bootstrap again.
        let tc = tenant();
        assert!(!a.bootstrap(&NewTenant { tenant: &tc, keys: &[], admin: None }).await.unwrap());
    }
}

#[tokio::test]
async fn meta_values_are_first_writer_wins() {
    for db in test_databases().await {
        let store = open(&db.url).await;
        assert_eq!(store.meta_get("x").await.unwrap(), None);
        assert_eq!(store.meta_insert_or_get("x", "first").await.unwrap(), "first");
        assert_eq!(store.meta_insert_or_get("x", "second").await.unwrap(), "first", "{}", db.backend);
        assert_eq!(store.meta_get("x").await.unwrap().as_deref(), Some("first"));
    }
}

#[tokio::test]
async fn key_changes_are_compare_and_swap_on_the_generation() {
    for db in test_databases().await {
        let store = open(&db.url).await;
        let t = tenant();
        let keys = [fake_key(&t, &format!("cur-{}", t.id), "current"), fake_key(&t, &format!("nxt-{}", t.id), "next")];
        store.create_tenant(&NewTenant { tenant: &t, keys: &keys, admin: None }, None).await.unwrap();
        let id = t.id.to_string();
        let rotate = KeyChange {
            delete: vec![],
            retire: Some((keys[0].kid.clone(), 2_000_000_000)),
            activate: Some(keys[1].kid.clone()),
            insert: vec![fake_key(&t, &format!("new-{}", t.id), "next")],
        };
        assert!(!store.apply_key_change(&id, 0, &rotate, 1_900_000_000).await.unwrap(), "stale generation");
        let (generation, unchanged) = store.signing_keys(&id).await.unwrap().unwrap();
        assert_eq!(generation, 1);
        assert_eq!(unchanged.len(), 2, "{}: a lost swap changes nothing", db.backend);

        assert!(store.apply_key_change(&id, 1, &rotate, 1_900_000_000).await.unwrap());
        let (generation, rotated) = store.signing_keys(&id).await.unwrap().unwrap();
        assert_eq!(generation, 2);
        let state = |kid: &str| rotated.iter().find(|k| k.kid == kid).map(|k| k.state.clone());
        assert_eq!(state(&keys[0].kid).as_deref(), Some("previous"));
        assert_eq!(state(&keys[1].kid).as_deref(), Some("current"));
        assert_eq!(state(&format!("new-{}", t.id)).as_deref(), Some("next"));
        let activated = rotated.iter().find(|k| k.state == "current").unwrap().activated_at;
        assert_eq!(activated, Some(1_900_000_000));

        // Due-for-maintenance finds the previous key once its retirement passed.
        let due = store.tenants_due_for_key_maintenance(0, 2_000_000_000).await.unwrap();
        assert!(due.contains(&id), "{}", db.backend);
        let not_due = store.tenants_due_for_key_maintenance(0, 1_999_999_999).await.unwrap();
        assert!(!not_due.contains(&id), "{}", db.backend);
    }
}

#[tokio::test]
async fn the_schema_enforces_one_current_key_per_tenant() {
    for db in test_databases().await {
        let store = open(&db.url).await;
        let t = tenant();
        let keys = [fake_key(&t, &format!("c1-{}", t.id), "current"), fake_key(&t, &format!("c2-{}", t.id), "current")];
        let result = store.create_tenant(&NewTenant { tenant: &t, keys: &keys, admin: None }, None).await;
        assert!(result.is_err(), "{}: two current keys refused", db.backend);
        assert_eq!(store.tenant(&t.id).await.unwrap(), None, "{}: and the transaction rolled back", db.backend);
    }
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    let err = Store::connect("mysql://localhost/db").await.unwrap_err();
    assert!(err.to_string().contains("unsupported database URL"), "{err}");
}

#[tokio::test]
async fn sign_ins_filter_and_page_on_both_backends() {
    use wisp::store::{SignInQuery, SignInRow};
    for db in test_databases().await {
        let store = open(&db.url).await;
        let tenant = Uuid::new_v4();
        let row = |seq: i64, client: &str, outcome: &str| SignInRow {
            id: Uuid::new_v4().to_string(),
            tenant_id: tenant.to_string(),
            at: seq / 1_000_000,
            seq,
            correlation_id: format!("c-{seq}"),
            client_ip: Some("127.0.0.1".into()),
            client_id: Some(client.into()),
            service_principal_id: None,
            resource: Some("api://x".into()),
            credential_type: Some("clientSecret".into()),
            credential_id: None,
            assertion_issuer: None,
            assertion_subject: None,
            assertion_jti: None,
            outcome: outcome.into(),
            error_code: (outcome == "refused").then_some(7000215),
            token_id: None,
            details: None,
        };
        let rows = [row(1_000_000, "a", "granted"), row(2_000_000, "a", "refused"), row(3_000_000, "b", "granted")];
        store.insert_sign_ins(&rows).await.unwrap();
        let query = |q: SignInQuery| {
            let store = store.clone();
            async move { store.sign_ins(&tenant, &SignInQuery { top: 10, ..q }).await.unwrap() }
        };
        assert_eq!(query(SignInQuery::default()).await.len(), 3, "{}", db.backend);
        assert_eq!(query(SignInQuery::default()).await[0].seq, 3_000_000, "newest first");
        assert_eq!(
            query(SignInQuery { client_id: Some("a".into()), ..Default::default() }).await.len(),
            2,
            "{}",
            db.backend
        );
        assert_eq!(query(SignInQuery { outcome: Some("refused".into()), ..Default::default() }).await.len(), 1);
        assert_eq!(
            query(SignInQuery { correlation_id: Some("c-3000000".into()), ..Default::default() }).await.len(),
            1
        );
        assert_eq!(query(SignInQuery { since: Some(2), ..Default::default() }).await.len(), 2);
        assert_eq!(query(SignInQuery { until: Some(1), ..Default::default() }).await.len(), 1);
        let first_page = store.sign_ins(&tenant, &SignInQuery { top: 1, ..Default::default() }).await.unwrap();
        assert_eq!(first_page.len(), 2, "one row plus the one that says more follow");
        let cursor = (first_page[0].seq, first_page[0].id.clone());
        let next = query(SignInQuery { before: Some(cursor), ..Default::default() }).await;
        assert_eq!(next.len(), 2, "{}", db.backend);
        assert!(
            store.sign_ins(&Uuid::new_v4(), &SignInQuery { top: 10, ..Default::default() }).await.unwrap().is_empty()
        );
    }
}

#[tokio::test]
async fn join_tokens_enroll_once_and_expire_on_both_backends() {
    use wisp::directory::ComputeResource;
    use wisp::store::{DirectoryAudit, EnrollRefusal, NewJoinToken};
    for db in test_databases().await {
        let store = open(&db.url).await;
        let t = tenant();
        store.create_tenant(&NewTenant { tenant: &t, keys: &[], admin: None }, None).await.unwrap();
        let audit = || DirectoryAudit {
            id: Uuid::new_v4().to_string(),
            tenant_id: t.id.to_string(),
            at: 0,
            seq: 0,
            actor_app_id: "test".into(),
            activity: "test".into(),
            target_type: "Resource".into(),
            target_id: "x".into(),
            old_value: None,
            new_value: None,
            correlation_id: Uuid::new_v4().to_string(),
        };
        let resource = ComputeResource {
            id: Uuid::new_v4(),
            tenant_id: t.id,
            name: "vm1".into(),
            system_identity_id: None,
            user_assigned: vec![],
            version: 1,
            created_at: 0,
        };
        store.create_compute_resource(&resource, None, &audit()).await.unwrap();
        let token = |hash: &str, expires_at: i64| NewJoinToken {
            id: Uuid::new_v4(),
            tenant_id: t.id,
            resource_id: resource.id,
            token_hash: hash.into(),
            created_at: 100,
            expires_at,
        };
        store.create_join_token(&token("fresh", 1000), &audit()).await.unwrap();
        store.create_join_token(&token("stale", 150), &audit()).await.unwrap();
        let enroll = |hash: &'static str| {
            let store = store.clone();
            async move { store.enroll_agent(hash, &Uuid::new_v4(), "{}", 200).await.unwrap() }
        };
        assert_eq!(enroll("nope").await.err(), Some(EnrollRefusal::Unknown), "{}", db.backend);
        assert_eq!(enroll("stale").await.err(), Some(EnrollRefusal::Expired), "{}", db.backend);
        let agent = enroll("fresh").await.expect("a fresh token enrolls");
        assert_eq!(agent.resource_id, resource.id);
        assert_eq!(enroll("fresh").await.err(), Some(EnrollRefusal::Used), "{}", db.backend);
        // Deleting the resource deletes its agent.
        store.delete_compute_resource(&resource, None, &audit()).await.unwrap();
        assert_eq!(store.agent(&agent.id).await.unwrap(), None, "{}", db.backend);
    }
}

#[tokio::test]
async fn console_sessions_expire_and_end_on_both_backends() {
    use wisp::store::ConsoleSession;
    for db in test_databases().await {
        let store = open(&db.url).await;
        let session = |id: &str, created_at: i64, expires_at: i64| ConsoleSession {
            id_hash: id.into(),
            tenant_id: Uuid::new_v4().to_string(),
            app_id: Uuid::new_v4().to_string(),
            roles: r#"["Directory.Read.All"]"#.into(),
            csrf_token: format!("csrf-{id}"),
            flash: None,
            created_at,
            expires_at,
        };
        store.create_console_session(&session("old", 100, 200)).await.unwrap();
        let live = session("live", 1_000, 4_600);
        store.create_console_session(&live).await.unwrap();
        assert_eq!(store.console_session("live", 1_001).await.unwrap(), Some(live.clone()), "{}", db.backend);
        assert_eq!(store.console_session("live", 4_600).await.unwrap(), None, "{}: expired", db.backend);
        assert_eq!(
            store.console_session("old", 150).await.unwrap(),
            None,
            "{}: purged at the next sign-in",
            db.backend
        );
        store.set_console_flash("live", b"sealed").await.unwrap();
        assert_eq!(store.take_console_flash("live").await.unwrap(), Some(b"sealed".to_vec()), "{}", db.backend);
        assert_eq!(store.take_console_flash("live").await.unwrap(), None, "{}: shown once", db.backend);
        store.delete_console_session("live").await.unwrap();
        assert_eq!(store.console_session("live", 1_001).await.unwrap(), None, "{}: signed out", db.backend);
    }
}
