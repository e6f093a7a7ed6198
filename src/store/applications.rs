//! Applications (app registrations), their service principals and client secrets.

use sqlx::AnyConnection;

use super::{Result, Store};

/// An application to create, together with its service principal in its home tenant.
#[derive(Debug, Clone)]
pub struct NewApplication {
    pub id: String,
    pub app_id: String,
    pub tenant_id: String,
    pub display_name: String,
    pub sign_in_audience: String,
    pub service_principal_id: String,
    pub created_at: i64,
}

/// A client secret to store: only its keyed hash, never the secret itself.
#[derive(Clone)]
pub struct NewPasswordCredential {
    pub key_id: String,
    pub application_id: String,
    pub display_name: Option<String>,
    pub hint: String,
    pub secret_hash: Vec<u8>,
    pub start_at: i64,
    pub end_at: i64,
}

/// A stored client secret's hash and validity, for checking a presented secret.
#[derive(Clone, sqlx::FromRow)]
pub struct StoredPasswordCredential {
    pub key_id: String,
    pub secret_hash: Vec<u8>,
    pub start_at: i64,
    pub end_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredApplication {
    pub id: String,
    pub app_id: String,
    pub tenant_id: String,
    pub display_name: String,
    pub sign_in_audience: String,
    pub created_at: i64,
}

impl Store {
    pub async fn application_by_app_id(&self, app_id: &str) -> Result<Option<StoredApplication>> {
        Ok(sqlx::query_as(
            "SELECT id, app_id, tenant_id, display_name, sign_in_audience, created_at \
             FROM applications WHERE app_id = $1",
        )
        .bind(app_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn password_credentials(
        &self,
        application_id: &str,
    ) -> Result<Vec<StoredPasswordCredential>> {
        Ok(sqlx::query_as(
            "SELECT key_id, secret_hash, start_at, end_at FROM password_credentials \
             WHERE application_id = $1 ORDER BY start_at, key_id",
        )
        .bind(application_id)
        .fetch_all(&self.pool)
        .await?)
    }
}

pub(super) async fn insert_application(
    conn: &mut AnyConnection,
    app: &NewApplication,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO applications (id, app_id, tenant_id, display_name, sign_in_audience, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&app.id)
    .bind(&app.app_id)
    .bind(&app.tenant_id)
    .bind(&app.display_name)
    .bind(&app.sign_in_audience)
    .bind(app.created_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO service_principals (id, tenant_id, app_id, display_name, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&app.service_principal_id)
    .bind(&app.tenant_id)
    .bind(&app.app_id)
    .bind(&app.display_name)
    .bind(app.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn insert_password_credential(
    conn: &mut AnyConnection,
    cred: &NewPasswordCredential,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO password_credentials \
         (key_id, application_id, display_name, hint, secret_hash, start_at, end_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&cred.key_id)
    .bind(&cred.application_id)
    .bind(&cred.display_name)
    .bind(&cred.hint)
    .bind(&cred.secret_hash)
    .bind(cred.start_at)
    .bind(cred.end_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
