//! `wisp_meta`: a few named facts about the database itself.

use super::{Result, Store};

impl Store {
    /// Stores `name = value` unless the name already has a value, and returns the
    /// value that is stored now — ours, or the one another process wrote first.
    pub async fn meta_insert_or_get(&self, name: &str, value: &str) -> Result<String> {
        sqlx::query("INSERT INTO wisp_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        let stored: Option<(String,)> =
            sqlx::query_as("SELECT value FROM wisp_meta WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
        stored.map(|(v,)| v).ok_or_else(|| super::StoreError::Corrupt(format!("wisp_meta row {name} vanished")))
    }

    pub async fn meta_get(&self, name: &str) -> Result<Option<String>> {
        let stored: Option<(String,)> =
            sqlx::query_as("SELECT value FROM wisp_meta WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
        Ok(stored.map(|(v,)| v))
    }
}
