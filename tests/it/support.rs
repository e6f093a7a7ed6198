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
        self.server.bootstrap.as_ref().expect("this server bootstrapped").0.tenant_id.to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request reaches the server")
    }

    /// The bootstrap administrator's client id and secret.
    pub fn admin_credentials(&self) -> (String, String) {
        let info = &self.server.bootstrap.as_ref().expect("this server bootstrapped").0;
        (info.admin_client_id.to_string(), info.admin_client_secret.clone())
    }

    /// A client-credentials request with a secret; returns the raw response.
    pub async fn token_with_secret(
        &self,
        tenant: &str,
        client_id: &str,
        secret: &str,
        scope: &str,
    ) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/{tenant}/oauth2/v2.0/token")))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
                ("scope", scope),
            ])
            .send()
            .await
            .unwrap()
    }

    /// A client-credentials request with a client assertion.
    pub async fn token_with_assertion(
        &self,
        tenant: &str,
        client_id: &str,
        assertion: &str,
        scope: &str,
    ) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(self.url(&format!("/{tenant}/oauth2/v2.0/token")))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("client_assertion", assertion),
                ("scope", scope),
            ])
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// An admin API session as the bootstrap administrator.
    pub async fn admin(&self) -> Admin {
        let (id, secret) = self.admin_credentials();
        self.admin_as(&self.tenant_id(), &id, &secret).await
    }

    /// An admin API session for a new application holding only `role` on the
    /// admin API (e.g. `Directory.Read.All`), created by the bootstrap administrator.
    pub async fn admin_as_role(&self, role: &str) -> Admin {
        let (app_id, secret) = self.credential_with_role(role).await;
        self.admin_as(&self.tenant_id(), &app_id, &secret).await
    }

    /// A new application holding only `role` on the admin API: (client id, secret).
    pub async fn credential_with_role(&self, role: &str) -> (String, String) {
        let admin = self.admin().await;
        let app =
            admin.post("/v1.0/applications", serde_json::json!({"displayName": format!("holder of {role}")})).await;
        assert_eq!(app.status, 201, "{}", app.body);
        let secret = admin
            .post(
                &format!("/v1.0/applications/{}/addPassword", app.body["id"].as_str().unwrap()),
                serde_json::json!({}),
            )
            .await
            .body["secretText"]
            .as_str()
            .unwrap()
            .to_string();
        let app_id = app.body["appId"].as_str().unwrap().to_string();
        let sp = |app_id: &str| format!("/v1.0/servicePrincipals?$filter=appId eq '{app_id}'");
        let admin_api = admin.get(&sp("00000003-7769-7370-0000-000000000000")).await.body["value"][0].clone();
        let role_id =
            admin_api["appRoles"].as_array().unwrap().iter().find(|r| r["value"] == role).unwrap()["id"].clone();
        let holder = admin.get(&sp(&app_id)).await.body["value"][0]["id"].clone();
        let granted = admin
            .post(
                &format!("/v1.0/servicePrincipals/{}/appRoleAssignedTo", admin_api["id"].as_str().unwrap()),
                serde_json::json!({"principalId": holder, "resourceId": admin_api["id"], "appRoleId": role_id}),
            )
            .await;
        assert_eq!(granted.status, 201, "{}", granted.body);
        (app_id, secret)
    }

    /// An admin API session for any client holding admin API roles.
    pub async fn admin_as(&self, tenant: &str, client_id: &str, secret: &str) -> Admin {
        let response = self.token_with_secret(tenant, client_id, secret, "api://wisp-admin/.default").await;
        assert_eq!(response.status(), 200, "admin token for {client_id}");
        let body: serde_json::Value = response.json().await.unwrap();
        Admin {
            client: self.client.clone(),
            base: self.base_url.clone(),
            token: body["access_token"].as_str().unwrap().to_string(),
        }
    }
}

/// A bearer-token session against the admin API.
#[derive(Clone)]
pub struct Admin {
    pub client: reqwest::Client,
    pub base: String,
    pub token: String,
}

/// A response's status, headers and JSON body (Null when empty).
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
}

impl Reply {
    pub fn etag(&self) -> String {
        self.headers.get("etag").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    }

    pub fn error_message(&self) -> String {
        self.body["error"]["message"].as_str().unwrap_or_default().to_string()
    }
}

impl Admin {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.base) };
        let mut request = self.client.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> Reply {
        self.send(reqwest::Method::POST, path, Some(body), &[]).await
    }

    pub async fn patch(&self, path: &str, body: serde_json::Value) -> Reply {
        self.send(reqwest::Method::PATCH, path, Some(body), &[]).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(reqwest::Method::DELETE, path, None, &[]).await
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
        access_token_lifetime_secs: 3600,
        max_federated_credentials: 20,
        allow_private_issuers: Vec::new(),
        issuer_ca_files: Vec::new(),
        master_key: None,
    }
}

/// Starts a server on a fresh SQLite data folder.
pub async fn spawn_wisp() -> TestServer {
    let data_dir = tempfile::tempdir().unwrap();
    let config = test_config(data_dir.path(), None);
    spawn_with(config, data_dir).await
}

/// Starts a server that trusts these loopback issuers (allow-listed, with
/// their CAs), on a fresh SQLite data folder.
pub async fn spawn_trusting(issuers: &[&crate::fake_issuer::FakeIssuer]) -> TestServer {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(data_dir.path(), None);
    config.allow_private_issuers = issuers.iter().map(|i| i.issuer.clone()).collect();
    config.issuer_ca_files = issuers.iter().map(|i| i.ca_file.path().to_path_buf()).collect();
    spawn_with(config, data_dir).await
}

/// Starts a server whose directory lives in `db` (SQLite file or PostgreSQL schema).
pub async fn spawn_on(db: &TestDatabase) -> TestServer {
    let data_dir = tempfile::tempdir().unwrap();
    let config = test_config(data_dir.path(), Some(db.url.clone()));
    spawn_with(config, data_dir).await
}

/// Starts one of several servers sharing `db` (one master key), trusting these
/// issuers — as replicas behind a load balancer would.
pub async fn spawn_replica(
    db: &TestDatabase,
    master_key: &str,
    issuers: &[&crate::fake_issuer::FakeIssuer],
) -> TestServer {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(data_dir.path(), Some(db.url.clone()));
    config.master_key = Some(master_key.to_string());
    config.allow_private_issuers = issuers.iter().map(|i| i.issuer.clone()).collect();
    config.issuer_ca_files = issuers.iter().map(|i| i.ca_file.path().to_path_buf()).collect();
    spawn_with(config, data_dir).await
}

pub async fn spawn_with(config: Config, data_dir: tempfile::TempDir) -> TestServer {
    let server = Server::start(&config).await.expect("server starts");
    let port = server.local_addr.port();
    let client = https_client(server.ca_file.as_deref().expect("generated CA"), port);
    let base_url = server.public_url.clone();
    TestServer { server, client, base_url, data_dir }
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
            eprintln!("notice: WISP_TEST_DATABASE_URL is unset; skipping the PostgreSQL half of this test");
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
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}"))).await.unwrap();
        conn.close().await.unwrap();
        let separator = if base.contains('?') { '&' } else { '?' };
        // The application name lets the drop find connections a test left open.
        let url = format!("{base}{separator}options=-c%20search_path%3D{name}&application_name={name}");
        PgSchema { base: base.to_string(), name, url }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let base = self.base.clone();
        let name = self.name.clone();
        // Drop runs outside async; use a private runtime on a helper thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) = sqlx::AnyConnection::connect(&base).await {
                    // A server the test dropped without shutting down may still hold a
                    // transaction open (its runtime is blocked on this very drop): end
                    // its connections, or DROP SCHEMA would wait for them forever.
                    let _ = conn
                        .execute(sqlx::AssertSqlSafe(format!(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{name}'"
                        )))
                        .await;
                    let _ = conn.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {name} CASCADE"))).await;
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

/// What a run of the real `wisp` binary printed.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

/// Runs the real `wisp` binary with `--bootstrap FILE` and only the given environment.
pub async fn run_wisp(bootstrap: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let output = tokio::process::Command::new(wisp_binary())
        .args(args)
        .arg("--bootstrap")
        .arg(bootstrap)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into(),
        stderr: String::from_utf8_lossy(&output.stderr).into(),
    }
}

/// Path of the wisp binary cargo built for these tests.
pub fn wisp_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wisp"))
}

/// The claims of a JWT, unverified (tests check what wisp put in).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
