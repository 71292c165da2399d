//! Codes: made from the OS CSPRNG, kept only as a keyed hash, compared in
//! constant time, spent once. Expiry uses the monotonic clock, so moving the
//! wall clock can neither extend nor revive a code.

use hmac::{Hmac, Mac};
use rand::{rngs::OsRng, Rng, TryRngCore};
use sha2::Sha256;
use smsotp_config::{CodeKind, OtpPolicy};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Letters and digits a person cannot confuse when reading an SMS:
/// no 0/O, 1/I/L.
pub(crate) const ALPHANUMERIC: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const DIGITS: &[u8] = b"0123456789";

/// Makes a fresh code of the policy's length and alphabet.
pub fn generate(policy: &OtpPolicy) -> Zeroizing<String> {
    let alphabet = match policy.kind {
        CodeKind::Numeric => DIGITS,
        CodeKind::Alphanumeric => ALPHANUMERIC,
    };
    // OsRng reads getrandom(2) directly; `random_range` rejects samples
    // instead of taking a modulo, so every symbol is equally likely.
    let mut rng = OsRng.unwrap_err();
    let mut code = Zeroizing::new(String::with_capacity(policy.length as usize));
    for _ in 0..policy.length {
        code.push(alphabet[rng.random_range(0..alphabet.len())] as char);
    }
    code
}

/// Keyed hashing with a key that exists only in this process's memory: a
/// memory dump of pending challenges does not reveal codes, and nothing
/// useful survives a restart (pending codes die with the daemon anyway).
pub struct CodeHasher {
    key: Zeroizing<[u8; 32]>,
}

type HmacSha256 = Hmac<Sha256>;

impl CodeHasher {
    pub fn new() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.unwrap_err().fill(&mut key[..]);
        CodeHasher { key }
    }

    fn mac(&self, code: &str) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key[..])
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(normalize(code).as_bytes());
        mac
    }

    pub fn hash(&self, code: &str) -> [u8; 32] {
        self.mac(code).finalize().into_bytes().into()
    }

    /// Constant-time comparison (hmac's `verify_slice` uses `subtle`).
    pub fn matches(&self, candidate: &str, hash: &[u8; 32]) -> bool {
        self.mac(candidate).verify_slice(hash).is_ok()
    }
}

impl Default for CodeHasher {
    fn default() -> Self {
        Self::new()
    }
}

/// What people type: stray spaces around, lower case for letters.
fn normalize(code: &str) -> Zeroizing<String> {
    Zeroizing::new(code.trim().to_ascii_uppercase())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Verified,
    Wrong {
        attempts_left: u32,
    },
    Exhausted,
    Expired,
    /// Already verified or exhausted: nothing more to check.
    Spent,
}

/// One pending code for one login. Lives with its connection.
pub struct Challenge {
    /// `None`: no code exists for this challenge (a backup-only one, or
    /// the fake one of an unknown user), so no answer can ever match it.
    hash: Option<[u8; 32]>,
    expires: Instant,
    attempts_left: u32,
    resends_left: u32,
    spent: bool,
    policy: OtpPolicy,
}

impl Challenge {
    pub fn new(hasher: &CodeHasher, code: &str, policy: OtpPolicy, now: Instant) -> Self {
        Challenge {
            hash: Some(hasher.hash(code)),
            ..Challenge::without_code(policy, now)
        }
    }

    /// A challenge with tries and an expiry but no code: unwinnable by
    /// construction, not by an unlikely value.
    pub fn without_code(policy: OtpPolicy, now: Instant) -> Self {
        Challenge {
            hash: None,
            expires: now + policy.expiry,
            attempts_left: policy.max_attempts,
            resends_left: policy.max_resends,
            spent: false,
            policy,
        }
    }

    pub fn verify(&mut self, hasher: &CodeHasher, candidate: &str, now: Instant) -> Outcome {
        if self.spent {
            return Outcome::Spent;
        }
        if now >= self.expires {
            return Outcome::Expired;
        }
        // An over-long or empty answer still costs a try: the budget counts
        // guesses, whatever their shape.
        let right = candidate.len() <= 64
            && self
                .hash
                .as_ref()
                .is_some_and(|h| hasher.matches(candidate, h));
        if right {
            self.spent = true;
            return Outcome::Verified;
        }
        self.fail_attempt()
    }

    /// A guess that was checked elsewhere (a backup code) and was wrong:
    /// it costs a try on this challenge like a wrong SMS code.
    pub fn fail_attempt(&mut self) -> Outcome {
        if self.spent {
            return Outcome::Spent;
        }
        self.attempts_left = self.attempts_left.saturating_sub(1);
        if self.attempts_left == 0 {
            self.spent = true;
            Outcome::Exhausted
        } else {
            Outcome::Wrong {
                attempts_left: self.attempts_left,
            }
        }
    }

    /// A guess checked elsewhere was right: the challenge is over.
    pub fn succeed(&mut self) {
        self.spent = true;
    }

    /// Replaces the code: the old one stops matching at once, the expiry
    /// and the tries start over. Returns false when no resend is left.
    pub fn replace(&mut self, hasher: &CodeHasher, code: &str, now: Instant) -> bool {
        if !self.restart(now) {
            return false;
        }
        self.hash = Some(hasher.hash(code));
        true
    }

    /// A resend that sends nothing (the fake challenge): spends a resend,
    /// the expiry and the tries start over, still no code.
    pub fn restart(&mut self, now: Instant) -> bool {
        if self.spent || self.resends_left == 0 {
            return false;
        }
        self.resends_left -= 1;
        self.expires = now + self.policy.expiry;
        self.attempts_left = self.policy.max_attempts;
        true
    }

    pub fn expires_in(&self, now: Instant) -> Duration {
        self.expires.saturating_duration_since(now)
    }

    pub fn expires_at(&self) -> Instant {
        self.expires
    }

    pub fn attempts_left(&self) -> u32 {
        self.attempts_left
    }

    pub fn resends_left(&self) -> u32 {
        self.resends_left
    }

    pub fn policy(&self) -> &OtpPolicy {
        &self.policy
    }

    pub fn is_spent(&self) -> bool {
        self.spent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> OtpPolicy {
        OtpPolicy::default()
    }

    #[test]
    fn numeric_codes_have_the_right_shape() {
        for len in 4..=10 {
            let p = OtpPolicy {
                length: len,
                ..policy()
            };
            let c = generate(&p);
            assert_eq!(c.len(), len as usize);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn alphanumeric_codes_avoid_lookalikes() {
        let p = OtpPolicy {
            length: 10,
            kind: CodeKind::Alphanumeric,
            ..policy()
        };
        for _ in 0..200 {
            let c = generate(&p);
            assert!(
                c.bytes().all(|b| ALPHANUMERIC.contains(&b)),
                "{}",
                c.as_str()
            );
            assert!(!c.contains(['0', 'O', '1', 'I', 'L']));
        }
    }

    #[test]
    fn digits_are_roughly_uniform() {
        // 60k digits: each of 10 should be near 6000. The bound (5500..6500)
        // is > 6 standard deviations wide, so a correct generator passes.
        let p = OtpPolicy {
            length: 10,
            ..policy()
        };
        let mut counts = [0u32; 10];
        for _ in 0..6000 {
            for b in generate(&p).bytes() {
                counts[(b - b'0') as usize] += 1;
            }
        }
        for (d, n) in counts.iter().enumerate() {
            assert!((5500..6500).contains(n), "digit {d} seen {n} times");
        }
    }

    #[test]
    fn right_code_verifies_once() {
        let h = CodeHasher::new();
        let now = Instant::now();
        let mut c = Challenge::new(&h, "123456", policy(), now);
        assert_eq!(c.verify(&h, " 123456 ", now), Outcome::Verified);
        assert_eq!(c.verify(&h, "123456", now), Outcome::Spent);
    }

    #[test]
    fn alphanumeric_match_ignores_case() {
        let h = CodeHasher::new();
        let now = Instant::now();
        let mut c = Challenge::new(&h, "AB3K9Z", policy(), now);
        assert_eq!(c.verify(&h, "ab3k9z", now), Outcome::Verified);
    }

    #[test]
    fn wrong_codes_run_out() {
        let h = CodeHasher::new();
        let now = Instant::now();
        let mut c = Challenge::new(&h, "123456", policy(), now);
        assert_eq!(
            c.verify(&h, "000000", now),
            Outcome::Wrong { attempts_left: 2 }
        );
        assert_eq!(c.verify(&h, "", now), Outcome::Wrong { attempts_left: 1 });
        assert_eq!(c.verify(&h, "111111", now), Outcome::Exhausted);
        assert_eq!(c.verify(&h, "123456", now), Outcome::Spent);
    }

    #[test]
    fn expired_code_is_refused_even_when_right() {
        let h = CodeHasher::new();
        let now = Instant::now();
        let mut c = Challenge::new(&h, "123456", policy(), now);
        let later = now + policy().expiry;
        assert_eq!(c.verify(&h, "123456", later), Outcome::Expired);
        assert_eq!(c.attempts_left(), 3, "an expired check costs no try");
    }

    #[test]
    fn resend_invalidates_the_old_code_and_is_capped() {
        let h = CodeHasher::new();
        let now = Instant::now();
        let p = OtpPolicy {
            max_resends: 1,
            ..policy()
        };
        let mut c = Challenge::new(&h, "111111", p, now);
        assert!(c.replace(&h, "222222", now));
        assert_eq!(
            c.verify(&h, "111111", now),
            Outcome::Wrong { attempts_left: 2 }
        );
        assert!(!c.replace(&h, "333333", now), "second resend over the cap");
        assert_eq!(c.verify(&h, "222222", now), Outcome::Verified);
    }

    #[test]
    fn resend_restarts_expiry() {
        let h = CodeHasher::new();
        let now = Instant::now();
        let mut c = Challenge::new(&h, "111111", policy(), now);
        let later = now + policy().expiry + Duration::from_secs(1);
        assert_eq!(c.verify(&h, "111111", later), Outcome::Expired);
        assert!(c.replace(&h, "222222", later));
        assert_eq!(c.verify(&h, "222222", later), Outcome::Verified);
    }

    #[test]
    fn a_challenge_without_a_code_matches_nothing() {
        let h = CodeHasher::new();
        let now = Instant::now();
        let mut c = Challenge::without_code(policy(), now);
        // Not the empty string, not what a hash of nothing would be, not
        // anything after a restart.
        for guess in ["", "123456!"] {
            assert!(matches!(c.verify(&h, guess, now), Outcome::Wrong { .. }));
        }
        assert!(c.restart(now));
        assert!(matches!(c.verify(&h, "", now), Outcome::Wrong { .. }));
    }

    #[test]
    fn hashes_are_keyed_per_process() {
        let (a, b) = (CodeHasher::new(), CodeHasher::new());
        assert_ne!(a.hash("123456"), b.hash("123456"));
        assert!(!b.matches("123456", &a.hash("123456")));
    }
}
