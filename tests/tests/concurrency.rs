//! Budgets that must hold across parallel sessions (the 2024 "AuthQuake"
//! attack: many sessions guessing at once must not multiply the guesses),
//! single use of a backup code raced by two logins, and the send budget
//! under a burst of logins.
//!
//! The guessers talk to the real daemon over its socket with the blocking
//! proto client (one connection each, as many PAM conversations would), and
//! once more through real libpam. The number of guesses the daemon really
//! checked is read from its audit log (`wrong_code` and `tries_exhausted`
//! events), not only inferred from the answers, because the guess that
//! triggers a lockout is answered `Locked`.

use smsotp_proto::{Response, VerifyMethod};
use smsotp_tests::daemon::{Daemon, DaemonBuilder};
use smsotp_tests::flows::MSG_TRIES_EXHAUSTED;
use smsotp_tests::libpam::Pam;
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::session::{self, Session};
use smsotp_tests::{require_root, unique_name};
use std::sync::Barrier;
use std::time::{Duration, Instant};

const MOBILE: &str = "+15551234567";
const SERVICE: &str = "smsotp-e2e";
const MAX_FAILURES: u32 = 5;
/// Codes are 10 digits here, so a blind guess is right with p = 1e-10.
const WRONG: &str = "0000000000";
/// Every parallel phase must finish well within this.
const PHASE_LIMIT: Duration = Duration::from_secs(20);

/// Guessing only: long codes, `max_failures = 5`, and send budgets far out
/// of the way (every new login sends an SMS).
fn guessing_daemon(user: &str) -> DaemonBuilder {
    Daemon::builder()
        .user(user, MOBILE)
        .otp("length = 10")
        .section("lockout", &format!("max_failures = {MAX_FAILURES}"))
        .section("lockout", "window_seconds = 900")
        .section("send_budget", "per_user_per_hour = 10000")
        .section("send_budget", "per_rhost_per_hour = 100000")
        .section("send_budget", "global_per_hour = 1000000")
        .section("resend", "cooldown_seconds = 0")
}

/// Audit events in the daemon log (`event="NAME"` of the fmt layer).
fn events(d: &Daemon, name: &str) -> usize {
    let needle = format!("event=\"{name}\"");
    d.log().lines().filter(|l| l.contains(&needle)).count()
}

/// Guesses the daemon checked: every wrong code it compared, whatever it
/// answered (the last one is answered `Locked` or `TriesExhausted`).
fn checked_guesses(d: &Daemon) -> usize {
    events(d, "wrong_code") + events(d, "tries_exhausted")
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    logins: u32,
    wrong: u32,
    exhausted: u32,
    locked: u32,
    expired: u32,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.logins += o.logins;
        self.wrong += o.wrong;
        self.exhausted += o.exhausted;
        self.locked += o.locked;
        self.expired += o.expired;
    }
}

/// One attacker: logs in, guesses wrong as fast as it can, logs in again
/// when the challenge is used up, and stops at the first `Locked`.
/// `barrier` holds every attacker after its first `Begin`, so all of them
/// guess at once.
fn guess_until_locked(socket: &std::path::Path, user: &str, barrier: &Barrier) -> Tally {
    let mut t = Tally::default();
    let deadline = Instant::now() + PHASE_LIMIT;
    let mut first = true;
    loop {
        assert!(
            Instant::now() < deadline,
            "still not locked after {PHASE_LIMIT:?}: {t:?}"
        );
        let begun = Session::begin(socket, user, SERVICE);
        if first {
            first = false;
            barrier.wait();
        }
        let (mut s, r) = begun.unwrap_or_else(|e| panic!("begin: {e}"));
        t.logins += 1;
        match r {
            Response::Challenge(_) => {}
            Response::Locked { .. } => {
                t.locked += 1;
                return t;
            }
            other => panic!("begin answered {other:?}"),
        }
        loop {
            match s.verify(WRONG).unwrap_or_else(|e| panic!("verify: {e}")) {
                Response::Wrong { .. } => t.wrong += 1,
                Response::TriesExhausted => {
                    t.exhausted += 1;
                    break;
                }
                Response::Locked { .. } => {
                    t.locked += 1;
                    return t;
                }
                Response::Expired { can_resend } => {
                    t.expired += 1;
                    if !can_resend {
                        break;
                    }
                    match s.resend().unwrap_or_else(|e| panic!("resend: {e}")) {
                        Response::Challenge(_) => {}
                        _ => break,
                    }
                }
                Response::Verified { .. } => panic!("a blind guess of {WRONG} was right"),
                other => panic!("verify answered {other:?}"),
            }
        }
    }
}

#[test]
fn fifty_parallel_sessions_get_no_more_guesses_than_the_budget() {
    require_root("only root may begin a challenge for another user");
    let user = unique_name("quake");
    let d = guessing_daemon(&user).start();
    let socket = d.socket();
    const SESSIONS: usize = 50;
    let barrier = Barrier::new(SESSIONS);
    let started = Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..SESSIONS)
            .map(|_| scope.spawn(|| guess_until_locked(&socket, &user, &barrier)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("attacker thread panicked"))
            .collect()
    });
    let took = started.elapsed();
    let mut total = Tally::default();
    for t in &tallies {
        total.add(t);
    }
    let answered_checked = total.wrong + total.exhausted;
    let checked = checked_guesses(&d);
    eprintln!(
        "{SESSIONS} sessions in {took:?}: {total:?}; guesses checked by the daemon: {checked} \
         (budget {MAX_FAILURES})"
    );
    assert!(
        answered_checked <= MAX_FAILURES,
        "{answered_checked} guesses were answered Wrong/TriesExhausted across {SESSIONS} \
         parallel sessions; the budget is {MAX_FAILURES}: {total:?}"
    );
    assert!(
        checked <= MAX_FAILURES as usize,
        "the daemon checked {checked} guesses (audit log), budget {MAX_FAILURES}:\n{}",
        d.log()
    );
    // Every session ended on Locked, and the budget was used exactly.
    assert_eq!(total.locked as usize, SESSIONS, "{total:?}");
    assert_eq!(
        checked, MAX_FAILURES as usize,
        "the whole budget should be spent before the lock"
    );
    let st = session::status(&socket, &user);
    assert!(st.locked, "the user must end locked: {st:?}");
    assert_eq!(st.lockouts, 1, "one lockout, not one per session: {st:?}");
    // And a further login is refused before any guess.
    let (_, r) = Session::begin(&socket, &user, SERVICE).expect("begin");
    assert!(matches!(r, Response::Locked { .. }), "{r:?}");
    d.assert_log_clean(&[]);
}

/// One libpam attacker: whole PAM transactions typing wrong codes until the
/// module says the account is locked.
#[derive(Debug, Default, Clone, Copy)]
struct PamTally {
    transactions: u32,
    wrong: u32,
    exhausted: u32,
    locked: u32,
}

const MSG_LOCKED_PREFIX: &str = "Too many wrong codes: SMS codes are locked for this account";

fn pam_guess_until_locked(pamd: &std::path::Path, user: &str, barrier: &Barrier) -> PamTally {
    let mut t = PamTally::default();
    let deadline = Instant::now() + PHASE_LIMIT;
    let mut first = true;
    loop {
        assert!(
            Instant::now() < deadline,
            "still not locked after {PHASE_LIMIT:?}: {t:?}"
        );
        let started = Pam::start(SERVICE, user, pamd, |p| {
            assert!(
                p.text.starts_with("Code sent to "),
                "unexpected prompt:\n{}",
                p.transcript
            );
            Some(WRONG.to_string())
        });
        // Everyone passes the barrier before anything may panic.
        if first {
            first = false;
            barrier.wait();
        }
        let mut pam = started.unwrap_or_else(|rc| panic!("pam_start_confdir: {rc}"));
        pam.set_rhost("192.0.2.10");
        let rc = pam.authenticate(0);
        let transcript = pam.transcript().clone();
        pam.end();
        t.transactions += 1;
        assert_ne!(rc, smsotp_tests::libpam::PAM_SUCCESS, "{transcript}");
        for e in transcript.errors() {
            if e.starts_with("Wrong code. ") {
                t.wrong += 1;
            } else if e == MSG_TRIES_EXHAUSTED {
                t.exhausted += 1;
            } else if e.starts_with(MSG_LOCKED_PREFIX) {
                t.locked += 1;
            } else {
                panic!("unexpected message {e:?}:\n{transcript}");
            }
        }
        if t.locked > 0 {
            return t;
        }
    }
}

#[test]
fn twenty_parallel_pam_transactions_share_one_guess_budget() {
    require_root("only root may begin a challenge for another user");
    let user = unique_name("pquake");
    let d = guessing_daemon(&user).start();
    let pamd = PamConfDir::new();
    pamd.smsotp_service(SERVICE, &d.socket(), "timeout=15");
    const TRANSACTIONS: usize = 20;
    let barrier = Barrier::new(TRANSACTIONS);
    let started = Instant::now();
    let tallies: Vec<PamTally> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..TRANSACTIONS)
            .map(|_| scope.spawn(|| pam_guess_until_locked(pamd.path(), &user, &barrier)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("PAM attacker thread panicked"))
            .collect()
    });
    let took = started.elapsed();
    let (mut wrong, mut exhausted, mut locked, mut transactions) = (0, 0, 0, 0);
    for t in &tallies {
        wrong += t.wrong;
        exhausted += t.exhausted;
        locked += t.locked;
        transactions += t.transactions;
    }
    let checked = checked_guesses(&d);
    eprintln!(
        "{TRANSACTIONS} PAM threads, {transactions} transactions in {took:?}: wrong {wrong}, \
         exhausted {exhausted}, locked {locked}; guesses checked by the daemon: {checked} \
         (budget {MAX_FAILURES})"
    );
    // "Too many wrong codes. Log in again" follows both TriesExhausted and
    // `Wrong { attempts_left: 0 }`, each one checked guess; "Wrong code."
    // follows the others.
    assert!(
        wrong + exhausted <= MAX_FAILURES,
        "libpam users saw {} wrong-code answers, budget {MAX_FAILURES}",
        wrong + exhausted
    );
    assert_eq!(
        checked,
        MAX_FAILURES as usize,
        "the daemon must check exactly the budget, no more:\n{}",
        d.log()
    );
    assert_eq!(locked as usize, TRANSACTIONS);
    let st = session::status(&d.socket(), &user);
    assert!(st.locked && st.lockouts == 1, "{st:?}");
    d.assert_log_clean(&[]);
}

#[test]
fn a_backup_code_raced_by_two_logins_lets_exactly_one_in() {
    require_root("only root may begin a challenge for another user");
    let user = unique_name("race");
    const ROUNDS: usize = 20;
    const SET: usize = 24;
    let d = Daemon::builder()
        .user(&user, MOBILE)
        .section("backup_codes", &format!("count = {SET}"))
        // The losers' wrong answers must not lock the user mid-test.
        .section("lockout", "max_failures = 100")
        .section("send_budget", "per_user_per_hour = 10000")
        .section("send_budget", "per_rhost_per_hour = 100000")
        .start();
    let socket = d.socket();
    let codes = session::generate_backup_codes(&socket, &user);
    assert_eq!(codes.len(), SET);
    let started = Instant::now();
    let mut winners = Vec::new();
    for (round, code) in codes.iter().take(ROUNDS).enumerate() {
        let barrier = Barrier::new(2);
        let answers: Vec<Response> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        let begun = Session::begin(&socket, &user, SERVICE);
                        // Both wait here whatever happened, so neither hangs.
                        barrier.wait();
                        let (mut s, r) = begun.unwrap_or_else(|e| panic!("begin: {e}"));
                        match r {
                            Response::Challenge(ref info) if info.backup_allowed => {}
                            other => panic!("begin answered {other:?}"),
                        }
                        s.verify(code).unwrap_or_else(|e| panic!("verify: {e}"))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("login thread panicked"))
                .collect()
        });
        let verified: Vec<&Response> = answers
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    Response::Verified {
                        method: VerifyMethod::BackupCode,
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(
            verified.len(),
            1,
            "round {round}: the same backup code used by two logins at once must let \
             exactly one in: {answers:?}"
        );
        let loser = answers
            .iter()
            .find(|r| !matches!(r, Response::Verified { .. }))
            .expect("a loser");
        assert!(
            matches!(loser, Response::Wrong { .. }),
            "round {round}: the other login is refused as a wrong code: {answers:?}"
        );
        if let Response::Verified {
            backup_codes_left, ..
        } = verified[0]
        {
            assert_eq!(
                *backup_codes_left,
                Some((SET - round - 1) as u32),
                "round {round}"
            );
        }
        winners.push(code.clone());
    }
    let took = started.elapsed();
    let st = session::status(&socket, &user);
    assert_eq!(st.backup_codes_left as usize, SET - ROUNDS, "{st:?}");
    // A spent code never works again.
    for code in &winners {
        assert_eq!(
            session::use_backup_code(&socket, &user, SERVICE, code),
            session::BackupUse::Refused,
            "a spent backup code let a login in again"
        );
    }
    eprintln!("{ROUNDS} raced rounds in {took:?}: {ROUNDS} winners, {ROUNDS} losers");
    d.assert_log_clean(&codes.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn thirty_parallel_logins_send_exactly_the_per_user_budget() {
    require_root("only root may begin a challenge for another user");
    let user = unique_name("pump");
    const LOGINS: usize = 30;
    const BUDGET: usize = 5;
    let d = Daemon::builder()
        .user(&user, MOBILE)
        .section("send_budget", &format!("per_user_per_hour = {BUDGET}"))
        .section("send_budget", "per_rhost_per_hour = 100000")
        .start();
    let socket = d.socket();
    let barrier = Barrier::new(LOGINS);
    let answers: Vec<Response> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..LOGINS)
            .map(|_| {
                scope.spawn(|| {
                    let mut s = Session::connect(&socket);
                    barrier.wait();
                    let s = s.as_mut().unwrap_or_else(|e| panic!("connect: {e}"));
                    s.call(&smsotp_proto::Request::Begin(smsotp_proto::BeginRequest {
                        user: user.clone(),
                        service: SERVICE.into(),
                        rhost: Some("192.0.2.7".into()),
                        tty: None,
                        command: None,
                    }))
                    .unwrap_or_else(|e| panic!("begin: {e}"))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("login thread panicked"))
            .collect()
    });
    let challenges = answers
        .iter()
        .filter(|r| matches!(r, Response::Challenge(_)))
        .count();
    let refused: Vec<&Response> = answers
        .iter()
        .filter(|r| matches!(r, Response::SendRefused { .. }))
        .collect();
    eprintln!(
        "{LOGINS} parallel logins: {challenges} challenges, {} refused, outbox {}",
        refused.len(),
        d.outbox().count()
    );
    assert_eq!(challenges, BUDGET, "{answers:#?}");
    assert_eq!(refused.len(), LOGINS - BUDGET, "{answers:#?}");
    for r in &refused {
        match r {
            Response::SendRefused {
                reason,
                retry_after_secs,
            } => {
                assert_eq!(
                    reason,
                    "this account has had too many codes sent in the last hour"
                );
                assert!(
                    // An hour after the first send's minute ends.
                    retry_after_secs.is_some_and(|s| s > 3000 && s <= 3660),
                    "{r:?}"
                );
            }
            _ => unreachable!(),
        }
    }
    // Answers are sent after the SMS, so the outbox is final now.
    assert_eq!(d.outbox().count(), BUDGET, "exactly the budget went out");
    assert_eq!(events(&d, "send_refused"), LOGINS - BUDGET);
    d.assert_log_clean(&[]);
}

/// A local user can fill the daemon's connection slots (the socket is open
/// to all). The daemon then answers `Busy`, which the module must read as
/// "up and refusing": `failmode=safe` waves through only a daemon that
/// cannot be reached, so a flood must never turn into logins without a
/// code. Twenty logins against a full daemon, each one denied.
#[test]
fn a_full_daemon_never_lets_failmode_safe_through() {
    require_root("only root may begin a challenge for another user");
    let user = unique_name("flood");
    let mut d = Daemon::builder()
        .user(&user, MOBILE)
        .top("max_connections = 2")
        .start();
    let pamd = PamConfDir::new();
    pamd.smsotp_service(SERVICE, &d.socket(), "timeout=5 failmode=safe");
    // Control: with a free slot the stack asks for a code.
    let outbox = d.outbox();
    let ok = smsotp_tests::libpam::authenticate(
        SERVICE,
        &user,
        pamd.path(),
        smsotp_tests::flows::type_newest_code(&outbox),
    );
    ok.assert_code(smsotp_tests::libpam::PAM_SUCCESS);
    // Fill every slot (the control login's may take a moment to free).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut held = Vec::new();
    while held.len() < 2 {
        match Session::connect(&d.socket()) {
            Ok(s) => held.push(s),
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot fill the slots: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    let mut results = std::collections::BTreeMap::new();
    for _ in 0..20 {
        let o = smsotp_tests::libpam::authenticate(SERVICE, &user, pamd.path(), |p| {
            panic!("a full daemon prompted:\n{}", p.transcript)
        });
        *results
            .entry((
                smsotp_tests::libpam::code_name(o.code),
                o.transcript.errors().join(" | "),
            ))
            .or_insert(0) += 1;
    }
    eprintln!("20 logins against a full daemon, failmode=safe: {results:#?}");
    // The daemon was up and refused each one as busy: none of them met a
    // daemon that "cannot be reached". Refusals are logged as summaries
    // (one per 10 s, the rest when it stops), so stop it to read them all.
    d.stop();
    let refusals: u64 = d
        .log()
        .lines()
        .filter(|l| l.contains("connections refused"))
        .filter_map(|l| {
            let n = l.split("busy=").nth(1)?;
            n.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert!(refusals >= 20, "only {refusals} busy refusals logged");
    assert_eq!(
        results.keys().map(|(c, _)| *c).collect::<Vec<_>>(),
        ["PAM_AUTHINFO_UNAVAIL"],
        "logins against a daemon at max_connections must be denied, never let through: \
         {results:#?}"
    );
    drop(held);
    d.assert_log_clean(&[]);
}
