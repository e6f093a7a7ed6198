//! `wisp-bench`: a load benchmark for wisp's token endpoint and agent.
//!
//! It starts `wisp serve` (as a user would: default settings, embedded SQLite
//! unless `--database-url`), an external OIDC issuer in this process whose keys
//! wisp trusts, sets up a tenant through the admin API, pre-mints distinct
//! assertions, drives the endpoints over keep-alive connections, verifies the
//! answers, and reports throughput, latency, the server's own CPU time per
//! token and memory — next to the signing ceiling measured in the same run.
//!
//! Run: `cargo build --release --workspace && target/release/wisp-bench` (see BENCHMARKS.md).

mod ceiling;
mod issuer;
mod load;
mod populate;
mod process;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use clap::Parser;
use serde_json::{Value, json};

use load::{LoadResult, LoadSpec, RequestSpec, Target};
use process::Child;

const SUBJECT: &str = "repo:acme/app:ref:refs/heads/main";
const API: &str = "api://bench-api";
const ALL: &[&str] = &["fic", "fic-es256", "fic-eddsa", "mi-fic", "certificate", "secret", "imds"];

#[derive(Parser, Debug)]
#[command(
    name = "wisp-bench",
    about = "Load benchmark for wisp: throughput, latency, CPU per token vs. the signing ceiling"
)]
struct Args {
    /// Scenarios, comma-separated: fic, fic-es256, fic-eddsa, mi-fic, certificate, secret, imds, or all
    #[arg(long, default_value = "all", value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Keep-alive connections
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of measured load per run
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of unmeasured load before each scenario (warms caches)
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// After each saturating run, offer this fraction of its throughput (open loop) and report
    /// that run's latency; 0 skips it
    #[arg(long, default_value_t = 0.5)]
    latency_fraction: f64,
    /// Distinct external assertions to pre-mint
    #[arg(long, default_value_t = 30_000)]
    assertions: usize,
    /// A PostgreSQL URL: the server runs on a fresh schema there (dropped afterwards)
    /// instead of the embedded SQLite
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Fill the directory with this many filler applications first (then restart the server
    /// and report how long it takes to become ready)
    #[arg(long, default_value_t = 0)]
    populate_apps: usize,
    /// Federated credentials per filler application
    #[arg(long, default_value_t = 10)]
    fics_per_app: usize,
    /// The wisp binary [default: next to this one]
    #[arg(long, value_name = "PATH")]
    wisp: Option<PathBuf>,
    /// Also write the results as JSON here
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// One measured run.
struct Run {
    scenario: String,
    token_alg: String,
    load: LoadResult,
    process_cpu: Duration,
    peak_rss: u64,
    rate: Option<f64>,
    /// The crypto this request cannot avoid, measured in this process.
    ceiling: Option<Duration>,
    /// How many distinct request bodies (assertions) the run cycled through.
    distinct_bodies: usize,
}

impl Run {
    fn cpu_per_request(&self) -> Duration {
        self.process_cpu.checked_div(self.load.ok.max(1) as u32).unwrap_or_default()
    }
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let scenarios: Vec<String> = if args.scenarios.iter().any(|s| s == "all") {
        ALL.iter().map(|s| s.to_string()).collect()
    } else {
        args.scenarios.clone()
    };
    for s in &scenarios {
        if !ALL.contains(&s.as_str()) {
            bail!("unknown scenario {s:?}; choose from {}", ALL.join(", "));
        }
    }
    let wisp = process::wisp_binary(args.wisp.clone())?;
    let work = tempfile::tempdir()?;
    let issuer = issuer::Issuer::start(work.path()).await?;

    let schema = match &args.database_url {
        Some(base) => Some(PgSchema::create(base).await?),
        None => None,
    };
    let mut server = Server::start(&wisp, work.path(), &issuer, schema.as_ref().map(|s| s.url.clone())).await?;
    eprintln!("wisp serve ready in {:?}; idle RSS {}", server.ready_in, mib(server.process.memory()?.0));

    let setup = Setup::create(&server, &issuer).await?;
    let mut ready_populated = None;
    if args.populate_apps > 0 {
        let url = schema
            .as_ref()
            .map(|s| s.url.clone())
            .unwrap_or_else(|| format!("sqlite://{}", work.path().join("data").join("wisp.db").display()));
        let took = populate::fill(&url, &setup.tenant, args.populate_apps, args.fics_per_app).await?;
        eprintln!(
            "filled the directory with {} applications and {} federated credentials in {took:?}",
            args.populate_apps,
            args.populate_apps * args.fics_per_app
        );
        server = server.restart(&wisp, work.path(), &issuer, schema.as_ref().map(|s| s.url.clone())).await?;
        eprintln!("wisp serve ready in {:?} with the filled directory", server.ready_in);
        ready_populated = Some(server.ready_in);
    }
    let idle_rss = server.process.memory()?.0;

    eprintln!("pre-minting {} external assertions…", args.assertions);
    let external = Arc::new(form_bodies(&setup, &issuer.mint(SUBJECT, args.assertions)));

    let mut runs = Vec::new();
    for scenario in &scenarios {
        let results = run_scenario(&args, scenario, &server, &setup, &external).await?;
        runs.extend(results);
    }

    let ceiling = tokio::task::spawn_blocking(ceiling::measure).await?;
    let peak_rss = server.process.memory()?.1;
    report(&args, &runs, &ceiling, &server, idle_rss, peak_rss, ready_populated);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&json_report(&runs, &ceiling, idle_rss, peak_rss))?)?;
    }
    server.process.stop().await;
    issuer.stop();
    Ok(())
}

/// The running server and how to reach it.
struct Server {
    process: Child,
    base: String,
    http: reqwest::Client,
    target: Target,
    ready_in: Duration,
    port: u16,
    /// The data folder (`bootstrap.json`, `tls/ca.pem`).
    data: PathBuf,
    /// The `wisp` binary (it also runs the agent).
    wisp: PathBuf,
}

impl Server {
    async fn start(
        wisp: &std::path::Path,
        work: &std::path::Path,
        issuer: &issuer::Issuer,
        database_url: Option<String>,
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        Self::start_on(wisp, work, issuer, database_url, port).await
    }

    async fn start_on(
        wisp: &std::path::Path,
        work: &std::path::Path,
        issuer: &issuer::Issuer,
        database_url: Option<String>,
        port: u16,
    ) -> anyhow::Result<Self> {
        let data = work.join("data");
        let mut serve = vec![
            "serve".to_string(),
            "--data-dir".into(),
            data.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--allow-private-issuer".into(),
            issuer.issuer.clone(),
            "--issuer-ca-file".into(),
            issuer.ca_file.display().to_string(),
        ];
        if let Some(url) = database_url {
            serve.extend(["--database-url".to_string(), url]);
        }
        let mut process = Child::spawn(wisp, &serve, &[])?;
        let base = format!("https://localhost:{port}");
        let ca_file = data.join("tls").join("ca.pem");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !ca_file.exists() {
            if std::time::Instant::now() > deadline || process.child.try_wait()?.is_some() {
                bail!("wisp serve did not start (see its output above)");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let ca_pem = std::fs::read(&ca_file)?;
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca_pem)?])
            .resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .build()?;
        let ready_in =
            process::wait_ready(&http, &format!("{base}/readyz"), &mut process, Duration::from_secs(120)).await?;
        let target = Target {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            host: format!("localhost:{port}"),
            tls: Some(load::tls_connector(&ca_pem)?),
        };
        Ok(Self { process, base, http, target, ready_in, port, data, wisp: wisp.to_path_buf() })
    }

    async fn restart(
        self,
        wisp: &std::path::Path,
        work: &std::path::Path,
        issuer: &issuer::Issuer,
        database_url: Option<String>,
    ) -> anyhow::Result<Self> {
        let port = self.port;
        self.process.stop().await;
        Self::start_on(wisp, work, issuer, database_url, port).await
    }
}

/// The tenant's objects the scenarios use.
struct Setup {
    tenant: String,
    admin_token: String,
    client_id: String,
    client_secret: String,
    api_app_id: String,
    identity_client_id: String,
    /// The RSA key and DER certificate registered on the client application.
    certificate: (aws_lc_rs::rsa::KeyPair, Vec<u8>),
    /// Two one-time join tokens for the identity's resource.
    join_tokens: Vec<String>,
}

impl Setup {
    async fn create(server: &Server, issuer: &issuer::Issuer) -> anyhow::Result<Self> {
        let bootstrap: Value = serde_json::from_slice(&std::fs::read(server.data.join("bootstrap.json"))?)?;
        let tenant = bootstrap["tenant_id"].as_str().context("bootstrap.json: tenant_id")?.to_string();
        let admin_id = bootstrap["admin_client_id"].as_str().context("bootstrap.json: admin_client_id")?;
        let admin_secret = bootstrap["admin_client_secret"].as_str().context("bootstrap.json: admin_client_secret")?;
        let token: Value = server
            .http
            .post(format!("{}/{tenant}/oauth2/v2.0/token", server.base))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", admin_id),
                ("client_secret", admin_secret),
                ("scope", "api://wisp-admin/.default"),
            ])
            .send()
            .await?
            .json()
            .await?;
        let admin_token = token["access_token"].as_str().context("no admin token")?.to_string();
        let admin = Admin { http: server.http.clone(), base: server.base.clone(), token: admin_token.clone() };

        let api = admin
            .send(
                "POST",
                "/v1.0/applications",
                json!({"displayName": "bench-api", "identifierUris": [API], "appRoles": [{"value": "Bench.Read"}]}),
            )
            .await?;
        let client = admin.send("POST", "/v1.0/applications", json!({"displayName": "bench-client"})).await?;
        let client_object = client["id"].as_str().context("client id")?.to_string();
        let client_id = client["appId"].as_str().context("client appId")?.to_string();
        let fics = format!("/v1.0/applications/{client_object}/federatedIdentityCredentials");
        admin.send("POST", &fics, json!({"name": "github-main", "issuer": issuer.issuer, "subject": SUBJECT})).await?;
        let secret = admin.send("POST", &format!("/v1.0/applications/{client_object}/addPassword"), json!({})).await?;
        let client_secret = secret["secretText"].as_str().context("secretText")?.to_string();
        let certificate = issuer::certificate_key()?;
        admin
            .send(
                "PATCH",
                &format!("/v1.0/applications/{client_object}"),
                json!({"keyCredentials": [{"type": "AsymmetricX509Cert", "usage": "Verify", "key": STANDARD.encode(&certificate.1)}]}),
            )
            .await?;

        // The client's role on the API: tokens carry `roles`, as in production.
        let sp = |app_id: &str| format!("/v1.0/servicePrincipals?$filter=appId eq '{app_id}'");
        let api_app_id = api["appId"].as_str().context("api appId")?.to_string();
        let client_sp = admin.send("GET", &sp(&client_id), Value::Null).await?["value"][0]["id"].clone();
        let api_sp = admin.send("GET", &sp(&api_app_id), Value::Null).await?["value"][0]["id"]
            .as_str()
            .context("api sp")?
            .to_string();
        let role = api["appRoles"][0]["id"].clone();
        admin
            .send(
                "POST",
                &format!("/v1.0/servicePrincipals/{api_sp}/appRoleAssignedTo"),
                json!({"principalId": client_sp, "resourceId": api_sp, "appRoleId": role}),
            )
            .await?;

        // A user-assigned identity on a resource, trusted by the client (MI as FIC).
        let identity = admin.send("POST", "/v1.0/managedIdentities", json!({"displayName": "bench-mi"})).await?;
        let resource = admin
            .send("POST", "/v1.0/resources", json!({"name": "bench-vm", "identity": {"type": "UserAssigned", "userAssignedIdentities": [identity["id"]]}}))
            .await?;
        admin
            .send(
                "POST",
                &fics,
                json!({"name": "bench-mi", "issuer": format!("{}/{tenant}/v2.0", server.base), "subject": identity["principalId"]}),
            )
            .await?;
        let mut join_tokens = Vec::new();
        for _ in 0..2 {
            let created = admin
                .send(
                    "POST",
                    &format!("/v1.0/resources/{}/joinTokens", resource["id"].as_str().unwrap_or_default()),
                    json!({}),
                )
                .await?;
            join_tokens.push(created["joinToken"].as_str().context("joinToken")?.to_string());
        }
        Ok(Self {
            tenant,
            admin_token,
            client_id,
            client_secret,
            api_app_id,
            identity_client_id: identity["clientId"].as_str().context("identity clientId")?.to_string(),
            certificate,
            join_tokens,
        })
    }

    fn admin(&self, server: &Server) -> Admin {
        Admin { http: server.http.clone(), base: server.base.clone(), token: self.admin_token.clone() }
    }
}

struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Admin {
    async fn send(&self, method: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(url),
            "PATCH" => self.http.patch(url).json(&body),
            _ => self.http.post(url).json(&body),
        };
        let response = request.bearer_auth(&self.token).send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {text}");
        }
        Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text)? })
    }
}

/// Form bodies of client-credentials requests with these client assertions.
fn form_bodies(setup: &Setup, assertions: &[String]) -> Vec<Bytes> {
    assertions
        .iter()
        .map(|assertion| {
            let body = form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "client_credentials")
                .append_pair("client_id", &setup.client_id)
                .append_pair("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                .append_pair("client_assertion", assertion)
                .append_pair("scope", &format!("{API}/.default"))
                .finish();
            Bytes::from(body)
        })
        .collect()
}

fn token_request(setup: &Setup, bodies: Arc<Vec<Bytes>>) -> RequestSpec {
    RequestSpec {
        method: hyper::Method::POST,
        path: format!("/{}/oauth2/v2.0/token", setup.tenant),
        headers: vec![("content-type", "application/x-www-form-urlencoded".to_string())],
        bodies,
    }
}

/// Checks the signature, issuer and audience of the token in a response, with
/// the tenant's published keys.
fn token_verifier(jwks: Value, issuer: String, audience: String) -> load::Verifier {
    let keys: Vec<jsonwebtoken::jwk::Jwk> = serde_json::from_value(jwks["keys"].clone()).unwrap_or_default();
    Arc::new(move |body: &[u8]| {
        let body: Value = serde_json::from_slice(body)?;
        let token = body["access_token"].as_str().context("no access_token")?;
        let header = jsonwebtoken::decode_header(token)?;
        let jwk = keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == header.kid.as_deref())
            .context("signed by an unpublished key")?;
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&audience]);
        jsonwebtoken::decode::<Value>(token, &jsonwebtoken::DecodingKey::from_jwk(jwk)?, &validation)?;
        Ok(())
    })
}

async fn run_scenario(
    args: &Args,
    scenario: &str,
    server: &Server,
    setup: &Setup,
    external: &Arc<Vec<Bytes>>,
) -> anyhow::Result<Vec<Run>> {
    let token_alg = match scenario {
        "fic-es256" => "ES256",
        "fic-eddsa" => "EdDSA",
        _ => "RS256",
    };
    let admin = setup.admin(server);
    admin.send("PATCH", "/v1.0/policies/tokenSigning", json!({"algorithm": token_alg})).await?;
    let jwks: Value =
        server.http.get(format!("{}/{}/discovery/v2.0/keys", server.base, setup.tenant)).send().await?.json().await?;
    let verify = token_verifier(jwks, format!("{}/{}/v2.0", server.base, setup.tenant), setup.api_app_id.clone());

    let mut agent = None;
    let (target, request, measured_pid): (Target, RequestSpec, u32) = match scenario {
        "fic" | "fic-es256" | "fic-eddsa" => {
            (server.target.clone(), token_request(setup, external.clone()), server.process.pid)
        }
        "secret" => {
            let body = form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "client_credentials")
                .append_pair("client_id", &setup.client_id)
                .append_pair("client_secret", &setup.client_secret)
                .append_pair("scope", &format!("{API}/.default"))
                .finish();
            (server.target.clone(), token_request(setup, Arc::new(vec![Bytes::from(body)])), server.process.pid)
        }
        "certificate" => {
            let count = (args.assertions / 2).max(1);
            eprintln!("pre-minting {count} certificate assertions…");
            let assertions = certificate_assertions(server, setup, count);
            (server.target.clone(), token_request(setup, Arc::new(form_bodies(setup, &assertions))), server.process.pid)
        }
        "mi-fic" => {
            let count = (args.assertions / 10).clamp(1, 5000);
            eprintln!("fetching {count} managed identity tokens from wisp…");
            let tokens = managed_identity_tokens(server, setup, count).await?;
            (server.target.clone(), token_request(setup, Arc::new(form_bodies(setup, &tokens))), server.process.pid)
        }
        "imds" => {
            let (child, port) = start_agent(server, setup).await?;
            let pid = child.pid;
            agent = Some(child);
            let target = Target {
                addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                host: format!("127.0.0.1:{port}"),
                tls: None,
            };
            let request = RequestSpec {
                method: hyper::Method::GET,
                path: format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource={API}"),
                headers: vec![("metadata", "true".to_string())],
                bodies: Arc::new(vec![Bytes::new()]),
            };
            (target, request, pid)
        }
        other => bail!("unknown scenario {other}"),
    };
    let measured = Measured { pid: measured_pid };

    // Warm-up: caches, connections, the issuer's keys.
    let warm = LoadSpec {
        connections: args.connections,
        duration: Duration::from_secs_f64(args.warmup),
        rate: None,
        verify: None,
        sample_every: 1,
    };
    let warmed = load::run(&target, &request, &warm, || {}, || {}).await?;
    if warmed.ok == 0 {
        bail!("{scenario}: no successful request during warm-up: {}", warmed.first_error.unwrap_or_default());
    }

    let mut runs = Vec::new();
    let mut saturated = measure(args, scenario, token_alg, &target, &request, &measured, &verify, None).await?;
    // The ceiling right after the run it is compared with: this machine's speed
    // drifts by ±25% over minutes, a ratio of neighbours much less.
    let crypto = tokio::task::spawn_blocking(ceiling::measure).await?;
    let ceiling = match scenario {
        "secret" => crypto.sign(token_alg),
        "imds" => Duration::ZERO,
        // mi-fic: the assertion is wisp's own RS256 token.
        _ => crypto.sign(token_alg) + crypto.rs256_verify,
    };
    saturated.ceiling = Some(ceiling);
    let throughput = saturated.load.throughput();
    print_run(&saturated);
    runs.push(saturated);
    if args.latency_fraction > 0.0 {
        let offered = throughput * args.latency_fraction;
        let mut paced =
            measure(args, scenario, token_alg, &target, &request, &measured, &verify, Some(offered)).await?;
        paced.ceiling = Some(ceiling);
        print_run(&paced);
        runs.push(paced);
    }
    if let Some(agent) = agent {
        agent.stop().await;
    }
    Ok(runs)
}

struct Measured {
    pid: u32,
}

impl Measured {
    fn cpu(&self) -> Duration {
        process::cpu_of(self.pid).unwrap_or_default()
    }
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    args: &Args,
    scenario: &str,
    token_alg: &str,
    target: &Target,
    request: &RequestSpec,
    measured: &Measured,
    verify: &load::Verifier,
    rate: Option<f64>,
) -> anyhow::Result<Run> {
    let spec = LoadSpec {
        connections: args.connections,
        duration: Duration::from_secs_f64(args.duration),
        rate,
        verify: Some(verify.clone()),
        sample_every: 100,
    };
    let before = std::cell::Cell::new(Duration::ZERO);
    let after = std::cell::Cell::new(Duration::ZERO);
    let load = load::run(target, request, &spec, || before.set(measured.cpu()), || after.set(measured.cpu())).await?;
    Ok(Run {
        scenario: scenario.to_string(),
        token_alg: token_alg.to_string(),
        process_cpu: after.get().saturating_sub(before.get()),
        peak_rss: process::memory_of(measured.pid).map(|(_, peak)| peak).unwrap_or_default(),
        load,
        rate,
        ceiling: None,
        distinct_bodies: request.bodies.len(),
    })
}

/// Client assertions signed with the application's certificate (RFC 7523, Entra's shape).
fn certificate_assertions(server: &Server, setup: &Setup, count: usize) -> Vec<String> {
    use sha1_hash::sha1;
    let (key, der) = &setup.certificate;
    let x5t = URL_SAFE_NO_PAD.encode(sha1(der));
    let audience = format!("{}/{}/oauth2/v2.0/token", server.base, setup.tenant);
    let now = unix_now();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let per_thread = count.div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (x5t, audience) = (x5t.clone(), audience.clone());
                scope.spawn(move || {
                    (t * per_thread..((t + 1) * per_thread).min(count))
                        .map(|_| {
                            issuer::sign_rs256_with_header(
                                key,
                                json!({"alg": "RS256", "typ": "JWT", "x5t": x5t}),
                                &json!({"iss": setup.client_id, "sub": setup.client_id, "aud": audience,
                                        "iat": now, "nbf": now - 5, "exp": now + 3600,
                                        "jti": uuid::Uuid::new_v4().to_string()}),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("minting thread")).collect()
    })
}

mod sha1_hash {
    /// SHA-1 of `data` (the certificate thumbprint Entra calls x5t).
    pub fn sha1(data: &[u8]) -> Vec<u8> {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref().to_vec()
    }
}

/// Distinct managed identity tokens (audience api://AzureADTokenExchange) from
/// wisp's agent endpoint, as an enrolled agent gets them.
async fn managed_identity_tokens(server: &Server, setup: &Setup, count: usize) -> anyhow::Result<Vec<String>> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(|_| anyhow::anyhow!("EC key"))?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| anyhow::anyhow!("EC key"))?;
    let point = key.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
                     "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])});
    let enrolled: Value = server
        .http
        .post(format!("{}/agent/v1/enroll", server.base))
        .json(&json!({"joinToken": setup.join_tokens[0], "publicKey": jwk}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let agent_id = enrolled["agentId"].as_str().context("agentId")?.to_string();
    let assertion = || {
        let now = unix_now();
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "typ": "JWT", "kid": agent_id}).to_string()),
            URL_SAFE_NO_PAD.encode(
                json!({"iss": agent_id, "sub": agent_id, "aud": format!("{}/agent/v1/token", server.base),
                       "iat": now, "nbf": now - 30, "exp": now + 300, "jti": uuid::Uuid::new_v4()})
                .to_string()
            )
        );
        let signature = key.sign(&rng, input.as_bytes()).expect("ECDSA signing");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    };
    let mut tokens = Vec::with_capacity(count);
    for _ in 0..count {
        let answer: Value = server
            .http
            .post(format!("{}/agent/v1/token", server.base))
            .json(
                &json!({"assertion": assertion(), "resource": issuer::AUDIENCE, "clientId": setup.identity_client_id}),
            )
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        tokens.push(answer["access_token"].as_str().context("no managed identity token")?.to_string());
    }
    Ok(tokens)
}

/// Starts `wisp agent` for the bench resource; returns it and its port.
async fn start_agent(server: &Server, setup: &Setup) -> anyhow::Result<(Child, u16)> {
    let port = free_port()?;
    let wisp = &server.wisp;
    let ca_file = server.data.join("tls").join("ca.pem");
    let args = vec![
        "agent".to_string(),
        "--server".into(),
        server.base.clone(),
        "--ca-file".into(),
        ca_file.display().to_string(),
        "--state-dir".into(),
        server.data.with_file_name("agent").display().to_string(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
    ];
    let mut child = Child::spawn(wisp, &args, &[("WISP_JOIN_TOKEN", setup.join_tokens[1].clone())])?;
    let http = reqwest::Client::new();
    // The agent answers once enrolled; an IMDS request then warms its cache.
    let url = format!("http://127.0.0.1:{port}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={API}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = http.get(&url).header("Metadata", "true").send().await
            && response.status().is_success()
        {
            break;
        }
        if child.child.try_wait()?.is_some() || std::time::Instant::now() > deadline {
            bail!("wisp agent did not start");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((child, port))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs() as i64
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn print_run(run: &Run) {
    let load = &run.load;
    let mode = match run.rate {
        Some(rate) => format!("offered {rate:.0}/s"),
        None => "saturating".to_string(),
    };
    eprintln!(
        "  {:<12} {:<6} {:<16} {:>8.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}  CPU/request {:>6.1} µs{}",
        run.scenario,
        run.token_alg,
        mode,
        load.throughput(),
        load.quantile_ms(0.5),
        load.quantile_ms(0.99),
        load.errors,
        run.cpu_per_request().as_secs_f64() * 1e6,
        load.first_error.as_ref().map(|e| format!("\n    first error: {e}")).unwrap_or_default()
    );
}

fn report(
    args: &Args,
    runs: &[Run],
    ceiling: &ceiling::Ceiling,
    server: &Server,
    idle_rss: u64,
    peak_rss: u64,
    ready_populated: Option<Duration>,
) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!();
    println!(
        "wisp-bench: {} connections, {} s per run, {} vCPUs, database {}{}",
        args.connections,
        args.duration,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        if args.database_url.is_some() { "PostgreSQL" } else { "SQLite (embedded)" },
        if args.populate_apps > 0 {
            format!(
                ", directory filled with {} apps / {} FICs",
                args.populate_apps,
                args.populate_apps * args.fics_per_app
            )
        } else {
            String::new()
        }
    );
    println!(
        "crypto on this machine at the end of the run: RS256 sign {:.1} µs, ES256 sign {:.1} µs, EdDSA sign {:.1} µs, RS256 verify {:.1} µs",
        us(ceiling.rs256_sign),
        us(ceiling.es256_sign),
        us(ceiling.eddsa_sign),
        us(ceiling.rs256_verify)
    );
    println!();
    println!(
        "{:<12} {:<6} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>11} {:>9} {:>7} {:>12}",
        "scenario",
        "alg",
        "offered/s",
        "done/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors",
        "CPU/req µs",
        "ceiling",
        "ratio",
        "req/CPU-s"
    );
    for run in runs {
        let cpu = run.cpu_per_request();
        let ceiling = run.ceiling.unwrap_or_default();
        println!(
            "{:<12} {:<6} {:>10} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>11.1} {:>9} {:>7} {:>12.0}",
            run.scenario,
            run.token_alg,
            run.rate.map(|r| format!("{r:.0}")).unwrap_or_else(|| "max".into()),
            run.load.throughput(),
            run.load.quantile_ms(0.5),
            run.load.quantile_ms(0.9),
            run.load.quantile_ms(0.99),
            run.load.quantile_ms(1.0),
            run.load.errors,
            us(cpu),
            if ceiling.is_zero() { "-".to_string() } else { format!("{:.1}", us(ceiling)) },
            if ceiling.is_zero() {
                "-".to_string()
            } else {
                format!("{:.2}", cpu.as_secs_f64() / ceiling.as_secs_f64())
            },
            1.0 / cpu.as_secs_f64().max(1e-9)
        );
    }
    println!();
    let verified: u64 = runs.iter().map(|r| r.load.verified).sum();
    let reused: u64 = runs.iter().filter(|r| r.distinct_bodies > 1).map(|r| r.load.bodies_reused).max().unwrap_or(0);
    println!(
        "token signatures verified (1 in 100 answers): {verified}; assertions sent more than once in a run: at most {reused} \
         (wisp caches no verification result, so a repeat costs the same)"
    );
    println!(
        "server RSS: idle {}, peak {}; ready in {:?}{}",
        mib(idle_rss),
        mib(peak_rss),
        server.ready_in,
        ready_populated.map(|d| format!(" (with the filled directory: {d:?})")).unwrap_or_default()
    );
    if let Some(imds) = runs.iter().find(|r| r.scenario == "imds") {
        println!("agent peak RSS: {}", mib(imds.peak_rss));
    }
    println!("CPU/req: the measured process's user+system CPU (/proc/PID/stat) over the run ÷ successful answers;");
    println!("ceiling: one token signature (+ one RS256 assertion verification where the request carries one),");
    println!("measured in this process right after the scenario's saturating run; ratio = CPU/req ÷ ceiling.");
}

fn json_report(runs: &[Run], ceiling: &ceiling::Ceiling, idle_rss: u64, peak_rss: u64) -> Value {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    json!({
        "ceiling_us": {"rs256_sign": us(ceiling.rs256_sign), "es256_sign": us(ceiling.es256_sign),
                        "eddsa_sign": us(ceiling.eddsa_sign), "rs256_verify": us(ceiling.rs256_verify)},
        "server_rss": {"idle": idle_rss, "peak": peak_rss},
        "runs": runs.iter().map(|r| json!({
            "scenario": r.scenario, "token_alg": r.token_alg, "offered_per_s": r.rate,
            "done_per_s": r.load.throughput(), "ok": r.load.ok, "errors": r.load.errors,
            "p50_ms": r.load.quantile_ms(0.5), "p90_ms": r.load.quantile_ms(0.9), "p99_ms": r.load.quantile_ms(0.99),
            "max_ms": r.load.quantile_ms(1.0), "cpu_per_request_us": us(r.cpu_per_request()),
            "ceiling_us": r.ceiling.map(us), "peak_rss": r.peak_rss,
        })).collect::<Vec<_>>(),
    })
}

/// A fresh PostgreSQL schema for the server (dropped at exit).
struct PgSchema {
    base: String,
    name: String,
    url: String,
}

impl PgSchema {
    async fn create(base: &str) -> anyhow::Result<Self> {
        use sqlx::{Connection, Executor};
        sqlx::any::install_default_drivers();
        let name = format!("wisp_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::AnyConnection::connect(base).await.context("cannot reach PostgreSQL")?;
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}"))).await?;
        conn.close().await?;
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
        Ok(Self { base: base.to_string(), name, url })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                use sqlx::{Connection, Executor};
                let mut conn = sqlx::AnyConnection::connect(&base).await.ok()?;
                conn.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE"))).await.ok()?;
                conn.close().await.ok()
            })
        })
        .join();
    }
}
