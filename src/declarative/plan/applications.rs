//! Applications: attributes, app roles (an enabled role is disabled before it is
//! removed) and certificates (matched by content).

use super::*;

impl Planner<'_> {
    pub(super) fn applications(&mut self, m: &Manifest) {
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

    pub(super) fn desired_application(
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
            // The client id was fixed when names were resolved (references use it).
            app_id: reference.app_id,
            ..Application::new(self.live.tenant_id, spec.name.clone(), self.ctx.now)
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
    pub(super) fn desired_certificates(
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
}

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
