//! Start-up and shutdown of `wisp serve`: listener, data folder, master key,
//! store, bootstrap, keys, TLS — in an order that fails fast and touches disk
//! only once the cheap checks passed — then the HTTP server and the background
//! key maintenance.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::task::JoinHandle;

use crate::app::{App, AppState};
use crate::bootstrap::{BootstrapInfo, bootstrap_if_empty};
use crate::config::{Config, TlsMode};
use crate::crypto::MasterKey;
use crate::datadir::DataDir;
use crate::directory::cache::DirectoryCache;
use crate::federation::{IssuerKeys, IssuerPolicy};
use crate::signin::SignInLog;
use crate::signing::{KeyRing, RotationPolicy};
use crate::store::{Store, StoreError, redact_url};
use crate::{clock, http, telemetry, tls};

/// How often each process checks for due key rotations and reloads keys that
/// another process rotated.
const KEY_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);
/// How long in-flight requests may finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A running server.
pub struct Server {
    pub local_addr: SocketAddr,
    pub public_url: String,
    /// The CA certificate clients must trust, when wisp generated it.
    pub ca_file: Option<PathBuf>,
    /// Set only in the process that bootstrapped the store: the info and the
    /// path of `bootstrap.json`.
    pub bootstrap: Option<(BootstrapInfo, PathBuf)>,
    pub app: AppState,
    handle: axum_server::Handle<SocketAddr>,
    serving: JoinHandle<std::io::Result<()>>,
    /// Key maintenance and directory-change watchers; aborted at shutdown.
    background: Vec<JoinHandle<()>>,
    sign_in_writer: JoinHandle<()>,
}

impl Server {
    pub async fn start(config: &Config) -> anyhow::Result<Server> {
        // Bind first: a port in use is reported before anything is written to disk.
        let listener = std::net::TcpListener::bind(config.listen).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                " (is another wisp or program using it? choose another with --listen)"
            } else {
                ""
            };
            anyhow::anyhow!("cannot listen on {}: {e}{hint}", config.listen)
        })?;
        let local_addr = listener.local_addr()?;
        let mut config = config.clone();
        if !config.public_url_explicit && config.listen.port() == 0 {
            let scheme = if config.tls == TlsMode::Disabled { "http" } else { "https" };
            config.public_url = format!("{scheme}://localhost:{}", local_addr.port());
        }
        let config = &config;

        let data_dir = DataDir::open_or_create(&config.data_dir)?;
        let master_key = Arc::new(data_dir.master_key(config.master_key.as_deref())?);
        let database_url = config.database_url.clone().unwrap_or_else(|| Store::sqlite_url(&data_dir.sqlite_path()));
        let store = open_store(&database_url).await?;
        check_master_key(&store, &master_key).await?;

        let now = clock::now();
        let policy = RotationPolicy::every(config.signing_key_rotation_secs);
        let keys = KeyRing::new(store.clone(), master_key.clone(), config.public_url.clone(), policy);

        let tls_files = match &config.tls {
            TlsMode::Generated => {
                Some(tls::ensure_generated(&data_dir.tls_dir(), &public_host(&config.public_url)?, now)?)
            }
            TlsMode::Files { cert, key } => Some(tls::load_files(cert, key)?),
            TlsMode::Disabled => None,
        };
        let ca_file = tls_files.as_ref().and_then(|t| t.ca_file.clone());

        let bootstrap =
            bootstrap_if_empty(&store, &keys, &master_key, &data_dir, &config.public_url, ca_file.clone(), now).await?;
        keys.maintain(now).await.context("signing key maintenance failed")?;

        let mut policy_roots = Vec::with_capacity(config.issuer_ca_files.len());
        for file in &config.issuer_ca_files {
            policy_roots.push(
                std::fs::read(file).with_context(|| format!("cannot read the issuer CA file {}", file.display()))?,
            );
        }
        let issuers = IssuerKeys::new(&IssuerPolicy {
            allow_private: config.allow_private_issuers.clone(),
            extra_roots_pem: policy_roots,
        })
        .context("invalid issuer CA file")?;
        let (sign_ins, sign_in_writer) = SignInLog::start(store.clone());
        let app: AppState = Arc::new(App {
            public_url: config.public_url.clone(),
            store: store.clone(),
            directory: DirectoryCache::new(store.clone()),
            master_key,
            keys,
            metrics: telemetry::metrics_handle(),
            jwks_max_age: (policy.publish_ahead / 2).clamp(60, 86400),
            max_fics_per_owner: config.max_federated_credentials,
            access_token_lifetime: config.access_token_lifetime_secs,
            issuers,
            sign_ins,
        });
        let router = http::router(app.clone());
        let make_service = router.into_make_service_with_connect_info::<SocketAddr>();
        let handle = axum_server::Handle::<SocketAddr>::new();
        let serving = match tls_files {
            Some(files) => {
                let rustls = axum_server::tls_rustls::RustlsConfig::from_pem(files.cert_pem, files.key_pem)
                    .await
                    .context("invalid TLS certificate or key")?;
                // TCP_NODELAY: a response written in several segments must not wait
                // for the client's delayed ACK (a 40 ms stall on Linux).
                let server = axum_server::from_tcp_rustls(listener, rustls)?
                    .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor::new()))
                    .handle(handle.clone())
                    .first_request_timeout(Duration::from_secs(10));
                tokio::spawn(server.serve(make_service))
            }
            None => {
                let server = axum_server::from_tcp(listener)?
                    .acceptor(axum_server::accept::NoDelayAcceptor::new())
                    .handle(handle.clone())
                    .first_request_timeout(Duration::from_secs(10));
                tokio::spawn(server.serve(make_service))
            }
        };
        // Key rotation, and other processes' directory changes (cache invalidation).
        let mut background = vec![tokio::spawn(maintain_keys(app.clone()))];
        background.extend(store.watch_directory_changes());
        tracing::info!(listen = %local_addr, public_url = %config.public_url,
            database = %redact_url(&database_url), "wisp is serving");
        Ok(Server {
            local_addr,
            public_url: config.public_url.clone(),
            ca_file,
            bootstrap,
            app,
            handle,
            serving,
            background,
            sign_in_writer,
        })
    }

    /// Stops accepting connections, lets in-flight requests finish (bounded), and
    /// closes the database.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        for task in self.background {
            task.abort();
            let _ = task.await;
        }
        self.handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
        let served = self.serving.await.context("the server task panicked")?;
        // The last handle to the sign-in log goes with the app; the writer then
        // drains its queue and stops, before the database closes.
        let store = self.app.store.clone();
        drop(self.app);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.sign_in_writer).await;
        store.close().await;
        served.context("the server stopped with an error")
    }
}

async fn open_store(url: &str) -> anyhow::Result<Store> {
    let shown = redact_url(url);
    let store = Store::connect(url).await.map_err(|e| match e {
        StoreError::Connect(inner) => anyhow::anyhow!("cannot open the database {shown}: {inner}"),
        other => anyhow::anyhow!("cannot open the database {shown}: {other}"),
    })?;
    store.migrate().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot prepare the database {shown}: {e} (is it a wisp database, and is the data folder intact?)"
        )
    })?;
    Ok(store)
}

/// The first process to start on a database records a check value sealed with its
/// master key; every later process must open it, or it would fail to read every
/// signing key. Refusing to start is the safe, clear outcome.
async fn check_master_key(store: &Store, master_key: &MasterKey) -> anyhow::Result<()> {
    const CONTEXT: &[u8] = b"wisp master key check";
    let ours = STANDARD.encode(master_key.seal(CONTEXT, b"wisp"));
    let stored = store.meta_insert_or_get("master_key_check", &ours).await?;
    let sealed = STANDARD.decode(stored).unwrap_or_default();
    if master_key.open(CONTEXT, &sealed).is_err() {
        bail!(
            "the master key does not match this database: it was set up with another master key. \
             Start with the same data folder's master.key, or set WISP_MASTER_KEY to the key every \
             process sharing this database uses"
        );
    }
    Ok(())
}

fn public_host(public_url: &str) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(public_url)?;
    let host = url.host_str().context("public URL has no host")?;
    // IPv6 hosts come bracketed; certificates want the bare address.
    Ok(host.trim_start_matches('[').trim_end_matches(']').to_string())
}

async fn maintain_keys(app: AppState) {
    let mut tick = tokio::time::interval(KEY_MAINTENANCE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; start-up already maintained
    loop {
        tick.tick().await;
        if let Err(e) = app.keys.maintain(clock::now()).await {
            tracing::warn!(error = %e, "signing key maintenance failed; will retry");
        }
    }
}
