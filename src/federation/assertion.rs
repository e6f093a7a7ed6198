//! Client assertions (JWTs) before and after verification.
//!
//! [`UnverifiedAssertion`] reads only what is needed to decide *how* to verify
//! (issuer, key id, algorithm); nothing in it may be trusted. The only way to get
//! trusted claims out is [`UnverifiedAssertion::verify`] with keys wisp chose.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

/// Longest assertion accepted, checked before any decoding.
pub const MAX_ASSERTION_BYTES: usize = 16 * 1024;
/// Tolerance for clocks that disagree (Entra does not document its own).
pub const CLOCK_SKEW_SECS: u64 = 300;

/// Why an assertion was not accepted, before any directory matching.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    #[error("the assertion is not a well-formed JWT")]
    Malformed,
    #[error("the assertion's signing algorithm {0:?} is not accepted")]
    Algorithm(String),
    #[error("no published key of the issuer matches the assertion's key id")]
    UnknownKey,
    #[error("the assertion's signature is invalid")]
    BadSignature,
    #[error("the assertion is not within its valid time range")]
    TimeWindow,
    #[error("the assertion has no expiry (exp)")]
    NoExpiry,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    x5t: Option<String>,
    #[serde(rename = "x5t#S256")]
    x5t_s256: Option<String>,
}

/// `aud` is a string or an array of strings.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Payload {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<i64>,
    jti: Option<String>,
}

/// A JWT NumericDate: seconds, possibly fractional (MSAL Python sends
/// `time.time()` floats), truncated to whole seconds.
fn numeric_date<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let value: Option<f64> = Option::deserialize(deserializer)?;
    Ok(value.filter(|v| v.is_finite()).map(|v| v.floor() as i64))
}

/// A parsed but **unverified** assertion.
pub struct UnverifiedAssertion<'a> {
    token: &'a str,
    pub alg: String,
    pub kid: Option<String>,
    /// Certificate thumbprints a certificate assertion names its key by.
    pub x5t: Option<String>,
    pub x5t_s256: Option<String>,
    /// Claims as presented; used for routing and messages only until verified.
    pub iss: String,
    pub sub: Option<String>,
    pub aud: Vec<String>,
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
    pub jti: Option<String>,
    iat: Option<i64>,
}

/// An assertion whose signature and time window checked out.
#[derive(Debug, Clone)]
pub struct VerifiedAssertion {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub jti: Option<String>,
    pub exp: i64,
    /// Every claim, for claims-matching expressions.
    pub claims: Value,
}

impl<'a> UnverifiedAssertion<'a> {
    pub fn parse(token: &'a str) -> Result<Self, AssertionError> {
        if token.len() > MAX_ASSERTION_BYTES {
            return Err(AssertionError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(_signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AssertionError::Malformed);
        };
        let header: Header = decode_json(header)?;
        let payload: Payload = decode_json(payload)?;
        let iss = payload.iss.ok_or(AssertionError::Malformed)?;
        let aud = match payload.aud {
            Some(Audience::One(one)) => vec![one],
            Some(Audience::Many(many)) => many,
            None => Vec::new(),
        };
        Ok(Self {
            token,
            alg: header.alg,
            kid: header.kid,
            x5t: header.x5t,
            x5t_s256: header.x5t_s256,
            iss,
            sub: payload.sub,
            aud,
            exp: payload.exp,
            nbf: payload.nbf,
            jti: payload.jti,
            iat: payload.iat,
        })
    }

    /// Every claim as presented — **not verified**. For explaining a token to an
    /// administrator who asked not to check its signature; never for trust.
    pub fn unverified_claims(&self) -> Value {
        self.token.split('.').nth(1).and_then(|p| decode_json::<Value>(p).ok()).unwrap_or(Value::Null)
    }

    /// The algorithm, if it is on the allow-list. `none` and HMAC never are:
    /// an assertion must be signed with a key only its issuer holds.
    pub fn allowed_algorithm(&self) -> Result<Algorithm, AssertionError> {
        let alg = match self.alg.as_str() {
            "RS256" => Algorithm::RS256,
            "RS384" => Algorithm::RS384,
            "RS512" => Algorithm::RS512,
            "PS256" => Algorithm::PS256,
            "PS384" => Algorithm::PS384,
            "PS512" => Algorithm::PS512,
            "ES256" => Algorithm::ES256,
            "ES384" => Algorithm::ES384,
            "EdDSA" => Algorithm::EdDSA,
            other => return Err(AssertionError::Algorithm(other.chars().take(20).collect())),
        };
        Ok(alg)
    }

    /// Verifies the signature with one of `keys` (chosen by `kid`; without a
    /// `kid`, only a key set of exactly one usable key is tried), then the time
    /// window: `exp` required, `nbf` and `iat` honoured, with bounded skew.
    pub fn verify(&self, keys: &[Jwk], now: i64) -> Result<VerifiedAssertion, AssertionError> {
        let alg = self.allowed_algorithm()?;
        let usable: Vec<&Jwk> = keys.iter().filter(|k| key_fits(k, alg)).collect();
        let key = match &self.kid {
            Some(kid) => {
                keys.iter().find(|k| k.common.key_id.as_deref() == Some(kid)).ok_or(AssertionError::UnknownKey)?
            }
            None if usable.len() == 1 => usable[0],
            None => return Err(AssertionError::UnknownKey),
        };
        if !key_fits(key, alg) {
            // A kid naming a key of another type or algorithm: algorithm confusion.
            return Err(AssertionError::Algorithm(self.alg.chars().take(20).collect()));
        }
        let decoding = DecodingKey::from_jwk(key).map_err(|_| AssertionError::UnknownKey)?;
        self.verify_with(&decoding, alg, now)
    }

    /// Verifies with a key wisp already holds (its own keys, an uploaded
    /// certificate's public key), then the time window.
    pub fn verify_with(
        &self,
        key: &DecodingKey,
        alg: Algorithm,
        now: i64,
    ) -> Result<VerifiedAssertion, AssertionError> {
        let mut validation = Validation::new(alg);
        validation.algorithms = vec![alg];
        validation.validate_aud = false;
        // Time is checked below against our own clock, so tests and messages agree.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Value>(self.token, key, &validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => AssertionError::BadSignature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
            | jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName => {
                AssertionError::Algorithm(self.alg.chars().take(20).collect())
            }
            jsonwebtoken::errors::ErrorKind::InvalidKeyFormat | jsonwebtoken::errors::ErrorKind::InvalidEcdsaKey => {
                AssertionError::UnknownKey
            }
            _ => AssertionError::Malformed,
        })?;
        self.check_time(now)?;
        Ok(VerifiedAssertion {
            iss: self.iss.clone(),
            sub: self.sub.clone().unwrap_or_default(),
            aud: self.aud.clone(),
            jti: self.jti.clone(),
            exp: self.exp.unwrap_or_default(),
            claims: data.claims,
        })
    }

    /// Verifies a certificate assertion's signature (RS256/384/512, PS256/384/512 —
    /// MSAL signs with PS256) with an uploaded certificate's public key, then
    /// the time window.
    pub fn verify_with_certificate(
        &self,
        certificate_der: &[u8],
        now: i64,
    ) -> Result<VerifiedAssertion, AssertionError> {
        use webpki::aws_lc_rs as algs;
        let alg: &dyn rustls_pki_types::SignatureVerificationAlgorithm = match self.alg.as_str() {
            "RS256" => algs::RSA_PKCS1_2048_8192_SHA256,
            "RS384" => algs::RSA_PKCS1_2048_8192_SHA384,
            "RS512" => algs::RSA_PKCS1_2048_8192_SHA512,
            "PS256" => algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            "PS384" => algs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
            "PS512" => algs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
            other => return Err(AssertionError::Algorithm(other.chars().take(20).collect())),
        };
        let der = rustls_pki_types::CertificateDer::from(certificate_der);
        let certificate = webpki::EndEntityCert::try_from(&der).map_err(|_| AssertionError::UnknownKey)?;
        let (signing_input, signature) = self.token.rsplit_once('.').ok_or(AssertionError::Malformed)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| AssertionError::Malformed)?;
        certificate
            .verify_signature(alg, signing_input.as_bytes(), &signature)
            .map_err(|_| AssertionError::BadSignature)?;
        self.check_time(now)?;
        let payload = signing_input.split('.').nth(1).ok_or(AssertionError::Malformed)?;
        Ok(VerifiedAssertion {
            iss: self.iss.clone(),
            sub: self.sub.clone().unwrap_or_default(),
            aud: self.aud.clone(),
            jti: self.jti.clone(),
            exp: self.exp.unwrap_or_default(),
            claims: decode_json(payload)?,
        })
    }

    /// The certificate thumbprint the header names, normalized to unpadded
    /// base64url: `(x5t, x5t#S256)`. MSAL Python pads `x5t` with `=`; both
    /// forms are accepted.
    pub fn thumbprints(&self) -> (Option<String>, Option<String>) {
        let normalize =
            |t: &Option<String>| t.as_ref().map(|t| t.trim_end_matches('=').replace('+', "-").replace('/', "_"));
        (normalize(&self.x5t), normalize(&self.x5t_s256))
    }

    fn check_time(&self, now: i64) -> Result<(), AssertionError> {
        let skew = CLOCK_SKEW_SECS as i64;
        let exp = self.exp.ok_or(AssertionError::NoExpiry)?;
        if exp + skew <= now
            || self.nbf.is_some_and(|nbf| nbf - skew > now)
            || self.iat.is_some_and(|iat| iat - skew > now)
        {
            return Err(AssertionError::TimeWindow);
        }
        Ok(())
    }
}

/// Does a published key fit the algorithm the token claims? (Type, curve, and
/// the key's own `alg`/`use` when it declares them.)
fn key_fits(key: &Jwk, alg: Algorithm) -> bool {
    let type_fits = match (&key.algorithm, alg) {
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => ec.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => ec.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => okp.curve == EllipticCurve::Ed25519,
        _ => false,
    };
    let alg_fits = match key.common.key_algorithm {
        None => true,
        Some(declared) => declared_matches(declared, alg),
    };
    let use_fits =
        key.common.public_key_use.as_ref().is_none_or(|u| matches!(u, jsonwebtoken::jwk::PublicKeyUse::Signature));
    type_fits && alg_fits && use_fits
}

fn declared_matches(declared: KeyAlgorithm, alg: Algorithm) -> bool {
    matches!(
        (declared, alg),
        (KeyAlgorithm::RS256, Algorithm::RS256)
            | (KeyAlgorithm::RS384, Algorithm::RS384)
            | (KeyAlgorithm::RS512, Algorithm::RS512)
            | (KeyAlgorithm::PS256, Algorithm::PS256)
            | (KeyAlgorithm::PS384, Algorithm::PS384)
            | (KeyAlgorithm::PS512, Algorithm::PS512)
            | (KeyAlgorithm::ES256, Algorithm::ES256)
            | (KeyAlgorithm::ES384, Algorithm::ES384)
            | (KeyAlgorithm::EdDSA, Algorithm::EdDSA)
    )
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, AssertionError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| AssertionError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| AssertionError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsigned(header: &str, payload: &str) -> String {
        format!("{}.{}.c2ln", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn parsing_reads_audience_forms_and_refuses_junk() {
        let one = unsigned(r#"{"alg":"RS256","kid":"k"}"#, r#"{"iss":"https://i","aud":"a","exp":5}"#);
        assert_eq!(UnverifiedAssertion::parse(&one).unwrap().aud, vec!["a".to_string()]);
        let many = unsigned(r#"{"alg":"RS256"}"#, r#"{"iss":"https://i","aud":["a","b"]}"#);
        assert_eq!(UnverifiedAssertion::parse(&many).unwrap().aud.len(), 2);
        for junk in
            ["", "a.b", "a.b.c.d", &unsigned("{", "{}"), &unsigned(r#"{"alg":"RS256"}"#, r#"{"sub":"no issuer"}"#)]
        {
            assert!(UnverifiedAssertion::parse(junk).is_err(), "{junk}");
        }
        let huge = unsigned(r#"{"alg":"RS256"}"#, &format!(r#"{{"iss":"{}"}}"#, "x".repeat(MAX_ASSERTION_BYTES)));
        assert!(UnverifiedAssertion::parse(&huge).is_err());
    }

    #[test]
    fn fractional_numeric_dates_are_read() {
        let token =
            unsigned(r#"{"alg":"PS256"}"#, r#"{"iss":"c","exp":1795741982.75,"nbf":1795741382.1,"iat":1795741382.1}"#);
        let parsed = UnverifiedAssertion::parse(&token).unwrap();
        assert_eq!(parsed.exp, Some(1795741982));
        assert_eq!(parsed.nbf, Some(1795741382));
    }

    #[test]
    fn none_and_hmac_are_never_accepted() {
        for alg in ["none", "HS256", "HS512", "RS1", ""] {
            let token = unsigned(&format!(r#"{{"alg":"{alg}"}}"#), r#"{"iss":"https://i","exp":9999999999}"#);
            let parsed = UnverifiedAssertion::parse(&token).unwrap();
            assert!(matches!(parsed.allowed_algorithm(), Err(AssertionError::Algorithm(_))), "{alg}");
            assert!(matches!(parsed.verify(&[], 0), Err(AssertionError::Algorithm(_))), "{alg}");
        }
    }
}
