//! Test harness: a real wisp server on a loopback port, HTTPS clients that trust
//! its generated CA, and per-test databases (a fresh PostgreSQL schema each).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use sqlx::{Connection, Executor};
use wisp::config::{Config, LogFormat, TlsMode};
use wisp::server::Server;

/// A server started in this process, with its data folder and a client.
pub struct TestServer {
    pub server: Server,
    pub client: reqwest::Client,
    pub base_url: String,
    pub data_dir: tempfile::TempDir,
}

impl TestServer {
    pub fn tenant_id(&self) -> String {
        self.server
            .bootstrap
            .as_ref()
            .expect("this server bootstrapped")
            .0
            .tenant_id
            .to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request reaches the server")
    }
}

/// Settings for a test server: loopback port 0, generated TLS, a temp data folder.
pub fn test_config(data_dir: &Path, database_url: Option<String>) -> Config {
    Config {
        data_dir: data_dir.to_path_buf(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        public_url: String::new(),
        public_url_explicit: false,
        database_url,
        tls: TlsMode::Generated,
        log_format: LogFormat::Human,
        log_level: "warn".into(),
        signing_key_rotation_secs: 30 * 86400,
        master_key: None,
    }
}

/// Starts a server on a fresh SQLite data folder.
pub async fn spawn_wisp() -> TestServer {
    let data_dir = tempfile::tempdir().unwrap();
    let config = test_config(data_dir.path(), None);
    spawn_with(config, data_dir).await
}

pub async fn spawn_with(config: Config, data_dir: tempfile::TempDir) -> TestServer {
    let server = Server::start(&config).await.expect("server starts");
    let port = server.local_addr.port();
    let client = https_client(server.ca_file.as_deref().expect("generated CA"), port);
    let base_url = server.public_url.clone();
    TestServer {
        server,
        client,
        base_url,
        data_dir,
    }
}

/// A client trusting only wisp's CA, with `localhost` pinned to 127.0.0.1.
pub fn https_client(ca_file: &Path, port: u16) -> reqwest::Client {
    let ca = std::fs::read(ca_file).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .unwrap()
}

/// The PostgreSQL server for tests, from `WISP_TEST_DATABASE_URL`. Outside CI
/// the PostgreSQL half of a test is skipped with a notice when it is unset; in CI
/// (`CI=true`) it must be set.
pub fn postgres_base_url() -> Option<String> {
    match std::env::var("WISP_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but WISP_TEST_DATABASE_URL is not set: PostgreSQL tests must run in CI")
        }
        _ => {
            eprintln!(
                "notice: WISP_TEST_DATABASE_URL is unset; skipping the PostgreSQL half of this test"
            );
            None
        }
    }
}

/// A fresh PostgreSQL schema, dropped when the guard goes. Its `url` points the
/// connection's `search_path` at it, so tests never see each other's tables.
pub struct PgSchema {
    base: String,
    name: String,
    pub url: String,
}

impl PgSchema {
    pub async fn create(base: &str) -> PgSchema {
        sqlx::any::install_default_drivers();
        let name = format!("wisp_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::AnyConnection::connect(base)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at WISP_TEST_DATABASE_URL is unreachable: {e}"));
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .await
            .unwrap();
        conn.close().await.unwrap();
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{name}");
        PgSchema {
            base: base.to_string(),
            name,
            url,
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let base = self.base.clone();
        let name = self.name.clone();
        // Drop runs outside async; use a private runtime on a helper thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) = sqlx::AnyConnection::connect(&base).await {
                    let _ = conn
                        .execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE")))
                        .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// One database per backend for a store test: SQLite in a temp folder, and a
/// PostgreSQL schema when configured. The guards keep them alive.
pub struct TestDatabase {
    pub backend: &'static str,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    _schema: Option<PgSchema>,
}

pub async fn test_databases() -> Vec<TestDatabase> {
    let dir = tempfile::tempdir().unwrap();
    let mut databases = vec![TestDatabase {
        backend: "sqlite",
        url: wisp::store::Store::sqlite_url(&dir.path().join("wisp.db")),
        _dir: Some(dir),
        _schema: None,
    }];
    if let Some(base) = postgres_base_url() {
        let schema = PgSchema::create(&base).await;
        databases.push(TestDatabase {
            backend: "postgres",
            url: schema.url.clone(),
            _dir: None,
            _schema: Some(schema),
        });
    }
    databases
}

/// Path of the wisp binary cargo built for these tests.
pub fn wisp_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wisp"))
}
