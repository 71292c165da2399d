//! `kill -9` of the daemon at random points (seeded: `SMSOTP_CHAOS_SEED`
//! replays a run) while logins spend backup codes and while attackers
//! guess, then a restart on the same state directory:
//!
//! - nothing lost: a backup code answered `Verified` is spent after the
//!   restart, a code refused to every login still works, and the count
//!   left is exactly what the answers say; every guess answered as checked
//!   is still counted;
//! - nothing spent twice: no backup code lets two logins in, over the
//!   whole run;
//! - counters never go down across a crash (only an admin unlock resets
//!   them), a lockout survives, and no more guesses than the budget are
//!   ever checked between resets;
//! - the SQLite file left by each kill passes `PRAGMA integrity_check`.
//!
//! Plus: a plain restart (SIGTERM and SIGKILL) keeps lockouts and send
//! budgets.

use smsotp_proto::{Response, UserStatus};
use smsotp_tests::chaos::{sigkill, Rng};
use smsotp_tests::ctl::Ctl;
use smsotp_tests::daemon::{Daemon, DaemonBuilder};
use smsotp_tests::session::{self, unix_now, BackupUse, Session};
use smsotp_tests::{require_root, unique_name};
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

const MOBILE: &str = "+15551234567";
const SERVICE: &str = "smsotp-e2e";
const ITERATIONS: usize = 30;
/// 10-digit codes: a blind guess is right with p = 1e-10.
const WRONG: &str = "0000000000";

/// Opens a copy of the state file (and its WAL) as it was left by the
/// kill, the way the restarted daemon will find it, and runs SQLite's own
/// consistency check. The shared-memory index is not copied: SQLite
/// rebuilds it from the WAL, as after a reboot.
fn assert_store_intact(db: &Path, when: &str) {
    let copy = tempfile::Builder::new()
        .prefix("smsotp-crash-db-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let target = copy.path().join("state.db");
    assert!(db.is_file(), "{when}: no state file at {}", db.display());
    std::fs::copy(db, &target).expect("copy state.db");
    let wal = db.with_file_name("state.db-wal");
    if wal.is_file() {
        std::fs::copy(&wal, copy.path().join("state.db-wal")).expect("copy WAL");
    }
    let c = rusqlite::Connection::open(&target).expect("open the copied store");
    let check: Vec<String> = c
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect())
        })
        .unwrap_or_else(|e| panic!("{when}: integrity_check failed to run: {e}"));
    assert_eq!(
        check,
        ["ok"],
        "{when}: the state file is damaged after kill -9"
    );
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal", "{when}: the store is not in WAL mode");
    let version: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("user_version");
    assert!(version >= 1, "{when}: schema version {version}");
}

/// SIGKILL, check the file, start again on the same directory.
fn crash_and_restart(d: &mut Daemon, when: &str) {
    if let Some(pid) = d.pid() {
        sigkill(pid);
    }
    assert_store_intact(&d.dir().join("state.db"), when);
    d.restart();
}

fn busy_daemon(user: &str) -> DaemonBuilder {
    Daemon::builder()
        .user(user, MOBILE)
        .section("send_budget", "per_user_per_hour = 10000")
        .section("send_budget", "per_rhost_per_hour = 100000")
        .section("send_budget", "global_per_hour = 1000000")
}

#[test]
fn kill_9_during_backup_code_use_loses_nothing_and_spends_nothing_twice() {
    require_root("only root may begin a challenge for another user");
    let user = unique_name("bkill");
    let seed = Rng::seed_from_env(0x5eed_b4c6);
    let mut rng = Rng::new(seed);
    eprintln!("seed {seed} (SMSOTP_CHAOS_SEED replays it)");
    let mut d = busy_daemon(&user)
        .section("backup_codes", "count = 16")
        // Losers of a race answer Wrong; they must not lock the user.
        .section("lockout", "max_failures = 100")
        .start();
    let started = Instant::now();

    // Logins each code let in over the whole run (workers and probes).
    let mut granted: HashMap<String, u32> = HashMap::new();
    let mut set: Vec<String> = Vec::new();
    let mut unused: VecDeque<String> = VecDeque::new();
    let mut left: u32 = 0;
    let (mut sets, mut verified_total, mut lost_total, mut mid_kills) = (0, 0, 0, 0);
    let mut unused_after_kill = 0;

    for it in 0..ITERATIONS {
        if unused.len() < 3 {
            set = session::generate_backup_codes(&d.socket(), &user);
            unused = set.iter().cloned().collect();
            left = set.len() as u32;
            sets += 1;
        }
        let k = (rng.range(1, 4) as usize).min(unused.len());
        let batch: Vec<String> = unused.drain(..k).collect();
        // Every code is typed by two logins, so kills also land between
        // two racing spends.
        let queue: Mutex<VecDeque<String>> =
            Mutex::new(batch.iter().flat_map(|c| [c.clone(), c.clone()]).collect());
        // A backup-code login takes 30-200 ms (argon2 on a busy host): the
        // kills spread from before the first one to after the last.
        let kill_after = Duration::from_millis(rng.range(0, 300));
        let socket = d.socket();
        let pid = d.pid().expect("daemon runs");
        let results: Vec<(String, BackupUse)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let mut out = Vec::new();
                        loop {
                            let next = queue.lock().unwrap().pop_front();
                            let Some(code) = next else { break };
                            let used = session::use_backup_code(&socket, &user, SERVICE, &code);
                            out.push((code, used));
                        }
                        out
                    })
                })
                .collect();
            std::thread::sleep(kill_after);
            sigkill(pid);
            workers
                .into_iter()
                .flat_map(|h| h.join().expect("login thread panicked"))
                .collect()
        });
        let when = format!("iteration {it} (kill after {kill_after:?})");
        crash_and_restart(&mut d, &when);
        if results.iter().any(|(_, u)| *u == BackupUse::Unknown) {
            mid_kills += 1;
        }

        let count = Ctl::new(&d.socket()).run(&["--json", "backup-codes", "count", &user]);
        let before_probes = count.expect_code(0).json()["backup_codes_left"]
            .as_u64()
            .unwrap_or_else(|| panic!("{when}: no count: {count:?}"))
            as u32;
        let (mut verified, mut lost) = (0u32, 0u32);
        for code in &batch {
            let uses: Vec<BackupUse> = results
                .iter()
                .filter(|(c, _)| c == code)
                .map(|(_, u)| *u)
                .collect();
            let wins = uses.iter().filter(|u| **u == BackupUse::Verified).count() as u32;
            *granted.entry(code.clone()).or_default() += wins;
            assert!(
                wins <= 1,
                "{when}: one backup code let {wins} logins in: {uses:?}"
            );
            let probe = session::use_backup_code(&d.socket(), &user, SERVICE, code);
            assert_ne!(probe, BackupUse::Unknown, "{when}: probe got no answer");
            if probe == BackupUse::Verified {
                *granted.entry(code.clone()).or_default() += 1;
            }
            if wins == 1 {
                verified += 1;
                assert_eq!(
                    probe,
                    BackupUse::Refused,
                    "{when}: a backup code answered Verified before the kill works again \
                     after the restart (its spend was lost)"
                );
            } else if uses.contains(&BackupUse::Unknown) {
                // The kill cut a login short: spent or not, but not both.
                match probe {
                    BackupUse::Refused => lost += 1,
                    _ => unused_after_kill += 1,
                }
            } else {
                assert_eq!(
                    probe,
                    BackupUse::Verified,
                    "{when}: a backup code refused to every login ({uses:?}) no longer works"
                );
            }
        }
        assert_eq!(
            before_probes,
            left - verified - lost,
            "{when}: {left} codes were left, {verified} were answered Verified and {lost} \
             were spent by logins cut short, so {} must be left",
            left - verified - lost
        );
        left -= k as u32;
        let after = session::status(&d.socket(), &user);
        assert_eq!(after.backup_codes_left, left, "{when}: after the probes");
        verified_total += verified;
        lost_total += lost;
        // Refused probes and race losers are wrong guesses: start clean.
        session::unlock(&d.socket(), &user);
    }

    for (code, n) in &granted {
        assert!(*n <= 1, "backup code {code} let {n} logins in over the run");
    }
    // Spent codes of the current set stay spent through every restart.
    for code in set.iter().filter(|c| !unused.contains(c)) {
        assert_eq!(
            session::use_backup_code(&d.socket(), &user, SERVICE, code),
            BackupUse::Refused,
            "a spent backup code works again after {ITERATIONS} restarts"
        );
    }
    eprintln!(
        "{ITERATIONS} kill -9 iterations in {:?} ({sets} code sets): {mid_kills} kills cut \
         logins short, {verified_total} logins verified before a kill, {lost_total} codes \
         spent by a login that never heard back, {unused_after_kill} interrupted codes \
         still unused; no code let two logins in",
        started.elapsed()
    );
    assert!(
        mid_kills > 0,
        "no kill landed while logins were in flight; the test proved nothing"
    );
    d.assert_log_clean(&set.iter().map(String::as_str).collect::<Vec<_>>());
}

/// What one guessing thread saw before the kill.
#[derive(Debug, Default, Clone, Copy)]
struct Guesses {
    /// Answered as checked: `Wrong` or `TriesExhausted`.
    checked: u32,
    /// Answered `Locked` (refused, or the guess that locked).
    locked: u32,
    /// Sent, never answered: may or may not have been charged.
    unanswered: u32,
}

/// One attacker: logs in, waits at `ready` (so the kill lands among the
/// guesses, not among the logins), then makes `n` wrong guesses.
fn guess(socket: &Path, user: &str, n: u64, ready: &Barrier) -> Guesses {
    let mut g = Guesses::default();
    let begun = Session::begin(socket, user, SERVICE);
    ready.wait();
    let (mut s, r) = begun.unwrap_or_else(|e| panic!("begin before the kill: {e}"));
    match r {
        Response::Challenge(_) => {}
        Response::Locked { .. } => {
            g.locked += 1;
            return g;
        }
        other => panic!("begin answered {other:?}"),
    }
    for _ in 0..n {
        match s.verify(WRONG) {
            Ok(Response::Wrong { .. }) => g.checked += 1,
            Ok(Response::TriesExhausted) => {
                g.checked += 1;
                break;
            }
            Ok(Response::Locked { .. }) => {
                g.locked += 1;
                break;
            }
            Ok(other) => panic!("verify answered {other:?}"),
            Err(_) => {
                g.unanswered += 1;
                break;
            }
        }
    }
    g
}

/// `locked_until` as an absolute time, from a status.
fn locked_until(st: &UserStatus, now: i64) -> Option<i64> {
    st.locked_for_secs.map(|s| now + s as i64)
}

#[test]
fn kill_9_during_lockout_updates_never_loses_a_counted_guess() {
    require_root("only root may begin a challenge for another user");
    const MAX: u32 = 20;
    let user = unique_name("lkill");
    let seed = Rng::seed_from_env(0x5eed_10c4);
    let mut rng = Rng::new(seed);
    eprintln!("seed {seed} (SMSOTP_CHAOS_SEED replays it)");
    let mut d = busy_daemon(&user)
        .otp("length = 10")
        .section("lockout", &format!("max_failures = {MAX}"))
        .section("lockout", "window_seconds = 3600")
        // Far longer than the test: only the admin ends a lockout here.
        .section("lockout", "duration_seconds = 900")
        .section("lockout", "max_duration_seconds = 3600")
        .start();
    let ctl = Ctl::new(&d.socket());
    let started = Instant::now();
    let mut prev = session::status(&d.socket(), &user);
    let mut prev_until: Option<i64> = None;
    // Guesses answered as checked since the last reset (admin unlock).
    let mut since_reset = 0u32;
    let mut locked_iterations = 0;
    let (mut unlocks, mut locks, mut mid_kills, mut answered, mut half_locks) = (0, 0, 0, 0, 0);
    let mut max_since_reset = 0;

    for it in 0..ITERATIONS {
        let plans: Vec<u64> = (0..4).map(|_| rng.range(1, 4)).collect();
        // Counted from when every attacker has its challenge: a guess is
        // well under a millisecond, the burst a few, and the kills spread
        // over it and a little past it.
        let kill_after = Duration::from_micros(rng.range(0, 5_000));
        let socket = d.socket();
        let pid = d.pid().expect("daemon runs");
        let ready = Barrier::new(plans.len() + 1);
        let seen: Vec<Guesses> = std::thread::scope(|scope| {
            let threads: Vec<_> = plans
                .iter()
                .map(|&n| {
                    let (socket, user, ready) = (&socket, &user, &ready);
                    scope.spawn(move || guess(socket, user, n, ready))
                })
                .collect();
            ready.wait();
            std::thread::sleep(kill_after);
            sigkill(pid);
            threads
                .into_iter()
                .map(|h| h.join().expect("guessing thread panicked"))
                .collect()
        });
        let when = format!("iteration {it} (kill after {kill_after:?})");
        crash_and_restart(&mut d, &when);
        let st = ctl.run(&["--json", "status", &user]).status();
        let now = unix_now();
        let w: u32 = seen.iter().map(|g| g.checked).sum();
        let l: u32 = seen.iter().map(|g| g.locked).sum();
        let u: u32 = seen.iter().map(|g| g.unanswered).sum();
        answered += w;
        if u > 0 {
            mid_kills += 1;
        }
        since_reset += w;
        max_since_reset = max_since_reset.max(since_reset);
        let ctx = format!(
            "{when}: before {prev:?}, now {st:?}, answered checked {w}, locked {l}, unanswered {u}"
        );

        assert!(
            since_reset <= MAX,
            "{ctx}: {since_reset} guesses were checked since the last reset, budget {MAX}"
        );
        let was_locked = prev.locked || prev.recent_failures >= MAX;
        if was_locked {
            assert_eq!(
                w, 0,
                "{ctx}: guesses were checked while the user was locked"
            );
        }
        assert!(
            st.lockouts >= prev.lockouts,
            "{ctx}: the lockout count went down across kill -9"
        );
        if prev.locked {
            assert!(st.locked, "{ctx}: a lockout was lost across kill -9");
            assert_eq!(st.lockouts, prev.lockouts, "{ctx}");
            let (a, b) = (prev_until.unwrap_or(0), locked_until(&st, now).unwrap_or(0));
            assert!(
                (a - b).abs() <= 2,
                "{ctx}: the lockout's end moved from {a} to {b}"
            );
        } else if st.lockouts == prev.lockouts + 1 {
            // Locked during this iteration: only once the budget was used.
            locks += 1;
            assert!(st.locked, "{ctx}");
            assert!(
                prev.recent_failures + w + u + l >= MAX,
                "{ctx}: locked before the budget of {MAX} was used"
            );
            assert_eq!(st.recent_failures, 0, "{ctx}: the count restarts at a lock");
        } else {
            assert_eq!(st.lockouts, prev.lockouts, "{ctx}: lockouts jumped");
            assert!(!st.locked, "{ctx}: locked without a new lockout");
            // Every guess answered as checked is still counted; at most the
            // unanswered ones may have been charged on top.
            let lo = prev.recent_failures + w;
            assert!(
                st.recent_failures >= lo,
                "{ctx}: {lo} failures were committed, the restarted daemon counts {}",
                st.recent_failures
            );
            assert!(
                st.recent_failures <= lo + u,
                "{ctx}: more failures counted than guesses made"
            );
            assert!(st.recent_failures <= MAX, "{ctx}");
        }
        if !st.locked && st.recent_failures >= MAX {
            // Killed between charging the last guess and judging it: the
            // budget is spent (every guess is refused) but no lockout was
            // recorded.
            half_locks += 1;
        }

        if st.locked || st.recent_failures >= MAX {
            locked_iterations += 1;
        }
        if locked_iterations >= 2 {
            // The lock held through two kills: the admin lifts it.
            let run = ctl.run(&["--json", "unlock", &user]);
            run.expect_code(0);
            assert_eq!(run.json()["ok"], true, "{run:?}");
            let cleared = session::status(&d.socket(), &user);
            assert!(
                !cleared.locked && cleared.recent_failures == 0 && cleared.lockouts == 0,
                "{cleared:?}"
            );
            unlocks += 1;
            locked_iterations = 0;
            since_reset = 0;
            prev = cleared;
            prev_until = None;
        } else {
            prev_until = locked_until(&st, now);
            prev = st;
        }
    }
    eprintln!(
        "{ITERATIONS} kill -9 iterations in {:?}: {mid_kills} kills cut guesses short, \
         {answered} guesses answered as checked, {locks} lockouts, {unlocks} admin unlocks, \
         at most {max_since_reset} checked guesses per budget of {MAX}, {half_locks} \
         budget-spent-but-not-locked states after a kill",
        started.elapsed()
    );
    assert!(locks >= 1, "the run never reached a lockout");
    assert!(mid_kills > 0, "no kill landed while guesses were in flight");
    d.assert_log_clean(&[]);
}

#[test]
fn restart_keeps_lockouts_and_send_budgets() {
    require_root("only root may begin a challenge for another user");
    let locked = unique_name("rlock");
    let pumped = unique_name("rsend");
    let mut d = Daemon::builder()
        .user(&locked, MOBILE)
        .user(&pumped, "+15557654321")
        .otp("length = 10")
        .otp("max_attempts = 10")
        .section("lockout", "max_failures = 3")
        .section("lockout", "duration_seconds = 600")
        .section("send_budget", "per_user_per_hour = 2")
        .start();
    // Lock one user: three wrong guesses.
    let (mut s, r) = Session::begin(&d.socket(), &locked, SERVICE).expect("begin");
    assert!(matches!(r, Response::Challenge(_)), "{r:?}");
    let answers: Vec<Response> = (0..3).map(|_| s.verify(WRONG).expect("verify")).collect();
    assert!(matches!(answers[2], Response::Locked { .. }), "{answers:?}");
    let st = session::status(&d.socket(), &locked);
    assert!(st.locked && st.lockouts == 1, "{st:?}");
    let until = locked_until(&st, unix_now()).expect("locked until");
    // Use up the other user's send budget.
    for _ in 0..2 {
        let (_, r) = Session::begin(&d.socket(), &pumped, SERVICE).expect("begin");
        assert!(matches!(r, Response::Challenge(_)), "{r:?}");
    }
    let (_, r) = Session::begin(&d.socket(), &pumped, SERVICE).expect("begin");
    assert!(matches!(r, Response::SendRefused { .. }), "{r:?}");
    // Codes only: the locked user's phone also got a lockout notice.
    assert_eq!(d.outbox().code_count(), 3);

    for how in ["SIGTERM", "SIGKILL"] {
        if how == "SIGKILL" {
            crash_and_restart(&mut d, "after SIGKILL");
        } else {
            d.restart();
            assert_store_intact(&d.dir().join("state.db"), "after SIGTERM");
        }
        let st = session::status(&d.socket(), &locked);
        assert!(st.locked, "{how}: the lockout did not survive: {st:?}");
        assert_eq!(st.lockouts, 1, "{how}: {st:?}");
        let after = locked_until(&st, unix_now()).expect("locked until");
        assert!(
            (after - until).abs() <= 2,
            "{how}: lock end {until} -> {after}"
        );
        let (_, r) = Session::begin(&d.socket(), &locked, SERVICE).expect("begin");
        assert!(
            matches!(r, Response::Locked { retry_after_secs } if retry_after_secs > 500),
            "{how}: a locked user got {r:?}"
        );
        let (_, r) = Session::begin(&d.socket(), &pumped, SERVICE).expect("begin");
        match r {
            Response::SendRefused {
                reason,
                retry_after_secs,
            } => {
                assert_eq!(
                    reason, "this account has had too many codes sent in the last hour",
                    "{how}"
                );
                assert!(retry_after_secs.is_some_and(|s| s > 3000), "{how}");
            }
            other => panic!("{how}: the send budget did not survive: {other:?}"),
        }
        assert_eq!(
            d.outbox().code_count(),
            3,
            "{how}: no SMS after the restart"
        );
    }
    d.assert_log_clean(&[]);
}
