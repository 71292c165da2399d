//! The behaviour every [`Store`] must have, as functions over two handles
//! on one database. Single-handle checks alternate handles, so a value
//! cached in one handle would show; racing checks split the callers
//! between them.

use smsotp_config::{Lockout, Resend, SendBudget};
use smsotpd::store::{Attempt, Budget, Clock, SendDecision, SendKind, SendRequest, Store};
use std::sync::Arc;
use std::time::Duration;

/// Two handles on one fresh database, and what keeps the database alive
/// (a temporary directory, a throwaway PostgreSQL).
pub struct Pair {
    pub a: Arc<dyn Store>,
    pub b: Arc<dyn Store>,
    /// The fixed clock both handles' request-level calls read.
    pub clock: Clock,
    _keep: Box<dyn std::any::Any + Send>,
}

impl Pair {
    pub fn new(
        a: Arc<dyn Store>,
        b: Arc<dyn Store>,
        clock: Clock,
        keep: Box<dyn std::any::Any + Send>,
    ) -> Pair {
        Pair {
            a,
            b,
            clock,
            _keep: keep,
        }
    }

    /// The handle for the n-th of many racing callers.
    fn nth(&self, n: usize) -> Arc<dyn Store> {
        Arc::clone(if n % 2 == 0 { &self.a } else { &self.b })
    }
}

pub fn lockout() -> Lockout {
    Lockout {
        max_failures: 3,
        window: Duration::from_secs(900),
        duration: Duration::from_secs(60),
        ratio: 2,
        max_duration: Duration::from_secs(3600),
        decay: Duration::from_secs(86_400),
        backup_max_failures: 2,
        backup_window: Duration::from_secs(3600),
    }
}

/// `n` granted wrong guesses at `now`, alternating handles.
async fn wrongs(p: &Pair, user: &str, n: usize, now: i64) {
    let l = lockout();
    for i in 0..n {
        let s = p.nth(i);
        assert_eq!(
            s.begin_attempt(Budget::Sms, user, now, &l).await.unwrap(),
            Attempt::Granted
        );
        p.nth(i + 1)
            .finish_attempt(Budget::Sms, user, false, now, &l)
            .await
            .unwrap();
    }
}

/// Runs `calls` at once, the n-th on handle n % 2; their results.
async fn race<T, F, Fut>(p: &Pair, calls: usize, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn Store>, usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..calls).map(|i| tokio::spawn(f(p.nth(i), i))).collect();
    let mut out = Vec::with_capacity(calls);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

pub async fn budget_locks_and_grows(p: &Pair) {
    let l = lockout();
    wrongs(p, "a", 3, 100).await;
    assert_eq!(
        p.b.begin_attempt(Budget::Sms, "a", 101, &l).await.unwrap(),
        Attempt::Locked { until: 160 }
    );
    let st = p.a.lock_state("a", 101).await.unwrap();
    assert_eq!((st.locked_until, st.lockouts), (Some(160), 1));
    // After the lock: three more wrong -> twice as long.
    wrongs(p, "a", 3, 200).await;
    assert_eq!(
        p.a.begin_attempt(Budget::Sms, "a", 201, &l).await.unwrap(),
        Attempt::Locked { until: 320 }
    );
    assert!(p.b.unlock("a").await.unwrap());
    assert!(!p.a.unlock("a").await.unwrap(), "nothing left to clear");
    assert_eq!(
        p.a.begin_attempt(Budget::Sms, "a", 202, &l).await.unwrap(),
        Attempt::Granted
    );
}

pub async fn a_spent_budget_without_a_lock_becomes_the_lockout(p: &Pair) {
    // A crash between charging guesses and judging them leaves the count
    // at the budget with no lock: the next guess sets the lock, with its
    // escalation, and in-flight wrongs do not lock again.
    let l = lockout();
    for i in 0..3 {
        assert_eq!(
            p.nth(i)
                .begin_attempt(Budget::Sms, "a", 100, &l)
                .await
                .unwrap(),
            Attempt::Granted
        );
    }
    assert_eq!(
        p.a.begin_attempt(Budget::Sms, "a", 110, &l).await.unwrap(),
        Attempt::Locked { until: 170 }
    );
    p.b.finish_attempt(Budget::Sms, "a", false, 111, &l)
        .await
        .unwrap();
    let st = p.a.lock_state("a", 112).await.unwrap();
    assert_eq!((st.locked_until, st.lockouts), (Some(170), 1));
}

pub async fn success_clears_failures_and_window_expires(p: &Pair) {
    let l = lockout();
    wrongs(p, "a", 2, 0).await;
    p.a.begin_attempt(Budget::Sms, "a", 0, &l).await.unwrap();
    p.b.finish_attempt(Budget::Sms, "a", true, 0, &l)
        .await
        .unwrap();
    assert_eq!(p.a.lock_state("a", 0).await.unwrap().failures, 0);
    wrongs(p, "a", 2, 0).await;
    // The window passes: the count starts over.
    assert_eq!(
        p.b.begin_attempt(Budget::Sms, "a", 900, &l).await.unwrap(),
        Attempt::Granted
    );
    assert_eq!(p.a.lock_state("a", 900).await.unwrap().failures, 1);
}

pub async fn escalation_decays_after_a_quiet_period(p: &Pair) {
    let l = lockout();
    wrongs(p, "a", 3, 0).await; // 1st: 0..60
    wrongs(p, "a", 3, 60).await; // 2nd: 60..180
    wrongs(p, "a", 3, 180).await; // 3rd: 180..420
    assert_eq!(
        p.a.lock_state("a", 181).await.unwrap().locked_until,
        Some(420)
    );
    // Just before the decay (counted from the end of the lock) the 4th.
    wrongs(p, "a", 3, 420 + 86_399).await;
    let st = p.b.lock_state("a", 420 + 86_399).await.unwrap();
    assert_eq!(
        (st.lockouts, st.locked_until),
        (4, Some(420 + 86_399 + 480))
    );
    // A quiet day after that one ended: the first again.
    let end = 420 + 86_399 + 480;
    wrongs(p, "a", 3, end + 86_400).await;
    let st = p.a.lock_state("a", end + 86_400).await.unwrap();
    assert_eq!((st.lockouts, st.locked_until), (1, Some(end + 86_400 + 60)));
    // The cap: lockouts never exceed max_duration.
    let mut now = end + 86_460;
    for _ in 0..8 {
        wrongs(p, "a", 3, now).await;
        now =
            p.b.lock_state("a", now)
                .await
                .unwrap()
                .locked_until
                .unwrap();
    }
    assert_eq!(
        p.a.begin_attempt(Budget::Sms, "a", now - 1, &l)
            .await
            .unwrap(),
        Attempt::Locked { until: now }
    );
    wrongs(p, "a", 3, now).await;
    let st = p.a.lock_state("a", now).await.unwrap();
    assert_eq!(st.locked_until, Some(now + 3600));
}

pub async fn send_budgets_and_cooldown(p: &Pair) {
    let budget = SendBudget {
        per_user_per_hour: 3,
        per_rhost_per_hour: 4,
        global_per_hour: 5,
        global_scope: Default::default(),
        allowed_countries: vec![],
    };
    let resend = Resend {
        enabled: true,
        per_user_per_hour: 1,
        cooldown: Duration::from_secs(30),
    };
    let req = |user: &'static str, rhost: Option<&'static str>, kind| SendRequest {
        host: "host-a",
        user,
        rhost,
        kind,
        budget: &budget,
        resend: &resend,
    };
    let allowed = SendDecision::Allowed;
    assert_eq!(
        p.a.reserve_send(req("a", Some("h1"), SendKind::First), 1000)
            .await
            .unwrap(),
        allowed
    );
    // Cooldown applies to resends.
    assert_eq!(
        p.b.reserve_send(req("a", Some("h1"), SendKind::Resend), 1010)
            .await
            .unwrap(),
        SendDecision::Refused {
            reason: "a code was sent moments ago".into(),
            retry_after: Some(20)
        }
    );
    assert_eq!(
        p.b.reserve_send(req("a", Some("h1"), SendKind::Resend), 1030)
            .await
            .unwrap(),
        allowed
    );
    // Resends per hour: 1.
    assert_eq!(
        p.a.reserve_send(req("a", Some("h1"), SendKind::Resend), 1100)
            .await
            .unwrap(),
        SendDecision::Refused {
            reason: "too many codes were resent for this account in the last hour".into(),
            retry_after: Some(3580)
        }
    );
    assert_eq!(
        p.a.reserve_send(req("a", Some("h1"), SendKind::First), 1100)
            .await
            .unwrap(),
        allowed
    );
    // Per user: 3 in the hour.
    assert_eq!(
        p.b.reserve_send(req("a", Some("h2"), SendKind::First), 1200)
            .await
            .unwrap(),
        SendDecision::Refused {
            reason: "this account has had too many codes sent in the last hour".into(),
            retry_after: Some(3420)
        }
    );
    // Per rhost: 4 (3 from a + this one).
    assert_eq!(
        p.b.reserve_send(req("b", Some("h1"), SendKind::First), 1200)
            .await
            .unwrap(),
        allowed
    );
    assert_eq!(
        p.a.reserve_send(req("c", Some("h1"), SendKind::First), 1200)
            .await
            .unwrap(),
        SendDecision::Refused {
            reason: "too many codes were sent for logins from this address in the last hour".into(),
            retry_after: Some(3420)
        }
    );
    // Global: 5.
    assert_eq!(
        p.a.reserve_send(req("c", None, SendKind::First), 1200)
            .await
            .unwrap(),
        allowed
    );
    assert_eq!(
        p.b.reserve_send(req("d", None, SendKind::First), 1200)
            .await
            .unwrap(),
        SendDecision::Refused {
            reason: "the service has reached its hourly SMS limit".into(),
            retry_after: Some(3420)
        }
    );
    // Sends count per minute: those of 960..1019 leave the window
    // together an hour after the minute ends, and then everything is free.
    assert_eq!(
        p.b.reserve_send(req("d", None, SendKind::First), 1020 + 3599)
            .await
            .unwrap(),
        SendDecision::Refused {
            reason: "the service has reached its hourly SMS limit".into(),
            retry_after: Some(1)
        }
    );
    assert_eq!(
        p.b.reserve_send(req("d", None, SendKind::First), 1020 + 3600)
            .await
            .unwrap(),
        allowed
    );
}

pub async fn backup_codes_spend_once(p: &Pair) {
    let codes = vec![("ID1".into(), "h1".into()), ("ID2".into(), "h2".into())];
    p.a.replace_backup_codes("a", codes, 5).await.unwrap();
    assert_eq!(
        p.b.backup_code_hash("a", "ID1").await.unwrap().as_deref(),
        Some("h1")
    );
    assert!(p.b.spend_backup_code("a", "ID1", 6).await.unwrap());
    assert!(
        !p.a.spend_backup_code("a", "ID1", 7).await.unwrap(),
        "spent twice"
    );
    assert!(p.a.backup_code_hash("a", "ID1").await.unwrap().is_none());
    assert!(
        p.a.backup_code_hash("b", "ID2").await.unwrap().is_none(),
        "another user's code"
    );
    assert_eq!(p.b.backup_codes_left("a").await.unwrap(), 1);
    // A new set replaces the old one whole.
    p.b.replace_backup_codes("a", vec![("ID3".into(), "h3".into())], 8)
        .await
        .unwrap();
    assert!(p.a.backup_code_hash("a", "ID2").await.unwrap().is_none());
    assert_eq!(p.a.backup_codes_left("a").await.unwrap(), 1);
}

pub async fn backup_guesses_have_their_own_budget_and_a_lock_is_told_once(p: &Pair) {
    let l = lockout();
    // The SMS budget (3) spent and locked ...
    wrongs(p, "a", 3, 100).await;
    assert!(p
        .a
        .lock_state("a", 100)
        .await
        .unwrap()
        .locked_until
        .is_some());
    // ... leaves the backup budget (2) whole, and back.
    for i in 0..2 {
        assert_eq!(
            p.nth(i)
                .begin_attempt(Budget::Backup, "a", 101, &l)
                .await
                .unwrap(),
            Attempt::Granted
        );
        p.nth(i + 1)
            .finish_attempt(Budget::Backup, "a", false, 101, &l)
            .await
            .unwrap();
    }
    assert_eq!(
        p.a.begin_attempt(Budget::Backup, "a", 102, &l)
            .await
            .unwrap(),
        Attempt::Locked { until: 101 + 3600 }
    );
    assert_eq!(
        p.b.backup_locked_until("a", 102).await.unwrap(),
        Some(101 + 3600)
    );
    assert_eq!(p.b.backup_locked_until("b", 102).await.unwrap(), None);
    assert_eq!(
        p.b.lock_state("a", 102).await.unwrap().locked_until,
        Some(160),
        "SMS lock unchanged"
    );
    // One notice per lockout, whoever asks.
    assert_eq!(p.a.claim_lock_notice("a", 103).await.unwrap(), Some(160));
    assert_eq!(p.b.claim_lock_notice("a", 104).await.unwrap(), None);
    assert_eq!(p.a.claim_lock_notice("b", 104).await.unwrap(), None);
    // unlock lifts both locks.
    assert!(p.b.unlock("a").await.unwrap());
    assert_eq!(p.a.backup_locked_until("a", 105).await.unwrap(), None);
    assert_eq!(p.a.lock_state("a", 105).await.unwrap(), Default::default());
    // The next lockout is told again.
    wrongs(p, "a", 3, 200).await;
    assert_eq!(p.b.claim_lock_notice("a", 201).await.unwrap(), Some(260));
}

pub async fn an_enrolment_never_overwrites_a_number(p: &Pair) {
    assert!(p
        .a
        .add_mobile_if_none("a", "+15550000001", 1)
        .await
        .unwrap());
    p.b.set_mobile("b", "+15550000002", 1).await.unwrap();
    assert!(!p
        .a
        .add_mobile_if_none("b", "+15550000003", 2)
        .await
        .unwrap());
    assert_eq!(
        p.b.mobile("b").await.unwrap().as_deref(),
        Some("+15550000002")
    );
    // The admin may overwrite.
    p.a.set_mobile("a", "+15550000004", 3).await.unwrap();
    assert_eq!(
        p.b.mobile("a").await.unwrap().as_deref(),
        Some("+15550000004")
    );
    assert_eq!(p.b.mobile("nobody").await.unwrap(), None);
}

pub async fn remove_user_forgets_everything(p: &Pair) {
    let l = lockout();
    p.a.set_mobile("a", "+15551234567", 5).await.unwrap();
    p.a.set_opt_out("a", true, 5).await.unwrap();
    p.b.set_opt_out("a", true, 6).await.unwrap(); // twice is once
    p.a.replace_backup_codes("a", vec![("ID1".into(), "h1".into())], 5)
        .await
        .unwrap();
    p.b.record_success("a", "tty", 5).await.unwrap();
    wrongs(p, "a", 1, 5).await;
    p.a.set_mobile("keep", "+15557654321", 5).await.unwrap();
    assert!(p.b.opted_out("a").await.unwrap());
    assert!(p.b.remove_user("a").await.unwrap());
    assert!(!p.a.remove_user("a").await.unwrap(), "nothing left");
    assert_eq!(p.a.backup_codes_left("a").await.unwrap(), 0);
    assert!(p.a.mobile("a").await.unwrap().is_none());
    assert!(!p.a.opted_out("a").await.unwrap());
    assert_eq!(p.a.last_success("a", "tty").await.unwrap(), None);
    assert_eq!(p.a.lock_state("a", 5).await.unwrap(), Default::default());
    assert!(p.a.begin_attempt(Budget::Sms, "a", 5, &l).await.unwrap() == Attempt::Granted);
    assert!(
        p.b.mobile("keep").await.unwrap().is_some(),
        "another user kept"
    );
    // Opting back in.
    p.a.set_opt_out("keep", true, 7).await.unwrap();
    p.b.set_opt_out("keep", false, 8).await.unwrap();
    assert!(!p.a.opted_out("keep").await.unwrap());
}

pub async fn grace_stamps_are_per_context(p: &Pair) {
    assert_eq!(p.a.last_success("a", "host:tty1").await.unwrap(), None);
    p.a.record_success("a", "host:tty1", 10).await.unwrap();
    p.b.record_success("a", "host:tty1", 20).await.unwrap();
    assert_eq!(p.a.last_success("a", "host:tty1").await.unwrap(), Some(20));
    assert_eq!(p.b.last_success("a", "other:tty1").await.unwrap(), None);
    assert_eq!(p.b.last_success("b", "host:tty1").await.unwrap(), None);
}

pub async fn racing_guesses_get_exactly_the_budget(p: &Pair) {
    let l = lockout();
    let out = race(p, 50, |s, _| async move {
        s.begin_attempt(Budget::Sms, "a", 10, &l).await.unwrap()
    })
    .await;
    let granted = out.iter().filter(|a| **a == Attempt::Granted).count();
    assert_eq!(granted, l.max_failures as usize, "{out:?}");
    // Judging them all wrong locks once, not once per guess.
    let l2 = l;
    race(p, granted, |s, _| async move {
        s.finish_attempt(Budget::Sms, "a", false, 11, &l2)
            .await
            .unwrap()
    })
    .await;
    let st = p.a.lock_state("a", 11).await.unwrap();
    assert_eq!(st.lockouts, 1, "{st:?}");
}

pub async fn racing_backup_guesses_get_exactly_the_backup_budget(p: &Pair) {
    let l = lockout();
    let out = race(p, 50, |s, _| async move {
        s.begin_attempt(Budget::Backup, "a", 10, &l).await.unwrap()
    })
    .await;
    let granted = out.iter().filter(|a| **a == Attempt::Granted).count();
    assert_eq!(granted, l.backup_max_failures as usize, "{out:?}");
}

pub async fn a_racing_backup_code_has_one_winner(p: &Pair) {
    p.a.replace_backup_codes("a", vec![("ID1".into(), "h1".into())], 5)
        .await
        .unwrap();
    let out = race(p, 20, |s, _| async move {
        s.spend_backup_code("a", "ID1", 6).await.unwrap()
    })
    .await;
    assert_eq!(out.iter().filter(|w| **w).count(), 1, "{out:?}");
    assert_eq!(p.b.backup_codes_left("a").await.unwrap(), 0);
}

pub async fn racing_sends_get_exactly_the_budget(p: &Pair) {
    let budget = SendBudget {
        per_user_per_hour: 4,
        per_rhost_per_hour: 100,
        global_per_hour: 100,
        global_scope: Default::default(),
        allowed_countries: vec![],
    };
    let resend = Resend {
        enabled: true,
        per_user_per_hour: 100,
        cooldown: Duration::from_secs(0),
    };
    let (budget, resend) = (Arc::new(budget), Arc::new(resend));
    let out = race(p, 30, |s, _| {
        let (budget, resend) = (Arc::clone(&budget), Arc::clone(&resend));
        async move {
            let req = SendRequest {
                host: "host-a",
                user: "a",
                rhost: Some("h"),
                kind: SendKind::First,
                budget: &budget,
                resend: &resend,
            };
            s.reserve_send(req, 1000).await.unwrap()
        }
    })
    .await;
    let allowed = out.iter().filter(|d| **d == SendDecision::Allowed).count();
    assert_eq!(allowed, 4, "{out:?}");
}

pub async fn a_racing_lock_notice_is_claimed_once(p: &Pair) {
    wrongs(p, "a", 3, 100).await;
    let out = race(p, 20, |s, _| async move {
        s.claim_lock_notice("a", 101).await.unwrap()
    })
    .await;
    let claimed: Vec<_> = out.iter().flatten().collect();
    assert_eq!(claimed, vec![&160], "{out:?}");
}

pub async fn racing_enrolments_store_one_number(p: &Pair) {
    let out = race(p, 20, |s, i| async move {
        let number = format!("+1555000{i:04}");
        s.add_mobile_if_none("a", &number, 1)
            .await
            .unwrap()
            .then_some(number)
    })
    .await;
    let winners: Vec<_> = out.into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        p.b.mobile("a").await.unwrap().as_deref(),
        Some(winners[0].as_str())
    );
}
