//! Web console sessions. The store keeps only a keyed hash of the session id
//! (the cookie's value), so a copy of the database cannot be replayed as a cookie.

use super::{Result, Store};

/// A signed-in console administrator.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsoleSession {
    pub id_hash: String,
    pub tenant_id: String,
    pub app_id: String,
    /// JSON array of admin API roles held at sign-in.
    pub roles: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Store {
    /// Stores a new session, and forgets expired ones.
    pub async fn create_console_session(&self, session: &ConsoleSession) -> Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(session.created_at)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions (id_hash, tenant_id, app_id, roles, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&session.id_hash)
        .bind(&session.tenant_id)
        .bind(&session.app_id)
        .bind(&session.roles)
        .bind(&session.csrf_token)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The unexpired session with this id hash.
    pub async fn console_session(&self, id_hash: &str, now: i64) -> Result<Option<ConsoleSession>> {
        Ok(sqlx::query_as("SELECT * FROM console_sessions WHERE id_hash = $1 AND expires_at > $2")
            .bind(id_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn delete_console_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1").bind(id_hash).execute(&self.pool).await?;
        Ok(())
    }
}
