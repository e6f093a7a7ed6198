//! Join tokens and enrolled node agents.

use uuid::Uuid;

use super::audit::{DirectoryAudit, insert_audit};
use super::{Result, Store, StoreError, parse_id};

/// An enrolled agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub resource_id: Uuid,
    /// The agent's public key, a JWK as JSON.
    pub public_key: String,
    pub created_at: i64,
}

/// A join token to store (its keyed hash only).
#[derive(Debug, Clone)]
pub struct NewJoinToken {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub resource_id: Uuid,
    pub token_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Why an enrollment was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollRefusal {
    Unknown,
    Used,
    Expired,
}

impl Store {
    /// Stores a join token's hash for a resource.
    pub async fn create_join_token(&self, token: &NewJoinToken, audit: &DirectoryAudit) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.begin_write(&mut conn).await?;
        sqlx::query(
            "INSERT INTO join_tokens (id, tenant_id, resource_id, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token.id.to_string())
        .bind(token.tenant_id.to_string())
        .bind(token.resource_id.to_string())
        .bind(&token.token_hash)
        .bind(token.created_at)
        .bind(token.expires_at)
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, audit).await?;
        self.commit_directory_change(tx).await?;
        Ok(())
    }

    /// Spends a join token and enrolls an agent with `public_key`, atomically:
    /// of two enrollments racing with one token, exactly one succeeds.
    pub async fn enroll_agent(
        &self,
        token_hash: &str,
        agent_id: &Uuid,
        public_key: &str,
        now: i64,
    ) -> Result<std::result::Result<Agent, EnrollRefusal>> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.begin_write(&mut conn).await?;
        let row: Option<(String, String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT id, tenant_id, resource_id, expires_at, used_at FROM join_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((token_id, tenant_id, resource_id, expires_at, used_at)) = row else {
            return Ok(Err(EnrollRefusal::Unknown));
        };
        if used_at.is_some() {
            return Ok(Err(EnrollRefusal::Used));
        }
        if expires_at <= now {
            return Ok(Err(EnrollRefusal::Expired));
        }
        let spent = sqlx::query("UPDATE join_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
            .bind(&token_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if spent != 1 {
            return Ok(Err(EnrollRefusal::Used));
        }
        sqlx::query(
            "INSERT INTO agents (id, tenant_id, resource_id, public_key, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(agent_id.to_string())
        .bind(&tenant_id)
        .bind(&resource_id)
        .bind(public_key)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        self.commit_directory_change(tx).await?;
        Ok(Ok(Agent {
            id: *agent_id,
            tenant_id: parse_id(&tenant_id)?,
            resource_id: parse_id(&resource_id)?,
            public_key: public_key.to_string(),
            created_at: now,
        }))
    }

    /// An enrolled agent (gone once its resource is deleted).
    pub async fn agent(&self, id: &Uuid) -> Result<Option<Agent>> {
        let row: Option<(String, String, String, String, i64)> =
            sqlx::query_as("SELECT id, tenant_id, resource_id, public_key, created_at FROM agents WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(id, tenant_id, resource_id, public_key, created_at)| {
            Ok::<_, StoreError>(Agent {
                id: parse_id(&id)?,
                tenant_id: parse_id(&tenant_id)?,
                resource_id: parse_id(&resource_id)?,
                public_key,
                created_at,
            })
        })
        .transpose()
    }
}
