//! What the store keeps per user beside the guess budgets: the enrolled
//! number (a right guess enrols, never over an admin's), grace stamps per
//! context, opt-outs, and forgetting all of it.

use crate::suite::*;
use smsotpd::store::{Guess, GuessQuery, LockState};

/// A right guess of `user` that enrols `number`, stamping `ctx`.
fn enrol<'a>(user: &'a str, number: &'a str, l: &'a smsotp_config::Lockout) -> GuessQuery<'a> {
    GuessQuery {
        user,
        lockout: l,
        right: true,
        grace: Some("ctx"),
        enrol: Some(number),
    }
}

fn enrolled(g: &Guess) -> Option<bool> {
    match g {
        Guess::Judged { enrolled, .. } => *enrolled,
        Guess::Locked { .. } => None,
    }
}

pub async fn an_enrolment_never_overwrites_a_number(p: &Pair) {
    let l = lockout();
    let g = p.a.guess(enrol("new", "+15550000001", &l)).await.unwrap();
    assert_eq!(enrolled(&g), Some(true), "{g:?}");
    assert_eq!(
        p.b.mobile("new").await.unwrap().as_deref(),
        Some("+15550000001")
    );
    // Root set a number meanwhile: refused, kept, and no grace stamp.
    p.b.set_mobile("taken", "+15550000009").await.unwrap();
    let g = p.b.guess(enrol("taken", "+15550000002", &l)).await.unwrap();
    assert_eq!(enrolled(&g), Some(false), "{g:?}");
    assert_eq!(
        p.a.mobile("taken").await.unwrap().as_deref(),
        Some("+15550000009")
    );
    assert!(!in_grace(&*p.a, "taken", "ctx").await);
    // The admin may overwrite.
    p.a.set_mobile("new", "+15550000004").await.unwrap();
    assert_eq!(
        p.b.mobile("new").await.unwrap().as_deref(),
        Some("+15550000004")
    );
    assert_eq!(p.b.mobile("nobody").await.unwrap(), None);
}

pub async fn racing_enrolments_store_one_number(p: &Pair) {
    let out = race(p, 20, |s, i| async move {
        let (l, number) = (lockout(), format!("+1555000{i:04}"));
        let g = s.guess(enrol("u", &number, &l)).await.unwrap();
        (enrolled(&g), number)
    })
    .await;
    let winners: Vec<_> = out.iter().filter(|(e, _)| *e == Some(true)).collect();
    assert_eq!(winners.len(), 1, "{out:?}");
    let losers = out.iter().filter(|(e, _)| *e == Some(false)).count();
    assert_eq!(losers, 19, "{out:?}");
    assert_eq!(
        p.b.mobile("u").await.unwrap().as_deref(),
        Some(winners[0].1.as_str())
    );
}

pub async fn remove_user_forgets_everything(p: &Pair) {
    p.a.set_mobile("u", "+15551234567").await.unwrap();
    p.a.set_opt_out("u", true).await.unwrap();
    p.b.set_opt_out("u", true).await.unwrap(); // twice is once
    one_backup_code(p, "u").await;
    assert!(is_judged(&guess(&*p.b, "u", true).await)); // a grace stamp
    assert_eq!(wrongs(p, "u", 1).await.failures, 1);
    p.a.set_mobile("keep", "+15557654321").await.unwrap();
    assert!(p.b.opted_out("u").await.unwrap());
    assert!(in_grace(&*p.a, "u", TTY).await);
    assert!(p.b.remove_user("u").await.unwrap());
    assert!(!p.a.remove_user("u").await.unwrap(), "nothing left");
    assert_eq!(p.a.backup_codes_left("u").await.unwrap(), 0);
    assert!(p.a.mobile("u").await.unwrap().is_none());
    assert!(!p.a.opted_out("u").await.unwrap());
    assert!(!in_grace(&*p.b, "u", TTY).await);
    let lock = p.a.lock_state("u").await.unwrap().lock;
    assert_eq!(lock, LockState::default());
    assert_eq!(wrongs(p, "u", 1).await.failures, 1, "counted afresh");
    assert!(
        p.b.mobile("keep").await.unwrap().is_some(),
        "another user kept"
    );
    // Opting back in.
    p.a.set_opt_out("keep", true).await.unwrap();
    assert!(p.b.opted_out("keep").await.unwrap());
    p.b.set_opt_out("keep", false).await.unwrap();
    assert!(!p.a.opted_out("keep").await.unwrap());
}

pub async fn grace_stamps_are_per_context(p: &Pair) {
    assert!(!in_grace(&*p.a, "u", "host:tty1").await);
    // Two successes 200 s apart; 400 s after the first, only the later
    // stamp is within the grace of 300 s.
    for s in [&p.a, &p.b] {
        assert!(is_judged(
            &guess_in(&**s, "u", true, Some("host:tty1")).await
        ));
        p.clock.advance(200);
    }
    assert!(in_grace(&*p.a, "u", "host:tty1").await);
    assert!(!in_grace(&*p.b, "u", "other:tty1").await);
    assert!(!in_grace(&*p.b, "v", "host:tty1").await);
    // And the grace ends 300 s after the later one.
    p.clock.advance(100);
    assert!(!in_grace(&*p.a, "u", "host:tty1").await);
}
