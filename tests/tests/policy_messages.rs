//! What users see, through real libpam: unknown users get a prompt that
//! looks real (`hide_unknown_users`), failure reasons can be hidden
//! (`show_failure_reason = false`), the masked number shows as many digits
//! as configured, and `origin_bound` adds the WICG one-time-code line.

use smsotp_tests::daemon::{Daemon, DaemonBuilder};
use smsotp_tests::flows::*;
use smsotp_tests::libpam::{Outcome, PAM_MAXTRIES, PAM_SUCCESS};
use smsotp_tests::outbox::wrong_code;
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::policy_kit::*;
use smsotp_tests::{require_root, unique_name};

const MOBILE: &str = "+15551280067";
const SERVICE: &str = "pol-msg";
const AUTH_FAILED: &str = "Authentication failed.";

fn start(b: DaemonBuilder) -> (Daemon, PamConfDir) {
    require_root("only root may ask the daemon for another user's code");
    let d = b.start();
    let pamd = PamConfDir::new();
    pamd.smsotp_service(SERVICE, &d.socket(), "timeout=10");
    (d, pamd)
}

/// `Code sent to ` + stars + 4 digits + the default tail: the shape of a
/// real prompt for a mobile number of 10 to 14 digits (fake numbers vary
/// in length like real ones, so the mask's length tells nothing).
fn looks_like_a_real_prompt(p: &str) -> bool {
    let Some(rest) = p.strip_prefix("Code sent to ") else {
        return false;
    };
    let stars = rest.chars().take_while(|c| *c == '*').count();
    let rest = &rest[stars..];
    let (digits, tail) = rest.split_at(4.min(rest.len()));
    (6..=10).contains(&stars)
        && digits.len() == 4
        && digits.chars().all(|c| c.is_ascii_digit())
        && tail == format!(" (expires in 5 min). {TAIL_WITH_RESEND}")
}

#[test]
fn unknown_users_get_a_prompt_that_looks_real() {
    let (real, ghost) = (unique_name("real"), unique_name("ghost"));
    let (d, pamd) = start(
        Daemon::builder()
            .user(&real, MOBILE)
            .section("policy", "hide_unknown_users = true")
            // The ghost resends at once; the cooldown would refuse it
            // exactly as it refuses a real user.
            .section("resend", "cooldown_seconds = 0")
            // Two rounds of three guesses stay under the lockout here; that
            // ghosts lock out like real users is tested below.
            .section("lockout", "max_failures = 20"),
    );
    let outbox = d.outbox();
    // A real user, for comparison.
    let ok = login_with(
        &pamd,
        SERVICE,
        &real,
        Items::default(),
        type_newest_code(&outbox),
    );
    ok.assert_code(PAM_SUCCESS);
    assert!(looks_like_a_real_prompt(ok.transcript.prompts()[0]), "{ok}");
    assert_eq!(outbox.count(), 1);

    // The unknown user: same prompt shape, a resend that looks like one,
    // and no code that works, not even the real user's.
    let real_code = outbox.last().code();
    let guesses = ["123456".to_string(), real_code, "000000".to_string()];
    let fake = || -> Outcome {
        login_with(&pamd, SERVICE, &ghost, Items::default(), |p| {
            assert!(
                looks_like_a_real_prompt(p.text),
                "prompt gives the unknown user away: {:?}\n{}",
                p.text,
                p.transcript
            );
            Some(match p.index {
                0 => "r".into(),
                n @ 1..=3 => guesses[n - 1].clone(),
                _ => panic!("too many prompts:\n{}", p.transcript),
            })
        })
    };
    let first = fake();
    first.assert_code(PAM_MAXTRIES);
    assert_eq!(
        first.transcript.errors(),
        vec![
            wrong_code_msg(2).as_str(),
            wrong_code_msg(1).as_str(),
            MSG_TRIES_EXHAUSTED
        ],
        "{first}"
    );
    let prompts = first.transcript.prompts();
    assert_eq!(prompts.len(), 4, "{first}");
    assert!(
        prompts.iter().all(|p| *p == prompts[0]),
        "the same number on every prompt: {first}"
    );
    // The same fake number every time, so two logins do not give it away.
    let second = fake();
    second.assert_code(PAM_MAXTRIES);
    assert_eq!(second.transcript.prompts()[0], prompts[0], "{second}");
    assert_eq!(outbox.count(), 1, "no SMS for the unknown user");
    d.assert_log_clean(&[]);
}

/// What a login that types only wrong codes shows: the PAM code, the
/// errors, and how many prompts.
fn wrong_codes_only(pamd: &PamConfDir, user: &str) -> (i32, Vec<String>, usize) {
    let outcome = login_with(pamd, SERVICE, user, Items::default(), |p| {
        assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
        Some("000000".into())
    });
    let errors = outcome
        .transcript
        .errors()
        .iter()
        .map(|e| e.to_string())
        .collect();
    (outcome.code, errors, outcome.transcript.prompts().len())
}

/// The lockout must not tell real users from unknown ones: the same wrong
/// guesses get the same answers.
#[test]
fn unknown_users_lock_out_like_real_ones() {
    let (real, ghost) = (unique_name("reall"), unique_name("ghostl"));
    let (d, pamd) = start(
        Daemon::builder()
            .user(&real, MOBILE)
            .section("policy", "hide_unknown_users = true")
            .section("lockout", "max_failures = 2"),
    );
    let real_seen = wrong_codes_only(&pamd, &real);
    let ghost_seen = wrong_codes_only(&pamd, &ghost);
    assert_eq!(
        ghost_seen, real_seen,
        "an unknown user (left) is told apart from a real one (right) by the lockout"
    );
    d.assert_log_clean(&[]);
}

/// Nor may the send budget tell them apart.
#[test]
fn unknown_users_meet_the_send_budget_like_real_ones() {
    let (real, ghost) = (unique_name("realb"), unique_name("ghostb"));
    let (d, pamd) = start(
        Daemon::builder()
            .user(&real, MOBILE)
            .section("policy", "hide_unknown_users = true")
            .section("send_budget", "per_user_per_hour = 1"),
    );
    let outbox = d.outbox();
    let mut seen = Vec::new();
    for user in [&real, &ghost] {
        let mut codes = Vec::new();
        for _ in 0..2 {
            // Walk away at the prompt (the conversation fails).
            let outcome = login_with(&pamd, SERVICE, user, Items::default(), |_| None);
            let first_prompt_shape = outcome
                .transcript
                .prompts()
                .first()
                .map(|p| looks_like_a_real_prompt(p));
            codes.push((
                outcome.code,
                outcome
                    .transcript
                    .errors()
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>(),
                first_prompt_shape,
            ));
        }
        seen.push(codes);
    }
    assert_eq!(outbox.count(), 1, "one SMS, to the real user");
    assert_eq!(
        seen[1], seen[0],
        "an unknown user (left) is told apart from a real one (right) by the send budget"
    );
    d.assert_log_clean(&[]);
}

#[test]
fn failure_reason_hidden() {
    let user = unique_name("hid");
    let (d, pamd) = start(
        Daemon::builder()
            .user(&user, MOBILE)
            .section("policy", "show_failure_reason = false"),
    );
    let outbox = d.outbox();
    let ok = login_with(&pamd, SERVICE, &user, Items::default(), |p| {
        let code = outbox.last().code();
        Some(if p.index == 0 {
            wrong_code(&code)
        } else {
            code
        })
    });
    ok.assert_code(PAM_SUCCESS);
    assert_code_prompted(&ok);
    assert_eq!(ok.transcript.errors(), vec![AUTH_FAILED], "{ok}");

    let bad = login_with(&pamd, SERVICE, &user, Items::default(), |p| {
        assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
        Some(wrong_code(&outbox.last().code()))
    });
    bad.assert_code(PAM_MAXTRIES);
    assert_eq!(
        bad.transcript.errors(),
        vec![AUTH_FAILED, AUTH_FAILED, AUTH_FAILED],
        "{bad}"
    );
    d.assert_log_clean(&[]);
}

#[test]
fn failure_reason_hidden_for_lockout() {
    let user = unique_name("hidl");
    let (d, pamd) = start(
        Daemon::builder()
            .user(&user, MOBILE)
            .section("policy", "show_failure_reason = false")
            .section("lockout", "max_failures = 1"),
    );
    let outbox = d.outbox();
    let bad = login_with(&pamd, SERVICE, &user, Items::default(), |_| {
        Some(wrong_code(&outbox.last().code()))
    });
    bad.assert_code(smsotp_tests::libpam::PAM_AUTH_ERR);
    assert_code_prompted(&bad);
    assert_eq!(bad.transcript.errors(), vec![AUTH_FAILED], "{bad}");
    d.assert_log_clean(&[]);
}

#[test]
fn masked_number_shows_the_configured_digits() {
    let user = unique_name("mask");
    let (d, pamd) = start(
        Daemon::builder()
            .user(&user, MOBILE)
            .message("mask_visible_digits = 2"),
    );
    let outbox = d.outbox();
    let ok = login_with(
        &pamd,
        SERVICE,
        &user,
        Items::default(),
        type_newest_code(&outbox),
    );
    ok.assert_code(PAM_SUCCESS);
    assert_eq!(
        ok.transcript.prompts(),
        vec![format!(
            "Code sent to *********67 (expires in 5 min). {TAIL_WITH_RESEND}"
        )],
        "{ok}"
    );
    let st = status_json(&d.socket(), &user);
    assert_eq!(st["mobile"], "*********67", "{st}");
    // The login's own log lines mask the number the same way.
    let sent = events(&d, "code_sent", &user, &[]);
    assert_eq!(sent.len(), 1, "{}", d.log());
    assert!(sent[0].contains("to=*********67 "), "{}", sent[0]);
    // No line at all shows more: the provider chain's own lines included.
    let log = d.log();
    assert!(!log.contains("0067"), "a log line shows 4 digits:\n{log}");
    d.assert_log_clean(&[]);
}

#[test]
fn origin_bound_sms() {
    let user = unique_name("obc");
    let (d, pamd) = start(
        Daemon::builder()
            .user(&user, MOBILE)
            .message("origin_bound = true"),
    );
    let outbox = d.outbox();
    let ok = login_with(
        &pamd,
        SERVICE,
        &user,
        Items::default(),
        type_newest_code(&outbox),
    );
    ok.assert_code(PAM_SUCCESS);
    assert_code_prompted(&ok);
    let sms = outbox.last();
    let code = sms.code();
    assert_eq!(
        sms.body,
        format!(
            "Your login code for testhost is {code}. It expires in 5 minutes.\n\n@testhost #{code}"
        )
    );
    assert!(sms.body.ends_with(&format!("@testhost #{code}")));
    d.assert_log_clean(&[]);
}
