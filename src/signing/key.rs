//! One token-signing key: a key pair parsed **once** into aws-lc-rs's in-memory
//! form (RSA-2048, ECDSA P-256 or Ed25519), its self-signed certificate
//! (published as `x5c`, thumbprint as `kid`/`x5t`), and a compact-JWS signer.
//!
//! Re-parsing the private key per signature (what general JWT crates do) costs
//! 2.5× the signature itself; the hot path here is one signing operation.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;

use crate::crypto::x5t_sha1;

/// The JWS algorithms wisp signs its own tokens with. RS256 is the default
/// (Entra signs with it, and every client verifies it); ES256 and EdDSA sign
/// 15–20× cheaper, for tenants whose resource servers accept them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Rs256,
    Es256,
    EdDsa,
}

impl Algorithm {
    pub const ALL: [Algorithm; 3] = [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa];

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// The JWS name, exactly (`RS256`, `ES256`, `EdDSA`).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("private key rejected: {0}")]
    BadPrivateKey(String),
    #[error("certificate creation failed: {0}")]
    Certificate(String),
    #[error("unsupported signing algorithm {0:?}")]
    Algorithm(String),
}

/// The parsed private key, by algorithm.
enum KeyMaterial {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A parsed signing key, ready to sign. Its `Debug` never shows key material.
pub struct SigningKey {
    kid: String,
    algorithm: Algorithm,
    material: KeyMaterial,
    certificate_der: Vec<u8>,
    /// base64url of `{"typ":"JWT","alg":…,"kid":…}` — v2 tokens.
    header: String,
    /// The same with `x5t` — v1 tokens carry both, as Entra's do.
    header_with_x5t: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

/// A freshly generated key and its PKCS#8 encoding, which the caller seals
/// before storing and then drops.
pub struct GeneratedKey {
    pub key: SigningKey,
    pub pkcs8_der: Vec<u8>,
}

impl SigningKey {
    /// Generates a key for `algorithm` and a self-signed certificate naming `subject`.
    pub fn generate(algorithm: Algorithm, subject: &str, now: i64) -> Result<GeneratedKey, KeyError> {
        let pkcs8_der = match algorithm {
            Algorithm::Rs256 => {
                let key_pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
                key_pair.as_der().map_err(|_| KeyError::Generate)?.as_ref().to_vec()
            }
            Algorithm::Es256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| KeyError::Generate)?
                .as_ref()
                .to_vec(),
            Algorithm::EdDsa => {
                Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Generate)?.as_ref().to_vec()
            }
        };
        let certificate_der = self_signed_certificate(&pkcs8_der, subject, now)?;
        let key = Self::from_pkcs8(algorithm.as_str(), &pkcs8_der, certificate_der)?;
        Ok(GeneratedKey { key, pkcs8_der })
    }

    /// Rebuilds a stored key from its (unsealed) PKCS#8 bytes and certificate.
    pub fn from_pkcs8(algorithm: &str, pkcs8_der: &[u8], certificate_der: Vec<u8>) -> Result<Self, KeyError> {
        let algorithm = Algorithm::parse(algorithm).ok_or_else(|| KeyError::Algorithm(algorithm.to_string()))?;
        let bad = |e: aws_lc_rs::error::KeyRejected| KeyError::BadPrivateKey(e.to_string());
        let material = match algorithm {
            Algorithm::Rs256 => KeyMaterial::Rsa(RsaKeyPair::from_pkcs8(pkcs8_der).map_err(bad)?),
            Algorithm::Es256 => {
                KeyMaterial::Ecdsa(EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8_der).map_err(bad)?)
            }
            Algorithm::EdDsa => KeyMaterial::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8_der).map_err(bad)?),
        };
        let kid = x5t_sha1(&certificate_der);
        let header = encode_json(&JwsHeader { typ: "JWT", alg: algorithm.as_str(), kid: &kid, x5t: None });
        let header_with_x5t =
            encode_json(&JwsHeader { typ: "JWT", alg: algorithm.as_str(), kid: &kid, x5t: Some(&kid) });
        Ok(Self { kid, algorithm, material, certificate_der, header, header_with_x5t })
    }

    /// The key id: base64url SHA-1 thumbprint of the certificate, as Entra's.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The public key as a JWK. RSA keys in Entra's shape (`kty, use, kid, x5t,
    /// n, e, x5c, issuer`); EC and OKP keys the same with their own members and
    /// an explicit `alg`.
    pub fn jwk(&self, issuer: &str) -> serde_json::Value {
        let mut jwk = serde_json::json!({
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "x5c": [STANDARD.encode(&self.certificate_der)],
            "issuer": issuer,
        });
        let members = match &self.material {
            KeyMaterial::Rsa(key) => {
                let public = key.public_key();
                serde_json::json!({
                    "kty": "RSA",
                    "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                    "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
                })
            }
            KeyMaterial::Ecdsa(key) => {
                // Uncompressed point: 0x04 || x || y.
                let point = key.public_key().as_ref();
                serde_json::json!({
                    "kty": "EC", "crv": "P-256", "alg": "ES256",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
                })
            }
            KeyMaterial::Ed25519(key) => serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA",
                "x": URL_SAFE_NO_PAD.encode(key.public_key().as_ref()),
            }),
        };
        if let (Some(jwk), serde_json::Value::Object(members)) = (jwk.as_object_mut(), members) {
            jwk.extend(members);
        }
        jwk
    }

    /// Checks a signature made by this key, with this key's algorithm (for
    /// wisp's own tokens coming back: admin API bearer tokens, managed identity
    /// assertions).
    pub fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        let result = match &self.material {
            KeyMaterial::Rsa(key) => UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key().as_ref())
                .verify(signing_input, signature),
            KeyMaterial::Ecdsa(key) => UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.public_key().as_ref())
                .verify(signing_input, signature),
            KeyMaterial::Ed25519(key) => {
                UnparsedPublicKey::new(&ED25519, key.public_key().as_ref()).verify(signing_input, signature)
            }
        };
        result.is_ok()
    }

    /// Signs `claims` as a compact JWS (`header.payload.signature`). `with_x5t`
    /// adds the `x5t` header member that v1 tokens carry.
    pub fn sign_jwt<C: Serialize + ?Sized>(&self, claims: &C, with_x5t: bool) -> String {
        let payload = serde_json::to_vec(claims).expect("claims serialize to JSON");
        let header = if with_x5t { &self.header_with_x5t } else { &self.header };
        let mut jws = String::with_capacity(header.len() + payload.len() * 4 / 3 + 360);
        jws.push_str(header);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut jws);
        let rng = SystemRandom::new();
        let signature: Vec<u8> = match &self.material {
            KeyMaterial::Rsa(key) => {
                let mut signature = vec![0u8; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &rng, jws.as_bytes(), &mut signature)
                    .expect("RSA signing with a validated key cannot fail");
                signature
            }
            // FIXED: the JWS form (r || s), not ASN.1.
            KeyMaterial::Ecdsa(key) => key
                .sign(&rng, jws.as_bytes())
                .expect("ECDSA signing with a validated key cannot fail")
                .as_ref()
                .to_vec(),
            KeyMaterial::Ed25519(key) => key.sign(jws.as_bytes()).as_ref().to_vec(),
        };
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jws);
        jws
    }
}

#[derive(Serialize)]
struct JwsHeader<'a> {
    typ: &'static str,
    alg: &'static str,
    kid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5t: Option<&'a str>,
}

fn encode_json<T: Serialize>(value: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("header serializes"))
}

/// A self-signed certificate for the key: nobody chains to it, but Entra publishes
/// one per key (`x5c`) and some clients read its thumbprint.
fn self_signed_certificate(pkcs8_der: &[u8], subject: &str, now: i64) -> Result<Vec<u8>, KeyError> {
    let cert_err = |e: rcgen::Error| KeyError::Certificate(e.to_string());
    let key_pair = rcgen::KeyPair::try_from(pkcs8_der).map_err(cert_err)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, subject);
    let now = time::OffsetDateTime::from_unix_timestamp(now).map_err(|e| KeyError::Certificate(e.to_string()))?;
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(5 * 365);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&crate::crypto::random_bytes::<16>()));
    let cert = params.self_signed(&key_pair).map_err(cert_err)?;
    Ok(cert.der().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_tokens_verify_with_the_published_jwk() {
        let now = 1_800_000_000;
        let GeneratedKey { key, pkcs8_der } = SigningKey::generate(Algorithm::Rs256, "wisp test", now).unwrap();
        let jwk_json = key.jwk("https://issuer.test/t/v2.0");
        assert_eq!(jwk_json["kid"], jwk_json["x5t"]);
        assert_eq!(jwk_json["e"], "AQAB");

        let claims = serde_json::json!({"aud": "api://x", "exp": now + 3600, "sub": "s"});
        let token = key.sign_jwt(&claims, false);
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk_json.clone()).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&["api://x"]);
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
        assert_eq!(data.claims, claims);
        assert_eq!(data.header.kid.as_deref(), Some(key.kid()));
        assert_eq!(data.header.x5t, None);

        let (input, signature) = token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        assert!(key.verify(input.as_bytes(), &signature));
        assert!(!key.verify(b"other input", &signature));

        let v1 = key.sign_jwt(&claims, true);
        let header = jsonwebtoken::decode_header(&v1).unwrap();
        assert_eq!(header.x5t.as_deref(), Some(key.kid()));

        // The stored form rebuilds the same key.
        let again = SigningKey::from_pkcs8("RS256", &pkcs8_der, key.certificate_der().to_vec()).unwrap();
        assert_eq!(again.kid(), key.kid());
        assert_eq!(again.jwk("https://issuer.test/t/v2.0"), jwk_json);
    }

    #[test]
    fn a_tampered_token_does_not_verify() {
        let key = SigningKey::generate(Algorithm::Rs256, "wisp test", 1_800_000_000).unwrap().key;
        let token = key.sign_jwt(&serde_json::json!({"sub": "a"}), false);
        let forged = token.replacen(token.split('.').nth(1).unwrap(), &URL_SAFE_NO_PAD.encode(br#"{"sub":"b"}"#), 1);
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk("i")).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).is_ok());
        assert!(jsonwebtoken::decode::<serde_json::Value>(&forged, &decoding, &validation).is_err());
    }

    #[test]
    fn every_algorithm_signs_tokens_its_published_jwk_verifies() {
        let now = 1_800_000_000;
        for (algorithm, expected) in [
            (Algorithm::Rs256, jsonwebtoken::Algorithm::RS256),
            (Algorithm::Es256, jsonwebtoken::Algorithm::ES256),
            (Algorithm::EdDsa, jsonwebtoken::Algorithm::EdDSA),
        ] {
            let GeneratedKey { key, pkcs8_der } = SigningKey::generate(algorithm, "wisp test", now).unwrap();
            let claims = serde_json::json!({"aud": "api://x", "sub": "s"});
            let token = key.sign_jwt(&claims, true);
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.alg, expected);
            assert_eq!(header.kid.as_deref(), Some(key.kid()));
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk("i")).unwrap();
            let mut validation = jsonwebtoken::Validation::new(expected);
            validation.required_spec_claims.clear();
            validation.validate_exp = false;
            validation.set_audience(&["api://x"]);
            let decoded = jsonwebtoken::decode::<serde_json::Value>(
                &token,
                &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
                &validation,
            )
            .unwrap();
            assert_eq!(decoded.claims, claims);

            let (input, signature) = token.rsplit_once('.').unwrap();
            let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
            assert!(key.verify(input.as_bytes(), &signature), "{algorithm:?}");
            assert!(!key.verify(b"other input", &signature), "{algorithm:?}");

            // Stored and reopened, it is the same key; under another algorithm's name it is refused.
            let again = SigningKey::from_pkcs8(algorithm.as_str(), &pkcs8_der, key.certificate_der().to_vec()).unwrap();
            assert_eq!(again.jwk("i"), key.jwk("i"));
            for other in Algorithm::ALL.into_iter().filter(|a| *a != algorithm) {
                assert!(SigningKey::from_pkcs8(other.as_str(), &pkcs8_der, vec![]).is_err(), "{other:?}");
            }
        }
    }

    #[test]
    fn unknown_algorithms_and_garbage_keys_are_refused() {
        assert!(SigningKey::from_pkcs8("HS256", b"", vec![]).is_err());
        assert!(SigningKey::from_pkcs8("RS256", b"not a key", vec![]).is_err());
    }
}
