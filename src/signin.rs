//! The sign-in log: one record per token request, granted or refused, written by
//! a background task in batches (group commit).
//!
//! Every response waits for its record's commit: a granted token is returned
//! only after its record is committed ([`SignInLog::record_durably`]) — no
//! token without its record — and a refusal's record is committed before the
//! error is sent, so an administrator can look it up by the correlation id the
//! client just received. Concurrent requests share one transaction (group
//! commit), so the log does not serialize the token endpoint. A crash loses
//! nothing that was answered; if the log cannot be written, grants are withheld
//! (503) and refusals are still answered.

use serde::Serialize;
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

struct Job {
    row: SignInRow,
    committed: Option<oneshot::Sender<Result<(), String>>>,
}

/// Handle to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct SignInLog {
    sender: mpsc::Sender<Job>,
}

impl SignInLog {
    /// Starts the writer task on `store`.
    pub fn start(store: Store) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let task = tokio::spawn(write_batches(store, receiver));
        (Self { sender }, task)
    }

    /// Records a grant and waits until it is committed.
    pub async fn record_durably(&self, record: SignInRecord, token_id: &str) -> Result<(), String> {
        let (done, committed) = oneshot::channel();
        let row = to_row(record, "granted", None, Some(token_id));
        self.sender
            .send(Job { row, committed: Some(done) })
            .await
            .map_err(|_| "the sign-in log is closed".to_string())?;
        committed.await.map_err(|_| "the sign-in log writer stopped".to_string())?
    }

    /// Records a refusal and waits for the commit; a failure is logged, not
    /// returned (the refusal is answered either way).
    pub async fn record_refusal(&self, record: SignInRecord, error_code: u32) {
        let (done, committed) = oneshot::channel();
        let row = to_row(record, "refused", Some(error_code), None);
        let written = match self.sender.send(Job { row, committed: Some(done) }).await {
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
        id: Uuid::new_v4().to_string(),
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
async fn write_batches(store: Store, mut receiver: mpsc::Receiver<Job>) {
    while let Some(first) = receiver.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let rows: Vec<SignInRow> = jobs.iter().map(|j| j.row.clone()).collect();
        let result = store.insert_sign_ins(&rows).await.map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, records = rows.len(), "cannot write the sign-in log");
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
