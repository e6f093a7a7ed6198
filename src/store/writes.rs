//! Every change to a tenant's directory objects as a value, [`DirectoryWrite`],
//! and the one function that performs it inside a transaction. The admin API
//! performs one write per transaction ([`Store::write`]); `wisp apply` performs
//! a whole plan in one ([`Batch`]), so a failure half-way leaves nothing behind.

use sqlx::AnyConnection;
use uuid::Uuid;

use super::audit::{DirectoryAudit, insert_audit};
use super::credentials::{FicOwner, delete_fic, insert_fic, update_fic};
use super::{Backend, KeyCredentialChanges, NewApplication, Result, Store, StoreError, UploadedIssuer};
use crate::directory::{
    AppRoleAssignment, Application, ComputeResource, FederatedCredential, KeyCredentialInfo, ManagedIdentity,
    ServicePrincipal,
};

/// One change to the directory. Updates and deletes carry the version the
/// caller read (its ETag); a different current version fails the write with
/// [`StoreError::PreconditionFailed`].
#[derive(Debug, Clone)]
pub enum DirectoryWrite {
    CreateApplication {
        app: Application,
        service_principal_id: Uuid,
        certificates: Vec<(KeyCredentialInfo, Vec<u8>)>,
    },
    UpdateApplication {
        app: Application,
        expected_version: Option<i64>,
        keys: KeyCredentialChanges,
    },
    DeleteApplication {
        app: Application,
        expected_version: Option<i64>,
    },
    CreateFic {
        owner: FicOwner,
        tenant_id: Uuid,
        fic: FederatedCredential,
        max: usize,
    },
    UpdateFic {
        fic: FederatedCredential,
        expected_version: Option<i64>,
    },
    DeleteFic {
        fic: FederatedCredential,
        expected_version: Option<i64>,
    },
    CreateIdentity(ManagedIdentity),
    DeleteIdentity(ManagedIdentity),
    CreateResource {
        resource: ComputeResource,
        system_identity: Option<ManagedIdentity>,
    },
    UpdateResource {
        resource: ComputeResource,
        expected_version: Option<i64>,
        new_system_identity: Option<ManagedIdentity>,
        removed_system_identity: Option<ManagedIdentity>,
    },
    DeleteResource {
        resource: ComputeResource,
        system_identity: Option<ManagedIdentity>,
    },
    CreateServicePrincipal(ServicePrincipal),
    DeleteServicePrincipal(ServicePrincipal),
    CreateAssignment(AppRoleAssignment),
    DeleteAssignment(AppRoleAssignment),
    CreateIssuer(UploadedIssuer),
    UpdateIssuer {
        issuer: UploadedIssuer,
        expected_version: Option<i64>,
    },
    DeleteIssuer(UploadedIssuer),
    /// Remembers that `wisp apply` created an object (only those may be pruned).
    MarkApplied {
        tenant_id: Uuid,
        object_id: Uuid,
        object_type: &'static str,
        at: i64,
    },
}

/// Performs `write` in the caller's transaction. Returns the object's new
/// version for updates of versioned objects.
pub(super) async fn execute(conn: &mut AnyConnection, write: &DirectoryWrite) -> Result<Option<i64>> {
    use DirectoryWrite::*;
    match write {
        CreateApplication { app, service_principal_id, certificates } => {
            let new = NewApplication {
                id: app.id.to_string(),
                app_id: app.app_id.to_string(),
                tenant_id: app.tenant_id.to_string(),
                display_name: app.display_name.clone(),
                sign_in_audience: app.sign_in_audience.clone(),
                service_principal_id: service_principal_id.to_string(),
                created_at: app.created_at,
            };
            super::applications::insert_application(conn, &new).await?;
            super::applications::write_app_attributes(conn, app).await?;
            for (key, certificate) in certificates {
                super::credentials::insert_key_credential(conn, &app.id, key, certificate).await?;
            }
            Ok(None)
        }
        UpdateApplication { app, expected_version, keys } => {
            super::applications::update_application(conn, app, *expected_version, keys).await.map(Some)
        }
        DeleteApplication { app, expected_version } => {
            super::applications::delete_application(conn, app, *expected_version).await.map(|()| None)
        }
        CreateFic { owner, tenant_id, fic, max } => insert_fic(conn, *owner, tenant_id, fic, *max).await.map(|()| None),
        UpdateFic { fic, expected_version } => update_fic(conn, fic, *expected_version).await.map(Some),
        DeleteFic { fic, expected_version } => delete_fic(conn, fic, *expected_version).await.map(|()| None),
        CreateIdentity(identity) => super::identities::insert_identity(conn, identity).await.map(|()| None),
        DeleteIdentity(identity) => super::identities::delete_identity(conn, identity).await.map(|()| None),
        CreateResource { resource, system_identity } => {
            super::identities::insert_resource(conn, resource, system_identity.as_ref()).await.map(|()| None)
        }
        UpdateResource { resource, expected_version, new_system_identity, removed_system_identity } => {
            super::identities::update_resource(
                conn,
                resource,
                *expected_version,
                new_system_identity.as_ref(),
                removed_system_identity.as_ref(),
            )
            .await
            .map(Some)
        }
        DeleteResource { resource, system_identity } => {
            super::identities::delete_resource(conn, resource, system_identity.as_ref()).await.map(|()| None)
        }
        CreateServicePrincipal(sp) => super::principals::insert_service_principal(
            conn,
            &sp.id.to_string(),
            &sp.tenant_id.to_string(),
            &sp.app_id,
            &sp.display_name,
            &sp.principal_type,
            sp.created_at,
        )
        .await
        .map(|()| None),
        DeleteServicePrincipal(sp) => {
            exactly_one(
                sqlx::query("DELETE FROM service_principals WHERE tenant_id = $1 AND id = $2")
                    .bind(sp.tenant_id.to_string())
                    .bind(sp.id.to_string())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected(),
            )?;
            Ok(None)
        }
        CreateAssignment(assignment) => {
            super::principals::insert_app_role_assignment(conn, assignment).await.map(|()| None)
        }
        DeleteAssignment(a) => {
            exactly_one(
                sqlx::query("DELETE FROM app_role_assignments WHERE tenant_id = $1 AND id = $2")
                    .bind(a.tenant_id.to_string())
                    .bind(a.id.to_string())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected(),
            )?;
            Ok(None)
        }
        CreateIssuer(issuer) => super::issuers::insert_issuer(conn, issuer).await.map(|()| None),
        UpdateIssuer { issuer, expected_version } => {
            super::issuers::update_issuer(conn, issuer, *expected_version).await.map(Some)
        }
        DeleteIssuer(issuer) => {
            exactly_one(
                sqlx::query("DELETE FROM federated_issuers WHERE id = $1")
                    .bind(issuer.id.to_string())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected(),
            )?;
            Ok(None)
        }
        MarkApplied { tenant_id, object_id, object_type, at } => {
            sqlx::query(
                "INSERT INTO applied_objects (object_id, tenant_id, object_type, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(object_id.to_string())
            .bind(tenant_id.to_string())
            .bind(*object_type)
            .bind(*at)
            .execute(&mut *conn)
            .await?;
            Ok(None)
        }
    }
}

/// A delete of an object someone else deleted meanwhile is a conflict, not a success.
fn exactly_one(rows: u64) -> Result<()> {
    if rows == 1 { Ok(()) } else { Err(StoreError::PreconditionFailed) }
}

impl Store {
    /// Performs one write with its audit record in its own transaction.
    pub async fn write(&self, write: &DirectoryWrite, audit: &DirectoryAudit) -> Result<Option<i64>> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = self.begin_write(&mut conn).await?;
        let version = execute(&mut tx, write).await?;
        insert_audit(&mut tx, audit).await?;
        self.commit_directory_change(tx).await?;
        Ok(version)
    }

    /// Starts a transaction for many writes that commit together or not at all.
    /// On PostgreSQL it is SERIALIZABLE: what the batch read (its plan) cannot
    /// change under it without the commit failing.
    pub async fn begin_batch(&self) -> Result<Batch> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin_with("BEGIN ISOLATION LEVEL SERIALIZABLE").await?,
        };
        Ok(Batch { store: self.clone(), tx })
    }
}

/// An open all-or-nothing transaction. Dropping it without [`Batch::commit`]
/// rolls everything back.
pub struct Batch {
    store: Store,
    tx: sqlx::Transaction<'static, sqlx::Any>,
}

impl Batch {
    pub(super) fn connection(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    pub async fn write(&mut self, write: &DirectoryWrite, audit: Option<&DirectoryAudit>) -> Result<()> {
        execute(&mut self.tx, write).await.map_err(serialization_failure_is_a_conflict)?;
        if let Some(audit) = audit {
            insert_audit(&mut self.tx, audit).await?;
        }
        Ok(())
    }

    /// Forgets applied-object rows whose objects are gone.
    pub async fn forget_deleted(&mut self, tenant_id: &Uuid, object_ids: &[Uuid]) -> Result<()> {
        for id in object_ids {
            sqlx::query("DELETE FROM applied_objects WHERE tenant_id = $1 AND object_id = $2")
                .bind(tenant_id.to_string())
                .bind(id.to_string())
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    pub async fn commit(self) -> Result<()> {
        self.store.commit_directory_change(self.tx).await.map_err(serialization_failure_is_a_conflict)
    }
}

/// PostgreSQL's "could not serialize access" (40001): someone changed what the
/// batch read. The caller sees it as a concurrent change, like an ETag mismatch.
fn serialization_failure_is_a_conflict(e: StoreError) -> StoreError {
    match &e {
        StoreError::Query(sqlx::Error::Database(db)) if db.code().as_deref() == Some("40001") => {
            StoreError::PreconditionFailed
        }
        _ => e,
    }
}
