//! Managed identities (user-assigned, and the system-assigned identity of a
//! compute resource) and compute resources with their attached identities.

use sqlx::AnyConnection;
use uuid::Uuid;

use super::audit::DirectoryAudit;
use super::writes::DirectoryWrite;
use super::{Listed, Page, Result, Store, StoreError, conflict_on_unique, parse_id};
use crate::directory::{ComputeResource, ManagedIdentity};

#[derive(sqlx::FromRow)]
pub(super) struct IdentityRow {
    id: String,
    tenant_id: String,
    kind: String,
    display_name: String,
    client_id: String,
    principal_id: String,
    created_at: i64,
}

impl TryFrom<IdentityRow> for ManagedIdentity {
    type Error = StoreError;
    fn try_from(row: IdentityRow) -> Result<Self> {
        Ok(ManagedIdentity {
            id: parse_id(&row.id)?,
            tenant_id: parse_id(&row.tenant_id)?,
            system_assigned: row.kind == "SystemAssigned",
            display_name: row.display_name,
            client_id: parse_id(&row.client_id)?,
            principal_id: parse_id(&row.principal_id)?,
            created_at: row.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ResourceRow {
    pub(super) id: String,
    tenant_id: String,
    name: String,
    system_identity_id: Option<String>,
    version: i64,
    created_at: i64,
}

impl ResourceRow {
    pub(super) fn into_resource(self, user_assigned: Vec<Uuid>) -> Result<ComputeResource> {
        Ok(ComputeResource {
            id: parse_id(&self.id)?,
            tenant_id: parse_id(&self.tenant_id)?,
            name: self.name,
            system_identity_id: self.system_identity_id.as_deref().map(parse_id).transpose()?,
            user_assigned,
            version: self.version,
            created_at: self.created_at,
        })
    }
}

pub(super) const IDENTITY_COLUMNS: &str = "id, tenant_id, kind, display_name, client_id, principal_id, created_at";
pub(super) const RESOURCE_COLUMNS: &str = "id, tenant_id, name, system_identity_id, version, created_at";

impl Store {
    /// Creates a user-assigned identity and its service principal.
    pub async fn create_managed_identity(&self, identity: &ManagedIdentity, audit: &DirectoryAudit) -> Result<()> {
        self.write(&DirectoryWrite::CreateIdentity(identity.clone()), audit).await.map(|_| ())
    }

    pub async fn managed_identity(&self, tenant_id: &Uuid, id: &Uuid) -> Result<Option<ManagedIdentity>> {
        let row: Option<IdentityRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {IDENTITY_COLUMNS} FROM managed_identities WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(ManagedIdentity::try_from).transpose()
    }

    /// A managed identity by client id, in any tenant.
    pub async fn managed_identity_by_client_id(&self, client_id: &str) -> Result<Option<ManagedIdentity>> {
        let row: Option<IdentityRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {IDENTITY_COLUMNS} FROM managed_identities WHERE client_id = $1"
        )))
        .bind(client_id.to_ascii_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        row.map(ManagedIdentity::try_from).transpose()
    }

    /// A managed identity by the object id of its service principal.
    pub async fn managed_identity_by_principal_id(
        &self,
        tenant_id: &Uuid,
        principal_id: &Uuid,
    ) -> Result<Option<ManagedIdentity>> {
        let row: Option<IdentityRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {IDENTITY_COLUMNS} FROM managed_identities WHERE tenant_id = $1 AND principal_id = $2"
        )))
        .bind(tenant_id.to_string())
        .bind(principal_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(ManagedIdentity::try_from).transpose()
    }

    /// User-assigned identities of a tenant, one page; filterable on `displayName`, `clientId`.
    pub async fn managed_identities(&self, tenant_id: &Uuid, page: &Page) -> Result<Listed<ManagedIdentity>> {
        let (clause, binds) = page.clause(2);
        let mut query = sqlx::query_as::<_, IdentityRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {IDENTITY_COLUMNS} FROM managed_identities WHERE tenant_id = $1 AND kind = 'UserAssigned'{clause}"
        )))
        .bind(tenant_id.to_string());
        for bind in binds {
            query = query.bind(bind);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let items = rows.into_iter().map(ManagedIdentity::try_from).collect::<Result<Vec<_>>>()?;
        Ok(Listed::from_rows(items, page.top))
    }

    /// Deletes a user-assigned identity: its FICs, attachments, role assignments
    /// and service principal go with it.
    pub async fn delete_managed_identity(&self, identity: &ManagedIdentity, audit: &DirectoryAudit) -> Result<()> {
        self.write(&DirectoryWrite::DeleteIdentity(identity.clone()), audit).await.map(|_| ())
    }

    /// Creates a compute resource, its system-assigned identity (when given) and
    /// its attachments of user-assigned identities.
    pub async fn create_compute_resource(
        &self,
        resource: &ComputeResource,
        system_identity: Option<&ManagedIdentity>,
        audit: &DirectoryAudit,
    ) -> Result<()> {
        let write =
            DirectoryWrite::CreateResource { resource: resource.clone(), system_identity: system_identity.cloned() };
        self.write(&write, audit).await.map(|_| ())
    }

    pub async fn compute_resource(&self, tenant_id: &Uuid, id: &Uuid) -> Result<Option<ComputeResource>> {
        let row: Option<ResourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {RESOURCE_COLUMNS} FROM compute_resources WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some(self.with_attachments(row).await?)),
            None => Ok(None),
        }
    }

    /// Compute resources of a tenant, one page; filterable on `name`.
    pub async fn compute_resources(&self, tenant_id: &Uuid, page: &Page) -> Result<Listed<ComputeResource>> {
        let (clause, binds) = page.clause(2);
        let mut query = sqlx::query_as::<_, ResourceRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {RESOURCE_COLUMNS} FROM compute_resources WHERE tenant_id = $1{clause}"
        )))
        .bind(tenant_id.to_string());
        for bind in binds {
            query = query.bind(bind);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            items.push(self.with_attachments(row).await?);
        }
        Ok(Listed::from_rows(items, page.top))
    }

    async fn with_attachments(&self, row: ResourceRow) -> Result<ComputeResource> {
        let attached: Vec<(String,)> =
            sqlx::query_as("SELECT identity_id FROM resource_identities WHERE resource_id = $1 ORDER BY identity_id")
                .bind(&row.id)
                .fetch_all(&self.pool)
                .await?;
        row.into_resource(attached.iter().map(|(id,)| parse_id(id)).collect::<Result<Vec<_>>>()?)
    }

    /// Replaces a resource's identities: adds `new_system_identity` (when turning
    /// system-assigned on), removes the old one (when turning it off), and sets
    /// the attached user-assigned identities. Checked against `expected_version`.
    pub async fn update_compute_resource(
        &self,
        resource: &ComputeResource,
        expected_version: Option<i64>,
        new_system_identity: Option<&ManagedIdentity>,
        removed_system_identity: Option<&ManagedIdentity>,
        audit: &DirectoryAudit,
    ) -> Result<i64> {
        let write = DirectoryWrite::UpdateResource {
            resource: resource.clone(),
            expected_version,
            new_system_identity: new_system_identity.cloned(),
            removed_system_identity: removed_system_identity.cloned(),
        };
        Ok(self.write(&write, audit).await?.expect("an update returns the new version"))
    }

    /// Deletes a resource and its system-assigned identity.
    pub async fn delete_compute_resource(
        &self,
        resource: &ComputeResource,
        system_identity: Option<&ManagedIdentity>,
        audit: &DirectoryAudit,
    ) -> Result<()> {
        let write =
            DirectoryWrite::DeleteResource { resource: resource.clone(), system_identity: system_identity.cloned() };
        self.write(&write, audit).await.map(|_| ())
    }
}

pub(super) async fn insert_resource(
    conn: &mut AnyConnection,
    resource: &ComputeResource,
    system_identity: Option<&ManagedIdentity>,
) -> Result<()> {
    if let Some(identity) = system_identity {
        insert_identity(&mut *conn, identity).await?;
    }
    sqlx::query(
        "INSERT INTO compute_resources (id, tenant_id, name, system_identity_id, version, created_at) \
             VALUES ($1, $2, $3, $4, 1, $5)",
    )
    .bind(resource.id.to_string())
    .bind(resource.tenant_id.to_string())
    .bind(&resource.name)
    .bind(resource.system_identity_id.map(|id| id.to_string()))
    .bind(resource.created_at)
    .execute(&mut *conn)
    .await
    .map_err(conflict_on_unique(format!("A resource named '{}' already exists in this tenant.", resource.name)))?;
    write_attachments(&mut *conn, resource).await?;
    Ok(())
}

pub(super) async fn update_resource(
    conn: &mut AnyConnection,
    resource: &ComputeResource,
    expected_version: Option<i64>,
    new_system_identity: Option<&ManagedIdentity>,
    removed_system_identity: Option<&ManagedIdentity>,
) -> Result<i64> {
    let current = super::checked_version(
        &mut *conn,
        "SELECT version FROM compute_resources WHERE id = $1",
        &resource.id.to_string(),
        expected_version,
    )
    .await?;
    if let Some(identity) = new_system_identity {
        insert_identity(&mut *conn, identity).await?;
    }
    let updated = sqlx::query(
        "UPDATE compute_resources SET system_identity_id = $2, version = version + 1 WHERE id = $1 AND version = $3",
    )
    .bind(resource.id.to_string())
    .bind(resource.system_identity_id.map(|id| id.to_string()))
    .bind(current)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated != 1 {
        return Err(StoreError::PreconditionFailed);
    }
    if let Some(identity) = removed_system_identity {
        delete_identity(&mut *conn, identity).await?;
    }
    sqlx::query("DELETE FROM resource_identities WHERE resource_id = $1")
        .bind(resource.id.to_string())
        .execute(&mut *conn)
        .await?;
    write_attachments(&mut *conn, resource).await?;
    Ok(current + 1)
}

pub(super) async fn delete_resource(
    conn: &mut AnyConnection,
    resource: &ComputeResource,
    system_identity: Option<&ManagedIdentity>,
) -> Result<()> {
    sqlx::query("DELETE FROM compute_resources WHERE id = $1")
        .bind(resource.id.to_string())
        .execute(&mut *conn)
        .await?;
    if let Some(identity) = system_identity {
        delete_identity(&mut *conn, identity).await?;
    }
    Ok(())
}

pub(super) async fn insert_identity(conn: &mut AnyConnection, identity: &ManagedIdentity) -> Result<()> {
    super::principals::insert_service_principal(
        conn,
        &identity.principal_id.to_string(),
        &identity.tenant_id.to_string(),
        &identity.client_id.to_string(),
        &identity.display_name,
        "ManagedIdentity",
        identity.created_at,
    )
    .await?;
    sqlx::query(
        "INSERT INTO managed_identities (id, tenant_id, kind, display_name, client_id, principal_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(identity.id.to_string())
    .bind(identity.tenant_id.to_string())
    .bind(if identity.system_assigned { "SystemAssigned" } else { "UserAssigned" })
    .bind(&identity.display_name)
    .bind(identity.client_id.to_string())
    .bind(identity.principal_id.to_string())
    .bind(identity.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn delete_identity(conn: &mut AnyConnection, identity: &ManagedIdentity) -> Result<()> {
    sqlx::query("DELETE FROM federated_identity_credentials WHERE owner_id = $1")
        .bind(identity.id.to_string())
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM managed_identities WHERE id = $1")
        .bind(identity.id.to_string())
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM service_principals WHERE id = $1")
        .bind(identity.principal_id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn write_attachments(conn: &mut AnyConnection, resource: &ComputeResource) -> Result<()> {
    for identity in &resource.user_assigned {
        sqlx::query("INSERT INTO resource_identities (resource_id, identity_id) VALUES ($1, $2)")
            .bind(resource.id.to_string())
            .bind(identity.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
