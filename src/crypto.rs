//! Key material that never leaves the process: the master key, sealing of
//! private keys at rest, random identifiers and secrets, and client-secret hashing.
//!
//! Everything here uses aws-lc-rs, the one crypto provider of the whole binary.

use aws_lc_rs::{aead, digest, hkdf, hmac, rand};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// Length of the master key in bytes (AES-256).
pub const MASTER_KEY_LEN: usize = 32;

/// Prefix byte of every sealed blob, so the format can change later without guessing.
const SEALED_FORMAT_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the master key must be {MASTER_KEY_LEN} bytes encoded as base64 (e.g. `openssl rand -base64 32`)")]
    BadMasterKey,
    #[error("sealed data could not be opened: wrong master key or corrupted data")]
    Unseal,
}

/// The master key: the root of everything wisp keeps encrypted at rest.
///
/// It is never stored in the database. Sub-keys are derived with HKDF so that the
/// sealing key and the secret-hashing key are independent of each other.
pub struct MasterKey {
    seal: aead::LessSafeKey,
    secret_mac: hmac::Key,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(redacted)")
    }
}

impl MasterKey {
    /// Generates fresh key bytes, returned base64-encoded for storing in a key file.
    pub fn generate_base64() -> String {
        STANDARD.encode(random_bytes::<MASTER_KEY_LEN>())
    }

    /// Parses the base64 text of a key file or of `WISP_MASTER_KEY`.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| CryptoError::BadMasterKey)?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != MASTER_KEY_LEN {
            return Err(CryptoError::BadMasterKey);
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"wisp master key v1").extract(bytes);
        let seal_okm =
            prk.expand(&[b"seal private keys"], &aead::AES_256_GCM).map_err(|_| CryptoError::BadMasterKey)?;
        let mac_okm =
            prk.expand(&[b"hash client secrets"], hmac::HMAC_SHA256).map_err(|_| CryptoError::BadMasterKey)?;
        Ok(Self {
            seal: aead::LessSafeKey::new(aead::UnboundKey::from(seal_okm)),
            secret_mac: hmac::Key::from(mac_okm),
        })
    }

    /// Encrypts and authenticates `plaintext`, bound to `context` (e.g. the key id),
    /// so a sealed blob cannot be moved to another row and still open.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes = random_bytes::<{ aead::NONCE_LEN }>();
        let mut in_out = plaintext.to_vec();
        self.seal
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce_bytes),
                aead::Aad::from(context),
                &mut in_out,
            )
            .expect("AES-GCM sealing of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + nonce_bytes.len() + in_out.len());
        out.push(SEALED_FORMAT_V1);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&in_out);
        out
    }

    /// Opens a blob made by [`MasterKey::seal`] with the same `context`.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let rest = match sealed.split_first() {
            Some((&SEALED_FORMAT_V1, rest)) if rest.len() >= aead::NONCE_LEN => rest,
            _ => return Err(CryptoError::Unseal),
        };
        let (nonce, ciphertext) = rest.split_at(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Unseal)?;
        let mut in_out = ciphertext.to_vec();
        let plain =
            self.seal.open_in_place(nonce, aead::Aad::from(context), &mut in_out).map_err(|_| CryptoError::Unseal)?;
        Ok(plain.to_vec())
    }

    /// One-way hash of a client secret.
    ///
    /// wisp generates every client secret itself with 256 bits of entropy, so a
    /// brute-force search is hopeless and a slow password hash (argon2) would only
    /// make the token endpoint slow. A keyed HMAC-SHA256 is enough and, because the
    /// key derives from the master key, a stolen database alone does not even allow
    /// testing a guess offline.
    pub fn hash_secret(&self, secret: &str) -> Vec<u8> {
        hmac::sign(&self.secret_mac, secret.as_bytes()).as_ref().to_vec()
    }

    /// Checks a presented secret against a stored hash, in constant time.
    pub fn verify_secret(&self, secret: &str, stored_hash: &[u8]) -> bool {
        hmac::verify(&self.secret_mac, secret.as_bytes(), stored_hash).is_ok()
    }
}

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    rand::fill(&mut buf).expect("the system random number generator failed");
    buf
}

/// A new client secret: 32 random bytes (256 bits), base64url without padding.
pub fn generate_client_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// base64url (no padding) SHA-1 of a DER certificate: the `x5t` of JOSE and the
/// thumbprint Entra uses as `kid`.
pub fn x5t_sha1(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der))
}

/// base64url (no padding) SHA-256 of a DER certificate: JOSE's `x5t#S256`.
pub fn x5t_sha256(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, der))
}

/// An X.509 certificate given as PEM or as base64 DER (Graph's `key`), checked
/// to parse as a certificate. Returns its DER.
pub fn parse_certificate(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let der = if text.starts_with("-----BEGIN") {
        let body: String = text
            .lines()
            .map(str::trim)
            .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        if body.is_empty() {
            return Err("The key is PEM but holds no CERTIFICATE block.".into());
        }
        STANDARD.decode(body).map_err(|_| "The certificate's PEM body is not valid base64.".to_string())?
    } else {
        STANDARD.decode(text).map_err(|_| "The key must be a PEM certificate or base64-encoded DER.".to_string())?
    };
    let cert = rustls_pki_types::CertificateDer::from(der.as_slice());
    webpki::EndEntityCert::try_from(&cert).map_err(|e| format!("The key is not a valid X.509 certificate: {e:?}."))?;
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_base64(&MasterKey::generate_base64()).unwrap()
    }

    #[test]
    fn sealed_data_opens_only_with_the_same_key_and_context() {
        let k = key();
        let sealed = k.seal(b"kid-1", b"private key bytes");
        assert_eq!(k.open(b"kid-1", &sealed).unwrap(), b"private key bytes");
        assert!(k.open(b"kid-2", &sealed).is_err(), "context is bound");
        assert!(key().open(b"kid-1", &sealed).is_err(), "another key fails");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(k.open(b"kid-1", &tampered).is_err(), "tampering is detected");
        assert!(k.open(b"kid-1", &[]).is_err());
        assert!(k.open(b"kid-1", &[9, 9, 9]).is_err());
    }

    #[test]
    fn master_key_text_must_be_32_bytes_of_base64() {
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(MasterKey::from_base64(&STANDARD.encode([0u8; 16])).is_err());
        assert!(MasterKey::from_base64(&format!("  {}\n", STANDARD.encode([7u8; 32]))).is_ok());
    }

    #[test]
    fn secret_hash_verifies_only_the_same_secret_under_the_same_key() {
        let k = key();
        let secret = generate_client_secret();
        assert_eq!(secret.len(), 43);
        let hash = k.hash_secret(&secret);
        assert!(k.verify_secret(&secret, &hash));
        assert!(!k.verify_secret(&format!("{secret}x"), &hash));
        assert!(!key().verify_secret(&secret, &hash));
    }
}
