//! `smsotpctl` against the real daemon: every admin and self-service
//! command, human and `--json` output, and the exit codes scripts rely on
//! (0 ok, 1 refused/failed, 2 usage, 3 unreachable, 4 busy). The
//! self-service commands run as a real unprivileged local account
//! (`setpriv --reuid --regid --init-groups`), so the daemon's SO_PEERCRED
//! checks are what decides.

use smsotp_proto::{Response, SkipReason};
use smsotp_tests::ctl::Ctl;
use smsotp_tests::daemon::{contains_token, Daemon};
use smsotp_tests::session::{self, BackupUse, Session};
use smsotp_tests::users::TestUser;
use smsotp_tests::{require_root, unique_name};
use std::time::{Duration, Instant};

const MOBILE: &str = "+15551234567";
const MASKED: &str = "*******4567";
/// Digits of MOBILE after the country code: must never be printed.
const MOBILE_DIGITS: &str = "5551234567";
const SERVICE: &str = "smsotp-e2e";
const MSG_NOT_ROOT: &str = "only root may act on another user's account";

fn daemon_with(user: &str) -> Daemon {
    require_root("only root may use the admin commands");
    Daemon::builder().user(user, MOBILE).start()
}

#[test]
fn status_shows_only_the_masked_number_in_both_forms() {
    let alice = unique_name("alice");
    let d = daemon_with(&alice);
    let ctl = Ctl::new(&d.socket());

    let human = ctl.run(&["status", &alice]);
    human.expect_code(0);
    let expected = format!(
        "user:              {alice}\nmobile:            {MASKED}\nmobile source:     users.toml\n\
         locked:            no\nrecent failures:   0\nlockouts:          0\n\
         backup codes left: 0\nopted out:         no\nstore:             sqlite\n"
    );
    // The last line is the store's answer time, which varies.
    let (fixed, health) = human
        .stdout
        .strip_suffix('\n')
        .and_then(|t| t.rsplit_once('\n'))
        .unwrap_or_else(|| panic!("{human:#?}"));
    assert_eq!(format!("{fixed}\n"), expected, "{human:#?}");
    assert!(
        health.starts_with("store health:      answers (") && health.ends_with(" ms)"),
        "{human:#?}"
    );
    assert!(!human.all_output().contains(MOBILE_DIGITS), "{human:#?}");

    let json = ctl.run(&["--json", "status", &alice]);
    json.expect_code(0);
    let mut v = json.json();
    let health = v
        .as_object_mut()
        .and_then(|o| o.remove("store_health"))
        .unwrap_or_else(|| panic!("{json:#?}"));
    assert_eq!(
        (health["store"].as_str(), health["answers"].as_bool()),
        (Some("sqlite"), Some(true)),
        "{health}"
    );
    assert_eq!(
        v,
        serde_json::json!({"ok": true, "user": alice, "mobile": MASKED,
            "mobile_source": "users.toml", "locked": false, "locked_for_secs": null,
            "recent_failures": 0, "lockouts": 0, "backup_codes_left": 0, "opted_out": false, "store": "sqlite"})
    );
    assert!(!json.all_output().contains(MOBILE_DIGITS), "{json:#?}");

    // A user the daemon knows nothing about: no number, exit 0.
    let nobody = unique_name("nobody");
    let v = ctl
        .run(&["--json", "status", &nobody])
        .expect_code(0)
        .json();
    assert_eq!(v["mobile"], serde_json::Value::Null, "{v}");
    assert_eq!(v["mobile_source"], "none", "{v}");
    d.assert_log_clean(&[]);
}

#[test]
fn set_mobile_refuses_users_file_users_and_stores_for_others() {
    let alice = unique_name("alice");
    let bob = unique_name("bob");
    let d = daemon_with(&alice);
    let ctl = Ctl::new(&d.socket());

    let refused = ctl.run(&["set-mobile", &alice, "+15550001111"]);
    refused.expect_code(1);
    assert!(
        refused
            .stderr
            .contains("number comes from the users file; change it there"),
        "{refused:#?}"
    );
    let v = ctl
        .run(&["--json", "set-mobile", &alice, "+15550001111"])
        .expect_code(1)
        .json();
    assert_eq!(
        (v["ok"].clone(), v["error"].clone()),
        (false.into(), "bad_request".into())
    );
    // The users file still decides.
    assert_eq!(
        session::status(&d.socket(), &alice).mobile.as_deref(),
        Some(MASKED)
    );

    let bad = ctl.run(&["set-mobile", &bob, "0800 NOT A NUMBER"]);
    bad.expect_code(1);
    assert!(bad.stderr.starts_with("smsotpctl: number "), "{bad:#?}");
    // `-` reads the number from stdin; /dev/null holds none: usage error.
    let empty = ctl.run(&["set-mobile", &bob, "-"]);
    empty.expect_code(2);
    assert!(empty.stderr.contains("no number on stdin"), "{empty:#?}");

    let number = "+447700900123";
    let digits = "447700900123";
    let set = ctl.run(&["set-mobile", &bob, number]);
    set.expect_code(0);
    assert_eq!(
        set.stdout,
        format!("{bob}: number set to ********0123\n"),
        "{set:#?}"
    );
    let set_json = ctl.run(&["--json", "set-mobile", &bob, number]);
    let v = set_json.expect_code(0).json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["action"], "set-mobile");
    for run in [&set, &set_json] {
        assert!(
            !run.all_output().contains(&digits[1..]),
            "the number was echoed in full: {run:#?}"
        );
    }
    let v = ctl.run(&["--json", "status", &bob]).expect_code(0).json();
    assert_eq!(v["mobile"], "********0123", "{v}");
    assert_eq!(v["mobile_source"], "enrolled", "{v}");

    // A login now texts that number.
    let (_, r) = Session::begin(&d.socket(), &bob, SERVICE).expect("begin");
    assert!(matches!(r, Response::Challenge(_)), "{r:?}");
    assert_eq!(d.outbox().last().to, number);
    let log = d.log();
    assert!(
        !log.contains(&digits[1..]),
        "daemon log holds the number:\n{log}"
    );
    d.assert_log_clean(&[]);
}

#[test]
fn remove_asks_for_yes_off_a_terminal_and_forgets_everything() {
    let bob = unique_name("bob");
    let d = daemon_with(&unique_name("alice"));
    let ctl = Ctl::new(&d.socket());
    ctl.run(&["set-mobile", &bob, "+15559876543"])
        .expect_code(0);
    ctl.run(&["backup-codes", "generate", &bob]).expect_code(0);

    let no = ctl.run(&["remove", &bob]);
    no.expect_code(2);
    assert_eq!(
        no.stderr,
        format!(
            "smsotpctl: not removing {bob} without confirmation: stdin is not a terminal; \
             pass --yes\n"
        ),
        "{no:#?}"
    );
    let st = session::status(&d.socket(), &bob);
    assert!(st.mobile.is_some() && st.backup_codes_left == 10, "{st:?}");

    let v = ctl
        .run(&["--json", "remove", "--yes", &bob])
        .expect_code(0)
        .json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["action"], "remove", "{v}");
    let st = session::status(&d.socket(), &bob);
    assert_eq!(st.mobile, None, "{st:?}");
    assert_eq!(st.mobile_source, "none");
    assert_eq!(st.backup_codes_left, 0);

    let again = ctl.run(&["remove", "-y", &bob]);
    again.expect_code(0);
    assert_eq!(again.stdout, format!("{bob}: nothing was stored\n"));
    d.assert_log_clean(&[]);
}

#[test]
fn unlock_lifts_a_lockout() {
    require_root("only root may use the admin commands");
    let carol = unique_name("carol");
    let d = Daemon::builder()
        .user(&carol, MOBILE)
        .otp("length = 10")
        .otp("max_attempts = 10")
        .section("lockout", "max_failures = 3")
        .start();
    let ctl = Ctl::new(&d.socket());
    let (mut s, _) = Session::begin(&d.socket(), &carol, SERVICE).expect("begin");
    for _ in 0..3 {
        s.verify("0000000000").expect("verify");
    }
    let human = ctl.run(&["status", &carol]);
    human.expect_code(0);
    assert!(
        human
            .stdout
            .contains("\nlocked:            yes (5 min left)\n"),
        "{human:#?}"
    );
    assert!(
        human.stdout.contains("\nlockouts:          1\n"),
        "{human:#?}"
    );
    let v = ctl.run(&["--json", "status", &carol]).expect_code(0).json();
    assert_eq!(v["locked"], true);
    assert!(
        v["locked_for_secs"]
            .as_u64()
            .is_some_and(|s| s > 290 && s <= 300),
        "{v}"
    );

    let un = ctl.run(&["unlock", &carol]);
    un.expect_code(0);
    assert_eq!(
        un.stdout,
        format!("{carol}: unlocked and failure count cleared\n")
    );
    let v = ctl.run(&["--json", "status", &carol]).expect_code(0).json();
    assert_eq!(
        (v["locked"].clone(), v["recent_failures"].clone()),
        (false.into(), 0.into())
    );
    let (_, r) = Session::begin(&d.socket(), &carol, SERVICE).expect("begin");
    assert!(matches!(r, Response::Challenge(_)), "after unlock: {r:?}");

    let v = ctl.run(&["--json", "unlock", &carol]).expect_code(0).json();
    assert_eq!(v["message"], format!("{carol}: was not locked"), "{v}");
    d.assert_log_clean(&[]);
}

/// `ABCD-EFGH-JKMN-PQRS`: 16 characters of the unambiguous alphabet.
fn is_backup_code(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            p.len() == 4
                && p.bytes()
                    .all(|b| b"ABCDEFGHJKMNPQRSTUVWXYZ23456789".contains(&b))
        })
}

#[test]
fn backup_codes_are_printed_once_counted_and_never_logged() {
    let alice = unique_name("alice");
    let d = daemon_with(&alice);
    let ctl = Ctl::new(&d.socket());

    let gen = ctl.run(&["backup-codes", "generate", &alice]);
    gen.expect_code(0);
    let codes: Vec<String> = gen.stdout.lines().map(str::to_string).collect();
    assert_eq!(codes.len(), 10, "{gen:#?}");
    assert!(codes.iter().all(|c| is_backup_code(c)), "{gen:#?}");
    assert!(
        gen.stderr.starts_with(&format!(
            "10 new backup codes for {alice}. Each works once;"
        )),
        "{gen:#?}"
    );
    for c in &codes {
        assert!(
            !gen.stderr.contains(c.as_str()),
            "a code on stderr: {gen:#?}"
        );
    }

    let count = ctl.run(&["backup-codes", "count", &alice]);
    count.expect_code(0);
    assert_eq!(count.stdout, "10\n");
    // Nothing else ever shows them again.
    let status = ctl.run(&["--json", "status", &alice]);
    for c in &codes {
        assert!(!status.all_output().contains(c.as_str()));
    }

    // A printed code lets a login in once.
    assert_eq!(
        session::use_backup_code(&d.socket(), &alice, SERVICE, &codes[0]),
        BackupUse::Verified
    );
    let v = ctl
        .run(&["--json", "backup-codes", "count", &alice])
        .expect_code(0)
        .json();
    assert_eq!(
        v,
        serde_json::json!({"ok": true, "user": alice, "backup_codes_left": 9})
    );

    // Regenerating replaces the whole set.
    let v = ctl
        .run(&["--json", "backup-codes", "generate", &alice])
        .expect_code(0)
        .json();
    let new: Vec<String> = v["codes"]
        .as_array()
        .expect("codes array")
        .iter()
        .map(|c| c.as_str().expect("a string").to_string())
        .collect();
    assert_eq!(new.len(), 10, "{v}");
    assert!(
        new.iter().all(|c| is_backup_code(c) && !codes.contains(c)),
        "{v}"
    );
    assert_eq!(
        session::use_backup_code(&d.socket(), &alice, SERVICE, &codes[1]),
        BackupUse::Refused,
        "a code of the replaced set still works"
    );
    assert_eq!(ctl.run(&["backup-codes", "count", &alice]).stdout, "10\n");

    // The daemon log holds no code, whole or its secret part.
    let log = d.log();
    for c in codes.iter().chain(&new) {
        let secret = &c[5..];
        assert!(
            !contains_token(&log, c) && !log.contains(secret) && !log.contains(&c.replace('-', "")),
            "daemon log holds backup code {c}:\n{log}"
        );
    }
    d.assert_log_clean(&[]);
}

#[test]
fn test_sms_reaches_the_outbox() {
    let alice = unique_name("alice");
    let d = daemon_with(&alice);
    let ctl = Ctl::new(&d.socket());
    let run = ctl.run(&["test-sms", &alice]);
    run.expect_code(0);
    assert!(
        run.stdout
            .starts_with(&format!("{alice}: test message sent via outbox")),
        "{run:#?}"
    );
    let sms = d.outbox().last();
    assert_eq!(sms.to, MOBILE);
    assert!(sms.body.starts_with("smsotp test message"), "{sms:?}");
    let v = ctl
        .run(&["--json", "test-sms", &alice])
        .expect_code(0)
        .json();
    assert_eq!(
        (v["ok"].clone(), v["provider"].clone()),
        (true.into(), "outbox".into())
    );
    assert_eq!(d.outbox().count(), 2);

    let stranger = unique_name("stranger");
    let none = ctl.run(&["test-sms", &stranger]);
    none.expect_code(1);
    assert!(none.stderr.contains("has no mobile number"), "{none:#?}");
    assert_eq!(d.outbox().count(), 2);
    d.assert_log_clean(&[]);
}

#[test]
fn opt_out_and_in_as_the_calling_user_only_where_optional() {
    require_root("creates a local user and switches to it");
    let me = TestUser::create();
    let other = unique_name("other");
    // sshd stays mandatory; su is where a user may opt out.
    let d = Daemon::builder()
        .user(&me.name, MOBILE)
        .user(&other, "+15550002222")
        .section("service.su", "mandatory = false")
        .start();
    let as_me = Ctl::new(&d.socket()).as_user(&me.name);

    // Opting out takes the code sent to the phone (read from stdin here).
    let outbox = d.outbox();
    let out = as_me.run_answering(&["opt-out"], move || outbox.nth(1).code());
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        format!(
            "{}: opted out of SMS codes where they are not mandatory\n",
            me.name
        ),
        "{out:#?}"
    );
    let v = as_me.run(&["--json", "status"]).expect_code(0).json();
    assert_eq!(
        (v["user"].clone(), v["opted_out"].clone()),
        (me.name.clone().into(), true.into())
    );
    // The opt-out counts only where the service allows it.
    let (_, r) = Session::begin(&d.socket(), &me.name, "su").expect("begin");
    assert_eq!(
        r,
        Response::Skip {
            reason: SkipReason::OptedOut
        }
    );
    let (_, r) = Session::begin(&d.socket(), &me.name, "sshd").expect("begin");
    assert!(matches!(r, Response::Challenge(_)), "mandatory sshd: {r:?}");

    let v = as_me.run(&["--json", "opt-in"]).expect_code(0).json();
    assert_eq!(
        (v["action"].clone(), v["opted_out"].clone()),
        ("opt-in".into(), false.into())
    );
    assert!(!session::status(&d.socket(), &me.name).opted_out);
    let (_, r) = Session::begin(&d.socket(), &me.name, "su").expect("begin");
    assert!(matches!(r, Response::Challenge(_)), "after opt-in: {r:?}");

    // Not for anyone else.
    let theirs = as_me.run(&["status", &other]);
    theirs.expect_code(1);
    assert_eq!(
        theirs.stderr,
        format!("smsotpctl: {MSG_NOT_ROOT}\n"),
        "{theirs:#?}"
    );
    assert!(!theirs.all_output().contains("0002222"), "{theirs:#?}");
    let v = as_me
        .run(&["--json", "status", &other])
        .expect_code(1)
        .json();
    assert_eq!(
        v,
        serde_json::json!({"ok": false, "error": "permission_denied", "message": MSG_NOT_ROOT})
    );
    let v = as_me
        .run(&["--json", "opt-out", "--user", &other])
        .expect_code(1)
        .json();
    assert_eq!(v["error"], "permission_denied", "{v}");
    assert!(!session::status(&d.socket(), &other).opted_out);
    let v = as_me
        .run(&["--json", "unlock", &me.name])
        .expect_code(1)
        .json();
    assert_eq!(v["message"], "only root may do this", "{v}");
    // Their own backup codes, yes.
    let count = as_me.run(&["backup-codes", "count"]);
    count.expect_code(0);
    assert_eq!(count.stdout, "0\n");
    d.assert_log_clean(&[]);
}

#[test]
fn opt_out_is_refused_where_every_service_is_mandatory() {
    require_root("creates a local user and switches to it");
    let me = TestUser::create();
    let d = Daemon::builder().user(&me.name, MOBILE).start();
    let as_me = Ctl::new(&d.socket()).as_user(&me.name);
    let run = as_me.run(&["opt-out"]);
    run.expect_code(1);
    assert_eq!(
        run.stderr, "smsotpctl: SMS codes are mandatory on this host\n",
        "{run:#?}"
    );
    let v = as_me.run(&["--json", "opt-out"]).expect_code(1).json();
    assert_eq!(v["error"], "permission_denied", "{v}");
    assert!(!session::status(&d.socket(), &me.name).opted_out);
    // Opting in (back) is always allowed.
    as_me.run(&["opt-in"]).expect_code(0);
}

#[test]
fn unreachable_daemon_is_exit_3() {
    require_root("starts a daemon");
    let dir = tempfile::tempdir_in("/tmp").expect("temp dir");
    let missing = dir.path().join("no-such.sock");
    let ctl = Ctl::new(&missing);
    let run = ctl.run(&["status", "alice"]);
    run.expect_code(3);
    assert!(
        run.stderr.starts_with("smsotpctl: no daemon at "),
        "{run:#?}"
    );
    let v = ctl
        .run(&["--json", "unlock", "alice"])
        .expect_code(3)
        .json();
    assert_eq!(
        (v["ok"].clone(), v["error"].clone()),
        (false.into(), "unreachable".into())
    );

    // A daemon that was there and stopped.
    let alice = unique_name("alice");
    let mut d = daemon_with(&alice);
    let ctl = Ctl::new(&d.socket());
    ctl.run(&["status", &alice]).expect_code(0);
    d.stop();
    ctl.run(&["status", &alice]).expect_code(3);
    ctl.run(&["backup-codes", "count", &alice]).expect_code(3);
}

#[test]
fn busy_daemon_is_exit_4() {
    require_root("only root may use the admin commands");
    let alice = unique_name("alice");
    let d = Daemon::builder()
        .user(&alice, MOBILE)
        .top("max_connections = 1")
        .start();
    let ctl = Ctl::new(&d.socket());
    // The start-up probe's connection may still hold the only slot for a
    // moment: take it as soon as it is free.
    let deadline = Instant::now() + Duration::from_secs(5);
    let held = loop {
        match Session::connect(&d.socket()) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot take the one slot: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    // Every refusal, not just some: scripts branch on this code, and the
    // same refusal seen as "unreachable" is what failmode=safe waves through.
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..10 {
        let run = ctl.run(&["status", &alice]);
        *seen
            .entry((run.code, run.stderr.trim().to_string()))
            .or_insert(0) += 1;
    }
    assert_eq!(
        seen.len(),
        1,
        "10 calls to a daemon at max_connections gave different answers: {seen:#?}"
    );
    let ((code, stderr), _) = seen.into_iter().next().expect("one answer");
    assert_eq!(
        (code, stderr.as_str()),
        (
            Some(4),
            "smsotpctl: the SMS code service is busy; try again shortly"
        )
    );
    let v = ctl.run(&["--json", "status", &alice]).expect_code(4).json();
    assert_eq!(
        (v["ok"].clone(), v["error"].clone()),
        (false.into(), "busy".into())
    );

    // Freed: served again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let run = ctl.run(&["status", &alice]);
        if run.code == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still busy after release: {run:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
