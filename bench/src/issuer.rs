//! An external OIDC issuer in the bench process (GitHub-shaped: HTTPS, its own
//! CA, discovery and JWKS), and the RS256 assertions it pre-mints.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub const AUDIENCE: &str = "api://AzureADTokenExchange";

pub struct Issuer {
    pub issuer: String,
    pub ca_file: PathBuf,
    key: KeyPair,
    handle: axum_server::Handle<SocketAddr>,
}

impl Issuer {
    /// Starts `https://127.0.0.1:PORT` with one RSA-2048 key; its CA goes to `dir`.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let ca_key = rcgen::KeyPair::generate()?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "wisp-bench issuer CA");
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca = rcgen::Issuer::new(ca_params, &ca_key);
        let server_key = rcgen::KeyPair::generate()?;
        let server_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])?.signed_by(&server_key, &ca)?;
        let ca_file = dir.join("issuer-ca.pem");
        std::fs::write(&ca_file, ca_cert.pem())?;

        let key = KeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
        let public = key.public_key();
        let jwk = json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": "bench-1",
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        });

        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let issuer = format!("https://127.0.0.1:{port}");
        let discovery = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/keys")});
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(move || async move { axum::Json(discovery) }))
            .route("/keys", get(move || async move { axum::Json(json!({ "keys": [jwk] })) }));
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
            server_cert.pem().into_bytes(),
            server_key.serialize_pem().into_bytes(),
        )
        .await
        .context("issuer TLS")?;
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(listener, tls)?.handle(handle.clone());
        tokio::spawn(server.serve(router.into_make_service()));
        Ok(Self { issuer, ca_file, key, handle })
    }

    /// `count` distinct GitHub-shaped assertions for `subject` (unique `jti`),
    /// valid for an hour, signed on every core.
    pub fn mint(&self, subject: &str, count: usize) -> Vec<String> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let per_thread = count.div_ceil(threads);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || {
                        (t * per_thread..((t + 1) * per_thread).min(count))
                            .map(|i| {
                                self.sign(&json!({
                                    "iss": self.issuer, "sub": subject, "aud": AUDIENCE,
                                    "iat": now, "nbf": now - 5, "exp": now + 3600,
                                    "jti": format!("bench-{i}-{}", uuid::Uuid::new_v4().simple()),
                                    "repository": "acme/app", "ref": "refs/heads/main", "event_name": "push",
                                }))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().expect("minting thread")).collect()
        })
    }

    fn sign(&self, claims: &Value) -> String {
        sign_rs256(&self.key, "bench-1", claims)
    }

    pub fn stop(&self) {
        self.handle.shutdown();
    }
}

/// A compact RS256 JWS with `kid` (and optional extra header members).
pub fn sign_rs256(key: &KeyPair, kid: &str, claims: &Value) -> String {
    sign_rs256_with_header(key, json!({"alg": "RS256", "typ": "JWT", "kid": kid}), claims)
}

pub fn sign_rs256_with_header(key: &KeyPair, header: Value, claims: &Value) -> String {
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut signature = vec![0u8; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut signature).expect("RSA signing");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// An RSA key and a self-signed certificate for it (certificate-credential scenario).
pub fn certificate_key() -> anyhow::Result<(KeyPair, Vec<u8>)> {
    let key = KeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
    let pkcs8 = key.as_der().map_err(|_| anyhow::anyhow!("RSA key encoding"))?;
    let rc_key = rcgen::KeyPair::try_from(pkcs8.as_ref())?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "wisp-bench client");
    let cert = params.self_signed(&rc_key)?;
    Ok((key, cert.der().to_vec()))
}
