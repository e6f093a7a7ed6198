//! User-assigned managed identities and compute resources with their attached identities.

use super::*;

impl Planner<'_> {
    pub(super) fn identities(&mut self, m: &Manifest) {
        for (i, spec) in m.managed_identities.iter().enumerate() {
            let path = format!("managedIdentities[{i}]");
            if let Err(e) = validation::display_name(&spec.name) {
                self.problems.push(problem(format!("{path}.name"), e));
                continue;
            }
            let Some(&(id, principal_id)) = self.identities.get(&spec.name) else { continue };
            if self.live.identities.iter().any(|x| x.id == id) {
                self.kept.insert(id);
                continue;
            }
            let identity = ManagedIdentity {
                id,
                tenant_id: self.live.tenant_id,
                system_assigned: false,
                display_name: spec.name.clone(),
                client_id: Uuid::new_v4(),
                principal_id,
                created_at: self.ctx.now,
            };
            self.change(Action::Create, "managedIdentity", spec.name.clone(), &path, Vec::new());
            let new = json!({"displayName": spec.name, "principalId": principal_id, "clientId": identity.client_id});
            self.write(
                DirectoryWrite::CreateIdentity(identity),
                &path,
                "Add managed identity",
                "ManagedIdentity",
                id,
                None,
                Some(new),
            );
            self.mark_applied(id, "managedIdentity");
        }
    }

    pub(super) fn resources(&mut self, m: &Manifest) {
        for (i, spec) in m.resources.iter().enumerate() {
            let path = format!("resources[{i}]");
            if let Err(e) = validation::resource_name(&spec.name) {
                self.problems.push(problem(format!("{path}.name"), e));
                continue;
            }
            let mut attached = Vec::new();
            for (j, name) in spec.identities.iter().enumerate() {
                match self.identities.get(name) {
                    Some(&(id, _)) if !attached.contains(&id) => attached.push(id),
                    Some(_) => self
                        .problems
                        .push(problem(format!("{path}.identities[{j}]"), format!("'{name}' is listed twice"))),
                    None => self.problems.push(problem(
                        format!("{path}.identities[{j}]"),
                        format!("no user-assigned managed identity named '{name}' in the file or the tenant"),
                    )),
                }
            }
            if attached.len() != spec.identities.len() {
                continue;
            }
            attached.sort();
            let system_principal = self.resources.get(&spec.name).copied().flatten();
            let live = self.live.resources.iter().find(|r| r.name == spec.name);
            let identity_names = |ids: &[Uuid]| -> Vec<String> {
                let mut out: Vec<String> = ids.iter().filter_map(|id| self.live_or_planned_identity_name(id)).collect();
                out.sort();
                out
            };
            let after = json!({"systemAssigned": spec.system_assigned, "identities": identity_names(&attached)});
            let before = live.map(|live| {
                let mut attached = live.user_assigned.clone();
                attached.sort();
                let before = json!({
                    "systemAssigned": live.system_identity_id.is_some(),
                    "identities": identity_names(&attached),
                });
                (attached, before)
            });
            let new_system = |tenant_id: Uuid, now: i64| ManagedIdentity {
                id: Uuid::new_v4(),
                tenant_id,
                system_assigned: true,
                display_name: spec.name.clone(),
                client_id: Uuid::new_v4(),
                principal_id: system_principal.unwrap_or_else(Uuid::new_v4),
                created_at: now,
            };
            match live {
                None => {
                    let system = spec.system_assigned.then(|| new_system(self.live.tenant_id, self.ctx.now));
                    let resource = ComputeResource {
                        id: Uuid::new_v4(),
                        tenant_id: self.live.tenant_id,
                        name: spec.name.clone(),
                        system_identity_id: system.as_ref().map(|s| s.id),
                        user_assigned: attached,
                        version: 1,
                        created_at: self.ctx.now,
                    };
                    self.change(Action::Create, "resource", spec.name.clone(), &path, created(&after));
                    let id = resource.id;
                    self.write(
                        DirectoryWrite::CreateResource { resource, system_identity: system },
                        &path,
                        "Add resource",
                        "Resource",
                        id,
                        None,
                        Some(after),
                    );
                    self.mark_applied(id, "resource");
                }
                Some(live) => {
                    self.kept.insert(live.id);
                    let (live_attached, before) = before.expect("computed for a live resource");
                    let fields = diff(&before, &after);
                    if fields.is_empty() && live_attached == attached {
                        continue;
                    }
                    let current_system =
                        live.system_identity_id.and_then(|id| self.live.identities.iter().find(|i| i.id == id));
                    let (new_system_identity, removed_system_identity) = match (spec.system_assigned, current_system) {
                        (true, None) => (Some(new_system(self.live.tenant_id, self.ctx.now)), None),
                        (false, Some(current)) => (None, Some(current.clone())),
                        _ => (None, None),
                    };
                    let resource = ComputeResource {
                        system_identity_id: match (&new_system_identity, spec.system_assigned) {
                            (Some(new), _) => Some(new.id),
                            (None, true) => live.system_identity_id,
                            (None, false) => None,
                        },
                        user_assigned: attached,
                        ..live.clone()
                    };
                    self.change_versioned(
                        Action::Update,
                        "resource",
                        spec.name.clone(),
                        &path,
                        fields,
                        Some(live.version),
                    );
                    self.write(
                        DirectoryWrite::UpdateResource {
                            resource,
                            expected_version: Some(live.version),
                            new_system_identity,
                            removed_system_identity,
                        },
                        &path,
                        "Update resource",
                        "Resource",
                        live.id,
                        Some(before),
                        Some(after),
                    );
                }
            }
        }
    }

    pub(super) fn live_or_planned_identity_name(&self, id: &Uuid) -> Option<String> {
        self.identities.iter().find(|(_, (identity, _))| identity == id).map(|(name, _)| name.clone())
    }
}
