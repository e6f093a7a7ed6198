//! A whole tenant's directory objects read at once — one query per table, not
//! one per object — for `wisp export` and for planning `wisp apply` inside the
//! transaction that then performs the plan.

use std::collections::{HashMap, HashSet};

use sqlx::AnyConnection;
use uuid::Uuid;

use super::applications::{APP_COLUMNS, ApplicationRow};
use super::credentials::{FIC_COLUMNS, FicRow, KeyCredentialRow};
use super::identities::{IDENTITY_COLUMNS, IdentityRow, RESOURCE_COLUMNS, ResourceRow};
use super::principals::{ASSIGNMENT_COLUMNS, AssignmentRow, PrincipalRow, SP_COLUMNS};
use super::writes::Batch;
use super::{Result, Store, UploadedIssuer, parse_id};
use crate::directory::{
    AppRoleAssignment, Application, ComputeResource, FederatedCredential, KeyCredentialInfo, ManagedIdentity,
    ServicePrincipal,
};

/// Everything a tenant's configuration file can describe, as stored.
#[derive(Debug, Clone, Default)]
pub struct TenantSnapshot {
    pub tenant_id: Uuid,
    pub applications: Vec<Application>,
    /// Certificates (metadata and DER) by application object id.
    pub certificates: HashMap<Uuid, Vec<(KeyCredentialInfo, Vec<u8>)>>,
    /// FICs by owner (application or managed identity) id, by name.
    pub federated_credentials: HashMap<Uuid, Vec<FederatedCredential>>,
    /// User-assigned and system-assigned identities.
    pub identities: Vec<ManagedIdentity>,
    pub resources: Vec<ComputeResource>,
    /// Every service principal in the tenant: of its own applications and
    /// identities, of provisioned applications, of built-in resources.
    pub service_principals: Vec<ServicePrincipal>,
    pub assignments: Vec<AppRoleAssignment>,
    pub issuers: Vec<UploadedIssuer>,
    /// Applications of other tenants: those provisioned here, and those asked for.
    pub foreign_applications: Vec<Application>,
    /// Objects `wisp apply` created (the only ones `--prune` may delete).
    pub applied: HashSet<Uuid>,
}

impl Store {
    /// Reads a tenant's snapshot in a read transaction (a consistent view), plus
    /// the applications with the client ids `app_ids` wherever they live.
    pub async fn tenant_snapshot(&self, tenant_id: &Uuid, app_ids: &[String]) -> Result<TenantSnapshot> {
        let mut tx = self.pool.begin().await?;
        let snapshot = load(&mut tx, tenant_id, app_ids).await?;
        tx.rollback().await?;
        Ok(snapshot)
    }
}

impl Batch {
    /// Reads a tenant's snapshot inside the batch, plus the applications with
    /// the client ids `app_ids` wherever they live.
    pub async fn tenant_snapshot(&mut self, tenant_id: &Uuid, app_ids: &[String]) -> Result<TenantSnapshot> {
        load(self.connection(), tenant_id, app_ids).await
    }
}

async fn load(conn: &mut AnyConnection, tenant_id: &Uuid, app_ids: &[String]) -> Result<TenantSnapshot> {
    let tenant = tenant_id.to_string();
    let mut snapshot = TenantSnapshot { tenant_id: *tenant_id, ..Default::default() };

    let uris: Vec<(String, String)> =
        sqlx::query_as("SELECT application_id, uri FROM identifier_uris WHERE tenant_id = $1 ORDER BY uri")
            .bind(&tenant)
            .fetch_all(&mut *conn)
            .await?;
    let mut uris_by_app: HashMap<String, Vec<String>> = HashMap::new();
    for (app, uri) in uris {
        uris_by_app.entry(app).or_default().push(uri);
    }
    let rows: Vec<ApplicationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {APP_COLUMNS} FROM applications WHERE tenant_id = $1 ORDER BY display_name, id"
    )))
    .bind(&tenant)
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let uris = uris_by_app.remove(&row.id).unwrap_or_default();
        snapshot.applications.push(row.into_application(uris)?);
    }

    let keys: Vec<(String, KeyCredentialRow)> = sqlx::query_as::<_, KeyRowWithOwner>(
        "SELECT k.application_id, k.key_id, k.display_name, k.thumbprint_sha1, k.thumbprint_sha256, k.start_at, \
         k.end_at, k.certificate FROM key_credentials k JOIN applications a ON a.id = k.application_id \
         WHERE a.tenant_id = $1 ORDER BY k.start_at, k.key_id",
    )
    .bind(&tenant)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| (r.application_id, r.row))
    .collect();
    for (owner, row) in keys {
        snapshot.certificates.entry(parse_id(&owner)?).or_default().push(row.into_parts()?);
    }

    let fics: Vec<FicRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {FIC_COLUMNS} FROM federated_identity_credentials WHERE tenant_id = $1 ORDER BY name"
    )))
    .bind(&tenant)
    .fetch_all(&mut *conn)
    .await?;
    for row in fics {
        let fic = FederatedCredential::try_from(row)?;
        snapshot.federated_credentials.entry(fic.owner_id).or_default().push(fic);
    }

    let identities: Vec<IdentityRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {IDENTITY_COLUMNS} FROM managed_identities WHERE tenant_id = $1 ORDER BY display_name, id"
    )))
    .bind(&tenant)
    .fetch_all(&mut *conn)
    .await?;
    snapshot.identities = identities.into_iter().map(ManagedIdentity::try_from).collect::<Result<_>>()?;

    let attachments: Vec<(String, String)> = sqlx::query_as(
        "SELECT ri.resource_id, ri.identity_id FROM resource_identities ri \
         JOIN compute_resources r ON r.id = ri.resource_id WHERE r.tenant_id = $1 ORDER BY ri.identity_id",
    )
    .bind(&tenant)
    .fetch_all(&mut *conn)
    .await?;
    let mut attached: HashMap<String, Vec<Uuid>> = HashMap::new();
    for (resource, identity) in attachments {
        attached.entry(resource).or_default().push(parse_id(&identity)?);
    }
    let resources: Vec<ResourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {RESOURCE_COLUMNS} FROM compute_resources WHERE tenant_id = $1 ORDER BY name"
    )))
    .bind(&tenant)
    .fetch_all(&mut *conn)
    .await?;
    for row in resources {
        let identities = attached.remove(&row.id).unwrap_or_default();
        snapshot.resources.push(row.into_resource(identities)?);
    }

    let principals: Vec<PrincipalRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SP_COLUMNS} FROM service_principals WHERE tenant_id = $1 ORDER BY display_name, id"
    )))
    .bind(&tenant)
    .fetch_all(&mut *conn)
    .await?;
    snapshot.service_principals = principals.into_iter().map(ServicePrincipal::try_from).collect::<Result<_>>()?;

    let assignments: Vec<AssignmentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ASSIGNMENT_COLUMNS} FROM app_role_assignments WHERE tenant_id = $1 ORDER BY created_at, id"
    )))
    .bind(&tenant)
    .fetch_all(&mut *conn)
    .await?;
    snapshot.assignments = assignments.into_iter().map(AppRoleAssignment::try_from).collect::<Result<_>>()?;

    let issuers: Vec<super::issuers::Row> = sqlx::query_as(
        "SELECT id, tenant_id, issuer, jwks, version, created_at FROM federated_issuers WHERE tenant_id = $1 ORDER BY issuer",
    )
    .bind(&tenant)
    .fetch_all(&mut *conn)
    .await?;
    snapshot.issuers = issuers.into_iter().map(super::issuers::from_row).collect::<Result<_>>()?;

    // Other tenants' applications this tenant holds a service principal of, or
    // that the caller asks about (to provision them).
    let own: HashSet<String> = snapshot.applications.iter().map(|a| a.app_id.to_string()).collect();
    let mut wanted: Vec<String> = snapshot
        .service_principals
        .iter()
        .map(|sp| sp.app_id.clone())
        .chain(app_ids.iter().map(|id| id.to_ascii_lowercase()))
        .filter(|id| !own.contains(id))
        .collect();
    wanted.sort();
    wanted.dedup();
    for app_id in wanted {
        let row: Option<ApplicationRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {APP_COLUMNS} FROM applications WHERE app_id = $1")))
                .bind(&app_id)
                .fetch_optional(&mut *conn)
                .await?;
        if let Some(row) = row {
            // Foreign applications are referred to by client id and roles only.
            snapshot.foreign_applications.push(row.into_application(Vec::new())?);
        }
    }

    let applied: Vec<(String,)> = sqlx::query_as("SELECT object_id FROM applied_objects WHERE tenant_id = $1")
        .bind(&tenant)
        .fetch_all(&mut *conn)
        .await?;
    snapshot.applied = applied.iter().map(|(id,)| parse_id(id)).collect::<Result<_>>()?;
    Ok(snapshot)
}

/// A certificate row with the application it belongs to.
#[derive(sqlx::FromRow)]
pub(super) struct KeyRowWithOwner {
    pub(super) application_id: String,
    #[sqlx(flatten)]
    pub(super) row: KeyCredentialRow,
}
