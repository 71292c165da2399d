//! Moving a host into the fleet: a real daemon on its SQLite file enrols
//! a number, hands out backup codes (one of them used) and locks a user;
//! `smsotpctl store import FILE` copies that file into PostgreSQL through
//! a daemon on the fleet database; that daemon then logs the user in at
//! the same number, takes a remaining backup code, refuses the used one,
//! and keeps the lock. A second copy reads the same rows and writes none.

use smsotp_tests::daemon::{Daemon, DaemonBuilder};
use smsotp_tests::flows::{type_newest_code, wrong_code_msg};
use smsotp_tests::libpam::{PAM_AUTH_ERR, PAM_MAXTRIES, PAM_SUCCESS};
use smsotp_tests::outbox::wrong_code;
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::pg::Postgres;
use smsotp_tests::policy_kit::*;
use smsotp_tests::{require_root, unique_name};

const MOBILE: &str = "+15551230099";
const LOCKED_MOBILE: &str = "+15551230098";
const ON_HOST: &str = "copy-host";
const ON_FLEET: &str = "copy-fleet";

fn host(b: DaemonBuilder) -> DaemonBuilder {
    b.otp("max_attempts = 2")
        .section("lockout", "max_failures = 2")
        .section("lockout", "duration_seconds = 600")
        .section("backup_codes", "count = 3")
}

/// The per-table counts of `smsotpctl --json store import FILE`.
fn import(d: &Daemon, file: &str) -> Vec<(String, u64, u64)> {
    let ran = ctl(&d.socket(), &["--json", "store", "import", file]);
    ran.expect_code(0);
    let v = ran.json();
    v["tables"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["read"].as_u64().unwrap(),
                t["written"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn count(rows: &[(String, u64, u64)], table: &str) -> (u64, u64) {
    rows.iter()
        .find(|(t, _, _)| t == table)
        .map(|(_, r, w)| (*r, *w))
        .unwrap_or_else(|| panic!("no {table} in {rows:?}"))
}

#[test]
fn a_sqlite_host_moves_into_the_fleet_with_its_numbers_codes_and_locks() {
    require_root("only root may ask the daemon for another user's code");
    let user = unique_name("cpok");
    let locked = unique_name("cplk");
    let Some(pg) = Postgres::start() else {
        return;
    };
    let pamd = PamConfDir::new();

    // The host as it was: everything enrolled through the daemon.
    let mut old = host(Daemon::builder()).start();
    pamd.smsotp_service(ON_HOST, &old.socket(), "timeout=15");
    ctl(&old.socket(), &["set-mobile", &user, MOBILE]).expect_code(0);
    ctl(&old.socket(), &["set-mobile", &locked, LOCKED_MOBILE]).expect_code(0);
    let codes = generate_backup_codes(&old.socket(), &user);
    let outbox = old.outbox();
    let spent = codes[0].clone();
    let used = login_with(&pamd, ON_HOST, &user, Items::default(), |p| {
        assert_eq!(p.index, 0, "{}", p.transcript);
        Some(spent.clone())
    });
    used.assert_code(PAM_SUCCESS);
    let lock = login_with(&pamd, ON_HOST, &locked, Items::default(), |p| {
        assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
        Some(wrong_code(&outbox.last_code()))
    });
    assert!([PAM_AUTH_ERR, PAM_MAXTRIES].contains(&lock.code), "{lock}");
    assert_eq!(status_json(&old.socket(), &locked)["locked"], true);
    let file = old.dir().join("state.db").to_string_lossy().into_owned();
    old.stop();

    // The fleet daemon (its own, empty database) copies the file.
    let fleet = host(Daemon::builder().postgres_store(&pg.database())).start();
    pamd.smsotp_service(ON_FLEET, &fleet.socket(), "timeout=15");
    let first = import(&fleet, &file);
    eprintln!("first copy: {first:?}");
    assert_eq!(count(&first, "mobiles"), (2, 2));
    assert_eq!(count(&first, "backup_codes"), (3, 3));
    assert_eq!(count(&first, "failures").0, count(&first, "failures").1);
    assert!(count(&first, "failures").0 >= 1, "{first:?}");
    let again = import(&fleet, &file);
    assert!(
        again.iter().all(|(_, _, w)| *w == 0),
        "a second copy writes nothing: {again:?}"
    );
    assert_eq!(
        again.iter().map(|(t, r, _)| (t, r)).collect::<Vec<_>>(),
        first.iter().map(|(t, r, _)| (t, r)).collect::<Vec<_>>(),
        "and reads the same"
    );

    // The same number, the remaining codes, the lock.
    let st = status_json(&fleet.socket(), &user);
    assert_eq!(
        (
            st["mobile_source"].as_str(),
            st["backup_codes_left"].as_u64()
        ),
        (Some("enrolled"), Some(2)),
        "{st}"
    );
    let out = fleet.outbox();
    let sms = login_with(
        &pamd,
        ON_FLEET,
        &user,
        Items::default(),
        type_newest_code(&out),
    );
    sms.assert_code(PAM_SUCCESS);
    assert_eq!(out.last().to, MOBILE, "the copied number gets the code");
    let (used_code, fresh) = (codes[0].clone(), codes[1].clone());
    let backup = login_with(&pamd, ON_FLEET, &user, Items::default(), move |p| {
        Some(match p.index {
            0 => used_code.clone(),
            1 => fresh.clone(),
            _ => panic!("too many prompts:\n{}", p.transcript),
        })
    });
    backup.assert_code(PAM_SUCCESS);
    assert_eq!(
        backup.transcript.errors(),
        vec![wrong_code_msg(1)],
        "the used code is refused, a remaining one is taken: {backup}"
    );
    assert_eq!(backup_count(&fleet.socket(), &user), 1);

    let sent = out.code_count();
    let refused = login_with(&pamd, ON_FLEET, &locked, Items::default(), no_prompt);
    refused.assert_code(PAM_AUTH_ERR);
    assert_eq!(out.code_count(), sent, "no SMS to a locked user");
    assert_eq!(status_json(&fleet.socket(), &locked)["locked"], true);

    // The copy never revives what the fleet spent since.
    let third = import(&fleet, &file);
    assert!(third.iter().all(|(_, _, w)| *w == 0), "{third:?}");
    assert_eq!(backup_count(&fleet.socket(), &user), 1);
}

#[test]
fn import_is_root_only_and_needs_a_postgres_store() {
    require_root("the test switches to another uid");
    let d = Daemon::builder().start();
    let file = d.dir().join("state.db").to_string_lossy().into_owned();
    let ran = ctl(&d.socket(), &["store", "import", &file]);
    ran.expect_code(1);
    assert!(ran.stderr.contains("not PostgreSQL"), "{}", ran.stderr);
    let ran = ctl_as(65534, 65534, &d.socket(), &["store", "import", &file]);
    ran.expect_code(1);
    assert!(ran.stderr.contains("only root"), "{}", ran.stderr);
}
