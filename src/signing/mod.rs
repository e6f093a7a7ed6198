//! wisp's own token-signing keys: generation, sealing at rest, the rotation
//! schedule, and the in-memory key ring the hot path signs with.
//!
//! **Invariant:** only this module (and `crypto`) touches private key material,
//! and nothing here logs it.

mod key;
pub mod rotation;

pub use key::{Algorithm, GeneratedKey, KeyError, SigningKey};
pub use rotation::RotationPolicy;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use uuid::Uuid;

use crate::crypto::MasterKey;
use crate::store::{KeyChange, Store, StoreError, StoredSigningKey};
use rotation::NewKeyState;

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("signing key {kid} of tenant {tenant} cannot be opened: {reason}")]
    Unseal { tenant: String, kid: String, reason: String },
    #[error("tenant {0} has no current signing key")]
    NoCurrentKey(String),
}

/// The keys of one tenant as the HTTP layer needs them: the key that signs, and
/// the JWKS document, serialized once per key-set change.
#[derive(Debug)]
pub struct TenantKeys {
    pub tenant_id: Uuid,
    pub generation: i64,
    pub current: Arc<SigningKey>,
    /// Every published key (current, next, previous), for verifying wisp's own
    /// tokens when they come back.
    pub published: Vec<Arc<SigningKey>>,
    /// `{"keys":[…]}` with the current, next and previous keys.
    pub jwks: Bytes,
    /// The same keys as JWKs, for verifying wisp's own tokens presented as
    /// client assertions (managed identity as a federated credential).
    pub verification_keys: Vec<jsonwebtoken::jwk::Jwk>,
}

/// All loaded tenants' keys. Reads are lock-free in practice (an uncontended
/// `RwLock` read of an `Arc`); writes happen only on a key-set change.
pub struct KeyRing {
    store: Store,
    master_key: Arc<MasterKey>,
    public_url: String,
    policy: RotationPolicy,
    tenants: RwLock<HashMap<Uuid, Arc<TenantKeys>>>,
    /// When each tenant was last reloaded for an unknown `kid`.
    unknown_kid_reloads: std::sync::Mutex<HashMap<Uuid, std::time::Instant>>,
}

/// Least time between two reloads of one tenant's keys for unknown key ids.
pub const UNKNOWN_KID_RELOAD_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(1);

impl TenantKeys {
    /// The published key with this `kid`.
    pub fn key(&self, kid: &str) -> Option<&Arc<SigningKey>> {
        self.published.iter().find(|k| k.kid() == kid)
    }
}

impl KeyRing {
    pub fn new(store: Store, master_key: Arc<MasterKey>, public_url: String, policy: RotationPolicy) -> Self {
        Self {
            store,
            master_key,
            public_url,
            policy,
            tenants: RwLock::default(),
            unknown_kid_reloads: Default::default(),
        }
    }

    /// The issuer of a tenant's tokens: `{public_url}/{tenant}/v2.0`.
    pub fn issuer(&self, tenant_id: &Uuid) -> String {
        format!("{}/{}/v2.0", self.public_url, tenant_id)
    }

    /// A tenant's keys, loaded from the store on first use. `None`: no such tenant.
    pub async fn tenant(&self, tenant_id: &Uuid) -> Result<Option<Arc<TenantKeys>>, KeyRingError> {
        if let Some(keys) = self.tenants.read().expect("key ring lock").get(tenant_id) {
            metrics::counter!("wisp_cache_requests_total", "cache" => "tenant_keys", "result" => "hit").increment(1);
            return Ok(Some(keys.clone()));
        }
        metrics::counter!("wisp_cache_requests_total", "cache" => "tenant_keys", "result" => "miss").increment(1);
        self.load(tenant_id).await
    }

    /// A tenant's keys, reloaded from the store first when they do not include
    /// `kid` — a key another process has just created (an algorithm switch there
    /// signs with a key nobody published ahead). At most one reload per tenant
    /// per [`UNKNOWN_KID_RELOAD_COOLDOWN`], so invented `kid`s cannot flood the
    /// database.
    pub async fn tenant_with_kid(
        &self,
        tenant_id: &Uuid,
        kid: Option<&str>,
    ) -> Result<Option<Arc<TenantKeys>>, KeyRingError> {
        let Some(keys) = self.tenant(tenant_id).await? else {
            return Ok(None);
        };
        let Some(kid) = kid.filter(|kid| keys.key(kid).is_none()) else {
            return Ok(Some(keys));
        };
        {
            let mut reloads = self.unknown_kid_reloads.lock().expect("key ring lock");
            let now = std::time::Instant::now();
            if reloads.get(tenant_id).is_some_and(|at| now.duration_since(*at) < UNKNOWN_KID_RELOAD_COOLDOWN) {
                return Ok(Some(keys));
            }
            reloads.insert(*tenant_id, now);
        }
        tracing::debug!(tenant = %tenant_id, kid, "unknown signing key id; reloading the tenant's keys");
        self.load(tenant_id).await
    }

    /// Reads a tenant's keys from the store and caches them.
    async fn load(&self, tenant_id: &Uuid) -> Result<Option<Arc<TenantKeys>>, KeyRingError> {
        let Some((generation, stored)) = self.store.signing_keys(&tenant_id.to_string()).await? else {
            return Ok(None);
        };
        let loaded = Arc::new(self.build(tenant_id, generation, &stored)?);
        self.tenants.write().expect("key ring lock").insert(*tenant_id, loaded.clone());
        Ok(Some(loaded))
    }

    fn build(
        &self,
        tenant_id: &Uuid,
        generation: i64,
        stored: &[StoredSigningKey],
    ) -> Result<TenantKeys, KeyRingError> {
        let issuer = self.issuer(tenant_id);
        // JWKS order: the signing key first, then the next one, then retired ones.
        let rank = |state: &str| match state {
            "current" => 0,
            "next" => 1,
            _ => 2,
        };
        let mut ordered: Vec<&StoredSigningKey> = stored.iter().collect();
        ordered.sort_by_key(|k| (rank(&k.state), std::cmp::Reverse(k.created_at)));
        let mut current = None;
        let mut jwks = Vec::with_capacity(ordered.len());
        let mut published = Vec::with_capacity(ordered.len());
        for stored in ordered {
            let key = Arc::new(self.unseal(stored)?);
            jwks.push(key.jwk(&issuer));
            if stored.state == "current" {
                current = Some(key.clone());
            }
            published.push(key);
        }
        let current = current.ok_or_else(|| KeyRingError::NoCurrentKey(tenant_id.to_string()))?;
        let verification_keys = jwks
            .iter()
            .map(|jwk| serde_json::from_value(jwk.clone()))
            .collect::<Result<Vec<jsonwebtoken::jwk::Jwk>, _>>()
            .expect("our own JWKs parse as JWKs");
        let jwks = serde_json::to_vec(&serde_json::json!({ "keys": jwks })).expect("JWKS serializes");
        Ok(TenantKeys {
            tenant_id: *tenant_id,
            generation,
            current,
            published,
            jwks: Bytes::from(jwks),
            verification_keys,
        })
    }

    fn unseal(&self, stored: &StoredSigningKey) -> Result<SigningKey, KeyRingError> {
        let unseal_err =
            |reason: String| KeyRingError::Unseal { tenant: stored.tenant_id.clone(), kid: stored.kid.clone(), reason };
        let pkcs8 = self
            .master_key
            .open(stored.kid.as_bytes(), &stored.sealed_private_key)
            .map_err(|e| unseal_err(e.to_string()))?;
        SigningKey::from_pkcs8(&stored.algorithm, &pkcs8, stored.certificate.clone())
            .map_err(|e| unseal_err(e.to_string()))
    }

    /// Generates a key for `tenant_id` and seals it for storage.
    pub fn generate_stored_key(
        &self,
        tenant_id: &Uuid,
        algorithm: Algorithm,
        state: NewKeyState,
        now: i64,
    ) -> Result<StoredSigningKey, KeyRingError> {
        let GeneratedKey { key, pkcs8_der } =
            SigningKey::generate(algorithm, &format!("wisp token signing, tenant {tenant_id}"), now)?;
        let sealed_private_key = self.master_key.seal(key.kid().as_bytes(), &pkcs8_der);
        Ok(StoredSigningKey {
            kid: key.kid().to_string(),
            tenant_id: tenant_id.to_string(),
            algorithm: key.algorithm().as_str().to_string(),
            state: state.as_str().to_string(),
            certificate: key.certificate_der().to_vec(),
            sealed_private_key,
            created_at: now,
            activated_at: (state == NewKeyState::Current).then_some(now),
            retire_at: None,
        })
    }

    /// The first keys of a new tenant (RS256, the default): one that signs and the
    /// next one, published.
    pub fn initial_keys(&self, tenant_id: &Uuid, now: i64) -> Result<Vec<StoredSigningKey>, KeyRingError> {
        Ok(vec![
            self.generate_stored_key(tenant_id, Algorithm::Rs256, NewKeyState::Current, now)?,
            self.generate_stored_key(tenant_id, Algorithm::Rs256, NewKeyState::Next, now)?,
        ])
    }

    /// Rotates and retires keys that are due at `now`, then reloads every loaded
    /// tenant whose key set changed (here or in another process). Returns how many
    /// key-set changes this process made.
    pub async fn maintain(&self, now: i64) -> Result<usize, KeyRingError> {
        let due = self.store.tenants_due_for_key_maintenance(now - self.policy.rotate_after, now).await?;
        let mut changed = 0;
        for tenant in due {
            let Ok(tenant_id) = Uuid::parse_str(&tenant) else {
                continue;
            };
            if self.maintain_tenant(&tenant_id, now).await? {
                changed += 1;
            }
        }
        self.refresh().await?;
        Ok(changed)
    }

    /// Applies the rotation plan for one tenant. `false`: nothing to do, or another
    /// process changed the key set first (it wins; we reload its result).
    pub async fn maintain_tenant(&self, tenant_id: &Uuid, now: i64) -> Result<bool, KeyRingError> {
        let Some((generation, stored)) = self.store.signing_keys(&tenant_id.to_string()).await? else {
            return Ok(false);
        };
        let algorithm = self.store.token_signing_algorithm(tenant_id).await?;
        let Some(parsed) = Algorithm::parse(&algorithm) else {
            return Err(KeyError::Algorithm(algorithm).into());
        };
        let plan = rotation::plan(&stored, &self.policy, &algorithm, now);
        if plan.is_empty() {
            return Ok(false);
        }
        // Key generation is slow (tens of ms); do it before the short transaction.
        let insert = plan
            .generate
            .iter()
            .map(|state| self.generate_stored_key(tenant_id, parsed, *state, now))
            .collect::<Result<Vec<_>, _>>()?;
        let change = KeyChange { delete: plan.delete, retire: plan.retire, activate: plan.activate, insert };
        let applied = self.store.apply_key_change(&tenant_id.to_string(), generation, &change, now).await?;
        if applied {
            tracing::info!(tenant = %tenant_id, retired = ?change.retire.as_ref().map(|r| &r.0),
                activated = ?change.activate, deleted = change.delete.len(), "signing keys rotated");
        }
        Ok(applied)
    }

    /// Reloads loaded tenants whose key generation moved.
    pub async fn refresh(&self) -> Result<(), KeyRingError> {
        let generations = self.store.tenant_key_generations().await?;
        let stale: Vec<Uuid> = {
            let loaded = self.tenants.read().expect("key ring lock");
            generations
                .iter()
                .filter_map(|(id, generation)| {
                    let id = Uuid::parse_str(id).ok()?;
                    loaded.get(&id).filter(|k| k.generation != *generation).map(|_| id)
                })
                .collect()
        };
        for tenant_id in stale {
            self.load(&tenant_id).await?;
        }
        Ok(())
    }
}
