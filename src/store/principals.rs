//! Service principals (an application's presence in a tenant) and the app-role
//! assignments between them.

use sqlx::AnyConnection;
use uuid::Uuid;

use super::audit::{DirectoryAudit, insert_audit};
use super::writes::DirectoryWrite;
use super::{Listed, Page, Result, Store, StoreError, conflict_on_unique, parse_id};
use crate::directory::{AppRoleAssignment, ServicePrincipal};

#[derive(sqlx::FromRow)]
pub(super) struct PrincipalRow {
    id: String,
    tenant_id: String,
    app_id: String,
    display_name: String,
    principal_type: String,
    created_at: i64,
}

impl TryFrom<PrincipalRow> for ServicePrincipal {
    type Error = StoreError;
    fn try_from(row: PrincipalRow) -> Result<Self> {
        Ok(ServicePrincipal {
            id: parse_id(&row.id)?,
            tenant_id: parse_id(&row.tenant_id)?,
            app_id: row.app_id,
            display_name: row.display_name,
            principal_type: row.principal_type,
            created_at: row.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct AssignmentRow {
    id: String,
    tenant_id: String,
    principal_id: String,
    resource_id: String,
    app_role_id: String,
    created_at: i64,
}

impl TryFrom<AssignmentRow> for AppRoleAssignment {
    type Error = StoreError;
    fn try_from(row: AssignmentRow) -> Result<Self> {
        Ok(AppRoleAssignment {
            id: parse_id(&row.id)?,
            tenant_id: parse_id(&row.tenant_id)?,
            principal_id: parse_id(&row.principal_id)?,
            resource_id: parse_id(&row.resource_id)?,
            app_role_id: parse_id(&row.app_role_id)?,
            created_at: row.created_at,
        })
    }
}

pub(super) const SP_COLUMNS: &str = "id, tenant_id, app_id, display_name, principal_type, created_at";
pub(super) const ASSIGNMENT_COLUMNS: &str = "id, tenant_id, principal_id, resource_id, app_role_id, created_at";

impl Store {
    pub async fn service_principal(&self, tenant_id: &Uuid, id: &Uuid) -> Result<Option<ServicePrincipal>> {
        let row: Option<PrincipalRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SP_COLUMNS} FROM service_principals WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(ServicePrincipal::try_from).transpose()
    }

    /// The service principal of client id `app_id` in `tenant_id`.
    pub async fn service_principal_by_app_id(
        &self,
        tenant_id: &Uuid,
        app_id: &str,
    ) -> Result<Option<ServicePrincipal>> {
        let row: Option<PrincipalRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SP_COLUMNS} FROM service_principals WHERE tenant_id = $1 AND app_id = $2"
        )))
        .bind(tenant_id.to_string())
        .bind(app_id.to_ascii_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        row.map(ServicePrincipal::try_from).transpose()
    }

    pub async fn service_principals(&self, tenant_id: &Uuid, page: &Page) -> Result<Listed<ServicePrincipal>> {
        let (clause, binds) = page.clause(2);
        let mut query = sqlx::query_as::<_, PrincipalRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {SP_COLUMNS} FROM service_principals WHERE tenant_id = $1{clause}"
        )))
        .bind(tenant_id.to_string());
        for bind in binds {
            query = query.bind(bind);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let items = rows.into_iter().map(ServicePrincipal::try_from).collect::<Result<Vec<_>>>()?;
        Ok(Listed::from_rows(items, page.top))
    }

    /// Creates a service principal (provisioning an application in a tenant).
    pub async fn create_service_principal(&self, sp: &ServicePrincipal, audit: &DirectoryAudit) -> Result<()> {
        self.write(&DirectoryWrite::CreateServicePrincipal(sp.clone()), audit).await.map(|_| ())
    }

    /// Deletes a service principal and (by cascade) its role assignments.
    pub async fn delete_service_principal(&self, tenant_id: &Uuid, id: &Uuid, audit: &DirectoryAudit) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.begin_write(&mut conn).await?;
        let deleted = sqlx::query("DELETE FROM service_principals WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id.to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 1 {
            insert_audit(&mut tx, audit).await?;
            self.commit_directory_change(tx).await?;
        }
        Ok(deleted == 1)
    }

    pub async fn create_app_role_assignment(
        &self,
        assignment: &AppRoleAssignment,
        audit: &DirectoryAudit,
    ) -> Result<()> {
        self.write(&DirectoryWrite::CreateAssignment(assignment.clone()), audit).await.map(|_| ())
    }

    /// Assignments on a resource (its `appRoleAssignedTo`).
    pub async fn app_role_assignments_to(
        &self,
        tenant_id: &Uuid,
        resource_id: &Uuid,
    ) -> Result<Vec<AppRoleAssignment>> {
        let rows: Vec<AssignmentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ASSIGNMENT_COLUMNS} FROM app_role_assignments WHERE tenant_id = $1 AND resource_id = $2 \
             ORDER BY created_at, id"
        )))
        .bind(tenant_id.to_string())
        .bind(resource_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(AppRoleAssignment::try_from).collect()
    }

    /// The ids of the roles `principal_id` holds on `resource_id`.
    pub async fn assigned_role_ids(&self, principal_id: &Uuid, resource_id: &Uuid) -> Result<Vec<Uuid>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT app_role_id FROM app_role_assignments WHERE principal_id = $1 AND resource_id = $2")
                .bind(principal_id.to_string())
                .bind(resource_id.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|(id,)| parse_id(id)).collect()
    }

    pub async fn delete_app_role_assignment(
        &self,
        tenant_id: &Uuid,
        resource_id: &Uuid,
        id: &Uuid,
        audit: &DirectoryAudit,
    ) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.begin_write(&mut conn).await?;
        let deleted =
            sqlx::query("DELETE FROM app_role_assignments WHERE tenant_id = $1 AND resource_id = $2 AND id = $3")
                .bind(tenant_id.to_string())
                .bind(resource_id.to_string())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if deleted == 1 {
            insert_audit(&mut tx, audit).await?;
            self.commit_directory_change(tx).await?;
        }
        Ok(deleted == 1)
    }
}

pub(super) async fn insert_service_principal(
    conn: &mut AnyConnection,
    id: &str,
    tenant_id: &str,
    app_id: &str,
    display_name: &str,
    principal_type: &str,
    created_at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO service_principals (id, tenant_id, app_id, display_name, principal_type, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(tenant_id)
    .bind(app_id)
    .bind(display_name)
    .bind(principal_type)
    .bind(created_at)
    .execute(&mut *conn)
    .await
    .map_err(conflict_on_unique(
        "The service principal cannot be created: one for this application already exists in the tenant.",
    ))?;
    Ok(())
}

/// Inserts a role assignment (also inside bootstrap's and tenant creation's transaction).
pub(super) async fn insert_app_role_assignment(conn: &mut AnyConnection, a: &AppRoleAssignment) -> Result<()> {
    sqlx::query(
        "INSERT INTO app_role_assignments (id, tenant_id, principal_id, resource_id, app_role_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(a.id.to_string())
    .bind(a.tenant_id.to_string())
    .bind(a.principal_id.to_string())
    .bind(a.resource_id.to_string())
    .bind(a.app_role_id.to_string())
    .bind(a.created_at)
    .execute(&mut *conn)
    .await
    .map_err(conflict_on_unique("Permission being assigned already exists on the object"))?;
    Ok(())
}
