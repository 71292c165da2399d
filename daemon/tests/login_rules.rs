//! The rules that decide a login, in-process on the fixed clock (see
//! `flow_support`): the grace period, opt-out, resend and its cooldown,
//! and the escalation of lockouts with their once-per-lockout notice.
//! Each step asserts the answer, the SMS the outbox holds and, where a
//! rule is about what the store is asked, the store requests made.

mod flow_support;

use flow_support::{challenge, on_tty, wrong, Flow, ROOT_MOBILE, SMS_VERIFIED, START};
use smsotp_proto::{Response, SkipReason};
use smsotpd::store::Store;

/// Grace on every service; budgets wide enough for every Begin here.
const GRACE: &str = "[policy]\ngrace_seconds = 300\n[send_budget]\nper_user_per_hour = 100\n";

#[tokio::test]
async fn a_right_sudo_code_skips_the_same_tty_for_the_grace_seconds_only() {
    let f = Flow::new(GRACE);
    let (login, resp) = f.begin_with(on_tty("sudo", "/dev/pts/1")).await;
    challenge(resp);
    let (resp, _) = login.unwrap().verify(&f.state, &f.last_code()).await;
    assert_eq!(resp, SMS_VERIFIED);
    assert_eq!((f.sent(), f.store.requests()), (1, 2));

    // One second before the grace ends: skipped, one store request, no SMS.
    f.clock.advance(299);
    let (_, resp) = f.begin_with(on_tty("sudo", "/dev/pts/1")).await;
    assert_eq!(
        resp,
        Response::Skip {
            reason: SkipReason::GracePeriod
        }
    );
    assert_eq!((f.sent(), f.store.requests()), (1, 3));

    // Another tty, and another service of sudo's family on the same tty:
    // each is its own context, so each gets a code.
    let (login, resp) = f.begin_with(on_tty("sudo", "/dev/pts/2")).await;
    challenge(resp);
    assert_eq!(f.sent(), 2, "another tty");
    let (_, resp) = f.begin_with(on_tty("sudo-i", "/dev/pts/1")).await;
    challenge(resp);
    assert_eq!(f.sent(), 3, "another service");

    // A challenge that only failed grants no grace on its tty.
    let (resp, _) = login.unwrap().verify(&f.state, "0").await;
    assert!(matches!(resp, Response::Wrong { .. }), "{resp:?}");
    let (_, resp) = f.begin_with(on_tty("sudo", "/dev/pts/2")).await;
    challenge(resp);
    assert_eq!(f.sent(), 4, "a wrong code is no success");

    // The grace ends 300 s after the success, and the skip at 299 did
    // not renew it.
    f.clock.advance(1);
    let (_, resp) = f.begin_with(on_tty("sudo", "/dev/pts/1")).await;
    challenge(resp);
    assert_eq!(f.sent(), 5, "grace over");
}

#[tokio::test]
async fn an_opt_out_skips_where_the_policy_allows_it_and_not_where_mandatory() {
    let f = Flow::new("[policy]\nmandatory = false\n[service.sudo]\nmandatory = true\n");
    f.store.set_opt_out("root", true).await.unwrap();
    let before = f.store.requests();
    let (_, resp) = f.begin().await;
    assert_eq!(
        resp,
        Response::Skip {
            reason: SkipReason::OptedOut
        }
    );
    assert_eq!((f.sent(), f.store.requests() - before), (0, 1));

    // sudo is mandatory: the same opted-out user gets a code.
    let (_, resp) = f.begin_with(on_tty("sudo", "/dev/pts/1")).await;
    challenge(resp);
    assert_eq!(f.sent(), 1);
    assert_eq!(f.outbox()[0]["to"], ROOT_MOBILE);

    // Opted back in: sshd asks for a code again.
    f.store.set_opt_out("root", false).await.unwrap();
    let (_, resp) = f.begin().await;
    challenge(resp);
    assert_eq!(f.sent(), 2);
}

#[tokio::test]
async fn a_resend_inside_the_cooldown_is_refused_and_after_it_replaces_the_code() {
    // Eight digits: a new code equal to the old one is a 1e-8 chance.
    let f = Flow::new("[resend]\ncooldown_seconds = 30\n[otp]\nlength = 8\n");
    let (login, resp) = f.begin().await;
    assert_eq!(challenge(resp).resends_left, 3);
    let mut login = login.unwrap();
    let old = f.last_code();

    f.clock.advance(10);
    let (resp, _) = login.resend(&f.state).await;
    assert_eq!(
        resp,
        Response::ResendRefused {
            reason: "a code was sent moments ago; try again in 20 s".into()
        }
    );
    // The refusal was the store's (its send log), and sent nothing.
    assert_eq!((f.sent(), f.store.requests()), (1, 2));

    f.clock.advance(20);
    let (resp, _) = login.resend(&f.state).await;
    // The refused resend did not use one of the three.
    assert_eq!(challenge(resp).resends_left, 2);
    assert_eq!((f.sent(), f.store.requests()), (2, 3));
    assert_eq!(f.outbox()[1]["to"], ROOT_MOBILE);
    let new = f.last_code();
    assert_ne!(old, new);

    // The old code died with the resend; the new one logs in.
    let (resp, _) = login.verify(&f.state, &old).await;
    assert_eq!(resp, Response::Wrong { attempts_left: 2 });
    let (resp, _) = login.verify(&f.state, &new).await;
    assert_eq!(resp, SMS_VERIFIED);
}

/// Two wrong codes lock; each lockout is `ratio` times the one before.
const ESCALATING: &str = "[lockout]\nmax_failures = 2\nduration_seconds = 100\nratio = 3\n\
                          [otp]\nmax_attempts = 5\n";

/// A login answered with two wrong codes at `now` on the store's clock:
/// asserts it locks for `secs` as the store's `nth` lockout and that the
/// outbox then holds `sent` SMS, the last the owner's notice; its body.
async fn lock_out(f: &Flow, now: i64, secs: u64, nth: u32, sent: usize) -> String {
    let (login, resp) = f.begin().await;
    challenge(resp);
    let mut login = login.unwrap();
    let code = wrong(&f.last_code());
    let (resp, _) = login.verify(&f.state, &code).await;
    assert_eq!(resp, Response::Wrong { attempts_left: 4 });
    let (resp, _) = login.verify(&f.state, &code).await;
    assert_eq!(
        resp,
        Response::Locked {
            retry_after_secs: secs
        }
    );
    let lock = f.store.lock_state("root").await.unwrap().lock;
    assert_eq!(
        (lock.locked_until, lock.lockouts),
        (Some(now + secs as i64), nth)
    );
    assert_eq!(f.sent_after_notices(sent).await, sent);
    let notice = f.outbox().pop().unwrap();
    assert_eq!(notice["to"], ROOT_MOBILE);
    notice["body"].as_str().unwrap().to_string()
}

/// A Begin during the lock: refused for `secs`, and no one is told
/// again (the outbox still holds `sent`).
async fn still_locked(f: &Flow, secs: u64, sent: usize) {
    let (_, resp) = f.begin().await;
    assert_eq!(
        resp,
        Response::Locked {
            retry_after_secs: secs
        }
    );
    assert_eq!(f.sent_after_notices(sent).await, sent);
}

#[tokio::test]
async fn lockouts_grow_by_the_ratio_and_each_is_told_once() {
    let f = Flow::new(ESCALATING);
    // The code, then the notice.
    let body = lock_out(&f, START, 100, 1, 2).await;
    assert!(
        body.contains("SMS codes are locked until 2026-11-30 00:55 UTC"),
        "{body}"
    );
    f.clock.advance(50);
    still_locked(&f, 50, 2).await;

    // Once it ends, two wrong codes lock again, three times as long: the
    // second login's code and the second lockout's one notice.
    f.clock.advance(50);
    let body = lock_out(&f, START + 100, 300, 2, 4).await;
    assert!(body.contains("locked until 2026-11-30 01:00 UTC"), "{body}");
    f.clock.advance(299);
    still_locked(&f, 1, 4).await;
}
