//! A circuit breaker per provider. After `threshold` consecutive failed
//! sends it opens and the chain skips the provider for `cooldown`, so a
//! dead gateway costs logins no time. Then one probe is let through:
//! success closes it, failure opens it for another cooldown.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A probe is out. `since` lets a new probe through should the first
    /// one never report (its future was dropped by the caller's deadline).
    HalfOpen {
        since: Instant,
    },
}

/// Whether the chain may use the provider now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Yes, as the one probe after a cooldown.
    Probe,
    No {
        retry_in: Duration,
    },
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value: a panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn admit(&self) -> Admit {
        let now = Instant::now();
        let mut s = self.lock();
        match *s {
            State::Closed { .. } => Admit::Yes,
            State::Open { until } if now < until => Admit::No {
                retry_in: until - now,
            },
            State::HalfOpen { since } if now < since + self.cooldown => Admit::No {
                retry_in: since + self.cooldown - now,
            },
            State::Open { .. } | State::HalfOpen { .. } => {
                *s = State::HalfOpen { since: now };
                Admit::Probe
            }
        }
    }

    pub fn success(&self) {
        *self.lock() = State::Closed { failures: 0 };
    }

    /// Records a failed send (after its retries). Returns true if this
    /// opened the breaker, for the log.
    pub fn failure(&self) -> bool {
        let now = Instant::now();
        let mut s = self.lock();
        let failures = match *s {
            State::Closed { failures } => failures + 1,
            // A failed probe reopens at once.
            State::HalfOpen { .. } | State::Open { .. } => self.threshold,
        };
        if failures >= self.threshold {
            *s = State::Open {
                until: now + self.cooldown,
            };
            true
        } else {
            *s = State::Closed { failures };
            false
        }
    }

    pub fn is_open(&self) -> bool {
        !matches!(*self.lock(), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_and_probes_after_cooldown() {
        let b = Breaker::new(2, Duration::from_secs(30));
        assert_eq!(b.admit(), Admit::Yes);
        assert!(!b.failure());
        assert_eq!(b.admit(), Admit::Yes);
        assert!(b.failure(), "second failure opens");
        assert!(matches!(b.admit(), Admit::No { retry_in } if retry_in == Duration::from_secs(30)));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(b.admit(), Admit::Probe);
        assert!(matches!(b.admit(), Admit::No { .. }), "one probe at a time");
        assert!(b.failure(), "failed probe reopens");
        assert!(matches!(b.admit(), Admit::No { .. }));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(b.admit(), Admit::Probe);
        b.success();
        assert_eq!(b.admit(), Admit::Yes);
        assert!(!b.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn success_resets_the_count() {
        let b = Breaker::new(2, Duration::from_secs(30));
        b.failure();
        b.success();
        assert!(!b.failure(), "count restarted");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_probe_does_not_wedge_the_breaker() {
        let b = Breaker::new(1, Duration::from_secs(10));
        b.failure();
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(b.admit(), Admit::Probe);
        // The probe's future is dropped: no success or failure reported.
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(b.admit(), Admit::Probe);
    }
}
