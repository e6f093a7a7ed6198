//! Settings of `wisp serve`, resolved and validated once, here. Precedence:
//! command-line flags, then `WISP_*` environment variables, then the optional
//! TOML file (`--config`), then built-in defaults. Nothing else reads the
//! environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// Shown under `wisp serve --help`.
const SERVE_HELP: &str = "\
Configuration precedence: flags, then WISP_* environment variables, then the TOML
file given by --config / WISP_CONFIG, then the defaults shown above.

The TOML file uses the flag names with underscores, e.g.:

    data_dir = \"/var/lib/wisp\"
    listen = \"0.0.0.0:8443\"
    public_url = \"https://sts.example.com\"
    database_url = \"postgres://wisp@db/wisp\"
    tls_cert = \"/etc/wisp/tls.pem\"
    tls_key = \"/etc/wisp/tls-key.pem\"
    log_format = \"json\"
    log_level = \"info\"
    signing_key_rotation = \"30d\"
    access_token_lifetime = \"60m\"
    max_federated_credentials = 20
    allow_private_issuers = [\"https://oidc.cluster.internal\"]
    issuer_ca_files = [\"/etc/wisp/cluster-ca.pem\"]

Master key: private keys are sealed at rest under a 32-byte master key. By default
it is generated into DATA_DIR/master.key (mode 0600). Processes that share one
PostgreSQL database must share one key: give each WISP_MASTER_KEY (base64, e.g.
`openssl rand -base64 32`). It is read only from the environment, never from a
flag or the TOML file.";

#[derive(clap::Args, Debug, Default, Clone)]
#[command(after_long_help = SERVE_HELP)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "WISP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Data folder: embedded database, master key, TLS files, bootstrap.json [default: ./wisp-data]
    #[arg(long, env = "WISP_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Address to listen on [default: 127.0.0.1:8443]
    #[arg(long, env = "WISP_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Public base URL clients use: issuer and endpoint URLs derive from it
    /// [default: https://localhost:<listen port>]
    #[arg(long, env = "WISP_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Database URL: postgres://… to share a directory between replicas
    /// [default: embedded SQLite in the data folder]
    #[arg(long, env = "WISP_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,

    /// TLS certificate chain (PEM). Without it wisp generates a local CA and a
    /// server certificate in the data folder.
    #[arg(long, env = "WISP_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) for --tls-cert.
    #[arg(long, env = "WISP_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve plain HTTP instead of HTTPS. Only on a loopback address (e.g. behind
    /// a local TLS-terminating proxy); Microsoft clients refuse http authorities.
    #[arg(long, env = "WISP_INSECURE_HTTP", value_name = "BOOL", num_args = 0..=1,
          default_missing_value = "true", require_equals = true)]
    pub insecure_http: Option<bool>,

    /// Log format [default: human]
    #[arg(long, env = "WISP_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Log filter, e.g. `info` or `wisp=debug,info` [default: info]
    #[arg(long, env = "WISP_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,

    /// How long a signing key signs before the next one takes over, e.g. `30d`,
    /// `12h` (at least 1h) [default: 30d]
    #[arg(long, env = "WISP_SIGNING_KEY_ROTATION", value_name = "DURATION")]
    pub signing_key_rotation: Option<String>,

    /// Lifetime of issued access tokens, e.g. `60m` (between 5m and 24h;
    /// Entra issues 60–90 minutes) [default: 60m]
    #[arg(long, env = "WISP_ACCESS_TOKEN_LIFETIME", value_name = "DURATION")]
    pub access_token_lifetime: Option<String>,

    /// Most federated identity credentials per application or managed identity
    /// (Entra's limit is 20) [default: 20]
    #[arg(long, env = "WISP_MAX_FEDERATED_CREDENTIALS", value_name = "N")]
    pub max_federated_credentials: Option<usize>,

    /// An external issuer (exact string) that may be fetched although its host is
    /// loopback or private — for tests and private clusters (repeatable)
    #[arg(
        long = "allow-private-issuer",
        env = "WISP_ALLOW_PRIVATE_ISSUERS",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub allow_private_issuers: Vec<String>,

    /// PEM root certificates trusted for issuer fetches besides the system roots
    /// (repeatable)
    #[arg(long = "issuer-ca-file", env = "WISP_ISSUER_CA_FILES", value_name = "FILE", value_delimiter = ',')]
    pub issuer_ca_files: Vec<PathBuf>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// The TOML file: the same settings as the flags.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    public_url: Option<String>,
    database_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    insecure_http: Option<bool>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    signing_key_rotation: Option<String>,
    access_token_lifetime: Option<String>,
    max_federated_credentials: Option<usize>,
    allow_private_issuers: Option<Vec<String>>,
    issuer_ca_files: Option<Vec<PathBuf>>,
}

/// How the listener speaks TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// A local CA and server certificate generated into the data folder.
    Generated,
    /// Operator-supplied PEM files.
    Files { cert: PathBuf, key: PathBuf },
    /// Plain HTTP on loopback, by explicit request.
    Disabled,
}

/// Validated settings of `wisp serve`.
#[derive(Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Scheme, host and port, without a trailing slash.
    pub public_url: String,
    /// `false` when `public_url` was derived from the listen address, so a port
    /// chosen by the OS (`--listen 127.0.0.1:0`) can be filled in after binding.
    pub public_url_explicit: bool,
    /// `None`: embedded SQLite in the data folder.
    pub database_url: Option<String>,
    pub tls: TlsMode,
    pub log_format: LogFormat,
    pub log_level: String,
    pub signing_key_rotation_secs: i64,
    /// Seconds an access token is valid.
    pub access_token_lifetime_secs: i64,
    pub max_federated_credentials: usize,
    /// Exact issuer strings allowed on non-public addresses.
    pub allow_private_issuers: Vec<String>,
    /// Extra roots for issuer fetches.
    pub issuer_ca_files: Vec<PathBuf>,
    /// `WISP_MASTER_KEY`, base64. `None`: the data folder's key file.
    pub master_key: Option<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("database_url", &self.database_url.as_deref().map(crate::store::redact_url))
            .field("tls", &self.tls)
            .field("master_key", &self.master_key.as_ref().map(|_| "(from WISP_MASTER_KEY)"))
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Resolves flags and environment (already merged by clap) over the TOML file
    /// and the defaults, and validates the result.
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(path) => read_file_config(path)?,
            None => FileConfig::default(),
        };
        let master_key = std::env::var("WISP_MASTER_KEY").ok().filter(|v| !v.trim().is_empty());
        Self::merge(args, file, master_key)
    }

    fn merge(args: ServeArgs, file: FileConfig, master_key: Option<String>) -> anyhow::Result<Config> {
        let data_dir = args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("wisp-data"));
        let listen = args.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8443)));
        let insecure_http = args.insecure_http.or(file.insecure_http).unwrap_or(false);
        let tls_cert = args.tls_cert.or(file.tls_cert);
        let tls_key = args.tls_key.or(file.tls_key);
        let tls = match (insecure_http, tls_cert, tls_key) {
            (true, None, None) => {
                if !listen.ip().is_loopback() {
                    bail!("plain HTTP (--insecure-http) is allowed only on a loopback address, not {listen}");
                }
                TlsMode::Disabled
            }
            (true, _, _) => bail!("--insecure-http cannot be combined with --tls-cert/--tls-key"),
            (false, Some(cert), Some(key)) => TlsMode::Files { cert, key },
            (false, None, None) => TlsMode::Generated,
            (false, _, _) => bail!("--tls-cert and --tls-key must be given together"),
        };
        let public_url_explicit = args.public_url.is_some() || file.public_url.is_some();
        let public_url = match args.public_url.or(file.public_url) {
            Some(url) => normalize_public_url(&url, insecure_http)?,
            None => {
                let scheme = if insecure_http { "http" } else { "https" };
                format!("{scheme}://localhost:{}", listen.port())
            }
        };
        let rotation = args.signing_key_rotation.or(file.signing_key_rotation).unwrap_or_else(|| "30d".to_string());
        let signing_key_rotation_secs =
            parse_duration(&rotation).with_context(|| format!("invalid signing key rotation period {rotation:?}"))?;
        if !(3600..=366 * 24 * 3600).contains(&signing_key_rotation_secs) {
            bail!("the signing key rotation period must be between 1h and 366d, not {rotation}");
        }
        let lifetime = args.access_token_lifetime.or(file.access_token_lifetime).unwrap_or_else(|| "60m".to_string());
        let access_token_lifetime_secs =
            parse_duration(&lifetime).with_context(|| format!("invalid access token lifetime {lifetime:?}"))?;
        // The upper bound is what retired signing keys stay published for.
        if !(300..=crate::signing::rotation::MAX_TOKEN_LIFETIME_SECS).contains(&access_token_lifetime_secs) {
            bail!("the access token lifetime must be between 5m and 24h, not {lifetime}");
        }
        let max_federated_credentials = args
            .max_federated_credentials
            .or(file.max_federated_credentials)
            .unwrap_or(crate::directory::validation::DEFAULT_MAX_FICS_PER_OWNER);
        if !(1..=1000).contains(&max_federated_credentials) {
            bail!("--max-federated-credentials must be between 1 and 1000");
        }
        let allow_private_issuers = if args.allow_private_issuers.is_empty() {
            file.allow_private_issuers.unwrap_or_default()
        } else {
            args.allow_private_issuers
        };
        for issuer in &allow_private_issuers {
            crate::directory::validation::fic_issuer(issuer)
                .map_err(|e| anyhow::anyhow!("--allow-private-issuer {issuer:?}: {e}"))?;
        }
        let issuer_ca_files = if args.issuer_ca_files.is_empty() {
            file.issuer_ca_files.unwrap_or_default()
        } else {
            args.issuer_ca_files
        };
        Ok(Config {
            max_federated_credentials,
            allow_private_issuers,
            issuer_ca_files,
            data_dir,
            listen,
            public_url,
            public_url_explicit,
            database_url: args.database_url.or(file.database_url).filter(|u| !u.is_empty()),
            tls,
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            log_level: args.log_level.or(file.log_level).unwrap_or_else(|| "info".to_string()),
            signing_key_rotation_secs,
            access_token_lifetime_secs,
            master_key,
        })
    }
}

fn read_file_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("invalid configuration file {}: {}", path.display(), e.message()))
}

/// Checks the public base URL and returns it without a trailing slash. Clients
/// (MSAL) take the first path segment as the tenant, so no path is allowed.
fn normalize_public_url(url: &str, insecure_http: bool) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("invalid public URL {url:?}"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if insecure_http => {}
        "http" => {
            bail!("public URL {url} is http, but wisp serves HTTPS (use an https URL, or --insecure-http on loopback)")
        }
        other => bail!("public URL {url} has scheme {other}; expected https"),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        bail!("public URL {url} has no host");
    }
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        bail!("public URL {url} must be scheme://host[:port] with no path, query or fragment");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        bail!("public URL {url} must not contain credentials");
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// Parses `90s`, `15m`, `12h`, `30d` into seconds.
pub fn parse_duration(text: &str) -> anyhow::Result<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().context("expected a number followed by s, m, h or d")?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => bail!("expected a number followed by s, m, h or d"),
    };
    number.checked_mul(unit).context("duration too large")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_env_override_the_file_which_overrides_defaults() {
        let file: FileConfig =
            toml::from_str("listen = \"127.0.0.1:9000\"\ndata_dir = \"/from/file\"\nlog_format = \"json\"").unwrap();
        let args = ServeArgs { data_dir: Some("/from/flag".into()), ..ServeArgs::default() };
        let config = Config::merge(args, file, None).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(config.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.public_url, "https://localhost:9000");
        assert_eq!(config.tls, TlsMode::Generated);
        assert_eq!(config.signing_key_rotation_secs, 30 * 86400);

        let defaults = Config::merge(ServeArgs::default(), FileConfig::default(), None).unwrap();
        assert_eq!(defaults.data_dir, PathBuf::from("wisp-data"));
        assert_eq!(defaults.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(defaults.public_url, "https://localhost:8443");
    }

    #[test]
    fn unknown_file_settings_are_refused() {
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
    }

    #[test]
    fn plain_http_only_on_loopback_and_only_when_asked() {
        let on = |listen: &str| ServeArgs {
            insecure_http: Some(true),
            listen: Some(listen.parse().unwrap()),
            ..ServeArgs::default()
        };
        let ok = Config::merge(on("127.0.0.1:8080"), FileConfig::default(), None).unwrap();
        assert_eq!(ok.tls, TlsMode::Disabled);
        assert_eq!(ok.public_url, "http://localhost:8080");
        assert!(Config::merge(on("0.0.0.0:8080"), FileConfig::default(), None).is_err());
        let http_url = ServeArgs { public_url: Some("http://sts.test".into()), ..ServeArgs::default() };
        assert!(Config::merge(http_url, FileConfig::default(), None).is_err());
    }

    #[test]
    fn public_urls_are_origins() {
        assert_eq!(normalize_public_url("https://sts.example.com/", false).unwrap(), "https://sts.example.com");
        assert_eq!(
            normalize_public_url("https://sts.example.com:8443", false).unwrap(),
            "https://sts.example.com:8443"
        );
        assert!(normalize_public_url("https://sts.example.com/tenant", false).is_err());
        assert!(normalize_public_url("https://u:p@sts.example.com", false).is_err());
        assert!(normalize_public_url("ftp://sts.example.com", false).is_err());
        assert!(normalize_public_url("not a url", false).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("15m").unwrap(), 900);
        assert_eq!(parse_duration("12h").unwrap(), 43200);
        assert_eq!(parse_duration("30d").unwrap(), 2_592_000);
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("-5m").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
