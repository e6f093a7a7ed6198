//! `wisp agent`: runs on a compute resource, enrolls once with a one-time join
//! token, then serves the managed identity endpoints (IMDS shape and App
//! Service shape) to local workloads. It proves itself to the server with
//! assertions signed by a key it generated; no shared secret is ever stored.

mod endpoints;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::config::LogFormat;

#[derive(clap::Args, Debug, Clone)]
pub struct AgentArgs {
    /// The wisp server's URL (needed to enroll; remembered in the state folder)
    #[arg(long, env = "WISP_AGENT_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// CA certificate to trust for the server (e.g. the server's wisp-data/tls/ca.pem)
    #[arg(long, env = "WISP_AGENT_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// One-time join token from `wisp resource join-token NAME` (first start only)
    #[arg(long, env = "WISP_JOIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub join_token: Option<String>,
    /// State folder: the agent's key, its enrollment, the App Service identity header
    #[arg(long, env = "WISP_AGENT_STATE_DIR", value_name = "DIR", default_value = "wisp-agent")]
    pub state_dir: PathBuf,
    /// Address of the managed identity endpoints (plain HTTP, like IMDS)
    #[arg(long, env = "WISP_AGENT_LISTEN", value_name = "ADDR", default_value = "127.0.0.1:40342")]
    pub listen: SocketAddr,
    /// Log format
    #[arg(long, env = "WISP_LOG_FORMAT", value_name = "FORMAT", default_value = "human")]
    pub log_format: LogFormat,
    /// Log filter
    #[arg(long, env = "WISP_LOG_LEVEL", value_name = "FILTER", default_value = "info")]
    pub log_level: String,
}

/// Runs the agent until SIGINT/SIGTERM.
pub async fn run(
    args: AgentArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let agent = start(&args).await?;
    println!("wisp agent {} serving managed identity endpoints at http://{}", agent.agent_id, agent.local_addr);
    println!("  resource:    {} in tenant {}", agent.resource_id, agent.tenant_id);
    println!("  IMDS:        AZURE_POD_IDENTITY_AUTHORITY_HOST=http://{}", agent.local_addr);
    println!("  App Service: IDENTITY_ENDPOINT=http://{}/msi/token", agent.local_addr);
    println!("               IDENTITY_HEADER=$(cat {})", agent.identity_header_file.display());
    shutdown.await;
    agent.handle.graceful_shutdown(Some(Duration::from_secs(5)));
    Ok(())
}

/// A running agent.
pub struct RunningAgent {
    pub agent_id: String,
    pub tenant_id: String,
    pub resource_id: String,
    pub local_addr: SocketAddr,
    pub identity_header_file: PathBuf,
    handle: axum_server::Handle<SocketAddr>,
}

impl RunningAgent {
    pub fn stop(&self) {
        self.handle.shutdown();
    }
}

/// Enrolls (first start) or loads the state, then serves.
pub async fn start(args: &AgentArgs) -> anyhow::Result<RunningAgent> {
    let listener = std::net::TcpListener::bind(args.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let local_addr = listener.local_addr()?;
    if !local_addr.ip().is_loopback() {
        tracing::warn!(%local_addr, "the managed identity endpoints listen beyond loopback; anything that reaches them gets tokens");
    }
    let http = http_client(args.ca_file.as_ref())?;
    let state = match state::State::load(&args.state_dir)? {
        Some(state) => {
            if let Some(server) = &args.server
                && server.trim_end_matches('/') != state.server
            {
                bail!(
                    "{} belongs to the agent enrolled with {}, not {server}; use another --state-dir",
                    args.state_dir.display(),
                    state.server
                );
            }
            state
        }
        None => {
            let server = args.server.as_deref().context("first start: give --server (and --join-token)")?;
            let token =
                args.join_token.as_deref().context("first start: give --join-token (wisp resource join-token NAME)")?;
            state::State::enroll(&args.state_dir, &http, server, token).await?
        }
    };
    let identity_header_file = state.identity_header_file();
    let (agent_id, tenant_id, resource_id) =
        (state.agent_id.clone(), state.tenant_id.clone(), state.resource_id.clone());
    let app = Arc::new(endpoints::Agent::new(state, http));
    let router = endpoints::router(app);
    let handle = axum_server::Handle::<SocketAddr>::new();
    let server = axum_server::from_tcp(listener)?.handle(handle.clone());
    tokio::spawn(server.serve(router.into_make_service_with_connect_info::<SocketAddr>()));
    Ok(RunningAgent { agent_id, tenant_id, resource_id, local_addr, identity_header_file, handle })
}

fn http_client(ca_file: Option<&PathBuf>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("wisp-agent/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("cannot read the CA file {}", ca.display()))?;
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).context("the CA file is not PEM")?);
    }
    Ok(builder.build()?)
}
