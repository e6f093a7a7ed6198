//! When a tenant's keys change, as a pure function of the stored keys and the
//! time: the rotation schedule, separated from the database so it can be tested
//! at any instant.
//!
//! Each tenant has one `current` key (signs), one `next` key (published in the
//! JWKS, signs nothing yet) and any number of `previous` keys (published until
//! every token they signed has expired). A rotation promotes next → current and
//! current → previous, and creates a new next key — so a key is always published
//! for at least `publish_ahead` before its first signature.

use crate::store::StoredSigningKey;

/// The longest lifetime of any token wisp issues. A retired key stays published
/// for this long (plus clock skew), so every token it signed can still be checked.
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 24 * 3600;
/// Tolerance for resource servers whose clocks run behind.
pub const CLOCK_SKEW_SECS: i64 = 5 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// How long a key signs before its successor takes over.
    pub rotate_after: i64,
    /// The least time a next key is published before it signs anything.
    pub publish_ahead: i64,
    /// How long a retired key stays in the JWKS.
    pub retain_after_retire: i64,
}

impl RotationPolicy {
    /// The policy for a rotation period: next keys are published for half the
    /// period (at most a day — longer than any client caches a JWKS) before use.
    pub fn every(rotate_after_secs: i64) -> Self {
        Self {
            rotate_after: rotate_after_secs,
            publish_ahead: (rotate_after_secs / 2).min(24 * 3600),
            retain_after_retire: MAX_TOKEN_LIFETIME_SECS + CLOCK_SKEW_SECS,
        }
    }
}

/// New keys the plan needs, by the state they are inserted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewKeyState {
    Current,
    Next,
}

impl NewKeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            NewKeyState::Current => "current",
            NewKeyState::Next => "next",
        }
    }
}

/// What to change in a tenant's key set at one instant.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KeyPlan {
    pub delete: Vec<String>,
    pub retire: Option<(String, i64)>,
    pub activate: Option<String>,
    pub generate: Vec<NewKeyState>,
}

impl KeyPlan {
    pub fn is_empty(&self) -> bool {
        self == &KeyPlan::default()
    }
}

/// Decides what a tenant's key set needs at `now`, for tokens signed with
/// `algorithm` (the tenant's choice).
///
/// A change of algorithm takes effect at once: the old current key retires (it
/// stays published until its tokens expire), a next key of the old algorithm is
/// dropped (it signed nothing), and a key of the new algorithm signs from now
/// on. Resource servers meet an unknown `kid` and refetch the JWKS, as they do
/// after any unscheduled rotation.
pub fn plan(keys: &[StoredSigningKey], policy: &RotationPolicy, algorithm: &str, now: i64) -> KeyPlan {
    let current = keys.iter().find(|k| k.state == "current");
    let mut next = keys.iter().find(|k| k.state == "next");
    let mut plan = KeyPlan {
        delete: keys
            .iter()
            .filter(|k| k.state == "previous" && k.retire_at.is_some_and(|at| at <= now))
            .map(|k| k.kid.clone())
            .collect(),
        ..KeyPlan::default()
    };
    if let Some(stale) = next.filter(|k| k.algorithm != algorithm) {
        plan.delete.push(stale.kid.clone());
        next = None;
    }
    if let Some(stale) = current.filter(|k| k.algorithm != algorithm) {
        plan.retire = Some((stale.kid.clone(), now + policy.retain_after_retire));
        match next {
            Some(next) => {
                plan.activate = Some(next.kid.clone());
                plan.generate = vec![NewKeyState::Next];
            }
            None => plan.generate = vec![NewKeyState::Current, NewKeyState::Next],
        }
        return plan;
    }
    match (current, next) {
        // A tenant without keys (not made by wisp's own tenant creation): a key
        // nobody can have cached yet may sign at once.
        (None, None) => plan.generate = vec![NewKeyState::Current, NewKeyState::Next],
        (None, Some(next)) => {
            plan.activate = Some(next.kid.clone());
            plan.generate = vec![NewKeyState::Next];
        }
        (Some(_), None) => plan.generate = vec![NewKeyState::Next],
        (Some(current), Some(next)) => {
            let activated = current.activated_at.unwrap_or(current.created_at);
            if activated + policy.rotate_after <= now && next.created_at + policy.publish_ahead <= now {
                plan.retire = Some((current.kid.clone(), now + policy.retain_after_retire));
                plan.activate = Some(next.kid.clone());
                plan.generate = vec![NewKeyState::Next];
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600;

    fn key(
        kid: &str,
        state: &str,
        created_at: i64,
        activated_at: Option<i64>,
        retire_at: Option<i64>,
    ) -> StoredSigningKey {
        key_of("RS256", kid, state, created_at, activated_at, retire_at)
    }

    fn key_of(
        algorithm: &str,
        kid: &str,
        state: &str,
        created_at: i64,
        activated_at: Option<i64>,
        retire_at: Option<i64>,
    ) -> StoredSigningKey {
        StoredSigningKey {
            kid: kid.into(),
            tenant_id: "t".into(),
            algorithm: algorithm.into(),
            state: state.into(),
            certificate: vec![],
            sealed_private_key: vec![],
            created_at,
            activated_at,
            retire_at,
        }
    }

    #[test]
    fn a_fresh_key_set_is_left_alone_until_the_period_ends() {
        let policy = RotationPolicy::every(30 * DAY);
        let keys = [key("a", "current", 0, Some(0), None), key("b", "next", 0, None, None)];
        assert!(plan(&keys, &policy, "RS256", 30 * DAY - 1).is_empty());
        let due = plan(&keys, &policy, "RS256", 30 * DAY);
        assert_eq!(due.retire, Some(("a".into(), 30 * DAY + MAX_TOKEN_LIFETIME_SECS + CLOCK_SKEW_SECS)));
        assert_eq!(due.activate.as_deref(), Some("b"));
        assert_eq!(due.generate, vec![NewKeyState::Next]);
    }

    #[test]
    fn a_next_key_signs_only_after_it_was_published_long_enough() {
        let policy = RotationPolicy::every(30 * DAY);
        assert_eq!(policy.publish_ahead, DAY);
        // The current key is overdue but the next key appeared an hour ago.
        let keys = [key("a", "current", 0, Some(0), None), key("b", "next", 40 * DAY, None, None)];
        assert!(plan(&keys, &policy, "RS256", 40 * DAY + 3600).is_empty());
        assert_eq!(plan(&keys, &policy, "RS256", 41 * DAY).activate.as_deref(), Some("b"));
    }

    #[test]
    fn previous_keys_leave_only_after_their_tokens_expired() {
        let policy = RotationPolicy::every(30 * DAY);
        let keys = [
            key("a", "previous", 0, Some(0), Some(31 * DAY)),
            key("b", "current", 0, Some(30 * DAY), None),
            key("c", "next", 30 * DAY, None, None),
        ];
        assert!(plan(&keys, &policy, "RS256", 31 * DAY - 1).is_empty());
        assert_eq!(plan(&keys, &policy, "RS256", 31 * DAY).delete, vec!["a".to_string()]);
    }

    #[test]
    fn missing_keys_are_made_good() {
        let policy = RotationPolicy::every(30 * DAY);
        assert_eq!(plan(&[], &policy, "RS256", 5).generate, vec![NewKeyState::Current, NewKeyState::Next]);
        let only_current = [key("a", "current", 0, Some(0), None)];
        assert_eq!(plan(&only_current, &policy, "RS256", 5).generate, vec![NewKeyState::Next]);
        let only_next = [key("b", "next", 0, None, None)];
        let p = plan(&only_next, &policy, "RS256", 5);
        assert_eq!(p.activate.as_deref(), Some("b"));
        assert_eq!(p.generate, vec![NewKeyState::Next]);
    }

    #[test]
    fn a_new_algorithm_signs_at_once_and_the_old_key_stays_published() {
        let policy = RotationPolicy::every(30 * DAY);
        let keys = [key("a", "current", 0, Some(0), None), key("b", "next", 0, None, None)];
        let switch = plan(&keys, &policy, "ES256", DAY);
        assert_eq!(switch.delete, vec!["b".to_string()]);
        assert_eq!(switch.retire, Some(("a".into(), DAY + policy.retain_after_retire)));
        assert_eq!(switch.activate, None);
        assert_eq!(switch.generate, vec![NewKeyState::Current, NewKeyState::Next]);

        // Half done elsewhere (the next key already has the new algorithm): promote it.
        let keys = [key("a", "current", 0, Some(0), None), key_of("ES256", "b", "next", DAY, None, None)];
        let switch = plan(&keys, &policy, "ES256", DAY);
        assert!(switch.delete.is_empty());
        assert_eq!(switch.activate.as_deref(), Some("b"));
        assert_eq!(switch.generate, vec![NewKeyState::Next]);

        // Settled: nothing more to do.
        let keys = [
            key("a", "previous", 0, Some(0), Some(3 * DAY)),
            key_of("ES256", "c", "current", DAY, Some(DAY), None),
            key_of("ES256", "d", "next", DAY, None, None),
        ];
        assert!(plan(&keys, &policy, "ES256", 2 * DAY).is_empty());
    }
}
