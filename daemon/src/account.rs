//! Which account a login is for. PAM hands over the name as typed; on
//! hosts whose NSS ignores case or trims (SSSD, winbind, AD) `ALICE` and
//! `alice ` are alice's account, and a policy keyed on the typed text
//! would give each spelling its own exemptions and its own guess budget.
//! So every login is resolved through NSS (getpwnam) once, at `Begin`,
//! before any policy, budget, lookup or enrolment, and the canonical name
//! is used from there on (audit lines too).
//!
//! A name NSS does not know is never skipped: sshd, sudo and su never
//! authenticate such a name, so nothing legitimate needs a skip for it,
//! and each unknown spelling must not be a way around the code. It gets a
//! code only with an exact `users.toml` entry; otherwise it is denied (or
//! hidden behind a fake challenge).

use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The outcome of resolving a PAM user name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    /// NSS knows it; the name is the account's own spelling.
    Known(String),
    /// NSS does not know it (or could not answer): the name as typed.
    Unknown(String),
}

impl Account {
    pub fn name(&self) -> &str {
        match self {
            Account::Known(n) | Account::Unknown(n) => n,
        }
    }

    pub fn is_known(&self) -> bool {
        matches!(self, Account::Known(_))
    }
}

/// How long an answer of NSS is reused. A login's `Begin` asks for the
/// name every time, and on a busy host NSS was the daemon's biggest cost
/// (libnss_systemd alone opens ~30 files to say a name is unknown). Ten
/// seconds is far below nscd's defaults (600 s known, 20 s unknown): an
/// account created just now is unknown, the stricter side, for at most
/// that long, and one deleted just now cannot log in past sshd anyway.
pub const REUSE: Duration = Duration::from_secs(10);

/// Names remembered at most: an attacker's stream of made-up names evicts
/// only older answers and never grows the daemon.
const CAPACITY: usize = 4096;

/// Recent answers of NSS by typed name, created at the first.
struct Answers(Mutex<Option<LruCache<String, (Account, Instant)>>>);

static ANSWERS: Answers = Answers(Mutex::new(None));

/// Resolves `typed` through NSS on the blocking pool (LDAP and sssd may
/// take their time), or from an answer of the last [`REUSE`]. An NSS
/// error counts as unknown, the stricter side, and is not remembered.
pub async fn resolve(typed: &str) -> Account {
    if let Some(a) = ANSWERS.get(typed, Instant::now()) {
        return a;
    }
    let name = typed.to_string();
    match tokio::task::spawn_blocking(move || lookup(&name)).await {
        Ok(Ok(a)) => {
            ANSWERS.put(typed, &a, Instant::now());
            a
        }
        _ => Account::Unknown(typed.to_string()),
    }
}

impl Answers {
    fn map(&self) -> std::sync::MutexGuard<'_, Option<LruCache<String, (Account, Instant)>>> {
        // A panic while holding the lock left a consistent map (get/put).
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, typed: &str, now: Instant) -> Option<Account> {
        let mut map = self.map();
        let (account, at) = map.as_mut()?.get(typed)?;
        (now.saturating_duration_since(*at) < REUSE).then(|| account.clone())
    }

    fn put(&self, typed: &str, a: &Account, now: Instant) {
        let cap = NonZeroUsize::new(CAPACITY).expect("nonzero");
        self.map()
            .get_or_insert_with(|| LruCache::new(cap))
            .put(typed.to_string(), (a.clone(), now));
    }
}

fn lookup(typed: &str) -> nix::Result<Account> {
    Ok(match nix::unistd::User::from_name(typed)? {
        Some(u) => Account::Known(u.name),
        None => Account::Unknown(typed.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nss_names_are_canonical_and_other_spellings_unknown() {
        // root exists on every Linux system; the files backend matches
        // names exactly, so other spellings are not root.
        assert_eq!(lookup("root"), Ok(Account::Known("root".into())));
        for other in ["ROOT", "Root", "root ", " root", "ro\0ot", ""] {
            let a = lookup(other).unwrap_or(Account::Unknown(other.into()));
            assert!(!a.is_known(), "{other:?} resolved to {a:?}");
            assert_eq!(a.name(), other);
        }
    }

    #[test]
    fn an_answer_is_reused_for_ten_seconds_then_asked_again() {
        let answers = Answers(Mutex::new(None));
        let t0 = Instant::now();
        let a = Account::Unknown("x".into());
        answers.put("x", &a, t0);
        assert_eq!(answers.get("x", t0), Some(a.clone()));
        let late = t0 + REUSE - Duration::from_millis(1);
        assert_eq!(answers.get("x", late), Some(a));
        assert_eq!(answers.get("x", t0 + REUSE), None);
        // Spellings are not folded together by the cache either.
        assert_eq!(answers.get("X", t0), None);
    }

    #[test]
    fn a_flood_of_made_up_names_keeps_the_cache_bounded() {
        let answers = Answers(Mutex::new(None));
        let t0 = Instant::now();
        for i in 0..CAPACITY + 100 {
            let name = format!("flood-{i}");
            answers.put(&name, &Account::Unknown(name.clone()), t0);
        }
        assert_eq!(answers.map().as_ref().unwrap().len(), CAPACITY);
        // The newest answers are the ones kept.
        let last = format!("flood-{}", CAPACITY + 99);
        assert!(answers.get(&last, t0).is_some());
        assert!(answers.get("flood-0", t0).is_none());
    }
}
