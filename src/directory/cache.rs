//! The token path's view of the directory: the same lookups as [`Store`], answered
//! from memory while the directory is unchanged, so a warm token request makes no
//! database round trip.
//!
//! **Consistency.** Every entry is tagged with the directory generation read
//! *before* it was loaded ([`Store::directory_generation`]) and is used only while
//! the generation is still the same. Every directory change bumps the generation
//! when it commits (see `store/changes.rs`), so a change made through this process
//! is effective for the very next request, and one made by another process as
//! soon as its notification (PostgreSQL) or the next poll arrives. An entry loaded
//! concurrently with a change carries the older generation and is never used
//! after the bump. Absent objects are cached too (a bounded number), so unknown
//! client ids do not reach the database either.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};

use jsonwebtoken::jwk::Jwk;
use uuid::Uuid;

use super::{Application, FederatedCredential, KeyCredentialInfo, ManagedIdentity, ServicePrincipal};
use crate::store::{Result, Store, StoredPasswordCredential};

/// Entries per lookup kind; beyond this, stale entries go, then all of them.
/// Bounds memory however many distinct ids callers invent.
const MAX_ENTRIES: usize = 50_000;

/// One lookup kind's entries: key → (generation, value).
struct Memo<K, V> {
    name: &'static str,
    entries: RwLock<HashMap<K, (u64, V)>>,
}

impl<K: Hash + Eq, V: Clone> Memo<K, V> {
    fn new(name: &'static str) -> Self {
        Self { name, entries: RwLock::default() }
    }

    fn get(&self, key: &K, generation: u64) -> Option<V> {
        let entries = self.entries.read().expect("directory cache lock");
        let found = entries.get(key).filter(|(at, _)| *at == generation).map(|(_, v)| v.clone());
        let result = if found.is_some() { "hit" } else { "miss" };
        metrics::counter!("wisp_cache_requests_total", "cache" => self.name, "result" => result).increment(1);
        found
    }

    fn put(&self, key: K, generation: u64, value: V) {
        let mut entries = self.entries.write().expect("directory cache lock");
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| *at == generation);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (generation, value));
    }
}

/// An application's certificates: what the token path needs, and the DER.
type Certificates = Arc<Vec<(KeyCredentialInfo, Vec<u8>)>>;
/// A tenant's uploaded keys for an issuer, parsed — or why they cannot be.
type UploadedKeys = std::result::Result<Arc<Vec<Jwk>>, String>;

/// Cached directory lookups for the token path (see the module comment).
pub struct DirectoryCache {
    store: Store,
    applications: Memo<String, Option<Arc<Application>>>,
    applications_by_uri: Memo<(Uuid, String), Option<Arc<Application>>>,
    identities: Memo<String, Option<Arc<ManagedIdentity>>>,
    identities_by_principal: Memo<(Uuid, Uuid), Option<Arc<ManagedIdentity>>>,
    service_principals: Memo<(Uuid, String), Option<Arc<ServicePrincipal>>>,
    federated_credentials: Memo<Uuid, Arc<Vec<FederatedCredential>>>,
    password_credentials: Memo<Uuid, Arc<Vec<StoredPasswordCredential>>>,
    certificates: Memo<Uuid, Certificates>,
    roles: Memo<(Uuid, Uuid), Arc<Vec<Uuid>>>,
    uploaded_issuers: Memo<(Uuid, String), Option<UploadedKeys>>,
}

impl DirectoryCache {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            applications: Memo::new("applications"),
            applications_by_uri: Memo::new("applications_by_uri"),
            identities: Memo::new("managed_identities"),
            identities_by_principal: Memo::new("managed_identities_by_principal"),
            service_principals: Memo::new("service_principals"),
            federated_credentials: Memo::new("federated_credentials"),
            password_credentials: Memo::new("password_credentials"),
            certificates: Memo::new("certificates"),
            roles: Memo::new("role_assignments"),
            uploaded_issuers: Memo::new("uploaded_issuers"),
        }
    }

    /// `memo[key]` if loaded at the current generation, else `load()`, remembered.
    async fn through<K, V, F>(&self, memo: &Memo<K, V>, key: K, load: F) -> Result<V>
    where
        K: Hash + Eq,
        V: Clone,
        F: Future<Output = Result<V>>,
    {
        let generation = self.store.directory_generation();
        if let Some(value) = memo.get(&key, generation) {
            return Ok(value);
        }
        let value = load.await?;
        memo.put(key, generation, value.clone());
        Ok(value)
    }

    pub async fn application_by_app_id(&self, app_id: &str) -> Result<Option<Arc<Application>>> {
        let key = app_id.to_ascii_lowercase();
        self.through(&self.applications, key, async {
            Ok(self.store.application_by_app_id(app_id).await?.map(Arc::new))
        })
        .await
    }

    pub async fn application_by_identifier_uri(&self, tenant_id: &Uuid, uri: &str) -> Result<Option<Arc<Application>>> {
        self.through(&self.applications_by_uri, (*tenant_id, uri.to_string()), async {
            Ok(self.store.application_by_identifier_uri(tenant_id, uri).await?.map(Arc::new))
        })
        .await
    }

    pub async fn managed_identity_by_client_id(&self, client_id: &str) -> Result<Option<Arc<ManagedIdentity>>> {
        self.through(&self.identities, client_id.to_ascii_lowercase(), async {
            Ok(self.store.managed_identity_by_client_id(client_id).await?.map(Arc::new))
        })
        .await
    }

    pub async fn managed_identity_by_principal_id(
        &self,
        tenant_id: &Uuid,
        principal_id: &Uuid,
    ) -> Result<Option<Arc<ManagedIdentity>>> {
        self.through(&self.identities_by_principal, (*tenant_id, *principal_id), async {
            Ok(self.store.managed_identity_by_principal_id(tenant_id, principal_id).await?.map(Arc::new))
        })
        .await
    }

    pub async fn service_principal_by_app_id(
        &self,
        tenant_id: &Uuid,
        app_id: &str,
    ) -> Result<Option<Arc<ServicePrincipal>>> {
        self.through(&self.service_principals, (*tenant_id, app_id.to_ascii_lowercase()), async {
            Ok(self.store.service_principal_by_app_id(tenant_id, app_id).await?.map(Arc::new))
        })
        .await
    }

    pub async fn federated_credentials(&self, owner_id: &Uuid) -> Result<Arc<Vec<FederatedCredential>>> {
        self.through(&self.federated_credentials, *owner_id, async {
            Ok(Arc::new(self.store.federated_credentials(owner_id).await?))
        })
        .await
    }

    pub async fn password_credentials(&self, application_id: &Uuid) -> Result<Arc<Vec<StoredPasswordCredential>>> {
        self.through(&self.password_credentials, *application_id, async {
            Ok(Arc::new(self.store.password_credentials(&application_id.to_string()).await?))
        })
        .await
    }

    pub async fn key_credential_certificates(&self, application_id: &Uuid) -> Result<Certificates> {
        self.through(&self.certificates, *application_id, async {
            Ok(Arc::new(self.store.key_credential_certificates(application_id).await?))
        })
        .await
    }

    pub async fn assigned_role_ids(&self, principal_id: &Uuid, resource_id: &Uuid) -> Result<Arc<Vec<Uuid>>> {
        self.through(&self.roles, (*principal_id, *resource_id), async {
            Ok(Arc::new(self.store.assigned_role_ids(principal_id, resource_id).await?))
        })
        .await
    }

    /// The keys a tenant uploaded for `issuer`, parsed (or why they cannot be).
    pub async fn uploaded_issuer_keys(&self, tenant_id: &Uuid, issuer: &str) -> Result<Option<UploadedKeys>> {
        self.through(&self.uploaded_issuers, (*tenant_id, issuer.to_string()), async {
            let Some(uploaded) = self.store.uploaded_issuer(tenant_id, issuer).await? else {
                return Ok(None);
            };
            let parsed = serde_json::from_str::<serde_json::Value>(&uploaded.jwks)
                .map_err(|e| e.to_string())
                .and_then(|jwks| crate::federation::issuer::parse_uploaded_jwks(&jwks))
                .map(Arc::new);
            Ok(Some(parsed))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_used_only_at_the_generation_it_was_loaded_at() {
        let memo: Memo<u32, &str> = Memo::new("test");
        memo.put(1, 7, "loaded at 7");
        assert_eq!(memo.get(&1, 7), Some("loaded at 7"));
        assert_eq!(memo.get(&1, 8), None);
        assert_eq!(memo.get(&2, 7), None);
    }

    #[test]
    fn the_memo_stays_bounded() {
        let memo: Memo<usize, ()> = Memo::new("test");
        for i in 0..MAX_ENTRIES {
            memo.put(i, 1, ());
        }
        // Full at generation 1: a put at generation 2 evicts every stale entry.
        memo.put(usize::MAX, 2, ());
        assert_eq!(memo.entries.read().unwrap().len(), 1);
        for i in 0..MAX_ENTRIES + 10 {
            memo.put(i, 2, ());
        }
        assert!(memo.entries.read().unwrap().len() <= MAX_ENTRIES);
    }
}
