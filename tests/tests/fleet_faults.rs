//! The fleet database failing under a real daemon and real libpam: down
//! when the daemon starts, shut down, restarted, or hung (SIGSTOP) between
//! the code being sent and the code being typed. Every login that cannot
//! be recorded is denied with the store's sentence, quickly, in
//! `failmode=secure` and `failmode=safe` alike (never PAM_IGNORE); nothing
//! is half-spent (the SQL says: no guess charged, no backup code used);
//! and the same daemon (same PID) serves again once the database is back.

use smsotp_tests::daemon::Daemon;
use smsotp_tests::flows::{type_newest_code, wrong_code_msg};
use smsotp_tests::libpam::{Outcome, PAM_AUTHINFO_UNAVAIL, PAM_SUCCESS};
use smsotp_tests::outbox::Outbox;
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::pg::Postgres;
use smsotp_tests::policy_kit::*;
use smsotp_tests::{require_root, unique_name};
use std::time::{Duration, Instant};

const MOBILE: &str = "+15551230088";
const STORE_DOWN: &str = "the SMS code service cannot record its state; ask your administrator";
const SECURE: &str = "faults-secure";
const SAFE: &str = "faults-safe";
/// The module's timeout in these stacks.
const MODULE_TIMEOUT: Duration = Duration::from_secs(10);
/// A refusal from the store must come well before the module gives up.
const PROMPT_DENIAL: Duration = Duration::from_secs(6);

struct Rig {
    d: Daemon,
    pamd: PamConfDir,
    db: String,
    // Dropped last: the daemon goes first.
    pg: Postgres,
}

fn rig(user: &str, pg_up: bool) -> Option<Rig> {
    require_root("only root may ask the daemon for another user's code");
    let pg = Postgres::start()?;
    let url = pg.database();
    let db = url
        .rsplit('/')
        .next()
        .and_then(|t| t.split('?').next())
        .unwrap()
        .to_string();
    if !pg_up {
        pg.shut_down();
    }
    let d = Daemon::builder()
        .user(user, MOBILE)
        .postgres_store(&url)
        .section("backup_codes", "count = 3")
        .start();
    let pamd = PamConfDir::new();
    let t = MODULE_TIMEOUT.as_secs();
    pamd.smsotp_service(SECURE, &d.socket(), &format!("timeout={t} failmode=secure"));
    pamd.smsotp_service(SAFE, &d.socket(), &format!("timeout={t} failmode=safe"));
    Some(Rig { d, pamd, db, pg })
}

impl Rig {
    fn sql(&self, q: &str) -> String {
        self.pg.psql(&self.db, q)
    }

    /// Guesses charged to the user (SMS and backup budgets), as stored.
    fn charged(&self, user: &str) -> (String, String) {
        (
            self.sql(&format!(
                "SELECT COALESCE(SUM(failures), 0) FROM smsotp.failures WHERE username = '{user}'"
            )),
            self.sql(&format!(
                "SELECT COALESCE(SUM(failures), 0) FROM smsotp.backup_failures WHERE username = '{user}'"
            )),
        )
    }

    /// After a denied login with one of the user's three backup codes.
    fn assert_nothing_spent(&self, user: &str) {
        assert_eq!(
            self.charged(user),
            ("0".into(), "0".into()),
            "no guess charged"
        );
        assert_eq!(
            self.unused_backup_codes(user),
            "3",
            "the backup code is not spent"
        );
    }

    fn unused_backup_codes(&self, user: &str) -> String {
        self.sql(&format!(
            "SELECT count(*) FROM smsotp.backup_codes WHERE username = '{user}' AND used_at IS NULL"
        ))
    }

    /// A login that must be refused at once, before any SMS.
    fn refused_at_once(&self, service: &str, user: &str, outbox: &Outbox) {
        let sent = outbox.code_count();
        let started = Instant::now();
        let out = login_with(&self.pamd, service, user, Items::default(), no_prompt);
        let took = started.elapsed();
        assert_denied_by_store(&out, service);
        assert!(took < PROMPT_DENIAL, "{service}: denied after {took:?}");
        assert_eq!(outbox.code_count(), sent, "{service}: no SMS");
        eprintln!("{service}: refused in {took:?}");
    }

    /// The next login works, in the same daemon process; how long the
    /// daemon took to notice the database is back is printed.
    fn serves_again(&self, user: &str, pid: Option<u32>) {
        let outbox = self.d.outbox();
        let started = Instant::now();
        let answered = wait_until(Duration::from_secs(45), || {
            (ctl(&self.d.socket(), &["status", user]).code == Some(0)).then_some(())
        });
        assert!(
            answered.is_some(),
            "the daemon never recovered:\n{}",
            self.d.log()
        );
        eprintln!(
            "recovered {:?} after the database came back",
            started.elapsed()
        );
        let ok = login_with(
            &self.pamd,
            SECURE,
            user,
            Items::default(),
            type_newest_code(&outbox),
        );
        ok.assert_code(PAM_SUCCESS);
        assert_eq!(self.d.pid(), pid, "recovered without a restart");
    }
}

/// doctor's findings about the store: (check, severity).
fn doctor_store(d: &Daemon) -> Vec<(String, String)> {
    let cfg = d.config_path().to_string_lossy().into_owned();
    let ran = ctl(
        &d.socket(),
        &[
            "--config",
            &cfg,
            "--json",
            "doctor",
            "--no-sshd",
            "--service",
            "faults-secure",
        ],
    );
    let v = ran.json();
    v["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .filter(|f| f["check"].as_str().is_some_and(|c| c.starts_with("store.")))
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn assert_denied_by_store(out: &Outcome, what: &str) {
    out.assert_code(PAM_AUTHINFO_UNAVAIL);
    assert_eq!(out.transcript.errors(), vec![STORE_DOWN], "{what}: {out}");
}

/// A login whose first prompt is answered with `answer` after `fault` ran.
fn login_across<'a>(
    r: &'a Rig,
    service: &str,
    user: &str,
    answer: String,
    mut fault: impl FnMut() + 'a,
) -> (Outcome, Duration) {
    let mut typed_at = None;
    let out = login_with(&r.pamd, service, user, Items::default(), |p| {
        assert_eq!(p.index, 0, "one prompt only:\n{}", p.transcript);
        assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
        fault();
        typed_at = Some(Instant::now());
        Some(answer.clone())
    });
    (out, typed_at.expect("prompted").elapsed())
}

#[test]
fn a_database_down_at_start_is_waited_for_and_every_login_is_refused_meanwhile() {
    let user = unique_name("fdst");
    let Some(mut r) = rig(&user, false) else {
        return;
    };
    let outbox = r.d.outbox();
    // Up and listening (its sockets must stay: a missing socket is what
    // failmode=safe waves through), but refusing.
    r.refused_at_once(SECURE, &user, &outbox);
    r.refused_at_once(SAFE, &user, &outbox);
    assert!(r.d.log().contains("store_error"), "{}", r.d.log());
    // A reload meanwhile must not kill it (its socket files would stay
    // with nobody listening: "no daemon" to failmode=safe).
    let pid = r.d.pid();
    // SAFETY: kill has no memory preconditions; the PID is our daemon's.
    unsafe { libc::kill(pid.expect("running") as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(300));
    r.refused_at_once(SAFE, &user, &outbox);
    assert!(r.d.log().contains("reload ignored"), "{}", r.d.log());

    r.pg.come_back();
    r.serves_again(&user, pid);
    assert!(r.d.log().contains("store_recovered"), "{}", r.d.log());
}

#[test]
fn a_database_shut_down_mid_login_spends_nothing_and_is_recovered_from() {
    let user = unique_name("fdmid");
    let Some(mut r) = rig(&user, true) else {
        return;
    };
    let codes = generate_backup_codes(&r.d.socket(), &user);
    let outbox = r.d.outbox();

    // The backup code is typed once the database has shut down.
    let (mid, took) = login_across(&r, SAFE, &user, codes[0].clone(), || r.pg.shut_down());
    assert_denied_by_store(&mid, "mid-login");
    assert!(
        took < PROMPT_DENIAL,
        "denied {took:?} after the code was typed"
    );
    // While it is down, no new login gets a code, whatever the failmode.
    r.refused_at_once(SECURE, &user, &outbox);
    r.refused_at_once(SAFE, &user, &outbox);
    // status says why it cannot show the user; root reads the reason,
    // others only that the store does not answer.
    let st = ctl(&r.d.socket(), &["status", &user]);
    st.expect_code(1);
    assert!(
        st.stderr
            .contains("store: postgres does NOT answer: state store postgresql://"),
        "{}",
        st.stderr
    );
    let check = ctl_as(65534, 65534, &r.d.socket(), &["--json", "store", "check"]);
    check.expect_code(1);
    let v = check.json();
    assert_eq!(
        (v["ok"].as_bool(), v["error"].as_str(), v["message"].as_str()),
        (
            Some(false),
            Some("store_unhealthy"),
            Some("store: postgres does NOT answer: the state store does not answer; ask your administrator")
        ),
        "{v}"
    );

    assert_eq!(
        doctor_store(&r.d),
        ["store.down", "store.pg.reachable"]
            .map(|c| (c.to_string(), "error".to_string()))
            .to_vec()
    );

    let pid = r.d.pid();
    r.pg.come_back();
    r.assert_nothing_spent(&user);
    r.serves_again(&user, pid);
    let check = ctl(&r.d.socket(), &["--json", "store", "check"]);
    check.expect_code(0);
    let v = check.json();
    let names: Vec<_> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(v["answers"], true, "{v}");
    assert_eq!(
        names,
        [("reachable", true), ("schema", true), ("writable", true)]
            .map(|(n, ok)| (n.to_string(), ok))
            .to_vec(),
        "{v}"
    );
    eprintln!("store check after recovery: {} us", v["latency_micros"]);
    assert_eq!(
        doctor_store(&r.d),
        [
            "store.answers",
            "store.pg.reachable",
            "store.pg.schema",
            "store.pg.writable"
        ]
        .map(|c| (c.to_string(), "ok".to_string()))
        .to_vec()
    );
}

#[test]
fn a_database_restarted_mid_login_is_used_again_at_once() {
    let user = unique_name("fdrst");
    let Some(r) = rig(&user, true) else {
        return;
    };
    let codes = generate_backup_codes(&r.d.socket(), &user);
    let pid = r.d.pid();

    // Every pooled connection dies with the restart; the database is back
    // before the code arrives, so the daemon must not fail on a dead
    // connection but take a fresh one: the code works, exactly once.
    let (mid, took) = login_across(&r, SECURE, &user, codes[0].clone(), || r.pg.restart());
    mid.assert_code(PAM_SUCCESS);
    assert!(mid.transcript.errors().is_empty(), "{mid}");
    assert!(
        took < PROMPT_DENIAL,
        "answered {took:?} after the code was typed"
    );
    assert_eq!(r.unused_backup_codes(&user), "2", "spent once");
    assert_eq!(
        r.charged(&user),
        ("0".into(), "0".into()),
        "a right code clears"
    );

    // The spent code is only a wrong code after a second restart too;
    // the SMS code then lets them in.
    r.pg.restart();
    let outbox = r.d.outbox();
    let spent = codes[0].clone();
    let again = login_with(&r.pamd, SAFE, &user, Items::default(), move |p| {
        Some(match p.index {
            0 => spent.clone(),
            1 => outbox.last().code(),
            _ => panic!("too many prompts:\n{}", p.transcript),
        })
    });
    again.assert_code(PAM_SUCCESS);
    assert_eq!(
        again.transcript.errors(),
        vec![wrong_code_msg(2)],
        "{again}"
    );
    assert_eq!(r.unused_backup_codes(&user), "2");
    assert_eq!(r.d.pid(), pid, "no restart of the daemon");
}

#[test]
fn a_hung_database_mid_login_denies_within_the_deadline_and_spends_nothing() {
    let user = unique_name("fdhang");
    let Some(r) = rig(&user, true) else {
        return;
    };
    let codes = generate_backup_codes(&r.d.socket(), &user);
    let outbox = r.d.outbox();
    let pid = r.d.pid();

    let mut frozen = None;
    let (mid, took) = login_across(&r, SAFE, &user, codes[0].clone(), || {
        frozen = Some(r.pg.freeze())
    });
    // The daemon's own deadline, not the module's timeout, ends it.
    assert_denied_by_store(&mid, "hung mid-login");
    assert!(
        took < PROMPT_DENIAL,
        "denied {took:?} after the code was typed"
    );
    r.refused_at_once(SECURE, &user, &outbox);
    r.refused_at_once(SAFE, &user, &outbox);

    // Thawed: whatever the daemon had queued must not land as a charge
    // or a spend now that the user has been told "denied".
    drop(frozen.take());
    std::thread::sleep(Duration::from_secs(2));
    r.assert_nothing_spent(&user);
    r.serves_again(&user, pid);
}

/// Without the daemon's deadline the module's own timeout still denies a
/// hung database, in both failmodes: slow, never open.
#[test]
fn a_hung_database_never_lets_a_login_through() {
    let user = unique_name("fdhng2");
    let Some(r) = rig(&user, true) else {
        return;
    };
    let pid = r.d.pid();
    let frozen = r.pg.freeze();
    for service in [SECURE, SAFE] {
        let started = Instant::now();
        let out = login_with(&r.pamd, service, &user, Items::default(), no_prompt);
        let took = started.elapsed();
        out.assert_code(PAM_AUTHINFO_UNAVAIL);
        assert!(
            took < MODULE_TIMEOUT + Duration::from_secs(3),
            "{service}: {took:?}"
        );
        eprintln!("{service}: a hung database denied in {took:?}");
    }
    frozen.thaw();
    r.serves_again(&user, pid);
}
