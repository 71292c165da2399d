//! Numbers from the directory (`[directory]`, LDAP): what a fleet uses
//! instead of a `users.toml` on every host.
//!
//! A lookup is answered from the per-user cache while its entry lives
//! (`cache_seconds` for a number, `negative_cache_seconds` for none);
//! otherwise one of `max_lookups` slots asks the server over the shared
//! connection, everything within `timeout_seconds`. "The directory has
//! no number" and "the directory cannot be asked" are different answers:
//! the first may lead to `no_mobile` (deny, skip, enrol), the second
//! always denies the login ([`DirectoryError`]), so an outage never turns
//! into a skipped second factor. Failures are not cached: the first
//! lookup after the server is back succeeds.

mod cache;
pub mod check;
mod client;
pub mod filter;
pub mod normalise;

use cache::{Answer, Cache};
use phonenumber::country::Id;
use smsotp_config::{DirectoryConfig, Mobile};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tracing::warn;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// Connect, TLS, bind or search failed.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    #[error("directory did not answer within {0:?}")]
    Timeout(Duration),
    /// Every lookup slot stayed taken for the whole timeout.
    #[error("directory busy: {0} lookups already in flight")]
    Busy(usize),
    /// The filter matched more than one entry: which number is the
    /// user's cannot be told, and a code is never sent to a guess.
    #[error("the directory filter matched {0} or more entries for one user")]
    Ambiguous(usize),
}

pub struct Directory {
    cfg: DirectoryConfig,
    country: Option<Id>,
    client: client::Client,
    cache: Cache,
    slots: Semaphore,
    /// Digits left visible when a value is logged.
    visible: usize,
}

impl Directory {
    /// Reads the bind password and the CA, checks the filter; connects
    /// only at the first lookup.
    pub fn new(cfg: &DirectoryConfig, visible: usize) -> Result<Directory, String> {
        let country = match &cfg.default_country {
            Some(c) => Some(normalise::country(c).map_err(|e| format!("default_country: {e}"))?),
            None => None,
        };
        // libphonenumber's metadata and patterns load on first use (0.7 s
        // in a debug build, most of it regex compilation): on a thread of
        // its own from the start, so neither the start nor the first
        // login waits for all of it (a login during it waits for the rest).
        let _ = std::thread::Builder::new()
            .name("phonenumber-load".into())
            .spawn(move || normalise::e164("+442079460000", country));
        ldap3::parse_filter(filter::for_user(&cfg.filter, "x"))
            .map_err(|_| format!("filter {:?} is not an LDAP filter (RFC 4515)", cfg.filter))?;
        Ok(Directory {
            cfg: cfg.clone(),
            country,
            client: client::Client::new(cfg)?,
            cache: Cache::new(cfg.cache_entries),
            slots: Semaphore::new(cfg.max_lookups),
            visible,
        })
    }

    /// The user's number in the directory. `user` is the canonical
    /// account name (see `account`).
    pub async fn mobile(&self, user: &str) -> Result<Option<Mobile>, DirectoryError> {
        let answer = match self.cache.get(user, Instant::now()) {
            Some(a) => a,
            None => self.ask(user).await?,
        };
        Ok(match answer {
            Answer::Number(m) => Some(m),
            Answer::NoNumber | Answer::Unreadable => None,
        })
    }

    /// Asks the server (never the cache) and caches the answer.
    async fn ask(&self, user: &str) -> Result<Answer, DirectoryError> {
        let timeout = self.cfg.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let _slot = tokio::time::timeout_at(deadline, self.slots.acquire())
            .await
            .map_err(|_| DirectoryError::Busy(self.cfg.max_lookups))?
            .map_err(|_| DirectoryError::Busy(self.cfg.max_lookups))?;
        let filter = filter::for_user(&self.cfg.filter, user);
        let found = tokio::time::timeout_at(deadline, self.client.search(&filter))
            .await
            .map_err(|_| DirectoryError::Timeout(timeout))??;
        let answer = self.interpret(user, &found);
        let ttl = match answer {
            Answer::NoNumber => self.cfg.negative_ttl,
            // An unreadable value is logged once per cache period, here.
            Answer::Number(_) | Answer::Unreadable => self.cfg.cache_ttl,
        };
        if !ttl.is_zero() {
            self.cache.put(user, answer.clone(), Instant::now() + ttl);
        }
        Ok(answer)
    }

    /// The first value, in attribute order, that is a valid number.
    fn interpret(&self, user: &str, found: &client::Found) -> Answer {
        let Some(entry) = found.first() else {
            return Answer::NoNumber;
        };
        let mut unreadable = Vec::new();
        for (attr, values) in entry {
            for v in values {
                if let Some(m) = normalise::e164(v, self.country) {
                    return Answer::Number(m);
                }
                unreadable.push(format!("{attr}={}", normalise::masked(v, self.visible)));
            }
        }
        if unreadable.is_empty() {
            return Answer::NoNumber;
        }
        warn!(
            event = "directory_unreadable_number",
            user,
            values = %unreadable.join(", "),
            "no directory value is a phone number we can send to; treated as no number"
        );
        Answer::Unreadable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn config(extra: &str) -> DirectoryConfig {
        let text =
            format!("[directory]\nurl = \"ldap://127.0.0.1:1\"\nbase_dn = \"dc=x\"\n{extra}");
        smsotp_config::parse(std::path::Path::new("/t.toml"), &text)
            .unwrap()
            .directory
            .unwrap()
    }

    #[test]
    fn the_bind_password_file_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("ldap.pw");
        std::fs::write(&pw, "bind-secret-value\n").unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
        let cfg = config(&format!(
            "bind_dn = \"cn=s\"\nbind_password_file = \"{}\"\n",
            pw.display()
        ));
        let e = Directory::new(&cfg, 4)
            .err()
            .expect("a readable password file");
        assert!(e.contains("bind password"), "{e}");
        assert!(e.contains("readable by"), "{e}");
        assert!(!e.contains("bind-secret-value"), "{e}");
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Directory::new(&cfg, 4).is_ok());
    }

    #[test]
    fn an_unknown_country_or_filter_fails_at_load() {
        let e = Directory::new(&config("default_country = \"XX\"\n"), 4)
            .err()
            .unwrap();
        assert!(e.contains("default_country"), "{e}");
        let e = Directory::new(&config("filter = \"(uid~{{user}})\"\n"), 4)
            .err()
            .unwrap();
        assert!(e.contains("is not an LDAP filter"), "{e}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_unavailable_and_never_cached() {
        let d = Directory::new(&config("timeout_seconds = 1\n"), 4).unwrap();
        for _ in 0..2 {
            match d.mobile("alice").await {
                Err(DirectoryError::Unavailable(m)) => assert!(m.contains("127.0.0.1:1"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        assert!(d.cache.get("alice", Instant::now()).is_none());
    }
}
