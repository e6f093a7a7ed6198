//! Managed identity tokens for enrolled node agents: enrollment with a one-time
//! join token, agent authentication by a signed assertion (no shared secret is
//! stored anywhere), identity selection the way Azure selects, and minting.
//!
//! An agent may get tokens only for identities attached to its resource at the
//! moment of the request; deleting the resource deletes the agent.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use uuid::Uuid;

use crate::app::App;
use crate::directory::{ComputeResource, ManagedIdentity};
use crate::federation::UnverifiedAssertion;
use crate::store::{Agent, EnrollRefusal};
use crate::token::{self, ClientAuthMethod, Grant, Issued, Refusal};

/// Longest an agent's assertion may live.
const MAX_AGENT_ASSERTION_SECS: i64 = 600;
/// Managed identity tokens live about a day, as Azure's do; the agent caches them.
pub const MANAGED_IDENTITY_TOKEN_LIFETIME_SECS: i64 = 24 * 3600 - 300;

/// Why an agent request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentRefusal {
    /// Unknown, used or expired join token.
    JoinToken(EnrollRefusal),
    /// The public key is not an EC P-256 JWK.
    BadPublicKey,
    /// The assertion did not prove an enrolled agent.
    Unauthenticated(String),
    /// No attached identity fits the request (400: clients must not retry).
    IdentityNotFound(String),
    /// The resource or another parameter is unusable.
    BadRequest(Refusal),
    Unavailable(String),
}

/// How the workload named the identity it wants.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub client_id: Option<String>,
    pub object_id: Option<String>,
    pub resource_id: Option<String>,
}

/// The audience an agent's assertion must carry.
pub fn agent_token_audience(app: &App) -> String {
    format!("{}/agent/v1/token", app.public_url)
}

/// Spends a join token and enrolls the agent's public key.
pub async fn enroll(app: &App, join_token: &str, public_key: &Jwk, now: i64) -> Result<Agent, AgentRefusal> {
    let usable = matches!(&public_key.algorithm, AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256)
        && jsonwebtoken::DecodingKey::from_jwk(public_key).is_ok();
    if !usable {
        return Err(AgentRefusal::BadPublicKey);
    }
    let hash = join_token_hash(app, join_token);
    let agent_id = Uuid::new_v4();
    let jwk = serde_json::to_string(public_key).expect("a JWK serializes");
    app.store
        .enroll_agent(&hash, &agent_id, &jwk, now)
        .await
        .map_err(|e| AgentRefusal::Unavailable(e.to_string()))?
        .map_err(AgentRefusal::JoinToken)
}

/// The stored form of a join token: a keyed hash (base64).
pub fn join_token_hash(app: &App, join_token: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(app.master_key.hash_secret(join_token.trim()))
}

/// Verifies an agent's assertion (ES256, `iss` = `sub` = agent id, our
/// audience, short-lived) and returns the agent and its resource.
pub async fn authenticate(app: &App, assertion: &str, now: i64) -> Result<(Agent, ComputeResource), AgentRefusal> {
    let refuse = |why: &str| AgentRefusal::Unauthenticated(why.to_string());
    let parsed = UnverifiedAssertion::parse(assertion).map_err(|_| refuse("the agent assertion is malformed"))?;
    let agent_id = Uuid::try_parse(&parsed.iss).map_err(|_| refuse("unknown agent"))?;
    if parsed.sub.as_deref() != Some(parsed.iss.as_str()) {
        return Err(refuse("the agent assertion's sub must equal its iss"));
    }
    let agent = app
        .store
        .agent(&agent_id)
        .await
        .map_err(|e| AgentRefusal::Unavailable(e.to_string()))?
        .ok_or_else(|| refuse("unknown or revoked agent"))?;
    let mut key: Jwk = serde_json::from_str(&agent.public_key).map_err(|_| refuse("the agent's key is unusable"))?;
    // The agent names its key by its own id.
    key.common.key_id = Some(agent.id.to_string());
    let verified = parsed.verify(&[key], now).map_err(|e| refuse(&e.to_string()))?;
    if !verified.aud.contains(&agent_token_audience(app)) {
        return Err(refuse("the agent assertion is for another audience"));
    }
    if verified.exp - now > MAX_AGENT_ASSERTION_SECS {
        return Err(refuse("the agent assertion lives too long"));
    }
    let resource = app
        .store
        .compute_resource(&agent.tenant_id, &agent.resource_id)
        .await
        .map_err(|e| AgentRefusal::Unavailable(e.to_string()))?
        .ok_or_else(|| refuse("the agent's resource was deleted"))?;
    Ok((agent, resource))
}

/// The identity a request selects among those attached to `resource` now:
/// the named one, else the system-assigned one, else the only user-assigned one.
pub async fn select_identity(
    app: &App,
    resource: &ComputeResource,
    selector: &Selector,
) -> Result<ManagedIdentity, AgentRefusal> {
    let mut attached = Vec::new();
    let ids = resource.system_identity_id.iter().chain(resource.user_assigned.iter());
    for id in ids {
        if let Some(identity) = app
            .store
            .managed_identity(&resource.tenant_id, id)
            .await
            .map_err(|e| AgentRefusal::Unavailable(e.to_string()))?
        {
            attached.push(identity);
        }
    }
    let named = |identity: &ManagedIdentity| {
        let lower = |s: &Option<String>| s.as_deref().map(str::to_ascii_lowercase);
        lower(&selector.client_id).is_none_or(|c| c == identity.client_id.to_string())
            && lower(&selector.object_id).is_none_or(|o| o == identity.principal_id.to_string())
            && selector
                .resource_id
                .as_deref()
                .is_none_or(|r| r.eq_ignore_ascii_case(&resource_path(resource, identity)))
    };
    let any_selector = selector.client_id.is_some() || selector.object_id.is_some() || selector.resource_id.is_some();
    if any_selector {
        return attached.into_iter().find(named).ok_or_else(|| {
            AgentRefusal::IdentityNotFound("The requested identity has not been assigned to this resource.".into())
        });
    }
    if let Some(system) = attached.iter().find(|i| i.system_assigned) {
        return Ok(system.clone());
    }
    match attached.len() {
        1 => Ok(attached.remove(0)),
        0 => Err(AgentRefusal::IdentityNotFound("No identity has been assigned to this resource.".into())),
        _ => Err(AgentRefusal::IdentityNotFound(
            "Several user-assigned identities are assigned to this resource; name one with client_id, object_id or msi_res_id."
                .into(),
        )),
    }
}

/// The identity's resource path (`xms_mirid`, and what `msi_res_id` names).
pub fn resource_path(resource: &ComputeResource, identity: &ManagedIdentity) -> String {
    if identity.system_assigned {
        format!("/tenants/{}/resources/{}", resource.tenant_id, resource.name)
    } else {
        format!("/tenants/{}/managedIdentities/{}", identity.tenant_id, identity.id)
    }
}

/// Mints a managed identity token for `identity` to `resource_uri`.
pub async fn issue(
    app: &App,
    resource: &ComputeResource,
    identity: &ManagedIdentity,
    resource_uri: &str,
    now: i64,
) -> Result<Issued, AgentRefusal> {
    let keys = app
        .keys
        .tenant(&identity.tenant_id)
        .await
        .map_err(|e| AgentRefusal::Unavailable(e.to_string()))?
        .ok_or_else(|| AgentRefusal::Unavailable("the tenant's keys are gone".into()))?;
    let client_sp = app
        .store
        .service_principal(&identity.tenant_id, &identity.principal_id)
        .await
        .map_err(|e| AgentRefusal::Unavailable(e.to_string()))?
        .ok_or_else(|| AgentRefusal::IdentityNotFound("The identity no longer exists.".into()))?;
    let client_id = identity.client_id.to_string();
    // IMDS takes the resource without `/.default`; some clients send it anyway.
    let resource_name = resource_uri.trim().trim_end_matches("/.default");
    let grant = Grant {
        tenant_id: identity.tenant_id,
        client_sp: &client_sp,
        client_id: &client_id,
        method: ClientAuthMethod::Assertion,
        resource: resource_name,
        lifetime: MANAGED_IDENTITY_TOKEN_LIFETIME_SECS,
        xms_mirid: Some(resource_path(resource, identity)),
    };
    token::mint(app, &keys, &grant, now).await.map_err(|refusal| match refusal {
        Refusal::Unavailable(e) => AgentRefusal::Unavailable(e),
        other => AgentRefusal::BadRequest(other),
    })
}
