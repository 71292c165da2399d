//! Two `smsotpd` with different `hostname`s on one PostgreSQL, through
//! real libpam: what one host spends or charges, the other sees. A backup
//! code used on one is refused on the other; wrong codes on both hosts add
//! up to one budget; a user locked on one is locked on the other. And the
//! database going away mid-login denies (never waves through) until it
//! is back, when the same daemon serves again.

use smsotp_tests::daemon::{Daemon, DaemonBuilder};
use smsotp_tests::flows::*;
use smsotp_tests::libpam::{Prompt, PAM_AUTHINFO_UNAVAIL, PAM_AUTH_ERR, PAM_MAXTRIES, PAM_SUCCESS};
use smsotp_tests::outbox::{wrong_code, Outbox};
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::pg::Postgres;
use smsotp_tests::policy_kit::*;
use smsotp_tests::{require_root, unique_name};

const MOBILE: &str = "+15551230077";
const ON_A: &str = "fleet-a";
const ON_B: &str = "fleet-b";

struct Fleet {
    a: Daemon,
    b: Daemon,
    pamd: PamConfDir,
    // Dropped last: the daemons go first.
    _pg: Postgres,
}

/// `None` only where PostgreSQL is not installed and CI is unset (said
/// loudly by [`Postgres::start`]).
fn fleet(user: &str, b: impl Fn(DaemonBuilder) -> DaemonBuilder) -> Option<Fleet> {
    require_root("only root may ask the daemon for another user's code");
    let pg = Postgres::start()?;
    let url = pg.database();
    let host = |name: &str| {
        b(Daemon::builder()
            .hostname(name)
            .user(user, MOBILE)
            .postgres_store(&url))
        .start()
    };
    let (a, b) = (host("host-a"), host("host-b"));
    let pamd = PamConfDir::new();
    pamd.smsotp_service(ON_A, &a.socket(), "timeout=15");
    pamd.smsotp_service(ON_B, &b.socket(), "timeout=15");
    Some(Fleet {
        a,
        b,
        pamd,
        _pg: pg,
    })
}

fn always_wrong(outbox: &Outbox) -> impl FnMut(&Prompt<'_>) -> Option<String> + '_ {
    move |p| {
        assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
        Some(wrong_code(&outbox.last_code()))
    }
}

#[test]
fn a_backup_code_used_on_one_host_is_refused_on_the_other() {
    let user = unique_name("flbk");
    let Some(f) = fleet(&user, |b| b.section("backup_codes", "count = 3")) else {
        return;
    };
    let codes = generate_backup_codes(&f.a.socket(), &user);
    assert_eq!(backup_count(&f.b.socket(), &user), 3, "B sees A's codes");
    assert_eq!(status_json(&f.b.socket(), &user)["store"], "postgres");

    let (out_a, out_b) = (f.a.outbox(), f.b.outbox());
    let typed = |service: &str, outbox: &Outbox| {
        let outbox = outbox.clone();
        let code = codes[0].clone();
        login_with(&f.pamd, service, &user, Items::default(), move |p| {
            Some(match p.index {
                0 => code.clone(),
                1 => outbox.last().code(),
                _ => panic!("too many prompts:\n{}", p.transcript),
            })
        })
    };
    let used = typed(ON_A, &out_a);
    used.assert_code(PAM_SUCCESS);
    assert!(used.transcript.errors().is_empty(), "{used}");
    assert_eq!(backup_count(&f.b.socket(), &user), 2);

    // On B the spent code is just a wrong code; B's SMS code lets them in.
    let again = typed(ON_B, &out_b);
    again.assert_code(PAM_SUCCESS);
    assert_eq!(
        again.transcript.errors(),
        vec![wrong_code_msg(2)],
        "{again}"
    );
    assert_eq!(backup_count(&f.a.socket(), &user), 2);
}

#[test]
fn wrong_codes_on_both_hosts_add_up_and_a_lock_holds_on_both() {
    let user = unique_name("fllk");
    let Some(f) = fleet(&user, |b| {
        b.otp("max_attempts = 2")
            .section("lockout", "max_failures = 3")
            .section("lockout", "duration_seconds = 600")
    }) else {
        return;
    };
    let (out_a, out_b) = (f.a.outbox(), f.b.outbox());

    // Two wrong on A (2 of the user's 3) ...
    let first = login_with(
        &f.pamd,
        ON_A,
        &user,
        Items::rhost("192.0.2.1"),
        always_wrong(&out_a),
    );
    first.assert_code(PAM_MAXTRIES);
    assert_eq!(status_json(&f.b.socket(), &user)["recent_failures"], 2);

    // ... so the first wrong on B is the third, and locks.
    let second = login_with(
        &f.pamd,
        ON_B,
        &user,
        Items::rhost("192.0.2.2"),
        always_wrong(&out_b),
    );
    second.assert_code(PAM_AUTH_ERR);
    assert_eq!(second.transcript.code_prompts().len(), 1, "{second}");
    assert_eq!(
        second.transcript.errors(),
        vec!["Too many wrong codes: SMS codes are locked for this account for 10 min."],
        "{second}"
    );

    // Locked on A too: refused before any SMS.
    let sent = out_a.code_count();
    let third = login_with(&f.pamd, ON_A, &user, Items::rhost("192.0.2.1"), no_prompt);
    third.assert_code(PAM_AUTH_ERR);
    assert_eq!(out_a.code_count(), sent, "no SMS to a locked user");
    let st = status_json(&f.a.socket(), &user);
    assert_eq!(
        (st["locked"].as_bool(), st["lockouts"].as_u64()),
        (Some(true), Some(1)),
        "{st}"
    );

    // Unlocked on B: free on A.
    ctl(&f.b.socket(), &["unlock", &user]).expect_code(0);
    let ok = login_with(
        &f.pamd,
        ON_A,
        &user,
        Items::default(),
        type_newest_code(&out_a),
    );
    ok.assert_code(PAM_SUCCESS);
}

#[test]
fn a_database_outage_mid_login_denies_and_the_daemon_recovers_by_itself() {
    const STORE_DOWN: &str = "the SMS code service cannot record its state; ask your administrator";
    require_root("only root may ask the daemon for another user's code");
    let user = unique_name("flout");
    let Some(mut pg) = Postgres::start() else {
        return;
    };
    let d = Daemon::builder()
        .user(&user, MOBILE)
        .postgres_store(&pg.database())
        .start();
    let pamd = PamConfDir::new();
    // failmode=safe waves logins through only when the daemon is down;
    // a daemon that is up but cannot reach its database must still deny.
    pamd.smsotp_service(ON_A, &d.socket(), "timeout=15 failmode=safe");
    let outbox = d.outbox();

    // The database crashes while the user reads the SMS.
    let started = std::time::Instant::now();
    let mid = login_with(&pamd, ON_A, &user, Items::default(), |p| {
        assert_eq!(p.index, 0, "one prompt only:\n{}", p.transcript);
        pg.crash();
        assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
        Some(outbox.last_code())
    });
    mid.assert_code(PAM_AUTHINFO_UNAVAIL);
    assert_eq!(mid.transcript.errors(), vec![STORE_DOWN], "{mid}");
    // While it is down, a new login is denied at once, with no SMS.
    let sent = outbox.code_count();
    let down = login_with(&pamd, ON_A, &user, Items::default(), no_prompt);
    down.assert_code(PAM_AUTHINFO_UNAVAIL);
    assert_eq!(down.transcript.errors(), vec![STORE_DOWN], "{down}");
    assert_eq!(outbox.code_count(), sent);
    eprintln!(
        "two logins against a dead database: {:?}",
        started.elapsed()
    );

    // Back: the same daemon (no restart) serves again.
    pg.come_back();
    let pid = d.pid();
    let ok = login_with(
        &pamd,
        ON_A,
        &user,
        Items::default(),
        type_newest_code(&outbox),
    );
    ok.assert_code(PAM_SUCCESS);
    assert_eq!(d.pid(), pid, "recovered without a restart");
    assert!(d.log().contains("store_error"), "the outage is logged");
}
