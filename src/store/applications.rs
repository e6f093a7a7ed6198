//! Applications (app registrations), their identifier URIs, and client secrets.
//! Creating an application also creates its service principal in its home tenant.

use std::collections::HashMap;

use sqlx::AnyConnection;
use uuid::Uuid;

use super::audit::{DirectoryAudit, insert_audit};
use super::snapshot::KeyRowWithOwner;
use super::writes::DirectoryWrite;
use super::{Listed, Page, Result, Store, StoreError, conflict_on_unique, parse_id};
use crate::directory::{AppRole, Application, KeyCredentialInfo, PasswordCredentialInfo};

/// Certificates to add to and remove from an application with an update.
#[derive(Debug, Clone, Default)]
pub struct KeyCredentialChanges {
    /// Public metadata and the certificate's DER.
    pub add: Vec<(KeyCredentialInfo, Vec<u8>)>,
    pub remove: Vec<Uuid>,
}

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

#[derive(sqlx::FromRow)]
pub(super) struct ApplicationRow {
    pub(super) id: String,
    app_id: String,
    tenant_id: String,
    display_name: String,
    description: Option<String>,
    sign_in_audience: String,
    app_roles: String,
    requested_token_version: Option<i32>,
    version: i64,
    created_at: i64,
}

pub(super) const APP_COLUMNS: &str = "id, app_id, tenant_id, display_name, description, sign_in_audience, app_roles, \
                           requested_token_version, version, created_at";

impl ApplicationRow {
    pub(super) fn into_application(self, identifier_uris: Vec<String>) -> Result<Application> {
        let app_roles: Vec<AppRole> = serde_json::from_str(&self.app_roles)
            .map_err(|e| StoreError::Corrupt(format!("app roles of {}: {e}", self.id)))?;
        Ok(Application {
            id: parse_id(&self.id)?,
            app_id: parse_id(&self.app_id)?,
            tenant_id: parse_id(&self.tenant_id)?,
            display_name: self.display_name,
            description: self.description,
            sign_in_audience: self.sign_in_audience,
            identifier_uris,
            app_roles,
            requested_token_version: self.requested_token_version,
            version: self.version,
            created_at: self.created_at,
        })
    }
}

impl Store {
    /// Creates an application, its identifier URIs and its home service principal.
    pub async fn create_application(
        &self,
        app: &Application,
        service_principal_id: &Uuid,
        audit: &DirectoryAudit,
    ) -> Result<()> {
        let write = DirectoryWrite::CreateApplication {
            app: app.clone(),
            service_principal_id: *service_principal_id,
            certificates: Vec::new(),
        };
        self.write(&write, audit).await.map(|_| ())
    }

    /// An application of `tenant_id` by object id.
    pub async fn application(&self, tenant_id: &Uuid, id: &Uuid) -> Result<Option<Application>> {
        let row: Option<ApplicationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {APP_COLUMNS} FROM applications WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        self.with_uris(row).await
    }

    /// An application by client id, in any tenant.
    pub async fn application_by_app_id(&self, app_id: &str) -> Result<Option<Application>> {
        let row: Option<ApplicationRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {APP_COLUMNS} FROM applications WHERE app_id = $1")))
                .bind(app_id.to_ascii_lowercase())
                .fetch_optional(&self.pool)
                .await?;
        self.with_uris(row).await
    }

    /// The application of `tenant_id` that has `uri` among its identifier URIs.
    pub async fn application_by_identifier_uri(&self, tenant_id: &Uuid, uri: &str) -> Result<Option<Application>> {
        let id: Option<(String,)> =
            sqlx::query_as("SELECT application_id FROM identifier_uris WHERE tenant_id = $1 AND uri = $2")
                .bind(tenant_id.to_string())
                .bind(uri)
                .fetch_optional(&self.pool)
                .await?;
        match id {
            Some((id,)) => self.application(tenant_id, &parse_id(&id)?).await,
            None => Ok(None),
        }
    }

    async fn with_uris(&self, row: Option<ApplicationRow>) -> Result<Option<Application>> {
        let Some(row) = row else { return Ok(None) };
        let uris: Vec<(String,)> =
            sqlx::query_as("SELECT uri FROM identifier_uris WHERE application_id = $1 ORDER BY uri")
                .bind(&row.id)
                .fetch_all(&self.pool)
                .await?;
        row.into_application(uris.into_iter().map(|(u,)| u).collect()).map(Some)
    }

    /// Applications of a tenant, one page. Filterable on `appId`, `displayName`.
    pub async fn applications(&self, tenant_id: &Uuid, page: &Page) -> Result<Listed<Application>> {
        let (clause, binds) = page.clause(2);
        let mut query = sqlx::query_as::<_, ApplicationRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {APP_COLUMNS} FROM applications WHERE tenant_id = $1{clause}"
        )))
        .bind(tenant_id.to_string());
        for bind in binds {
            query = query.bind(bind);
        }
        let rows = query.fetch_all(&self.pool).await?;
        // The page's identifier URIs in one query, not one per application.
        let mut uris: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
        if !rows.is_empty() {
            let placeholders: Vec<String> = (2..rows.len() + 2).map(|n| format!("${n}")).collect();
            let mut select = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(format!(
                "SELECT application_id, uri FROM identifier_uris WHERE tenant_id = $1 AND application_id IN ({}) \
                 ORDER BY uri",
                placeholders.join(", ")
            )))
            .bind(tenant_id.to_string());
            for row in &rows {
                select = select.bind(row.id.clone());
            }
            for (application, uri) in select.fetch_all(&self.pool).await? {
                uris.entry(application).or_default().push(uri);
            }
        }
        let apps = rows
            .into_iter()
            .map(|row| {
                let own = uris.remove(&row.id).unwrap_or_default();
                row.into_application(own)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Listed::from_rows(apps, page.top))
    }

    /// Replaces an application's attributes if its version is still
    /// `expected_version` (when given). Returns the new version.
    pub async fn update_application(
        &self,
        app: &Application,
        expected_version: Option<i64>,
        keys: &KeyCredentialChanges,
        audit: &DirectoryAudit,
    ) -> Result<i64> {
        let write = DirectoryWrite::UpdateApplication { app: app.clone(), expected_version, keys: keys.clone() };
        Ok(self.write(&write, audit).await?.expect("an update returns the new version"))
    }

    /// Deletes an application with its credentials, its service principals in
    /// every tenant, and the role assignments that involve them.
    pub async fn delete_application(
        &self,
        app: &Application,
        expected_version: Option<i64>,
        audit: &DirectoryAudit,
    ) -> Result<()> {
        self.write(&DirectoryWrite::DeleteApplication { app: app.clone(), expected_version }, audit).await.map(|_| ())
    }

    /// Adds a client secret (its hash) to an application.
    pub async fn add_password_credential(&self, cred: &NewPasswordCredential, audit: &DirectoryAudit) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.begin_write(&mut conn).await?;
        insert_password_credential(&mut tx, cred).await?;
        insert_audit(&mut tx, audit).await?;
        self.commit_directory_change(tx).await?;
        Ok(())
    }

    /// Removes a client secret. `false`: no such secret on this application.
    pub async fn remove_password_credential(
        &self,
        application_id: &Uuid,
        key_id: &Uuid,
        audit: &DirectoryAudit,
    ) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.begin_write(&mut conn).await?;
        let removed = sqlx::query("DELETE FROM password_credentials WHERE application_id = $1 AND key_id = $2")
            .bind(application_id.to_string())
            .bind(key_id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 1 {
            insert_audit(&mut tx, audit).await?;
            self.commit_directory_change(tx).await?;
        }
        Ok(removed == 1)
    }

    /// The hashes of an application's client secrets, for authentication.
    pub async fn password_credentials(&self, application_id: &str) -> Result<Vec<StoredPasswordCredential>> {
        Ok(sqlx::query_as(
            "SELECT key_id, secret_hash, start_at, end_at FROM password_credentials \
             WHERE application_id = $1 ORDER BY start_at, key_id",
        )
        .bind(application_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The public metadata of the secrets and certificates of several
    /// applications (a page of a list), in two queries.
    pub async fn credential_infos(
        &self,
        application_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, (Vec<PasswordCredentialInfo>, Vec<KeyCredentialInfo>)>> {
        let mut out: HashMap<Uuid, (Vec<PasswordCredentialInfo>, Vec<KeyCredentialInfo>)> = HashMap::new();
        if application_ids.is_empty() {
            return Ok(out);
        }
        let placeholders: Vec<String> = (1..=application_ids.len()).map(|n| format!("${n}")).collect();
        let list = placeholders.join(", ");
        let mut secrets =
            sqlx::query_as::<_, (String, String, Option<String>, String, i64, i64)>(sqlx::AssertSqlSafe(format!(
                "SELECT application_id, key_id, display_name, hint, start_at, end_at FROM password_credentials \
                 WHERE application_id IN ({list}) ORDER BY start_at, key_id"
            )));
        let mut keys = sqlx::query_as::<_, KeyRowWithOwner>(sqlx::AssertSqlSafe(format!(
            "SELECT application_id, key_id, display_name, thumbprint_sha1, thumbprint_sha256, start_at, end_at, \
             certificate FROM key_credentials WHERE application_id IN ({list}) ORDER BY start_at, key_id"
        )));
        for id in application_ids {
            secrets = secrets.bind(id.to_string());
            keys = keys.bind(id.to_string());
        }
        for (owner, key_id, display_name, hint, start_at, end_at) in secrets.fetch_all(&self.pool).await? {
            let info = PasswordCredentialInfo { key_id: parse_id(&key_id)?, display_name, hint, start_at, end_at };
            out.entry(parse_id(&owner)?).or_default().0.push(info);
        }
        for row in keys.fetch_all(&self.pool).await? {
            let (info, _) = row.row.into_parts()?;
            out.entry(parse_id(&row.application_id)?).or_default().1.push(info);
        }
        Ok(out)
    }

    /// The public metadata of an application's client secrets.
    pub async fn password_credential_infos(&self, application_id: &Uuid) -> Result<Vec<PasswordCredentialInfo>> {
        let rows: Vec<(String, Option<String>, String, i64, i64)> = sqlx::query_as(
            "SELECT key_id, display_name, hint, start_at, end_at FROM password_credentials \
             WHERE application_id = $1 ORDER BY start_at, key_id",
        )
        .bind(application_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(key_id, display_name, hint, start_at, end_at)| {
                Ok(PasswordCredentialInfo { key_id: parse_id(&key_id)?, display_name, hint, start_at, end_at })
            })
            .collect()
    }
}

pub(super) async fn update_application(
    conn: &mut AnyConnection,
    app: &Application,
    expected_version: Option<i64>,
    keys: &KeyCredentialChanges,
) -> Result<i64> {
    let current = super::checked_version(
        &mut *conn,
        "SELECT version FROM applications WHERE id = $1",
        &app.id.to_string(),
        expected_version,
    )
    .await?;
    let updated = sqlx::query(
        "UPDATE applications SET display_name = $2, sign_in_audience = $3, version = version + 1 \
             WHERE id = $1 AND version = $4",
    )
    .bind(app.id.to_string())
    .bind(&app.display_name)
    .bind(&app.sign_in_audience)
    .bind(current)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated != 1 {
        return Err(StoreError::PreconditionFailed);
    }
    sqlx::query("DELETE FROM identifier_uris WHERE application_id = $1")
        .bind(app.id.to_string())
        .execute(&mut *conn)
        .await?;
    write_app_attributes(&mut *conn, app).await?;
    sqlx::query("UPDATE service_principals SET display_name = $2 WHERE app_id = $1")
        .bind(app.app_id.to_string())
        .bind(&app.display_name)
        .execute(&mut *conn)
        .await?;
    for key_id in &keys.remove {
        sqlx::query("DELETE FROM key_credentials WHERE application_id = $1 AND key_id = $2")
            .bind(app.id.to_string())
            .bind(key_id.to_string())
            .execute(&mut *conn)
            .await?;
    }
    for (key, certificate) in &keys.add {
        super::credentials::insert_key_credential(&mut *conn, &app.id, key, certificate).await?;
    }
    Ok(current + 1)
}

pub(super) async fn delete_application(
    conn: &mut AnyConnection,
    app: &Application,
    expected_version: Option<i64>,
) -> Result<()> {
    super::checked_version(
        &mut *conn,
        "SELECT version FROM applications WHERE id = $1",
        &app.id.to_string(),
        expected_version,
    )
    .await?;
    sqlx::query("DELETE FROM federated_identity_credentials WHERE owner_id = $1")
        .bind(app.id.to_string())
        .execute(&mut *conn)
        .await?;
    // Role assignments cascade from the service principals.
    sqlx::query("DELETE FROM service_principals WHERE app_id = $1")
        .bind(app.app_id.to_string())
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM applications WHERE id = $1").bind(app.id.to_string()).execute(&mut *conn).await?;
    Ok(())
}

/// Writes the attributes kept outside the base row: roles, description, token
/// version, identifier URIs (unique in the tenant).
pub(super) async fn write_app_attributes(conn: &mut AnyConnection, app: &Application) -> Result<()> {
    let roles = serde_json::to_string(&app.app_roles).expect("app roles serialize");
    sqlx::query("UPDATE applications SET app_roles = $2, description = $3, requested_token_version = $4 WHERE id = $1")
        .bind(app.id.to_string())
        .bind(roles)
        .bind(&app.description)
        .bind(app.requested_token_version)
        .execute(&mut *conn)
        .await?;
    for uri in &app.identifier_uris {
        sqlx::query("INSERT INTO identifier_uris (tenant_id, uri, application_id) VALUES ($1, $2, $3)")
            .bind(app.tenant_id.to_string())
            .bind(uri)
            .bind(app.id.to_string())
            .execute(&mut *conn)
            .await
            .map_err(conflict_on_unique(format!(
                "Another object with the same value for property identifierUris already exists: '{uri}'."
            )))?;
    }
    Ok(())
}

pub(super) async fn insert_application(conn: &mut AnyConnection, app: &NewApplication) -> Result<()> {
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
    super::principals::insert_service_principal(
        conn,
        &app.service_principal_id,
        &app.tenant_id,
        &app.app_id,
        &app.display_name,
        "Application",
        app.created_at,
    )
    .await
}

pub(super) async fn insert_password_credential(conn: &mut AnyConnection, cred: &NewPasswordCredential) -> Result<()> {
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
