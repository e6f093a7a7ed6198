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
    planner.prune(manifest);
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
        match self.live_apps.get(name).map(Vec::as_slice) {
            None | Some([]) => None,
            Some([one]) => Some(one),
            Some(many) => {
                self.problems.push(problem(
                    path,
                    format!(
                        "{} applications in the tenant are named '{name}'; rename all but one so the file can tell \
                         which it means",
                        many.len()
                    ),
                ));
                None
            }
        }
    }

    fn live_identity(&mut self, name: &str, path: &str) -> Option<&'a ManagedIdentity> {
        match self.live_identities.get(name).map(Vec::as_slice) {
            None | Some([]) => None,
            Some([one]) => Some(one),
            Some(many) => {
                self.problems.push(problem(
                    path,
                    format!(
                        "{} managed identities in the tenant are named '{name}'; rename all but one so the file can \
                         tell which it means",
                        many.len()
                    ),
                ));
                None
            }
        }
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

    fn issuers(&mut self, m: &Manifest) {
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

    fn identities(&mut self, m: &Manifest) {
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

    fn applications(&mut self, m: &Manifest) {
        for (i, spec) in m.applications.iter().enumerate() {
            let path = format!("applications[{i}]");
            let Some(reference) = self.apps.get(&spec.name).cloned() else { continue };
            let live = self.live.applications.iter().find(|a| a.app_id == reference.app_id);
            let problems_before = self.problems.len();
            let desired = self.desired_application(spec, &path, live, &reference);
            let certificates = self.desired_certificates(spec, &path, live);
            if self.problems.len() > problems_before {
                continue;
            }
            let (Some(desired), Some((certificate_changes, keys))) = (desired, certificates) else { continue };
            // Later references see the roles and URIs the file gives.
            if let Some(entry) = self.apps.get_mut(&spec.name) {
                entry.roles = desired.app_roles.clone();
                entry.identifier_uris = desired.identifier_uris.clone();
            }
            let after = application_fields(&desired);
            match live {
                None => {
                    self.change(Action::Create, "application", spec.name.clone(), &path, created(&after));
                    self.plan.changes.extend(certificate_changes);
                    let id = desired.id;
                    self.write(
                        DirectoryWrite::CreateApplication {
                            app: desired,
                            service_principal_id: reference.service_principal_id,
                            certificates: keys.add,
                        },
                        &path,
                        "Add application",
                        "Application",
                        id,
                        None,
                        Some(after),
                    );
                    self.mark_applied(id, "application");
                }
                Some(live) => {
                    self.kept.insert(live.id);
                    let before = application_fields(live);
                    let fields = diff(&before, &after);
                    if fields.is_empty() && certificate_changes.is_empty() {
                        continue;
                    }
                    if !fields.is_empty() {
                        self.change_versioned(
                            Action::Update,
                            "application",
                            spec.name.clone(),
                            &path,
                            fields,
                            Some(live.version),
                        );
                    }
                    self.plan.changes.extend(certificate_changes);
                    self.write(
                        DirectoryWrite::UpdateApplication { app: desired, expected_version: Some(live.version), keys },
                        &path,
                        "Update application",
                        "Application",
                        live.id,
                        Some(before),
                        Some(after),
                    );
                }
            }
        }
    }

    fn desired_application(
        &mut self,
        spec: &ApplicationSpec,
        path: &str,
        live: Option<&Application>,
        reference: &AppRef,
    ) -> Option<Application> {
        let mut ok = true;
        let mut check = |problems: &mut Vec<Problem>, at: String, result: Result<(), String>| {
            if let Err(e) = result {
                problems.push(problem(at, e));
                ok = false;
            }
        };
        check(&mut self.problems, format!("{path}.name"), validation::display_name(&spec.name));
        if let Some(description) = &spec.description
            && description.chars().count() > 1024
        {
            check(&mut self.problems, format!("{path}.description"), Err("at most 1024 characters".into()));
        }
        let mut seen = HashSet::new();
        for (j, uri) in spec.identifier_uris.iter().enumerate() {
            let at = format!("{path}.identifierUris[{j}]");
            check(&mut self.problems, at.clone(), validation::identifier_uri(uri));
            if !seen.insert(uri) {
                check(&mut self.problems, at.clone(), Err(format!("'{uri}' is listed twice")));
            }
            if builtin::by_identifier(uri).is_some() {
                check(&mut self.problems, at, Err(format!("'{uri}' is reserved for a built-in resource")));
            }
        }
        if let Some(version) = spec.access_token_version
            && !(1..=2).contains(&version)
        {
            check(&mut self.problems, format!("{path}.accessTokenVersion"), Err("must be 1 or 2".into()));
        }
        let previous = live.map(|a| a.app_roles.as_slice()).unwrap_or_default();
        let mut roles = Vec::with_capacity(spec.app_roles.len());
        let mut values = HashSet::new();
        let mut ids = HashSet::new();
        for (j, role) in spec.app_roles.iter().enumerate() {
            let at = format!("{path}.appRoles[{j}]");
            check(&mut self.problems, format!("{at}.value"), validation::app_role_value(&role.value));
            let existing = previous.iter().find(|r| r.value == role.value);
            let id = match (role.id, existing) {
                (Some(id), Some(existing)) if id != existing.id => {
                    check(
                        &mut self.problems,
                        format!("{at}.id"),
                        Err(format!(
                            "the role '{}' has id {} in the tenant; a role's id cannot change",
                            role.value, existing.id
                        )),
                    );
                    id
                }
                (Some(id), _) => id,
                (None, Some(existing)) => existing.id,
                (None, None) => Uuid::new_v4(),
            };
            if !values.insert(role.value.clone()) || !ids.insert(id) {
                check(&mut self.problems, at.clone(), Err(format!("the role '{}' is defined twice", role.value)));
            }
            roles.push(AppRole {
                id,
                value: role.value.clone(),
                display_name: role.display_name.clone().unwrap_or_default(),
                description: role.description.clone().unwrap_or_default(),
                allowed_member_types: vec!["Application".to_string()],
                is_enabled: role.enabled,
            });
        }
        for old in previous.iter().filter(|r| r.is_enabled) {
            if !roles.iter().any(|r| r.id == old.id) {
                check(
                    &mut self.problems,
                    format!("{path}.appRoles"),
                    Err(format!(
                        "the role '{}' must be disabled (enabled: false) and applied before it can be removed",
                        old.value
                    )),
                );
            }
        }
        if !ok {
            return None;
        }
        let mut app = live.cloned().unwrap_or_else(|| Application {
            id: Uuid::new_v4(),
            app_id: reference.app_id,
            tenant_id: self.live.tenant_id,
            display_name: spec.name.clone(),
            description: None,
            sign_in_audience: SINGLE_TENANT.to_string(),
            identifier_uris: Vec::new(),
            app_roles: Vec::new(),
            requested_token_version: None,
            version: 1,
            created_at: self.ctx.now,
        });
        app.description = spec.description.clone();
        app.sign_in_audience = if spec.multi_tenant { MULTI_TENANT } else { SINGLE_TENANT }.to_string();
        app.identifier_uris = spec.identifier_uris.clone();
        app.app_roles = roles;
        app.requested_token_version = spec.access_token_version;
        Some(app)
    }

    /// The certificate changes of an application, as reviewed changes and as
    /// the store's add/remove lists.
    fn desired_certificates(
        &mut self,
        spec: &ApplicationSpec,
        path: &str,
        live: Option<&Application>,
    ) -> Option<(Vec<Change>, KeyCredentialChanges)> {
        let existing: &[(KeyCredentialInfo, Vec<u8>)] =
            live.and_then(|a| self.live.certificates.get(&a.id)).map(Vec::as_slice).unwrap_or_default();
        let mut changes = Vec::new();
        let mut keys = KeyCredentialChanges::default();
        let mut wanted = HashSet::new();
        let mut ok = true;
        for (j, cert) in spec.certificates.iter().enumerate() {
            let at = format!("{path}.certificates[{j}]");
            let der = match parse_certificate(&cert.certificate) {
                Ok(der) => der,
                Err(e) => {
                    self.problems.push(problem(format!("{at}.certificate"), e));
                    ok = false;
                    continue;
                }
            };
            let thumbprint = x5t_sha256(&der);
            if !wanted.insert(thumbprint.clone()) {
                self.problems.push(problem(at, "this certificate is listed twice"));
                ok = false;
                continue;
            }
            let parse = |problems: &mut Vec<Problem>, name: &str, text: &Option<String>| -> Option<Option<i64>> {
                match text {
                    None => Some(None),
                    Some(text) => {
                        match time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
                            Ok(t) => Some(Some(t.unix_timestamp())),
                            Err(_) => {
                                problems.push(problem(
                                    format!("{at}.{name}"),
                                    format!("'{}' is not an RFC 3339 date and time", validation::shorten(text)),
                                ));
                                None
                            }
                        }
                    }
                }
            };
            let (Some(start), Some(end)) = (
                parse(&mut self.problems, "startDateTime", &cert.start_date_time),
                parse(&mut self.problems, "endDateTime", &cert.end_date_time),
            ) else {
                ok = false;
                continue;
            };
            let current = existing.iter().find(|(info, _)| info.thumbprint_sha256 == thumbprint);
            let start_at = start.or(current.map(|(c, _)| c.start_at)).unwrap_or(self.ctx.now);
            let end_at = end.or(current.map(|(c, _)| c.end_at)).unwrap_or(start_at + 365 * 86400);
            if end_at <= start_at {
                self.problems.push(problem(format!("{at}.endDateTime"), "must be after startDateTime"));
                ok = false;
                continue;
            }
            let info = KeyCredentialInfo {
                key_id: current.map(|(c, _)| c.key_id).unwrap_or_else(Uuid::new_v4),
                display_name: cert.display_name.clone(),
                thumbprint_sha1: x5t_sha1(&der),
                thumbprint_sha256: thumbprint.clone(),
                start_at,
                end_at,
            };
            let label = format!("{}/{}", spec.name, cert.display_name.clone().unwrap_or_else(|| thumbprint.clone()));
            let after = certificate_fields(&info);
            match current {
                None => {
                    changes.push(Change {
                        action: Action::Create,
                        kind: "certificate",
                        name: label,
                        path: at,
                        fields: created(&after),
                        version: None,
                    });
                    keys.add.push((info, der));
                }
                Some((live_info, _)) => {
                    let fields = diff(&certificate_fields(live_info), &after);
                    if !fields.is_empty() {
                        changes.push(Change {
                            action: Action::Update,
                            kind: "certificate",
                            name: label,
                            path: at,
                            fields,
                            version: None,
                        });
                        keys.remove.push(live_info.key_id);
                        keys.add.push((info, der));
                    }
                }
            }
        }
        for (info, _) in existing {
            if !wanted.contains(&info.thumbprint_sha256) {
                let label =
                    format!("{}/{}", spec.name, info.display_name.clone().unwrap_or(info.thumbprint_sha256.clone()));
                changes.push(Change {
                    action: Action::Delete,
                    kind: "certificate",
                    name: label,
                    path: format!("{path}.certificates"),
                    fields: Vec::new(),
                    version: None,
                });
                keys.remove.push(info.key_id);
            }
        }
        ok.then_some((changes, keys))
    }

    fn federated_credentials(&mut self, m: &Manifest) {
        for (i, spec) in m.applications.iter().enumerate() {
            let Some(reference) = self.apps.get(&spec.name) else { continue };
            let owner = match self.live.applications.iter().find(|a| a.app_id == reference.app_id) {
                Some(live) => live.id,
                None => match self.plan.writes.iter().find_map(|w| match &w.write {
                    DirectoryWrite::CreateApplication { app, .. } if app.app_id == reference.app_id => Some(app.id),
                    _ => None,
                }) {
                    Some(id) => id,
                    None => continue,
                },
            };
            let path = format!("applications[{i}]");
            self.owner_credentials(FicOwner::Application, owner, &spec.name, &path, &spec.federated_credentials);
        }
        for (i, spec) in m.managed_identities.iter().enumerate() {
            let Some(&(owner, _)) = self.identities.get(&spec.name) else { continue };
            let path = format!("managedIdentities[{i}]");
            self.owner_credentials(FicOwner::ManagedIdentity, owner, &spec.name, &path, &spec.federated_credentials);
        }
    }

    fn owner_credentials(
        &mut self,
        owner_kind: FicOwner,
        owner: Uuid,
        owner_name: &str,
        path: &str,
        specs: &[FederatedCredentialSpec],
    ) {
        let existing: &[FederatedCredential] =
            self.live.federated_credentials.get(&owner).map(Vec::as_slice).unwrap_or_default();
        if specs.len() > self.ctx.max_fics_per_owner {
            self.problems.push(problem(
                format!("{path}.federatedCredentials"),
                format!(
                    "{} credentials, but an object may have at most {} federated identity credentials",
                    specs.len(),
                    self.ctx.max_fics_per_owner
                ),
            ));
        }
        let mut names = HashMap::new();
        let mut pairs = HashMap::new();
        for (j, spec) in specs.iter().enumerate() {
            let at = format!("{path}.federatedCredentials[{j}]");
            let Some(mut fic) = self.desired_credential(spec, &at, owner) else { continue };
            if let Some(first) = names.insert(spec.name.clone(), j) {
                self.problems.push(problem(
                    format!("{at}.name"),
                    format!("'{}' is already the name of {path}.federatedCredentials[{first}]", spec.name),
                ));
                continue;
            }
            if let Some(subject) = &fic.subject
                && let Some(first) = pairs.insert((fic.issuer.clone(), subject.clone()), j)
            {
                self.problems
                    .push(problem(at, format!("{path}.federatedCredentials[{first}] has the same issuer and subject")));
                continue;
            }
            let label = format!("{owner_name}/{}", spec.name);
            let after = credential_fields(&fic);
            match existing.iter().find(|f| f.name == spec.name) {
                None => {
                    self.change(Action::Create, "federatedCredential", label, &at, created(&after));
                    let id = fic.id;
                    let write = DirectoryWrite::CreateFic {
                        owner: owner_kind,
                        tenant_id: self.live.tenant_id,
                        fic,
                        max: self.ctx.max_fics_per_owner,
                    };
                    self.write(
                        write,
                        &at,
                        "Add federated identity credential",
                        "FederatedIdentityCredential",
                        id,
                        None,
                        Some(after),
                    );
                }
                Some(live) => {
                    let before = credential_fields(live);
                    let fields = diff(&before, &after);
                    if fields.is_empty() {
                        continue;
                    }
                    fic.id = live.id;
                    fic.created_at = live.created_at;
                    self.change_versioned(
                        Action::Update,
                        "federatedCredential",
                        label,
                        &at,
                        fields,
                        Some(live.version),
                    );
                    let id = live.id;
                    let version = live.version;
                    self.write(
                        DirectoryWrite::UpdateFic { fic, expected_version: Some(version) },
                        &at,
                        "Update federated identity credential",
                        "FederatedIdentityCredential",
                        id,
                        Some(before),
                        Some(after),
                    );
                }
            }
        }
        for live in existing {
            if !specs.iter().any(|s| s.name == live.name) {
                let before = credential_fields(live);
                self.change_versioned(
                    Action::Delete,
                    "federatedCredential",
                    format!("{owner_name}/{}", live.name),
                    &format!("{path}.federatedCredentials"),
                    Vec::new(),
                    Some(live.version),
                );
                self.write(
                    DirectoryWrite::DeleteFic { fic: live.clone(), expected_version: Some(live.version) },
                    path,
                    "Delete federated identity credential",
                    "FederatedIdentityCredential",
                    live.id,
                    Some(before),
                    None,
                );
            }
        }
    }

    /// A credential as the file describes it, scenario expanded and validated.
    fn desired_credential(
        &mut self,
        spec: &FederatedCredentialSpec,
        at: &str,
        owner: Uuid,
    ) -> Option<FederatedCredential> {
        let before = self.problems.len();
        let bad = |problems: &mut Vec<Problem>, field: &str, message: String| {
            let path = if field.is_empty() { at.to_string() } else { format!("{at}.{field}") };
            problems.push(problem(path, message));
        };
        if let Err(e) = validation::fic_name(&spec.name) {
            bad(&mut self.problems, "name", e);
        }
        let scenarios = [spec.github.is_some(), spec.kubernetes.is_some(), spec.managed_identity.is_some()]
            .iter()
            .filter(|s| **s)
            .count();
        let raw = spec.issuer.is_some() || spec.subject.is_some() || spec.claims_matching_expression.is_some();
        let (issuer, subject, expression) = if scenarios + usize::from(raw) != 1 {
            bad(
                &mut self.problems,
                "",
                "give exactly one of: issuer with subject or claimsMatchingExpression, github, kubernetes, \
                 managedIdentity"
                    .into(),
            );
            return None;
        } else if let Some(github) = &spec.github {
            let entities = [
                github.branch.clone().map(GitHubEntity::Branch),
                github.environment.clone().map(GitHubEntity::Environment),
                github.tag.clone().map(GitHubEntity::Tag),
                github.pull_request.then_some(GitHubEntity::PullRequest),
            ];
            let mut given = entities.into_iter().flatten();
            let (Some(entity), None) = (given.next(), given.next()) else {
                bad(
                    &mut self.problems,
                    "github",
                    "give exactly one of branch, environment, tag, pullRequest: true".into(),
                );
                return None;
            };
            match scenario::github_subject(&github.repository, &entity) {
                Ok(subject) => (scenario::GITHUB_ISSUER.to_string(), Some(subject), None),
                Err(e) => {
                    bad(&mut self.problems, "github", e);
                    return None;
                }
            }
        } else if let Some(kubernetes) = &spec.kubernetes {
            match scenario::kubernetes_subject(&kubernetes.namespace, &kubernetes.service_account) {
                Ok(subject) => (kubernetes.issuer.clone(), Some(subject), None),
                Err(e) => {
                    bad(&mut self.problems, "kubernetes", e);
                    return None;
                }
            }
        } else if let Some(name) = &spec.managed_identity {
            match self.identities.get(name) {
                Some(&(_, principal)) => (self.ctx.own_issuer.clone(), Some(principal.to_string()), None),
                None => {
                    bad(
                        &mut self.problems,
                        "managedIdentity",
                        format!("no user-assigned managed identity named '{name}' in the file or the tenant"),
                    );
                    return None;
                }
            }
        } else {
            let Some(issuer) = spec.issuer.clone() else {
                bad(&mut self.problems, "issuer", "required with subject or claimsMatchingExpression".into());
                return None;
            };
            let expression = match &spec.claims_matching_expression {
                None => None,
                Some(e) => match crate::federation::expression::compile(&e.value, e.language_version) {
                    Ok(compiled) => Some(ClaimsExpression {
                        value: e.value.clone(),
                        language_version: e.language_version,
                        compiled,
                    }),
                    Err(err) => {
                        bad(&mut self.problems, "claimsMatchingExpression.value", err.to_string());
                        return None;
                    }
                },
            };
            if spec.subject.is_some() == expression.is_some() {
                bad(&mut self.problems, "", "give exactly one of subject and claimsMatchingExpression".into());
                return None;
            }
            (issuer, spec.subject.clone(), expression)
        };
        let issuer_field = if spec.kubernetes.is_some() { "kubernetes.issuer" } else { "issuer" };
        if let Err(e) = validation::fic_issuer(&issuer) {
            bad(&mut self.problems, issuer_field, e);
        }
        if let Some(subject) = &subject
            && let Err(e) = validation::fic_subject(subject)
        {
            bad(&mut self.problems, "subject", e);
        }
        let audiences = vec![spec.audience.clone().unwrap_or_else(|| validation::TOKEN_EXCHANGE_AUDIENCE.to_string())];
        if let Err(e) = validation::fic_audiences(&audiences) {
            bad(&mut self.problems, "audience", e);
        }
        if let Some(description) = &spec.description
            && let Err(e) = validation::fic_description(description)
        {
            bad(&mut self.problems, "description", e);
        }
        if issuer == self.ctx.own_issuer {
            let principal = subject.as_deref().and_then(|s| Uuid::try_parse(s).ok());
            let is_identity = principal.is_some_and(|p| {
                self.identities.values().any(|(_, principal)| *principal == p)
                    || self.resources.values().any(|system| *system == Some(p))
            });
            if !is_identity {
                bad(
                    &mut self.problems,
                    "subject",
                    "with this tenant as issuer, the subject must be the principal id of one of its managed \
                     identities (use managedIdentity: NAME)"
                        .into(),
                );
            }
        } else if issuer
            .strip_prefix(&format!("{}/", self.ctx.public_url))
            .and_then(|rest| rest.strip_suffix("/v2.0"))
            .and_then(crate::directory::parse_tenant_id)
            .is_some()
        {
            bad(
                &mut self.problems,
                issuer_field,
                "a managed identity used as a federated credential must be in the same tenant".into(),
            );
        }
        if self.problems.len() > before {
            return None;
        }
        Some(FederatedCredential {
            id: Uuid::new_v4(),
            owner_id: owner,
            name: spec.name.clone(),
            issuer,
            subject,
            expression,
            audiences,
            description: spec.description.clone(),
            version: 1,
            created_at: self.ctx.now,
        })
    }

    fn resources(&mut self, m: &Manifest) {
        for (i, spec) in m.resources.iter().enumerate() {
            let path = format!("resources[{i}]");
            if let Err(e) = validation::resource_name(&spec.name) {
                self.problems.push(problem(format!("{path}.name"), e));
                continue;
            }
            let mut attached = Vec::new();
            let mut names = Vec::new();
            for (j, name) in spec.identities.iter().enumerate() {
                match self.identities.get(name) {
                    Some(&(id, _)) if !attached.contains(&id) => {
                        attached.push(id);
                        names.push(name.clone());
                    }
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

    fn live_or_planned_identity_name(&self, id: &Uuid) -> Option<String> {
        self.identities.iter().find(|(_, (identity, _))| identity == id).map(|(name, _)| name.clone())
    }

    fn service_principals(&mut self, m: &Manifest) {
        for (i, ServicePrincipalSpec { app_id }) in m.service_principals.iter().enumerate() {
            let path = format!("servicePrincipals[{i}].appId");
            let text = app_id.to_string();
            if builtin::by_app_id(&text).is_some() {
                self.problems.push(problem(path, "built-in resources are present in every tenant already"));
                continue;
            }
            if self.live.applications.iter().any(|a| a.app_id == *app_id) {
                self.problems
                    .push(problem(path, "this is an application of this tenant; its service principal exists with it"));
                continue;
            }
            let Some(foreign) = self.live.foreign_applications.iter().find(|a| a.app_id == *app_id) else {
                self.problems.push(problem(path, format!("no application has the appId {app_id}")));
                continue;
            };
            if foreign.sign_in_audience != MULTI_TENANT {
                self.problems.push(problem(
                    path,
                    format!(
                        "'{}' is a single-tenant application of another tenant; its owner must make it \
                         multi-tenant before it can be provisioned here",
                        foreign.display_name
                    ),
                ));
                continue;
            }
            match self.live.service_principals.iter().find(|sp| sp.app_id == text) {
                Some(live) => {
                    self.kept.insert(live.id);
                    self.provisioned.insert(*app_id, live.id);
                }
                None => {
                    let sp = ServicePrincipal {
                        id: Uuid::new_v4(),
                        tenant_id: self.live.tenant_id,
                        app_id: text.clone(),
                        display_name: foreign.display_name.clone(),
                        principal_type: "Application".into(),
                        created_at: self.ctx.now,
                    };
                    self.provisioned.insert(*app_id, sp.id);
                    let fields = vec![field("displayName", Value::Null, json!(foreign.display_name))];
                    self.change(
                        Action::Create,
                        "servicePrincipal",
                        text.clone(),
                        &format!("servicePrincipals[{i}]"),
                        fields,
                    );
                    let id = sp.id;
                    let new = json!({"appId": text, "displayName": foreign.display_name});
                    self.write(
                        DirectoryWrite::CreateServicePrincipal(sp),
                        &format!("servicePrincipals[{i}]"),
                        "Add service principal",
                        "ServicePrincipal",
                        id,
                        None,
                        Some(new),
                    );
                    self.mark_applied(id, "servicePrincipal");
                }
            }
        }
        for sp in &self.live.service_principals {
            if let Ok(app_id) = Uuid::try_parse(&sp.app_id)
                && self.live.foreign_applications.iter().any(|a| a.app_id == app_id)
            {
                self.provisioned.entry(app_id).or_insert(sp.id);
            }
        }
    }

    /// The principal a role assignment names, as a service principal id and a label.
    fn principal(&mut self, spec: &RoleAssignmentSpec, at: &str) -> Option<(Uuid, String)> {
        let given = [
            spec.application.is_some(),
            spec.managed_identity.is_some(),
            spec.resource.is_some(),
            spec.service_principal.is_some(),
        ]
        .iter()
        .filter(|g| **g)
        .count();
        if given != 1 {
            self.problems.push(problem(
                at,
                "name the principal with exactly one of application, managedIdentity, resource, servicePrincipal",
            ));
            return None;
        }
        let found = if let Some(name) = &spec.application {
            self.apps
                .get(name)
                .map(|a| (a.service_principal_id, name.clone()))
                .ok_or_else(|| ("application", format!("no application named '{name}' in the file or the tenant")))
        } else if let Some(name) = &spec.managed_identity {
            self.identities.get(name).map(|(_, p)| (*p, name.clone())).ok_or_else(|| {
                (
                    "managedIdentity",
                    format!("no user-assigned managed identity named '{name}' in the file or the tenant"),
                )
            })
        } else if let Some(name) = &spec.resource {
            match self.resources.get(name) {
                Some(Some(principal)) => Ok((*principal, name.clone())),
                Some(None) => Err(("resource", format!("the resource '{name}' has no system-assigned identity"))),
                None => Err(("resource", format!("no resource named '{name}' in the file or the tenant"))),
            }
        } else {
            let app_id = spec.service_principal.expect("one principal is given");
            self.provisioned.get(&app_id).map(|sp| (*sp, app_id.to_string())).ok_or_else(|| {
                (
                    "servicePrincipal",
                    format!("the application {app_id} is not provisioned in this tenant (add it to servicePrincipals)"),
                )
            })
        };
        match found {
            Ok(found) => Some(found),
            Err((field, message)) => {
                self.problems.push(problem(format!("{at}.{field}"), message));
                None
            }
        }
    }

    /// The API of `API/ROLE`: an application's name, an identifier URI, or an appId.
    fn api(&self, name: &str) -> Option<Api> {
        let own = |label: &str, app: &AppRef| Api {
            label: label.to_string(),
            service_principal_id: Some(app.service_principal_id),
            roles: app.roles.iter().map(|r| (r.id, r.value.clone(), r.is_enabled)).collect(),
        };
        let builtin_api = |resource: &builtin::BuiltinResource| Api {
            label: name.to_string(),
            service_principal_id: self
                .live
                .service_principals
                .iter()
                .find(|sp| sp.app_id == resource.app_id)
                .map(|sp| sp.id),
            roles: resource
                .roles
                .iter()
                .map(|r| (Uuid::try_parse(r.id).unwrap_or_default(), r.value.to_string(), true))
                .collect(),
        };
        if let Some(app) = self.apps.get(name) {
            return Some(own(name, app));
        }
        if let Some((app_name, app)) = self.apps.iter().find(|(_, a)| a.identifier_uris.iter().any(|u| u == name)) {
            return Some(own(app_name, app));
        }
        if let Some(resource) = builtin::by_identifier(name).or_else(|| builtin::by_app_id(name)) {
            return Some(builtin_api(resource));
        }
        let app_id = Uuid::try_parse(name).ok()?;
        if let Some((app_name, app)) = self.apps.iter().find(|(_, a)| a.app_id == app_id) {
            return Some(own(app_name, app));
        }
        let foreign = self.live.foreign_applications.iter().find(|a| a.app_id == app_id)?;
        Some(Api {
            label: name.to_string(),
            service_principal_id: self.provisioned.get(&app_id).copied(),
            roles: foreign.app_roles.iter().map(|r| (r.id, r.value.clone(), r.is_enabled)).collect(),
        })
    }

    fn role_assignments(&mut self, m: &Manifest) {
        let mut seen = HashMap::new();
        for (i, spec) in m.role_assignments.iter().enumerate() {
            let at = format!("roleAssignments[{i}]");
            let principal = self.principal(spec, &at);
            let Some((api_name, value)) = spec.role.rsplit_once('/') else {
                self.problems.push(problem(format!("{at}.role"), "must be API/ROLE, e.g. orders/Orders.Read"));
                continue;
            };
            let Some(api) = self.api(api_name) else {
                self.problems.push(problem(
                    format!("{at}.role"),
                    format!(
                        "no API '{api_name}': not an application name, identifier URI or provisioned appId in the \
                         file or the tenant"
                    ),
                ));
                continue;
            };
            let Some(&(role_id, _, enabled)) = api.roles.iter().find(|(_, v, _)| v == value) else {
                self.problems
                    .push(problem(format!("{at}.role"), format!("the API '{}' has no app role '{value}'", api.label)));
                continue;
            };
            if !enabled {
                self.problems.push(problem(format!("{at}.role"), format!("the app role '{value}' is disabled")));
                continue;
            }
            let Some(resource_id) = api.service_principal_id else {
                self.problems.push(problem(
                    format!("{at}.role"),
                    format!("the API '{}' is not provisioned in this tenant", api.label),
                ));
                continue;
            };
            let Some((principal_id, principal_label)) = principal else { continue };
            if let Some(first) = seen.insert((principal_id, resource_id, role_id), i) {
                self.problems.push(problem(at, format!("the same grant as roleAssignments[{first}]")));
                continue;
            }
            let label = format!("{principal_label} -> {}/{value}", api.label);
            let live =
                self.live.assignments.iter().find(|a| {
                    a.principal_id == principal_id && a.resource_id == resource_id && a.app_role_id == role_id
                });
            match live {
                Some(live) => {
                    self.kept.insert(live.id);
                }
                None => {
                    let assignment = AppRoleAssignment {
                        id: Uuid::new_v4(),
                        tenant_id: self.live.tenant_id,
                        principal_id,
                        resource_id,
                        app_role_id: role_id,
                        created_at: self.ctx.now,
                    };
                    self.change(Action::Create, "roleAssignment", label, &at, Vec::new());
                    let id = assignment.id;
                    let new = json!({"principalId": principal_id, "resourceId": resource_id, "appRoleId": role_id});
                    self.write(
                        DirectoryWrite::CreateAssignment(assignment),
                        &at,
                        "Add app role assignment",
                        "AppRoleAssignment",
                        id,
                        None,
                        Some(new),
                    );
                    self.mark_applied(id, "roleAssignment");
                }
            }
        }
    }

    /// Objects an earlier apply created that the file no longer lists.
    fn prune(&mut self, _m: &Manifest) {
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

    fn assignment_label(&self, a: &AppRoleAssignment) -> String {
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

/// The reviewed fields of an application.
fn application_fields(app: &Application) -> Value {
    let mut uris = app.identifier_uris.clone();
    uris.sort();
    let mut roles: BTreeMap<&str, Value> = BTreeMap::new();
    for role in &app.app_roles {
        roles.insert(
            &role.value,
            json!({"displayName": role.display_name, "description": role.description, "enabled": role.is_enabled}),
        );
    }
    json!({
        "description": app.description,
        "multiTenant": app.sign_in_audience == MULTI_TENANT,
        "identifierUris": uris,
        "appRoles": roles,
        "accessTokenVersion": app.requested_token_version,
    })
}

fn certificate_fields(info: &KeyCredentialInfo) -> Value {
    json!({
        "displayName": info.display_name,
        "startDateTime": rfc3339(info.start_at),
        "endDateTime": rfc3339(info.end_at),
    })
}

fn credential_fields(fic: &FederatedCredential) -> Value {
    json!({
        "issuer": fic.issuer,
        "subject": fic.subject,
        "claimsMatchingExpression": fic.expression.as_ref().map(|e| json!({"value": e.value, "languageVersion": e.language_version})),
        "audience": fic.audiences.first(),
        "description": fic.description,
    })
}

/// Unix seconds as RFC 3339 (what the file carries).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
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
