//! `[lockout]` through real libpam: wrong codes are charged to the user
//! across logins, services and hosts; at `max_failures` the user's SMS
//! codes are locked (no SMS is sent while locked); `smsotpctl unlock` lifts
//! it; each further lockout lasts `ratio` times longer; a restart of the
//! daemon keeps all of it.

use smsotp_tests::daemon::Daemon;
use smsotp_tests::flows::*;
use smsotp_tests::libpam::{Outcome, PAM_AUTH_ERR, PAM_MAXTRIES, PAM_SUCCESS};
use smsotp_tests::outbox::{wrong_code, Outbox};
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::policy_kit::*;
use smsotp_tests::{require_root, unique_name};
use std::time::Duration;

const MOBILE: &str = "+15551230001";
const SERVICE: &str = "pol-lock";
const OTHER_SERVICE: &str = "pol-lock-other";
const LOCKED_PREFIX: &str = "Too many wrong codes: SMS codes are locked for this account for ";

fn setup(user: &str, b: smsotp_tests::daemon::DaemonBuilder) -> (Daemon, PamConfDir) {
    require_root("only root may ask the daemon for another user's code");
    let d = b.user(user, MOBILE).start();
    let pamd = PamConfDir::new();
    pamd.smsotp_service(SERVICE, &d.socket(), "timeout=10");
    pamd.smsotp_service(OTHER_SERVICE, &d.socket(), "timeout=10");
    (d, pamd)
}

/// Answers every code prompt with a wrong code.
fn always_wrong(
    outbox: &Outbox,
) -> impl FnMut(&smsotp_tests::libpam::Prompt<'_>) -> Option<String> + '_ {
    move |p| {
        assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
        Some(wrong_code(&outbox.last_code()))
    }
}

/// The seconds in `...locked for this account for N s.` / `N min.`
/// (minutes as seconds, rounded up as the module rounds).
fn locked_secs(outcome: &Outcome) -> u64 {
    let errors = outcome.transcript.errors();
    let msg = errors
        .iter()
        .find(|e| e.starts_with(LOCKED_PREFIX))
        .unwrap_or_else(|| panic!("no lockout message: {outcome}"));
    let rest = &msg[LOCKED_PREFIX.len()..];
    if let Some(n) = rest.strip_suffix(" s.") {
        n.parse().expect("seconds")
    } else if let Some(n) = rest.strip_suffix(" min.") {
        n.parse::<u64>().expect("minutes") * 60
    } else {
        panic!("lockout message does not end in ` s.` or ` min.`: {msg:?}")
    }
}

/// A login refused at `Begin` because the user is locked: no prompt, the
/// lockout message, PAM_AUTH_ERR, and no SMS.
fn assert_locked_at_begin(pamd: &PamConfDir, service: &str, user: &str, d: &Daemon) -> u64 {
    let before = d.outbox().code_count();
    let outcome = login_with(
        pamd,
        service,
        user,
        Items::rhost("198.51.100.20"),
        no_prompt,
    );
    outcome.assert_code(PAM_AUTH_ERR);
    assert_eq!(outcome.transcript.errors().len(), 1, "{outcome}");
    let secs = locked_secs(&outcome);
    assert_eq!(
        d.outbox().code_count(),
        before,
        "no SMS may be sent to a locked user"
    );
    secs
}

#[test]
fn wrong_codes_add_up_across_logins_until_locked_and_unlock_lifts_it() {
    let user = unique_name("lock");
    let (d, pamd) = setup(
        &user,
        Daemon::builder()
            .otp("max_attempts = 2")
            .section("lockout", "max_failures = 3")
            .section("lockout", "duration_seconds = 600"),
    );
    let outbox = d.outbox();

    // Login 1, from one host: both tries of the code wrong (2 of 3).
    let first = login_with(
        &pamd,
        SERVICE,
        &user,
        Items::rhost("192.0.2.1"),
        always_wrong(&outbox),
    );
    first.assert_code(PAM_MAXTRIES);
    assert_code_prompted(&first);
    assert_eq!(
        first.transcript.errors(),
        vec![wrong_code_msg(1).as_str(), MSG_TRIES_EXHAUSTED],
        "{first}"
    );
    let st = status_json(&d.socket(), &user);
    assert_eq!(st["recent_failures"], 2, "{st}");
    assert_eq!(st["locked"], false, "{st}");

    // Login 2, another service from another host: its first wrong code is
    // the user's third, which locks. The new challenge had 2 tries of its
    // own; the user's budget decides.
    let second = login_with(
        &pamd,
        OTHER_SERVICE,
        &user,
        Items::rhost("203.0.113.2"),
        always_wrong(&outbox),
    );
    second.assert_code(PAM_AUTH_ERR);
    assert_code_prompted(&second);
    assert_eq!(second.transcript.code_prompts().len(), 1, "{second}");
    assert_eq!(
        second.transcript.errors(),
        vec!["Too many wrong codes: SMS codes are locked for this account for 10 min."],
        "{second}"
    );
    assert_eq!(outbox.code_count(), 2);
    let st = status_json(&d.socket(), &user);
    assert_eq!(st["locked"], true, "{st}");
    assert_eq!(st["lockouts"], 1, "{st}");
    let left = st["locked_for_secs"].as_u64().expect("locked_for_secs");
    assert!((590..=600).contains(&left), "{st}");

    // Login 3: refused before any SMS, on either service.
    assert_eq!(assert_locked_at_begin(&pamd, SERVICE, &user, &d), 600);
    assert_eq!(assert_locked_at_begin(&pamd, OTHER_SERVICE, &user, &d), 600);

    // The admin lifts it.
    let ran = ctl(&d.socket(), &["unlock", &user]);
    ran.expect_code(0);
    assert!(ran.stdout.contains("unlocked"), "{ran:?}");
    let st = status_json(&d.socket(), &user);
    assert_eq!(st["locked"], false, "{st}");
    assert_eq!(st["recent_failures"], 0, "{st}");

    // Login 4: an SMS again, and the right code lets the user in.
    let ok = login_with(
        &pamd,
        SERVICE,
        &user,
        Items::rhost("192.0.2.1"),
        type_newest_code(&outbox),
    );
    ok.assert_code(PAM_SUCCESS);
    assert_code_prompted(&ok);
    assert!(ok.transcript.errors().is_empty(), "{ok}");
    assert_eq!(outbox.code_count(), 3);
    assert!(
        !events(&d, "locked", &user, &[]).is_empty(),
        "the lockout is audited:\n{}",
        d.log()
    );
    assert!(
        !events(&d, "unlocked", &user, &[]).is_empty(),
        "the unlock is audited:\n{}",
        d.log()
    );
    d.assert_log_clean(&[]);
}

#[test]
fn a_right_code_clears_the_failure_count() {
    let user = unique_name("lockclr");
    let (d, pamd) = setup(
        &user,
        Daemon::builder().section("lockout", "max_failures = 2"),
    );
    let outbox = d.outbox();
    for round in 0..3 {
        // One wrong code, then the right one: never two in a row.
        let outcome = login_with(&pamd, SERVICE, &user, Items::default(), |p| {
            let code = outbox.last().code();
            Some(if p.index == 0 {
                wrong_code(&code)
            } else {
                code
            })
        });
        outcome.assert_code(PAM_SUCCESS);
        assert_eq!(
            outcome.transcript.errors(),
            vec![wrong_code_msg(2)],
            "round {round}: {outcome}"
        );
    }
    let st = status_json(&d.socket(), &user);
    assert_eq!(st["locked"], false, "{st}");
    assert_eq!(st["recent_failures"], 0, "{st}");
    d.assert_log_clean(&[]);
}

/// The first lockout expires by time (10 s, the minimum); the second lasts
/// `ratio` (3) times as long. Both survive a restart. About 11 s: the
/// only way to see the growth without the admin's unlock, which clears the
/// lockout history too.
#[test]
fn second_lockout_lasts_ratio_times_longer_and_survives_restart() {
    let user = unique_name("lockx");
    let (mut d, pamd) = setup(
        &user,
        Daemon::builder()
            .section("lockout", "max_failures = 1")
            .section("lockout", "duration_seconds = 10")
            .section("lockout", "ratio = 3")
            .section("lockout", "max_duration_seconds = 600"),
    );
    let outbox = d.outbox();

    let first = login_with(
        &pamd,
        SERVICE,
        &user,
        Items::default(),
        always_wrong(&outbox),
    );
    first.assert_code(PAM_AUTH_ERR);
    assert_code_prompted(&first);
    assert!((9..=10).contains(&locked_secs(&first)), "{first}");
    let st = status_json(&d.socket(), &user);
    assert_eq!(st["lockouts"], 1, "{st}");
    let first_len = st["locked_for_secs"].as_u64().expect("locked_for_secs");
    assert!((8..=10).contains(&first_len), "{st}");

    // A restart keeps the lock.
    d.restart();
    let st = status_json(&d.socket(), &user);
    assert_eq!(st["locked"], true, "after restart: {st}");
    assert_eq!(st["lockouts"], 1, "after restart: {st}");
    let secs = assert_locked_at_begin(&pamd, SERVICE, &user, &d);
    assert!((1..=10).contains(&secs), "{secs}");

    // Wait (bounded) for the first lockout to run out.
    let unlocked = wait_until(Duration::from_secs(13), || {
        let st = status_json(&d.socket(), &user);
        (st["locked"] == false).then_some(st)
    });
    let st = unlocked.expect("the first lockout (10 s) did not end within 13 s");
    assert_eq!(
        st["lockouts"], 1,
        "the history stays after a lock expires: {st}"
    );

    // The next wrong code locks again, three times as long.
    let second = login_with(
        &pamd,
        SERVICE,
        &user,
        Items::default(),
        always_wrong(&outbox),
    );
    second.assert_code(PAM_AUTH_ERR);
    assert_code_prompted(&second);
    assert!((29..=30).contains(&locked_secs(&second)), "{second}");
    let st = status_json(&d.socket(), &user);
    assert_eq!(st["lockouts"], 2, "{st}");
    let second_len = st["locked_for_secs"].as_u64().expect("locked_for_secs");
    assert!(
        (28..=30).contains(&second_len),
        "second lockout should be 3 x 10 s: {st}"
    );

    d.restart();
    let st = status_json(&d.socket(), &user);
    assert_eq!(st["locked"], true, "after restart: {st}");
    assert_eq!(st["lockouts"], 2, "after restart: {st}");
    let secs = assert_locked_at_begin(&pamd, SERVICE, &user, &d);
    assert!((20..=30).contains(&secs), "{secs}");
    assert_eq!(outbox.code_count(), 2, "one code per unlocked login");
    // And the owner heard of each lockout once.
    let told = wait_until(Duration::from_secs(5), || {
        let n = outbox.lockout_notices().len();
        (n == 2).then_some(n)
    });
    assert_eq!(told, Some(2), "{:#?}", outbox.read());
    d.assert_log_clean(&[]);
}

/// The contract lets `Resend` be answered with `Locked`: a session that
/// was open when another one locked the user must not get more SMS.
#[test]
fn resend_while_locked_sends_nothing() {
    let user = unique_name("lockr");
    let (d, pamd) = setup(
        &user,
        Daemon::builder()
            .section("lockout", "max_failures = 1")
            .section("lockout", "duration_seconds = 600")
            .section("resend", "cooldown_seconds = 0"),
    );
    let outbox = d.outbox();
    let mut locker: Option<Outcome> = None;
    let held = login_with(&pamd, SERVICE, &user, Items::rhost("192.0.2.1"), |p| {
        assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
        Some(match p.index {
            0 => {
                // While this login waits at its prompt, another one (on
                // another host) guesses wrong and locks the user.
                let other = std::thread::scope(|s| {
                    s.spawn(|| {
                        login_with(
                            &pamd,
                            OTHER_SERVICE,
                            &user,
                            Items::rhost("203.0.113.9"),
                            always_wrong(&outbox),
                        )
                    })
                    .join()
                    .expect("second login panicked")
                });
                locker = Some(other);
                "r".into()
            }
            1 => outbox.last().code(),
            _ => panic!("too many prompts:\n{}", p.transcript),
        })
    });
    let locker = locker.expect("the second login ran");
    locker.assert_code(PAM_AUTH_ERR);
    assert!(locked_secs(&locker) > 500, "{locker}");
    assert_eq!(status_json(&d.socket(), &user)["locked"], true);
    held.assert_code(PAM_AUTH_ERR);
    assert_eq!(
        outbox.code_count(),
        2,
        "a resend for a locked user sent an SMS; held login:\n{held}"
    );
    assert_eq!(held.transcript.errors().len(), 1, "{held}");
    assert!(locked_secs(&held) > 500, "{held}");
    d.assert_log_clean(&[]);
}

/// Growth stops at `max_duration_seconds`.
#[test]
fn lockout_growth_is_capped() {
    let user = unique_name("lockc");
    let (d, pamd) = setup(
        &user,
        Daemon::builder()
            .section("lockout", "max_failures = 1")
            .section("lockout", "duration_seconds = 10")
            .section("lockout", "ratio = 10")
            .section("lockout", "max_duration_seconds = 25"),
    );
    let outbox = d.outbox();
    let first = login_with(
        &pamd,
        SERVICE,
        &user,
        Items::default(),
        always_wrong(&outbox),
    );
    first.assert_code(PAM_AUTH_ERR);
    assert!((9..=10).contains(&locked_secs(&first)), "{first}");
    let over = wait_until(Duration::from_secs(13), || {
        (status_json(&d.socket(), &user)["locked"] == false).then_some(())
    });
    assert!(
        over.is_some(),
        "the first lockout (10 s) did not end within 13 s"
    );
    let second = login_with(
        &pamd,
        SERVICE,
        &user,
        Items::default(),
        always_wrong(&outbox),
    );
    second.assert_code(PAM_AUTH_ERR);
    assert!(
        (24..=25).contains(&locked_secs(&second)),
        "10 s x 10 capped at 25 s: {second}"
    );
    let st = status_json(&d.socket(), &user);
    assert_eq!(st["lockouts"], 2, "{st}");
    d.assert_log_clean(&[]);
}
