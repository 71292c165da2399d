//! Users without a number, through real libpam: `no_mobile = "skip"` is
//! PAM_IGNORE (never PAM_SUCCESS); `"enroll"` asks for the number (echo
//! on), refuses bad ones, texts a code to a good one and stores it only
//! once the code is right; `send_to_entered_number` never stores it.
//! Skipping and enrolment are for accounts NSS knows: these tests use real
//! local accounts.

use smsotp_tests::daemon::{Daemon, DaemonBuilder};
use smsotp_tests::flows::*;
use smsotp_tests::libpam::{Style, PAM_AUTH_ERR, PAM_MAXTRIES, PAM_SUCCESS};
use smsotp_tests::outbox::wrong_code;
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::policy_kit::*;
use smsotp_tests::users::TestUser;
use smsotp_tests::{require_root, unique_name};

const SERVICE: &str = "pol-enroll";
const KNOWN_MOBILE: &str = "+15551270001";
const TYPED: &str = "+15557654321";
const TYPED_UK: &str = "+447700900123";
const ASK_MOBILE: &str = "No mobile number is registered for SMS codes. Enter your mobile number with country code (e.g. +15551234567): ";
const INVALID_PREFIX: &str = "That number cannot be used: ";

fn start(b: DaemonBuilder) -> (Daemon, PamConfDir) {
    require_root("only root may ask the daemon for another user's code");
    let d = b.start();
    let pamd = PamConfDir::new();
    ignore_probe_services(&pamd, SERVICE, &d.socket(), "timeout=10");
    (d, pamd)
}

/// The `mobile source:` line of `smsotpctl status USER`.
fn mobile_source(d: &Daemon, user: &str) -> String {
    let ran = ctl(&d.socket(), &["status", user]);
    ran.expect_code(0);
    let line = ran
        .stdout
        .lines()
        .find(|l| l.starts_with("mobile source:"))
        .unwrap_or_else(|| panic!("no `mobile source:` line:\n{}", ran.stdout));
    line["mobile source:".len()..].trim().to_string()
}

fn enroll_builder() -> DaemonBuilder {
    Daemon::builder()
        .section("policy", r#"no_mobile = "enroll""#)
        .section("send_budget", r#"allowed_countries = ["+1"]"#)
}

#[test]
fn no_mobile_skip_is_ignored() {
    // Only an account NSS knows may be skipped (or enrol).
    let account = TestUser::create();
    let (known, unknown) = (unique_name("sk"), account.name.clone());
    let (d, pamd) = start(
        Daemon::builder()
            .user(&known, KNOWN_MOBILE)
            .section("policy", r#"no_mobile = "skip""#),
    );
    assert_ignored(&d, &pamd, SERVICE, &unknown, Items::default(), "no-mobile");
    // A user with a number is still asked for a code.
    let outbox = d.outbox();
    let ok = login_with(
        &pamd,
        SERVICE,
        &known,
        Items::default(),
        type_newest_code(&outbox),
    );
    ok.assert_code(PAM_SUCCESS);
    assert_code_prompted(&ok);
    d.assert_log_clean(&[]);
}

#[test]
fn enroll_at_login_stores_the_number_once_the_code_is_right() {
    let account = TestUser::create();
    let user = account.name.clone();
    let (d, pamd) = start(enroll_builder());
    let outbox = d.outbox();
    assert_eq!(mobile_source(&d, &user), "none");

    let outcome = login_with(&pamd, SERVICE, &user, Items::default(), |p| {
        Some(match p.index {
            0..=2 => {
                assert_eq!(p.text, ASK_MOBILE, "{}", p.transcript);
                assert_eq!(p.style, Style::EchoOn, "a number is not a secret");
                match p.index {
                    0 => "12345".into(),
                    1 => TYPED_UK.into(),
                    _ => format!(" {TYPED} "),
                }
            }
            3 => {
                assert_eq!(p.style, Style::EchoOff);
                assert_eq!(
                    p.text,
                    code_prompt(TYPED, "5 min", true),
                    "{}",
                    p.transcript
                );
                let sms = outbox.last();
                assert_eq!(sms.to, TYPED);
                sms.code()
            }
            _ => panic!("too many prompts:\n{}", p.transcript),
        })
    });
    outcome.assert_code(PAM_SUCCESS);
    assert_code_prompted(&outcome);
    let errors = outcome.transcript.errors();
    assert_eq!(errors.len(), 2, "{outcome}");
    for e in &errors {
        assert!(
            e.starts_with(INVALID_PREFIX) && e.len() > INVALID_PREFIX.len(),
            "{outcome}"
        );
    }
    assert_eq!(outbox.count(), 1, "only the good number got an SMS");
    assert_eq!(mobile_source(&d, &user), "enrolled");
    let st = status_json(&d.socket(), &user);
    assert_eq!(st["mobile"], "*******4321", "{st}");

    // Next login: straight to the code, sent to the stored number.
    let next = login_with(
        &pamd,
        SERVICE,
        &user,
        Items::default(),
        type_newest_code(&outbox),
    );
    next.assert_code(PAM_SUCCESS);
    assert_eq!(
        next.transcript.prompts(),
        vec![code_prompt(TYPED, "5 min", true)],
        "{next}"
    );
    assert_eq!(outbox.count(), 2);
    assert_eq!(outbox.last().to, TYPED);
    assert!(
        !events(&d, "enrolled", &user, &[]).is_empty(),
        "enrolment is audited:\n{}",
        d.log()
    );
    assert_log_lacks_number(&d, TYPED);
    assert_log_lacks_number(&d, TYPED_UK);
    d.assert_log_clean(&[]);
}

#[test]
fn enroll_with_wrong_codes_stores_nothing() {
    let account = TestUser::create();
    let user = account.name.clone();
    let (d, pamd) = start(enroll_builder());
    let outbox = d.outbox();
    let outcome = login_with(&pamd, SERVICE, &user, Items::default(), |p| {
        Some(if p.index == 0 {
            TYPED.to_string()
        } else {
            assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
            wrong_code(&outbox.last().code())
        })
    });
    outcome.assert_code(PAM_MAXTRIES);
    assert_eq!(outcome.transcript.code_prompts().len(), 3, "{outcome}");
    assert_eq!(outbox.count(), 1);
    assert_eq!(outbox.last().to, TYPED);
    assert_eq!(mobile_source(&d, &user), "none");
    // The next login asks again; an empty answer ends it without an SMS.
    let again = login_with(&pamd, SERVICE, &user, Items::default(), |p| {
        assert_eq!(p.text, ASK_MOBILE, "{}", p.transcript);
        Some(String::new())
    });
    again.assert_code(PAM_AUTH_ERR);
    assert_eq!(
        again.transcript.errors(),
        vec!["No mobile number given."],
        "{again}"
    );
    assert_eq!(outbox.count(), 1);
    assert_log_lacks_number(&d, TYPED);
    d.assert_log_clean(&[]);
}

#[test]
fn enroll_gives_up_after_three_bad_numbers() {
    let account = TestUser::create();
    let user = account.name.clone();
    let (d, pamd) = start(enroll_builder());
    let outcome = login_with(&pamd, SERVICE, &user, Items::default(), |p| {
        assert_eq!(p.text, ASK_MOBILE, "{}", p.transcript);
        assert!(p.index < 3, "asked a 4th time:\n{}", p.transcript);
        Some("not a number".into())
    });
    outcome.assert_code(PAM_AUTH_ERR);
    let errors = outcome.transcript.errors();
    assert_eq!(errors.len(), 3, "{outcome}");
    assert!(
        errors.iter().all(|e| e.starts_with(INVALID_PREFIX)),
        "{outcome}"
    );
    assert_eq!(d.outbox().count(), 0);
    assert_eq!(mobile_source(&d, &user), "none");
    d.assert_log_clean(&[]);
}

#[test]
fn send_to_entered_number_does_not_store_it() {
    let account = TestUser::create();
    let user = account.name.clone();
    let (d, pamd) = start(enroll_builder().section("policy", "send_to_entered_number = true"));
    let outbox = d.outbox();
    for round in 1..=2 {
        let outcome = login_with(&pamd, SERVICE, &user, Items::default(), |p| {
            Some(match p.index {
                0 => {
                    assert_eq!(p.text, ASK_MOBILE, "round {round}:\n{}", p.transcript);
                    TYPED.into()
                }
                1 => {
                    assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
                    outbox.last().code()
                }
                _ => panic!("too many prompts:\n{}", p.transcript),
            })
        });
        outcome.assert_code(PAM_SUCCESS);
        assert_eq!(outbox.count(), round);
        assert_eq!(outbox.last().to, TYPED);
        assert_eq!(mobile_source(&d, &user), "none", "round {round}");
    }
    assert_log_lacks_number(&d, TYPED);
    d.assert_log_clean(&[]);
}
