//! Objects an earlier apply created that the file no longer lists: deleted
//! with `--prune`, otherwise a note. Objects created by hand are never touched.

use super::*;

impl Planner<'_> {
    /// Objects an earlier apply created that the file no longer lists.
    pub(super) fn prune(&mut self) {
        let applied = &self.live.applied;
        let live = self.live;
        let mut existing = HashSet::new();
        let mut orphans: Vec<Orphan> = Vec::new();
        for a in &live.assignments {
            existing.insert(a.id);
            if applied.contains(&a.id) && !self.kept.contains(&a.id) {
                let name = self.assignment_label(a);
                orphans.push(Orphan(
                    "roleAssignment",
                    name,
                    a.id,
                    DirectoryWrite::DeleteAssignment(a.clone()),
                    "AppRoleAssignment",
                    None,
                ));
            }
        }
        for sp in &live.service_principals {
            existing.insert(sp.id);
            if applied.contains(&sp.id) && !self.kept.contains(&sp.id) {
                orphans.push(Orphan(
                    "servicePrincipal",
                    sp.app_id.clone(),
                    sp.id,
                    DirectoryWrite::DeleteServicePrincipal(sp.clone()),
                    "ServicePrincipal",
                    None,
                ));
            }
        }
        for r in &live.resources {
            existing.insert(r.id);
            if applied.contains(&r.id) && !self.kept.contains(&r.id) {
                let system = r.system_identity_id.and_then(|id| live.identities.iter().find(|i| i.id == id)).cloned();
                let write = DirectoryWrite::DeleteResource { resource: r.clone(), system_identity: system };
                orphans.push(Orphan("resource", r.name.clone(), r.id, write, "Resource", Some(r.version)));
            }
        }
        for a in &live.applications {
            existing.insert(a.id);
            if applied.contains(&a.id) && !self.kept.contains(&a.id) {
                let write = DirectoryWrite::DeleteApplication { app: a.clone(), expected_version: Some(a.version) };
                orphans.push(Orphan(
                    "application",
                    a.display_name.clone(),
                    a.id,
                    write,
                    "Application",
                    Some(a.version),
                ));
            }
        }
        for i in live.identities.iter().filter(|i| !i.system_assigned) {
            existing.insert(i.id);
            if applied.contains(&i.id) && !self.kept.contains(&i.id) {
                let write = DirectoryWrite::DeleteIdentity(i.clone());
                orphans.push(Orphan("managedIdentity", i.display_name.clone(), i.id, write, "ManagedIdentity", None));
            }
        }
        for x in &live.issuers {
            existing.insert(x.id);
            if applied.contains(&x.id) && !self.kept.contains(&x.id) {
                let write = DirectoryWrite::DeleteIssuer(x.clone());
                orphans.push(Orphan(
                    "federatedIssuer",
                    x.issuer.clone(),
                    x.id,
                    write,
                    "FederatedIssuer",
                    Some(x.version),
                ));
            }
        }
        self.plan.forget = applied.iter().filter(|id| !existing.contains(id)).copied().collect();
        for Orphan(kind, name, id, write, target_type, version) in orphans {
            if self.ctx.prune {
                self.change_versioned(Action::Delete, kind, name.clone(), "", Vec::new(), version);
                self.write(write, "", "Delete", target_type, id, Some(json!({"name": name})), None);
                self.plan.forget.push(id);
            } else {
                self.plan.notes.push(format!(
                    "{kind} '{name}' was created by an earlier apply and is no longer in the file; --prune deletes it"
                ));
            }
        }
    }

    pub(super) fn assignment_label(&self, a: &AppRoleAssignment) -> String {
        let sp_name = |id: &Uuid| {
            self.live
                .service_principals
                .iter()
                .find(|sp| sp.id == *id)
                .map(|sp| sp.display_name.clone())
                .unwrap_or_else(|| id.to_string())
        };
        format!("{} -> {}/{}", sp_name(&a.principal_id), sp_name(&a.resource_id), a.app_role_id)
    }
}

/// An object an earlier apply created that the file no longer lists: kind,
/// name, id, its delete, audit target type, version.
struct Orphan(&'static str, String, Uuid, DirectoryWrite, &'static str, Option<i64>);
