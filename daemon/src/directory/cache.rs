//! What the directory said about each user, for a while. Bounded in
//! entries (least recently used goes first), so the number of distinct
//! names cannot grow the daemon; each entry carries its own expiry, so a
//! "no number" can be believed for less time than a number.

use lru::LruCache;
use smsotp_config::Mobile;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Instant;

/// One answer of the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Number(Mobile),
    /// No entry, or no attribute with a value.
    NoNumber,
    /// Values were there but none is a number we can send to.
    Unreadable,
}

pub struct Cache {
    map: Mutex<LruCache<String, (Answer, Instant)>>,
}

impl Cache {
    pub fn new(entries: usize) -> Cache {
        let cap = NonZeroUsize::new(entries).unwrap_or(NonZeroUsize::MIN);
        Cache {
            map: Mutex::new(LruCache::new(cap)),
        }
    }

    /// The answer for `user` if it has not expired at `now`.
    pub fn get(&self, user: &str, now: Instant) -> Option<Answer> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(user) {
            Some((answer, until)) if now < *until => Some(answer.clone()),
            Some(_) => {
                map.pop(user);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, user: &str, answer: Answer, until: Instant) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.put(user.to_string(), (answer, until));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expires_and_stays_bounded() {
        let c = Cache::new(2);
        let t0 = Instant::now();
        let m = Mobile::parse("+442079460000").unwrap();
        c.put(
            "alice",
            Answer::Number(m.clone()),
            t0 + Duration::from_secs(10),
        );
        c.put("bob", Answer::NoNumber, t0 + Duration::from_secs(1));
        assert_eq!(c.get("alice", t0), Some(Answer::Number(m.clone())));
        assert_eq!(c.get("bob", t0 + Duration::from_secs(1)), None);
        assert_eq!(c.len(), 1, "an expired entry is dropped when seen");
        for i in 0..1000 {
            c.put(
                &format!("u{i}"),
                Answer::NoNumber,
                t0 + Duration::from_secs(10),
            );
        }
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("alice", t0), None, "the least recently used went");
        assert_eq!(c.get("u999", t0), Some(Answer::NoNumber));
    }
}
