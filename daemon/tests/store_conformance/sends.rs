//! Requests that may text a code: what one `Begin` skips or sends, and the
//! send budgets (per user, per rhost, global per host or fleet, resends
//! and their cooldown) it reserves against.

use crate::suite::*;
use smsotp_config::{GlobalScope, Mobile, Resend, SendBudget};
use smsotpd::rules::challenge::Step;
use smsotpd::store::{SendDecision, SendKind};
use std::sync::Arc;
use std::time::Duration;

pub async fn a_begin_skips_or_sends_in_one_call(p: &Pair) {
    let b = budget(2, 100, GlobalScope::Host);
    p.a.set_mobile("u", "+15551234567").await.unwrap();
    // A success in the grace context, 10 s ago.
    assert!(is_judged(&guess(&*p.b, "u", true).await));
    p.clock.advance(10);
    let now = p.now();
    let begin = Begin::new("u", &b);
    let out = begin.on(&*p.a).await;
    assert_eq!(out.now, now);
    assert_eq!(out.step, Step::Send);
    assert_eq!(out.send, Some(SendDecision::Allowed));
    assert_eq!(out.stored, Mobile::parse("+15551234567").ok());
    // An opt-out that counts skips, and reserves nothing.
    p.b.set_opt_out("u", true).await.unwrap();
    let opted = Begin {
        opt_out_counts: true,
        ..Begin::new("u", &b)
    };
    let out = opted.on(&*p.b).await;
    assert_eq!((out.step, out.send), (Step::OptedOut, None));
    // A recent success in the grace context skips before anything else.
    let graced = Begin {
        grace: Some((TTY, 300)),
        ..opted
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
    for (i, user) in ["a", "b", "c", "d"].iter().enumerate() {
        p.a.set_mobile(user, &format!("+1555123000{i}"))
            .await
            .unwrap();
    }
    let send = |user, rhost, kind| Begin {
        rhost,
        kind,
        resend,
        ..Begin::new(user, &budget)
    };
    let refused = |reason: &str, retry_after| {
        Some(SendDecision::Refused {
            reason: reason.into(),
            retry_after: Some(retry_after),
        })
    };
    let (first, again) = (SendKind::First, SendKind::Resend);
    let allowed = Some(SendDecision::Allowed);
    assert_eq!(send("a", Some("h1"), first).on(&*p.a).await.send, allowed);
    // The cooldown applies to resends.
    p.clock.advance(10);
    assert_eq!(
        send("a", Some("h1"), again).on(&*p.b).await.send,
        refused("a code was sent moments ago", 20)
    );
    p.clock.advance(20);
    assert_eq!(send("a", Some("h1"), again).on(&*p.b).await.send, allowed);
    // Resends per hour: 1.
    p.clock.advance(70);
    assert_eq!(
        send("a", Some("h1"), again).on(&*p.a).await.send,
        refused(
            "too many codes were resent for this account in the last hour",
            3540
        )
    );
    assert_eq!(send("a", Some("h1"), first).on(&*p.a).await.send, allowed);
    // Per user: 3 in the hour.
    p.clock.advance(100);
    assert_eq!(
        send("a", Some("h2"), first).on(&*p.b).await.send,
        refused(
            "this account has had too many codes sent in the last hour",
            3440
        )
    );
    // Per rhost: 4 (3 from a and this one).
    assert_eq!(send("b", Some("h1"), first).on(&*p.b).await.send, allowed);
    assert_eq!(
        send("c", Some("h1"), first).on(&*p.a).await.send,
        refused(
            "too many codes were sent for logins from this address in the last hour",
            3440
        )
    );
    // Global: 5.
    assert_eq!(send("c", None, first).on(&*p.a).await.send, allowed);
    assert_eq!(
        send("d", None, first).on(&*p.b).await.send,
        refused("the service has reached its hourly SMS limit", 3440)
    );
    // Sends count per minute: the first minute's (START is 20 s into
    // one) leave the window together an hour after that minute ends, and
    // then everything is free again.
    p.clock.advance(3640 - 1 - 200);
    assert_eq!(
        send("d", None, first).on(&*p.b).await.send,
        refused("the service has reached its hourly SMS limit", 1)
    );
    p.clock.advance(1);
    assert_eq!(send("d", None, first).on(&*p.b).await.send, allowed);
}

pub async fn racing_sends_get_exactly_the_budget(p: &Pair) {
    p.a.set_mobile("u", "+15551234567").await.unwrap();
    let b = Arc::new(budget(4, 100, GlobalScope::Fleet));
    let out = race(p, 30, |s, _| {
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
        p.a.set_mobile(u, &format!("+1555123000{i}")).await.unwrap();
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
