//! An attacker who knows only a victim's user name, on a stack where the
//! module runs without a proven password (the module alone here), and
//! what the daemon must still promise the victim:
//!
//! - five wrong codes lock the victim's SMS codes, yet the victim logs in
//!   with a backup code through the backup-only prompt, and hears of the
//!   lockout once by a notice SMS;
//! - backup-code guesses and SMS-code guesses spend separate budgets;
//! - the lockout escalation decays after a quiet period;
//! - abandoned logins that spend the victim's send budget leave the
//!   backup-only prompt open;
//! - an enrolment waiting at its code prompt cannot overwrite the number
//!   root set meanwhile;
//! - case and whitespace variants of a real account are never skipped;
//! - an unknown user's fake challenge is not the same shape for everyone;
//! - a non-root caller cannot pick a trusted network or a service section.
//!
//! The attacker's logins are root's PAM logins with the victim's name (as
//! sshd would run them); the non-root caller is `raw-client` as the user.

use smsotp_proto::{Response, SkipReason};
use smsotp_tests::daemon::{Daemon, DaemonBuilder};
use smsotp_tests::flows::*;
use smsotp_tests::libpam::{Outcome, Prompt, PAM_AUTH_ERR, PAM_SUCCESS};
use smsotp_tests::outbox::{wrong_code, Outbox, LOCKOUT_NOTICE_PREFIX};
use smsotp_tests::pamd::{module_line, PamConfDir};
use smsotp_tests::policy_kit::*;
use smsotp_tests::users::TestUser;
use smsotp_tests::{require_root, unique_name};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

const MOBILE: &str = "+15551310001";
const ROOT_NUMBER: &str = "+15551310002";
const TYPED: &str = "+15551310003";
/// The module alone: nothing before it proved a password.
const ALONE: &str = "hostile-alone";
/// pam_permit then the module: a PAM_IGNORE (a skip) is PAM_SUCCESS here.
const PERMIT: &str = "hostile-permit";
const ATTACKER: &str = "203.0.113.66";
const WRONG_BACKUP: &str = "ZZZZ-ZZZZ-ZZZZ";

fn start(b: DaemonBuilder) -> (Daemon, PamConfDir) {
    require_root("only root may ask the daemon for another user's code");
    let d = b.start();
    let pamd = PamConfDir::new();
    pamd.write(ALONE, &module_line("required", &d.socket(), "timeout=10"));
    pamd.smsotp_service(PERMIT, &d.socket(), "timeout=10");
    (d, pamd)
}

/// `No SMS was sent (NOTICE). Enter a backup code: `
fn backup_only_prompt(notice: &str) -> String {
    format!("No SMS was sent ({notice}). Enter a backup code: ")
}

/// The attacker: a wrong code at every code prompt, gives up (no answer)
/// at a backup-only prompt. Returns the outcome and whether a backup-only
/// prompt was shown.
fn attack(pamd: &PamConfDir, user: &str, outbox: &Outbox) -> (Outcome, bool) {
    let mut backup_only = false;
    let outcome = login_with(pamd, ALONE, user, Items::rhost(ATTACKER), |p| {
        if p.text.starts_with("Code sent to ") {
            return Some(wrong_code(&outbox.last_code()));
        }
        assert!(p.text.starts_with("No SMS was sent ("), "{}", p.transcript);
        backup_only = true;
        None
    });
    assert_ne!(outcome.code, PAM_SUCCESS, "the attacker got in: {outcome}");
    (outcome, backup_only)
}

/// Runs `attack` until a login ends at the backup-only prompt (at most
/// `limit` logins); returns how many logins that took.
fn attack_until_backup_only(pamd: &PamConfDir, user: &str, outbox: &Outbox, limit: u32) -> u32 {
    for n in 1..=limit {
        if attack(pamd, user, outbox).1 {
            return n;
        }
    }
    panic!("no backup-only prompt after {limit} attacking logins");
}

/// Waits (at most 5 s) for `n` lockout notices and returns them.
fn notices(outbox: &Outbox, n: usize) -> Vec<String> {
    let got = wait_until(Duration::from_secs(5), || {
        let v = outbox.lockout_notices();
        (v.len() >= n).then_some(v)
    })
    .unwrap_or_else(|| panic!("fewer than {n} lockout notices: {:#?}", outbox.read()));
    got.into_iter().map(|m| m.body).collect()
}

#[test]
fn a_name_alone_locks_sms_codes_but_the_owner_gets_in_with_a_backup_code() {
    let user = unique_name("victim");
    let (d, pamd) = start(
        Daemon::builder()
            .user(&user, MOBILE)
            .section("lockout", "max_failures = 5")
            .section("lockout", "duration_seconds = 600"),
    );
    let outbox = d.outbox();
    let codes = generate_backup_codes(&d.socket(), &user);

    // 3 tries per login: the 5th wrong code comes in the second login,
    // which then shows the backup-only prompt the attacker cannot answer.
    let logins = attack_until_backup_only(&pamd, &user, &outbox, 4);
    assert_eq!(logins, 2);
    assert_eq!(outbox.code_count(), 2, "one SMS per attacking login");
    let st = status_json(&d.socket(), &user);
    assert_eq!(
        (st["locked"].clone(), st["lockouts"].clone()),
        (true.into(), 1.into()),
        "{st}"
    );

    // More attacking logins while locked: no SMS, no second notice.
    for _ in 0..3 {
        assert!(attack(&pamd, &user, &outbox).1);
    }
    assert_eq!(outbox.code_count(), 2, "no SMS while SMS codes are locked");

    // The owner: the backup-only prompt, and a backup code lets them in.
    let owner = login_with(&pamd, ALONE, &user, Items::rhost("192.0.2.7"), |p| {
        assert_eq!(
            p.text,
            backup_only_prompt("SMS codes are locked for 10 min"),
            "{}",
            p.transcript
        );
        Some(codes[0].clone())
    });
    owner.assert_code(PAM_SUCCESS);
    assert_eq!(owner.transcript.prompts().len(), 1, "{owner}");
    assert!(
        owner.transcript.infos()[0].starts_with("Backup code accepted."),
        "{owner}"
    );

    // Exactly one notice for the one lockout, naming host and attacker.
    let told = notices(&outbox, 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(outbox.lockout_notices().len(), 1, "{:#?}", outbox.read());
    assert!(told[0].starts_with(LOCKOUT_NOTICE_PREFIX), "{}", told[0]);
    assert!(
        told[0].contains(&format!("on testhost from {ATTACKER};")),
        "{}",
        told[0]
    );
    assert!(
        told[0].contains("SMS codes are locked until "),
        "{}",
        told[0]
    );
    assert_eq!(outbox.lockout_notices()[0].to, MOBILE);
    d.assert_log_clean(&codes.iter().map(String::as_str).collect::<Vec<_>>());
}

/// The owner is at the SMS prompt when the attacker locks SMS codes: the
/// owner's next answer (a resend, or a code) meets the lock and turns the
/// login into a backup-only one instead of ending it.
#[test]
fn a_lock_met_mid_login_turns_it_backup_only() {
    let (by_resend, by_code) = (unique_name("midr"), unique_name("midc"));
    let (d, pamd) = start(
        Daemon::builder()
            .user(&by_resend, MOBILE)
            .user(&by_code, ROOT_NUMBER)
            .section("lockout", "max_failures = 3")
            .section("lockout", "duration_seconds = 600")
            .section("resend", "cooldown_seconds = 0"),
    );
    let outbox = d.outbox();
    let mut secrets = Vec::new();
    for (user, first_answer) in [(&by_resend, "r"), (&by_code, "000000")] {
        let codes = generate_backup_codes(&d.socket(), user);
        let owner = login_with(&pamd, ALONE, user, Items::rhost("192.0.2.7"), |p| {
            Some(match p.index {
                0 => {
                    assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
                    // The attacker, meanwhile, from elsewhere.
                    std::thread::scope(|s| {
                        s.spawn(|| attack_until_backup_only(&pamd, user, &outbox, 2))
                            .join()
                            .expect("attacker panicked")
                    });
                    first_answer.to_string()
                }
                1 => {
                    assert_eq!(
                        p.text,
                        backup_only_prompt("SMS codes are locked for 10 min"),
                        "{}",
                        p.transcript
                    );
                    codes[0].clone()
                }
                _ => panic!("too many prompts:\n{}", p.transcript),
            })
        });
        owner.assert_code(PAM_SUCCESS);
        assert_code_prompted(&owner);
        secrets.extend(codes);
    }
    // Per user: the owner's code and the attacker's; nothing after the
    // lock (no resend went out). One notice each.
    assert_eq!(outbox.code_count(), 4);
    assert_eq!(notices(&outbox, 2).len(), 2);
    d.assert_log_clean(&secrets.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn backup_and_sms_guesses_spend_separate_budgets() {
    let (burn_sms, burn_backup) = (unique_name("bsms"), unique_name("bbak"));
    let (d, pamd) = start(
        Daemon::builder()
            .user(&burn_sms, MOBILE)
            .user(&burn_backup, ROOT_NUMBER)
            .section("lockout", "max_failures = 3")
            .section("lockout", "duration_seconds = 600")
            .section("lockout", "backup_max_failures = 4"),
    );
    let outbox = d.outbox();

    // 3 wrong SMS codes lock SMS codes; the backup budget is whole.
    let codes = generate_backup_codes(&d.socket(), &burn_sms);
    assert_eq!(attack_until_backup_only(&pamd, &burn_sms, &outbox, 2), 1);
    let in_with_backup = login_with(&pamd, ALONE, &burn_sms, Items::default(), |p| {
        assert!(p.text.starts_with("No SMS was sent ("), "{}", p.transcript);
        Some(codes[0].clone())
    });
    in_with_backup.assert_code(PAM_SUCCESS);

    // 4 wrong backup codes (typed at SMS prompts) spend the backup budget
    // and none of the SMS one: the SMS code still lets the owner in.
    let backup = generate_backup_codes(&d.socket(), &burn_backup);
    let mut wrong_backups = 0;
    for _ in 0..2 {
        let o = login_with(&pamd, ALONE, &burn_backup, Items::rhost(ATTACKER), |p| {
            assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
            wrong_backups += 1;
            Some(WRONG_BACKUP.into())
        });
        assert_ne!(o.code, PAM_SUCCESS, "{o}");
    }
    assert_eq!(wrong_backups, 6);
    let st = status_json(&d.socket(), &burn_backup);
    assert_eq!(st["locked"], false, "backup guesses locked SMS codes: {st}");
    assert_eq!(
        st["recent_failures"], 0,
        "backup guesses hit the SMS budget: {st}"
    );
    // Past its budget a backup code is not even checked: the right one
    // is a wrong guess here, and the SMS code still works.
    let mut typed = 0;
    let ok = login_with(&pamd, ALONE, &burn_backup, Items::default(), |p| {
        assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
        typed += 1;
        Some(if typed == 1 {
            backup[0].clone()
        } else {
            outbox.last_code()
        })
    });
    ok.assert_code(PAM_SUCCESS);
    assert_eq!(ok.transcript.errors(), vec![wrong_code_msg(2)], "{ok}");
    assert!(
        ok.transcript.infos().is_empty(),
        "a backup code was accepted: {ok}"
    );
    assert_eq!(backup_count(&d.socket(), &burn_backup), 10);
    let mut all: Vec<&str> = codes.iter().map(String::as_str).collect();
    all.extend(backup.iter().map(String::as_str));
    d.assert_log_clean(&all);
}

/// After a quiet period the next lockout is the first again (10 s), not
/// `ratio` times the last (30 s). About 21 s.
#[test]
fn lockout_escalation_decays_after_a_quiet_period() {
    let user = unique_name("decay");
    let (d, pamd) = start(
        Daemon::builder()
            .user(&user, MOBILE)
            .section("lockout", "max_failures = 1")
            .section("lockout", "duration_seconds = 10")
            .section("lockout", "ratio = 3")
            .section("lockout", "decay_seconds = 10"),
    );
    let outbox = d.outbox();
    let lock = || {
        let (o, _) = attack(&pamd, &user, &outbox);
        o.assert_code(PAM_AUTH_ERR);
        assert_code_prompted(&o);
        status_json(&d.socket(), &user)
    };
    let st = lock();
    assert_eq!(st["lockouts"], 1, "{st}");
    // The lock (10 s) ends, then the quiet period (10 s) passes.
    let quiet = wait_until(Duration::from_secs(25), || {
        let st = status_json(&d.socket(), &user);
        (st["locked"] == false).then_some(())
    });
    assert!(quiet.is_some(), "the 10 s lockout did not end");
    std::thread::sleep(Duration::from_secs(11));
    let st = lock();
    assert_eq!(st["lockouts"], 1, "the escalation did not decay: {st}");
    let left = st["locked_for_secs"].as_u64().expect("locked_for_secs");
    assert!(
        (8..=10).contains(&left),
        "second lockout should be 10 s again: {st}"
    );
    // Each lockout was told once.
    assert_eq!(notices(&outbox, 2).len(), 2);
    d.assert_log_clean(&[]);
}

/// The issue's "22 abandoned logins": they spend the victim's hourly send
/// budget, and the victim still gets in with a backup code.
#[test]
fn abandoned_logins_spend_the_send_budget_but_not_the_way_in() {
    let user = unique_name("abandon");
    let (d, pamd) = start(
        Daemon::builder()
            .user(&user, MOBILE)
            .section("send_budget", "per_user_per_hour = 3"),
    );
    let outbox = d.outbox();
    let codes = generate_backup_codes(&d.socket(), &user);
    for _ in 0..3 {
        let o = login_with(&pamd, ALONE, &user, Items::rhost(ATTACKER), |_| None);
        assert_ne!(o.code, PAM_SUCCESS, "{o}");
        assert_code_prompted(&o);
    }
    assert_eq!(outbox.code_count(), 3);
    let owner = login_with(&pamd, ALONE, &user, Items::default(), |p| {
        assert_eq!(
            p.text,
            backup_only_prompt("this account has had too many codes sent in the last hour"),
            "{}",
            p.transcript
        );
        Some(codes[0].clone())
    });
    owner.assert_code(PAM_SUCCESS);
    assert_eq!(outbox.code_count(), 3, "the budget held");
    d.assert_log_clean(&codes.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn an_enrolment_at_its_code_prompt_cannot_overwrite_roots_number() {
    let account = TestUser::create();
    let user = account.name.clone();
    let (d, pamd) = start(
        Daemon::builder()
            .section("policy", r#"no_mobile = "enroll""#)
            .section("send_budget", r#"allowed_countries = ["+1"]"#),
    );
    let outbox = d.outbox();
    let outcome = login_with(&pamd, ALONE, &user, Items::default(), |p: &Prompt<'_>| {
        Some(match p.index {
            0 => TYPED.into(),
            1 => {
                assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
                // Root sets the number while this login waits here.
                ctl(&d.socket(), &["set-mobile", &user, ROOT_NUMBER]).expect_code(0);
                outbox.last_code()
            }
            _ => panic!("too many prompts:\n{}", p.transcript),
        })
    });
    outcome.assert_code(PAM_AUTH_ERR);
    assert_code_prompted(&outcome);
    assert_eq!(
        outcome.transcript.errors(),
        vec!["a number was registered for this account while you were enrolling; log in again"],
        "{outcome}"
    );
    let st = status_json(&d.socket(), &user);
    assert_eq!(
        st["mobile"], "*******0002",
        "root's number was overwritten: {st}"
    );
    // The next login texts root's number.
    let next = login_with(
        &pamd,
        ALONE,
        &user,
        Items::default(),
        type_newest_code(&outbox),
    );
    next.assert_code(PAM_SUCCESS);
    assert_eq!(outbox.last().to, ROOT_NUMBER);
    assert!(
        !events(&d, "enroll_refused", &user, &[]).is_empty(),
        "{}",
        d.log()
    );
    assert_log_lacks_number(&d, TYPED);
    d.assert_log_clean(&[]);
}

#[test]
fn case_and_space_variants_of_a_real_account_are_never_skipped() {
    let account = TestUser::create();
    let name = account.name.clone();
    let (d, pamd) = start(
        Daemon::builder()
            .user(&name, MOBILE)
            .section("policy", r#"no_mobile = "skip""#),
    );
    let outbox = d.outbox();
    // The account itself is asked for a code.
    let ok = login_with(
        &pamd,
        PERMIT,
        &name,
        Items::default(),
        type_newest_code(&outbox),
    );
    ok.assert_code(PAM_SUCCESS);
    assert_code_prompted(&ok);
    let mut capitalised = name.clone();
    capitalised[..1].make_ascii_uppercase();
    let variants = [
        name.to_uppercase(),
        capitalised,
        format!("{name} "),
        format!(" {name}"),
    ];
    let mut skipped = 0;
    for v in &variants {
        // pam_permit first: a skip (PAM_IGNORE) would be PAM_SUCCESS.
        let o = login_with(&pamd, PERMIT, v, Items::default(), no_prompt);
        if o.code == PAM_SUCCESS {
            skipped += 1;
        }
        o.assert_code(PAM_AUTH_ERR);
        assert_eq!(o.transcript.errors(), vec![MSG_NO_MOBILE], "{v:?}: {o}");
    }
    assert_eq!(skipped, 0);
    assert_eq!(outbox.code_count(), 1);
    d.assert_log_clean(&[]);
}

/// The mask of a fake number is not always 11 digits long (real numbers
/// are not), and stays the same for the same unknown name.
#[test]
fn fake_challenges_do_not_all_look_alike() {
    let (d, pamd) = start(
        Daemon::builder()
            .section("policy", "hide_unknown_users = true")
            .section("send_budget", "per_rhost_per_hour = 1000")
            .section("send_budget", "per_user_per_hour = 1000"),
    );
    let mask = |ghost: &str| -> String {
        let o = login_with(&pamd, ALONE, ghost, Items::default(), |p| {
            assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
            None
        });
        assert_ne!(o.code, PAM_SUCCESS, "{o}");
        let p = o.transcript.prompts()[0].to_string();
        p["Code sent to ".len()..]
            .split(' ')
            .next()
            .unwrap_or("")
            .to_string()
    };
    let ghosts: Vec<String> = (0..12).map(|_| unique_name("ghost")).collect();
    let lengths: std::collections::BTreeSet<usize> = ghosts.iter().map(|g| mask(g).len()).collect();
    assert!(
        lengths.len() >= 2,
        "every fake number has the same length: {lengths:?}"
    );
    assert_eq!(
        mask(&ghosts[0]),
        mask(&ghosts[0]),
        "a ghost's number changed"
    );
    assert_eq!(d.outbox().count(), 0, "no SMS for unknown users");
}

/// `raw-client` as `uid`/`gid`: one Begin with `service` and `rhost`.
fn begin_as(uid: u32, gid: u32, d: &Daemon, user: &str, service: &str, rhost: &str) -> Response {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_raw-client"));
    cmd.arg(d.socket()).arg(user).arg(service).arg(rhost);
    cmd.uid(uid).gid(gid);
    let ran = run_bounded(&mut cmd, CHILD_LIMIT);
    ran.expect_code(0);
    let v = ran.json();
    serde_json::from_value(v["response"].clone())
        .unwrap_or_else(|e| panic!("raw-client got no response ({e}): {v}"))
}

#[test]
fn a_non_root_caller_cannot_pick_a_trusted_network_or_a_service_section() {
    let account = TestUser::create();
    let user = account.name.clone();
    let (uid, gid) = ids(&user);
    let (d, _pamd) = start(
        Daemon::builder()
            .top("allow_user_self = true")
            .user(&user, MOBILE)
            .section("policy", r#"trusted_networks = ["203.0.113.0/24"]"#)
            .section("service.hostile-off", "enabled = false"),
    );
    // The caller's rhost is in the trusted network; its service is off.
    for service in ["screen-locker", "hostile-off"] {
        let r = begin_as(uid, gid, &d, &user, service, ATTACKER);
        assert!(matches!(r, Response::Challenge(_)), "{service}: {r:?}");
    }
    assert_eq!(d.outbox().code_count(), 2);
    // Control: for root (sshd), the same rhost is trusted.
    let mut c = smsotp_proto::Client::connect(&d.socket(), Duration::from_secs(5), "test")
        .expect("connect as root");
    let r = c
        .call(&smsotp_proto::Request::Begin(smsotp_proto::BeginRequest {
            user: user.clone(),
            service: "sshd".into(),
            rhost: Some(ATTACKER.into()),
            tty: None,
            command: None,
        }))
        .expect("begin");
    assert!(
        matches!(
            r,
            Response::Skip {
                reason: SkipReason::TrustedNetwork
            }
        ),
        "{r:?}"
    );
    d.assert_log_clean(&[]);
}
