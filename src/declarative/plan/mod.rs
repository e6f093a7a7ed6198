//! From a configuration file and the live tenant to a plan: the changes an
//! administrator reviews (create / update with field-level changes / delete)
//! and the store writes that perform them. Pure: no I/O, so the same function
//! plans a dry run and, inside the apply transaction, the real thing.
//!
//! Rules (README "Configuration as code"):
//! - Objects are matched by name (applications and managed identities by display
//!   name, resources by name, credentials by name on their owner, certificates by
//!   content, app roles by value, role assignments by principal + role).
//! - An object the file lists is made exactly as the file says, including its
//!   lists (identifier URIs, app roles, certificates, federated credentials).
//! - An object the file does not list is left alone, unless `wisp apply` created
//!   it and `--prune` is given; objects created by hand are never deleted.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::manifest::{
    ApplicationSpec, FederatedCredentialSpec, Manifest, Problem, RoleAssignmentSpec, ServicePrincipalSpec,
};
use crate::crypto::{parse_certificate, x5t_sha1, x5t_sha256};
use crate::directory::scenario::{self, GitHubEntity};
use crate::directory::{
    AppRole, AppRoleAssignment, Application, ClaimsExpression, ComputeResource, FederatedCredential, KeyCredentialInfo,
    MULTI_TENANT, ManagedIdentity, SINGLE_TENANT, ServicePrincipal, builtin, validation,
};
mod applications;
mod credentials;
mod grants;
mod identities;
mod issuers;
mod prune;

use crate::store::{DirectoryWrite, FicOwner, KeyCredentialChanges, TenantSnapshot, UploadedIssuer};

/// What the plan needs besides the file and the snapshot.
#[derive(Debug, Clone)]
pub struct PlanContext {
    /// This tenant's issuer (`{public_url}/{tenant}/v2.0`): managed identity credentials.
    pub own_issuer: String,
    pub public_url: String,
    pub max_fics_per_owner: usize,
    pub prune: bool,
    /// Unix seconds; the start of new certificates.
    pub now: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Create,
    Update,
    Delete,
}

/// One reviewed change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub action: Action,
    /// `application`, `federatedCredential`, `certificate`, `managedIdentity`,
    /// `resource`, `servicePrincipal`, `roleAssignment`, `federatedIssuer`.
    pub kind: &'static str,
    /// e.g. `orders`, `deployer/gh-main`, `deployer -> orders/Orders.Read`.
    pub name: String,
    /// Where the object is in the file (empty for pruned objects).
    pub path: String,
    /// Field-level changes: the new values for a create, old and new for an update.
    pub fields: Vec<FieldChange>,
    /// The live object's version, for updates and deletes of versioned objects:
    /// part of the plan's ETag, so a concurrent edit changes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Value,
    pub after: Value,
}

/// A store write with where it came from and how to audit it.
#[derive(Debug, Clone)]
pub struct PlannedWrite {
    pub write: DirectoryWrite,
    pub path: String,
    pub activity: String,
    pub target_type: &'static str,
    pub target_id: Uuid,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// Things the administrator should know that are not changes.
    pub notes: Vec<String>,
    pub writes: Vec<PlannedWrite>,
    /// Applied-object records whose objects are gone (forgotten on apply).
    pub forget: Vec<Uuid>,
}

impl Plan {
    /// A digest of the reviewed changes (with the versions they were planned
    /// against): applying with this ETag applies exactly what was reviewed.
    pub fn etag(&self) -> String {
        let bytes = serde_json::to_vec(&self.changes).expect("changes serialize");
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
        let hex: String = digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    }
}

/// Plans `manifest` against `live`. Every problem of the file is reported, each
/// with its path; nothing is planned when there is any.
pub fn plan(manifest: &Manifest, live: &TenantSnapshot, ctx: &PlanContext) -> Result<Plan, Vec<Problem>> {
    let mut planner = Planner::new(live, ctx);
    planner.check_unique_names(manifest);
    planner.resolve_names(manifest);
    planner.issuers(manifest);
    planner.identities(manifest);
    planner.applications(manifest);
    planner.federated_credentials(manifest);
    planner.resources(manifest);
    planner.service_principals(manifest);
    planner.role_assignments(manifest);
    planner.prune();
    if planner.problems.is_empty() {
        let mut plan = planner.plan;
        // Ids generated for new objects differ on every run: a reviewer sees
        // what they stand for, and the plan's ETag does not change with them.
        for change in &mut plan.changes {
            for field in &mut change.fields {
                name_fresh_ids(&mut field.after, &planner.fresh);
            }
        }
        plan.writes.sort_by_key(|w| phase(&w.write));
        Ok(plan)
    } else {
        Err(planner.problems)
    }
}

/// The order writes run in: what others refer to first; deletes of credentials
/// before creates (a credential may move between names); prunes last.
fn phase(write: &DirectoryWrite) -> u8 {
    use DirectoryWrite::*;
    match write {
        CreateIssuer(_) | UpdateIssuer { .. } => 0,
        CreateIdentity(_) => 1,
        CreateApplication { .. } | UpdateApplication { .. } => 2,
        DeleteFic { .. } => 3,
        UpdateFic { .. } => 4,
        CreateFic { .. } => 5,
        CreateResource { .. } | UpdateResource { .. } => 6,
        CreateServicePrincipal(_) => 7,
        CreateAssignment(_) => 8,
        MarkApplied { .. } => 9,
        DeleteAssignment(_) => 10,
        DeleteServicePrincipal(_) => 11,
        DeleteResource { .. } => 12,
        DeleteApplication { .. } => 13,
        DeleteIdentity(_) => 14,
        DeleteIssuer(_) => 15,
    }
}

/// An application as the file will leave it: the ids references resolve to.
#[derive(Debug, Clone)]
struct AppRef {
    app_id: Uuid,
    service_principal_id: Uuid,
    roles: Vec<AppRole>,
    identifier_uris: Vec<String>,
}

/// A role-bearing API a role assignment can point at.
#[derive(Debug, Clone)]
struct Api {
    label: String,
    service_principal_id: Option<Uuid>,
    roles: Vec<(Uuid, String, bool)>,
}

struct Planner<'a> {
    live: &'a TenantSnapshot,
    ctx: &'a PlanContext,
    problems: Vec<Problem>,
    plan: Plan,
    /// Desired applications by name (file, else live).
    apps: HashMap<String, AppRef>,
    /// Live applications by name (several when names repeat).
    live_apps: HashMap<&'a str, Vec<&'a Application>>,
    /// Desired user-assigned identities by name: (id, principal id).
    identities: HashMap<String, (Uuid, Uuid)>,
    live_identities: HashMap<&'a str, Vec<&'a ManagedIdentity>>,
    /// Desired resources by name: system-assigned principal id when it has one.
    resources: HashMap<String, Option<Uuid>>,
    /// Service principals of provisioned applications, desired: appId -> sp id.
    provisioned: HashMap<Uuid, Uuid>,
    /// Objects the file keeps (for pruning).
    kept: HashSet<Uuid>,
    /// Ids generated for new objects that reviewed fields may show, and what they are.
    fresh: HashMap<String, String>,
}

/// Replaces generated ids in a reviewed value with what they stand for.
fn name_fresh_ids(value: &mut Value, fresh: &HashMap<String, String>) {
    match value {
        Value::String(text) => {
            if let Some(label) = fresh.get(text.as_str()) {
                *text = label.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| name_fresh_ids(v, fresh)),
        Value::Object(map) => map.values_mut().for_each(|v| name_fresh_ids(v, fresh)),
        _ => {}
    }
}

/// The one live object of a name, none, or a problem when the name repeats
/// (the file could not tell which one it means).
fn only_one<'a, T>(
    candidates: Option<&Vec<&'a T>>,
    name: &str,
    path: &str,
    kind: &str,
) -> Result<Option<&'a T>, Problem> {
    match candidates.map(Vec::as_slice) {
        None | Some([]) => Ok(None),
        Some([one]) => Ok(Some(*one)),
        Some(many) => Err(problem(
            path,
            format!(
                "{} {kind} in the tenant are named '{name}'; rename all but one so the file can tell which it means",
                many.len()
            ),
        )),
    }
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem { path: path.into(), message: message.into() }
}

fn field(name: &str, before: Value, after: Value) -> FieldChange {
    FieldChange { field: name.to_string(), before, after }
}

/// Field changes between two JSON objects with the same keys.
fn diff(before: &Value, after: &Value) -> Vec<FieldChange> {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else { return Vec::new() };
    a.iter()
        .filter(|(key, value)| b.get(*key).unwrap_or(&Value::Null) != *value)
        .map(|(key, value)| field(key, b.get(key).cloned().unwrap_or(Value::Null), value.clone()))
        .collect()
}

/// The fields of a create: every non-empty one.
fn created(after: &Value) -> Vec<FieldChange> {
    let empty = |v: &Value| v.is_null() || v == &json!([]) || v == &json!({}) || v == &json!(false);
    after
        .as_object()
        .map(|o| o.iter().filter(|(_, v)| !empty(v)).map(|(k, v)| field(k, Value::Null, v.clone())).collect())
        .unwrap_or_default()
}

impl<'a> Planner<'a> {
    fn new(live: &'a TenantSnapshot, ctx: &'a PlanContext) -> Self {
        let mut live_apps: HashMap<&str, Vec<&Application>> = HashMap::new();
        for app in &live.applications {
            live_apps.entry(app.display_name.as_str()).or_default().push(app);
        }
        let mut live_identities: HashMap<&str, Vec<&ManagedIdentity>> = HashMap::new();
        for identity in live.identities.iter().filter(|i| !i.system_assigned) {
            live_identities.entry(identity.display_name.as_str()).or_default().push(identity);
        }
        Planner {
            live,
            ctx,
            problems: Vec::new(),
            plan: Plan::default(),
            apps: HashMap::new(),
            live_apps,
            identities: HashMap::new(),
            live_identities,
            resources: HashMap::new(),
            provisioned: HashMap::new(),
            kept: HashSet::new(),
            fresh: HashMap::new(),
        }
    }

    fn change(&mut self, action: Action, kind: &'static str, name: String, path: &str, fields: Vec<FieldChange>) {
        self.change_versioned(action, kind, name, path, fields, None);
    }

    fn change_versioned(
        &mut self,
        action: Action,
        kind: &'static str,
        name: String,
        path: &str,
        fields: Vec<FieldChange>,
        version: Option<i64>,
    ) {
        self.plan.changes.push(Change { action, kind, name, path: path.to_string(), fields, version });
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        write: DirectoryWrite,
        path: &str,
        activity: &str,
        target_type: &'static str,
        target_id: Uuid,
        old: Option<Value>,
        new: Option<Value>,
    ) {
        self.plan.writes.push(PlannedWrite {
            write,
            path: path.to_string(),
            activity: format!("{activity} (apply)"),
            target_type,
            target_id,
            old,
            new,
        });
    }

    fn mark_applied(&mut self, object_id: Uuid, object_type: &'static str) {
        let write =
            DirectoryWrite::MarkApplied { tenant_id: self.live.tenant_id, object_id, object_type, at: self.ctx.now };
        self.plan.writes.push(PlannedWrite {
            write,
            path: String::new(),
            activity: String::new(),
            target_type: object_type,
            target_id: object_id,
            old: None,
            new: None,
        });
    }

    fn check_unique_names(&mut self, m: &Manifest) {
        fn repeats(problems: &mut Vec<Problem>, section: &str, what: &str, names: impl Iterator<Item = String>) {
            let mut seen = HashMap::new();
            for (i, name) in names.enumerate() {
                if let Some(first) = seen.insert(name.clone(), i) {
                    problems.push(problem(
                        format!("{section}[{i}]"),
                        format!("{what} '{name}' is already defined at {section}[{first}]"),
                    ));
                }
            }
        }
        repeats(&mut self.problems, "applications", "application", m.applications.iter().map(|a| a.name.clone()));
        repeats(
            &mut self.problems,
            "managedIdentities",
            "managed identity",
            m.managed_identities.iter().map(|a| a.name.clone()),
        );
        repeats(&mut self.problems, "resources", "resource", m.resources.iter().map(|a| a.name.clone()));
        repeats(
            &mut self.problems,
            "servicePrincipals",
            "service principal",
            m.service_principals.iter().map(|a| a.app_id.to_string()),
        );
        repeats(&mut self.problems, "federatedIssuers", "issuer", m.federated_issuers.iter().map(|a| a.issuer.clone()));
    }

    /// The one live application named `name`, or a problem when several are.
    fn live_app(&mut self, name: &str, path: &str) -> Option<&'a Application> {
        let found = only_one(self.live_apps.get(name), name, path, "applications");
        self.settle(found)
    }

    fn live_identity(&mut self, name: &str, path: &str) -> Option<&'a ManagedIdentity> {
        let found = only_one(self.live_identities.get(name), name, path, "managed identities");
        self.settle(found)
    }

    fn settle<T>(&mut self, found: Result<Option<T>, Problem>) -> Option<T> {
        found.unwrap_or_else(|problem| {
            self.problems.push(problem);
            None
        })
    }

    fn home_service_principal(&self, app_id: &Uuid) -> Option<Uuid> {
        let app_id = app_id.to_string();
        self.live.service_principals.iter().find(|sp| sp.app_id == app_id).map(|sp| sp.id)
    }

    /// Fixes the ids of every named object (live, or new) before anything refers to them.
    fn resolve_names(&mut self, m: &Manifest) {
        for (i, spec) in m.managed_identities.iter().enumerate() {
            let path = format!("managedIdentities[{i}]");
            let ids = match self.live_identity(&spec.name, &path) {
                Some(live) => (live.id, live.principal_id),
                None => {
                    let principal = Uuid::new_v4();
                    let label = format!("(principal id of the new managed identity '{}')", spec.name);
                    self.fresh.insert(principal.to_string(), label);
                    (Uuid::new_v4(), principal)
                }
            };
            self.identities.insert(spec.name.clone(), ids);
        }
        for identity in self.live.identities.iter().filter(|i| !i.system_assigned) {
            if self.live_identities.get(identity.display_name.as_str()).is_some_and(|v| v.len() == 1) {
                self.identities.entry(identity.display_name.clone()).or_insert((identity.id, identity.principal_id));
            }
        }
        for (i, spec) in m.applications.iter().enumerate() {
            let path = format!("applications[{i}]");
            let reference = match self.live_app(&spec.name, &path) {
                Some(live) => AppRef {
                    app_id: live.app_id,
                    service_principal_id: self.home_service_principal(&live.app_id).unwrap_or_else(Uuid::new_v4),
                    roles: live.app_roles.clone(),
                    identifier_uris: live.identifier_uris.clone(),
                },
                None => AppRef {
                    app_id: Uuid::new_v4(),
                    service_principal_id: Uuid::new_v4(),
                    roles: Vec::new(),
                    identifier_uris: Vec::new(),
                },
            };
            self.apps.insert(spec.name.clone(), reference);
        }
        for app in &self.live.applications {
            if self.live_apps.get(app.display_name.as_str()).is_some_and(|v| v.len() == 1)
                && !self.apps.contains_key(&app.display_name)
            {
                let reference = AppRef {
                    app_id: app.app_id,
                    service_principal_id: self.home_service_principal(&app.app_id).unwrap_or_default(),
                    roles: app.app_roles.clone(),
                    identifier_uris: app.identifier_uris.clone(),
                };
                self.apps.insert(app.display_name.clone(), reference);
            }
        }
        for spec in &m.resources {
            let system = match self.live.resources.iter().find(|r| r.name == spec.name) {
                Some(live) if spec.system_assigned => Some(
                    live.system_identity_id
                        .and_then(|id| self.live.identities.iter().find(|i| i.id == id))
                        .map(|i| i.principal_id)
                        .unwrap_or_else(Uuid::new_v4),
                ),
                _ if spec.system_assigned => Some(Uuid::new_v4()),
                _ => None,
            };
            self.resources.insert(spec.name.clone(), system);
        }
        for resource in &self.live.resources {
            if !self.resources.contains_key(&resource.name) {
                let system = resource
                    .system_identity_id
                    .and_then(|id| self.live.identities.iter().find(|i| i.id == id))
                    .map(|i| i.principal_id);
                self.resources.insert(resource.name.clone(), system);
            }
        }
    }
}

/// Unix seconds as RFC 3339 (what the file carries).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}
