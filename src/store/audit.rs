//! The directory audit log: every change made through the admin API, with the
//! object before and after (secrets never included).

use uuid::Uuid;

use super::{Result, Store};

/// One audited change.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DirectoryAudit {
    pub id: String,
    pub tenant_id: String,
    pub at: i64,
    pub seq: i64,
    pub actor_app_id: String,
    pub activity: String,
    pub target_type: String,
    pub target_id: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub correlation_id: String,
}

/// Writes an audit event inside the caller's transaction, so a change and its
/// record commit together or not at all.
pub(super) async fn insert_audit(conn: &mut sqlx::AnyConnection, event: &DirectoryAudit) -> Result<()> {
    sqlx::query(
        "INSERT INTO directory_audits (id, tenant_id, at, seq, actor_app_id, activity, target_type, target_id, \
             old_value, new_value, correlation_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&event.id)
    .bind(&event.tenant_id)
    .bind(event.at)
    .bind(event.seq)
    .bind(&event.actor_app_id)
    .bind(&event.activity)
    .bind(&event.target_type)
    .bind(&event.target_id)
    .bind(&event.old_value)
    .bind(&event.new_value)
    .bind(&event.correlation_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// A tenant's audit events, newest first, at most `top`, older than the
    /// `(at, seq, id)` cursor when given.
    pub async fn directory_audits(
        &self,
        tenant_id: &Uuid,
        top: i64,
        before: Option<(i64, i64, String)>,
    ) -> Result<Vec<DirectoryAudit>> {
        let top = top.clamp(1, 1000) + 1;
        let rows =
            match before {
                None => sqlx::query_as(
                    "SELECT * FROM directory_audits WHERE tenant_id = $1 ORDER BY at DESC, seq DESC, id DESC LIMIT $2",
                )
                .bind(tenant_id.to_string())
                .bind(top)
                .fetch_all(&self.pool)
                .await?,
                Some((at, seq, id)) => {
                    sqlx::query_as(
                        "SELECT * FROM directory_audits WHERE tenant_id = $1 AND \
                     (at < $2 OR (at = $2 AND (seq < $3 OR (seq = $3 AND id < $4)))) \
                     ORDER BY at DESC, seq DESC, id DESC LIMIT $5",
                    )
                    .bind(tenant_id.to_string())
                    .bind(at)
                    .bind(seq)
                    .bind(id)
                    .bind(top)
                    .fetch_all(&self.pool)
                    .await?
                }
            };
        Ok(rows)
    }
}
