//! Tenants: isolated directories, each with its own issuer and signing keys.

use sqlx::AnyConnection;

use super::signing_keys::insert_signing_key;
use super::{Result, Store, StoredSigningKey};
use crate::directory::{AppRoleAssignment, Tenant, builtin};

/// What a tenant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantPolicy {
    /// New client secrets are refused (secrets are the weak link FICs replace).
    pub block_password_credentials: bool,
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: String,
    display_name: String,
    created_at: i64,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = super::StoreError;
    fn try_from(row: TenantRow) -> Result<Self> {
        Ok(Tenant { id: super::parse_id(&row.id)?, display_name: row.display_name, created_at: row.created_at })
    }
}

impl Store {
    pub async fn tenant(&self, id: &uuid::Uuid) -> Result<Option<Tenant>> {
        let row: Option<TenantRow> = sqlx::query_as("SELECT id, display_name, created_at FROM tenants WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(Tenant::try_from).transpose()
    }

    pub async fn tenants(&self) -> Result<Vec<Tenant>> {
        let rows: Vec<TenantRow> =
            sqlx::query_as("SELECT id, display_name, created_at FROM tenants ORDER BY created_at, id")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(Tenant::try_from).collect()
    }

    /// The JWS algorithm the tenant's tokens are signed with (`RS256` unless changed).
    pub async fn token_signing_algorithm(&self, id: &uuid::Uuid) -> Result<String> {
        let row: Option<(String,)> = sqlx::query_as("SELECT token_signing_algorithm FROM tenants WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.ok_or(super::StoreError::NotFound)?.0)
    }

    /// Changes the tenant's token signing algorithm; key maintenance then replaces
    /// its keys (see `signing::rotation::plan`).
    pub async fn set_token_signing_algorithm(
        &self,
        id: &uuid::Uuid,
        algorithm: &str,
        audit: &super::DirectoryAudit,
    ) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.begin_write(&mut conn).await?;
        sqlx::query("UPDATE tenants SET token_signing_algorithm = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(algorithm)
            .execute(&mut *tx)
            .await?;
        super::audit::insert_audit(&mut tx, audit).await?;
        self.commit_directory_change(tx).await?;
        Ok(())
    }

    /// The tenant's credential policy.
    pub async fn tenant_policy(&self, id: &uuid::Uuid) -> Result<TenantPolicy> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT block_password_credentials FROM tenants WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let (block,) = row.ok_or(super::StoreError::NotFound)?;
        Ok(TenantPolicy { block_password_credentials: block != 0 })
    }

    pub async fn set_tenant_policy(
        &self,
        id: &uuid::Uuid,
        policy: &TenantPolicy,
        audit: &super::DirectoryAudit,
    ) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.begin_write(&mut conn).await?;
        sqlx::query("UPDATE tenants SET block_password_credentials = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(i64::from(policy.block_password_credentials))
            .execute(&mut *tx)
            .await?;
        super::audit::insert_audit(&mut tx, audit).await?;
        self.commit_directory_change(tx).await?;
        Ok(())
    }

    /// The signing-key generation of every tenant, for cheap change detection.
    pub async fn tenant_key_generations(&self) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as("SELECT id, key_generation FROM tenants").fetch_all(&self.pool).await?)
    }
}

/// Inserts a tenant and its first signing keys inside the caller's transaction.
pub(super) async fn insert_tenant(conn: &mut AnyConnection, tenant: &Tenant, keys: &[StoredSigningKey]) -> Result<()> {
    sqlx::query("INSERT INTO tenants (id, display_name, created_at, key_generation) VALUES ($1, $2, $3, 1)")
        .bind(tenant.id.to_string())
        .bind(&tenant.display_name)
        .bind(tenant.created_at)
        .execute(&mut *conn)
        .await?;
    for key in keys {
        insert_signing_key(conn, key).await?;
    }
    Ok(())
}

/// A new tenant with its first keys and, optionally, its first administrator
/// application (granted `Directory.ReadWrite.All` on the admin API).
pub struct NewTenant<'a> {
    pub tenant: &'a Tenant,
    pub keys: &'a [StoredSigningKey],
    pub admin: Option<(&'a super::NewApplication, &'a super::NewPasswordCredential)>,
}

impl Store {
    /// Creates a tenant (keys, admin application) in one transaction, with its
    /// audit record when an administrator asked for it.
    pub async fn create_tenant(&self, new: &NewTenant<'_>, audit: Option<&super::DirectoryAudit>) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.begin_write(&mut conn).await?;
        insert_tenant_with_admin(&mut tx, new).await?;
        if let Some(audit) = audit {
            super::audit::insert_audit(&mut tx, audit).await?;
        }
        self.commit_directory_change(tx).await?;
        Ok(())
    }

    /// Bootstraps an empty store: creates the first tenant only if no process has
    /// bootstrapped this database before. The claim (`wisp_meta.bootstrap`) and the
    /// tenant commit together, so of several processes starting at once against one
    /// PostgreSQL database exactly one returns `true`.
    pub async fn bootstrap(&self, new: &NewTenant<'_>) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.begin_write(&mut conn).await?;
        let claimed =
            sqlx::query("INSERT INTO wisp_meta (name, value) VALUES ('bootstrap', $1) ON CONFLICT (name) DO NOTHING")
                .bind(new.tenant.id.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if claimed != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_tenant_with_admin(&mut tx, new).await?;
        self.commit_directory_change(tx).await?;
        Ok(true)
    }
}

async fn insert_tenant_with_admin(conn: &mut AnyConnection, new: &NewTenant<'_>) -> Result<()> {
    insert_tenant(conn, new.tenant, new.keys).await?;
    let tenant_id = new.tenant.id.to_string();
    // Every tenant has the built-in resources (wisp's admin API), so role
    // assignments can point at their service principals.
    let mut admin_api_sp = None;
    for builtin in builtin::ALL {
        let sp_id = uuid::Uuid::new_v4();
        super::principals::insert_service_principal(
            conn,
            &sp_id.to_string(),
            &tenant_id,
            builtin.app_id,
            builtin.display_name,
            "BuiltIn",
            new.tenant.created_at,
        )
        .await?;
        if builtin.app_id == builtin::ADMIN_API.app_id {
            admin_api_sp = Some(sp_id);
        }
    }
    if let Some((app, secret)) = new.admin {
        super::applications::insert_application(conn, app).await?;
        super::applications::insert_password_credential(conn, secret).await?;
        let role = builtin::ADMIN_API
            .role_by_value(builtin::DIRECTORY_READ_WRITE_ALL)
            .expect("the admin API defines Directory.ReadWrite.All");
        let assignment = AppRoleAssignment {
            id: uuid::Uuid::new_v4(),
            tenant_id: new.tenant.id,
            principal_id: super::parse_id(&app.service_principal_id)?,
            resource_id: admin_api_sp.expect("the admin API is built in"),
            app_role_id: super::parse_id(role.id)?,
            created_at: new.tenant.created_at,
        };
        super::principals::insert_app_role_assignment(conn, &assignment).await?;
    }
    Ok(())
}
