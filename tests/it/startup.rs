//! The real `wisp` binary as a user runs it: first start and restart, several
//! processes on one PostgreSQL database, and every bad-input case ending in one
//! clear line and a non-zero exit, with nothing on disk destroyed.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::{PgSchema, https_client, postgres_base_url, wisp_binary};

/// A running `wisp serve` process.
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) banner: Vec<String>,
    pub(crate) url: String,
    pub(crate) port: u16,
}

/// How a process that was expected to fail ended.
pub(crate) struct Failed {
    code: Option<i32>,
    pub(crate) stderr: String,
}

fn command(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(wisp_binary());
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--log-level", "warn"])
        .args(extra)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if !extra.contains(&"--listen") {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    cmd
}

/// Starts wisp and waits for its banner; or returns how it failed.
pub(crate) async fn start(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Result<Running, Failed> {
    let mut child = command(data_dir, extra, env).spawn().expect("spawn wisp");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = stdout.next_line().await {
            let done = line.starts_with("    Node:");
            banner.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await
    .expect("wisp starts or fails within a minute");
    if !ready {
        let mut stderr = String::new();
        child.stderr.take().unwrap().read_to_string(&mut stderr).await.unwrap();
        let status = child.wait().await.unwrap();
        return Err(Failed { code: status.code(), stderr });
    }
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
    let url = banner[0].trim_start_matches("wisp is running at ").to_string();
    let port = url.rsplit(':').next().unwrap().parse().unwrap();
    Ok(Running { child, banner, url, port })
}

async fn expect_failure(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Failed {
    match start(data_dir, extra, env).await {
        Ok(mut running) => {
            running.child.kill().await.ok();
            panic!("wisp started but should have refused: {:?}", running.banner)
        }
        Err(failed) => failed,
    }
}

/// The one-line, non-panicking error contract.
fn assert_clear_error(failed: &Failed, expected: &str) {
    assert_eq!(failed.code, Some(1), "exit code 1; stderr: {}", failed.stderr);
    assert!(failed.stderr.contains(expected), "stderr mentions {expected:?}: {}", failed.stderr);
    assert!(!failed.stderr.contains("panicked"), "no panic: {}", failed.stderr);
    assert!(!failed.stderr.contains("RUST_BACKTRACE"), "no backtrace hint: {}", failed.stderr);
    let error_lines: Vec<_> = failed.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error_lines.len(), 1, "one error line: {}", failed.stderr);
}

/// The published key ids and moduli of a tenant (the `issuer` member names the
/// process's own URL, so whole documents differ between processes).
async fn published_keys(running: &Running, data_dir: &Path, tenant: &str) -> Vec<(String, String)> {
    let jwks = jwks(running, data_dir, tenant).await;
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap().to_string(), k["n"].as_str().unwrap().to_string()))
        .collect()
}

async fn jwks(running: &Running, data_dir: &Path, tenant: &str) -> Value {
    let client = https_client(&data_dir.join("tls/ca.pem"), running.port);
    let response = client.get(format!("{}/{tenant}/discovery/v2.0/keys", running.url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

pub(crate) async fn stop(mut running: Running) -> Option<i32> {
    let pid = running.child.id().unwrap().to_string();
    std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), running.child.wait())
        .await
        .expect("wisp stops within the grace period")
        .unwrap();
    status.code()
}

fn bootstrap_json(data_dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(data_dir.join("bootstrap.json")).unwrap()).unwrap()
}

#[tokio::test]
async fn first_start_bootstraps_and_a_restart_keeps_keys_without_bootstrapping_again() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("wisp-data");
    let first = start(&data, &[], &[]).await.unwrap_or_else(|f| panic!("{}", f.stderr));
    assert!(first.banner.iter().any(|l| l.contains("first tenant:")), "{:?}", first.banner);
    assert!(first.banner.iter().any(|l| l.contains("REQUESTS_CA_BUNDLE")));
    assert!(first.banner.iter().any(|l| l.contains("NODE_EXTRA_CA_CERTS")));
    assert!(first.banner.iter().any(|l| l.contains("--cacert")));

    let bootstrap = bootstrap_json(&data);
    for field in ["tenant_id", "admin_client_id", "admin_client_secret", "authority", "ca_file"] {
        assert!(bootstrap.get(field).is_some(), "bootstrap.json has {field}");
    }
    assert_eq!(bootstrap["authority"], first.url.as_str());
    assert_eq!(bootstrap["ca_file"], data.join("tls/ca.pem").to_str().unwrap());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("bootstrap.json")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let secret = bootstrap["admin_client_secret"].as_str().unwrap().to_string();
    let banner = first.banner.join("\n");
    assert!(!banner.contains(&secret), "the banner never prints the secret");

    let tenant = bootstrap["tenant_id"].as_str().unwrap().to_string();
    let keys_before = published_keys(&first, &data, &tenant).await;
    assert_eq!(stop(first).await, Some(0), "SIGTERM is a clean exit");

    let bootstrap_bytes = std::fs::read(data.join("bootstrap.json")).unwrap();
    let second = start(&data, &[], &[]).await.unwrap_or_else(|f| panic!("{}", f.stderr));
    assert!(!second.banner.iter().any(|l| l.contains("first tenant:")), "no second bootstrap");
    assert_eq!(std::fs::read(data.join("bootstrap.json")).unwrap(), bootstrap_bytes, "bootstrap.json untouched");
    assert_eq!(published_keys(&second, &data, &tenant).await, keys_before, "same keys after restart");
    assert_eq!(stop(second).await, Some(0));

    // The secret is stored only as a keyed hash: not in the database file.
    let db = std::fs::read(data.join("wisp.db")).unwrap();
    let wal = std::fs::read(data.join("wisp.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "secret not stored in clear");
    }
}

#[tokio::test]
async fn a_foreign_data_folder_is_refused_and_left_intact() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("thesis.tex"), "precious").unwrap();
    let failed = expect_failure(tmp.path(), &[], &[]).await;
    assert_clear_error(&failed, "not a wisp data folder");
    assert_eq!(std::fs::read_to_string(tmp.path().join("thesis.tex")).unwrap(), "precious");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1, "nothing added");
}

#[tokio::test]
async fn a_wrong_master_key_is_refused_and_the_database_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let first = start(&data, &[], &[]).await.unwrap_or_else(|f| panic!("{}", f.stderr));
    assert_eq!(stop(first).await, Some(0));
    let db_before = std::fs::read(data.join("wisp.db")).unwrap();
    let other_key = wisp::crypto::MasterKey::generate_base64();
    let failed = expect_failure(&data, &[], &[("WISP_MASTER_KEY", &other_key)]).await;
    assert_clear_error(&failed, "master key does not match");
    assert_eq!(std::fs::read(data.join("wisp.db")).unwrap(), db_before);

    let failed = expect_failure(&data, &[], &[("WISP_MASTER_KEY", "too short")]).await;
    assert_clear_error(&failed, "WISP_MASTER_KEY is invalid");
}

#[tokio::test]
async fn a_corrupt_database_file_is_reported_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    let first = start(&data, &[], &[]).await.unwrap_or_else(|f| panic!("{}", f.stderr));
    assert_eq!(stop(first).await, Some(0));
    let garbage = vec![0x5a; 8192];
    std::fs::write(data.join("wisp.db"), &garbage).unwrap();
    let _ = std::fs::remove_file(data.join("wisp.db-wal"));
    let _ = std::fs::remove_file(data.join("wisp.db-shm"));
    let failed = expect_failure(&data, &[], &[]).await;
    assert_clear_error(&failed, "database");
    assert_eq!(std::fs::read(data.join("wisp.db")).unwrap(), garbage);
}

#[tokio::test]
async fn a_port_in_use_is_reported_before_anything_is_written() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("never-created");
    let listen = format!("127.0.0.1:{port}");
    let output = command(&data, &["--listen", &listen], &[]).output().await.unwrap();
    let failed = Failed { code: output.status.code(), stderr: String::from_utf8_lossy(&output.stderr).into() };
    assert_clear_error(&failed, "cannot listen on");
    assert!(!data.exists(), "no data folder was created");
}

#[tokio::test]
async fn an_unreachable_database_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let failed = expect_failure(tmp.path(), &["--database-url", "postgres://wisp:hunter2@127.0.0.1:1/wisp"], &[]).await;
    assert_clear_error(&failed, "cannot open the database");
    assert!(!failed.stderr.contains("hunter2"), "the password is not printed: {}", failed.stderr);
}

#[tokio::test]
async fn invalid_configuration_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let failed = expect_failure(tmp.path(), &["--insecure-http", "--listen", "0.0.0.0:0"], &[]).await;
    assert_clear_error(&failed, "only on a loopback address");

    let config = tmp.path().join("wisp.toml");
    std::fs::write(&config, "listen = 5\n").unwrap();
    let failed = expect_failure(&tmp.path().join("d"), &["--config", config.to_str().unwrap()], &[]).await;
    assert_clear_error(&failed, "invalid configuration file");

    let failed = expect_failure(&tmp.path().join("d"), &["--public-url", "https://sts.test/tenant"], &[]).await;
    assert_clear_error(&failed, "no path");
}

#[tokio::test]
async fn the_config_file_and_environment_apply_with_flags_winning() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("wisp.toml");
    std::fs::write(&config, "public_url = \"https://from-file.test:9\"\nlog_format = \"json\"\n").unwrap();
    let data = tmp.path().join("d");
    let config_arg = config.to_str().unwrap();
    // The file's public URL applies...
    let running = start(&data, &["--config", config_arg], &[]).await.unwrap_or_else(|f| panic!("{}", f.stderr));
    assert_eq!(running.url, "https://from-file.test:9");
    assert_eq!(stop(running).await, Some(0));
    // ...the environment beats the file...
    let running = start(&data, &["--config", config_arg], &[("WISP_PUBLIC_URL", "https://from-env.test:9")])
        .await
        .unwrap_or_else(|f| panic!("{}", f.stderr));
    assert_eq!(running.url, "https://from-env.test:9");
    assert_eq!(stop(running).await, Some(0));
    // ...and a flag beats both.
    let running = start(
        &data,
        &["--config", config_arg, "--public-url", "https://from-flag.test:9"],
        &[("WISP_PUBLIC_URL", "https://from-env.test:9")],
    )
    .await
    .unwrap_or_else(|f| panic!("{}", f.stderr));
    assert_eq!(running.url, "https://from-flag.test:9");
    assert_eq!(stop(running).await, Some(0));
}

#[tokio::test]
async fn two_processes_starting_at_once_on_postgres_bootstrap_once() {
    let Some(base) = postgres_base_url() else {
        return;
    };
    let schema = PgSchema::create(&base).await;
    let key = wisp::crypto::MasterKey::generate_base64();
    let tmp = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let args = ["--database-url", schema.url.as_str()];
    let env = [("WISP_MASTER_KEY", key.as_str())];
    let (a, b) = tokio::join!(start(&dir_a, &args, &env), start(&dir_b, &args, &env));
    let (a, b) = (a.unwrap_or_else(|f| panic!("{}", f.stderr)), b.unwrap_or_else(|f| panic!("{}", f.stderr)));
    let written: Vec<bool> = [&dir_a, &dir_b].iter().map(|d| d.join("bootstrap.json").exists()).collect();
    assert_eq!(written.iter().filter(|w| **w).count(), 1, "exactly one bootstrap.json: {written:?}");
    let winner = if written[0] { &dir_a } else { &dir_b };
    let tenant = bootstrap_json(winner)["tenant_id"].as_str().unwrap().to_string();
    // Both serve the same tenant with the same keys.
    assert_eq!(published_keys(&a, &dir_a, &tenant).await, published_keys(&b, &dir_b, &tenant).await);
    assert!(!dir_a.join("master.key").exists(), "WISP_MASTER_KEY given: no key file written");

    // A third process with a different key is refused.
    let other = wisp::crypto::MasterKey::generate_base64();
    let failed = expect_failure(&tmp.path().join("c"), &args, &[("WISP_MASTER_KEY", other.as_str())]).await;
    assert_clear_error(&failed, "master key does not match");
    assert_eq!(stop(a).await, Some(0));
    assert_eq!(stop(b).await, Some(0));
}
