//! Uploaded issuer keys: created or replaced as the file gives them.

use super::*;

impl Planner<'_> {
    pub(super) fn issuers(&mut self, m: &Manifest) {
        for (i, spec) in m.federated_issuers.iter().enumerate() {
            let path = format!("federatedIssuers[{i}]");
            if let Err(e) = validation::fic_issuer(&spec.issuer) {
                self.problems.push(problem(format!("{path}.issuer"), e));
                continue;
            }
            if let Err(e) = crate::federation::issuer::parse_uploaded_jwks(&spec.jwks) {
                self.problems.push(problem(format!("{path}.jwks"), e));
                continue;
            }
            let jwks = spec.jwks.to_string();
            let live = self.live.issuers.iter().find(|x| x.issuer == spec.issuer);
            match live {
                Some(live) => {
                    self.kept.insert(live.id);
                    let same = serde_json::from_str::<Value>(&live.jwks).is_ok_and(|v| v == spec.jwks);
                    if !same {
                        let after = UploadedIssuer { jwks, ..live.clone() };
                        let fields = vec![field("jwks", json!(key_ids(&live.jwks)), json!(key_ids(&after.jwks)))];
                        self.change_versioned(
                            Action::Update,
                            "federatedIssuer",
                            spec.issuer.clone(),
                            &path,
                            fields,
                            Some(live.version),
                        );
                        let id = live.id;
                        self.write(
                            DirectoryWrite::UpdateIssuer { issuer: after, expected_version: Some(live.version) },
                            &path,
                            "Update federated issuer",
                            "FederatedIssuer",
                            id,
                            None,
                            Some(json!({"issuer": spec.issuer})),
                        );
                    }
                }
                None => {
                    let issuer = UploadedIssuer {
                        id: Uuid::new_v4(),
                        tenant_id: self.live.tenant_id,
                        issuer: spec.issuer.clone(),
                        jwks,
                        version: 1,
                        created_at: self.ctx.now,
                    };
                    let fields = vec![field("keys", Value::Null, json!(key_ids(&issuer.jwks)))];
                    self.change(Action::Create, "federatedIssuer", spec.issuer.clone(), &path, fields);
                    let id = issuer.id;
                    self.write(
                        DirectoryWrite::CreateIssuer(issuer),
                        &path,
                        "Add federated issuer",
                        "FederatedIssuer",
                        id,
                        None,
                        Some(json!({"issuer": spec.issuer})),
                    );
                    self.mark_applied(id, "federatedIssuer");
                }
            }
        }
    }
}

/// The key ids of a JWKS, to show which keys change without printing them.
fn key_ids(jwks: &str) -> Vec<String> {
    serde_json::from_str::<Value>(jwks)
        .ok()
        .and_then(|v| v["keys"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|k| k["kid"].as_str().unwrap_or("(no kid)").to_string())
        .collect()
}
