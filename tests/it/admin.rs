//! The admin API over HTTPS: Graph-shaped CRUD, Graph's validation rules,
//! authentication and role checks, tenant isolation, ETags, paging, audit.

use serde_json::{Value, json};

use crate::support::{Admin, TestServer, spawn_on, spawn_wisp, test_databases};

const GITHUB: &str = "https://token.actions.githubusercontent.com";

async fn create_app(admin: &Admin, body: Value) -> Value {
    let reply = admin.post("/v1.0/applications", body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

/// A second tenant made through the API, with its administrator session.
async fn second_tenant(wisp: &TestServer, admin: &Admin) -> (String, Admin) {
    let reply = admin.post("/v1.0/tenants", json!({"displayName": "Customer"})).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let tenant = reply.body["id"].as_str().unwrap().to_string();
    let credential = &reply.body["adminCredential"];
    let other = wisp
        .admin_as(&tenant, credential["clientId"].as_str().unwrap(), credential["clientSecret"].as_str().unwrap())
        .await;
    (tenant, other)
}

#[tokio::test]
async fn applications_have_graph_crud_with_etags_and_paging() {
    for db in test_databases().await {
        applications_have_graph_crud_with_etags_and_paging_on(spawn_on(&db).await).await;
    }
}

async fn applications_have_graph_crud_with_etags_and_paging_on(wisp: TestServer) {
    let admin = wisp.admin().await;
    let created = create_app(
        &admin,
        json!({
            "displayName": "Orders API",
            "identifierUris": ["api://orders"],
            "appRoles": [{"value": "Orders.Read", "displayName": "Read orders", "allowedMemberTypes": ["Application"]}],
        }),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["signInAudience"], "AzureADMyOrg");
    assert_eq!(created["identifierUris"], json!(["api://orders"]));
    assert_eq!(created["appRoles"][0]["isEnabled"], true);
    assert!(created["appId"].as_str().unwrap().len() == 36);

    let got = admin.get(&format!("/v1.0/applications/{id}")).await;
    assert_eq!(got.status, 200);
    let etag = got.etag();
    assert_eq!(etag, "W/\"1\"");

    // Its service principal exists in the home tenant.
    let sps =
        admin.get(&format!("/v1.0/servicePrincipals?$filter=appId eq '{}'", created["appId"].as_str().unwrap())).await;
    assert_eq!(sps.body["value"].as_array().unwrap().len(), 1, "{}", sps.body);

    // PATCH with the right ETag, then with the stale one.
    let patched = admin
        .send(
            reqwest::Method::PATCH,
            &format!("/v1.0/applications/{id}"),
            Some(json!({"displayName": "Orders"})),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(patched.status, 204, "{}", patched.body);
    let stale = admin
        .send(
            reqwest::Method::PATCH,
            &format!("/v1.0/applications/{id}"),
            Some(json!({"displayName": "Lost update"})),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(stale.status, 412, "{}", stale.body);
    assert_eq!(admin.get(&format!("/v1.0/applications/{id}")).await.body["displayName"], "Orders");

    // Paging and filtering.
    create_app(&admin, json!({"displayName": "Billing"})).await;
    let page = admin.get("/v1.0/applications?$top=1").await;
    assert_eq!(page.body["value"].as_array().unwrap().len(), 1);
    let next = page.body["@odata.nextLink"].as_str().expect("a next page").to_string();
    let second = admin.get(&next).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert!(!second.body["value"].as_array().unwrap().is_empty());
    assert_ne!(page.body["value"][0]["id"], second.body["value"][0]["id"]);
    let filtered = admin.get("/v1.0/applications?$filter=displayName eq 'Billing'").await;
    assert_eq!(filtered.body["value"].as_array().unwrap().len(), 1);
    let by_prefix = admin.get("/v1.0/applications?$filter=startswith(displayName,'Ord')").await;
    assert_eq!(by_prefix.body["value"][0]["displayName"], "Orders");
    assert_eq!(admin.get("/v1.0/applications?$filter=secret eq 'x'").await.status, 400);
    assert_eq!(admin.get("/v1.0/applications?$top=5000").await.status, 400);

    // Delete, then it is gone (and so is its service principal).
    assert_eq!(admin.delete(&format!("/v1.0/applications/{id}")).await.status, 204);
    assert_eq!(admin.get(&format!("/v1.0/applications/{id}")).await.status, 404);
    let sps =
        admin.get(&format!("/v1.0/servicePrincipals?$filter=appId eq '{}'", created["appId"].as_str().unwrap())).await;
    assert!(sps.body["value"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn application_validation_follows_graph() {
    let wisp = spawn_wisp().await;
    let admin = wisp.admin().await;
    create_app(&admin, json!({"displayName": "A", "identifierUris": ["api://taken"]})).await;
    let cases = [
        json!({"identifierUris": ["api://x"]}),
        json!({"displayName": "B", "identifierUris": ["api://taken"]}),
        json!({"displayName": "B", "identifierUris": ["not a uri"]}),
        json!({"displayName": "B", "identifierUris": ["api://wisp-admin"]}),
        json!({"displayName": "B", "signInAudience": "AzureADandPersonalMicrosoftAccount"}),
        json!({"displayName": "B", "appRoles": [{"value": "Has Space"}]}),
        json!({"displayName": "B", "appRoles": [{"value": "R", "allowedMemberTypes": ["User"]}]}),
        json!({"displayName": "B", "appRoles": [{"value": "R"}, {"value": "R"}]}),
        json!({"displayName": "B", "unknownProperty": 1}),
    ];
    for body in cases {
        let reply = admin.post("/v1.0/applications", body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert!(!reply.error_message().is_empty());
    }
    // An enabled role cannot be removed; a disabled one can.
    let app = create_app(&admin, json!({"displayName": "R", "appRoles": [{"value": "Orders.Read"}]})).await;
    let id = app["id"].as_str().unwrap();
    let role = app["appRoles"][0].clone();
    let removed = admin.patch(&format!("/v1.0/applications/{id}"), json!({"appRoles": []})).await;
    assert_eq!(removed.status, 400);
    assert_eq!(removed.body["error"]["code"], "CannotDeleteOrUpdateEnabledEntitlement");
    let mut disabled = role.clone();
    disabled["isEnabled"] = json!(false);
    assert_eq!(admin.patch(&format!("/v1.0/applications/{id}"), json!({"appRoles": [disabled]})).await.status, 204);
    assert_eq!(admin.patch(&format!("/v1.0/applications/{id}"), json!({"appRoles": []})).await.status, 204);
}

#[tokio::test]
async fn federated_credentials_follow_graph_rules() {
    for db in test_databases().await {
        federated_credentials_follow_graph_rules_on(spawn_on(&db).await).await;
    }
}

async fn federated_credentials_follow_graph_rules_on(wisp: TestServer) {
    let admin = wisp.admin().await;
    let app = create_app(&admin, json!({"displayName": "deployer"})).await;
    let fics = format!("/v1.0/applications/{}/federatedIdentityCredentials", app["id"].as_str().unwrap());

    let created = admin
        .post(&fics, json!({"name": "main", "issuer": GITHUB, "subject": "repo:acme/app:ref:refs/heads/main"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["audiences"], json!(["api://AzureADTokenExchange"]), "default audience");
    let by_name = admin.get(&format!("{fics}/main")).await;
    assert_eq!(by_name.status, 200);
    assert_eq!(by_name.body["id"], created.body["id"]);
    let by_id = admin.get(&format!("{fics}/{}", created.body["id"].as_str().unwrap())).await;
    assert_eq!(by_id.body["name"], "main");

    let refusals = [
        (json!({"name": "main", "issuer": GITHUB, "subject": "other"}), "already exists"),
        (
            json!({"name": "dup-pair", "issuer": GITHUB, "subject": "repo:acme/app:ref:refs/heads/main"}),
            "same issuer and subject",
        ),
        (json!({"name": "two", "issuer": GITHUB, "subject": "s2", "audiences": ["a", "b"]}), "exactly one audience"),
        (json!({"name": "none", "issuer": GITHUB, "subject": "s3", "audiences": []}), "exactly one audience"),
        (json!({"name": "-bad", "issuer": GITHUB, "subject": "s4"}), "is invalid"),
        (json!({"name": "ab", "issuer": GITHUB, "subject": "s5"}), "is invalid"),
        (json!({"name": "http", "issuer": "http://insecure.example", "subject": "s6"}), "https"),
        (json!({"name": "nourl", "issuer": "not a url", "subject": "s7"}), "not a valid URL"),
        (json!({"name": "nosub", "issuer": GITHUB}), "exactly one of subject"),
    ];
    for (body, message) in refusals {
        let reply = admin.post(&fics, body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert!(reply.error_message().contains(message), "{body}: {}", reply.error_message());
    }

    // The name is immutable; the rest can change.
    let renamed = admin.patch(&format!("{fics}/main"), json!({"name": "renamed"})).await;
    assert_eq!(renamed.status, 400);
    let moved = admin.patch(&format!("{fics}/main"), json!({"subject": "repo:acme/app:environment:prod"})).await;
    assert_eq!(moved.status, 204, "{}", moved.body);
    assert_eq!(admin.get(&format!("{fics}/main")).await.body["subject"], "repo:acme/app:environment:prod");

    // At most 20 per owner.
    for i in 1..20 {
        let reply = admin
            .post(&fics, json!({"name": format!("fic-{i:02}"), "issuer": GITHUB, "subject": format!("s-{i}")}))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let twenty_first = admin.post(&fics, json!({"name": "fic-21", "issuer": GITHUB, "subject": "s-21"})).await;
    assert_eq!(twenty_first.status, 400);
    assert!(twenty_first.error_message().contains("maximum of 20"), "{}", twenty_first.error_message());
    assert_eq!(admin.get(&fics).await.body["value"].as_array().unwrap().len(), 20);

    assert_eq!(admin.delete(&format!("{fics}/main")).await.status, 204);
    assert_eq!(admin.get(&format!("{fics}/main")).await.status, 404);
}

#[tokio::test]
async fn secrets_are_shown_once_work_at_the_token_endpoint_and_can_be_removed() {
    let wisp = spawn_wisp().await;
    let tenant = wisp.tenant_id();
    let admin = wisp.admin().await;
    let app = create_app(&admin, json!({"displayName": "worker"})).await;
    let id = app["id"].as_str().unwrap();
    let app_id = app["appId"].as_str().unwrap();
    let added = admin
        .post(&format!("/v1.0/applications/{id}/addPassword"), json!({"passwordCredential": {"displayName": "ci"}}))
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    let secret = added.body["secretText"].as_str().unwrap().to_string();
    assert!(secret.len() >= 40);
    let shown = admin.get(&format!("/v1.0/applications/{id}")).await;
    assert_eq!(shown.body["passwordCredentials"][0]["secretText"], Value::Null);
    assert_eq!(shown.body["passwordCredentials"][0]["hint"], &secret[..3]);
    assert!(!shown.body.to_string().contains(&secret));

    // The app has a service principal in its home tenant, so it can get a token
    // for the admin API (with no roles: it was granted none).
    let token = wisp.token_with_secret(&tenant, app_id, &secret, "api://wisp-admin/.default").await;
    assert_eq!(token.status(), 200);
    let no_roles = wisp.admin_as(&tenant, app_id, &secret).await;
    assert_eq!(no_roles.get("/v1.0/applications").await.status, 403);

    let key_id = added.body["keyId"].as_str().unwrap();
    let removed = admin.post(&format!("/v1.0/applications/{id}/removePassword"), json!({"keyId": key_id})).await;
    assert_eq!(removed.status, 204);
    let refused = wisp.token_with_secret(&tenant, app_id, &secret, "api://wisp-admin/.default").await;
    assert_eq!(refused.status(), 401);

    // The audit log has the story, without the secret.
    let audits = admin.get("/v1.0/auditLogs/directoryAudits").await;
    assert_eq!(audits.status, 200);
    let text = audits.body.to_string();
    assert!(!text.contains(&secret));
    let activities: Vec<&str> =
        audits.body["value"].as_array().unwrap().iter().map(|e| e["activityDisplayName"].as_str().unwrap()).collect();
    assert_eq!(&activities[..3], ["Remove client secret", "Add client secret", "Add application"], "newest first");
    assert_eq!(audits.body["value"][0]["initiatedBy"]["app"]["appId"], wisp.admin_credentials().0.as_str());
}

#[tokio::test]
async fn certificates_are_uploaded_as_public_keys_with_computed_thumbprints() {
    let wisp = spawn_wisp().await;
    let admin = wisp.admin().await;
    let app = create_app(&admin, json!({"displayName": "cert-client"})).await;
    let id = app["id"].as_str().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["client".to_string()]).unwrap().self_signed(&key).unwrap();
    let reply = admin
        .patch(&format!("/v1.0/applications/{id}"), json!({"keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify", "key": cert.pem(), "displayName": "ci"}]}))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let shown = admin.get(&format!("/v1.0/applications/{id}")).await;
    let expected: String = {
        use aws_lc_rs::digest;
        digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, cert.der())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    };
    assert_eq!(shown.body["keyCredentials"][0]["customKeyIdentifier"], expected.as_str());
    let key_id = shown.body["keyCredentials"][0]["keyId"].as_str().unwrap().to_string();
    // Base64 DER works too; keeping by keyId keeps the first.
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD.encode(
        rcgen::CertificateParams::new(vec!["c2".to_string()])
            .unwrap()
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap()
            .der(),
    );
    let reply = admin
        .patch(&format!("/v1.0/applications/{id}"), json!({"keyCredentials": [{"keyId": key_id}, {"key": der}]}))
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(
        admin.get(&format!("/v1.0/applications/{id}")).await.body["keyCredentials"].as_array().unwrap().len(),
        2
    );
    let bad = admin
        .patch(&format!("/v1.0/applications/{id}"), json!({"keyCredentials": [{"key": "bm90IGEgY2VydA=="}]}))
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    // Replacing the set with nothing removes them.
    assert_eq!(admin.patch(&format!("/v1.0/applications/{id}"), json!({"keyCredentials": []})).await.status, 204);
    assert!(admin.get(&format!("/v1.0/applications/{id}")).await.body["keyCredentials"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn missing_foreign_and_expired_tokens_get_401_and_tenants_are_isolated() {
    let wisp = spawn_wisp().await;
    let admin = wisp.admin().await;
    let no_token = wisp.client.get(wisp.url("/v1.0/applications")).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    assert!(no_token.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let body: Value = no_token.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");

    let garbage = Admin { token: "not.a.token".into(), ..admin.clone() };
    assert_eq!(garbage.get("/v1.0/applications").await.status, 401);
    let mut tampered = admin.clone();
    tampered.token.push('x');
    assert_eq!(tampered.get("/v1.0/applications").await.status, 401);

    // A token for another resource is not an admin token.
    let api = create_app(&admin, json!({"displayName": "api", "identifierUris": ["api://some-api"]})).await;
    let (client_id, secret) = wisp.admin_credentials();
    let token: Value = wisp
        .token_with_secret(&wisp.tenant_id(), &client_id, &secret, "api://some-api/.default")
        .await
        .json()
        .await
        .unwrap();
    let wrong_audience = Admin { token: token["access_token"].as_str().unwrap().into(), ..admin.clone() };
    assert_eq!(wrong_audience.get("/v1.0/applications").await.status, 401);
    let _ = api;

    // Tenant B's administrator sees nothing of tenant A and cannot touch it.
    let a_app = create_app(&admin, json!({"displayName": "A only"})).await;
    let (_, b) = second_tenant(&wisp, &admin).await;
    let b_list = b.get("/v1.0/applications").await;
    assert_eq!(b_list.status, 200);
    assert!(b_list.body["value"].as_array().unwrap().iter().all(|a| a["displayName"] != "A only"));
    let a_id = a_app["id"].as_str().unwrap();
    assert_eq!(b.get(&format!("/v1.0/applications/{a_id}")).await.status, 404);
    assert_eq!(b.delete(&format!("/v1.0/applications/{a_id}")).await.status, 404);
    assert_eq!(b.patch(&format!("/v1.0/applications/{a_id}"), json!({"displayName": "pwned"})).await.status, 404);
    assert_eq!(admin.get(&format!("/v1.0/applications/{a_id}")).await.body["displayName"], "A only");
    // Only the bootstrap tenant manages tenants.
    assert_eq!(b.post("/v1.0/tenants", json!({"displayName": "x"})).await.status, 403);
    assert_eq!(b.get("/v1.0/tenants").await.status, 403);
    assert_eq!(admin.get("/v1.0/tenants").await.body["value"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn provisioning_and_role_assignments_put_roles_in_tokens() {
    for db in test_databases().await {
        provisioning_and_role_assignments_put_roles_in_tokens_on(spawn_on(&db).await).await;
    }
}

async fn provisioning_and_role_assignments_put_roles_in_tokens_on(wisp: TestServer) {
    let admin = wisp.admin().await;
    let vendor_tenant = wisp.tenant_id();
    let saas = create_app(&admin, json!({"displayName": "saas", "signInAudience": "AzureADMultipleOrgs"})).await;
    let single = create_app(&admin, json!({"displayName": "internal"})).await;
    let secret = admin
        .post(&format!("/v1.0/applications/{}/addPassword", saas["id"].as_str().unwrap()), json!({}))
        .await
        .body["secretText"]
        .as_str()
        .unwrap()
        .to_string();

    let (customer, b) = second_tenant(&wisp, &admin).await;
    // Not provisioned yet: the customer's endpoint does not know the app.
    let before =
        wisp.token_with_secret(&customer, saas["appId"].as_str().unwrap(), &secret, "api://wisp-admin/.default").await;
    assert_eq!(before.status(), 400);
    let body: Value = before.json().await.unwrap();
    assert_eq!(body["error_codes"][0], 700016);

    // A single-tenant app of another tenant cannot be provisioned.
    let refused = b.post("/v1.0/servicePrincipals", json!({"appId": single["appId"]})).await;
    assert_eq!(refused.status, 400);
    assert!(refused.error_message().contains("single-tenant"), "{}", refused.error_message());

    let sp = b.post("/v1.0/servicePrincipals", json!({"appId": saas["appId"]})).await;
    assert_eq!(sp.status, 201, "{}", sp.body);
    assert_eq!(sp.body["appOwnerOrganizationId"], vendor_tenant.as_str());
    let again = b.post("/v1.0/servicePrincipals", json!({"appId": saas["appId"]})).await;
    assert_eq!(again.status, 400, "provisioning twice is refused");

    // The customer's own API with a role, granted to the SaaS app.
    let orders = b
        .post(
            "/v1.0/applications",
            json!({"displayName": "orders", "identifierUris": ["api://orders"],
        "appRoles": [{"value": "Orders.Read"}, {"value": "Orders.Write"}]}),
        )
        .await
        .body;
    let orders_sp =
        b.get(&format!("/v1.0/servicePrincipals?$filter=appId eq '{}'", orders["appId"].as_str().unwrap())).await.body
            ["value"][0]
            .clone();
    let orders_sp_id = orders_sp["id"].as_str().unwrap();
    let read_role =
        orders["appRoles"].as_array().unwrap().iter().find(|r| r["value"] == "Orders.Read").unwrap()["id"].clone();
    let assigned = b
        .post(
            &format!("/v1.0/servicePrincipals/{orders_sp_id}/appRoleAssignedTo"),
            json!({"principalId": sp.body["id"], "resourceId": orders_sp_id, "appRoleId": read_role}),
        )
        .await;
    assert_eq!(assigned.status, 201, "{}", assigned.body);
    let duplicate = b
        .post(
            &format!("/v1.0/servicePrincipals/{orders_sp_id}/appRoleAssignedTo"),
            json!({"principalId": sp.body["id"], "resourceId": orders_sp_id, "appRoleId": read_role}),
        )
        .await;
    assert_eq!(duplicate.status, 400);
    let bogus_role = b
        .post(
            &format!("/v1.0/servicePrincipals/{orders_sp_id}/appRoleAssignedTo"),
            json!({"principalId": sp.body["id"], "resourceId": orders_sp_id, "appRoleId": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(bogus_role.status, 400);

    // Now the SaaS app gets a customer-tenant token for api://orders with the role.
    let response =
        wisp.token_with_secret(&customer, saas["appId"].as_str().unwrap(), &secret, "api://orders/.default").await;
    assert_eq!(response.status(), 200);
    let token: Value = response.json().await.unwrap();
    let claims = crate::token::verify_with_jwks(
        &wisp,
        &customer,
        token["access_token"].as_str().unwrap(),
        orders["appId"].as_str().unwrap(),
    )
    .await;
    assert_eq!(claims["tid"], customer.as_str());
    assert_eq!(claims["oid"], sp.body["id"]);
    assert_eq!(claims["roles"], json!(["Orders.Read"]));
    assert_eq!(claims["iss"], format!("{}/{customer}/v2.0", wisp.base_url));

    // Removing the assignment removes the role from the next token.
    let listed = b.get(&format!("/v1.0/servicePrincipals/{orders_sp_id}/appRoleAssignedTo")).await;
    let assignment_id = listed.body["value"][0]["id"].as_str().unwrap();
    assert_eq!(
        b.delete(&format!("/v1.0/servicePrincipals/{orders_sp_id}/appRoleAssignedTo/{assignment_id}")).await.status,
        204
    );
    let response =
        wisp.token_with_secret(&customer, saas["appId"].as_str().unwrap(), &secret, "api://orders/.default").await;
    let token: Value = response.json().await.unwrap();
    let claims = crate::token::verify_with_jwks(
        &wisp,
        &customer,
        token["access_token"].as_str().unwrap(),
        orders["appId"].as_str().unwrap(),
    )
    .await;
    assert!(claims.get("roles").is_none(), "{claims}");
}

#[tokio::test]
async fn read_only_administrators_can_read_but_not_write() {
    let wisp = spawn_wisp().await;
    let admin = wisp.admin().await;
    let tenant = wisp.tenant_id();
    let reader = create_app(&admin, json!({"displayName": "auditor"})).await;
    let secret =
        admin.post(&format!("/v1.0/applications/{}/addPassword", reader["id"].as_str().unwrap()), json!({})).await.body
            ["secretText"]
            .as_str()
            .unwrap()
            .to_string();
    let admin_api = admin
        .get("/v1.0/servicePrincipals?$filter=appId eq '00000003-7769-7370-0000-000000000000'")
        .await
        .body["value"][0]
        .clone();
    let read_role =
        admin_api["appRoles"].as_array().unwrap().iter().find(|r| r["value"] == "Application.Read.All").unwrap()["id"]
            .clone();
    let reader_sp = admin
        .get(&format!("/v1.0/servicePrincipals?$filter=appId eq '{}'", reader["appId"].as_str().unwrap()))
        .await
        .body["value"][0]["id"]
        .clone();
    let granted = admin
        .post(
            &format!("/v1.0/servicePrincipals/{}/appRoleAssignedTo", admin_api["id"].as_str().unwrap()),
            json!({"principalId": reader_sp, "resourceId": admin_api["id"], "appRoleId": read_role}),
        )
        .await;
    assert_eq!(granted.status, 201, "{}", granted.body);

    let session = wisp.admin_as(&tenant, reader["appId"].as_str().unwrap(), &secret).await;
    assert_eq!(session.get("/v1.0/applications").await.status, 200);
    let denied = session.post("/v1.0/applications", json!({"displayName": "nope"})).await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.body["error"]["code"], "Authorization_RequestDenied");
    assert_eq!(
        session.get("/v1.0/auditLogs/directoryAudits").await.status,
        403,
        "Application.Read.All does not read audits"
    );
}

#[tokio::test]
async fn managed_identities_and_resources_attach_and_detach() {
    for db in test_databases().await {
        managed_identities_and_resources_attach_and_detach_on(spawn_on(&db).await).await;
    }
}

async fn managed_identities_and_resources_attach_and_detach_on(wisp: TestServer) {
    let admin = wisp.admin().await;
    let deployer = admin.post("/v1.0/managedIdentities", json!({"displayName": "deployer"})).await;
    assert_eq!(deployer.status, 201, "{}", deployer.body);
    let deployer_id = deployer.body["id"].as_str().unwrap().to_string();
    assert_eq!(deployer.body["type"], "UserAssigned");
    // Its service principal exists, of type ManagedIdentity.
    let sp = admin.get(&format!("/v1.0/servicePrincipals/{}", deployer.body["principalId"].as_str().unwrap())).await;
    assert_eq!(sp.status, 200);
    assert_eq!(sp.body["servicePrincipalType"], "ManagedIdentity");
    assert_eq!(sp.body["appId"], deployer.body["clientId"]);

    // A resource with both kinds of identity.
    let vm = admin
        .post(
            "/v1.0/resources",
            json!({"name": "vm1", "identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": [deployer_id]}}),
        )
        .await;
    assert_eq!(vm.status, 201, "{}", vm.body);
    let vm_id = vm.body["id"].as_str().unwrap().to_string();
    assert_eq!(vm.body["identity"]["type"], "SystemAssigned, UserAssigned");
    let system_principal = vm.body["identity"]["principalId"].as_str().unwrap().to_string();
    assert!(vm.body["identity"]["userAssignedIdentities"][&deployer_id]["clientId"].is_string());
    assert_eq!(admin.get(&format!("/v1.0/servicePrincipals/{system_principal}")).await.status, 200);

    // Names are unique; types and lists must agree; unknown identities are refused.
    assert_eq!(admin.post("/v1.0/resources", json!({"name": "vm1"})).await.status, 400);
    assert_eq!(
        admin.post("/v1.0/resources", json!({"name": "vm2", "identity": {"type": "UserAssigned"}})).await.status,
        400
    );
    assert_eq!(admin.post("/v1.0/resources", json!({"name": "vm3", "identity": {"type": "Bogus"}})).await.status, 400);
    let unknown = admin
        .post("/v1.0/resources", json!({"name": "vm4", "identity": {"type": "UserAssigned", "userAssignedIdentities": [uuid::Uuid::new_v4()]}}))
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(admin.post("/v1.0/resources", json!({"name": "bad name!"})).await.status, 400);

    // Detach the user-assigned identity and drop the system-assigned one.
    let patched = admin.patch(&format!("/v1.0/resources/{vm_id}"), json!({"identity": {"type": "None"}})).await;
    assert_eq!(patched.status, 204, "{}", patched.body);
    let after = admin.get(&format!("/v1.0/resources/{vm_id}")).await;
    assert_eq!(after.body["identity"]["type"], "None");
    assert_eq!(
        admin.get(&format!("/v1.0/servicePrincipals/{system_principal}")).await.status,
        404,
        "system identity gone"
    );
    assert_eq!(
        admin.get(&format!("/v1.0/managedIdentities/{deployer_id}")).await.status,
        200,
        "user-assigned survives"
    );

    // Re-attach with ARM's map form, then a stale ETag is refused.
    let etag = after.etag();
    let map = json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {deployer_id.clone(): {}}}});
    let reattached = admin
        .send(reqwest::Method::PATCH, &format!("/v1.0/resources/{vm_id}"), Some(map.clone()), &[("If-Match", &etag)])
        .await;
    assert_eq!(reattached.status, 204, "{}", reattached.body);
    let stale = admin
        .send(reqwest::Method::PATCH, &format!("/v1.0/resources/{vm_id}"), Some(map), &[("If-Match", &etag)])
        .await;
    assert_eq!(stale.status, 412);

    // User-assigned identities carry FICs too.
    let fics = format!("/v1.0/managedIdentities/{deployer_id}/federatedIdentityCredentials");
    let fic = admin
        .post(&fics, json!({"name": "k8s", "issuer": "https://oidc.example.test/cluster/", "subject": "system:serviceaccount:ns:sa"}))
        .await;
    assert_eq!(fic.status, 201, "{}", fic.body);
    let filtered = admin.get(&format!("{fics}?$filter=name eq 'k8s'")).await;
    assert_eq!(filtered.body["value"].as_array().unwrap().len(), 1);
    let none = admin.get(&format!("{fics}?$filter=name eq 'other'")).await;
    assert!(none.body["value"].as_array().unwrap().is_empty());

    // Deleting the identity detaches it and removes its FICs.
    assert_eq!(admin.delete(&format!("/v1.0/managedIdentities/{deployer_id}")).await.status, 204);
    assert_eq!(admin.get(&format!("/v1.0/resources/{vm_id}")).await.body["identity"]["type"], "None");
    assert_eq!(admin.delete(&format!("/v1.0/resources/{vm_id}")).await.status, 204);
    assert_eq!(admin.get(&format!("/v1.0/resources/{vm_id}")).await.status, 404);
}

#[tokio::test]
async fn a_tenant_policy_can_forbid_new_client_secrets() {
    let wisp = spawn_wisp().await;
    let admin = wisp.admin().await;
    let app = create_app(&admin, json!({"displayName": "no-secrets"})).await;
    let add = format!("/v1.0/applications/{}/addPassword", app["id"].as_str().unwrap());
    assert_eq!(admin.get("/v1.0/policies/appManagement").await.body["blockPasswordCredentials"], false);
    assert_eq!(
        admin.patch("/v1.0/policies/appManagement", json!({"blockPasswordCredentials": true})).await.status,
        204
    );
    let refused = admin.post(&add, json!({})).await;
    assert_eq!(refused.status, 403);
    assert!(refused.error_message().contains("federated identity credential"), "{}", refused.error_message());
    assert_eq!(
        admin.patch("/v1.0/policies/appManagement", json!({"blockPasswordCredentials": false})).await.status,
        204
    );
    assert_eq!(admin.post(&add, json!({})).await.status, 200);
}

#[tokio::test]
async fn a_managed_identity_credential_must_name_an_identity_of_this_tenant() {
    let wisp = spawn_wisp().await;
    let admin = wisp.admin().await;
    let tenant = wisp.tenant_id();
    let own_issuer = format!("{}/{tenant}/v2.0", wisp.base_url);
    let app = create_app(&admin, json!({"displayName": "trusts-mi"})).await;
    let fics = format!("/v1.0/applications/{}/federatedIdentityCredentials", app["id"].as_str().unwrap());
    let mi = admin.post("/v1.0/managedIdentities", json!({"displayName": "worker"})).await.body;

    let ok = admin.post(&fics, json!({"name": "mi-1", "issuer": own_issuer, "subject": mi["principalId"]})).await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    // The client id is not the subject; a random GUID is not either.
    for subject in [mi["clientId"].clone(), json!(uuid::Uuid::new_v4()), json!("not-a-guid")] {
        let reply = admin.post(&fics, json!({"name": "bad-mi", "issuer": own_issuer, "subject": subject})).await;
        assert_eq!(reply.status, 400, "{subject}: {}", reply.body);
    }
    // Another tenant's issuer is refused.
    let (other, _) = second_tenant(&wisp, &admin).await;
    let reply = admin
        .post(
            &fics,
            json!({"name": "cross", "issuer": format!("{}/{other}/v2.0", wisp.base_url), "subject": mi["principalId"]}),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.error_message().contains("same tenant"), "{}", reply.error_message());
}

#[tokio::test]
async fn claims_matching_expressions_are_checked_at_write_time() {
    for db in test_databases().await {
        claims_matching_expressions_on(spawn_on(&db).await).await;
    }
}

async fn claims_matching_expressions_on(wisp: TestServer) {
    let admin = wisp.admin().await;
    let app = create_app(&admin, json!({"displayName": "flexible"})).await;
    let fics = format!("/v1.0/applications/{}/federatedIdentityCredentials", app["id"].as_str().unwrap());
    let expression = "claims['sub'] matches 'repo:acme/*:environment:prod*'";
    let created = admin
        .post(&fics, json!({"name": "prod-any-repo", "issuer": GITHUB, "claimsMatchingExpression": {"value": expression, "languageVersion": 1}}))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["subject"], Value::Null);
    assert_eq!(created.body["claimsMatchingExpression"]["value"], expression);
    // Two expression credentials for one issuer are fine (no subject to collide on).
    let second = admin
        .post(
            &fics,
            json!({"name": "second", "issuer": GITHUB, "claimsMatchingExpression": {"value": "claims['sub'] eq 'x'"}}),
        )
        .await;
    assert_eq!(second.status, 201, "{}", second.body);
    assert_eq!(
        admin.get(&format!("{fics}/prod-any-repo")).await.body["claimsMatchingExpression"]["languageVersion"],
        1
    );

    for (body, message) in [
        (
            json!({"name": "bad-op", "issuer": GITHUB, "claimsMatchingExpression": {"value": "claims['sub'] like 'x'"}}),
            "position 14",
        ),
        (
            json!({"name": "v2-in-v1", "issuer": GITHUB, "claimsMatchingExpression": {"value": "claims['a'] eq 'x' or claims['b'] eq 'y'"}}),
            "languageVersion 2",
        ),
        (
            json!({"name": "both", "issuer": GITHUB, "subject": "s", "claimsMatchingExpression": {"value": "claims['sub'] eq 'x'"}}),
            "exactly one",
        ),
        (
            json!({"name": "huge", "issuer": GITHUB, "claimsMatchingExpression": {"value": format!("claims['sub'] eq '{}'", "x".repeat(3000)), "languageVersion": 2}}),
            "longer than",
        ),
        (
            json!({"name": "version", "issuer": GITHUB, "claimsMatchingExpression": {"value": "claims['sub'] eq 'x'", "languageVersion": 7}}),
            "languageVersion",
        ),
    ] {
        let reply = admin.post(&fics, body.clone()).await;
        assert_eq!(reply.status, 400, "{body}");
        assert!(reply.error_message().contains(message), "{body}: {}", reply.error_message());
    }
    // Switch a credential from expression to subject and back.
    assert_eq!(
        admin.patch(&format!("{fics}/second"), json!({"subject": "repo:acme/app:ref:refs/heads/main"})).await.status,
        204
    );
    let switched = admin.get(&format!("{fics}/second")).await.body;
    assert_eq!(switched["claimsMatchingExpression"], Value::Null);
    assert_eq!(switched["subject"], "repo:acme/app:ref:refs/heads/main");
    let back = admin
        .patch(&format!("{fics}/second"), json!({"claimsMatchingExpression": {"value": "claims['sub'] startsWith 'repo:acme/'", "languageVersion": 2}}))
        .await;
    assert_eq!(back.status, 204, "{}", back.body);
    assert_eq!(admin.get(&format!("{fics}/second")).await.body["subject"], Value::Null);
}

#[tokio::test]
async fn risky_credentials_are_written_with_warnings() {
    let wisp = spawn_wisp().await;
    let admin = wisp.admin().await;
    let app = create_app(&admin, json!({"displayName": "linted"})).await;
    let fics = format!("/v1.0/applications/{}/federatedIdentityCredentials", app["id"].as_str().unwrap());
    let warnings = |reply: &crate::support::Reply| -> Vec<String> {
        reply.body["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect()
    };
    let everything = admin
        .post(&fics, json!({"name": "all", "issuer": GITHUB, "claimsMatchingExpression": {"value": "claims['sub'] matches '*'"}}))
        .await;
    assert_eq!(everything.status, 201);
    assert!(warnings(&everything).iter().any(|w| w.contains("every subject")), "{}", everything.body);
    let mutable = admin
        .post(&fics, json!({"name": "mutable", "issuer": GITHUB, "subject": "repo:acme/app:ref:refs/heads/main"}))
        .await;
    assert!(warnings(&mutable).iter().any(|w| w.contains("immutable")), "{}", mutable.body);
    let immutable = admin
        .post(
            &fics,
            json!({"name": "immutable", "issuer": GITHUB, "subject": "repo:acme@12/app@34:ref:refs/heads/main"}),
        )
        .await;
    assert!(warnings(&immutable).is_empty(), "{}", immutable.body);
    let default_sa = admin
        .post(&fics, json!({"name": "default-sa", "issuer": "https://k8s.example.test/", "subject": "system:serviceaccount:payments:default"}))
        .await;
    assert!(warnings(&default_sa).iter().any(|w| w.contains("'default' service account")), "{}", default_sa.body);
    // A PATCH carries its advice in Warning headers.
    let patched = admin.patch(&format!("{fics}/immutable"), json!({"subject": "repo:acme/app:environment:prod"})).await;
    assert_eq!(patched.status, 204);
    assert!(patched.headers.get_all("warning").iter().any(|w| w.to_str().unwrap().contains("immutable")));
}
