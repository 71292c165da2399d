//! Hostile local users and backup codes (issue 9, findings 2 and 5, and
//! the size of a code):
//!
//! * a flood of generation requests, by root for a user and by uid 65534
//!   for itself, keeps the daemon under 64 MiB and gives its memory back,
//!   while a backup-code login still answers in bounded time;
//! * a caller other than root gets no codes and no opt-out without the
//!   SMS code sent to its phone, a wrong code costs a guess, and the phone
//!   hears about every new set;
//! * new codes have 16 characters and 12-character codes of earlier sets
//!   still open a login.
//!
//! Figures (RSS, sets made, SMS sent, time to answer) are printed and
//! asserted.

use argon2::password_hash::{PasswordHasher, SaltString};
use serde_json::{json, Value};
use smsotp_proto::{Client, Request, Response};
use smsotp_tests::ctl::Ctl;
use smsotp_tests::daemon::Daemon;
use smsotp_tests::faultkit::{hwm_kib, requests_as, rss_kib};
use smsotp_tests::libpam::{Outcome, PAM_SUCCESS};
use smsotp_tests::outbox::{extract_code, wrong_code, Outbox, Sms};
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::policy_kit::{generate_backup_codes, login_with, status_json, Items};
use smsotp_tests::users::TestUser;
use smsotp_tests::{require_root, unique_name};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;
const VICTIM_MOBILE: &str = "+15557780001";
const FLOODED_MOBILE: &str = "+15557780002";
const SELF_MOBILE: &str = "+15557780003";
const SERVICE: &str = "hostile-backup";
const PARALLEL: usize = 32;
const MIB: u64 = 1024;

fn kind(v: &Value) -> &str {
    v["type"].as_str().unwrap_or("")
}

/// `attacker burst` as uid 65534: the same request on `PARALLEL`
/// connections at once; one JSON object per connection.
fn flood_as_nobody(socket: &Path, req: &Value) -> Vec<Value> {
    let mut child = Command::new("setpriv")
        .arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"))
        .arg("--clear-groups")
        .arg(env!("CARGO_BIN_EXE_attacker"))
        .arg("burst")
        .arg(socket)
        .arg(PARALLEL.to_string())
        .arg(req.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run attacker burst");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait attacker burst").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("attacker burst did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("attacker burst output");
    serde_json::from_slice(&out.stdout).expect("attacker burst prints a JSON array")
}

/// How many answers of a flood had this response type (or error kind).
fn tally(answers: &[Value], what: &str) -> usize {
    answers
        .iter()
        .filter(|a| kind(&a["response"]) == what || a["response"]["kind"] == what)
        .count()
}

/// Connections the daemon refused before any request: the per-uid
/// connection cap of the public socket (`max_connections_per_user`).
fn refused_at_connect(answers: &[Value]) -> usize {
    answers
        .iter()
        .filter(|a| {
            a["error"]
                .as_str()
                .is_some_and(|e| e.contains("too many connections from this user"))
        })
        .count()
}

fn to(outbox: &Outbox, mobile: &str, starts: &str) -> Vec<Sms> {
    outbox
        .read()
        .into_iter()
        .filter(|m| m.to == mobile && m.body.starts_with(starts))
        .collect()
}

const STEP_UP_BACKUP: &str = "Code to confirm new backup codes for ";
const STEP_UP_OPT_OUT: &str = "Code to confirm opting out of SMS codes for ";
const NOTICE: &str = "New backup codes for ";

/// The newest step-up code sent to `mobile`, waiting up to 5 s for the
/// `n`th.
fn nth_step_up_code(outbox: &Outbox, mobile: &str, starts: &str, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let sent = to(outbox, mobile, starts);
        if sent.len() >= n {
            return extract_code(&sent[n - 1].body).expect("a code in the step-up SMS");
        }
        assert!(
            Instant::now() < deadline,
            "no step-up SMS #{n} to {mobile}: {:#?}",
            outbox.read()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn backup_login(pamd: &PamConfDir, user: &str, code: &str) -> Outcome {
    login_with(pamd, SERVICE, user, Items::default(), |p| {
        assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
        assert_eq!(p.index, 0, "one prompt only:\n{}", p.transcript);
        Some(code.to_string())
    })
}

#[test]
fn generation_floods_keep_the_daemon_small_and_backup_logins_answering() {
    require_root("switches to uid 65534 and logs in through libpam");
    let (victim, flooded) = (unique_name("hbv"), unique_name("hbf"));
    let d = Daemon::builder()
        .user(&victim, VICTIM_MOBILE)
        .user(&flooded, FLOODED_MOBILE)
        .user("nobody", SELF_MOBILE)
        .top("allow_user_self = true")
        .section("backup_codes", "count = 5")
        .log_level("info")
        .start();
    let pid = d.pid().expect("daemon pid");
    let pamd = PamConfDir::new();
    pamd.smsotp_service(SERVICE, &d.socket(), "timeout=15");
    let outbox = d.outbox();
    let baseline = rss_kib(pid);
    let victim_codes = generate_backup_codes(&d.socket(), &victim);

    // Root: 32 parallel sets for one user, and the victim's backup-code
    // login in the middle of them.
    let socket = d.socket();
    let started = Instant::now();
    let (root_sets, login_took, flood_took, still_running) = std::thread::scope(|s| {
        let flood: Vec<_> = (0..PARALLEL)
            .map(|_| {
                let (socket, user) = (socket.clone(), flooded.clone());
                s.spawn(move || {
                    let mut c = Client::connect(&socket, Duration::from_secs(60), "flood")
                        .expect("connect");
                    c.call(&Request::GenerateBackupCodes { user, code: None })
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        let login = backup_login(&pamd, &victim, &victim_codes[0]);
        let login_took = t.elapsed();
        login.assert_code(PAM_SUCCESS);
        assert!(
            login.transcript.infos()[0].starts_with("Backup code accepted."),
            "{login}"
        );
        let still_running = flood.iter().filter(|h| !h.is_finished()).count();
        let sets = flood
            .into_iter()
            .map(|h| h.join().expect("flood thread"))
            .filter(|r| matches!(r, Ok(Response::BackupCodes { codes }) if codes.len() == 5))
            .count();
        (sets, login_took, started.elapsed(), still_running)
    });
    let after_root = hwm_kib(pid);

    // uid 65534 for itself: without a code, nothing but (at most) one
    // step-up SMS per request it is allowed to make.
    let plain = json!({"type": "generate_backup_codes", "user": "nobody"});
    let no_code = flood_as_nobody(&d.socket(), &plain);
    let step_ups = to(&outbox, SELF_MOBILE, STEP_UP_BACKUP).len();
    // With the code from its phone, 32 at once still make one set.
    let code = nth_step_up_code(&outbox, SELF_MOBILE, STEP_UP_BACKUP, step_ups);
    let with = json!({"type": "generate_backup_codes", "user": "nobody", "code": code});
    let with_code = flood_as_nobody(&d.socket(), &with);
    let peak = hwm_kib(pid);

    // Memory goes back once the floods are over.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut after = rss_kib(pid);
    while after > baseline + 10 * MIB && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        after = rss_kib(pid);
    }
    let notices_flooded = to(&outbox, FLOODED_MOBILE, NOTICE).len();
    let notices_self = to(&outbox, SELF_MOBILE, NOTICE).len();
    eprintln!(
        "daemon RSS: baseline {} KiB, peak (VmHWM) {} KiB after root's flood, {} KiB after \
         all, {} KiB afterwards; root: {root_sets} sets in {flood_took:?}, backup login \
         answered in {login_took:?} with {still_running} requests still queued; uid 65534: {} step-up SMS, {} busy, {} refused at connect, {} sets without a \
         code, {} sets with one; notices: {notices_flooded} to the flooded user, \
         {notices_self} to 65534",
        baseline,
        after_root,
        peak,
        after,
        step_ups,
        tally(&no_code, "busy"),
        refused_at_connect(&no_code),
        tally(&no_code, "backup_codes"),
        tally(&with_code, "backup_codes"),
    );
    assert!(peak < 64 * MIB, "daemon peaked at {peak} KiB");
    assert!(
        after <= baseline + 10 * MIB,
        "daemon kept {after} KiB after the floods (baseline {baseline} KiB)"
    );
    assert_eq!(root_sets, PARALLEL, "root's sets are served, one at a time");
    // The login did not wait for the flood: it ended while most of it was
    // still queued, in a fraction of the flood's time (relative, as the
    // machine's load sets both).
    assert!(
        still_running > PARALLEL / 2,
        "only {still_running} of the flood's requests were left when the login ended"
    );
    assert!(
        login_took * 4 < flood_took && login_took < Duration::from_secs(5),
        "backup login took {login_took:?} during a flood of {flood_took:?}"
    );
    assert_eq!(tally(&no_code, "backup_codes"), 0, "{no_code:?}");
    assert_eq!(
        tally(&no_code, "step_up")
            + tally(&no_code, "busy")
            + tally(&no_code, "send_refused")
            + refused_at_connect(&no_code),
        PARALLEL,
        "{no_code:?}"
    );
    assert!(
        (1..=10).contains(&step_ups),
        "{step_ups} step-up SMS: one per served request, within the send budget of 10"
    );
    assert_eq!(tally(&with_code, "backup_codes"), 1, "{with_code:?}");
    assert_eq!(
        notices_flooded, PARALLEL,
        "every new set is told to the phone"
    );
    assert_eq!(notices_self, 1);
    d.assert_log_clean(&[]);
}

#[test]
fn self_service_needs_the_sms_code_and_the_phone_hears_of_new_codes() {
    require_root("creates a local user and runs smsotpctl as it");
    let u = TestUser::create();
    let name = u.name.as_str();
    let d = Daemon::builder()
        .user(name, SELF_MOBILE)
        .section("policy", "mandatory = false")
        .log_level("info")
        .start();
    let outbox = d.outbox();
    let me = Ctl::new(&d.socket()).as_user(name);
    let status = || status_json(&d.socket(), name);

    // No code: no codes, and the code went to the phone.
    let none = me.run(&["backup-codes", "generate"]);
    none.expect_code(1);
    assert_eq!(none.stdout, "", "{none:#?}");
    assert!(
        none.stderr
            .contains("To confirm, enter the code sent to *******0003")
            && none.stderr.contains("no confirmation code was given"),
        "{none:#?}"
    );
    assert_eq!(to(&outbox, SELF_MOBILE, STEP_UP_BACKUP).len(), 1);
    assert_eq!(status()["backup_codes_left"], 0);

    // A wrong code is a guess like a login's.
    let ob = outbox.clone();
    let wrong = me.run_answering(&["backup-codes", "generate"], move || {
        wrong_code(&nth_step_up_code(&ob, SELF_MOBILE, STEP_UP_BACKUP, 2))
    });
    wrong.expect_code(1);
    assert!(
        wrong.stderr.contains("Wrong code (2 tries left)"),
        "{wrong:#?}"
    );
    assert_eq!(wrong.stdout, "");
    assert_eq!(status()["recent_failures"], 1, "the guess was charged");
    assert_eq!(status()["backup_codes_left"], 0);

    // The right one: ten codes of 16 characters, and a notice.
    let ob = outbox.clone();
    let ok = me.run_answering(&["backup-codes", "generate"], move || {
        nth_step_up_code(&ob, SELF_MOBILE, STEP_UP_BACKUP, 3)
    });
    ok.expect_code(0);
    let codes: Vec<&str> = ok.stdout.lines().collect();
    assert_eq!(codes.len(), 10, "{ok:#?}");
    assert!(codes.iter().all(|c| c.len() == 19), "{codes:?}");
    assert_eq!(status()["backup_codes_left"], 10);
    let notices = to(&outbox, SELF_MOBILE, NOTICE);
    assert_eq!(notices.len(), 1, "{:#?}", outbox.read());
    assert!(
        notices[0].body.contains("made by your account") && !notices[0].body.contains(codes[0]),
        "{notices:?}"
    );

    // --json: the prompt on stderr, one object on stdout.
    let ob = outbox.clone();
    let js = me.run_answering(&["--json", "backup-codes", "generate"], move || {
        nth_step_up_code(&ob, SELF_MOBILE, STEP_UP_BACKUP, 4)
    });
    let v = js.expect_code(0).json();
    assert_eq!(v["codes"].as_array().map(Vec::len), Some(10), "{v}");
    assert_eq!(to(&outbox, SELF_MOBILE, NOTICE).len(), 2);

    // Opting out: the same step-up; opting back in needs none.
    let none = me.run(&["opt-out"]);
    none.expect_code(1);
    assert_eq!(status()["opted_out"], false, "{none:#?}");
    let ob = outbox.clone();
    let out = me.run_answering(&["opt-out"], move || {
        nth_step_up_code(&ob, SELF_MOBILE, STEP_UP_OPT_OUT, 2)
    });
    out.expect_code(0);
    assert_eq!(status()["opted_out"], true, "{out:#?}");
    let sent = outbox.count();
    me.run(&["opt-in"]).expect_code(0);
    assert_eq!(status()["opted_out"], false);
    assert_eq!(outbox.count(), sent, "opting in sends nothing");

    // Root needs no code; the phone is told all the same.
    let by_root = generate_backup_codes(&d.socket(), name);
    assert_eq!(by_root.len(), 10);
    assert_eq!(to(&outbox, SELF_MOBILE, STEP_UP_BACKUP).len(), 4);
    let notices = to(&outbox, SELF_MOBILE, NOTICE);
    assert_eq!(notices.len(), 3);
    assert!(
        notices[2].body.contains("made by an administrator"),
        "{notices:?}"
    );
    let mut secrets: Vec<&str> = codes.clone();
    secrets.extend(by_root.iter().map(String::as_str));
    d.assert_log_clean(&secrets);
}

#[test]
fn self_service_without_a_number_is_refused_and_sends_nothing() {
    require_root("switches to uid 65534");
    let d = Daemon::builder()
        .section("policy", "mandatory = false")
        .start();
    for req in [
        json!({"type": "generate_backup_codes", "user": "nobody"}),
        json!({"type": "set_opt_out", "user": "nobody", "opted_out": true}),
    ] {
        let a = requests_as(NOBODY, &d.socket(), std::slice::from_ref(&req));
        let a = a.first().cloned().unwrap_or(Value::Null);
        assert_eq!(a["kind"], "permission_denied", "{req} -> {a}");
        assert!(
            a["message"]
                .as_str()
                .is_some_and(|m| m.ends_with("ask your administrator")),
            "{a}"
        );
    }
    assert_eq!(d.outbox().count(), 0);
    let v = status_json(&d.socket(), "nobody");
    assert_eq!(
        (v["backup_codes_left"].clone(), v["opted_out"].clone()),
        (0.into(), false.into())
    );
}

/// A code of the earlier format: id `id`, secret `secret` (8 characters),
/// hashed as the daemon did, written into the store as a set of one.
fn plant_legacy_code(state_db: &Path, user: &str, id: &str, secret: &str) {
    let params = argon2::Params::new(19 * 1024, 2, 1, None).expect("params");
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"legacy-salt-0001").expect("salt");
    let phc = hasher
        .hash_password(secret.as_bytes(), &salt)
        .expect("hash")
        .to_string();
    let db = rusqlite::Connection::open(state_db).expect("open store");
    db.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    db.execute(
        "INSERT INTO backup_codes(user, id, hash, created_at) VALUES (?1, ?2, ?3, 0)",
        (user, id, &phc),
    )
    .expect("insert legacy code");
}

#[test]
fn new_codes_have_16_characters_and_old_12_character_codes_still_work() {
    require_root("logs in through libpam");
    let user = unique_name("hbl");
    let d = Daemon::builder()
        .user(&user, VICTIM_MOBILE)
        .section("backup_codes", "count = 3")
        .start();
    let pamd = PamConfDir::new();
    pamd.smsotp_service(SERVICE, &d.socket(), "timeout=15");
    let codes = generate_backup_codes(&d.socket(), &user);
    assert_eq!(codes.len(), 3);
    for c in &codes {
        let groups: Vec<&str> = c.split('-').collect();
        assert_eq!(groups.len(), 4, "ABCD-EFGH-JKMN-PQRS: {c}");
        assert!(groups.iter().all(|g| g.len() == 4), "{c}");
    }
    // An id no new code has (ids are 4 letters of 31).
    let id = ["ZZZZ", "YYYY"]
        .into_iter()
        .find(|id| codes.iter().all(|c| !c.starts_with(id)))
        .expect("a free id");
    plant_legacy_code(&d.dir().join("state.db"), &user, id, "EFGHJKMN");
    assert_eq!(status_json(&d.socket(), &user)["backup_codes_left"], 4);

    let old = backup_login(&pamd, &user, &format!("{}-efgh-jkmn", id.to_lowercase()));
    old.assert_code(PAM_SUCCESS);
    assert!(
        old.transcript.infos()[0].starts_with("Backup code accepted. 3 "),
        "{old}"
    );
    let new = backup_login(&pamd, &user, &codes[1]);
    new.assert_code(PAM_SUCCESS);
    assert!(
        new.transcript.infos()[0].starts_with("Backup code accepted. 2 "),
        "{new}"
    );
}
