//! The agent's state folder: `agent.json` (server, ids), `agent-key.der` (its
//! private key, mode 0600, never leaves the machine) and `identity-header` (the
//! App Service shape's shared header, mode 0600).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::datadir::write_new_file;

#[derive(Serialize, Deserialize)]
struct Saved {
    server: String,
    agent_id: String,
    tenant_id: String,
    resource_id: String,
}

pub struct State {
    pub server: String,
    pub agent_id: String,
    pub tenant_id: String,
    pub resource_id: String,
    pub identity_header: String,
    dir: PathBuf,
    key: EcdsaKeyPair,
}

impl State {
    /// Loads an enrolled agent's state; `None` if the folder holds none yet.
    pub fn load(dir: &Path) -> anyhow::Result<Option<Self>> {
        let file = dir.join("agent.json");
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
        };
        let saved: Saved = serde_json::from_str(&text).with_context(|| format!("{} is corrupt", file.display()))?;
        let der = std::fs::read(dir.join("agent-key.der")).context("the agent's key file is missing")?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
            .map_err(|_| anyhow::anyhow!("the agent's key file is corrupt"))?;
        let identity_header = ensure_identity_header(dir)?;
        Ok(Some(Self {
            server: saved.server,
            agent_id: saved.agent_id,
            tenant_id: saved.tenant_id,
            resource_id: saved.resource_id,
            identity_header,
            dir: dir.to_path_buf(),
            key,
        }))
    }

    /// First start: generate a key, register it with the join token, save.
    pub async fn enroll(dir: &Path, http: &reqwest::Client, server: &str, join_token: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        let server = server.trim_end_matches('/').to_string();
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("cannot generate the agent key"))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|_| anyhow::anyhow!("cannot load the agent key"))?;
        let public = key.public_key().as_ref();
        // Uncompressed point: 0x04 || X (32 bytes) || Y (32 bytes).
        if public.len() != 65 || public[0] != 4 {
            bail!("unexpected public key encoding");
        }
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&public[1..33]), "y": URL_SAFE_NO_PAD.encode(&public[33..65]),
        });
        let response = http
            .post(format!("{server}/agent/v1/enroll"))
            .json(&serde_json::json!({"joinToken": join_token.trim(), "publicKey": jwk}))
            .send()
            .await
            .with_context(|| format!("cannot reach {server}"))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!("enrollment refused: {}", body["error_description"].as_str().unwrap_or("no reason given"));
        }
        let saved = Saved {
            server: server.clone(),
            agent_id: body["agentId"].as_str().context("no agentId")?.to_string(),
            tenant_id: body["tenantId"].as_str().context("no tenantId")?.to_string(),
            resource_id: body["resourceId"].as_str().context("no resourceId")?.to_string(),
        };
        write_new_file(&dir.join("agent-key.der"), pkcs8.as_ref(), 0o600)?;
        write_new_file(&dir.join("agent.json"), serde_json::to_string_pretty(&saved)?.as_bytes(), 0o644)?;
        let identity_header = ensure_identity_header(dir)?;
        Ok(Self {
            server,
            agent_id: saved.agent_id,
            tenant_id: saved.tenant_id,
            resource_id: saved.resource_id,
            identity_header,
            dir: dir.to_path_buf(),
            key,
        })
    }

    pub fn identity_header_file(&self) -> PathBuf {
        self.dir.join("identity-header")
    }

    /// A short-lived assertion proving this agent to the server (ES256).
    pub fn assertion(&self, now: i64) -> String {
        let header =
            URL_SAFE_NO_PAD.encode(serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": self.agent_id}).to_string());
        let claims = URL_SAFE_NO_PAD.encode(
            serde_json::json!({
                "iss": self.agent_id, "sub": self.agent_id, "aud": format!("{}/agent/v1/token", self.server),
                "iat": now, "nbf": now - 30, "exp": now + 300, "jti": uuid::Uuid::new_v4(),
            })
            .to_string(),
        );
        let input = format!("{header}.{claims}");
        let signature = self
            .key
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
            .expect("ECDSA signing with a loaded key cannot fail");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

/// The App Service header secret: created once, mode 0600.
fn ensure_identity_header(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("identity-header");
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_string()),
        Ok(_) => bail!("{} is empty", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = crate::crypto::generate_client_secret();
            write_new_file(&path, secret.as_bytes(), 0o600)?;
            Ok(secret)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}
