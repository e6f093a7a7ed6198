//! The sign-in log: one record per token request, granted or refused, written by
//! a background task in batches (group commit).
//!
//! A grant is answered as soon as its record is *queued* ([`SignInLog::record_grant`]):
//! the token path makes no database round trip. The writer commits the queue
//! every few milliseconds in one transaction, so at most one batch of records
//! (what arrived during one commit) is in flight, and it is drained at shutdown.
//! If a batch cannot be written, the log turns unhealthy and grants are
//! withheld (503) until a write succeeds again — no unbounded run of tokens
//! without records. A refusal waits for its record's commit, so an
//! administrator can look it up by the correlation id the client just received;
//! and reading the log ([`SignInLog::flush`]) first commits everything queued,
//! so every answered request is visible to the admin API.
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::store::{SignInRow, Store};

/// Records waiting to be written; senders wait when it is full (backpressure).
pub const QUEUE_CAPACITY: usize = 4096;
/// Largest batch written in one transaction.
const MAX_BATCH: usize = 512;

/// What one token request did. Filled in as the request is processed, so a
/// refusal records everything learnt up to the failing step.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SignInRecord {
    pub tenant_id: String,
    pub correlation_id: Uuid,
    pub client_ip: Option<String>,
    pub client_id: Option<String>,
    pub service_principal_id: Option<String>,
    pub resource: Option<String>,
    /// `federatedIdentityCredential`, `certificate`, `clientSecret` or `managedIdentity`.
    pub credential_type: Option<&'static str>,
    /// The FIC id, certificate key id or secret key id used.
    pub credential_id: Option<String>,
    pub assertion_issuer: Option<String>,
    pub assertion_subject: Option<String>,
    pub assertion_jti: Option<String>,
    /// The issued token's `uti`.
    pub token_id: Option<String>,
    /// Per-credential checks of a federated assertion (administrators only).
    pub details: Option<serde_json::Value>,
}

/// A record to write (none: a flush), and who waits for its commit.
struct Job {
    row: Option<SignInRow>,
    committed: Option<oneshot::Sender<Result<(), String>>>,
}

/// Handle to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct SignInLog {
    sender: mpsc::Sender<Job>,
    /// The last batch was written (false after a failure, until one succeeds).
    healthy: std::sync::Arc<AtomicBool>,
}

impl SignInLog {
    /// Starts the writer task on `store`.
    pub fn start(store: Store) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let healthy = std::sync::Arc::new(AtomicBool::new(true));
        let task = tokio::spawn(write_batches(store, receiver, healthy.clone()));
        (Self { sender, healthy }, task)
    }

    /// Queues a grant's record. `Err`: the log cannot be written right now, and
    /// the token must be withheld. Waits only when the queue is full (backpressure).
    pub async fn record_grant(&self, record: SignInRecord, token_id: &str) -> Result<(), String> {
        if !self.healthy.load(Ordering::Acquire) {
            return Err("the sign-in log cannot be written".to_string());
        }
        let row = to_row(record, "granted", None, Some(token_id));
        self.sender
            .send(Job { row: Some(row), committed: None })
            .await
            .map_err(|_| "the sign-in log is closed".to_string())
    }

    /// Waits until every record queued before this call is committed.
    pub async fn flush(&self) -> Result<(), String> {
        let (done, committed) = oneshot::channel();
        self.sender
            .send(Job { row: None, committed: Some(done) })
            .await
            .map_err(|_| "the sign-in log is closed".to_string())?;
        committed.await.map_err(|_| "the sign-in log writer stopped".to_string())?
    }

    /// Records a refusal and waits for the commit; a failure is logged, not
    /// returned (the refusal is answered either way).
    pub async fn record_refusal(&self, record: SignInRecord, error_code: u32) {
        let (done, committed) = oneshot::channel();
        let row = to_row(record, "refused", Some(error_code), None);
        let written = match self.sender.send(Job { row: Some(row), committed: Some(done) }).await {
            Ok(()) => committed.await.unwrap_or_else(|_| Err("the sign-in log writer stopped".into())),
            Err(_) => Err("the sign-in log is closed".into()),
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "a refusal was not recorded in the sign-in log");
        }
    }
}

fn to_row(record: SignInRecord, outcome: &str, error_code: Option<u32>, token_id: Option<&str>) -> SignInRow {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    SignInRow {
        // Time-ordered: new rows append to the primary-key index instead of
        // landing on a random page of it.
        id: Uuid::now_v7().to_string(),
        tenant_id: record.tenant_id,
        at: now.as_secs() as i64,
        seq: now.as_micros() as i64,
        correlation_id: record.correlation_id.to_string(),
        client_ip: record.client_ip,
        client_id: record.client_id,
        service_principal_id: record.service_principal_id,
        resource: record.resource,
        credential_type: record.credential_type.map(str::to_string),
        credential_id: record.credential_id,
        assertion_issuer: record.assertion_issuer,
        assertion_subject: record.assertion_subject,
        assertion_jti: record.assertion_jti,
        outcome: outcome.to_string(),
        error_code: error_code.map(i64::from),
        token_id: token_id.map(str::to_string).or(record.token_id),
        details: record.details.map(|d| d.to_string()),
    }
}

/// Takes whatever is queued (up to a batch), writes it in one transaction,
/// tells the waiting grants, repeats. While one batch commits the next one
/// gathers, so throughput grows with load instead of queueing behind it.
async fn write_batches(store: Store, mut receiver: mpsc::Receiver<Job>, healthy: std::sync::Arc<AtomicBool>) {
    while let Some(first) = receiver.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let rows: Vec<SignInRow> = jobs.iter_mut().filter_map(|j| j.row.take()).collect();
        let result =
            if rows.is_empty() { Ok(()) } else { store.insert_sign_ins(&rows).await.map_err(|e| e.to_string()) };
        healthy.store(result.is_ok(), Ordering::Release);
        if let Err(e) = &result {
            tracing::error!(error = %e, records = rows.len(), "cannot write the sign-in log; grants are withheld until it can");
            metrics::counter!("wisp_signin_log_failures_total").increment(rows.len() as u64);
        }
        metrics::histogram!("wisp_signin_log_batch_size").record(rows.len() as f64);
        for job in jobs {
            if let Some(done) = job.committed {
                let _ = done.send(result.clone());
            }
        }
    }
}
