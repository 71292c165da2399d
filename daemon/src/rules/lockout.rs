//! The arithmetic of a user's two guess budgets: SMS codes and backup
//! codes. Each has its own counters, so an attacker who knows only a user
//! name and burns the SMS budget leaves backup codes usable, and guesses at
//! backup codes cannot lock SMS codes either.
//!
//! The store keeps one [`Counter`] per user and budget and runs
//! [`charge`] (before a guess is checked) and [`judge`] (after) inside one
//! transaction each; nothing here reads a clock or a database.

use smsotp_config::Lockout;

/// Which of a user's guess budgets a guess is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// `max_failures` per `window`; each lockout longer than the last,
    /// unless `decay` passed since the previous one ended.
    Sms,
    /// `backup_max_failures` per `backup_window`; spent, locked until the
    /// window ends.
    Backup,
}

/// One budget's durable counters for one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counter {
    /// Guesses charged in the current window (granted, not yet cleared).
    pub failures: i64,
    pub window_start: i64,
    /// When the latest lock ends or ended: kept after it ends, because the
    /// decay of the escalation counts from there.
    pub locked_until: i64,
    /// Lockouts in the current escalation run (1 = the first).
    pub lockouts: i64,
}

/// What [`charge`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// The guess may be checked; store the counter.
    Granted(Counter),
    /// No guess now. `set` is the counter to store when this charge is the
    /// one that locked (the budget was spent by guesses still in flight,
    /// or a crash came between charging and judging them).
    Locked { until: i64, set: Option<Counter> },
}

/// Length in seconds of the n-th lockout of SMS codes (1-based):
/// duration * ratio^(n-1), capped at max_duration.
pub fn lockout_length(lockout: &Lockout, nth: u32) -> u64 {
    let base = lockout.duration.as_secs();
    let cap = lockout.max_duration.as_secs();
    let factor = u64::from(lockout.ratio).saturating_pow(nth.saturating_sub(1));
    base.saturating_mul(factor).min(cap)
}

/// Which lockout the next one is: the first again once `decay` has passed
/// since the previous one ended, else one more than before.
pub fn next_lockout(lockout: &Lockout, c: &Counter, now: i64) -> u32 {
    let decay = lockout.decay.as_secs() as i64;
    if c.lockouts <= 0 || c.locked_until.saturating_add(decay) <= now {
        1
    } else {
        (c.lockouts + 1).clamp(1, i64::from(u32::MAX)) as u32
    }
}

impl Budget {
    fn max(self, l: &Lockout) -> i64 {
        i64::from(match self {
            Budget::Sms => l.max_failures,
            Budget::Backup => l.backup_max_failures,
        })
    }

    fn window(self, l: &Lockout) -> i64 {
        match self {
            Budget::Sms => l.window,
            Budget::Backup => l.backup_window,
        }
        .as_secs() as i64
    }

    /// The counter once the budget is spent at `now`. The count starts
    /// over, so guesses still in flight do not lock a second time.
    fn lock(self, l: &Lockout, c: &Counter, now: i64) -> Counter {
        match self {
            Budget::Sms => {
                let nth = next_lockout(l, c, now);
                Counter {
                    failures: 0,
                    window_start: now,
                    locked_until: now.saturating_add(lockout_length(l, nth) as i64),
                    lockouts: i64::from(nth),
                }
            }
            Budget::Backup => {
                let until = c
                    .window_start
                    .saturating_add(self.window(l))
                    .max(now.saturating_add(1));
                Counter {
                    failures: 0,
                    // The next window opens when the lock ends.
                    window_start: until,
                    locked_until: until,
                    lockouts: c.lockouts.saturating_add(1),
                }
            }
        }
    }
}

/// Charges one guess before it is checked.
pub fn charge(budget: Budget, l: &Lockout, c: Counter, now: i64) -> Charge {
    if c.locked_until > now {
        return Charge::Locked {
            until: c.locked_until,
            set: None,
        };
    }
    let mut c = c;
    if c.window_start.saturating_add(budget.window(l)) <= now {
        c.failures = 0;
        c.window_start = now;
    }
    if c.failures >= budget.max(l) {
        let set = budget.lock(l, &c, now);
        return Charge::Locked {
            until: set.locked_until,
            set: Some(set),
        };
    }
    c.failures += 1;
    Charge::Granted(c)
}

/// The outcome of a granted guess: right clears the count, wrong at the
/// budget locks. `None`: nothing to store.
pub fn judge(budget: Budget, l: &Lockout, c: Counter, right: bool, now: i64) -> Option<Counter> {
    if right {
        return Some(Counter { failures: 0, ..c });
    }
    (c.failures >= budget.max(l)).then(|| budget.lock(l, &c, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn l() -> Lockout {
        Lockout {
            max_failures: 3,
            window: Duration::from_secs(900),
            duration: Duration::from_secs(300),
            ratio: 2,
            max_duration: Duration::from_secs(2000),
            decay: Duration::from_secs(10_000),
            backup_max_failures: 2,
            backup_window: Duration::from_secs(86_400),
        }
    }

    /// Charges and judges `n` wrong guesses at `now`; the last counter.
    fn wrongs(b: Budget, c: Counter, n: u32, now: i64) -> Counter {
        let mut c = c;
        for _ in 0..n {
            match charge(b, &l(), c, now) {
                Charge::Granted(next) => c = next,
                other => panic!("guess refused: {other:?}"),
            }
            if let Some(next) = judge(b, &l(), c, false, now) {
                c = next;
            }
        }
        c
    }

    #[test]
    fn lockouts_grow_by_the_ratio_up_to_the_cap() {
        assert_eq!(lockout_length(&l(), 1), 300);
        assert_eq!(lockout_length(&l(), 2), 600);
        assert_eq!(lockout_length(&l(), 3), 1200);
        assert_eq!(lockout_length(&l(), 4), 2000);
        assert_eq!(lockout_length(&l(), 400), 2000);
    }

    #[test]
    fn the_wrong_guess_at_the_budget_locks_and_the_next_is_refused() {
        let c = wrongs(Budget::Sms, Counter::default(), 3, 100);
        assert_eq!((c.locked_until, c.lockouts, c.failures), (400, 1, 0));
        assert_eq!(
            charge(Budget::Sms, &l(), c, 399),
            Charge::Locked {
                until: 400,
                set: None
            }
        );
        // After it ends, the next run of wrong codes locks twice as long.
        let c = wrongs(Budget::Sms, c, 3, 400);
        assert_eq!((c.locked_until, c.lockouts), (1000, 2));
    }

    #[test]
    fn escalation_decays_after_a_quiet_period() {
        let c = wrongs(Budget::Sms, Counter::default(), 3, 0);
        let c = wrongs(Budget::Sms, c, 3, 300);
        assert_eq!((c.locked_until, c.lockouts), (900, 2));
        // Just before the decay ends (counted from the end of the lock):
        // the third lockout, 1200 s.
        let late = wrongs(Budget::Sms, c, 3, 900 + 9_999);
        assert_eq!(late.lockouts, 3);
        assert_eq!(late.locked_until, 900 + 9_999 + 1200);
        // Once it ended: the first again.
        let fresh = wrongs(Budget::Sms, c, 3, 900 + 10_000);
        assert_eq!(fresh.lockouts, 1);
        assert_eq!(fresh.locked_until, 900 + 10_000 + 300);
    }

    #[test]
    fn a_spent_budget_without_a_lock_becomes_the_lockout() {
        let mut c = Counter::default();
        for _ in 0..3 {
            let Charge::Granted(next) = charge(Budget::Sms, &l(), c, 10) else {
                panic!("refused")
            };
            c = next;
        }
        let Charge::Locked { until, set } = charge(Budget::Sms, &l(), c, 20) else {
            panic!("granted a fourth guess")
        };
        assert_eq!(until, 320);
        let set = set.expect("this charge set the lock");
        assert_eq!((set.failures, set.lockouts), (0, 1));
        // The in-flight wrong guesses do not lock again.
        assert_eq!(judge(Budget::Sms, &l(), set, false, 21), None);
    }

    #[test]
    fn a_right_guess_clears_the_count_and_the_window_expires() {
        let c = wrongs(Budget::Sms, Counter::default(), 2, 0);
        assert_eq!(c.failures, 2);
        let right = judge(Budget::Sms, &l(), c, true, 0).expect("cleared");
        assert_eq!(right.failures, 0);
        let Charge::Granted(next) = charge(Budget::Sms, &l(), c, 900) else {
            panic!("refused")
        };
        assert_eq!((next.failures, next.window_start), (1, 900));
    }

    #[test]
    fn the_backup_budget_locks_until_its_window_ends() {
        let start = Counter {
            window_start: 1000,
            ..Counter::default()
        };
        let c = wrongs(Budget::Backup, start, 2, 1000);
        assert_eq!(c.locked_until, 1000 + 86_400);
        assert!(matches!(
            charge(Budget::Backup, &l(), c, 1000 + 86_399),
            Charge::Locked { until, set: None } if until == 87_400
        ));
        // The window reopens when the lock ends, with the full budget.
        let again = wrongs(Budget::Backup, c, 1, 87_400);
        assert_eq!((again.failures, again.locked_until), (1, 87_400));
    }

    #[test]
    fn budgets_are_of_their_own_size() {
        // Two wrong guesses spend the backup budget (2) but not the SMS
        // one (3): the same counter values judge differently.
        let c = Counter {
            failures: 2,
            ..Counter::default()
        };
        assert!(judge(Budget::Backup, &l(), c, false, 5).is_some());
        assert!(judge(Budget::Sms, &l(), c, false, 5).is_none());
    }
}
