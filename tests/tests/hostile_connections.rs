//! Hostile local users against the daemon's sockets (issue 9, findings 1
//! and 3). The attacker is the compiled `attacker` helper run as uid 65534;
//! the victim is a root login through real libpam with `pam_permit` first,
//! so a module answering PAM_IGNORE would let the login through.
//!
//! - A connect flood fills the public socket's listen backlog. The module
//!   must read that as "busy" and deny, never as "daemon absent", which
//!   `failmode=safe` waves through.
//!
//! The figures are printed (`--nocapture`) and asserted.

use smsotp_tests::daemon::Daemon;
use smsotp_tests::libpam::{self, code_name, Outcome, PAM_SUCCESS};
use smsotp_tests::outbox::{wrong_code, Outbox};
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::users::TestUser;
use smsotp_tests::{flood, require_root};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const ATTACKER_UID: u32 = 65534;
const MOBILE: &str = "+15557660001";
/// The flood's length; the victim logs in while it runs.
const FLOOD: Duration = Duration::from_secs(8);
/// Four loops, as in the finding.
const FLOOD_THREADS: &str = "4";
/// Logins in one test, whatever their speed.
const MAX_LOGINS: usize = 300;

/// The tests measure time to answer and compete for two cores: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The attacker process, killed and reaped by pid on drop (on panic too).
struct Attacker {
    child: Option<Child>,
}

impl Attacker {
    fn start(args: &[&str]) -> Attacker {
        let child = Command::new(env!("CARGO_BIN_EXE_attacker"))
            .args(args)
            .uid(ATTACKER_UID)
            .gid(ATTACKER_UID)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the attacker");
        Attacker { child: Some(child) }
    }

    fn flood(socket: &Path) -> Attacker {
        let secs = FLOOD.as_secs().to_string();
        Attacker::start(&["flood", &socket.to_string_lossy(), &secs, FLOOD_THREADS])
    }

    /// Waits for the figures it prints at the end.
    fn figures(mut self) -> serde_json::Value {
        let child = self.child.take().expect("attacker runs");
        let out = child.wait_with_output().expect("wait for the attacker");
        assert!(out.status.success(), "attacker failed: {}", out.status);
        serde_json::from_slice(&out.stdout).expect("attacker prints JSON")
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How logins went, by PAM result.
#[derive(Default, Debug)]
struct Tally {
    logins: usize,
    successes: usize,
    prompted: usize,
    by_code: std::collections::BTreeMap<&'static str, usize>,
    times: Vec<Duration>,
}

impl Tally {
    fn add(&mut self, out: &Outcome, took: Duration) {
        self.logins += 1;
        if out.code == PAM_SUCCESS {
            self.successes += 1;
        }
        if !out.transcript.code_prompts().is_empty() {
            self.prompted += 1;
        }
        *self.by_code.entry(code_name(out.code)).or_default() += 1;
        self.times.push(took);
    }

    fn median(&self) -> Duration {
        let mut t = self.times.clone();
        t.sort();
        t.get(t.len() / 2).copied().unwrap_or_default()
    }

    fn max(&self) -> Duration {
        self.times.iter().max().copied().unwrap_or_default()
    }
}

/// Answers every code prompt with a code that is certainly wrong.
fn wrong_codes(outbox: &Outbox) -> impl FnMut(&libpam::Prompt<'_>) -> Option<String> + '_ {
    move |p| {
        assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
        Some(wrong_code(&outbox.last().code()))
    }
}

/// Logins as `user` through `service` until `until` (at most
/// [`MAX_LOGINS`]), each answering with `right` or a wrong code.
fn logins_until(
    d: &Daemon,
    pamd: &PamConfDir,
    service: &str,
    user: &str,
    until: Instant,
    right: bool,
) -> Tally {
    let outbox = d.outbox();
    let mut tally = Tally::default();
    while Instant::now() < until && tally.logins < MAX_LOGINS {
        let t = Instant::now();
        let out = if right {
            libpam::authenticate(
                service,
                user,
                pamd.path(),
                smsotp_tests::flows::type_newest_code(&outbox),
            )
        } else {
            libpam::authenticate(service, user, pamd.path(), wrong_codes(&outbox))
        };
        tally.add(&out, t.elapsed());
    }
    tally
}

/// Budgets loose enough that every login that reaches the daemon is sent
/// a code: each wrong answer then really is checked.
fn daemon_for(user: &str) -> Daemon {
    Daemon::builder()
        .user(user, MOBILE)
        .log_level("info")
        .otp("max_attempts = 1")
        .section("lockout", "max_failures = 100")
        .section("send_budget", "per_user_per_hour = 10000")
        .section("send_budget", "per_rhost_per_hour = 100000")
        .section("send_budget", "global_per_hour = 1000000")
        .start()
}

/// Non-blocking connects from here that find the backlog full (EAGAIN):
/// proof that the flood really fills it.
fn eagain_probes(socket: &Path, tries: usize) -> usize {
    let addr = flood::sockaddr(socket);
    (0..tries)
        .filter(|_| {
            std::thread::sleep(Duration::from_millis(5));
            flood::connect_once(&addr) == libc::EAGAIN
        })
        .count()
}

/// A victim account, a daemon, and a pam.d service `service` with the
/// module on the socket `socket` picks.
fn victim_setup(
    service: &str,
    socket: fn(&Daemon) -> PathBuf,
    opts: &str,
) -> (TestUser, Daemon, PamConfDir) {
    let victim = TestUser::create();
    let d = daemon_for(&victim.name);
    let pamd = PamConfDir::new();
    pamd.smsotp_service(service, &socket(&d), opts);
    (victim, d, pamd)
}

/// Starts the flood on `socket`, waits for it to fill the backlog, and
/// returns it with the number of probes that found the backlog full and
/// the instant the victim's logins should stop (before the flood does).
fn flooding(socket: &Path) -> (Attacker, usize, Instant) {
    let attacker = Attacker::flood(socket);
    std::thread::sleep(Duration::from_millis(500));
    let full = eagain_probes(socket, 20);
    (
        attacker,
        full,
        Instant::now() + FLOOD - Duration::from_millis(1500),
    )
}

#[test]
fn connect_flood_on_the_public_socket_never_turns_safe_into_fail_open() {
    require_root("root PAM logins against a flood by uid 65534");
    let _one = serial();
    let (victim, d, pamd) = victim_setup(
        "smsotp-flood-safe",
        Daemon::socket,
        "failmode=safe timeout=2",
    );
    let log_lines_before = d.log().lines().count();

    let (attacker, full, until) = flooding(&d.socket());
    let tally = logins_until(&d, &pamd, "smsotp-flood-safe", &victim.name, until, false);
    let flood = attacker.figures();
    let log = d.log();
    let log_lines = log.lines().count() - log_lines_before;
    let summaries = refusal_summaries(&log);
    eprintln!(
        "public-socket flood {flood}; probes saw a full backlog {full} of 20 times; \
         {} wrong-code logins (failmode=safe, pam_permit first): {} succeeded, {} prompted, \
         by result {:?}; median {:?}, max {:?}; {log_lines} daemon log lines, \
         {summaries} refusal summaries",
        tally.logins,
        tally.successes,
        tally.prompted,
        tally.by_code,
        tally.median(),
        tally.max()
    );
    assert!(full > 0, "the flood never filled the backlog: {flood}");
    assert!(tally.logins >= 3, "too few logins to judge: {tally:?}");
    assert_eq!(
        tally.successes, 0,
        "wrong codes got through during the flood: {tally:?}"
    );
}

/// The daemon's "connections refused" summary lines.
fn refusal_summaries(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("connections refused"))
        .count()
}
