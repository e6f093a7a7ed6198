//! Configuration as code: `wisp apply` / `wisp export` as the real binary with
//! the README's example files, and `/v1.0/tenantConfiguration` on both backends:
//! all-or-nothing, idempotence, pruning only what apply created, conflicts
//! detected by the plan's ETag, and a configuration that really grants tokens.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::fake_issuer::{FakeIssuer, github_claims};
use crate::support::{Admin, Run, spawn_on, spawn_trusting, spawn_wisp, test_databases};

async fn wisp(bootstrap: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    crate::support::run_wisp(bootstrap, env, args).await
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name)
}

#[tokio::test]
async fn the_readme_examples_apply_as_is_and_the_cli_shows_plans_as_diffs() {
    let server = spawn_wisp().await;
    let dir = server.data_dir.path();
    let vendor_bootstrap = dir.join("bootstrap.json");
    let b = vendor_bootstrap.as_path();
    let vendor = example("vendor.yaml");
    let vendor = vendor.to_str().unwrap();

    // A dry run on the empty tenant: the whole plan, exit code 2 (changes pending).
    let dry = wisp(b, &[], &["apply", "-f", vendor, "--dry-run"]).await;
    assert_eq!(dry.code, Some(2), "{}{}", dry.stdout, dry.stderr);
    assert!(dry.stdout.contains("+ managedIdentity sync-worker"), "{}", dry.stdout);
    assert!(
        dry.stdout.contains("subject: \"(principal id of the new managed identity 'sync-worker')\""),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.ends_with("Plan: 5 to create, 0 to update, 0 to delete.\n"), "{}", dry.stdout);

    let applied = wisp(b, &[], &["apply", "-f", vendor]).await;
    assert_eq!(applied.code, Some(0), "{}", applied.stderr);
    assert!(applied.stdout.ends_with("Applied 5 changes.\n"), "{}", applied.stdout);

    // The same file again changes nothing, and a dry run says so with exit code 0.
    let again = wisp(b, &[], &["apply", "-f", vendor]).await;
    assert_eq!((again.code, again.stdout.as_str()), (Some(0), "No changes: the tenant matches the file.\n"));
    assert_eq!(wisp(b, &[], &["apply", "-f", vendor, "--dry-run"]).await.code, Some(0));

    // One edited subject is a one-line diff.
    let edited = dir.join("edited.yaml");
    let text = std::fs::read_to_string(vendor).unwrap();
    std::fs::write(&edited, text.replace("environment: production", "environment: staging")).unwrap();
    let diff = wisp(b, &[], &["apply", "-f", edited.to_str().unwrap(), "--dry-run"]).await;
    assert_eq!(diff.code, Some(2));
    let without_notes: String =
        diff.stdout.lines().filter(|l| !l.starts_with("note: ")).map(|l| format!("{l}\n")).collect();
    assert!(
        diff.stdout.contains("note: applications[0].federatedCredentials[1]: The GitHub subject names the repository")
    );
    assert_eq!(
        without_notes,
        "~ federatedCredential contoso-sync/github-release: subject \"repo:contoso/sync:environment:production\" -> \
         \"repo:contoso/sync:environment:staging\"\nPlan: 0 to create, 1 to update, 0 to delete.\n"
    );

    // The customer tenant provisions the vendor's app, by the appId the vendor's apply created.
    let shown = wisp(b, &[], &["app", "show", "contoso-sync", "-o", "json"]).await;
    let vendor_app_id = serde_json::from_str::<Value>(&shown.stdout).unwrap()["appId"].as_str().unwrap().to_string();
    let customer_bootstrap = dir.join("customer.json");
    let created =
        wisp(b, &[], &["tenant", "create", "Customer", "--save-credentials", customer_bootstrap.to_str().unwrap()])
            .await;
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let c = customer_bootstrap.as_path();
    let customer = example("customer.yaml");
    let customer = customer.to_str().unwrap();
    let missing = wisp(c, &[], &["apply", "-f", customer]).await;
    assert_eq!(missing.code, Some(1));
    assert!(
        missing
            .stderr
            .contains("customer.yaml: servicePrincipals[0].appId: the environment variable VENDOR_APP_ID is not set"),
        "{}",
        missing.stderr
    );
    let env = [("VENDOR_APP_ID", vendor_app_id.as_str())];
    let applied = wisp(c, &env, &["apply", "-f", customer]).await;
    assert_eq!(applied.code, Some(0), "{}", applied.stderr);
    assert!(applied.stdout.contains(&format!("+ roleAssignment {vendor_app_id} -> orders-api/Orders.Read")));
    assert_eq!(wisp(c, &env, &["apply", "-f", customer, "--dry-run"]).await.code, Some(0));

    // Export, then apply what was exported: nothing to do.
    let exported = dir.join("exported.yaml");
    let export = wisp(b, &[], &["export", "-f", exported.to_str().unwrap()]).await;
    assert_eq!(export.code, Some(0), "{}", export.stderr);
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(text.contains("managedIdentity: sync-worker"), "{text}");
    let replay = wisp(b, &[], &["apply", "-f", exported.to_str().unwrap()]).await;
    assert_eq!((replay.code, replay.stdout.as_str()), (Some(0), "No changes: the tenant matches the file.\n"));

    // Dangling references: every one reported with its path, and nothing applied.
    let mut yaml: Value = serde_yaml_ng::from_str(&text).unwrap();
    yaml["managedIdentities"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"name": "extra", "federatedCredentials": [{"name": "bad", "managedIdentity": "ghost"}]}));
    yaml["resources"][0]["identities"] = json!(["sync-worker", "phantom"]);
    yaml["roleAssignments"].as_array_mut().unwrap().push(json!({"application": "nobody", "role": "orders/X"}));
    let dangling = dir.join("dangling.yaml");
    std::fs::write(&dangling, serde_yaml_ng::to_string(&yaml).unwrap()).unwrap();
    let refused = wisp(b, &[], &["apply", "-f", dangling.to_str().unwrap()]).await;
    assert_eq!(refused.code, Some(1), "{}", refused.stdout);
    for expected in [
        "managedIdentities[0].federatedCredentials[0].managedIdentity: no user-assigned managed identity named 'ghost'",
        "resources[0].identities[1]: no user-assigned managed identity named 'phantom'",
        "roleAssignments[1].application: no application named 'nobody'",
        "roleAssignments[1].role: no API 'orders'",
        "nothing was applied",
    ] {
        assert!(refused.stderr.contains(expected), "{expected} in: {}", refused.stderr);
    }
    let after = wisp(b, &[], &["apply", "-f", exported.to_str().unwrap(), "--dry-run"]).await;
    assert_eq!(after.code, Some(0), "the identity 'extra' was not created: {}", after.stdout);

    // A typo in a field name is reported at its path, before any request.
    let typo = dir.join("typo.yaml");
    std::fs::write(
        &typo,
        "apiVersion: wisp/v1\napplications:\n- name: a\n  federatedCredentials:\n  - name: x\n    isuer: y\n",
    )
    .unwrap();
    let run = wisp(b, &[], &["apply", "-f", typo.to_str().unwrap()]).await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("typo.yaml: applications[0].federatedCredentials[0].isuer: unknown field `isuer`"),
        "{}",
        run.stderr
    );
}

async fn plan(admin: &Admin, manifest: &Value, prune: bool) -> crate::support::Reply {
    let query = if prune { "?prune=true" } else { "" };
    admin.post(&format!("/v1.0/tenantConfiguration/plan{query}"), manifest.clone()).await
}

async fn apply(admin: &Admin, manifest: &Value, prune: bool, if_match: Option<&str>) -> crate::support::Reply {
    let query = if prune { "?prune=true" } else { "" };
    let headers: Vec<(&str, &str)> = if_match.map(|etag| vec![("if-match", etag)]).unwrap_or_default();
    admin
        .send(
            reqwest::Method::POST,
            &format!("/v1.0/tenantConfiguration/apply{query}"),
            Some(manifest.clone()),
            &headers,
        )
        .await
}

async fn app_named(admin: &Admin, name: &str) -> Option<Value> {
    let listed = admin.get(&format!("/v1.0/applications?$filter=displayName eq '{name}'")).await;
    listed.body["value"].as_array().unwrap().first().cloned()
}

#[tokio::test]
async fn apply_is_all_or_nothing_detects_concurrent_edits_and_prunes_only_what_it_created() {
    for db in test_databases().await {
        let server = spawn_on(&db).await;
        let admin = server.admin().await;
        let backend = db.backend;
        // Made by hand: apply must never delete it.
        let legacy = admin
            .post("/v1.0/applications", json!({"displayName": "legacy", "identifierUris": ["api://legacy"]}))
            .await;
        assert_eq!(legacy.status, 201);

        // A failure half-way (the second app's URI belongs to the hand-made app):
        // the first app, created earlier in the same transaction, is not there.
        let conflicting = json!({"apiVersion": "wisp/v1", "applications": [
            {"name": "first", "federatedCredentials": [{"name": "gh-main", "github": {"repository": "acme/app", "branch": "main"}}]},
            {"name": "second", "identifierUris": ["api://legacy"]},
        ]});
        assert_eq!(plan(&admin, &conflicting, false).await.status, 200, "{backend}: the plan itself is fine");
        let failed = apply(&admin, &conflicting, false, None).await;
        assert_eq!(failed.status, 400, "{backend}: {}", failed.body);
        assert_eq!(failed.body["error"]["code"], "InvalidConfiguration");
        assert_eq!(failed.body["error"]["details"][0]["target"], "applications[1]", "{backend}: {}", failed.body);
        assert!(failed.error_message().contains("api://legacy"), "{}", failed.error_message());
        assert!(app_named(&admin, "first").await.is_none(), "{backend}: nothing applied");
        let audits = admin.get("/v1.0/auditLogs/directoryAudits").await.body;
        assert!(!audits.to_string().contains("(apply)"), "{backend}: no audit record of a rolled-back apply");

        let manifest = json!({"apiVersion": "wisp/v1",
            "applications": [
                {"name": "first", "description": "one"},
                {"name": "second", "identifierUris": ["api://second"], "appRoles": [{"value": "Data.Read"}]},
            ],
            "managedIdentities": [{"name": "worker"}],
            "roleAssignments": [{"managedIdentity": "worker", "role": "api://second/Data.Read"}],
        });
        let applied = apply(&admin, &manifest, false, None).await;
        assert_eq!(applied.status, 200, "{backend}: {}", applied.body);
        assert_eq!(applied.body["changes"].as_array().unwrap().len(), 4);
        let audits = admin.get("/v1.0/auditLogs/directoryAudits").await.body;
        assert!(audits.to_string().contains("Add application (apply)"), "{backend}: audited");

        // A concurrent edit between plan and apply is detected, not overwritten.
        let edited = {
            let mut m = manifest.clone();
            m["applications"][0]["description"] = json!("two");
            m
        };
        let reviewed = plan(&admin, &edited, false).await;
        assert_eq!(reviewed.body["changes"].as_array().unwrap().len(), 1, "{}", reviewed.body);
        let etag = reviewed.etag();
        assert_eq!(etag, reviewed.body["etag"].as_str().unwrap());
        let first = app_named(&admin, "first").await.unwrap();
        let patched = admin
            .patch(&format!("/v1.0/applications/{}", first["id"].as_str().unwrap()), json!({"description": "by hand"}))
            .await;
        assert_eq!(patched.status, 204);
        let stale = apply(&admin, &edited, false, Some(&etag)).await;
        assert_eq!(stale.status, 412, "{backend}: {}", stale.body);
        assert_eq!(app_named(&admin, "first").await.unwrap()["description"], "by hand");
        let fresh = plan(&admin, &edited, false).await;
        assert_eq!(apply(&admin, &edited, false, Some(&fresh.etag())).await.status, 200);
        assert_eq!(app_named(&admin, "first").await.unwrap()["description"], "two");

        // Removing an app from the file: kept (with a note) unless --prune.
        let without_second = json!({"apiVersion": "wisp/v1",
            "applications": [{"name": "first", "description": "two"}],
            "managedIdentities": [{"name": "worker"}],
        });
        let kept = apply(&admin, &without_second, false, None).await;
        assert_eq!(kept.body["changes"], json!([]), "{backend}: {}", kept.body);
        let notes = kept.body["notes"].to_string();
        assert!(notes.contains("application 'second' was created by an earlier apply"), "{notes}");
        assert!(notes.contains("roleAssignment"), "{notes}");
        assert!(app_named(&admin, "second").await.is_some());
        let pruned = apply(&admin, &without_second, true, None).await;
        assert_eq!(pruned.status, 200, "{}", pruned.body);
        let deleted: Vec<String> = pruned.body["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{} {} {}",
                    c["action"].as_str().unwrap(),
                    c["kind"].as_str().unwrap(),
                    c["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(deleted.len(), 2, "{deleted:?}");
        assert!(deleted.contains(&"delete application second".to_string()), "{deleted:?}");
        assert!(app_named(&admin, "second").await.is_none(), "{backend}: pruned");
        assert!(app_named(&admin, "legacy").await.is_some(), "{backend}: hand-made objects are never pruned");
        assert_eq!(apply(&admin, &without_second, true, None).await.body["changes"], json!([]));

        // Read-only administrators may plan and export but not apply.
        let reader = server.admin_as_role("Directory.Read.All").await;
        assert_eq!(plan(&reader, &without_second, false).await.status, 200);
        assert_eq!(reader.get("/v1.0/tenantConfiguration").await.status, 200);
        assert_eq!(apply(&reader, &without_second, false, None).await.status, 403);
    }
}

#[tokio::test]
async fn an_exported_tenant_applies_as_a_no_op_and_applied_configuration_grants_tokens() {
    let github = FakeIssuer::start("").await;
    let server = spawn_trusting(&[&github]).await;
    let admin = server.admin().await;
    let tenant = server.tenant_id();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["client".to_string()]).unwrap().self_signed(&key).unwrap();
    let main = "repo:acme/app:ref:refs/heads/main";

    let manifest = json!({"apiVersion": "wisp/v1",
        "applications": [
            {"name": "deployer",
             "certificates": [{"certificate": cert.pem(), "displayName": "ci"}],
             "federatedCredentials": [
                {"name": "gh-main", "issuer": github.issuer, "subject": main},
                {"name": "envs", "issuer": github.issuer, "description": "any prod environment",
                 "claimsMatchingExpression": {"value": "claims['sub'] matches 'repo:acme/*:environment:prod*'", "languageVersion": 2}},
                {"name": "from-worker", "managedIdentity": "worker"},
                {"name": "from-vm", "kubernetes": {"issuer": "https://oidc.example.com/c1", "namespace": "pay", "serviceAccount": "api"}, "audience": "api://custom"},
             ]},
            {"name": "orders", "multiTenant": true, "identifierUris": ["api://orders"], "accessTokenVersion": 2,
             "appRoles": [{"value": "Orders.Read", "displayName": "Read"}, {"value": "Orders.Old", "enabled": false}]},
        ],
        "managedIdentities": [{"name": "worker", "federatedCredentials": [
            {"name": "gh-pr", "github": {"repository": "acme/app", "pullRequest": true}}]}],
        "resources": [{"name": "vm1", "systemAssigned": true, "identities": ["worker"]}],
        "roleAssignments": [
            {"application": "deployer", "role": "api://orders/Orders.Read"},
            {"resource": "vm1", "role": "orders/Orders.Read"},
            {"managedIdentity": "worker", "role": "api://wisp-admin/Application.Read.All"},
        ],
        "federatedIssuers": [{"issuer": "https://airgapped.example.com", "jwks": {"keys": [github.key().jwk]}}],
    });
    let applied = apply(&admin, &manifest, false, None).await;
    assert_eq!(applied.status, 200, "{}", applied.body);

    // The applied configuration works at the token endpoint.
    let deployer = app_named(&admin, "deployer").await.unwrap();
    let client_id = deployer["appId"].as_str().unwrap();
    let (status, body) = server
        .token_with_assertion(&tenant, client_id, &github.mint(github_claims(main)), "api://orders/.default")
        .await;
    assert_eq!(status, 200, "{body}");
    let claims = crate::support::jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["roles"], json!(["Orders.Read"]));

    // Export, then plan the export: no change. Then the export's round trip.
    let exported = admin.get("/v1.0/tenantConfiguration").await;
    assert_eq!(exported.status, 200, "{}", exported.body);
    let replay = plan(&admin, &exported.body, false).await;
    assert_eq!(replay.body["changes"], json!([]), "{}\n{}", exported.body, replay.body);
    assert_eq!(exported.body["applications"][0]["federatedCredentials"][2]["managedIdentity"], "worker");

    // Moving the credential to another branch through the file takes effect at once.
    let mut moved = manifest.clone();
    moved["applications"][0]["federatedCredentials"][0]["subject"] = json!("repo:acme/app:ref:refs/heads/release");
    let changes = plan(&admin, &moved, false).await.body["changes"].clone();
    assert_eq!(changes.as_array().unwrap().len(), 1, "{changes}");
    assert_eq!(changes[0]["fields"][0]["field"], "subject");
    assert_eq!(apply(&admin, &moved, false, None).await.status, 200);
    let (status, body) = server
        .token_with_assertion(&tenant, client_id, &github.mint(github_claims(main)), "api://orders/.default")
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error_codes"][0], 700213);

    // Removing an enabled role is refused with the rule, at its path.
    let mut dropped = moved.clone();
    dropped["applications"][1]["appRoles"] = json!([{"value": "Orders.Old", "enabled": false}]);
    let refused = plan(&admin, &dropped, false).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.body["error"]["details"][0]["target"], "applications[1].appRoles");
    assert!(refused.error_message().contains("must be disabled"), "{}", refused.error_message());
}

#[tokio::test]
async fn a_tenant_sized_file_is_accepted_beyond_the_ordinary_body_limit() {
    let server = spawn_wisp().await;
    let admin = server.admin().await;
    let applications: Vec<Value> = (0..500)
        .map(|i| {
            json!({"name": format!("service-{i:03}"), "identifierUris": [format!("api://service-{i:03}")],
                   "federatedCredentials": [{"name": "deploy", "github": {"repository": format!("acme/service-{i:03}"), "environment": "production"}}]})
        })
        .collect();
    let manifest = json!({"apiVersion": "wisp/v1", "applications": applications});
    assert!(manifest.to_string().len() > 64 * 1024, "larger than other admin requests may be");
    let applied = apply(&admin, &manifest, false, None).await;
    assert_eq!(applied.status, 200, "{}", applied.body);
    assert_eq!(applied.body["changes"].as_array().unwrap().len(), 1000);
    assert_eq!(plan(&admin, &manifest, false).await.body["changes"], json!([]));
    let too_large = json!({"apiVersion": "wisp/v1", "applications": [{"name": "x".repeat(3 * 1024 * 1024)}]});
    assert_eq!(plan(&admin, &too_large, false).await.status, 413);
}

#[test]
fn the_readme_shows_the_example_files_as_they_are() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for name in ["vendor.yaml", "customer.yaml"] {
        let file = std::fs::read_to_string(example(name)).unwrap();
        assert!(readme.contains(&format!("```yaml\n{file}```")), "README.md's copy of examples/{name} is stale");
    }
}
