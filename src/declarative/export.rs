//! The live tenant written as a configuration file. Applying the result to the
//! same tenant plans no change (tested).

use std::collections::HashMap;

use base64::Engine;
use uuid::Uuid;

use super::manifest::{
    API_VERSION, AppRoleSpec, ApplicationSpec, CertificateSpec, ExpressionSpec, FederatedCredentialSpec, IdentitySpec,
    IssuerSpec, Manifest, Problem, ResourceSpec, RoleAssignmentSpec, ServicePrincipalSpec,
};
use super::plan::rfc3339;
use crate::directory::{FederatedCredential, MULTI_TENANT, builtin, validation};
use crate::store::TenantSnapshot;

/// Writes `live` as a manifest. Fails when names repeat, since the file refers
/// to objects by name.
pub fn export(live: &TenantSnapshot, own_issuer: &str) -> Result<Manifest, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut repeated = |kind: &str, names: Vec<&str>| {
        let mut count: HashMap<&str, usize> = HashMap::new();
        for name in names {
            *count.entry(name).or_default() += 1;
        }
        let mut twice: Vec<_> = count.into_iter().filter(|(_, n)| *n > 1).map(|(name, _)| name).collect();
        twice.sort();
        for name in twice {
            problems.push(Problem {
                path: String::new(),
                message: format!("several {kind} are named '{name}'; rename them to export the tenant"),
            });
        }
    };
    repeated("applications", live.applications.iter().map(|a| a.display_name.as_str()).collect());
    repeated(
        "managed identities",
        live.identities.iter().filter(|i| !i.system_assigned).map(|i| i.display_name.as_str()).collect(),
    );
    if !problems.is_empty() {
        return Err(problems);
    }

    let identity_by_principal: HashMap<Uuid, &str> = live
        .identities
        .iter()
        .filter(|i| !i.system_assigned)
        .map(|i| (i.principal_id, i.display_name.as_str()))
        .collect();
    let credentials = |owner: &Uuid| -> Vec<FederatedCredentialSpec> {
        live.federated_credentials
            .get(owner)
            .map(|fics| fics.iter().map(|f| credential(f, own_issuer, &identity_by_principal)).collect())
            .unwrap_or_default()
    };

    let applications = live
        .applications
        .iter()
        .map(|app| ApplicationSpec {
            name: app.display_name.clone(),
            description: app.description.clone(),
            multi_tenant: app.sign_in_audience == MULTI_TENANT,
            identifier_uris: app.identifier_uris.clone(),
            app_roles: app
                .app_roles
                .iter()
                .map(|r| AppRoleSpec {
                    value: r.value.clone(),
                    id: None,
                    display_name: (!r.display_name.is_empty()).then(|| r.display_name.clone()),
                    description: (!r.description.is_empty()).then(|| r.description.clone()),
                    enabled: r.is_enabled,
                })
                .collect(),
            access_token_version: app.requested_token_version,
            certificates: live
                .certificates
                .get(&app.id)
                .map(|certs| {
                    certs
                        .iter()
                        .map(|(info, der)| CertificateSpec {
                            certificate: pem(der),
                            display_name: info.display_name.clone(),
                            start_date_time: Some(rfc3339(info.start_at)),
                            end_date_time: Some(rfc3339(info.end_at)),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            federated_credentials: credentials(&app.id),
        })
        .collect();

    let managed_identities = live
        .identities
        .iter()
        .filter(|i| !i.system_assigned)
        .map(|i| IdentitySpec { name: i.display_name.clone(), federated_credentials: credentials(&i.id) })
        .collect();

    let identity_names: HashMap<Uuid, &str> =
        live.identities.iter().filter(|i| !i.system_assigned).map(|i| (i.id, i.display_name.as_str())).collect();
    let resources = live
        .resources
        .iter()
        .map(|r| {
            let mut identities: Vec<String> =
                r.user_assigned.iter().filter_map(|id| identity_names.get(id).map(|n| n.to_string())).collect();
            identities.sort();
            ResourceSpec { name: r.name.clone(), system_assigned: r.system_identity_id.is_some(), identities }
        })
        .collect();

    let own_app_ids: HashMap<String, &str> =
        live.applications.iter().map(|a| (a.app_id.to_string(), a.display_name.as_str())).collect();
    let foreign: HashMap<String, &crate::directory::Application> =
        live.foreign_applications.iter().map(|a| (a.app_id.to_string(), a)).collect();
    let mut service_principals: Vec<ServicePrincipalSpec> = live
        .service_principals
        .iter()
        .filter(|sp| foreign.contains_key(&sp.app_id))
        .filter_map(|sp| Uuid::try_parse(&sp.app_id).ok())
        .map(|app_id| ServicePrincipalSpec { app_id })
        .collect();
    service_principals.sort_by_key(|s| s.app_id);

    let system_owner: HashMap<Uuid, &str> = live
        .resources
        .iter()
        .filter_map(|r| {
            let identity = live.identities.iter().find(|i| Some(i.id) == r.system_identity_id)?;
            Some((identity.principal_id, r.name.as_str()))
        })
        .collect();
    let mut role_assignments = Vec::new();
    for a in &live.assignments {
        let Some(principal) = live.service_principals.iter().find(|sp| sp.id == a.principal_id) else { continue };
        let Some(resource) = live.service_principals.iter().find(|sp| sp.id == a.resource_id) else { continue };
        let mut spec = RoleAssignmentSpec {
            application: None,
            managed_identity: None,
            resource: None,
            service_principal: None,
            role: String::new(),
        };
        if let Some(name) = own_app_ids.get(&principal.app_id) {
            spec.application = Some(name.to_string());
        } else if let Some(name) = identity_by_principal.get(&principal.id) {
            spec.managed_identity = Some(name.to_string());
        } else if let Some(name) = system_owner.get(&principal.id) {
            spec.resource = Some(name.to_string());
        } else if let Ok(app_id) = Uuid::try_parse(&principal.app_id)
            && foreign.contains_key(&principal.app_id)
        {
            spec.service_principal = Some(app_id);
        } else {
            continue;
        }
        let role_id = a.app_role_id.to_string();
        let (api, role) = if let Some(name) = own_app_ids.get(&resource.app_id) {
            let app = live.applications.iter().find(|x| x.app_id.to_string() == resource.app_id);
            (
                name.to_string(),
                app.and_then(|x| x.app_roles.iter().find(|r| r.id == a.app_role_id)).map(|r| r.value.clone()),
            )
        } else if let Some(builtin) = builtin::by_app_id(&resource.app_id) {
            let role = builtin.roles.iter().find(|r| r.id == role_id).map(|r| r.value.to_string());
            (builtin.identifier_uris.first().copied().unwrap_or(builtin.app_id).to_string(), role)
        } else if let Some(app) = foreign.get(&resource.app_id) {
            (resource.app_id.clone(), app.app_roles.iter().find(|r| r.id == a.app_role_id).map(|r| r.value.clone()))
        } else {
            continue;
        };
        let Some(role) = role else { continue };
        spec.role = format!("{api}/{role}");
        role_assignments.push(spec);
    }
    role_assignments.sort_by(|a, b| {
        let key = |s: &RoleAssignmentSpec| {
            (
                s.application.clone().or(s.managed_identity.clone()).or(s.resource.clone()).unwrap_or_default(),
                s.service_principal,
                s.role.clone(),
            )
        };
        key(a).cmp(&key(b))
    });

    let federated_issuers = live
        .issuers
        .iter()
        .map(|x| IssuerSpec {
            issuer: x.issuer.clone(),
            jwks: serde_json::from_str(&x.jwks).unwrap_or(serde_json::Value::Null),
        })
        .collect();

    Ok(Manifest {
        api_version: API_VERSION.to_string(),
        applications,
        managed_identities,
        resources,
        service_principals,
        role_assignments,
        federated_issuers,
    })
}

/// A credential in the file's words: a user-assigned identity of this tenant by
/// name, anything else as issuer and subject (or expression).
fn credential(
    fic: &FederatedCredential,
    own_issuer: &str,
    identities: &HashMap<Uuid, &str>,
) -> FederatedCredentialSpec {
    let audience = fic.audiences.first().filter(|a| *a != validation::TOKEN_EXCHANGE_AUDIENCE).cloned();
    let identity = (fic.issuer == own_issuer)
        .then(|| fic.subject.as_deref().and_then(|s| Uuid::try_parse(s).ok()))
        .flatten()
        .and_then(|principal| identities.get(&principal));
    let mut spec = FederatedCredentialSpec {
        name: fic.name.clone(),
        issuer: None,
        subject: None,
        claims_matching_expression: None,
        github: None,
        kubernetes: None,
        managed_identity: None,
        audience,
        description: fic.description.clone(),
    };
    match identity {
        Some(name) => spec.managed_identity = Some(name.to_string()),
        None => {
            spec.issuer = Some(fic.issuer.clone());
            spec.subject = fic.subject.clone();
            spec.claims_matching_expression = fic
                .expression
                .as_ref()
                .map(|e| ExpressionSpec { value: e.value.clone(), language_version: e.language_version });
        }
    }
    spec
}

fn pem(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
