//! Refused connections, counted and logged as one summary line per
//! window. A connect flood is tens of thousands of refusals a second; a
//! line each would fill the journal (7,324 lines in 8 s before this) and
//! cost the accept loop the time it needs for real logins.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// At most one summary line per this long.
pub const WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Every slot the peer may use is taken (answered `Busy`).
    Busy,
    /// The peer's uid holds its `max_connections_per_user` (answered `Busy`).
    PerUser,
    /// A non-root peer on the root socket (closed at once).
    NotRoot,
    /// SO_PEERCRED could not be read (closed).
    NoCredentials,
    /// The daemon is out of file descriptors (answered `Busy` when the
    /// reserve descriptor allowed).
    NoDescriptors,
}

/// What the summary line reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub busy: u64,
    pub per_user: u64,
    pub not_root: u64,
    pub no_credentials: u64,
    pub no_descriptors: u64,
    /// The uid refused most often in the window, and how often.
    pub top_uid: Option<(u32, u64)>,
    /// How long the counts cover.
    pub over: Duration,
}

impl Summary {
    pub fn total(&self) -> u64 {
        self.busy + self.per_user + self.not_root + self.no_credentials + self.no_descriptors
    }
}

/// Counts refusals and says when a summary is due: at once for the first
/// refusal after a quiet window (so the start of an attack shows), then
/// at most once per [`WINDOW`].
#[derive(Debug, Default)]
pub struct Refusals {
    counts: Summary,
    by_uid: HashMap<u32, u64>,
    /// When the last summary was logged.
    last: Option<Instant>,
    /// When the counts being collected began.
    since: Option<Instant>,
}

impl Refusals {
    /// Counts one refusal; returns the summary to log when one is due.
    pub fn note(&mut self, reason: Reason, uid: Option<u32>, now: Instant) -> Option<Summary> {
        let c = &mut self.counts;
        match reason {
            Reason::Busy => c.busy += 1,
            Reason::PerUser => c.per_user += 1,
            Reason::NotRoot => c.not_root += 1,
            Reason::NoCredentials => c.no_credentials += 1,
            Reason::NoDescriptors => c.no_descriptors += 1,
        }
        if let Some(uid) = uid {
            *self.by_uid.entry(uid).or_default() += 1;
        }
        self.since.get_or_insert(now);
        self.due(now)
    }

    /// The summary of what was counted, if its window has passed; the
    /// accept loop asks on a timer so the last counts of an attack are
    /// not held back until the next refusal.
    pub fn due(&mut self, now: Instant) -> Option<Summary> {
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < WINDOW)
        {
            return None;
        }
        self.flush(now)
    }

    /// The summary of what was counted, window or not (at shutdown).
    pub fn flush(&mut self, now: Instant) -> Option<Summary> {
        let since = self.since?;
        let mut summary = std::mem::take(&mut self.counts);
        summary.top_uid = self
            .by_uid
            .drain()
            .max_by_key(|&(uid, n)| (n, std::cmp::Reverse(uid)));
        summary.over = now.duration_since(since);
        self.last = Some(now);
        self.since = None;
        Some(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_gives_one_line_per_window_with_its_counts() {
        let mut r = Refusals::default();
        let t0 = Instant::now();
        // The first refusal is reported at once.
        let first = r.note(Reason::PerUser, Some(65534), t0).unwrap();
        assert_eq!((first.per_user, first.total()), (1, 1));
        // 10,000 more within the window: no line.
        let mut lines = 0;
        for i in 0..10_000u32 {
            let at = t0 + Duration::from_micros(u64::from(i) * 900);
            let reason = if i % 2 == 0 {
                Reason::PerUser
            } else {
                Reason::Busy
            };
            lines += usize::from(r.note(reason, Some(65534 - i % 3), at).is_some());
        }
        assert_eq!(lines, 0);
        // The timer finds the window over and reports the lot.
        assert_eq!(r.due(t0 + Duration::from_secs(5)), None);
        let s = r.due(t0 + WINDOW).unwrap();
        assert_eq!((s.per_user, s.busy, s.total()), (5_000, 5_000, 10_000));
        assert_eq!(s.top_uid, Some((65534, 3334)));
        assert!(s.over >= Duration::from_millis(900));
        // Nothing new: nothing to say.
        assert_eq!(r.due(t0 + WINDOW + WINDOW / 4), None);
        // At shutdown the rest goes out whatever the window.
        let late = t0 + WINDOW + WINDOW / 2;
        assert_eq!(r.note(Reason::NotRoot, Some(1000), late), None);
        assert_eq!(r.flush(late).unwrap().not_root, 1);
    }

    #[test]
    fn refusals_without_a_uid_are_counted_too() {
        let mut r = Refusals::default();
        let s = r.note(Reason::NoDescriptors, None, Instant::now()).unwrap();
        assert_eq!((s.no_descriptors, s.top_uid), (1, None));
    }
}
