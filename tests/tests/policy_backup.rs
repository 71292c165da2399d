//! Backup codes through real libpam and the real `smsotpctl`: generated as
//! a set, accepted once at the normal code prompt, counted, replaced by a
//! new set, the only way in when the SMS provider is down, and refused on a
//! service whose policy says `backup_codes = false`.

use smsotp_tests::daemon::{toml_str, Daemon, DaemonBuilder};
use smsotp_tests::flows::*;
use smsotp_tests::libpam::{Outcome, PAM_AUTHINFO_UNAVAIL, PAM_SUCCESS};
use smsotp_tests::outbox::Outbox;
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::policy_kit::*;
use smsotp_tests::{require_root, unique_name};

const MOBILE: &str = "+15551250001";
const MOBILE_B: &str = "+15551250002";
const SERVICE: &str = "pol-backup";
const NO_BACKUP_SERVICE: &str = "pol-nobackup";
const BACKUP_ONLY_PREFIX: &str = "No SMS was sent (";
const BACKUP_ONLY_SUFFIX: &str = "). Enter a backup code: ";

fn start(b: DaemonBuilder) -> (Daemon, PamConfDir) {
    require_root("only root may ask the daemon for another user's code");
    let d = b.start();
    let pamd = PamConfDir::new();
    pamd.smsotp_service(SERVICE, &d.socket(), "timeout=15");
    pamd.smsotp_service(NO_BACKUP_SERVICE, &d.socket(), "timeout=15");
    (d, pamd)
}

/// A login that types `typed` at the SMS code prompt (then the SMS code,
/// if asked again).
fn type_at_code_prompt(
    pamd: &PamConfDir,
    service: &str,
    user: &str,
    outbox: &Outbox,
    typed: &str,
) -> Outcome {
    login_with(pamd, service, user, Items::default(), |p| {
        assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
        Some(match p.index {
            0 => typed.to_string(),
            1 => outbox.last().code(),
            _ => panic!("too many prompts:\n{}", p.transcript),
        })
    })
}

/// An `http` provider aimed at a loopback port nobody listens on: every
/// send fails at once (connection refused).
fn dead_provider(port: u16) -> String {
    format!(
        "type = \"http\"\nurl = {}\n\
         payload = '{{\"to\": {{{{mobile}}}}, \"text\": {{{{body}}}}}}'\n\
         timeout_seconds = 3\n",
        toml_str(&format!("http://127.0.0.1:{port}/sms"))
    )
}

fn accepted(n: u32) -> String {
    let mut s = if n == 1 {
        "Backup code accepted. 1 backup code left.".to_string()
    } else {
        format!("Backup code accepted. {n} backup codes left.")
    };
    if n <= 2 {
        s.push_str(" Generate new ones with: smsotpctl backup-codes generate");
    }
    s
}

#[test]
fn backup_code_at_the_code_prompt_works_once() {
    let user = unique_name("bk");
    let (d, pamd) = start(
        Daemon::builder()
            .user(&user, MOBILE)
            .section("backup_codes", "count = 4"),
    );
    let outbox = d.outbox();
    let codes = generate_backup_codes(&d.socket(), &user);
    assert_eq!(codes.len(), 4, "{codes:?}");
    let distinct: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 4, "{codes:?}");
    assert_eq!(backup_count(&d.socket(), &user), 4);
    assert_eq!(status_json(&d.socket(), &user)["backup_codes_left"], 4);

    // The first code, typed where the SMS code goes.
    let ok = type_at_code_prompt(&pamd, SERVICE, &user, &outbox, &codes[0]);
    ok.assert_code(PAM_SUCCESS);
    assert_code_prompted(&ok);
    assert_eq!(ok.transcript.code_prompts().len(), 1, "{ok}");
    assert!(ok.transcript.errors().is_empty(), "{ok}");
    assert_eq!(ok.transcript.infos(), vec![accepted(3)], "{ok}");
    assert_eq!(backup_count(&d.socket(), &user), 3);

    // The same code again is just a wrong code; the SMS code still works.
    let again = type_at_code_prompt(&pamd, SERVICE, &user, &outbox, &codes[0]);
    again.assert_code(PAM_SUCCESS);
    assert_eq!(
        again.transcript.errors(),
        vec![wrong_code_msg(2)],
        "{again}"
    );
    assert!(again.transcript.infos().is_empty(), "{again}");
    assert_eq!(backup_count(&d.socket(), &user), 3);

    // Typed loosely (lower case, spaces for dashes): still the code.
    let loose = codes[1].to_lowercase().replace('-', " ");
    let ok2 = type_at_code_prompt(&pamd, SERVICE, &user, &outbox, &loose);
    ok2.assert_code(PAM_SUCCESS);
    assert_eq!(ok2.transcript.infos(), vec![accepted(2)], "{ok2}");

    // A new set replaces the old one: an unused old code no longer works.
    let new_codes = generate_backup_codes(&d.socket(), &user);
    assert_eq!(new_codes.len(), 4);
    assert_eq!(backup_count(&d.socket(), &user), 4);
    let old = type_at_code_prompt(&pamd, SERVICE, &user, &outbox, &codes[2]);
    old.assert_code(PAM_SUCCESS);
    assert_eq!(old.transcript.errors(), vec![wrong_code_msg(2)], "{old}");
    let new = type_at_code_prompt(&pamd, SERVICE, &user, &outbox, &new_codes[3]);
    new.assert_code(PAM_SUCCESS);
    assert_eq!(new.transcript.infos(), vec![accepted(3)], "{new}");
    assert!(
        !events(&d, "backup_code_used", &user, &[]).is_empty(),
        "backup code use is audited:\n{}",
        d.log()
    );
    let all: Vec<&str> = codes.iter().chain(&new_codes).map(String::as_str).collect();
    d.assert_log_clean(&all);
    // Nor any part of them (the id is public but the secret is not).
    let log = d.log();
    for c in &all {
        let secret = c.replace('-', "");
        assert!(!log.contains(&secret[4..]), "log leaks a backup secret");
    }
}

#[test]
fn provider_down_backup_only_prompt_and_send_failed_without_codes() {
    let (with, without) = (unique_name("bkd"), unique_name("bkn"));
    let port = closed_port();
    let (d, pamd) = start(
        Daemon::builder()
            .user(&with, MOBILE)
            .user(&without, MOBILE_B)
            .provider(&dead_provider(port)),
    );
    let codes = generate_backup_codes(&d.socket(), &with);
    assert_eq!(codes.len(), 10, "the default set is 10");

    // 'r' is refused (nothing can be sent), an SMS-shaped guess is wrong,
    // and a backup code lets the user in.
    let outcome = login_with(&pamd, SERVICE, &with, Items::default(), |p| {
        assert!(
            p.text.starts_with(BACKUP_ONLY_PREFIX) && p.text.ends_with(BACKUP_ONLY_SUFFIX),
            "backup-only prompt expected, got {:?}:\n{}",
            p.text,
            p.transcript
        );
        Some(match p.index {
            0 => "r".into(),
            1 => "123456".into(),
            2 => codes[0].clone(),
            _ => panic!("too many prompts:\n{}", p.transcript),
        })
    });
    outcome.assert_code(PAM_SUCCESS);
    let prompts = outcome.transcript.prompts();
    assert_eq!(prompts.len(), 3, "{outcome}");
    let notice = &prompts[0][BACKUP_ONLY_PREFIX.len()..prompts[0].len() - BACKUP_ONLY_SUFFIX.len()];
    assert!(!notice.trim().is_empty(), "the notice says why: {outcome}");
    let errors = outcome.transcript.errors();
    assert_eq!(errors.len(), 2, "{outcome}");
    assert!(
        errors[0].starts_with(MSG_RESEND_REFUSED_PREFIX),
        "{outcome}"
    );
    assert!(errors[1].starts_with("Wrong code. "), "{outcome}");
    assert_eq!(outcome.transcript.infos(), vec![accepted(9)], "{outcome}");
    assert_eq!(backup_count(&d.socket(), &with), 9);

    // Without backup codes the provider failure is the answer.
    let failed = login_with(&pamd, SERVICE, &without, Items::default(), no_prompt);
    failed.assert_code(PAM_AUTHINFO_UNAVAIL);
    assert_eq!(
        failed.transcript.errors(),
        vec![MSG_SEND_FAILED],
        "{failed}"
    );
    assert!(!d.outbox().path().exists(), "no outbox was configured");
    let all: Vec<&str> = codes.iter().map(String::as_str).collect();
    d.assert_log_clean(&all);
}

#[test]
fn service_with_backup_codes_off_refuses_them() {
    let user = unique_name("bks");
    let (d, pamd) = start(
        Daemon::builder()
            .user(&user, MOBILE)
            .section("backup_codes", "count = 2")
            .section(
                &format!("service.{NO_BACKUP_SERVICE}"),
                "backup_codes = false",
            ),
    );
    let outbox = d.outbox();
    let codes = generate_backup_codes(&d.socket(), &user);
    assert_eq!(codes.len(), 2);
    let refused = type_at_code_prompt(&pamd, NO_BACKUP_SERVICE, &user, &outbox, &codes[0]);
    refused.assert_code(PAM_SUCCESS);
    assert_code_prompted(&refused);
    assert_eq!(
        refused.transcript.errors(),
        vec![wrong_code_msg(2)],
        "{refused}"
    );
    assert!(refused.transcript.infos().is_empty(), "{refused}");
    assert_eq!(backup_count(&d.socket(), &user), 2, "not spent there");
    // The same code on a service that allows backup codes.
    let ok = type_at_code_prompt(&pamd, SERVICE, &user, &outbox, &codes[0]);
    ok.assert_code(PAM_SUCCESS);
    assert_eq!(ok.transcript.infos(), vec![accepted(1)], "{ok}");
    let all: Vec<&str> = codes.iter().map(String::as_str).collect();
    d.assert_log_clean(&all);
}

#[test]
fn service_with_backup_codes_off_and_provider_down_is_send_failed() {
    let user = unique_name("bksd");
    let port = closed_port();
    let (d, pamd) = start(
        Daemon::builder()
            .user(&user, MOBILE)
            .section("backup_codes", "count = 2")
            .section(
                &format!("service.{NO_BACKUP_SERVICE}"),
                "backup_codes = false",
            )
            .provider(&dead_provider(port)),
    );
    let codes = generate_backup_codes(&d.socket(), &user);
    let failed = login_with(&pamd, NO_BACKUP_SERVICE, &user, Items::default(), no_prompt);
    failed.assert_code(PAM_AUTHINFO_UNAVAIL);
    assert_eq!(
        failed.transcript.errors(),
        vec![MSG_SEND_FAILED],
        "{failed}"
    );
    let all: Vec<&str> = codes.iter().map(String::as_str).collect();
    d.assert_log_clean(&all);
}
