//! Provisioned applications of other tenants, and app role assignments.

use super::*;

impl Planner<'_> {
    pub(super) fn service_principals(&mut self, m: &Manifest) {
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
    pub(super) fn principal(&mut self, spec: &RoleAssignmentSpec, at: &str) -> Option<(Uuid, String)> {
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
    pub(super) fn api(&self, name: &str) -> Option<Api> {
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

    pub(super) fn role_assignments(&mut self, m: &Manifest) {
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
}
