//! The load generator: N keep-alive HTTP/1.1 connections (TLS or plain), each
//! sending pre-built requests back to back (closed loop) or on a fixed schedule
//! (open loop, `rate`), recording every latency. Open-loop latency is measured
//! from the *scheduled* send time, so a stalled server cannot hide its queue
//! (no coordinated omission).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Barrier;

/// Where to send, and how.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    pub tls: Option<tokio_rustls::TlsConnector>,
}

/// One kind of request: a method, a path, headers, and the bodies to cycle through.
#[derive(Clone)]
pub struct RequestSpec {
    pub method: hyper::Method,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    /// Distinct bodies (e.g. one pre-minted assertion each); reused round-robin
    /// once exhausted, and the reuse is reported.
    pub bodies: Arc<Vec<Bytes>>,
}

/// Checks a successful response body; called for every `sample_every`-th one.
pub type Verifier = Arc<dyn Fn(&[u8]) -> anyhow::Result<()> + Send + Sync>;

pub struct LoadSpec {
    pub connections: usize,
    pub duration: Duration,
    /// Requests per second over all connections; `None`: as fast as answered.
    pub rate: Option<f64>,
    pub verify: Option<Verifier>,
    pub sample_every: usize,
}

#[derive(Debug, Default)]
pub struct LoadResult {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub verified: u64,
    pub bodies_reused: u64,
    /// Microseconds, sorted.
    pub latencies: Vec<u32>,
    pub elapsed: Duration,
}

impl LoadResult {
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        self.latencies[index] as f64 / 1000.0
    }
}

/// Runs the load; `on_start` is called once every connection is open, right
/// before the first request (that is where the caller samples server CPU), and
/// `on_end` right after the last answer.
pub async fn run<S, E>(
    target: &Target,
    request: &RequestSpec,
    spec: &LoadSpec,
    on_start: S,
    on_end: E,
) -> anyhow::Result<LoadResult>
where
    S: FnOnce(),
    E: FnOnce(),
{
    let barrier = Arc::new(Barrier::new(spec.connections + 1));
    let next_body = Arc::new(AtomicUsize::new(0));
    let start_at = Arc::new(std::sync::OnceLock::<Instant>::new());
    let mut tasks = Vec::with_capacity(spec.connections);
    for index in 0..spec.connections {
        let (target, request, barrier, next_body, start_at) =
            (target.clone(), request.clone(), barrier.clone(), next_body.clone(), start_at.clone());
        let verify = spec.verify.clone();
        let (sample_every, duration) = (spec.sample_every.max(1), spec.duration);
        // Open loop: each connection sends every `interval`, staggered.
        let interval = spec.rate.map(|rate| Duration::from_secs_f64(spec.connections as f64 / rate));
        let offset = interval.map(|i| i.mul_f64(index as f64 / spec.connections as f64));
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(target.addr).await.context("connect")?;
            stream.set_nodelay(true)?;
            let worker = Worker { request, next_body, verify, sample_every, interval, offset, duration };
            match &target.tls {
                Some(tls) => {
                    let name =
                        rustls_pki_types::ServerName::try_from(target.host.split(':').next().unwrap().to_string())?;
                    let stream = tls.connect(name, stream).await.context("TLS handshake")?;
                    worker.run(stream, &target.host, barrier, start_at).await
                }
                None => worker.run(stream, &target.host, barrier, start_at).await,
            }
        }));
    }
    barrier.wait().await;
    on_start();
    let started = Instant::now();
    let _ = start_at.set(started);
    barrier.wait().await;
    let mut total = LoadResult::default();
    for task in tasks {
        let part = task.await.context("load task panicked")??;
        total.ok += part.ok;
        total.errors += part.errors;
        total.verified += part.verified;
        total.first_error = total.first_error.or(part.first_error);
        total.latencies.extend(part.latencies);
    }
    total.elapsed = started.elapsed();
    on_end();
    let used = next_body.load(Ordering::Relaxed);
    total.bodies_reused = used.saturating_sub(request.bodies.len()) as u64;
    total.latencies.sort_unstable();
    Ok(total)
}

struct Worker {
    request: RequestSpec,
    next_body: Arc<AtomicUsize>,
    verify: Option<Verifier>,
    sample_every: usize,
    interval: Option<Duration>,
    offset: Option<Duration>,
    duration: Duration,
}

impl Worker {
    async fn run<S>(
        self,
        stream: S,
        host: &str,
        barrier: Arc<Barrier>,
        start_at: Arc<std::sync::OnceLock<Instant>>,
    ) -> anyhow::Result<LoadResult>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        barrier.wait().await; // every connection is open
        barrier.wait().await; // the clock has started
        let started = *start_at.get().expect("start time set before the second barrier");
        let deadline = started + self.duration;
        let mut result = LoadResult::default();
        let mut scheduled = started + self.offset.unwrap_or_default();
        loop {
            if self.interval.is_some() {
                if scheduled >= deadline {
                    break;
                }
                tokio::time::sleep_until(scheduled.into()).await;
            } else if Instant::now() >= deadline {
                break;
            }
            let n = self.next_body.fetch_add(1, Ordering::Relaxed);
            let body = self.request.bodies[n % self.request.bodies.len()].clone();
            let mut builder = Request::builder().method(self.request.method.clone()).uri(&self.request.path);
            builder = builder.header("host", host);
            for (name, value) in &self.request.headers {
                builder = builder.header(*name, value);
            }
            let request = builder.body(Full::new(body))?;
            let sent = if self.interval.is_some() { scheduled } else { Instant::now() };
            sender.ready().await.context("connection closed")?;
            let response = sender.send_request(request).await.context("request failed")?;
            let status = response.status();
            let body = response.into_body().collect().await.context("response body")?.to_bytes();
            result.latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
            if status.is_success() {
                result.ok += 1;
                if let Some(verify) = &self.verify
                    && n.is_multiple_of(self.sample_every)
                {
                    match verify(&body) {
                        Ok(()) => result.verified += 1,
                        Err(e) => {
                            result.errors += 1;
                            result.first_error.get_or_insert_with(|| format!("verification failed: {e:#}"));
                        }
                    }
                }
            } else {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| {
                    format!("{status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]))
                });
            }
            if let Some(interval) = self.interval {
                scheduled += interval;
            }
        }
        Ok(result)
    }
}

/// A TLS client trusting only `ca_pem`.
pub fn tls_connector(ca_pem: &[u8]) -> anyhow::Result<tokio_rustls::TlsConnector> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
