//! Verifying wisp's own access tokens when they come back (admin API bearer
//! tokens): a `kid` the tenant publishes and exactly that key's algorithm,
//! wisp's issuer, the time window. No network, no trust in anything the token
//! says before its signature checks out — except which tenant's keys to try,
//! which is re-checked against the verified `tid` and `iss`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::claims::AccessTokenClaims;
use crate::signing::TenantKeys;

/// Longest token accepted, before any parsing.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Tolerance for clocks that disagree a little.
pub const CLOCK_SKEW_SECS: i64 = 300;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signing algorithm is not accepted")]
    Algorithm,
    #[error("the token was not signed by a key of this tenant")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token was not issued by this tenant")]
    Issuer,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct TenantOnly {
    tid: Option<String>,
}

/// The `tid` a token claims, read **without verifying anything**. Only to pick
/// which tenant's keys to verify it with; [`verify`] re-checks it.
pub fn unverified_tenant(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<TenantOnly>(&bytes).ok()?.tid
}

/// The `kid` a token's header names, read **without verifying anything**: only
/// to know whether the tenant's keys must be reloaded before [`verify`].
pub fn unverified_kid(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let header = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header).ok()?;
    serde_json::from_slice::<Header>(&bytes).ok()?.kid
}

/// Verifies a token wisp issued for tenant `keys.tenant_id` with issuer `issuer`.
pub fn verify(keys: &TenantKeys, issuer: &str, token: &str, now: i64) -> Result<AccessTokenClaims, VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed);
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(VerifyError::Malformed)?;
    let key = header.kid.as_deref().and_then(|kid| keys.key(kid)).ok_or(VerifyError::UnknownKey)?;
    // The key decides the algorithm; a header naming another one is refused.
    if header.alg != key.algorithm().as_str() {
        return Err(VerifyError::Algorithm);
    }
    let signature = URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| VerifyError::Malformed)?;
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    if !key.verify(signing_input.as_bytes(), &signature) {
        return Err(VerifyError::Signature);
    }
    let claims: AccessTokenClaims = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(VerifyError::Malformed)?;
    if claims.iss != issuer || claims.tid != keys.tenant_id.to_string() {
        return Err(VerifyError::Issuer);
    }
    if claims.exp + CLOCK_SKEW_SECS <= now {
        return Err(VerifyError::Expired);
    }
    if claims.nbf - CLOCK_SKEW_SECS > now {
        return Err(VerifyError::NotYetValid);
    }
    Ok(claims)
}
