//! The CLI's client for wisp's admin API. It finds the server and its
//! credentials (bootstrap.json, or flags/environment), gets an admin token from
//! the public token endpoint like any client would, and turns Graph errors into
//! one-line messages.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;

/// Where the server is and who we are.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// bootstrap.json to read the server and credentials from
    /// [default: ./wisp-data/bootstrap.json]
    #[arg(long, global = true, help_heading = "Connection", env = "WISP_BOOTSTRAP", value_name = "FILE")]
    pub bootstrap: Option<PathBuf>,
    /// Server URL (overrides bootstrap.json's authority)
    #[arg(long, global = true, help_heading = "Connection", env = "WISP_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Tenant to administer (overrides bootstrap.json's tenant_id)
    #[arg(long, global = true, help_heading = "Connection", env = "WISP_TENANT_ID", value_name = "GUID")]
    pub tenant: Option<String>,
    /// Administrator client id (overrides bootstrap.json's admin_client_id)
    #[arg(long, global = true, help_heading = "Connection", env = "WISP_CLIENT_ID", value_name = "GUID")]
    pub client_id: Option<String>,
    /// Administrator client secret; prefer the environment variable to the flag
    #[arg(
        long,
        global = true,
        help_heading = "Connection",
        env = "WISP_CLIENT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub client_secret: Option<String>,
    /// CA certificate to trust for the server (overrides bootstrap.json's ca_file)
    #[arg(long, global = true, help_heading = "Connection", env = "WISP_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Deserialize)]
struct BootstrapFile {
    tenant_id: Option<String>,
    admin_client_id: Option<String>,
    admin_client_secret: Option<String>,
    authority: Option<String>,
    ca_file: Option<PathBuf>,
}

/// A logged-in admin API session.
pub struct AdminClient {
    http: reqwest::Client,
    pub server: String,
    pub tenant: String,
    token: String,
}

impl AdminClient {
    /// Resolves the connection settings and obtains an admin token.
    pub async fn connect(args: &ConnectionArgs) -> anyhow::Result<Self> {
        let explicit = args.bootstrap.is_some();
        let path = args.bootstrap.clone().unwrap_or_else(|| PathBuf::from("wisp-data/bootstrap.json"));
        let file: Option<BootstrapFile> = match std::fs::read(&path) {
            Ok(bytes) => {
                Some(serde_json::from_slice(&bytes).with_context(|| format!("{} is not valid JSON", path.display()))?)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let from_file = |pick: fn(&BootstrapFile) -> Option<String>| file.as_ref().and_then(pick);
        let need = |value: Option<String>, what: &str, flag: &str| {
            value.ok_or_else(|| {
                anyhow::anyhow!(
                    "no {what}: pass {flag}, or --bootstrap FILE (default ./wisp-data/bootstrap.json, not found)"
                )
            })
        };
        let server = need(args.server.clone().or_else(|| from_file(|f| f.authority.clone())), "server", "--server")?;
        let tenant = need(args.tenant.clone().or_else(|| from_file(|f| f.tenant_id.clone())), "tenant", "--tenant")?;
        let client_id = need(
            args.client_id.clone().or_else(|| from_file(|f| f.admin_client_id.clone())),
            "client id",
            "--client-id",
        )?;
        let secret = need(
            args.client_secret.clone().or_else(|| from_file(|f| f.admin_client_secret.clone())),
            "client secret",
            "WISP_CLIENT_SECRET",
        )?;
        let ca_file = args.ca_file.clone().or_else(|| file.as_ref().and_then(|f| f.ca_file.clone()));

        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("wisp-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &ca_file {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read the CA file {}", ca.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM certificate", ca.display()))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().context("cannot build the HTTP client")?;
        let server = server.trim_end_matches('/').to_string();
        let response = http
            .post(format!("{server}/{tenant}/oauth2/v2.0/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id.as_str()),
                ("client_secret", secret.as_str()),
                ("scope", "api://wisp-admin/.default"),
            ])
            .send()
            .await
            .with_context(|| format!("cannot reach {server}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let description = body["error_description"].as_str().unwrap_or("no error description");
            bail!("sign-in failed ({status}): {description}");
        }
        let token = body["access_token"].as_str().context("the token response has no access_token")?.to_string();
        Ok(Self { http, server, tenant, token })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> anyhow::Result<Value> {
        let url = if path.starts_with("https://") || path.starts_with("http://") {
            path.to_string()
        } else {
            format!("{}{path}", self.server)
        };
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(etag) = if_match {
            request = request.header(reqwest::header::IF_MATCH, etag);
        }
        let response = request.send().await.with_context(|| format!("cannot reach {}", self.server))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let body: Value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if !status.is_success() {
            let message = body["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| body.to_string());
            bail!("{message} ({status})");
        }
        Ok(body)
    }

    /// POST that returns the status and JSON body whatever the status, for
    /// callers that render errors themselves.
    pub async fn post_raw(
        &self,
        path: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let mut request = self.http.post(format!("{}{path}", self.server)).bearer_auth(&self.token).json(body);
        if let Some(etag) = if_match {
            request = request.header(reqwest::header::IF_MATCH, etag);
        }
        let response = request.send().await.with_context(|| format!("cannot reach {}", self.server))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::GET, path, None, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, path, Some(body), None).await
    }

    /// PATCH, refused by the server (412) if the object changed since `if_match`.
    pub async fn patch(&self, path: &str, body: &Value, if_match: Option<&str>) -> anyhow::Result<Value> {
        self.send(reqwest::Method::PATCH, path, Some(body), if_match).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        self.send(reqwest::Method::DELETE, path, None, None).await.map(|_| ())
    }

    /// Every item of a list, following `@odata.nextLink`.
    pub async fn list_all(&self, path: &str) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(url) = next {
            let page = self.get(&url).await?;
            items.extend(page["value"].as_array().cloned().unwrap_or_default());
            next = page["@odata.nextLink"].as_str().map(str::to_string);
        }
        Ok(items)
    }
}

/// A `$filter` value with single quotes doubled, URL-encoded for a query string.
pub fn filter_eq(property: &str, value: &str) -> String {
    let clause = format!("{property} eq '{}'", value.replace('\'', "''"));
    form_urlencoded::byte_serialize(clause.as_bytes()).collect()
}
