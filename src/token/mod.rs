//! Minting wisp's access tokens: the client-credentials grant, from a parsed
//! request to a signed token or a precise refusal. No HTTP here — `http::token`
//! turns requests into [`TokenRequest`]s and [`Refusal`]s into Entra errors.
//!
//! Journey: [`issue`] → resolve tenant keys → find the client application and its
//! service principal in this tenant → authenticate it → resolve the resource and
//! its service principal → collect granted roles → build claims → sign.

pub mod claims;
pub mod request;
pub mod verify;

use std::sync::Arc;

use uuid::Uuid;

use crate::app::App;
use crate::crypto::random_bytes;
use crate::directory::{Application, ManagedIdentity, ServicePrincipal, builtin};
use crate::federation::matching::{self, NoMatch};
use crate::federation::{AssertionError, UnverifiedAssertion};
use crate::signin::SignInRecord;
use crate::signing::TenantKeys;
pub use claims::{AccessTokenClaims, ClientAuthMethod};
pub use request::{JWT_BEARER, TokenRequest};

/// Every reason a token request is refused. `http::token` maps each to its
/// AADSTS code, OAuth error and status; the message never reveals directory
/// configuration beyond what Entra reveals (no other credentials' subjects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A required parameter is missing.
    MissingParameter(&'static str),
    /// A parameter is present but unusable (repeated, empty, not a GUID, …).
    InvalidParameter(&'static str, String),
    UnsupportedGrantType(String),
    /// The scope lacks the `/.default` suffix client credentials require.
    ScopeWithoutDefault(String),
    /// Several scopes, or an empty one.
    InvalidScope(String),
    TenantNotFound(String),
    /// No such application, or not provisioned in this tenant.
    UnknownClient {
        client_id: String,
        tenant: String,
    },
    /// Neither a secret nor an assertion.
    NoClientCredential,
    /// Both a secret and an assertion, or a body secret and Basic auth that disagree.
    ConflictingClientCredentials,
    InvalidSecret {
        client_id: String,
    },
    /// An assertion whose type is not RFC 7523's JWT bearer.
    UnsupportedAssertionType(String),
    /// The client assertion is not a JWT wisp can read.
    MalformedAssertion,
    /// Bad signature, unknown key, or a refused algorithm.
    AssertionSignature(String),
    /// Outside `nbf`..`exp` (with skew), or no `exp` at all.
    AssertionTimeRange {
        now: i64,
        not_before: Option<i64>,
        expires: Option<i64>,
    },
    /// The issuer's discovery document or keys could not be had.
    IssuerUnavailable {
        issuer: String,
        reason: String,
    },
    /// The client has no federated identity credentials at all.
    NoFederatedCredentials {
        client_id: String,
    },
    /// No credential trusts the assertion's issuer.
    NoMatchingIssuer {
        issuer: String,
    },
    /// The issuer is trusted, but not for the assertion's audience.
    NoMatchingAudience {
        audience: String,
    },
    /// Issuer and audience fit; the subject does not.
    NoMatchingSubject {
        subject: String,
    },
    /// …and differs from a credential's subject only by case.
    SubjectCaseMismatch {
        subject: String,
    },
    /// A certificate assertion names a certificate the application does not have.
    CertificateNotRegistered {
        client_id: String,
    },
    /// A certificate assertion for another token endpoint.
    CertificateAudience {
        audience: String,
    },
    /// A managed identity as a credential must be user-assigned (Entra's rule).
    SystemAssignedIdentityAsCredential,
    UnknownResource {
        resource: String,
        tenant: String,
    },
    /// wisp itself failed (database unreachable, …); the caller may retry.
    Unavailable(String),
}

/// A successfully issued token.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub expires_in: i64,
    pub claims: AccessTokenClaims,
}

/// Which endpoint shape the request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/{tenant}/oauth2/v2.0/token`, `scope={resource}/.default`.
    V2,
    /// `/{tenant}/oauth2/token`, `resource={resource}`.
    V1,
}

/// Handles a client-credentials request for `tenant` (the path segment).
/// `basic` carries `Authorization: Basic` credentials when sent.
/// `record` is filled in as the request is understood, for the sign-in log.
pub async fn issue(
    app: &App,
    tenant: &str,
    endpoint: Endpoint,
    request: &TokenRequest,
    basic: Option<(String, String)>,
    now: i64,
    record: &mut SignInRecord,
) -> Result<Issued, Refusal> {
    let tenant_id = crate::directory::parse_tenant_id(tenant).ok_or_else(|| Refusal::TenantNotFound(tenant.into()))?;
    let keys = app
        .keys
        .tenant(&tenant_id)
        .await
        .map_err(|e| Refusal::Unavailable(e.to_string()))?
        .ok_or_else(|| Refusal::TenantNotFound(tenant.into()))?;
    record.tenant_id = tenant_id.to_string();

    let exchange = match request.grant_type.as_deref() {
        Some("client_credentials") => false,
        Some(request::TOKEN_EXCHANGE) => true,
        Some("") | None => return Err(Refusal::MissingParameter("grant_type")),
        Some(other) => return Err(Refusal::UnsupportedGrantType(other.to_string())),
    };
    let resource = if exchange { exchange_target(request)? } else { requested_resource(endpoint, request)? };
    record.resource = Some(resource.clone());

    // The client: body client_id, or the Basic user name; both must agree.
    let (basic_id, basic_secret) = match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (None, None),
    };
    let client_id = match (request.client_id.as_deref(), basic_id.as_deref()) {
        (Some(body), Some(header)) if body != header => {
            return Err(Refusal::ConflictingClientCredentials);
        }
        (Some(id), _) | (None, Some(id)) => id.to_string(),
        (None, None) => return Err(Refusal::MissingParameter("client_id")),
    };
    record.client_id = Some(client_id.clone());
    let unknown_client = || Refusal::UnknownClient { client_id: client_id.clone(), tenant: tenant.to_string() };
    if Uuid::try_parse(&client_id).is_err() {
        return Err(unknown_client());
    }
    let unavailable = |e: crate::store::StoreError| Refusal::Unavailable(e.to_string());
    let client = match app.directory.application_by_app_id(&client_id).await.map_err(unavailable)? {
        Some(application) => Client::Application(application),
        None => match app.directory.managed_identity_by_client_id(&client_id).await.map_err(unavailable)? {
            Some(identity) if identity.tenant_id == tenant_id => Client::Identity(identity),
            _ => return Err(unknown_client()),
        },
    };
    let client_sp = app
        .directory
        .service_principal_by_app_id(&tenant_id, &client_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(unknown_client)?;
    record.service_principal_id = Some(client_sp.id.to_string());

    let method = if exchange {
        exchange_subject_token(app, &client, request, now, record).await?
    } else {
        authenticate(app, &client, &tenant_id, request, basic_secret.as_deref(), now, record).await?
    };

    mint(
        app,
        &keys,
        &Grant {
            tenant_id,
            client_sp: &client_sp,
            client_id: &client_id,
            method,
            resource: &resource,
            lifetime: app.access_token_lifetime,
            xms_mirid: None,
        },
        now,
    )
    .await
}

/// What a token is being minted for: who, how they proved it, for what.
pub struct Grant<'a> {
    pub tenant_id: Uuid,
    /// The client's service principal in `tenant_id`: `oid`/`sub`, and whose roles count.
    pub client_sp: &'a ServicePrincipal,
    pub client_id: &'a str,
    pub method: ClientAuthMethod,
    /// The resource as requested (identifier URI or appId, without `/.default`).
    pub resource: &'a str,
    pub lifetime: i64,
    /// Managed identity tokens: the identity's resource path.
    pub xms_mirid: Option<String>,
}

/// Resolves the resource, collects the client's roles on it and signs the token.
pub async fn mint(app: &App, keys: &TenantKeys, grant: &Grant<'_>, now: i64) -> Result<Issued, Refusal> {
    let tenant_id = grant.tenant_id;
    let unavailable = |e: crate::store::StoreError| Refusal::Unavailable(e.to_string());
    let unknown_resource =
        || Refusal::UnknownResource { resource: grant.resource.to_string(), tenant: tenant_id.to_string() };
    let resolved = resolve_resource(app, &tenant_id, grant.resource).await?;
    let resource_sp = app
        .directory
        .service_principal_by_app_id(&tenant_id, &resolved.app_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(unknown_resource)?;
    let granted = app.directory.assigned_role_ids(&grant.client_sp.id, &resource_sp.id).await.map_err(unavailable)?;
    let mut roles: Vec<String> = granted
        .iter()
        .filter_map(|id| resolved.roles.iter().find(|(rid, _)| rid == id).map(|(_, v)| v.clone()))
        .collect();
    roles.sort();
    roles.dedup();

    let v1 = resolved.version == 1;
    let client_id = grant.client_id.to_string();
    let aud = match (&resolved.audience, v1) {
        (Some(audience), _) => audience.clone(),
        (None, true) => grant.resource.to_string(),
        (None, false) => resolved.app_id.clone(),
    };
    let claims = AccessTokenClaims {
        aud,
        iss: if v1 { format!("{}/{}/", app.public_url, tenant_id) } else { app.keys.issuer(&tenant_id) },
        iat: now,
        nbf: now,
        exp: now + grant.lifetime,
        azp: (!v1).then(|| client_id.clone()),
        azpacr: (!v1).then(|| grant.method.acr().to_string()),
        appid: v1.then(|| client_id.clone()),
        appidacr: v1.then(|| grant.method.acr().to_string()),
        idtyp: "app".into(),
        oid: grant.client_sp.id.to_string(),
        sub: grant.client_sp.id.to_string(),
        tid: tenant_id.to_string(),
        roles,
        uti: {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<16>())
        },
        ver: if v1 { "1.0".into() } else { "2.0".into() },
        xms_mirid: grant.xms_mirid.clone(),
    };
    let access_token = keys.current.sign_jwt(&claims, v1);
    Ok(Issued { access_token, expires_in: grant.lifetime, claims })
}

/// The resource named by `scope` (v2, must end in `/.default`) or `resource` (v1).
fn requested_resource(endpoint: Endpoint, request: &TokenRequest) -> Result<String, Refusal> {
    match endpoint {
        Endpoint::V2 => {
            let scope = request.scope.as_deref().ok_or(Refusal::MissingParameter("scope"))?.trim();
            if scope.is_empty() || scope.split_whitespace().count() != 1 {
                return Err(Refusal::InvalidScope(scope.to_string()));
            }
            match scope.strip_suffix("/.default") {
                Some(resource) if !resource.is_empty() => Ok(resource.to_string()),
                _ => Err(Refusal::ScopeWithoutDefault(scope.to_string())),
            }
        }
        Endpoint::V1 => {
            let resource = request.resource.as_deref().ok_or(Refusal::MissingParameter("resource"))?.trim();
            if resource.is_empty() {
                return Err(Refusal::MissingParameter("resource"));
            }
            Ok(resource.to_string())
        }
    }
}

/// The target of an RFC 8693 exchange: `scope` (with or without `/.default`),
/// else `resource`, else `audience`.
fn exchange_target(request: &TokenRequest) -> Result<String, Refusal> {
    let target = request
        .scope
        .as_deref()
        .map(|s| s.trim().trim_end_matches("/.default").to_string())
        .or_else(|| request.resource.clone())
        .or_else(|| request.audience.clone())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or(Refusal::MissingParameter("scope"))?;
    if target.split_whitespace().count() != 1 {
        return Err(Refusal::InvalidScope(target));
    }
    if request.requested_token_type.as_deref().is_some_and(|t| t != request::ACCESS_TOKEN_TYPE) {
        return Err(Refusal::InvalidParameter("requested_token_type", "Only access tokens are issued.".into()));
    }
    Ok(target)
}

/// RFC 8693: the subject token is judged by the client's federated identity
/// credentials, exactly like a client assertion.
async fn exchange_subject_token(
    app: &App,
    client: &Client,
    request: &TokenRequest,
    now: i64,
    record: &mut SignInRecord,
) -> Result<ClientAuthMethod, Refusal> {
    let token = request.subject_token.as_deref().ok_or(Refusal::MissingParameter("subject_token"))?;
    match request.subject_token_type.as_deref() {
        Some(kind) if request::JWT_TOKEN_TYPES.contains(&kind) => {}
        None => return Err(Refusal::MissingParameter("subject_token_type")),
        Some(other) => {
            return Err(Refusal::InvalidParameter(
                "subject_token_type",
                format!("'{}' is not supported; use urn:ietf:params:oauth:token-type:jwt.", validation_short(other)),
            ));
        }
    }
    if request.client_secret.is_some() || request.client_assertion.is_some() {
        return Err(Refusal::ConflictingClientCredentials);
    }
    let parsed = UnverifiedAssertion::parse(token).map_err(|_| Refusal::MalformedAssertion)?;
    record.assertion_issuer = Some(parsed.iss.clone());
    record.assertion_subject = parsed.sub.clone();
    record.assertion_jti = parsed.jti.clone();
    federated_assertion(app, client, &parsed, now, record).await
}

fn validation_short(text: &str) -> String {
    crate::directory::validation::shorten(text)
}

/// The client a request names: an application, or a user-assigned managed
/// identity acting through its own federated credentials.
enum Client {
    Application(Arc<Application>),
    Identity(Arc<ManagedIdentity>),
}

impl Client {
    /// The object whose federated credentials apply.
    fn owner_id(&self) -> Uuid {
        match self {
            Client::Application(a) => a.id,
            Client::Identity(i) => i.id,
        }
    }

    /// The tenant whose directory holds the client's credentials.
    fn home_tenant(&self) -> Uuid {
        match self {
            Client::Application(a) => a.tenant_id,
            Client::Identity(i) => i.tenant_id,
        }
    }

    fn client_id(&self) -> String {
        match self {
            Client::Application(a) => a.app_id.to_string(),
            Client::Identity(i) => i.client_id.to_string(),
        }
    }
}

/// Checks the client's credential; returns how it authenticated.
async fn authenticate(
    app: &App,
    client: &Client,
    tenant_id: &Uuid,
    request: &TokenRequest,
    basic_secret: Option<&str>,
    now: i64,
    record: &mut SignInRecord,
) -> Result<ClientAuthMethod, Refusal> {
    let secret = match (request.client_secret.as_deref(), basic_secret) {
        (Some(_), Some(_)) => return Err(Refusal::ConflictingClientCredentials),
        (Some(s), None) | (None, Some(s)) => Some(s),
        (None, None) => None,
    };
    match (secret, request.client_assertion.as_deref()) {
        (Some(_), Some(_)) => Err(Refusal::ConflictingClientCredentials),
        (None, None) => Err(Refusal::NoClientCredential),
        (Some(secret), None) => {
            record.credential_type = Some("clientSecret");
            let Client::Application(application) = client else {
                return Err(Refusal::InvalidSecret { client_id: client.client_id() });
            };
            let stored = app
                .directory
                .password_credentials(&application.id)
                .await
                .map_err(|e| Refusal::Unavailable(e.to_string()))?;
            // Check every credential (no early exit), so timing does not reveal
            // which one, if any, matched.
            let matched = stored.iter().fold(None, |found, cred| {
                let valid_now = cred.start_at <= now && now < cred.end_at;
                if app.master_key.verify_secret(secret, &cred.secret_hash) && valid_now {
                    Some(&cred.key_id)
                } else {
                    found
                }
            });
            match matched {
                Some(key_id) => {
                    record.credential_id = Some(key_id.clone());
                    Ok(ClientAuthMethod::Secret)
                }
                None => Err(Refusal::InvalidSecret { client_id: client.client_id() }),
            }
        }
        (None, Some(assertion)) => {
            match request.client_assertion_type.as_deref() {
                Some(JWT_BEARER) => {}
                None => return Err(Refusal::MissingParameter("client_assertion_type")),
                Some(other) => return Err(Refusal::UnsupportedAssertionType(other.to_string())),
            }
            let parsed = UnverifiedAssertion::parse(assertion).map_err(|_| Refusal::MalformedAssertion)?;
            // What the caller presented, recorded before verification: it is
            // what an administrator needs to see when the request fails.
            record.assertion_issuer = Some(parsed.iss.clone());
            record.assertion_subject = parsed.sub.clone();
            record.assertion_jti = parsed.jti.clone();
            let client_id = client.client_id();
            let self_signed = parsed.iss == client_id && parsed.sub.as_deref() == Some(client_id.as_str());
            match client {
                Client::Application(application) if self_signed => {
                    certificate_assertion(app, application, tenant_id, &parsed, now, record).await
                }
                _ => federated_assertion(app, client, &parsed, now, record).await,
            }
        }
    }
}

/// A client assertion signed by one of the application's own certificates:
/// `iss` = `sub` = client id, `aud` = this tenant's token endpoint, the key
/// named by `x5t` or `x5t#S256`.
async fn certificate_assertion(
    app: &App,
    application: &Application,
    tenant_id: &Uuid,
    assertion: &UnverifiedAssertion<'_>,
    now: i64,
    record: &mut SignInRecord,
) -> Result<ClientAuthMethod, Refusal> {
    record.credential_type = Some("certificate");
    let not_registered = || Refusal::CertificateNotRegistered { client_id: application.app_id.to_string() };
    let (x5t, x5t_s256) = assertion.thumbprints();
    if x5t.is_none() && x5t_s256.is_none() {
        return Err(not_registered());
    }
    let certificates = app
        .directory
        .key_credential_certificates(&application.id)
        .await
        .map_err(|e| Refusal::Unavailable(e.to_string()))?;
    let (info, der) = certificates
        .iter()
        .find(|(info, _)| {
            x5t.as_deref() == Some(info.thumbprint_sha1.as_str())
                || x5t_s256.as_deref() == Some(info.thumbprint_sha256.as_str())
        })
        .ok_or_else(not_registered)?;
    record.credential_id = Some(info.key_id.to_string());
    if !(info.start_at <= now && now < info.end_at) {
        return Err(not_registered());
    }
    assertion.verify_with_certificate(der, now).map_err(|e| assertion_refusal(e, assertion, now))?;
    let endpoints = [
        format!("{}/{tenant_id}/oauth2/v2.0/token", app.public_url),
        format!("{}/{tenant_id}/oauth2/token", app.public_url),
    ];
    if !assertion.aud.iter().any(|a| endpoints.contains(a)) {
        return Err(Refusal::CertificateAudience { audience: assertion.aud.join(" ") });
    }
    Ok(ClientAuthMethod::Assertion)
}

/// A token from another issuer (or from one of wisp's own tenants), accepted
/// because one of the client's federated identity credentials trusts it.
async fn federated_assertion(
    app: &App,
    client: &Client,
    assertion: &UnverifiedAssertion<'_>,
    now: i64,
    record: &mut SignInRecord,
) -> Result<ClientAuthMethod, Refusal> {
    record.credential_type = Some("federatedIdentityCredential");
    let credentials = app
        .directory
        .federated_credentials(&client.owner_id())
        .await
        .map_err(|e| Refusal::Unavailable(e.to_string()))?;
    if credentials.is_empty() {
        return Err(Refusal::NoFederatedCredentials { client_id: client.client_id() });
    }
    // Never fetch an issuer no credential names.
    if !matching::any_trusts_issuer(&credentials, &assertion.iss) {
        let presented = matching::evaluate(
            &credentials,
            &assertion.iss,
            assertion.sub.as_deref().unwrap_or(""),
            &assertion.aud,
            &serde_json::Value::Null,
        );
        record.details = Some(serde_json::json!({ "credentials": presented.evaluations, "verified": false }));
        return Err(Refusal::NoMatchingIssuer { issuer: assertion.iss.clone() });
    }
    let verified = match own_tenant(app, &assertion.iss) {
        // wisp's own tokens (a managed identity as the credential): our keys,
        // no network.
        Some(tenant_id) => {
            let keys = app
                .keys
                .tenant_with_kid(&tenant_id, assertion.kid.as_deref())
                .await
                .map_err(|e| Refusal::Unavailable(e.to_string()))?
                .ok_or_else(|| Refusal::NoMatchingIssuer { issuer: assertion.iss.clone() })?;
            let verified =
                assertion.verify(&keys.verification_keys, now).map_err(|e| assertion_refusal(e, assertion, now))?;
            // Only user-assigned identities may act as credentials.
            if let Ok(principal) = Uuid::try_parse(&verified.sub)
                && let Some(identity) = app
                    .directory
                    .managed_identity_by_principal_id(&tenant_id, &principal)
                    .await
                    .map_err(|e| Refusal::Unavailable(e.to_string()))?
                && identity.system_assigned
            {
                return Err(Refusal::SystemAssignedIdentityAsCredential);
            }
            verified
        }
        None => {
            let keys = external_keys(app, &client.home_tenant(), &assertion.iss, assertion.kid.as_deref())
                .await
                .map_err(|reason| Refusal::IssuerUnavailable { issuer: assertion.iss.clone(), reason })?;
            assertion.verify(&keys, now).map_err(|e| assertion_refusal(e, assertion, now))?
        }
    };
    // A grant's record names the credential; the per-credential checks are
    // worked out only to explain a refusal.
    if let Some(credential) =
        matching::first_match(&credentials, &verified.iss, &verified.sub, &verified.aud, &verified.claims)
    {
        record.credential_id = Some(credential.id.to_string());
        return Ok(ClientAuthMethod::Assertion);
    }
    let result = matching::evaluate(&credentials, &verified.iss, &verified.sub, &verified.aud, &verified.claims);
    record.details = Some(serde_json::json!({ "credentials": result.evaluations, "verified": true }));
    match result.no_match {
        Some(NoMatch::Issuer) | None => Err(Refusal::NoMatchingIssuer { issuer: verified.iss }),
        Some(NoMatch::Audience) => Err(Refusal::NoMatchingAudience { audience: verified.aud.join(" ") }),
        Some(NoMatch::Subject) => Err(Refusal::NoMatchingSubject { subject: verified.sub }),
        Some(NoMatch::SubjectCase) => Err(Refusal::SubjectCaseMismatch { subject: verified.sub }),
    }
}

/// An external issuer's keys: those the credentials' tenant uploaded for it
/// (never fetched), else discovery + JWKS under the SSRF policy.
async fn external_keys(
    app: &App,
    tenant: &Uuid,
    issuer: &str,
    kid: Option<&str>,
) -> Result<Arc<Vec<jsonwebtoken::jwk::Jwk>>, String> {
    if let Some(uploaded) = app.directory.uploaded_issuer_keys(tenant, issuer).await.map_err(|e| e.to_string())? {
        return uploaded;
    }
    app.issuers.keys(issuer, kid).await.map_err(|e| e.to_string())
}

/// The tenant whose issuer `iss` is, if it is one of wisp's own (`{public_url}/{tenant}/v2.0`).
fn own_tenant(app: &App, iss: &str) -> Option<Uuid> {
    iss.strip_prefix(app.public_url.as_str())?
        .strip_prefix('/')?
        .strip_suffix("/v2.0")
        .and_then(crate::directory::parse_tenant_id)
}

fn assertion_refusal(error: AssertionError, assertion: &UnverifiedAssertion<'_>, now: i64) -> Refusal {
    match error {
        AssertionError::Malformed => Refusal::MalformedAssertion,
        AssertionError::TimeWindow | AssertionError::NoExpiry => {
            Refusal::AssertionTimeRange { now, not_before: assertion.nbf, expires: assertion.exp }
        }
        other => Refusal::AssertionSignature(other.to_string()),
    }
}

/// A resource as tokens see it.
struct ResolvedResource {
    app_id: String,
    /// Enabled role definitions: `(id, value)`.
    roles: Vec<(Uuid, String)>,
    /// 1 or 2.
    version: i32,
    /// A fixed `aud` (built-ins whose audience is their identifier URI).
    audience: Option<String>,
}

/// Names the resource: a built-in, an identifier URI of this tenant, or an appId.
async fn resolve_resource(app: &App, tenant_id: &Uuid, resource: &str) -> Result<ResolvedResource, Refusal> {
    if let Some(builtin) = builtin::by_identifier(resource) {
        let roles = builtin
            .roles
            .iter()
            .filter_map(|r| Uuid::try_parse(r.id).ok().map(|id| (id, r.value.to_string())))
            .collect();
        let audience = builtin.audience_is_identifier.then(|| resource.to_string());
        return Ok(ResolvedResource { app_id: builtin.app_id.to_string(), roles, version: 2, audience });
    }
    let unavailable = |e: crate::store::StoreError| Refusal::Unavailable(e.to_string());
    let by_uri = app.directory.application_by_identifier_uri(tenant_id, resource).await.map_err(unavailable)?;
    let resource_app = match by_uri {
        Some(found) => Some(found),
        None if Uuid::try_parse(resource).is_ok() => {
            app.directory.application_by_app_id(resource).await.map_err(unavailable)?
        }
        None => None,
    };
    let resource_app = resource_app
        .ok_or_else(|| Refusal::UnknownResource { resource: resource.to_string(), tenant: tenant_id.to_string() })?;
    let roles = resource_app.app_roles.iter().filter(|r| r.is_enabled).map(|r| (r.id, r.value.clone())).collect();
    let version = if resource_app.requested_token_version == Some(1) { 1 } else { 2 };
    Ok(ResolvedResource { app_id: resource_app.app_id.to_string(), roles, version, audience: None })
}

/// Explains how an assertion would fare against `credentials` — for
/// administrators (`…/federatedIdentityCredentials/evaluate`). With
/// `verify_signature` the signature and time window are checked exactly as the
/// token endpoint checks them (fetching only an issuer some credential names);
/// without it the claims are evaluated bare, and the answer says so.
pub async fn explain_assertion(
    app: &App,
    owner_tenant: &Uuid,
    credentials: &[crate::directory::FederatedCredential],
    assertion: &str,
    verify_signature: bool,
    now: i64,
) -> serde_json::Value {
    use serde_json::json;
    let parsed = match UnverifiedAssertion::parse(assertion) {
        Ok(parsed) => parsed,
        Err(e) => return json!({"verified": false, "error": e.to_string()}),
    };
    let presented = json!({
        "iss": parsed.iss, "sub": parsed.sub, "aud": parsed.aud, "exp": parsed.exp, "nbf": parsed.nbf, "jti": parsed.jti,
    });
    let mut checks = Vec::new();
    let mut claims = parsed.unverified_claims();
    let mut verified = false;
    if verify_signature {
        let outcome = if !matching::any_trusts_issuer(credentials, &parsed.iss) {
            Err("no credential names this issuer, so its keys were not fetched".to_string())
        } else {
            let keys = match own_tenant(app, &parsed.iss) {
                Some(tenant_id) => match app.keys.tenant(&tenant_id).await {
                    Ok(Some(keys)) => Ok(Arc::new(keys.verification_keys.clone())),
                    _ => Err("this tenant's keys are unavailable".to_string()),
                },
                None => external_keys(app, owner_tenant, &parsed.iss, parsed.kid.as_deref()).await,
            };
            keys.and_then(|keys| parsed.verify(&keys, now).map_err(|e| e.to_string()))
        };
        match outcome {
            Ok(v) => {
                verified = true;
                claims = v.claims;
                checks.push(json!({"check": "signature", "passed": true}));
                checks.push(json!({"check": "timeWindow", "passed": true}));
            }
            Err(reason) => {
                let time = reason.contains("time range") || reason.contains("expiry");
                checks.push(
                    json!({"check": if time { "timeWindow" } else { "signature" }, "passed": false, "detail": reason,
                                   "now": now, "nbf": parsed.nbf, "exp": parsed.exp}),
                );
            }
        }
    }
    let sub = claims["sub"].as_str().or(parsed.sub.as_deref()).unwrap_or_default().to_string();
    let result = matching::evaluate(credentials, &parsed.iss, &sub, &parsed.aud, &claims);
    json!({
        "verified": verified,
        "signatureChecked": verify_signature,
        "note": if verify_signature { serde_json::Value::Null } else {
            json!("The signature and time window were NOT checked: these are the bare claims as presented.")
        },
        "assertion": presented,
        "checks": checks,
        "credentials": result.evaluations,
        "matchedCredential": result.matched.map(|c| c.name),
    })
}
