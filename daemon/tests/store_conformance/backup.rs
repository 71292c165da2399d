//! Backup codes: a guess is charged and its hash fetched in one
//! transaction, argon2 runs outside, and a second transaction spends the
//! code and settles the guess. Codes are spent once, and their guesses
//! have a budget of their own.

use crate::suite::*;
use smsotp_config::GlobalScope;
use smsotpd::store::{BackupCharge, LockState};

pub async fn backup_codes_spend_once(p: &Pair) {
    let l = lockout();
    let codes = vec![("ID1".into(), "h1".into()), ("ID2".into(), "h2".into())];
    p.a.replace_backup_codes("u", codes).await.unwrap();
    let hash = |h: Option<&str>| BackupCharge::Granted {
        hash: h.map(str::to_string),
    };
    assert_eq!(
        p.b.backup_charge("u", "ID1", &l).await.unwrap(),
        hash(Some("h1"))
    );
    assert_eq!(
        p.a.backup_charge("v", "ID2", &l).await.unwrap(),
        hash(None),
        "another user's code"
    );
    let won =
        p.b.backup_settle(settle("u", "ID1", &l, true))
            .await
            .unwrap();
    assert_eq!((won.spent, won.left), (true, 1));
    let again =
        p.a.backup_settle(settle("u", "ID1", &l, true))
            .await
            .unwrap();
    assert_eq!((again.spent, again.left), (false, 1), "spent twice");
    assert_eq!(p.a.backup_charge("u", "ID1", &l).await.unwrap(), hash(None));
    assert_eq!(p.b.backup_codes_left("u").await.unwrap(), 1);
    // A new set replaces the old one whole.
    p.b.replace_backup_codes("u", vec![("ID3".into(), "h3".into())])
        .await
        .unwrap();
    assert_eq!(p.a.backup_charge("u", "ID2", &l).await.unwrap(), hash(None));
    assert_eq!(p.a.backup_codes_left("u").await.unwrap(), 1);
}

pub async fn backup_guesses_have_their_own_budget(p: &Pair) {
    let (l, t0) = (lockout(), p.now());
    one_backup_code(p, "u").await;
    // The SMS budget (3) spent and locked ...
    assert_eq!(wrongs(p, "u", 3).await.locked_until, Some(t0 + 60));
    // ... leaves the backup budget (2) whole: two wrong backup guesses
    // are judged, and the second locks backup codes to the window's end.
    p.clock.advance(1);
    let until = t0 + 1 + 3600;
    for (i, (charge, settler)) in [(&p.a, &p.b), (&p.b, &p.a)].into_iter().enumerate() {
        assert_eq!(
            charge.backup_charge("u", "ID1", &l).await.unwrap(),
            BackupCharge::Granted {
                hash: Some("h1".into())
            }
        );
        let s = settler
            .backup_settle(settle("u", "ID1", &l, false))
            .await
            .unwrap();
        assert_eq!(
            (s.spent, s.left, s.locked_until),
            (false, 1, (i == 1).then_some(until))
        );
    }
    assert_eq!(
        p.a.backup_charge("u", "ID1", &l).await.unwrap(),
        BackupCharge::Locked { now: t0 + 1, until }
    );
    // A Begin sees the backup lock, of this user only.
    let b = budget(10, 100, GlobalScope::Host);
    let look = |user| Begin {
        backup_counts: true,
        look: true,
        ..Begin::new(user, &b)
    };
    assert_eq!(look("u").on(&*p.b).await.backup_locked_until, Some(until));
    assert_eq!(look("v").on(&*p.b).await.backup_locked_until, None);
    let sms = p.b.lock_state("u").await.unwrap().lock;
    assert_eq!(sms.locked_until, Some(t0 + 60), "SMS lock unchanged");
    // And back: once the SMS lock ends, SMS guesses are judged while
    // backup codes stay locked.
    p.clock.advance(59);
    assert_eq!(judged(guess(&*p.a, "u", false).await).failures, 1);
    // unlock lifts both locks.
    assert!(p.b.unlock("u").await.unwrap());
    assert!(matches!(
        p.a.backup_charge("u", "ID1", &l).await.unwrap(),
        BackupCharge::Granted { .. }
    ));
    let sms = p.a.lock_state("u").await.unwrap().lock;
    assert_eq!(sms, LockState::default());
}

pub async fn a_spent_backup_budget_without_a_lock_becomes_the_lockout(p: &Pair) {
    // A daemon stopped during argon2 leaves its guess charged and never
    // settled, so charges can spend the budget with no lock set: the next
    // charge sets it, and guesses still in flight do not lock again.
    let (l, t0) = (lockout(), p.now());
    let until = t0 + 3600;
    for s in [&p.a, &p.b] {
        assert_eq!(
            s.backup_charge("u", "ID1", &l).await.unwrap(),
            BackupCharge::Granted { hash: None }
        );
    }
    p.clock.advance(10);
    assert_eq!(
        p.a.backup_charge("u", "ID1", &l).await.unwrap(),
        BackupCharge::Locked {
            now: t0 + 10,
            until
        }
    );
    // A second lock would end a window later (t0 + 7200).
    let late =
        p.b.backup_settle(settle("u", "ID1", &l, false))
            .await
            .unwrap();
    assert_eq!(late.locked_until, Some(until));
    assert_eq!(
        p.b.backup_charge("u", "ID1", &l).await.unwrap(),
        BackupCharge::Locked {
            now: t0 + 10,
            until
        }
    );
}

pub async fn racing_backup_guesses_get_exactly_the_backup_budget(p: &Pair) {
    let l = lockout();
    let out = race(p, 50, |s, _| async move {
        s.backup_charge("u", "ID1", &l).await.unwrap()
    })
    .await;
    let granted = out
        .iter()
        .filter(|c| matches!(c, BackupCharge::Granted { .. }))
        .count();
    assert_eq!(granted, l.backup_max_failures as usize, "{out:?}");
}

pub async fn a_racing_backup_code_has_one_winner(p: &Pair) {
    one_backup_code(p, "u").await;
    let out = race(p, 20, |s, _| async move {
        let l = lockout();
        s.backup_settle(settle("u", "ID1", &l, true)).await.unwrap()
    })
    .await;
    assert_eq!(out.iter().filter(|s| s.spent).count(), 1, "{out:?}");
    assert_eq!(p.b.backup_codes_left("u").await.unwrap(), 0);
}
