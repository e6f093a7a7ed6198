//! Federated identity credentials (on applications and user-assigned managed
//! identities) and uploaded certificates (key credentials).

use sqlx::AnyConnection;
use uuid::Uuid;

use super::audit::DirectoryAudit;
use super::writes::DirectoryWrite;
use super::{Result, Store, StoreError, conflict_on_unique, parse_id};
use crate::directory::{ClaimsExpression, FederatedCredential, KeyCredentialInfo};

/// What kind of object owns a FIC: the table whose row is locked while the
/// owner's credentials change, so the per-owner limit holds under concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FicOwner {
    Application,
    ManagedIdentity,
}

#[derive(sqlx::FromRow)]
pub(super) struct FicRow {
    id: String,
    owner_id: String,
    name: String,
    issuer: String,
    subject: Option<String>,
    expression: Option<String>,
    expression_language: Option<i32>,
    expression_compiled: Option<String>,
    audiences: String,
    description: Option<String>,
    version: i64,
    created_at: i64,
}

impl TryFrom<FicRow> for FederatedCredential {
    type Error = StoreError;
    fn try_from(row: FicRow) -> Result<Self> {
        Ok(FederatedCredential {
            id: parse_id(&row.id)?,
            owner_id: parse_id(&row.owner_id)?,
            audiences: serde_json::from_str(&row.audiences)
                .map_err(|e| StoreError::Corrupt(format!("audiences of FIC {}: {e}", row.id)))?,
            expression: match (row.expression, row.expression_language, row.expression_compiled) {
                (Some(value), Some(language_version), Some(compiled)) => Some(ClaimsExpression {
                    value,
                    language_version,
                    compiled: serde_json::from_str(&compiled)
                        .map_err(|e| StoreError::Corrupt(format!("expression of FIC {}: {e}", row.id)))?,
                }),
                (None, _, _) => None,
                _ => return Err(StoreError::Corrupt(format!("FIC {} has a partial expression", row.id))),
            },
            name: row.name,
            issuer: row.issuer,
            subject: row.subject,
            description: row.description,
            version: row.version,
            created_at: row.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct KeyCredentialRow {
    key_id: String,
    display_name: Option<String>,
    thumbprint_sha1: String,
    thumbprint_sha256: String,
    start_at: i64,
    end_at: i64,
    certificate: Vec<u8>,
}

impl KeyCredentialRow {
    pub(super) fn into_parts(self) -> Result<(KeyCredentialInfo, Vec<u8>)> {
        let info = KeyCredentialInfo {
            key_id: parse_id(&self.key_id)?,
            display_name: self.display_name,
            thumbprint_sha1: self.thumbprint_sha1,
            thumbprint_sha256: self.thumbprint_sha256,
            start_at: self.start_at,
            end_at: self.end_at,
        };
        Ok((info, self.certificate))
    }
}

pub(super) const FIC_COLUMNS: &str = "id, owner_id, name, issuer, subject, audiences, description, version, created_at, \
                           expression, expression_language, expression_compiled";

fn duplicate_pair() -> String {
    "A federated identity credential with the same issuer and subject already exists on this object.".into()
}

impl Store {
    /// Every FIC of an owner, by name.
    pub async fn federated_credentials(&self, owner_id: &Uuid) -> Result<Vec<FederatedCredential>> {
        let rows: Vec<FicRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {FIC_COLUMNS} FROM federated_identity_credentials WHERE owner_id = $1 ORDER BY name"
        )))
        .bind(owner_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(FederatedCredential::try_from).collect()
    }

    /// One FIC of an owner, by id or by name.
    pub async fn federated_credential(&self, owner_id: &Uuid, id_or_name: &str) -> Result<Option<FederatedCredential>> {
        let row: Option<FicRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {FIC_COLUMNS} FROM federated_identity_credentials \
             WHERE owner_id = $1 AND (id = $2 OR name = $2)"
        )))
        .bind(owner_id.to_string())
        .bind(id_or_name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(FederatedCredential::try_from).transpose()
    }

    /// Adds a FIC unless the owner already has `max` of them, or one with the same
    /// name, or the same issuer and subject.
    pub async fn create_federated_credential(
        &self,
        owner: FicOwner,
        tenant_id: &Uuid,
        fic: &FederatedCredential,
        max: usize,
        audit: &DirectoryAudit,
    ) -> Result<()> {
        let write = DirectoryWrite::CreateFic { owner, tenant_id: *tenant_id, fic: fic.clone(), max };
        self.write(&write, audit).await.map(|_| ())
    }

    /// Replaces a FIC's issuer, subject, audiences and description if its version
    /// is still `expected_version` (when given). The name never changes.
    pub async fn update_federated_credential(
        &self,
        fic: &FederatedCredential,
        expected_version: Option<i64>,
        audit: &DirectoryAudit,
    ) -> Result<()> {
        self.write(&DirectoryWrite::UpdateFic { fic: fic.clone(), expected_version }, audit).await.map(|_| ())
    }

    pub async fn delete_federated_credential(
        &self,
        fic: &FederatedCredential,
        expected_version: Option<i64>,
        audit: &DirectoryAudit,
    ) -> Result<()> {
        self.write(&DirectoryWrite::DeleteFic { fic: fic.clone(), expected_version }, audit).await.map(|_| ())
    }

    /// An application's certificates with their DER, for verifying assertions.
    pub async fn key_credential_certificates(
        &self,
        application_id: &Uuid,
    ) -> Result<Vec<(KeyCredentialInfo, Vec<u8>)>> {
        self.key_credential_rows(application_id).await?.into_iter().map(KeyCredentialRow::into_parts).collect()
    }

    /// The public metadata of an application's certificates.
    pub async fn key_credentials(&self, application_id: &Uuid) -> Result<Vec<KeyCredentialInfo>> {
        let rows = self.key_credential_rows(application_id).await?;
        rows.into_iter().map(|row| row.into_parts().map(|(info, _)| info)).collect()
    }

    async fn key_credential_rows(&self, application_id: &Uuid) -> Result<Vec<KeyCredentialRow>> {
        Ok(sqlx::query_as(
            "SELECT key_id, display_name, thumbprint_sha1, thumbprint_sha256, start_at, end_at, certificate \
             FROM key_credentials WHERE application_id = $1 ORDER BY start_at, key_id",
        )
        .bind(application_id.to_string())
        .fetch_all(&self.pool)
        .await?)
    }
}

pub(super) async fn insert_fic(
    conn: &mut AnyConnection,
    owner: FicOwner,
    tenant_id: &Uuid,
    fic: &FederatedCredential,
    max: usize,
) -> Result<()> {
    lock_owner(&mut *conn, owner, &fic.owner_id).await?;
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM federated_identity_credentials WHERE owner_id = $1")
        .bind(fic.owner_id.to_string())
        .fetch_one(&mut *conn)
        .await?;
    if count as usize >= max {
        return Err(StoreError::Conflict(format!(
            "This object already has the maximum of {max} federated identity credentials."
        )));
    }
    let (same_name,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM federated_identity_credentials WHERE owner_id = $1 AND name = $2")
            .bind(fic.owner_id.to_string())
            .bind(&fic.name)
            .fetch_one(&mut *conn)
            .await?;
    if same_name > 0 {
        return Err(StoreError::Conflict(format!(
            "A federated identity credential named '{}' already exists on this object.",
            fic.name
        )));
    }
    sqlx::query(
        "INSERT INTO federated_identity_credentials \
             (id, owner_id, tenant_id, name, issuer, subject, audiences, description, version, created_at, \
              expression, expression_language, expression_compiled) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $10, $11, $12)",
    )
    .bind(fic.id.to_string())
    .bind(fic.owner_id.to_string())
    .bind(tenant_id.to_string())
    .bind(&fic.name)
    .bind(&fic.issuer)
    .bind(&fic.subject)
    .bind(serde_json::to_string(&fic.audiences).expect("audiences serialize"))
    .bind(&fic.description)
    .bind(fic.created_at)
    .bind(fic.expression.as_ref().map(|e| e.value.clone()))
    .bind(fic.expression.as_ref().map(|e| e.language_version))
    .bind(fic.expression.as_ref().map(|e| serde_json::to_string(&e.compiled).expect("expression serializes")))
    .execute(&mut *conn)
    .await
    .map_err(conflict_on_unique(duplicate_pair()))?;
    Ok(())
}

pub(super) async fn update_fic(
    conn: &mut AnyConnection,
    fic: &FederatedCredential,
    expected_version: Option<i64>,
) -> Result<i64> {
    let current = super::checked_version(
        &mut *conn,
        "SELECT version FROM federated_identity_credentials WHERE id = $1",
        &fic.id.to_string(),
        expected_version,
    )
    .await?;
    let updated = sqlx::query(
        "UPDATE federated_identity_credentials SET issuer = $2, subject = $3, audiences = $4, description = $5, \
             expression = $7, expression_language = $8, expression_compiled = $9, \
             version = version + 1 WHERE id = $1 AND version = $6",
    )
    .bind(fic.id.to_string())
    .bind(&fic.issuer)
    .bind(&fic.subject)
    .bind(serde_json::to_string(&fic.audiences).expect("audiences serialize"))
    .bind(&fic.description)
    .bind(current)
    .bind(fic.expression.as_ref().map(|e| e.value.clone()))
    .bind(fic.expression.as_ref().map(|e| e.language_version))
    .bind(fic.expression.as_ref().map(|e| serde_json::to_string(&e.compiled).expect("expression serializes")))
    .execute(&mut *conn)
    .await
    .map_err(conflict_on_unique(duplicate_pair()))?
    .rows_affected();
    if updated != 1 {
        return Err(StoreError::PreconditionFailed);
    }
    Ok(current + 1)
}

pub(super) async fn delete_fic(
    conn: &mut AnyConnection,
    fic: &FederatedCredential,
    expected_version: Option<i64>,
) -> Result<()> {
    super::checked_version(
        &mut *conn,
        "SELECT version FROM federated_identity_credentials WHERE id = $1",
        &fic.id.to_string(),
        expected_version,
    )
    .await?;
    sqlx::query("DELETE FROM federated_identity_credentials WHERE id = $1")
        .bind(fic.id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Stores an uploaded certificate's public part inside the caller's transaction.
pub(super) async fn insert_key_credential(
    conn: &mut AnyConnection,
    application_id: &Uuid,
    key: &KeyCredentialInfo,
    certificate: &[u8],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO key_credentials (key_id, application_id, display_name, certificate, thumbprint_sha1, \
         thumbprint_sha256, start_at, end_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(key.key_id.to_string())
    .bind(application_id.to_string())
    .bind(&key.display_name)
    .bind(certificate)
    .bind(&key.thumbprint_sha1)
    .bind(&key.thumbprint_sha256)
    .bind(key.start_at)
    .bind(key.end_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Takes the owner's row lock (PostgreSQL) or the write lock (SQLite) so that
/// concurrent FIC creations on one owner are serialized and the limit holds.
async fn lock_owner(conn: &mut AnyConnection, owner: FicOwner, owner_id: &Uuid) -> Result<()> {
    let sql = match owner {
        FicOwner::Application => "UPDATE applications SET version = version WHERE id = $1",
        FicOwner::ManagedIdentity => "UPDATE managed_identities SET display_name = display_name WHERE id = $1",
    };
    let locked = sqlx::query(sql).bind(owner_id.to_string()).execute(&mut *conn).await?.rows_affected();
    if locked == 1 { Ok(()) } else { Err(StoreError::NotFound) }
}
