//! Directory change tracking: how the token path's caches know, without a
//! database round trip, that the directory changed.
//!
//! Every transaction that changes the directory ends in [`Store::commit_directory_change`]:
//! it bumps `directory_changes.generation` (and, on PostgreSQL, sends `NOTIFY
//! wisp_directory`) inside the transaction, commits, then bumps this process's
//! in-memory generation before returning. A cache entry remembers the generation
//! read *before* it was loaded and is used only while the generation is unchanged.
//!
//! - In this process a change is therefore effective for the very next request:
//!   the admin API answers only after the in-memory bump.
//! - Other processes on the same database learn of it from PostgreSQL's
//!   notification (delivered at commit, typically within a millisecond) and, as a
//!   safety net for a lost listener connection or for SQLite, from polling the
//!   counter every [`POLL_INTERVAL`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Backend, Result, Store};

/// How often other processes' changes are looked for when no notification came.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
const CHANNEL: &str = "wisp_directory";

/// This process's view of the directory generation.
#[derive(Default)]
pub(super) struct Changes {
    generation: AtomicU64,
    /// A PostgreSQL URL to LISTEN on (never printed).
    listen_url: Option<String>,
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes").field("generation", &self.generation).finish_non_exhaustive()
    }
}

impl Changes {
    pub(super) fn new(listen_url: Option<String>) -> Arc<Self> {
        Arc::new(Self { generation: AtomicU64::new(0), listen_url })
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl Store {
    /// The directory generation as this process knows it. Read it *before*
    /// loading what you cache; the entry is fresh while this value is unchanged.
    pub fn directory_generation(&self) -> u64 {
        self.changes.generation.load(Ordering::Acquire)
    }

    /// Commits a transaction that changed the directory, so that every cache
    /// sees the change (see the module comment).
    pub(super) async fn commit_directory_change(&self, mut tx: sqlx::Transaction<'_, sqlx::Any>) -> Result<()> {
        sqlx::query("UPDATE directory_changes SET generation = generation + 1 WHERE id = 1").execute(&mut *tx).await?;
        if self.backend == Backend::Postgres {
            sqlx::query(sqlx::AssertSqlSafe(format!("NOTIFY {CHANNEL}"))).execute(&mut *tx).await?;
        }
        let committed = tx.commit().await;
        // Bump even when the commit's outcome is unknown: a needless reload is cheap.
        self.changes.bump();
        committed?;
        Ok(())
    }

    /// Follows other processes' directory changes until the process ends:
    /// PostgreSQL notifications, and polling the counter as a safety net.
    pub fn watch_directory_changes(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = vec![tokio::spawn(poll_changes(self.clone()))];
        if let Some(url) = self.changes.listen_url.clone() {
            tasks.push(tokio::spawn(listen_for_changes(self.changes.clone(), url)));
        }
        tasks
    }

    async fn stored_directory_generation(&self) -> Result<i64> {
        let (generation,): (i64,) =
            sqlx::query_as("SELECT generation FROM directory_changes WHERE id = 1").fetch_one(&self.pool).await?;
        Ok(generation)
    }
}

async fn poll_changes(store: Store) {
    let mut seen = None;
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.stored_directory_generation().await {
            Ok(stored) => {
                if seen.is_some_and(|seen| seen != stored) {
                    store.changes.bump();
                }
                seen = Some(stored);
            }
            // Unknown state: treat it as a change once the database answers again.
            Err(e) => {
                tracing::debug!(error = %e, "directory change poll failed");
                seen = None;
                store.changes.bump();
            }
        }
    }
}

async fn listen_for_changes(changes: Arc<Changes>, url: String) {
    loop {
        let Err(e) = listen(&changes, &url).await;
        tracing::warn!(error = %e, "directory change listener lost; polling every {POLL_INTERVAL:?} until it is back");
        changes.bump();
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

async fn listen(changes: &Changes, url: &str) -> std::result::Result<std::convert::Infallible, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    // Anything may have changed while nobody listened.
    changes.bump();
    loop {
        // `None`: the connection was lost and re-made; notifications may be lost too.
        listener.try_recv().await?;
        changes.bump();
    }
}
