//! Federated identity credentials of applications and managed identities:
//! scenarios expanded, validated as the admin API does, matched by name.

use super::*;

impl Planner<'_> {
    pub(super) fn federated_credentials(&mut self, m: &Manifest) {
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

    pub(super) fn owner_credentials(
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
            let live = existing.iter().find(|f| f.name == spec.name);
            if live.is_none_or(|live| credential_fields(live) != after) {
                // The admin API's advice on a credential it would write (`warnings`).
                let everything = fic
                    .expression
                    .as_ref()
                    .is_some_and(|e| crate::federation::expression::matches_everything(&e.compiled));
                for warning in validation::fic_lints(&fic.issuer, fic.subject.as_deref(), everything) {
                    self.plan.notes.push(format!("{at}: {warning}"));
                }
            }
            match live {
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
    pub(super) fn desired_credential(
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
