//! The sign-in log's rows: written in batches by `signin::SignInLog`, read by
//! the admin API.

use uuid::Uuid;

use super::{Result, Store};

/// A stored sign-in record (see `signin::SignInRecord` for the meaning).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SignInRow {
    pub id: String,
    pub tenant_id: String,
    pub at: i64,
    pub seq: i64,
    pub correlation_id: String,
    pub client_ip: Option<String>,
    pub client_id: Option<String>,
    pub service_principal_id: Option<String>,
    pub resource: Option<String>,
    pub credential_type: Option<String>,
    pub credential_id: Option<String>,
    pub assertion_issuer: Option<String>,
    pub assertion_subject: Option<String>,
    pub assertion_jti: Option<String>,
    pub outcome: String,
    pub error_code: Option<i64>,
    pub token_id: Option<String>,
    pub details: Option<String>,
}

/// What to read from the sign-in log.
#[derive(Debug, Clone, Default)]
pub struct SignInQuery {
    pub client_id: Option<String>,
    pub outcome: Option<String>,
    pub correlation_id: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Newest first, older than this `(seq, id)` cursor.
    pub before: Option<(i64, String)>,
    pub top: i64,
}

/// Rows per INSERT statement. Larger statements save little more and cost a
/// parameter lookup quadratic in their size (seen in profiles at 64 rows).
const ROWS_PER_INSERT: usize = 16;
const COLUMNS: usize = 18;

/// `INSERT INTO sign_ins (…) VALUES ($1, …, $18), ($19, …), …` for `rows` rows.
/// Built from counts only, never from data.
fn insert_statement(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO sign_ins (id, tenant_id, at, seq, correlation_id, client_ip, client_id, service_principal_id, \
         resource, credential_type, credential_id, assertion_issuer, assertion_subject, assertion_jti, outcome, \
         error_code, token_id, details) VALUES ",
    );
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..COLUMNS {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * COLUMNS + column + 1));
        }
        sql.push(')');
    }
    sql
}

impl Store {
    /// Writes a batch of records in one transaction, as few multi-row INSERTs:
    /// per statement, not per row, is where the database's cost lies.
    pub async fn insert_sign_ins(&self, rows: &[SignInRow]) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.begin_write(&mut conn).await?;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let sql = insert_statement(chunk.len());
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            for row in chunk {
                query = query
                    .bind(&row.id)
                    .bind(&row.tenant_id)
                    .bind(row.at)
                    .bind(row.seq)
                    .bind(&row.correlation_id)
                    .bind(&row.client_ip)
                    .bind(&row.client_id)
                    .bind(&row.service_principal_id)
                    .bind(&row.resource)
                    .bind(&row.credential_type)
                    .bind(&row.credential_id)
                    .bind(&row.assertion_issuer)
                    .bind(&row.assertion_subject)
                    .bind(&row.assertion_jti)
                    .bind(&row.outcome)
                    .bind(row.error_code)
                    .bind(&row.token_id)
                    .bind(&row.details);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A tenant's sign-ins matching `query`, newest first, at most `top + 1`
    /// (the extra row tells whether more follow).
    pub async fn sign_ins(&self, tenant_id: &Uuid, query: &SignInQuery) -> Result<Vec<SignInRow>> {
        // Optional filters as "$n IS NULL OR column = $n", so the statement text
        // is fixed and every value is a bound parameter.
        let (before_seq, before_id) = match &query.before {
            Some((seq, id)) => (Some(*seq), Some(id.clone())),
            None => (None, None),
        };
        Ok(sqlx::query_as(
            "SELECT * FROM sign_ins WHERE tenant_id = $1 \
             AND ($2 IS NULL OR client_id = $2) \
             AND ($3 IS NULL OR outcome = $3) \
             AND ($4 IS NULL OR correlation_id = $4) \
             AND ($5 IS NULL OR at >= $5) \
             AND ($6 IS NULL OR at <= $6) \
             AND ($7 IS NULL OR seq < $7 OR (seq = $7 AND id < $8)) \
             ORDER BY seq DESC, id DESC LIMIT $9",
        )
        .bind(tenant_id.to_string())
        .bind(&query.client_id)
        .bind(&query.outcome)
        .bind(&query.correlation_id)
        .bind(query.since)
        .bind(query.until)
        .bind(before_seq)
        .bind(before_id)
        .bind(query.top.clamp(1, 1000) + 1)
        .fetch_all(&self.pool)
        .await?)
    }
}
