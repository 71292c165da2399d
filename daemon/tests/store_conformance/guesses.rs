//! SMS-code guesses, one transaction each: the budget, its lock and the
//! lock's growth, escalation and decay, what a right guess clears, and
//! the once-per-lockout notice a `Begin` claims.

use crate::suite::*;
use smsotp_config::GlobalScope;
use smsotpd::rules::challenge::Step;
use smsotpd::store::{Guess, LockState, LockStatus};
use std::sync::Arc;

pub async fn budget_locks_and_grows(p: &Pair) {
    let t0 = p.now();
    // Each wrong guess reports the count ...
    for (i, s) in [&p.a, &p.b].iter().enumerate() {
        let lock = judged(guess(&***s, "u", false).await);
        assert_eq!((lock.failures, lock.locked_until), (i as u32 + 1, None));
    }
    // ... and the third spends the budget (3): locked for 60 s.
    let lock = judged(guess(&*p.a, "u", false).await);
    assert_eq!(
        (lock.failures, lock.locked_until, lock.lockouts),
        (0, Some(t0 + 60), 1)
    );
    // An admin's status reads the same lock on the same clock.
    assert_eq!(
        p.b.lock_state("u").await.unwrap(),
        LockStatus { now: t0, lock }
    );
    // The next is not judged, right or not, and stamps nothing.
    p.clock.advance(59);
    assert_eq!(
        guess(&*p.b, "u", true).await,
        Guess::Locked {
            now: t0 + 59,
            until: t0 + 60
        }
    );
    assert!(!in_grace(&*p.a, "u", TTY).await);
    // Once the lock ends, a right guess clears the count and stamps.
    p.clock.advance(1);
    let lock = judged(guess(&*p.b, "u", true).await);
    assert_eq!((lock.failures, lock.locked_until), (0, None));
    assert!(in_grace(&*p.a, "u", TTY).await);
    // Three more wrong: the second lockout, twice as long.
    let lock = wrongs(p, "u", 3).await;
    assert_eq!((lock.locked_until, lock.lockouts), (Some(t0 + 60 + 120), 2));
    assert!(p.b.unlock("u").await.unwrap());
    assert!(!p.a.unlock("u").await.unwrap(), "nothing left to clear");
    assert_eq!(
        judged(guess(&*p.a, "u", false).await),
        LockState {
            locked_until: None,
            failures: 1,
            lockouts: 0
        }
    );
}

pub async fn success_clears_failures_and_window_expires(p: &Pair) {
    wrongs(p, "u", 2).await;
    assert_eq!(judged(guess(&*p.a, "u", true).await).failures, 0);
    assert_eq!(p.b.lock_state("u").await.unwrap().lock.failures, 0);
    assert_eq!(wrongs(p, "u", 2).await.failures, 2);
    // The window (900 s) passes: the count starts over.
    p.clock.advance(900);
    assert_eq!(judged(guess(&*p.b, "u", false).await).failures, 1);
}

pub async fn escalation_decays_after_a_quiet_period(p: &Pair) {
    let t0 = p.now();
    let locks = |lock: LockState| (lock.lockouts, lock.locked_until);
    assert_eq!(locks(wrongs(p, "u", 3).await), (1, Some(t0 + 60)));
    p.clock.advance(60);
    assert_eq!(locks(wrongs(p, "u", 3).await), (2, Some(t0 + 180)));
    p.clock.advance(120);
    assert_eq!(locks(wrongs(p, "u", 3).await), (3, Some(t0 + 420)));
    // Just before the decay (counted from the end of the lock) the 4th.
    p.clock.advance(240 + 86_399);
    let end = t0 + 420 + 86_399 + 480;
    assert_eq!(locks(wrongs(p, "u", 3).await), (4, Some(end)));
    // A quiet day after that one ended: the first again.
    p.clock.advance(480 + 86_400);
    assert_eq!(locks(wrongs(p, "u", 3).await), (1, Some(end + 86_400 + 60)));
    // Each next lockout starts as the last ends: 120 s, 240 s ... up to
    // max_duration (3600 s), refusing every guess until its end.
    p.clock.advance(60);
    for length in [120, 240, 480, 960, 1920, 3600, 3600] {
        let until = wrongs(p, "u", 3).await.locked_until.unwrap();
        assert_eq!(until - p.now(), length);
        p.clock.advance(length - 1);
        assert_eq!(
            guess(&*p.b, "u", false).await,
            Guess::Locked {
                now: until - 1,
                until
            }
        );
        p.clock.advance(1);
    }
    let lock = p.a.lock_state("u").await.unwrap().lock;
    assert_eq!((lock.lockouts, lock.locked_until), (8, None));
}

pub async fn racing_guesses_get_exactly_the_budget(p: &Pair) {
    let t0 = p.now();
    let out = race(p, 50, |s, _| async move { guess(&*s, "u", false).await }).await;
    let judged = out.iter().filter(|g| is_judged(g)).count();
    assert_eq!(judged, lockout().max_failures as usize, "{out:?}");
    // The rest were refused on the one lock the last judged guess set.
    let refused = Guess::Locked {
        now: t0,
        until: t0 + 60,
    };
    assert_eq!(out.iter().filter(|g| **g == refused).count(), 50 - judged);
    assert_eq!(p.b.lock_state("u").await.unwrap().lock.lockouts, 1);
}

pub async fn a_begin_sees_the_lock_and_one_tells_the_owner(p: &Pair) {
    let b = budget(10, 100, GlobalScope::Host);
    p.a.set_mobile("u", "+15551234567").await.unwrap();
    one_backup_code(p, "u").await;
    wrongs(p, "u", 3).await;
    let until = p.now() + 60;
    let begin = Begin {
        backup_counts: true,
        ..Begin::new("u", &b)
    };
    let first = begin.on(&*p.b).await;
    let second = begin.on(&*p.a).await;
    assert_eq!(
        first.step,
        Step::Locked {
            until,
            notify: true
        }
    );
    assert_eq!(
        second.step,
        Step::Locked {
            until,
            notify: false
        }
    );
    // Locked: nothing reserved; backup codes still open the login.
    assert_eq!(
        (first.send, first.backup_left, first.backup_locked_until),
        (None, 1, None)
    );
    // The next lockout (once this one ended) is told again, once.
    p.clock.advance(60);
    wrongs(p, "u", 3).await;
    let next = |notify| Step::Locked {
        until: until + 120,
        notify,
    };
    assert_eq!(begin.on(&*p.a).await.step, next(true));
    assert_eq!(begin.on(&*p.b).await.step, next(false));
}

pub async fn a_racing_lock_notice_is_claimed_once(p: &Pair) {
    p.a.set_mobile("u", "+15551234567").await.unwrap();
    wrongs(p, "u", 3).await;
    let until = p.now() + 60;
    let b = Arc::new(budget(10, 100, GlobalScope::Host));
    let out = race(p, 20, |s, _| {
        let b = Arc::clone(&b);
        async move { Begin::new("u", &b).on(&*s).await.step }
    })
    .await;
    let told = |notify| {
        let step = Step::Locked { until, notify };
        out.iter().filter(|s| **s == step).count()
    };
    assert_eq!((told(true), told(false)), (1, 19), "{out:?}");
}
