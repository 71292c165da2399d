//! The login flow in-process: `Login` driven directly on a temporary
//! SQLite store with a fixed clock and the outbox provider, so the rules
//! run in milliseconds without PAM. Each test also counts store requests
//! (one hand-off to the store thread, at most one transaction each): the
//! figure a login costs.

mod flow_support;

use flow_support::{wrong, Flow, SMS_VERIFIED};
use smsotp_proto::{Response, VerifyMethod};

#[tokio::test]
async fn a_login_costs_one_store_request_per_protocol_request() {
    let f = Flow::new("");
    let (login, resp) = f.begin().await;
    assert!(matches!(resp, Response::Challenge(_)), "{resp:?}");
    assert_eq!((f.store.requests(), f.sent()), (1, 1), "begin");
    let mut login = login.unwrap();
    let code = f.last_code();
    let (resp, _) = login.verify(&f.state, &wrong(&code)).await;
    assert!(matches!(resp, Response::Wrong { .. }), "{resp:?}");
    assert_eq!(f.store.requests(), 2, "a wrong guess");
    // Past the resend cooldown, on the store's clock.
    f.clock.advance(60);
    let (resp, _) = login.resend(&f.state).await;
    assert!(matches!(resp, Response::Challenge(_)), "{resp:?}");
    assert_eq!((f.store.requests(), f.sent()), (3, 2), "resend");
    let (resp, _) = login.verify(&f.state, &f.last_code()).await;
    assert_eq!(resp, SMS_VERIFIED);
    assert_eq!(f.store.requests(), 4, "a right guess");
}

#[tokio::test]
async fn wrong_codes_lock_until_the_store_clock_passes_the_lock() {
    let f =
        Flow::new("[lockout]\nmax_failures = 3\nduration_seconds = 120\n[otp]\nmax_attempts = 5\n");
    let (login, _) = f.begin().await;
    let mut login = login.unwrap();
    let code = f.last_code();
    for _ in 0..2 {
        let (resp, _) = login.verify(&f.state, &wrong(&code)).await;
        assert!(matches!(resp, Response::Wrong { .. }), "{resp:?}");
    }
    let before = f.store.requests();
    let (resp, _) = login.verify(&f.state, &wrong(&code)).await;
    assert_eq!(
        resp,
        Response::Locked {
            retry_after_secs: 120
        }
    );
    // The guess, and the look that claims the owner's notice.
    assert_eq!(f.store.requests() - before, 2);
    // A new login is refused for as long as the store's clock says.
    f.clock.advance(119);
    let (_, resp) = f.begin().await;
    assert_eq!(
        resp,
        Response::Locked {
            retry_after_secs: 1
        }
    );
    f.clock.advance(1);
    let (_, resp) = f.begin().await;
    assert!(matches!(resp, Response::Challenge(_)), "{resp:?}");
    // Codes sent: the first login's, the lockout notice, the new login's.
    assert_eq!(f.sent_after_notices(3).await, 3);
}

#[tokio::test]
async fn a_backup_code_logs_in_through_two_store_requests_and_once_only() {
    let f = Flow::new("");
    let codes = f.state.hashing.generate(2).await.unwrap();
    let pairs = codes
        .iter()
        .map(|c| (c.id.clone(), c.hash.clone()))
        .collect();
    use smsotpd::store::Store;
    f.store.replace_backup_codes("root", pairs).await.unwrap();
    let (login, _) = f.begin().await;
    let mut login = login.unwrap();
    let before = f.store.requests();
    let (resp, _) = login.verify(&f.state, &codes[0].display).await;
    assert_eq!(
        resp,
        Response::Verified {
            method: VerifyMethod::BackupCode,
            backup_codes_left: Some(1)
        }
    );
    assert_eq!(f.store.requests() - before, 2, "charge + settle");
    // Spent: the same code is wrong on the next login.
    let (login, _) = f.begin().await;
    let (resp, _) = login.unwrap().verify(&f.state, &codes[0].display).await;
    assert!(matches!(resp, Response::Wrong { .. }), "{resp:?}");
}

#[tokio::test]
async fn the_send_budget_refuses_the_next_begin_without_a_send() {
    let f = Flow::new("[send_budget]\nper_user_per_hour = 2\n");
    for _ in 0..2 {
        let (_, resp) = f.begin().await;
        assert!(matches!(resp, Response::Challenge(_)), "{resp:?}");
    }
    let (_, resp) = f.begin().await;
    assert!(
        matches!(
            resp,
            Response::SendRefused {
                // Sends count per minute: START's (which ends 40 s
                // later) leaves the window an hour after it ends.
                retry_after_secs: Some(3640),
                ..
            }
        ),
        "{resp:?}"
    );
    assert_eq!((f.sent(), f.store.requests()), (2, 3));
    // The hour passes on the store's clock, and the minute after it.
    f.clock.advance(3640);
    let (_, resp) = f.begin().await;
    assert!(matches!(resp, Response::Challenge(_)), "{resp:?}");
}

/// Not a test: begin + right verify cycles per second on SQLite
/// (sync = normal), one after another, outbox provider. Prints, asserts
/// nothing about time. `cargo test -p smsotpd --test login_flow -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_begin_verify_cycles() {
    let f = Flow::new(
        "[send_budget]\nper_user_per_hour = 10000\nper_rhost_per_hour = 100000\nglobal_per_hour = 1000000\n",
    );
    let cycles = 2000;
    let started = std::time::Instant::now();
    for _ in 0..cycles {
        let (login, resp) = f.begin().await;
        assert!(matches!(resp, Response::Challenge(_)), "{resp:?}");
        let (resp, _) = login.unwrap().verify(&f.state, &f.last_code()).await;
        assert!(matches!(resp, Response::Verified { .. }), "{resp:?}");
        // Two seconds a cycle: the send log holds ~1800 rows of the hour.
        f.clock.advance(2);
    }
    let took = started.elapsed();
    println!(
        "{cycles} begin+verify cycles in {:.2} s: {:.0} cycles/s, {} store requests",
        took.as_secs_f64(),
        f64::from(cycles) / took.as_secs_f64(),
        f.store.requests()
    );
}

/// Not a test: the store's part of a cycle alone, `challenge` (a Begin
/// that sends) then `guess` (a right code), on SQLite with sync = normal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_store_requests_per_cycle() {
    use smsotp_config::Mobile;
    use smsotpd::store::{ChallengeQuery, GuessQuery, Number, SendKind, SendRequest, Store};
    let f = Flow::new(
        "[send_budget]\nper_user_per_hour = 10000\nper_rhost_per_hour = 100000\nglobal_per_hour = 1000000\n",
    );
    let rt = f.state.runtime();
    let mobile = Mobile::parse("+15551234567").unwrap();
    // SMSOTP_MEASURE_STEP: seconds between cycles on the store's clock,
    // so the hour of sends the budgets scan is 3600 / step rows deep.
    let step: i64 = std::env::var("SMSOTP_MEASURE_STEP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let cycles = 5000;
    let started = std::time::Instant::now();
    for _ in 0..cycles {
        let q = ChallengeQuery {
            grace: None,
            opt_out_counts: true,
            number: Number::Given(&mobile),
            backup_counts: true,
            send_without_number: false,
            reserve: true,
            notice: true,
            send: SendRequest {
                user: "root",
                rhost: Some("203.0.113.9"),
                host: "h",
                kind: SendKind::First,
                budget: &rt.config.send_budget,
                resend: &rt.config.resend,
            },
        };
        f.store.challenge(q).await.unwrap();
        let g = GuessQuery {
            user: "root",
            lockout: &rt.config.lockout,
            right: true,
            grace: None,
            enrol: None,
        };
        f.store.guess(g).await.unwrap();
        f.clock.advance(step);
    }
    let took = started.elapsed();
    println!(
        "send log {} deep: {cycles} challenge+guess cycles in {:.2} s: {:.0} cycles/s, {:.0} us a cycle",
        (3600 / step.max(1)).clamp(1, cycles.into()),
        took.as_secs_f64(),
        f64::from(cycles) / took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / f64::from(cycles)
    );
}
