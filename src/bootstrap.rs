//! First start on an empty store: create the first tenant and an administrator
//! application with a client secret, and hand the secret over once, in
//! `bootstrap.json` (mode 0600). The secret is stored only as a keyed hash.

use std::path::PathBuf;

use serde::Serialize;
use uuid::Uuid;

use crate::crypto::{MasterKey, generate_client_secret};
use crate::datadir::DataDir;
use crate::directory::{SINGLE_TENANT, Tenant};
use crate::signing::KeyRing;
use crate::store::{NewApplication, NewPasswordCredential, NewTenant, Store};

/// How long the bootstrap administrator secret is valid.
pub const ADMIN_SECRET_LIFETIME_SECS: i64 = 2 * 365 * 86400;

/// The contents of `bootstrap.json`.
#[derive(Serialize)]
pub struct BootstrapInfo {
    pub tenant_id: Uuid,
    pub admin_client_id: Uuid,
    pub admin_client_secret: String,
    /// The public URL: what clients use as their authority host.
    pub authority: String,
    /// The CA certificate clients must trust, when wisp generated it.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for BootstrapInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapInfo")
            .field("tenant_id", &self.tenant_id)
            .field("admin_client_id", &self.admin_client_id)
            .field("admin_client_secret", &"(redacted)")
            .finish_non_exhaustive()
    }
}

/// Creates the first tenant unless this database was bootstrapped before (by us
/// or a concurrent process). Only the process that bootstrapped writes
/// `bootstrap.json`; it returns the info and the file's path.
pub async fn bootstrap_if_empty(
    store: &Store,
    keys: &KeyRing,
    master_key: &MasterKey,
    data_dir: &DataDir,
    authority: &str,
    ca_file: Option<PathBuf>,
    now: i64,
) -> anyhow::Result<Option<(BootstrapInfo, PathBuf)>> {
    if store.meta_get("bootstrap").await?.is_some() {
        return Ok(None);
    }
    let prepared = prepare_tenant(keys, master_key, "Default Directory", now)?;
    let new = prepared.as_new_tenant();
    let info = BootstrapInfo {
        tenant_id: prepared.tenant.id,
        admin_client_id: prepared.admin_client_id,
        admin_client_secret: prepared.admin_client_secret.clone(),
        authority: authority.to_string(),
        ca_file,
    };
    let mut json = serde_json::to_vec_pretty(&info)?;
    json.push(b'\n');
    let staged = data_dir.stage_bootstrap(&json)?;
    match store.bootstrap(&new).await {
        Ok(true) => {}
        Ok(false) => {
            data_dir.discard_bootstrap(&staged);
            return Ok(None);
        }
        Err(e) => {
            data_dir.discard_bootstrap(&staged);
            return Err(e.into());
        }
    }
    let path = data_dir.publish_bootstrap(&staged)?;
    Ok(Some((info, path)))
}

/// A tenant ready to be stored: keys generated and sealed, an administrator
/// application with a fresh secret (hashed for storage; the clear text is
/// returned once to whoever asked for the tenant).
pub struct PreparedTenant {
    pub tenant: Tenant,
    pub keys: Vec<crate::store::StoredSigningKey>,
    pub admin: NewApplication,
    pub credential: NewPasswordCredential,
    pub admin_client_id: Uuid,
    pub admin_client_secret: String,
}

impl PreparedTenant {
    pub fn as_new_tenant(&self) -> NewTenant<'_> {
        NewTenant { tenant: &self.tenant, keys: &self.keys, admin: Some((&self.admin, &self.credential)) }
    }
}

/// Builds a new tenant named `display_name` with its first administrator.
pub fn prepare_tenant(
    keys: &KeyRing,
    master_key: &MasterKey,
    display_name: &str,
    now: i64,
) -> anyhow::Result<PreparedTenant> {
    let tenant = Tenant { id: Uuid::new_v4(), display_name: display_name.to_string(), created_at: now };
    let tenant_keys = keys.initial_keys(&tenant.id, now)?;
    let app_id = Uuid::new_v4();
    let admin = NewApplication {
        id: Uuid::new_v4().to_string(),
        app_id: app_id.to_string(),
        tenant_id: tenant.id.to_string(),
        display_name: "wisp tenant administrator".to_string(),
        sign_in_audience: SINGLE_TENANT.to_string(),
        service_principal_id: Uuid::new_v4().to_string(),
        created_at: now,
    };
    let secret = generate_client_secret();
    let credential = NewPasswordCredential {
        key_id: Uuid::new_v4().to_string(),
        application_id: admin.id.clone(),
        display_name: Some("first administrator".to_string()),
        hint: secret[..3].to_string(),
        secret_hash: master_key.hash_secret(&secret),
        start_at: now,
        end_at: now + ADMIN_SECRET_LIFETIME_SECS,
    };
    Ok(PreparedTenant {
        tenant,
        keys: tenant_keys,
        admin,
        credential,
        admin_client_id: app_id,
        admin_client_secret: secret,
    })
}
