//! An external OIDC issuer for tests: HTTPS on loopback with its own CA,
//! discovery and JWKS, keys it can rotate, and a count of JWKS fetches.
//! GitHub-shaped (no path, no trailing slash) or Kubernetes-shaped (a path
//! ending in '/').

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair;
use axum::Router;
use axum::routing::get;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A signing key of the fake issuer.
#[derive(Clone)]
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
}

impl TestKey {
    pub fn rsa(kid: &str) -> Self {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der = pair.as_der().unwrap();
        let encoding = EncodingKey::from_rsa_pem(pkcs8_pem(der.as_ref()).as_bytes()).unwrap();
        Self::new(kid, Algorithm::RS256, encoding)
    }

    pub fn ec(kid: &str) -> Self {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .unwrap();
        Self::new(kid, Algorithm::ES256, EncodingKey::from_ec_der(pkcs8.as_ref()))
    }

    pub fn ed25519(kid: &str) -> Self {
        let pkcs8 =
            aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA"});
        Self { kid: kid.into(), alg: Algorithm::EdDSA, encoding: EncodingKey::from_ed_der(pkcs8.as_ref()), jwk }
    }

    fn new(kid: &str, alg: Algorithm, encoding: EncodingKey) -> Self {
        let mut jwk = serde_json::to_value(jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, alg).unwrap()).unwrap();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        Self { kid: kid.into(), alg, encoding, jwk }
    }

    /// A JWT with these claims, signed by this key.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// PKCS#8 DER as PEM (what jsonwebtoken's RSA loader takes).
pub fn pkcs8_pem(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"))
}

pub struct FakeIssuer {
    pub issuer: String,
    pub ca_file: tempfile::NamedTempFile,
    keys: Arc<RwLock<Vec<TestKey>>>,
    fetches: Arc<AtomicUsize>,
    handle: axum_server::Handle<SocketAddr>,
}

impl FakeIssuer {
    /// Starts an issuer at `https://127.0.0.1:PORT{path}` with one RSA key `k1`.
    pub async fn start(path: &str) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "fake issuer CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer_ca = rcgen::Issuer::new(ca_params, &ca_key);
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&server_key, &issuer_ca)
            .unwrap();
        let ca_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(ca_file.path(), ca_cert.pem()).unwrap();

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let issuer = format!("https://127.0.0.1:{port}{path}");
        let keys = Arc::new(RwLock::new(vec![TestKey::rsa("k1")]));
        let fetches = Arc::new(AtomicUsize::new(0));
        let base = path.trim_end_matches('/').to_string();
        let discovery = json!({"issuer": issuer, "jwks_uri": format!("https://127.0.0.1:{port}{base}/keys")});
        let (served_keys, counter) = (keys.clone(), fetches.clone());
        let router = Router::new()
            .route(
                &format!("{base}/.well-known/openid-configuration"),
                get(move || async move { axum::Json(discovery) }),
            )
            .route(
                &format!("{base}/keys"),
                get(move || async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let keys: Vec<Value> = served_keys.read().unwrap().iter().map(|k| k.jwk.clone()).collect();
                    ([("cache-control", "max-age=3600")], axum::Json(json!({ "keys": keys })))
                }),
            );
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
            server_cert.pem().into_bytes(),
            server_key.serialize_pem().into_bytes(),
        )
        .await
        .unwrap();
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(listener, tls).unwrap().handle(handle.clone());
        tokio::spawn(server.serve(router.into_make_service()));
        Self { issuer, ca_file, keys, fetches, handle }
    }

    /// The current first key.
    pub fn key(&self) -> TestKey {
        self.keys.read().unwrap()[0].clone()
    }

    /// Every published key.
    pub fn keys(&self) -> Vec<TestKey> {
        self.keys.read().unwrap().clone()
    }

    /// Signs `claims` (with `iss` filled in) with the first key.
    pub fn mint(&self, mut claims: Value) -> String {
        claims["iss"] = json!(self.issuer);
        self.key().sign(&claims)
    }

    /// Signs with a specific key, published or not.
    pub fn mint_with(&self, key: &TestKey, mut claims: Value) -> String {
        claims["iss"] = json!(self.issuer);
        key.sign(&claims)
    }

    /// Replaces the published key set.
    pub fn publish(&self, keys: Vec<TestKey>) {
        *self.keys.write().unwrap() = keys;
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    pub fn stop(&self) {
        self.handle.shutdown();
    }
}

/// Claims of a GitHub Actions token for `subject`, valid now.
pub fn github_claims(subject: &str) -> Value {
    let now = wisp::clock::now();
    json!({
        "sub": subject, "aud": "api://AzureADTokenExchange", "jti": uuid::Uuid::new_v4().to_string(),
        "repository": "acme/app", "ref": "refs/heads/main", "ref_type": "branch",
        "job_workflow_ref": "acme/workflows/.github/workflows/deploy.yml@refs/heads/main",
        "iat": now, "nbf": now - 5, "exp": now + 300,
    })
}

/// Claims of a Kubernetes projected service-account token.
pub fn kubernetes_claims(namespace: &str, service_account: &str) -> Value {
    let now = wisp::clock::now();
    json!({
        "sub": format!("system:serviceaccount:{namespace}:{service_account}"),
        "aud": ["api://AzureADTokenExchange"],
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": service_account}},
        "iat": now, "nbf": now, "exp": now + 3600,
    })
}
