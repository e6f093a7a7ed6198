//! The `wisp` command line: one binary, subcommands. `serve` runs the server;
//! the administration commands talk to a running server's admin API.

mod admin;
mod client;
mod configuration;

use clap::{Parser, Subcommand};

use crate::config::{Config, ServeArgs};
use crate::server::Server;

#[derive(Parser, Debug)]
#[command(name = "wisp", version, about = "Self-hosted security token service for secretless workload identity")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the token service: HTTPS, directory, signing keys.
    Serve(ServeArgs),
    /// Run the node agent: enroll once, then serve managed identity endpoints locally.
    Agent(crate::agent::AgentArgs),
    /// Manage applications (app registrations).
    App {
        #[command(flatten)]
        args: admin::AdminArgs,
        #[command(subcommand)]
        command: admin::AppCommand,
    },
    /// Manage federated identity credentials of applications and managed identities.
    Fic {
        #[command(flatten)]
        args: admin::AdminArgs,
        #[command(subcommand)]
        command: admin::FicCommand,
    },
    /// Manage client secrets.
    Secret {
        #[command(flatten)]
        args: admin::AdminArgs,
        #[command(subcommand)]
        command: admin::SecretCommand,
    },
    /// Manage service principals (provision multi-tenant applications).
    Sp {
        #[command(flatten)]
        args: admin::AdminArgs,
        #[command(subcommand)]
        command: admin::SpCommand,
    },
    /// Grant and revoke app roles.
    Role {
        #[command(flatten)]
        args: admin::AdminArgs,
        #[command(subcommand)]
        command: admin::RoleCommand,
    },
    /// Manage user-assigned managed identities.
    Mi {
        #[command(flatten)]
        args: admin::AdminArgs,
        #[command(subcommand)]
        command: admin::MiCommand,
    },
    /// Manage compute resources and their identities.
    Resource {
        #[command(flatten)]
        args: admin::AdminArgs,
        #[command(subcommand)]
        command: admin::ResourceCommand,
    },
    /// Read the sign-in log: every token request, granted or refused.
    Logs {
        #[command(flatten)]
        args: admin::AdminArgs,
        #[command(flatten)]
        logs: admin::LogsArgs,
    },
    /// Apply a configuration file (YAML or JSON) to the tenant: plan, show, apply all-or-nothing.
    Apply(configuration::ApplyArgs),
    /// Write the tenant as a configuration file that `wisp apply` accepts.
    Export(configuration::ExportArgs),
    /// Create and list tenants (administrators of the bootstrap tenant).
    Tenant {
        #[command(flatten)]
        args: admin::AdminArgs,
        #[command(subcommand)]
        command: admin::TenantCommand,
    },
}

/// Runs the parsed command line. Errors are returned for `main` to print; the
/// exit code is 0, or 2 for `apply --dry-run` with changes pending.
pub async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let done = |result: anyhow::Result<()>| result.map(|()| std::process::ExitCode::SUCCESS);
    let result = match cli.command {
        Command::Apply(args) => return configuration::apply(&args).await,
        Command::Export(args) => configuration::export(&args).await,
        Command::Serve(args) => serve(args).await,
        Command::Agent(args) => {
            crate::telemetry::init_logging(args.log_format, &args.log_level)?;
            let signals = ShutdownSignals::install()?;
            crate::agent::run(args, signals.wait()).await
        }
        Command::App { args, command } => admin::app(&args, &command).await,
        Command::Fic { args, command } => admin::fic(&args, &command).await,
        Command::Secret { args, command } => admin::secret(&args, &command).await,
        Command::Sp { args, command } => admin::sp(&args, &command).await,
        Command::Role { args, command } => admin::role(&args, &command).await,
        Command::Mi { args, command } => admin::mi(&args, &command).await,
        Command::Resource { args, command } => admin::resource(&args, &command).await,
        Command::Tenant { args, command } => admin::tenant(&args, &command).await,
        Command::Logs { args, logs } => admin::logs(&args, &logs).await,
    };
    done(result)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::resolve(args)?;
    crate::telemetry::init_logging(config.log_format, &config.log_level)?;
    // Listen for signals before announcing readiness: a supervisor may send
    // SIGTERM the moment it sees the banner.
    let signals = ShutdownSignals::install()?;
    let server = Server::start(&config).await?;
    print_banner(&server);
    signals.wait().await;
    tracing::info!("shutting down");
    server.shutdown().await
}

fn print_banner(server: &Server) {
    let url = &server.public_url;
    match &server.bootstrap {
        Some((info, path)) => {
            println!("wisp is running at {url}");
            println!("  first tenant:   {}", info.tenant_id);
            println!("  admin client:   {} (secret in {})", info.admin_client_id, path.display());
            println!("  discovery:      {url}/{}/v2.0/.well-known/openid-configuration", info.tenant_id);
            println!("  console:        {url}/console (sign in with the admin client and its secret)");
        }
        None => println!("wisp is running at {url}"),
    }
    if let Some(ca) = &server.ca_file {
        let ca = ca.display();
        println!("  TLS CA:         {ca}");
        println!("    curl:    curl --cacert {ca} {url}/healthz");
        println!("    Python:  export REQUESTS_CA_BUNDLE={ca}");
        println!("    Node:    export NODE_EXTRA_CA_CERTS={ca}");
    }
}

/// SIGINT (Ctrl-C) and SIGTERM, registered up front.
struct ShutdownSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
