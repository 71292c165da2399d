//! Per-uid limits on self-service requests from callers other than root,
//! kept in memory (they guard this daemon's CPU and memory, not an
//! account, so they need not outlive it or be shared between hosts):
//! one request in flight per uid, and a few backup-code sets per hour.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Backup-code sets one uid may have made per [`WINDOW`].
pub const SETS_PER_WINDOW: usize = 3;
pub const WINDOW: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Limited {
    #[error("another request of yours is still being served; wait for it")]
    InFlight,
    #[error("you made {SETS_PER_WINDOW} sets of backup codes within the hour")]
    TooMany { retry_after: Duration },
}

#[derive(Default)]
struct Entry {
    in_flight: bool,
    /// When this uid's recent sets were made, oldest first.
    sets: VecDeque<Instant>,
}

#[derive(Default)]
pub struct PerUid {
    entries: Mutex<HashMap<u32, Entry>>,
}

/// Held while a uid's request is served; dropping it frees the uid.
pub struct InFlight<'a> {
    limiter: &'a PerUid,
    uid: u32,
}

impl PerUid {
    fn lock(&self) -> MutexGuard<'_, HashMap<u32, Entry>> {
        // A panic while holding the lock leaves at worst a stale flag.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims the uid's one slot for a request, or says why not.
    pub fn begin(&self, uid: u32) -> Result<InFlight<'_>, Limited> {
        let mut map = self.lock();
        let entry = map.entry(uid).or_default();
        if entry.in_flight {
            return Err(Limited::InFlight);
        }
        entry.in_flight = true;
        Ok(InFlight { limiter: self, uid })
    }
}

impl InFlight<'_> {
    /// Whether another set may be made now, without counting one.
    pub fn may_make_set(&self, now: Instant) -> Result<(), Limited> {
        let mut map = self.limiter.lock();
        let entry = map.entry(self.uid).or_default();
        while entry
            .sets
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            entry.sets.pop_front();
        }
        match entry.sets.front() {
            Some(oldest) if entry.sets.len() >= SETS_PER_WINDOW => Err(Limited::TooMany {
                retry_after: WINDOW.saturating_sub(now.duration_since(*oldest)),
            }),
            _ => Ok(()),
        }
    }

    /// Counts a set against the window, if one may be made.
    pub fn make_set(&self, now: Instant) -> Result<(), Limited> {
        self.may_make_set(now)?;
        let mut map = self.limiter.lock();
        map.entry(self.uid).or_default().sets.push_back(now);
        Ok(())
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut map = self.limiter.lock();
        let idle = map.get_mut(&self.uid).map(|e| {
            e.in_flight = false;
            e.sets.is_empty()
        });
        // Entries with nothing to remember go, so the map holds only uids
        // active within the window.
        if idle == Some(true) {
            map.remove(&self.uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_in_flight_per_uid() {
        let l = PerUid::default();
        let a = l.begin(1000).unwrap();
        assert_eq!(l.begin(1000).err(), Some(Limited::InFlight));
        assert!(l.begin(1001).is_ok(), "other uids are not affected");
        drop(a);
        assert!(l.begin(1000).is_ok());
        assert!(l.lock().is_empty(), "idle entries are dropped");
    }

    #[test]
    fn a_few_sets_per_window() {
        let l = PerUid::default();
        let t0 = Instant::now();
        for i in 0..SETS_PER_WINDOW as u64 {
            l.begin(7)
                .unwrap()
                .make_set(t0 + Duration::from_secs(i))
                .unwrap();
        }
        let g = l.begin(7).unwrap();
        match g.make_set(t0 + Duration::from_secs(10)) {
            Err(Limited::TooMany { retry_after }) => {
                assert_eq!(retry_after, WINDOW - Duration::from_secs(10))
            }
            other => panic!("{other:?}"),
        }
        assert!(g.may_make_set(t0 + WINDOW).is_ok(), "the oldest aged out");
    }
}
