//! The request-level calls (one transaction per login request), on every
//! backend, with the pair's fixed clock: what one call reads, decides and
//! writes, and the races of two handles through them.

use crate::suite::{lockout, Pair};
use smsotp_config::{GlobalScope, Mobile, Resend, SendBudget};
use smsotpd::rules::challenge::Step;
use smsotpd::store::{
    BackupCharge, BackupSettle, ChallengeOutcome, ChallengeQuery, Guess, GuessQuery, Number,
    SendDecision, SendKind, SendRequest, Store,
};
use std::sync::Arc;
use std::time::Duration;

fn budget(per_user: u32, global: u32, scope: GlobalScope) -> SendBudget {
    SendBudget {
        per_user_per_hour: per_user,
        per_rhost_per_hour: 1000,
        global_per_hour: global,
        global_scope: scope,
        allowed_countries: vec![],
    }
}

fn resend() -> Resend {
    Resend {
        enabled: true,
        per_user_per_hour: 100,
        cooldown: Duration::from_secs(0),
    }
}

/// What a Begin of `user` from `host` asks, with a stored number.
struct Begin<'a> {
    user: &'a str,
    host: &'a str,
    grace: Option<(&'a str, u64)>,
    opt_out_counts: bool,
    backup_counts: bool,
    budget: &'a SendBudget,
}

impl<'a> Begin<'a> {
    fn new(user: &'a str, budget: &'a SendBudget) -> Begin<'a> {
        Begin {
            user,
            host: "host-a",
            grace: None,
            opt_out_counts: false,
            backup_counts: false,
            budget,
        }
    }

    async fn on(&self, s: &dyn Store) -> ChallengeOutcome {
        let r = resend();
        s.challenge(ChallengeQuery {
            grace: self.grace,
            opt_out_counts: self.opt_out_counts,
            number: Number::Stored,
            backup_counts: self.backup_counts,
            send_without_number: false,
            reserve: true,
            notice: true,
            send: SendRequest {
                user: self.user,
                rhost: Some("203.0.113.9"),
                host: self.host,
                kind: SendKind::First,
                budget: self.budget,
                resend: &r,
            },
        })
        .await
        .unwrap()
    }
}

async fn guess(s: &dyn Store, user: &str, right: bool) -> Guess {
    let l = lockout();
    s.guess(GuessQuery {
        user,
        lockout: &l,
        right,
        grace: Some("host-a:tty1"),
        enrol: None,
    })
    .await
    .unwrap()
}

fn is_judged(g: &Guess) -> bool {
    matches!(g, Guess::Judged { .. })
}

pub async fn a_begin_skips_or_sends_in_one_call(p: &Pair) {
    let now = p.clock.fixed_now().unwrap();
    let b = budget(2, 100, GlobalScope::Host);
    p.a.set_mobile("u", "+15551234567", 1).await.unwrap();
    let begin = Begin::new("u", &b);
    let out = begin.on(&*p.a).await;
    assert_eq!(out.now, now);
    assert_eq!(out.step, Step::Send);
    assert_eq!(out.send, Some(SendDecision::Allowed));
    assert_eq!(out.stored, Mobile::parse("+15551234567").ok());
    // An opt-out that counts skips, and reserves nothing.
    p.b.set_opt_out("u", true, 1).await.unwrap();
    let opted = Begin {
        opt_out_counts: true,
        ..Begin::new("u", &b)
    };
    let out = opted.on(&*p.b).await;
    assert_eq!((out.step, out.send), (Step::OptedOut, None));
    // A recent success in the grace context skips before anything else.
    p.a.record_success("u", "host-a:tty1", now - 10)
        .await
        .unwrap();
    let graced = Begin {
        grace: Some(("host-a:tty1", 300)),
        ..Begin::new("u", &b)
    };
    assert_eq!(graced.on(&*p.a).await.step, Step::Grace);
    // The skips spent nothing: exactly one more send fits the budget of 2.
    assert_eq!(begin.on(&*p.b).await.send, Some(SendDecision::Allowed));
    let refused = begin.on(&*p.a).await;
    assert!(
        matches!(refused.send, Some(SendDecision::Refused { .. })),
        "{refused:?}"
    );
    // No number: nothing to send, nothing reserved.
    let nobody = Begin::new("nobody", &b).on(&*p.a).await;
    assert_eq!(
        (nobody.step, nobody.send),
        (Step::NoNumber { send: false }, None)
    );
}

pub async fn guesses_settle_in_one_call_and_report_the_lock(p: &Pair) {
    let now = p.clock.fixed_now().unwrap();
    for (i, s) in [&p.a, &p.b].iter().enumerate() {
        let g = guess(&***s, "u", false).await;
        let Guess::Judged { lock, .. } = g else {
            panic!("{g:?}")
        };
        assert_eq!((lock.failures, lock.locked_until), (i as u32 + 1, None));
    }
    // The third wrong guess spends the budget (3): locked for 60 s.
    let g = guess(&*p.a, "u", false).await;
    let Guess::Judged { lock, .. } = g else {
        panic!("{g:?}")
    };
    assert_eq!((lock.locked_until, lock.lockouts), (Some(now + 60), 1));
    // The next is not judged, right or not, and stamps nothing.
    assert_eq!(
        guess(&*p.b, "u", true).await,
        Guess::Locked {
            now,
            until: now + 60
        }
    );
    assert_eq!(p.a.last_success("u", "host-a:tty1").await.unwrap(), None);
    // Once the lock ends, a right guess clears the count and stamps.
    p.clock.advance(60);
    let g = guess(&*p.b, "u", true).await;
    assert!(is_judged(&g), "{g:?}");
    assert_eq!(
        p.a.last_success("u", "host-a:tty1").await.unwrap(),
        Some(now + 60)
    );
    assert_eq!(p.a.lock_state("u", now + 60).await.unwrap().failures, 0);
}

pub async fn a_begin_sees_the_lock_and_one_tells_the_owner(p: &Pair) {
    let b = budget(10, 100, GlobalScope::Host);
    p.a.set_mobile("u", "+15551234567", 1).await.unwrap();
    p.a.replace_backup_codes("u", vec![("ID1".into(), "h1".into())], 1)
        .await
        .unwrap();
    for _ in 0..3 {
        guess(&*p.a, "u", false).await;
    }
    let until = p.clock.fixed_now().unwrap() + 60;
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
    assert_eq!((first.send, first.backup_left), (None, 1));
    assert_eq!(first.backup_locked_until, None);
}

pub async fn enrolment_by_a_right_guess_never_overwrites(p: &Pair) {
    let l = lockout();
    let enrol = |user: &'static str, number: &'static str| GuessQuery {
        user,
        lockout: &l,
        right: true,
        grace: Some("ctx"),
        enrol: Some(number),
    };
    let g = p.a.guess(enrol("new", "+15550000001")).await.unwrap();
    assert!(
        matches!(
            g,
            Guess::Judged {
                enrolled: Some(true),
                ..
            }
        ),
        "{g:?}"
    );
    assert_eq!(
        p.b.mobile("new").await.unwrap().as_deref(),
        Some("+15550000001")
    );
    // Root set a number meanwhile: refused, kept, and no grace stamp.
    p.b.set_mobile("taken", "+15550000009", 1).await.unwrap();
    let g = p.b.guess(enrol("taken", "+15550000002")).await.unwrap();
    assert!(
        matches!(
            g,
            Guess::Judged {
                enrolled: Some(false),
                ..
            }
        ),
        "{g:?}"
    );
    assert_eq!(
        p.a.mobile("taken").await.unwrap().as_deref(),
        Some("+15550000009")
    );
    assert_eq!(p.a.last_success("taken", "ctx").await.unwrap(), None);
}

pub async fn a_backup_guess_charges_then_settles(p: &Pair) {
    let l = lockout();
    p.a.replace_backup_codes("u", vec![("ID1".into(), "h1".into())], 1)
        .await
        .unwrap();
    assert_eq!(
        p.b.backup_charge("u", "ID1", &l).await.unwrap(),
        BackupCharge::Granted {
            hash: Some("h1".into())
        }
    );
    let settle = |matched| BackupSettle {
        user: "u",
        id: "ID1",
        lockout: &l,
        matched,
        grace: Some("ctx"),
    };
    // Wrong twice: the backup budget (2) is spent and locks.
    let s1 = p.a.backup_settle(settle(false)).await.unwrap();
    assert_eq!((s1.spent, s1.left, s1.locked_until), (false, 1, None));
    p.a.backup_charge("u", "ID1", &l).await.unwrap();
    let s2 = p.b.backup_settle(settle(false)).await.unwrap();
    assert_eq!(s2.locked_until, Some(s2.now + 3600));
    assert!(matches!(
        p.a.backup_charge("u", "ID1", &l).await.unwrap(),
        BackupCharge::Locked { .. }
    ));
    // Its own budget: SMS guesses are untouched.
    assert!(is_judged(&guess(&*p.b, "u", false).await));
}

pub async fn racing_guess_requests_get_exactly_the_budget(p: &Pair) {
    let out = race(p, 50, |s| async move { guess(&*s, "u", false).await }).await;
    let judged = out.iter().filter(|g| is_judged(g)).count();
    assert_eq!(judged, lockout().max_failures as usize, "{out:?}");
    let now = p.clock.fixed_now().unwrap();
    assert_eq!(p.b.lock_state("u", now).await.unwrap().lockouts, 1);
}

pub async fn racing_backup_settles_have_one_winner(p: &Pair) {
    p.a.replace_backup_codes("u", vec![("ID1".into(), "h1".into())], 1)
        .await
        .unwrap();
    let out = race(p, 20, |s| async move {
        let l = lockout();
        s.backup_settle(BackupSettle {
            user: "u",
            id: "ID1",
            lockout: &l,
            matched: true,
            grace: None,
        })
        .await
        .unwrap()
    })
    .await;
    assert_eq!(out.iter().filter(|s| s.spent).count(), 1, "{out:?}");
    assert_eq!(p.b.backup_codes_left("u").await.unwrap(), 0);
}

pub async fn racing_begins_get_exactly_the_send_budget(p: &Pair) {
    p.a.set_mobile("u", "+15551234567", 1).await.unwrap();
    let b = Arc::new(budget(4, 100, GlobalScope::Fleet));
    let out = race(p, 30, |s| {
        let b = Arc::clone(&b);
        async move { Begin::new("u", &b).on(&*s).await.send }
    })
    .await;
    let allowed = out
        .iter()
        .filter(|d| **d == Some(SendDecision::Allowed))
        .count();
    assert_eq!(allowed, 4, "{out:?}");
}

pub async fn the_global_budget_counts_per_host_or_per_fleet(p: &Pair) {
    for (i, u) in ["u1", "u2", "u3", "u4"].iter().enumerate() {
        p.a.set_mobile(u, &format!("+1555123000{i}"), 1)
            .await
            .unwrap();
    }
    let host = budget(10, 2, GlobalScope::Host);
    let fleet = budget(10, 2, GlobalScope::Fleet);
    for u in ["u1", "u2"] {
        let out = Begin::new(u, &host).on(&*p.a).await;
        assert_eq!(out.send, Some(SendDecision::Allowed), "{u}");
    }
    // host-a's own limit is reached; host-b's is not.
    let full = Begin::new("u3", &host).on(&*p.a).await;
    assert_eq!(
        full.send,
        Some(SendDecision::Refused {
            reason: "the service has reached its hourly SMS limit".into(),
            // The minute of START (which ends 40 s later) leaves an hour on.
            retry_after: Some(3640),
        })
    );
    let other = Begin {
        host: "host-b",
        ..Begin::new("u3", &host)
    };
    assert_eq!(other.on(&*p.b).await.send, Some(SendDecision::Allowed));
    // Counted across the fleet, host-b's one send plus host-a's two are
    // over the limit of 2.
    let fleet_b = Begin {
        host: "host-b",
        ..Begin::new("u4", &fleet)
    };
    assert!(matches!(
        fleet_b.on(&*p.b).await.send,
        Some(SendDecision::Refused { .. })
    ));
}

/// Runs `calls` at once, the n-th on handle n % 2.
async fn race<T, F, Fut>(p: &Pair, calls: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..calls)
        .map(|i| {
            tokio::spawn(f(if i % 2 == 0 {
                Arc::clone(&p.a)
            } else {
                Arc::clone(&p.b)
            }))
        })
        .collect();
    let mut out = Vec::with_capacity(calls);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
