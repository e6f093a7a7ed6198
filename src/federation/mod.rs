//! Trusting tokens wisp did not issue: parsing client assertions, fetching and
//! caching external issuers' keys under an SSRF policy, verifying signatures
//! with an explicit algorithm allow-list, and matching federated identity
//! credentials.
//!
//! **Invariant:** an issuer is fetched only if a stored credential names it, and
//! wisp's own tenants' tokens are verified with wisp's own keys, never fetched.

pub mod assertion;
pub mod expression;
pub mod issuer;
pub mod matching;

pub use assertion::{AssertionError, UnverifiedAssertion, VerifiedAssertion};
pub use issuer::{FetchError, IssuerKeys, IssuerPolicy};
