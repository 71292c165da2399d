//! The code step through real libpam with the outbox provider: right code,
//! wrong codes, empty replies, resends, users without a number, and what
//! the SMS says.

use smsotp_tests::daemon::Daemon;
use smsotp_tests::flows::*;
use smsotp_tests::libpam::{self, Outcome, Pam, PAM_AUTH_ERR, PAM_MAXTRIES, PAM_SUCCESS};
use smsotp_tests::outbox::wrong_code;
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::{require_root, unique_name};

const MOBILE: &str = "+15551234567";
const SERVICE: &str = "smsotp-e2e";

/// A daemon with one user, and a pam.d dir whose service runs the module.
fn setup(user: &str, daemon: smsotp_tests::daemon::DaemonBuilder) -> (Daemon, PamConfDir) {
    require_root("only root may ask the daemon for another user's code");
    let d = daemon.user(user, MOBILE).start();
    let pamd = PamConfDir::new();
    pamd.smsotp_service(SERVICE, &d.socket(), "timeout=10");
    (d, pamd)
}

#[test]
fn right_code_logs_in() {
    let user = unique_name("alice");
    let (d, pamd) = setup(&user, Daemon::builder());
    let outbox = d.outbox();
    let mut pam = Pam::start(SERVICE, &user, pamd.path(), type_newest_code(&outbox))
        .expect("pam_start_confdir");
    pam.set_rhost("192.0.2.10").set_tty("ssh");
    let code = pam.authenticate(0);
    let outcome = Outcome {
        code,
        transcript: pam.transcript().clone(),
    };
    pam.end();
    outcome.assert_code(PAM_SUCCESS);
    assert_code_prompted(&outcome);

    let prompts = outcome.transcript.prompts();
    assert_eq!(
        prompts,
        vec![code_prompt(MOBILE, "5 min", true)],
        "{outcome}"
    );
    assert!(prompts[0].contains("*******4567"));
    assert!(outcome.transcript.errors().is_empty(), "{outcome}");

    let sent = outbox.read();
    assert_eq!(sent.len(), 1, "exactly one SMS: {sent:#?}");
    assert_eq!(sent[0].to, MOBILE);
    let code = sent[0].code();
    assert_eq!(code.len(), 6);
    assert!(code.chars().all(|c| c.is_ascii_digit()), "{code}");
    assert_eq!(
        sent[0].body,
        format!("Your login code for testhost is {code}. It expires in 5 minutes.")
    );
    d.assert_log_clean(&[]);
}

#[test]
fn message_template_sees_the_pam_items() {
    let user = unique_name("tmpl");
    let (d, pamd) = setup(
        &user,
        Daemon::builder()
            .message(r#"template = "Code {{code}} for {{user}} via {{service}} from {{rhost}} [{{command}}]""#),
    );
    let outbox = d.outbox();
    let mut pam = Pam::start(SERVICE, &user, pamd.path(), |p| {
        assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
        let body = outbox.last().body;
        Some(body.split(' ').nth(1).unwrap_or_default().to_string())
    })
    .expect("pam_start_confdir");
    pam.set_rhost("192.0.2.10");
    let code = pam.authenticate(0);
    let transcript = pam.transcript().clone();
    pam.end();
    Outcome { code, transcript }.assert_code(PAM_SUCCESS);
    let sent = outbox.read();
    assert_eq!(sent.len(), 1);
    let code = sent[0].body.split(' ').nth(1).unwrap().to_string();
    assert_eq!(
        sent[0].body,
        // {{command}} is empty: this process is not sudo (its argv is not
        // a sudo command line, whatever the service is called).
        format!("Code {code} for {user} via {SERVICE} from 192.0.2.10 []")
    );
    d.assert_log_clean(&[&code]);
}

#[test]
fn wrong_code_then_right_code() {
    let user = unique_name("bob");
    let (d, pamd) = setup(&user, Daemon::builder());
    let outbox = d.outbox();
    let outcome = libpam::authenticate(SERVICE, &user, pamd.path(), |p| {
        let code = outbox.last().code();
        Some(if p.index == 0 {
            wrong_code(&code)
        } else {
            code
        })
    });
    outcome.assert_code(PAM_SUCCESS);
    assert_code_prompted(&outcome);
    assert_eq!(
        outcome.transcript.errors(),
        vec![wrong_code_msg(2)],
        "{outcome}"
    );
    assert_eq!(outcome.transcript.code_prompts().len(), 2, "{outcome}");
    assert_eq!(outbox.count(), 1, "a wrong code does not send a new SMS");
    d.assert_log_clean(&[]);
}

#[test]
fn wrong_codes_until_maxtries() {
    let user = unique_name("carol");
    let (d, pamd) = setup(&user, Daemon::builder());
    let outbox = d.outbox();
    let outcome = libpam::authenticate(SERVICE, &user, pamd.path(), |p| {
        assert!(
            p.index < 3,
            "prompted again after the last try:\n{}",
            p.transcript
        );
        Some(wrong_code(&outbox.last().code()))
    });
    outcome.assert_code(PAM_MAXTRIES);
    assert_code_prompted(&outcome);
    assert_eq!(
        outcome.transcript.errors(),
        vec![
            wrong_code_msg(2).as_str(),
            wrong_code_msg(1).as_str(),
            MSG_TRIES_EXHAUSTED
        ],
        "{outcome}"
    );
    assert_eq!(outcome.transcript.code_prompts().len(), 3);
    assert_eq!(outbox.count(), 1);
    d.assert_log_clean(&[]);
}

#[test]
fn empty_reply_prompts_again_without_using_a_try() {
    let user = unique_name("dave");
    let (d, pamd) = setup(&user, Daemon::builder());
    let outbox = d.outbox();
    let outcome = libpam::authenticate(SERVICE, &user, pamd.path(), |p| {
        let code = outbox.last().code();
        Some(match p.index {
            0 | 1 => String::new(),
            2 => wrong_code(&code),
            _ => code,
        })
    });
    outcome.assert_code(PAM_SUCCESS);
    // The two empty replies did not count: the first wrong code leaves 2.
    assert_eq!(
        outcome.transcript.errors(),
        vec![wrong_code_msg(2)],
        "{outcome}"
    );
    assert_eq!(outcome.transcript.code_prompts().len(), 4, "{outcome}");
    d.assert_log_clean(&[]);
}

#[test]
fn resend_sends_a_new_code_and_retires_the_old_one() {
    let user = unique_name("erin");
    // 8 digits: the two codes collide with probability 1e-8, not 1e-6.
    // No cooldown: this test resends at once on purpose.
    let (d, pamd) = setup(
        &user,
        Daemon::builder()
            .otp("length = 8")
            .section("resend", "cooldown_seconds = 0"),
    );
    let outbox = d.outbox();
    let mut first = String::new();
    let outcome = libpam::authenticate(SERVICE, &user, pamd.path(), |p| {
        assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
        Some(match p.index {
            0 => {
                first = outbox.nth(1).code();
                "r".into()
            }
            1 => {
                let second = outbox.nth(2);
                assert_eq!(second.to, MOBILE);
                assert_ne!(second.code(), first, "resend sent the same code");
                first.clone()
            }
            2 => outbox.nth(2).code(),
            _ => panic!("too many prompts:\n{}", p.transcript),
        })
    });
    outcome.assert_code(PAM_SUCCESS);
    assert_code_prompted(&outcome);
    let errors = outcome.transcript.errors();
    assert_eq!(errors.len(), 1, "{outcome}");
    assert!(
        errors[0].starts_with("Wrong code. "),
        "the first code must be refused after a resend: {outcome}"
    );
    assert_eq!(outbox.count(), 2);
    // Two resends were left after the first (3 allowed).
    assert_eq!(
        outcome.transcript.code_prompts()[1],
        code_prompt(MOBILE, "5 min", true)
    );
    d.assert_log_clean(&[]);
}

#[test]
fn resend_limit_is_enforced() {
    let user = unique_name("frank");
    let (d, pamd) = setup(
        &user,
        Daemon::builder()
            .otp("max_resends = 1")
            .section("resend", "cooldown_seconds = 0"),
    );
    let outbox = d.outbox();
    let outcome = libpam::authenticate(SERVICE, &user, pamd.path(), |p| {
        Some(match p.index {
            0 | 1 => "r".into(),
            2 => outbox.last().code(),
            _ => panic!("too many prompts:\n{}", p.transcript),
        })
    });
    outcome.assert_code(PAM_SUCCESS);
    assert_code_prompted(&outcome);
    let prompts = outcome.transcript.code_prompts();
    assert_eq!(prompts[0], code_prompt(MOBILE, "5 min", true), "{outcome}");
    // After the one allowed resend the prompt no longer offers 'r'.
    assert_eq!(prompts[1], code_prompt(MOBILE, "5 min", false), "{outcome}");
    let errors = outcome.transcript.errors();
    assert_eq!(errors.len(), 1, "{outcome}");
    assert!(
        errors[0].starts_with(MSG_RESEND_REFUSED_PREFIX)
            && errors[0].len() > MSG_RESEND_REFUSED_PREFIX.len(),
        "{outcome}"
    );
    assert_eq!(outbox.count(), 2, "one code and one resend");
    d.assert_log_clean(&[]);
}

#[test]
fn user_without_a_number_is_refused() {
    let user = unique_name("gina");
    let stranger = unique_name("nomobile");
    let (d, pamd) = setup(&user, Daemon::builder());
    let outcome = libpam::authenticate(SERVICE, &stranger, pamd.path(), |p| {
        panic!(
            "no prompt expected for a user without a number:\n{}",
            p.transcript
        )
    });
    outcome.assert_code(PAM_AUTH_ERR);
    assert_eq!(
        outcome.transcript.errors(),
        vec![MSG_NO_MOBILE],
        "{outcome}"
    );
    assert_eq!(d.outbox().count(), 0);
    d.assert_log_clean(&[]);
}
