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
    /// Sealed; see [`Store::take_console_flash`].
    pub flash: Option<Vec<u8>>,
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

    /// Keeps a sealed value for the session's next page (POST, redirect, GET:
    /// a reload then does not repeat the action, and the value shows once).
    pub async fn set_console_flash(&self, id_hash: &str, sealed: &[u8]) -> Result<()> {
        sqlx::query("UPDATE console_sessions SET flash = $2 WHERE id_hash = $1")
            .bind(id_hash)
            .bind(sealed)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The session's flash value, cleared: only one reader gets it.
    pub async fn take_console_flash(&self, id_hash: &str) -> Result<Option<Vec<u8>>> {
        let found: Option<(Option<Vec<u8>>,)> = sqlx::query_as("SELECT flash FROM console_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .fetch_optional(&self.pool)
            .await?;
        let Some((Some(sealed),)) = found else { return Ok(None) };
        let cleared = sqlx::query("UPDATE console_sessions SET flash = NULL WHERE id_hash = $1 AND flash = $2")
            .bind(id_hash)
            .bind(&sealed)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok((cleared == 1).then_some(sealed))
    }

    pub async fn delete_console_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1").bind(id_hash).execute(&self.pool).await?;
        Ok(())
    }
}
