//! Keys of external issuers: OIDC discovery and JWKS fetched over HTTPS, cached,
//! refreshed once on an unknown `kid` (with a cooldown and one fetch in flight
//! per issuer), and kept when a refresh fails.
//!
//! **SSRF policy.** Only issuers named by a stored federated credential are ever
//! fetched (the caller checks that first). An issuer whose host is, or resolves
//! to, a loopback, private, link-local or otherwise non-public address is
//! refused — the resolver itself filters, so DNS rebinding cannot slip past —
//! unless the server operator allow-listed that exact issuer
//! (`--allow-private-issuer`). Redirects are never followed; responses and key
//! counts are bounded.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;

/// Keep at most this many signing keys per issuer (Entra keeps 100).
const MAX_KEYS: usize = 100;
const MAX_DISCOVERY_BYTES: usize = 64 * 1024;
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// A successful fetch is trusted at least this long, and at most a day,
/// whatever the issuer's Cache-Control says.
const MIN_CACHE: Duration = Duration::from_secs(300);
const MAX_CACHE: Duration = Duration::from_secs(86400);
const DEFAULT_CACHE: Duration = Duration::from_secs(3600);
/// An unknown `kid` triggers a refresh at most this often per issuer, so a
/// caller cannot make wisp hammer an issuer with made-up key ids.
const REFRESH_COOLDOWN: Duration = Duration::from_secs(60);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the issuer is not an https URL")]
    NotHttps,
    #[error("the issuer's address is not public and the issuer is not allow-listed")]
    PrivateAddress,
    #[error("the issuer could not be reached: {0}")]
    Unreachable(String),
    #[error("the issuer's metadata is invalid: {0}")]
    InvalidMetadata(String),
}

/// Server-operator settings for issuer fetches.
#[derive(Debug, Clone, Default)]
pub struct IssuerPolicy {
    /// Exact issuer strings that may live on non-public addresses.
    pub allow_private: Vec<String>,
    /// Extra PEM root certificates trusted for issuer fetches.
    pub extra_roots_pem: Vec<Vec<u8>>,
}

/// One issuer's cached keys.
#[derive(Clone)]
struct Snapshot {
    keys: Arc<Vec<Jwk>>,
    fresh_until: Instant,
}

#[derive(Default)]
struct Entry {
    snapshot: RwLock<Option<Snapshot>>,
    /// Held while fetching (one fetch in flight per issuer); holds the time of
    /// the last refresh an unknown `kid` triggered.
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

/// The cache of every external issuer's keys.
pub struct IssuerKeys {
    public_client: reqwest::Client,
    /// For allow-listed issuers: no address filter, plus the operator's roots.
    private_client: reqwest::Client,
    allow_private: Vec<String>,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
}

impl IssuerKeys {
    pub fn new(policy: &IssuerPolicy) -> anyhow::Result<Self> {
        let base = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(FETCH_TIMEOUT)
                .connect_timeout(Duration::from_secs(5))
                .user_agent(concat!("wisp/", env!("CARGO_PKG_VERSION")))
        };
        let public_client = base().dns_resolver(PublicOnlyResolver).build()?;
        let mut private = base();
        for pem in &policy.extra_roots_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)? {
                private = private.add_root_certificate(cert);
            }
        }
        Ok(Self {
            public_client,
            private_client: private.build()?,
            allow_private: policy.allow_private.clone(),
            entries: Mutex::default(),
        })
    }

    /// The issuer's keys, fetched if not cached. When `kid` is given and not
    /// among the cached keys, refreshes once (subject to the cooldown).
    pub async fn keys(&self, issuer: &str, kid: Option<&str>) -> Result<Arc<Vec<Jwk>>, FetchError> {
        let entry = self.entries.lock().expect("issuer cache lock").entry(issuer.to_string()).or_default().clone();
        let has_kid = |keys: &[Jwk]| kid.is_none_or(|kid| keys.iter().any(|k| k.common.key_id.as_deref() == Some(kid)));
        let cached = entry.snapshot.read().expect("issuer snapshot lock").clone();
        if let Some(snapshot) = &cached
            && snapshot.fresh_until > Instant::now()
            && has_kid(&snapshot.keys)
        {
            metrics::counter!("wisp_cache_requests_total", "cache" => "issuer_keys", "result" => "hit").increment(1);
            return Ok(snapshot.keys.clone());
        }
        metrics::counter!("wisp_cache_requests_total", "cache" => "issuer_keys", "result" => "miss").increment(1);
        let mut last_kid_refresh = entry.fetching.lock().await;
        // Another request may have fetched while we waited.
        let cached = entry.snapshot.read().expect("issuer snapshot lock").clone();
        if let Some(snapshot) = &cached
            && snapshot.fresh_until > Instant::now()
        {
            if has_kid(&snapshot.keys) {
                return Ok(snapshot.keys.clone());
            }
            // Fresh keys but an unknown kid: refresh at most once per cooldown.
            if last_kid_refresh.is_some_and(|at| at.elapsed() < REFRESH_COOLDOWN) {
                return Ok(snapshot.keys.clone());
            }
            *last_kid_refresh = Some(Instant::now());
        }
        match self.fetch(issuer).await {
            Ok((keys, max_age)) => {
                let snapshot = Snapshot { keys: Arc::new(keys), fresh_until: Instant::now() + max_age };
                *entry.snapshot.write().expect("issuer snapshot lock") = Some(snapshot.clone());
                Ok(snapshot.keys)
            }
            Err(e) => {
                tracing::warn!(issuer, error = %e, "issuer key fetch failed");
                metrics::counter!("wisp_issuer_fetch_failures_total").increment(1);
                // Keep serving the last good keys: an issuer's outage must not
                // become ours for tokens signed with keys we already know.
                match cached {
                    Some(snapshot) => Ok(snapshot.keys),
                    None => Err(e),
                }
            }
        }
    }

    /// The `issuer` an issuer's discovery document names (for write-time
    /// advice: a trailing slash or whitespace the issuer itself does not use).
    /// Fetched under the same policy as keys.
    pub async fn discovered_issuer(&self, issuer: &str) -> Result<Option<String>, FetchError> {
        Ok(self.discovery(issuer.trim()).await?.0.issuer)
    }

    /// Fetches `{issuer}/.well-known/openid-configuration` under the SSRF policy.
    async fn discovery(&self, issuer: &str) -> Result<(Discovery, bool, reqwest::Url), FetchError> {
        let issuer_url = reqwest::Url::parse(issuer).map_err(|_| FetchError::NotHttps)?;
        if issuer_url.scheme() != "https" {
            return Err(FetchError::NotHttps);
        }
        // The discovery URL depends only on the issuer without its trailing
        // slash, so an allow-listed issuer allows that one URL either way.
        let allowed = self.allow_private.iter().any(|a| a.trim_end_matches('/') == issuer.trim_end_matches('/'));
        let client = if allowed { &self.private_client } else { &self.public_client };
        check_literal_host(&issuer_url, allowed)?;
        let discovery_url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let (body, _) = get_bounded(client, &discovery_url, MAX_DISCOVERY_BYTES).await?;
        let discovery: Discovery = serde_json::from_slice(&body)
            .map_err(|_| FetchError::InvalidMetadata("the discovery document is not JSON".into()))?;
        Ok((discovery, allowed, issuer_url))
    }

    async fn fetch(&self, issuer: &str) -> Result<(Vec<Jwk>, Duration), FetchError> {
        let (discovery, allowed, issuer_url) = self.discovery(issuer).await?;
        if discovery.issuer.as_deref() != Some(issuer) {
            return Err(FetchError::InvalidMetadata(
                "the discovery document names a different issuer than the token".into(),
            ));
        }
        let jwks_uri = discovery.jwks_uri.ok_or_else(|| FetchError::InvalidMetadata("no jwks_uri".into()))?;
        let jwks_url =
            reqwest::Url::parse(&jwks_uri).map_err(|_| FetchError::InvalidMetadata("jwks_uri is not a URL".into()))?;
        if jwks_url.scheme() != "https" {
            return Err(FetchError::InvalidMetadata("jwks_uri is not https".into()));
        }
        // An allow-listed issuer's own host may be private; a jwks_uri elsewhere
        // is held to the public rule.
        let jwks_private_ok = allowed && jwks_url.host_str() == issuer_url.host_str();
        check_literal_host(&jwks_url, jwks_private_ok)?;
        let jwks_client = if jwks_private_ok { &self.private_client } else { &self.public_client };
        let (body, max_age) = get_bounded(jwks_client, jwks_url.as_str(), MAX_JWKS_BYTES).await?;
        #[derive(Deserialize)]
        struct RawSet {
            keys: Vec<serde_json::Value>,
        }
        let raw: RawSet = serde_json::from_slice(&body)
            .map_err(|_| FetchError::InvalidMetadata("the JWKS is not a key set".into()))?;
        let keys = usable_keys(raw.keys);
        if keys.is_empty() {
            return Err(FetchError::InvalidMetadata("the JWKS has no usable signing keys".into()));
        }
        Ok((keys, max_age))
    }
}

/// The signing keys of a JWKS wisp can use: keys of unknown or symmetric
/// types, encryption keys and anything past the first 100 are skipped.
fn usable_keys(raw: Vec<serde_json::Value>) -> Vec<Jwk> {
    raw.into_iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
        .filter(|k| {
            !matches!(k.algorithm, jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_))
                && k.common
                    .public_key_use
                    .as_ref()
                    .is_none_or(|u| matches!(u, jsonwebtoken::jwk::PublicKeyUse::Signature))
        })
        .take(MAX_KEYS)
        .collect()
}

/// Validates a key set an administrator uploads for a private issuer: a JWKS
/// of public signing keys only (a private key is refused outright, so it is
/// never stored), at most 100 keys, 256 KiB.
pub fn parse_uploaded_jwks(jwks: &serde_json::Value) -> Result<Vec<Jwk>, String> {
    if jwks.to_string().len() > MAX_JWKS_BYTES {
        return Err(format!("the JWKS is larger than {MAX_JWKS_BYTES} bytes"));
    }
    let raw = jwks["keys"].as_array().ok_or("the JWKS must be {\"keys\": [...]}")?;
    if raw.len() > MAX_KEYS {
        return Err(format!("the JWKS has more than {MAX_KEYS} keys"));
    }
    for key in raw {
        if ["d", "p", "q", "dp", "dq", "qi", "k"].iter().any(|private| key.get(private).is_some()) {
            return Err("the JWKS contains private or symmetric key material; upload public keys only".into());
        }
    }
    let keys = usable_keys(raw.clone());
    if keys.len() != raw.len() {
        return Err("every key must be a public signing key (RSA, EC P-256/P-384 or Ed25519)".into());
    }
    if keys.is_empty() {
        return Err("the JWKS has no keys".into());
    }
    Ok(keys)
}

#[derive(Deserialize)]
struct Discovery {
    issuer: Option<String>,
    jwks_uri: Option<String>,
}

/// GET with a size cap; returns the body and the response's cache lifetime.
async fn get_bounded(client: &reqwest::Client, url: &str, max: usize) -> Result<(Vec<u8>, Duration), FetchError> {
    let mut response = client.get(url).send().await.map_err(|e| {
        if is_private_refusal(&e) { FetchError::PrivateAddress } else { FetchError::Unreachable(short_error(&e)) }
    })?;
    if !response.status().is_success() {
        return Err(FetchError::Unreachable(format!("{url} answered {}", response.status())));
    }
    if response.content_length().is_some_and(|len| len as usize > max) {
        return Err(FetchError::InvalidMetadata(format!("{url} is larger than {max} bytes")));
    }
    let max_age = cache_lifetime(response.headers());
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Unreachable(short_error(&e)))? {
        body.extend_from_slice(&chunk);
        if body.len() > max {
            return Err(FetchError::InvalidMetadata(format!("{url} is larger than {max} bytes")));
        }
    }
    Ok((body, max_age))
}

/// `Cache-Control: max-age`, clamped to [5 minutes, 1 day]; an hour without one.
fn cache_lifetime(headers: &reqwest::header::HeaderMap) -> Duration {
    let max_age = headers
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').find_map(|d| d.trim().strip_prefix("max-age=")?.parse::<u64>().ok()));
    match max_age {
        Some(secs) => Duration::from_secs(secs).clamp(MIN_CACHE, MAX_CACHE),
        None => DEFAULT_CACHE,
    }
}

fn short_error(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text.chars().take(300).collect()
}

fn is_private_refusal(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        if inner.to_string().contains(PRIVATE_REFUSAL) {
            return true;
        }
        source = inner.source();
    }
    false
}

const PRIVATE_REFUSAL: &str = "resolves only to non-public addresses";

/// IP-literal hosts skip the resolver, so they are checked here.
fn check_literal_host(url: &reqwest::Url, private_ok: bool) -> Result<(), FetchError> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err(FetchError::NotHttps),
    };
    if private_ok || is_public(ip) { Ok(()) } else { Err(FetchError::PrivateAddress) }
}

/// A DNS resolver that returns only public addresses.
struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = addrs.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(PRIVATE_REFUSAL.into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Is `ip` a globally routable unicast address?
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))      // carrier-grade NAT
                || (a == 192 && b == 0 && c == 0)            // IETF protocol assignments
                || (a == 198 && (18..20).contains(&b))       // benchmarking
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00      // unique local
                || (first & 0xffc0) == 0xfe80      // link local
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)) // documentation
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_global_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["140.82.112.3", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn cache_lifetimes_are_clamped() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(cache_lifetime(&headers), DEFAULT_CACHE);
        headers.insert(reqwest::header::CACHE_CONTROL, "public, max-age=5".parse().unwrap());
        assert_eq!(cache_lifetime(&headers), MIN_CACHE);
        headers.insert(reqwest::header::CACHE_CONTROL, "max-age=99999999".parse().unwrap());
        assert_eq!(cache_lifetime(&headers), MAX_CACHE);
        headers.insert(reqwest::header::CACHE_CONTROL, "max-age=7200, private".parse().unwrap());
        assert_eq!(cache_lifetime(&headers), Duration::from_secs(7200));
    }

    #[tokio::test]
    async fn private_issuers_are_refused_unless_allow_listed() {
        let keys = IssuerKeys::new(&IssuerPolicy::default()).unwrap();
        for issuer in ["https://127.0.0.1:1", "https://[::1]:1/x", "https://localhost:1", "https://169.254.169.254"] {
            assert_eq!(keys.keys(issuer, None).await.unwrap_err(), FetchError::PrivateAddress, "{issuer}");
        }
        assert_eq!(keys.keys("http://example.com", None).await.unwrap_err(), FetchError::NotHttps);
    }
}
