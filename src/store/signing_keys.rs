//! Token-signing keys, stored sealed under the master key.
//!
//! Every change to a tenant's key set is a compare-and-swap on
//! `tenants.key_generation`, so when several processes share one database exactly
//! one of them performs a given rotation, and the others notice the new generation
//! and reload.

use sqlx::AnyConnection;

use super::{Result, Store};

/// A signing key as stored: public certificate in the clear, private key sealed.
#[derive(Clone, sqlx::FromRow)]
pub struct StoredSigningKey {
    pub kid: String,
    pub tenant_id: String,
    pub algorithm: String,
    /// `next`, `current` or `previous`.
    pub state: String,
    pub certificate: Vec<u8>,
    pub sealed_private_key: Vec<u8>,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retire_at: Option<i64>,
}

impl std::fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("tenant_id", &self.tenant_id)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// One atomic change to a tenant's key set, applied in this order.
#[derive(Debug, Default)]
pub struct KeyChange {
    /// Keys to drop from the JWKS: previous keys whose tokens have all expired, or
    /// a next key of an algorithm the tenant no longer uses.
    pub delete: Vec<String>,
    /// The current key to demote to `previous`, published until `retire_at`.
    pub retire: Option<(String, i64)>,
    /// The next key to promote to `current` (it signs from now on).
    pub activate: Option<String>,
    /// New keys (normally one `next` key).
    pub insert: Vec<StoredSigningKey>,
}

impl Store {
    /// A tenant's key generation and its keys. The generation is read first, so a
    /// concurrent change can only make the pair look older than the keys, which the
    /// next refresh corrects — never newer.
    pub async fn signing_keys(&self, tenant_id: &str) -> Result<Option<(i64, Vec<StoredSigningKey>)>> {
        let generation: Option<(i64,)> = sqlx::query_as("SELECT key_generation FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some((generation,)) = generation else {
            return Ok(None);
        };
        let keys = sqlx::query_as(
            "SELECT kid, tenant_id, algorithm, state, certificate, sealed_private_key, created_at, \
             activated_at, retire_at FROM signing_keys WHERE tenant_id = $1 ORDER BY created_at, kid",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some((generation, keys)))
    }

    /// Tenants whose key set needs attention at `now`: a current key activated at or
    /// before `rotate_if_activated_before`, a previous key past its retirement, no
    /// next or current key, or an active key of another algorithm than the tenant's.
    pub async fn tenants_due_for_key_maintenance(
        &self,
        rotate_if_activated_before: i64,
        now: i64,
    ) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT t.id FROM tenants t WHERE \
               EXISTS (SELECT 1 FROM signing_keys k WHERE k.tenant_id = t.id AND \
                        ((k.state = 'current' AND k.activated_at <= $1) OR \
                         (k.state = 'previous' AND k.retire_at <= $2))) \
               OR NOT EXISTS (SELECT 1 FROM signing_keys k WHERE k.tenant_id = t.id AND k.state = 'next') \
               OR NOT EXISTS (SELECT 1 FROM signing_keys k WHERE k.tenant_id = t.id AND k.state = 'current') \
               OR EXISTS (SELECT 1 FROM signing_keys k WHERE k.tenant_id = t.id AND \
                        k.state IN ('current', 'next') AND k.algorithm <> t.token_signing_algorithm)",
        )
        .bind(rotate_if_activated_before)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Applies `change` if the tenant's key generation is still `expected_generation`.
    /// Returns `false` (and changes nothing) when another process got there first.
    pub async fn apply_key_change(
        &self,
        tenant_id: &str,
        expected_generation: i64,
        change: &KeyChange,
        now: i64,
    ) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.begin_write(&mut conn).await?;
        let swapped =
            sqlx::query("UPDATE tenants SET key_generation = key_generation + 1 WHERE id = $1 AND key_generation = $2")
                .bind(tenant_id)
                .bind(expected_generation)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if swapped != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        for kid in &change.delete {
            // Never the current key: a next key (which signed nothing) may go.
            sqlx::query("DELETE FROM signing_keys WHERE tenant_id = $1 AND kid = $2 AND state <> 'current'")
                .bind(tenant_id)
                .bind(kid)
                .execute(&mut *tx)
                .await?;
        }
        if let Some((kid, retire_at)) = &change.retire {
            sqlx::query(
                "UPDATE signing_keys SET state = 'previous', retire_at = $3 \
                 WHERE tenant_id = $1 AND kid = $2 AND state = 'current'",
            )
            .bind(tenant_id)
            .bind(kid)
            .bind(*retire_at)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(kid) = &change.activate {
            sqlx::query(
                "UPDATE signing_keys SET state = 'current', activated_at = $3 \
                 WHERE tenant_id = $1 AND kid = $2 AND state = 'next'",
            )
            .bind(tenant_id)
            .bind(kid)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        for key in &change.insert {
            insert_signing_key(&mut tx, key).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

pub(super) async fn insert_signing_key(conn: &mut AnyConnection, key: &StoredSigningKey) -> Result<()> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, tenant_id, algorithm, state, certificate, sealed_private_key, \
         created_at, activated_at, retire_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&key.kid)
    .bind(&key.tenant_id)
    .bind(&key.algorithm)
    .bind(&key.state)
    .bind(&key.certificate)
    .bind(&key.sealed_private_key)
    .bind(key.created_at)
    .bind(key.activated_at)
    .bind(key.retire_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
