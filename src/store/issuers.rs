//! Issuer keys uploaded by a tenant's administrators.

use uuid::Uuid;

use super::audit::DirectoryAudit;
use super::writes::DirectoryWrite;
use super::{Result, Store, conflict_on_unique, parse_id};

/// An uploaded issuer key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedIssuer {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub issuer: String,
    /// The JWKS JSON as uploaded (validated at write time).
    pub jwks: String,
    pub version: i64,
    pub created_at: i64,
}

pub(super) type Row = (String, String, String, String, i64, i64);

pub(super) fn from_row((id, tenant_id, issuer, jwks, version, created_at): Row) -> Result<UploadedIssuer> {
    Ok(UploadedIssuer { id: parse_id(&id)?, tenant_id: parse_id(&tenant_id)?, issuer, jwks, version, created_at })
}

impl Store {
    pub async fn uploaded_issuers(&self, tenant_id: &Uuid) -> Result<Vec<UploadedIssuer>> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, tenant_id, issuer, jwks, version, created_at FROM federated_issuers WHERE tenant_id = $1 ORDER BY issuer",
        )
        .bind(tenant_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// The keys a tenant uploaded for `issuer`, if any.
    pub async fn uploaded_issuer(&self, tenant_id: &Uuid, issuer: &str) -> Result<Option<UploadedIssuer>> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, tenant_id, issuer, jwks, version, created_at FROM federated_issuers WHERE tenant_id = $1 AND issuer = $2",
        )
        .bind(tenant_id.to_string())
        .bind(issuer)
        .fetch_optional(&self.pool)
        .await?;
        row.map(from_row).transpose()
    }

    pub async fn uploaded_issuer_by_id(&self, tenant_id: &Uuid, id: &Uuid) -> Result<Option<UploadedIssuer>> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, tenant_id, issuer, jwks, version, created_at FROM federated_issuers WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(from_row).transpose()
    }

    pub async fn create_uploaded_issuer(&self, issuer: &UploadedIssuer, audit: &DirectoryAudit) -> Result<()> {
        self.write(&DirectoryWrite::CreateIssuer(issuer.clone()), audit).await.map(|_| ())
    }

    /// Replaces the key set if the version is still `expected_version` (when given).
    pub async fn update_uploaded_issuer(
        &self,
        issuer: &UploadedIssuer,
        expected_version: Option<i64>,
        audit: &DirectoryAudit,
    ) -> Result<i64> {
        let write = DirectoryWrite::UpdateIssuer { issuer: issuer.clone(), expected_version };
        Ok(self.write(&write, audit).await?.expect("an update returns the new version"))
    }

    pub async fn delete_uploaded_issuer(&self, issuer: &UploadedIssuer, audit: &DirectoryAudit) -> Result<()> {
        self.write(&DirectoryWrite::DeleteIssuer(issuer.clone()), audit).await.map(|_| ())
    }
}

pub(super) async fn insert_issuer(conn: &mut sqlx::AnyConnection, issuer: &UploadedIssuer) -> Result<()> {
    sqlx::query(
        "INSERT INTO federated_issuers (id, tenant_id, issuer, jwks, version, created_at) VALUES ($1, $2, $3, $4, 1, $5)",
    )
    .bind(issuer.id.to_string())
    .bind(issuer.tenant_id.to_string())
    .bind(&issuer.issuer)
    .bind(&issuer.jwks)
    .bind(issuer.created_at)
    .execute(&mut *conn)
    .await
    .map_err(conflict_on_unique(format!("Keys for the issuer '{}' are already uploaded in this tenant.", issuer.issuer)))?;
    Ok(())
}

pub(super) async fn update_issuer(
    conn: &mut sqlx::AnyConnection,
    issuer: &UploadedIssuer,
    expected_version: Option<i64>,
) -> Result<i64> {
    let current = super::checked_version(
        &mut *conn,
        "SELECT version FROM federated_issuers WHERE id = $1",
        &issuer.id.to_string(),
        expected_version,
    )
    .await?;
    sqlx::query("UPDATE federated_issuers SET jwks = $2, version = version + 1 WHERE id = $1 AND version = $3")
        .bind(issuer.id.to_string())
        .bind(&issuer.jwks)
        .bind(current)
        .execute(&mut *conn)
        .await?;
    Ok(current + 1)
}
