//! `[resend]` and `[send_budget]` through real libpam: disabled resends,
//! the cooldown, resends per user per hour; SMS per user, per remote host
//! and in all per hour; the destination-country allowlist. A refused send
//! sends nothing and tells the user why (and when it may work again).

use smsotp_tests::daemon::{Daemon, DaemonBuilder};
use smsotp_tests::flows::*;
use smsotp_tests::libpam::{Outcome, PAM_AUTH_ERR, PAM_SUCCESS};
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::policy_kit::*;
use smsotp_tests::{require_root, unique_name};

const MOBILE: &str = "+15551240001";
const MOBILE_B: &str = "+15551240002";
const MOBILE_C: &str = "+15551240003";
const MOBILE_UK: &str = "+447700900123";
const SERVICE: &str = "pol-budget";
const SEND_REFUSED_PREFIX: &str = "Cannot send a code now: ";

fn start(b: DaemonBuilder) -> (Daemon, PamConfDir) {
    require_root("only root may ask the daemon for another user's code");
    let d = b.start();
    let pamd = PamConfDir::new();
    pamd.smsotp_service(SERVICE, &d.socket(), "timeout=10");
    (d, pamd)
}

/// A login that types the newest code at once and must succeed.
fn good_login(d: &Daemon, pamd: &PamConfDir, user: &str, items: Items<'_>) -> Outcome {
    let outbox = d.outbox();
    let before = outbox.count();
    let outcome = login_with(pamd, SERVICE, user, items, type_newest_code(&outbox));
    outcome.assert_code(PAM_SUCCESS);
    assert_code_prompted(&outcome);
    assert_eq!(outbox.count(), before + 1, "one SMS per login");
    outcome
}

/// A login refused before any prompt with `Cannot send a code now: ...`;
/// returns that message.
fn refused_login(d: &Daemon, pamd: &PamConfDir, user: &str, items: Items<'_>) -> String {
    let before = d.outbox().count();
    let outcome = login_with(pamd, SERVICE, user, items, no_prompt);
    outcome.assert_code(PAM_AUTH_ERR);
    let errors = outcome.transcript.errors();
    assert_eq!(errors.len(), 1, "{outcome}");
    let msg = errors[0].to_string();
    assert!(
        msg.starts_with(SEND_REFUSED_PREFIX) && msg.len() > SEND_REFUSED_PREFIX.len() + 2,
        "{outcome}"
    );
    assert_eq!(d.outbox().count(), before, "a refused send sends nothing");
    msg
}

/// The `N` of `... try again in N s` in a daemon's resend refusal.
fn try_again_secs(msg: &str) -> u64 {
    let i = msg
        .find("try again in ")
        .unwrap_or_else(|| panic!("no 'try again in' in {msg:?}"));
    let rest = &msg[i + "try again in ".len()..];
    let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("no number in {msg:?}"));
    if rest[n.to_string().len()..].starts_with(" min") {
        n * 60
    } else {
        n
    }
}

// ---------------------------------------------------------------- resend

#[test]
fn resend_disabled_is_refused() {
    let user = unique_name("nores");
    let (d, pamd) = start(
        Daemon::builder()
            .user(&user, MOBILE)
            .section("resend", "enabled = false"),
    );
    let outbox = d.outbox();
    let outcome = login_with(&pamd, SERVICE, &user, Items::default(), |p| {
        assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
        Some(match p.index {
            0 => "r".into(),
            1 => outbox.last().code(),
            _ => panic!("too many prompts:\n{}", p.transcript),
        })
    });
    outcome.assert_code(PAM_SUCCESS);
    assert_eq!(
        outcome.transcript.errors(),
        vec!["Cannot send another code: resending is disabled"],
        "{outcome}"
    );
    assert_eq!(outbox.count(), 1, "no second SMS");
    d.assert_log_clean(&[]);
}

/// CONTRACT: "When resends are not possible the tail is `Enter code: `."
#[test]
fn resend_disabled_is_not_offered_at_the_prompt() {
    let user = unique_name("nores2");
    let (d, pamd) = start(
        Daemon::builder()
            .user(&user, MOBILE)
            .section("resend", "enabled = false"),
    );
    let outbox = d.outbox();
    let outcome = login_with(
        &pamd,
        SERVICE,
        &user,
        Items::default(),
        type_newest_code(&outbox),
    );
    outcome.assert_code(PAM_SUCCESS);
    assert_eq!(
        outcome.transcript.code_prompts(),
        vec![code_prompt(MOBILE, "5 min", false)],
        "with [resend] enabled = false the prompt must not offer 'r': {outcome}"
    );
    d.assert_log_clean(&[]);
}

#[test]
fn resend_cooldown_says_when() {
    let user = unique_name("cool");
    let (d, pamd) = start(
        Daemon::builder()
            .user(&user, MOBILE)
            .section("resend", "cooldown_seconds = 60"),
    );
    let outbox = d.outbox();
    let outcome = login_with(&pamd, SERVICE, &user, Items::default(), |p| {
        assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
        Some(match p.index {
            0 => "r".into(),
            1 => outbox.last().code(),
            _ => panic!("too many prompts:\n{}", p.transcript),
        })
    });
    outcome.assert_code(PAM_SUCCESS);
    let errors = outcome.transcript.errors();
    assert_eq!(errors.len(), 1, "{outcome}");
    assert!(
        errors[0].starts_with(MSG_RESEND_REFUSED_PREFIX),
        "{outcome}"
    );
    let secs = try_again_secs(errors[0]);
    assert!((1..=60).contains(&secs), "{outcome}");
    assert_eq!(outbox.count(), 1, "no SMS during the cooldown");
    d.assert_log_clean(&[]);
}

#[test]
fn resends_per_user_per_hour_span_logins() {
    let user = unique_name("resh");
    let (d, pamd) = start(
        Daemon::builder()
            .user(&user, MOBILE)
            .section("resend", "per_user_per_hour = 1")
            .section("resend", "cooldown_seconds = 0"),
    );
    let outbox = d.outbox();
    // Login 1 uses the one resend of the hour.
    let first = login_with(&pamd, SERVICE, &user, Items::default(), |p| {
        Some(match p.index {
            0 => "r".into(),
            1 => outbox.nth(2).code(),
            _ => panic!("too many prompts:\n{}", p.transcript),
        })
    });
    first.assert_code(PAM_SUCCESS);
    assert!(first.transcript.errors().is_empty(), "{first}");
    assert_eq!(outbox.count(), 2);
    // Login 2 has resends left on its own challenge (max_resends = 3), but
    // the user's hourly budget is spent.
    let second = login_with(&pamd, SERVICE, &user, Items::default(), |p| {
        Some(match p.index {
            0 => "r".into(),
            1 => outbox.nth(3).code(),
            _ => panic!("too many prompts:\n{}", p.transcript),
        })
    });
    second.assert_code(PAM_SUCCESS);
    assert_eq!(
        second.transcript.code_prompts()[0],
        code_prompt(MOBILE, "5 min", true),
        "{second}"
    );
    let errors = second.transcript.errors();
    assert_eq!(errors.len(), 1, "{second}");
    assert!(errors[0].starts_with(MSG_RESEND_REFUSED_PREFIX), "{second}");
    let secs = try_again_secs(errors[0]);
    // 60-61 min: sends count per minute.
    assert!((3500..=3660).contains(&secs), "{second}");
    assert_eq!(outbox.count(), 3, "login 2 got its first code only");
    d.assert_log_clean(&[]);
}

// ---------------------------------------------------------------- budgets

#[test]
fn sends_per_user_per_hour_and_restart_keeps_them() {
    let user = unique_name("bu");
    let other = unique_name("bu");
    let (mut d, pamd) = start(
        Daemon::builder()
            .user(&user, MOBILE)
            .user(&other, MOBILE_B)
            .section("send_budget", "per_user_per_hour = 2"),
    );
    good_login(&d, &pamd, &user, Items::rhost("192.0.2.1"));
    good_login(&d, &pamd, &user, Items::rhost("192.0.2.2"));
    let msg = refused_login(&d, &pamd, &user, Items::rhost("192.0.2.3"));
    // Sends count per minute: the first one's minute leaves the window
    // 60-61 minutes after it went out.
    assert!(
        msg.ends_with(" Try again in 60 min.") || msg.ends_with(" Try again in 61 min."),
        "{msg}"
    );
    // The budget is the user's: someone else still gets a code.
    good_login(&d, &pamd, &other, Items::rhost("192.0.2.3"));
    // And it is durable.
    d.restart();
    let again = refused_login(&d, &pamd, &user, Items::rhost("192.0.2.4"));
    assert_eq!(again, msg);
    assert!(
        !events(&d, "send_refused", &user, &[]).is_empty(),
        "a refused send is audited:\n{}",
        d.log()
    );
    d.assert_log_clean(&[]);
}

#[test]
fn sends_per_rhost_per_hour() {
    let (a, b, c) = (unique_name("ra"), unique_name("rb"), unique_name("rc"));
    let (d, pamd) = start(
        Daemon::builder()
            .user(&a, MOBILE)
            .user(&b, MOBILE_B)
            .user(&c, MOBILE_C)
            .section("send_budget", "per_rhost_per_hour = 2"),
    );
    let busy = "203.0.113.50";
    good_login(&d, &pamd, &a, Items::rhost(busy));
    good_login(&d, &pamd, &b, Items::rhost(busy));
    let msg = refused_login(&d, &pamd, &c, Items::rhost(busy));
    assert!(msg.contains(" Try again in "), "{msg}");
    // The same user from elsewhere, and a login without PAM_RHOST, are not
    // charged to that address.
    good_login(&d, &pamd, &c, Items::rhost("198.51.100.9"));
    good_login(&d, &pamd, &a, Items::default());
    d.assert_log_clean(&[]);
}

#[test]
fn sends_global_per_hour() {
    let (a, b, c) = (unique_name("ga"), unique_name("gb"), unique_name("gc"));
    let (d, pamd) = start(
        Daemon::builder()
            .user(&a, MOBILE)
            .user(&b, MOBILE_B)
            .user(&c, MOBILE_C)
            .section("send_budget", "global_per_hour = 2"),
    );
    good_login(&d, &pamd, &a, Items::rhost("192.0.2.1"));
    good_login(&d, &pamd, &b, Items::rhost("198.51.100.1"));
    let msg = refused_login(&d, &pamd, &c, Items::rhost("203.0.113.1"));
    assert!(msg.contains(" Try again in "), "{msg}");
    let msg = refused_login(&d, &pamd, &a, Items::default());
    assert!(msg.starts_with(SEND_REFUSED_PREFIX), "{msg}");
    assert_eq!(d.outbox().count(), 2);
    d.assert_log_clean(&[]);
}

#[test]
fn destination_country_allowlist() {
    let (us, uk) = (unique_name("us"), unique_name("uk"));
    let (d, pamd) = start(
        Daemon::builder()
            .user(&us, MOBILE)
            .user(&uk, MOBILE_UK)
            .section("send_budget", r#"allowed_countries = ["+1"]"#),
    );
    let msg = refused_login(&d, &pamd, &uk, Items::default());
    assert!(
        !msg.contains("Try again"),
        "a country refusal does not pass with time: {msg}"
    );
    good_login(&d, &pamd, &us, Items::default());
    let sent = d.outbox().read();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, MOBILE);
    d.assert_log_clean(&[]);
}

#[test]
fn resends_count_against_the_send_budget() {
    let user = unique_name("rb");
    let (d, pamd) = start(
        Daemon::builder()
            .user(&user, MOBILE)
            .section("send_budget", "per_user_per_hour = 2")
            .section("resend", "cooldown_seconds = 0"),
    );
    let outbox = d.outbox();
    let outcome = login_with(&pamd, SERVICE, &user, Items::default(), |p| {
        Some(match p.index {
            0 | 1 => "r".into(),
            2 => outbox.nth(2).code(),
            _ => panic!("too many prompts:\n{}", p.transcript),
        })
    });
    outcome.assert_code(PAM_SUCCESS);
    let errors = outcome.transcript.errors();
    assert_eq!(errors.len(), 1, "{outcome}");
    assert!(
        errors[0].starts_with(MSG_RESEND_REFUSED_PREFIX),
        "{outcome}"
    );
    assert!(errors[0].contains("try again in"), "{outcome}");
    assert_eq!(outbox.count(), 2, "first code + one resend");
    d.assert_log_clean(&[]);
}
