//! The only module that writes SQL. `Store` runs the same queries on embedded SQLite
//! (the default) and on PostgreSQL (several replicas sharing one directory), through
//! sqlx's `Any` driver. It knows nothing about HTTP or JWTs.
//!
//! Portable subset: `$n` placeholders, TEXT ids, BIGINT unix seconds, INTEGER flags,
//! `ON CONFLICT`, `RETURNING`. Where the dialects truly differ, branch on
//! [`Backend`] inside the one function that needs it.

mod agents;
mod applications;
mod audit;
mod changes;
mod console_sessions;
mod credentials;
mod identities;
mod issuers;
mod meta;
mod principals;
mod sign_ins;
mod signing_keys;
mod snapshot;
mod tenants;
mod writes;

pub use agents::{Agent, EnrollRefusal, NewJoinToken};
pub use applications::{KeyCredentialChanges, NewApplication, NewPasswordCredential, StoredPasswordCredential};
pub use audit::DirectoryAudit;
pub use changes::POLL_INTERVAL as DIRECTORY_POLL_INTERVAL;
pub use console_sessions::ConsoleSession;
pub use credentials::FicOwner;
pub use issuers::UploadedIssuer;
pub use sign_ins::{SignInQuery, SignInRow};
pub use signing_keys::{KeyChange, StoredSigningKey};
pub use snapshot::TenantSnapshot;
pub use tenants::{NewTenant, TenantPolicy};
pub use writes::{Batch, DirectoryWrite};

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

/// How long to wait for the database before giving up with a clear error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL (expected sqlite:// or postgres://): {0}")]
    UnsupportedUrl(String),
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot migrate the database schema: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A uniqueness rule would be broken; the message says which.
    #[error("{0}")]
    Conflict(String),
    /// The object changed since the caller read it (ETag mismatch).
    #[error("the object was changed by someone else")]
    PreconditionFailed,
    #[error("not found")]
    NotFound,
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`] with `message`.
fn conflict_on_unique(message: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
    let message = message.into();
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message),
        _ => StoreError::Query(e),
    }
}

/// A `$filter` the admin API accepts: one property compared with one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// A column name from the store's own allow-list (never caller text).
    pub column: &'static str,
    pub op: FilterOp,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    StartsWith,
}

/// One page of a list: at most `top` rows with ids after `after`.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub top: i64,
    pub after: Option<String>,
    pub filter: Option<Filter>,
}

impl Page {
    /// The SQL condition and ORDER/LIMIT for a keyset page over `id`, starting at
    /// placeholder `$first`. Only allow-listed column names enter the text.
    fn clause(&self, first: usize) -> (String, Vec<String>) {
        let mut sql = String::new();
        let mut binds = Vec::new();
        let mut n = first;
        if let Some(filter) = &self.filter {
            match filter.op {
                FilterOp::Eq => sql.push_str(&format!(" AND {} = ${n}", filter.column)),
                FilterOp::StartsWith => sql.push_str(&format!(" AND {} LIKE ${n} ESCAPE '\\'", filter.column)),
            }
            binds.push(match filter.op {
                FilterOp::Eq => filter.value.clone(),
                FilterOp::StartsWith => format!("{}%", escape_like(&filter.value)),
            });
            n += 1;
        }
        if let Some(after) = &self.after {
            sql.push_str(&format!(" AND id > ${n}"));
            binds.push(after.clone());
        }
        sql.push_str(&format!(" ORDER BY id LIMIT {}", self.top.clamp(1, 1000) + 1));
        (sql, binds)
    }
}

fn escape_like(value: &str) -> String {
    value.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// A page of results and whether more follow.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub more: bool,
}

impl<T> Listed<T> {
    fn from_rows(mut items: Vec<T>, top: i64) -> Self {
        let top = top.clamp(1, 1000) as usize;
        let more = items.len() > top;
        items.truncate(top);
        Listed { items, more }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Handle to the directory database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    changes: std::sync::Arc<changes::Changes>,
}

impl Store {
    /// The URL of an embedded SQLite database file (created if missing).
    pub fn sqlite_url(path: &Path) -> String {
        sqlx::sqlite::SqliteConnectOptions::new().filename(path).create_if_missing(true).to_url_lossy().to_string()
    }

    /// Connects to `url` (`sqlite://…` or `postgres://…`) without touching the schema.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        let options = AnyConnectOptions::from_str(url).map_err(StoreError::Connect)?;
        // One direct connection first: the pool would retry a refused connection or
        // a corrupt file until its timeout and then report only "timed out".
        let mut probe = tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
            .await
            .map_err(|_| StoreError::Connect(sqlx::Error::PoolTimedOut))?
            .map_err(StoreError::Connect)?;
        if backend == Backend::Sqlite {
            set_sqlite_pragmas(&mut probe).await.map_err(StoreError::Connect)?;
        }
        probe.close().await.map_err(StoreError::Connect)?;

        let mut pool = AnyPoolOptions::new().acquire_timeout(CONNECT_TIMEOUT).max_connections(match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        });
        if backend == Backend::Sqlite {
            pool = pool.after_connect(|conn, _meta| Box::pin(set_sqlite_pragmas(conn)));
        }
        let pool = pool.connect_with(options).await.map_err(StoreError::Connect)?;
        let changes = changes::Changes::new((backend == Backend::Postgres).then(|| url.to_string()));
        Ok(Self { pool, backend, changes })
    }

    /// Brings the schema up to date. Safe to run from several processes at once:
    /// sqlx takes an advisory lock on PostgreSQL, and SQLite serializes writers.
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await.map_err(StoreError::Migrate)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`, which takes
    /// the write lock at once (waiting up to the busy timeout): a deferred
    /// transaction that reads first fails with SQLITE_BUSY instead of waiting when
    /// another writer — the sign-in log, every few milliseconds — commits first.
    async fn begin_write<'c>(
        &self,
        conn: &'c mut sqlx::pool::PoolConnection<sqlx::Any>,
    ) -> Result<sqlx::Transaction<'c, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => conn.begin().await?,
        })
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// WAL lets readers (the token endpoint) proceed while a writer commits.
async fn set_sqlite_pragmas(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    Ok(())
}

/// A database URL fit for an error message: the password is replaced.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("REDACTED"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparsable URL>".to_string(),
    }
}

/// The version of row `id` (read by `select`, e.g. `SELECT version FROM
/// applications WHERE id = $1`) inside the caller's transaction, checked
/// against the version the caller read (its ETag) when it gave one.
async fn checked_version(
    conn: &mut sqlx::AnyConnection,
    select: &'static str,
    id: &str,
    expected: Option<i64>,
) -> Result<i64> {
    let current: Option<(i64,)> = sqlx::query_as(select).bind(id).fetch_optional(&mut *conn).await?;
    let Some((current,)) = current else { return Err(StoreError::NotFound) };
    if expected.is_some_and(|v| v != current) {
        return Err(StoreError::PreconditionFailed);
    }
    Ok(current)
}

/// Parses a stored GUID column.
fn parse_id(text: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(text).map_err(|_| StoreError::Corrupt(format!("not a GUID: {text:?}")))
}
