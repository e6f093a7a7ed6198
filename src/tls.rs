//! TLS for the listener. Without operator certificates wisp makes its own local
//! CA (kept in the data folder) and a server certificate for the public URL's
//! host plus `localhost`, `127.0.0.1` and `::1`, so MSAL and azure-identity —
//! which refuse http authorities — work out of the box once they trust the CA.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose};
use serde::{Deserialize, Serialize};

use crate::datadir::{replace_file, write_new_file};

/// Renew the generated server certificate when it has less than this left.
const RENEW_BEFORE_SECS: i64 = 30 * 86400;
const SERVER_CERT_DAYS: i64 = 397;
const CA_DAYS: i64 = 10 * 365;

/// PEM material for the listener, and the CA file clients should trust (only
/// when wisp generated it).
pub struct TlsFiles {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub ca_file: Option<PathBuf>,
}

/// What we generated, so a restart can tell whether the server certificate still fits.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct GeneratedState {
    ca_common_name: String,
    server_names: Vec<String>,
    server_not_after: i64,
}

/// Reads operator-supplied PEM files.
pub fn load_files(cert: &Path, key: &Path) -> anyhow::Result<TlsFiles> {
    let cert_pem = fs::read(cert).with_context(|| format!("cannot read TLS certificate {}", cert.display()))?;
    let key_pem = fs::read(key).with_context(|| format!("cannot read TLS key {}", key.display()))?;
    Ok(TlsFiles { cert_pem, key_pem, ca_file: None })
}

/// Loads or creates the local CA in `dir` and a server certificate for
/// `public_host`, renewing the server certificate when names changed or it is
/// about to expire. The CA itself is never replaced.
pub fn ensure_generated(dir: &Path, public_host: &str, now: i64) -> anyhow::Result<TlsFiles> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ca_cert_path = dir.join("ca.pem");
    let ca_key_path = dir.join("ca-key.pem");
    let state_path = dir.join("state.json");
    let server_cert_path = dir.join("server.pem");
    let server_key_path = dir.join("server-key.pem");

    let mut names = vec![public_host.to_string(), "localhost".into(), "127.0.0.1".into(), "::1".into()];
    names.dedup();
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));

    let state: Option<GeneratedState> = match fs::read_to_string(&state_path) {
        Ok(text) => Some(serde_json::from_str(&text).with_context(|| format!("{} is corrupt", state_path.display()))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", state_path.display())),
    };

    let (ca_common_name, ca_key) = match (ca_cert_path.exists(), ca_key_path.exists(), &state) {
        (true, true, Some(state)) => {
            let pem =
                fs::read_to_string(&ca_key_path).with_context(|| format!("cannot read {}", ca_key_path.display()))?;
            let key =
                KeyPair::from_pem(&pem).map_err(|e| anyhow::anyhow!("{} is corrupt: {e}", ca_key_path.display()))?;
            (state.ca_common_name.clone(), key)
        }
        (false, false, _) => {
            let common_name = format!("wisp local CA {}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
            let key = KeyPair::generate().context("cannot generate the CA key")?;
            let mut params = ca_params(&common_name)?;
            params.not_before = at(now - 86400)?;
            params.not_after = at(now + CA_DAYS * 86400)?;
            let cert = params.self_signed(&key).context("cannot create the CA certificate")?;
            write_new_file(&ca_key_path, key.serialize_pem().as_bytes(), 0o600)?;
            write_new_file(&ca_cert_path, cert.pem().as_bytes(), 0o644)?;
            (common_name, key)
        }
        _ => bail!(
            "the TLS folder {} is incomplete (ca.pem, ca-key.pem and state.json belong together); \
             restore it, or pass --tls-cert/--tls-key",
            dir.display()
        ),
    };

    let fits = state.as_ref().is_some_and(|s| {
        s.ca_common_name == ca_common_name && s.server_names == names && s.server_not_after - now > RENEW_BEFORE_SECS
    }) && server_cert_path.exists()
        && server_key_path.exists();
    if !fits {
        let issuer = rcgen::Issuer::new(ca_params(&ca_common_name)?, &ca_key);
        let server_key = KeyPair::generate().context("cannot generate the server key")?;
        let mut params = CertificateParams::new(names.clone()).context("invalid server certificate name")?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, public_host);
        params.not_before = at(now - 86400)?;
        let not_after = now + SERVER_CERT_DAYS * 86400;
        params.not_after = at(not_after)?;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&crate::crypto::random_bytes::<16>()));
        let cert = params.signed_by(&server_key, &issuer).context("cannot create the server certificate")?;
        replace_file(&server_key_path, server_key.serialize_pem().as_bytes(), 0o600)?;
        replace_file(&server_cert_path, cert.pem().as_bytes(), 0o644)?;
        let new_state = GeneratedState { ca_common_name, server_names: names, server_not_after: not_after };
        replace_file(&state_path, serde_json::to_string_pretty(&new_state)?.as_bytes(), 0o644)?;
    }
    Ok(TlsFiles {
        cert_pem: fs::read(&server_cert_path).with_context(|| format!("cannot read {}", server_cert_path.display()))?,
        key_pem: fs::read(&server_key_path).with_context(|| format!("cannot read {}", server_key_path.display()))?,
        ca_file: Some(ca_cert_path),
    })
}

/// The CA's parameters, rebuilt identically on every start so it can sign
/// without parsing its own certificate back.
fn ca_params(common_name: &str) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

fn at(unix: i64) -> anyhow::Result<time::OffsetDateTime> {
    Ok(time::OffsetDateTime::from_unix_timestamp(unix)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_kept_and_the_server_certificate_follows_the_host() {
        let tmp = tempfile::tempdir().unwrap();
        let now = crate::clock::now();
        let first = ensure_generated(tmp.path(), "localhost", now).unwrap();
        let ca = fs::read(tmp.path().join("ca.pem")).unwrap();
        let again = ensure_generated(tmp.path(), "localhost", now).unwrap();
        assert_eq!(first.cert_pem, again.cert_pem, "unchanged names keep the certificate");
        let other = ensure_generated(tmp.path(), "sts.example.test", now).unwrap();
        assert_ne!(first.cert_pem, other.cert_pem, "a new host gets a new certificate");
        assert_eq!(fs::read(tmp.path().join("ca.pem")).unwrap(), ca, "the CA never changes");
        let renewed = ensure_generated(tmp.path(), "sts.example.test", now + 380 * 86400).unwrap();
        assert_ne!(other.cert_pem, renewed.cert_pem, "an expiring certificate is renewed");
    }

    #[test]
    fn an_incomplete_tls_folder_is_refused_not_repaired() {
        let tmp = tempfile::tempdir().unwrap();
        ensure_generated(tmp.path(), "localhost", crate::clock::now()).unwrap();
        fs::remove_file(tmp.path().join("ca-key.pem")).unwrap();
        let err = ensure_generated(tmp.path(), "localhost", crate::clock::now()).err().unwrap();
        assert!(err.to_string().contains("incomplete"), "{err}");
        assert!(tmp.path().join("ca.pem").exists());
    }
}
