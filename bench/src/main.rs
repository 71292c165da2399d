//! smsotp-bench: complete logins through real Linux-PAM, for smsotp and
//! its peers, measured in one run on one machine. See docs/BENCHMARKS.md.
//!
//! Subjects (each a pam.d stack in a temporary directory, started with
//! `pam_start_confdir`):
//! - `floor`: `pam_permit` alone, the cost of libpam itself;
//! - `smsotp-http`: `pam_permit` + `pam_smsotp` -> `smsotpd` -> `http`
//!   provider -> a loopback gateway (keep-alive);
//! - `smsotp-https`: the same over TLS with a private CA (`ca_file`), when
//!   the daemon build supports it (`--tls-target-dir` may name a newer build);
//! - `gauth`: `pam_google_authenticator`, TOTP, reuse allowed;
//! - `oath`: `pam_oath`, HOTP usersfile.
//!
//! The conversation answers like a user: it reads the smsotp code the
//! gateway received, or computes the TOTP/HOTP code. A benchmark, never a
//! test: nothing here fails on slowness; wrong outcomes are counted and
//! reported.

mod mock;
mod otp;

use mock::{Codes, Mock, SharedU64};
use smsotp_tests::daemon::{toml_str, Daemon};
use smsotp_tests::libpam::{self, PAM_SUCCESS};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const USERS: usize = 64;

/// Login names, one per worker. Real local accounts (`pam_oath` resolves
/// `${USER}` through NSS), created for the run and removed on exit.
static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

fn user(i: usize) -> &'static str {
    &NAMES.get().expect("users created")[i % USERS]
}

/// Set by SIGINT/SIGTERM: finish the current phase, skip the rest, clean up.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

struct Args {
    seconds: f64,
    concurrency: Vec<usize>,
    pending: usize,
    only: Option<Vec<String>>,
    tls_target_dir: Option<PathBuf>,
    out: Option<PathBuf>,
    perf: Option<PathBuf>,
}

fn usage() -> ! {
    eprintln!(
        "usage: smsotp-bench [--seconds S] [--concurrency 1,64] [--pending N] \
         [--only floor,smsotp-http,smsotp-https,gauth,oath] [--tls-target-dir DIR] \
         [--out FILE.json] [--perf DIR]\n\
         Run as root. SMSOTP_TARGET_DIR names the directory with smsotpd and \
         libpam_smsotp.so (a release build)."
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        seconds: 5.0,
        concurrency: vec![1, 64],
        pending: 100_000,
        only: None,
        tls_target_dir: None,
        out: None,
        perf: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--seconds" => a.seconds = val().parse().unwrap_or_else(|_| usage()),
            "--concurrency" => {
                a.concurrency = val()
                    .split(',')
                    .map(|c| c.parse().unwrap_or_else(|_| usage()))
                    .collect()
            }
            "--pending" => a.pending = val().parse().unwrap_or_else(|_| usage()),
            "--only" => a.only = Some(val().split(',').map(str::to_string).collect()),
            "--tls-target-dir" => a.tls_target_dir = Some(PathBuf::from(val())),
            "--out" => a.out = Some(PathBuf::from(val())),
            "--perf" => a.perf = Some(PathBuf::from(val())),
            _ => usage(),
        }
    }
    if a.concurrency.iter().any(|&c| c == 0 || c > USERS) {
        eprintln!("concurrency must be 1..={USERS}");
        usage();
    }
    a
}

/// How the conversation answers, per subject.
#[derive(Clone)]
enum Kind {
    Floor,
    Smsotp {
        codes: Arc<Codes>,
    },
    Gauth {
        secret: Vec<u8>,
    },
    Oath {
        secret: Vec<u8>,
        counters: Arc<SharedU64>,
    },
}

struct Subject {
    name: String,
    service: String,
    confdir: PathBuf,
    kind: Kind,
    daemon_pid: Option<u32>,
    mock: Option<Arc<Mock>>,
}

#[derive(Debug, Clone, Default)]
struct PhaseResult {
    concurrency: usize,
    logins: u64,
    failures: u64,
    wall: Duration,
    p50: Duration,
    p99: Duration,
    /// Harness CPU (libpam + modules + conversation), gateway excluded.
    cpu_client: Duration,
    cpu_daemon: Duration,
    cpu_gateway: Duration,
    first_failure: Option<String>,
}

impl PhaseResult {
    fn rate(&self) -> f64 {
        self.logins as f64 / self.wall.as_secs_f64()
    }
    fn cpu_per_login(&self) -> Duration {
        (self.cpu_client + self.cpu_daemon)
            .checked_div(self.logins.max(1) as u32)
            .unwrap_or_default()
    }
}

fn self_cpu() -> Duration {
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// utime + stime of a process, from /proc/PID/stat.
fn proc_cpu(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the ")" of the command name; utime and stime are the
    // 14th and 15th fields of the line.
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|s| s.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}

/// VmRSS of a process in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// One complete login of `worker`'s user. Err carries the transcript.
fn one_login(s: &Subject, worker: usize, last_seq: &mut u64) -> Result<(), String> {
    let user = user(worker);
    let mut prompted = 0usize;
    let kind = &s.kind;
    let outcome = libpam::authenticate(&s.service, user, &s.confdir, |p| {
        prompted += 1;
        match kind {
            Kind::Floor => None,
            Kind::Smsotp { codes } => {
                if !p.text.starts_with("Code sent to ") {
                    return None;
                }
                let code = codes.wait_newer(worker, *last_seq, Duration::from_secs(10))?;
                *last_seq = codes.get(worker).0;
                Some(code)
            }
            Kind::Gauth { secret } => Some(otp::totp(secret, now_unix())),
            Kind::Oath { secret, counters } => Some(otp::hotp(
                secret,
                counters.at(worker).load(Ordering::Relaxed),
            )),
        }
    });
    let want_prompts = usize::from(!matches!(kind, Kind::Floor));
    if outcome.code == PAM_SUCCESS && prompted == want_prompts {
        if let Kind::Oath { counters, .. } = kind {
            counters.at(worker).fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    } else {
        Err(format!("{outcome}"))
    }
}

/// One worker process: warm up, say ready, wait for go, log in until the
/// phase ends, write latencies (u32 microseconds, LE) and failures to
/// files. Never returns.
fn worker_process(s: &Subject, w: usize, duration: Duration, sync: &SharedU64, out: &Path) -> ! {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut seq = match &s.kind {
            Kind::Smsotp { codes } => codes.get(w).0,
            _ => 0,
        };
        let mut failures = 0u64;
        let mut first_failure: Option<String> = None;
        // Warm-up: the first login of a process loads modules, opens pools.
        if let Err(e) = one_login(s, w, &mut seq) {
            failures += 1;
            first_failure = Some(format!("(warm-up) {e}"));
        }
        sync.at(1).fetch_add(1, Ordering::AcqRel);
        let wait_until = Instant::now() + Duration::from_secs(120);
        while sync.at(0).load(Ordering::Acquire) == 0 && Instant::now() < wait_until {
            std::thread::sleep(Duration::from_micros(200));
        }
        let mut lat: Vec<u8> = Vec::with_capacity(1 << 16);
        let cpu0 = self_cpu();
        let end = Instant::now() + duration;
        while Instant::now() < end {
            let t = Instant::now();
            match one_login(s, w, &mut seq) {
                Ok(()) => {
                    let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    lat.extend_from_slice(&us.to_le_bytes());
                }
                Err(e) => {
                    failures += 1;
                    first_failure.get_or_insert(e);
                    if failures > 100 {
                        break;
                    }
                }
            }
        }
        let cpu = self_cpu().saturating_sub(cpu0);
        let _ = std::fs::write(out.join(format!("lat-{w}")), &lat);
        let _ = std::fs::write(
            out.join(format!("fail-{w}")),
            format!(
                "{failures}\n{}\n{}",
                cpu.as_nanos(),
                first_failure.unwrap_or_default()
            ),
        );
    }));
    // SAFETY: _exit skips atexit handlers and destructors the parent owns
    // (the daemon fixture, temp dirs); exactly what a forked child needs.
    unsafe { libc::_exit(if result.is_ok() { 0 } else { 1 }) }
}

/// Runs `conc` worker processes (forked: sshd also logs in one process per
/// connection, and pam_oath's fcntl lock does not exclude threads of one
/// process) for `seconds`.
fn run_phase(s: &Subject, conc: usize, seconds: f64, perf: Option<&Path>) -> PhaseResult {
    let duration = Duration::from_secs_f64(seconds);
    let out = tempfile::tempdir().expect("result dir");
    // [0] go, [1] ready count.
    let sync = SharedU64::new(2);
    let mut pids = Vec::new();
    for w in 0..conc {
        // SAFETY: the child only runs libpam and our own code, then _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            worker_process(s, w, duration, &sync, out.path());
        }
        assert!(pid > 0, "fork failed");
        pids.push(pid);
    }
    let ready_by = Instant::now() + Duration::from_secs(120);
    while sync.at(1).load(Ordering::Acquire) < conc as u64 && Instant::now() < ready_by {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut perf_children = Vec::new();
    if let Some(dir) = perf {
        let _ = std::fs::create_dir_all(dir);
        let mut targets: Vec<(&str, String)> = vec![(
            "workers",
            pids.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(","),
        )];
        if let Some(d) = s.daemon_pid {
            targets.push(("daemon", d.to_string()));
        }
        for (who, pid) in targets {
            let file = dir.join(format!("{}-c{conc}-{who}.perf.data", s.name));
            if let Ok(c) = std::process::Command::new("perf")
                .args(["record", "-q", "-F", "997", "-g", "-p", &pid, "-o"])
                .arg(&file)
                .args(["--", "sleep", &format!("{}", seconds.ceil() as u64)])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
            {
                perf_children.push(c);
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let dcpu0 = s.daemon_pid.map(proc_cpu).unwrap_or_default();
    let gcpu0 = s.mock.as_ref().map(|m| m.cpu()).unwrap_or_default();
    let t0 = Instant::now();
    sync.at(0).store(1, Ordering::Release);
    for pid in &pids {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(*pid, &mut status, 0) };
    }
    let wall = t0.elapsed();
    let mut r = PhaseResult {
        concurrency: conc,
        wall,
        cpu_daemon: s
            .daemon_pid
            .map(proc_cpu)
            .unwrap_or_default()
            .saturating_sub(dcpu0),
        cpu_gateway: s
            .mock
            .as_ref()
            .map(|m| m.cpu())
            .unwrap_or_default()
            .saturating_sub(gcpu0),
        ..Default::default()
    };
    let mut lat: Vec<Duration> = Vec::new();
    for w in 0..conc {
        let bytes = std::fs::read(out.path().join(format!("lat-{w}"))).unwrap_or_default();
        lat.extend(
            bytes
                .chunks_exact(4)
                .map(|c| Duration::from_micros(u32::from_le_bytes(c.try_into().unwrap()).into())),
        );
        let fail = std::fs::read_to_string(out.path().join(format!("fail-{w}")))
            .unwrap_or_else(|_| "1\n0\nworker process died".into());
        let mut parts = fail.splitn(3, '\n');
        r.failures += parts
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(1);
        let cpu_ns: u64 = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        r.cpu_client += Duration::from_nanos(cpu_ns);
        let first = parts.next().unwrap_or("");
        if r.first_failure.is_none() && !first.is_empty() {
            r.first_failure = Some(first.to_string());
        }
    }
    lat.sort_unstable();
    r.logins = lat.len() as u64;
    let pct = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    r.p50 = pct(0.50);
    r.p99 = pct(0.99);
    for mut c in perf_children {
        let _ = c.wait();
    }
    r
}

/// The smsotp daemon + gateway + pam.d stack for one variant.
struct SmsotpSetup {
    daemon: Daemon,
    mock: Arc<Mock>,
    _ca_dir: tempfile::TempDir,
}

fn start_smsotp(target_dir: &Path, tls: bool) -> Result<SmsotpSetup, String> {
    let ca_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (mock, extra) = if tls {
        let t = mock::make_tls();
        let ca = ca_dir.path().join("ca.pem");
        std::fs::write(&ca, &t.ca_pem).map_err(|e| e.to_string())?;
        (
            Mock::start(USERS, Some(t.config)),
            format!("ca_file = {}\n", toml_str(&ca.to_string_lossy())),
        )
    } else {
        (Mock::start(USERS, None), String::new())
    };
    let mut b = Daemon::builder()
        .log_level("warn")
        .top("max_connections = 65536")
        .section("send_budget", "per_user_per_hour = 10000")
        .section("send_budget", "per_rhost_per_hour = 100000")
        .section("send_budget", "global_per_hour = 1000000")
        .provider(&format!(
            "type = \"http\"\nname = \"gateway\"\nurl = {}\n\
             payload = '{{\"to\": {{{{mobile}}}}, \"text\": {{{{body}}}}}}'\n\
             timeout_seconds = 10\n{extra}",
            toml_str(&mock.url())
        ));
    for i in 0..USERS {
        b = b.user(user(i), &mock::mobile(i));
    }
    // The fixture finds smsotpd through SMSOTP_TARGET_DIR.
    let old = std::env::var_os("SMSOTP_TARGET_DIR");
    std::env::set_var("SMSOTP_TARGET_DIR", target_dir);
    let daemon = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.start()));
    match old {
        Some(v) => std::env::set_var("SMSOTP_TARGET_DIR", v),
        None => std::env::remove_var("SMSOTP_TARGET_DIR"),
    }
    let daemon = daemon.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "daemon did not start".into())
    })?;
    Ok(SmsotpSetup {
        daemon,
        mock: Arc::new(mock),
        _ca_dir: ca_dir,
    })
}

/// Opens `n` connections, each with a pending challenge; returns the
/// daemon's RSS (KiB) with them all open, and how many succeeded.
fn pending_challenges(socket: &Path, pid: u32, n: usize) -> (usize, u64, Duration) {
    use smsotp_proto::{BeginRequest, Client, Request, Response};
    let threads = 8;
    let t0 = Instant::now();
    let held: Vec<Vec<Client>> = std::thread::scope(|scope| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut v = Vec::new();
                    for i in (t..n).step_by(threads) {
                        let Ok(mut c) =
                            Client::connect(socket, Duration::from_secs(20), "smsotp-bench")
                        else {
                            break;
                        };
                        let req = Request::Begin(BeginRequest {
                            user: user(i).to_string(),
                            service: "bench-pending".into(),
                            rhost: None,
                            tty: None,
                            command: None,
                        });
                        match c.call(&req) {
                            Ok(Response::Challenge(_)) => v.push(c),
                            Ok(other) => {
                                eprintln!("pending challenge {i}: unexpected answer {other:?}");
                                break;
                            }
                            Err(e) => {
                                eprintln!("pending challenge {i}: {e}");
                                break;
                            }
                        }
                    }
                    v
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let took = t0.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let rss = rss_kib(pid);
    let count = held.iter().map(Vec::len).sum();
    drop(held);
    (count, rss, took)
}

fn raise_nofile() -> u64 {
    // SAFETY: plain getrlimit/setrlimit on our own process.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        // Try for more than the hard limit (needs CAP_SYS_RESOURCE), then
        // settle for the hard limit.
        let want = libc::rlimit {
            rlim_cur: 1 << 20,
            rlim_max: 1 << 20,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &want) != 0 {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl);
        rl.rlim_cur
    }
}

fn write_service(dir: &Path, name: &str, auth: &str) {
    std::fs::write(
        dir.join(name),
        format!("{auth}account required pam_permit.so\nsession required pam_permit.so\n"),
    )
    .expect("write pam.d service");
}

fn module_exists(name: &str) -> bool {
    [
        "/lib/x86_64-linux-gnu/security",
        "/usr/lib/x86_64-linux-gnu/security",
        "/lib/security",
    ]
    .iter()
    .any(|d| Path::new(d).join(name).exists())
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

fn main() {
    let args = parse_args();
    smsotp_tests::require_root("drives libpam with other users' codes");
    let want = |n: &str| args.only.as_ref().is_none_or(|o| o.iter().any(|x| x == n));
    let target = smsotp_tests::paths::target_dir();
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    eprintln!("creating {USERS} local test accounts (removed at the end) ...");
    let accounts: Vec<smsotp_tests::users::TestUser> = (0..USERS)
        .map(|_| smsotp_tests::users::TestUser::create())
        .collect();
    let _ = NAMES.set(accounts.iter().map(|a| a.name.clone()).collect());
    let nofile = raise_nofile();
    let work = tempfile::Builder::new()
        .prefix("smsotp-bench-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let confdir = work.path().join("pam.d");
    std::fs::create_dir_all(&confdir).unwrap();
    let mut notes: Vec<String> = Vec::new();
    let mut subjects: Vec<Subject> = Vec::new();
    let mut setups: Vec<SmsotpSetup> = Vec::new();

    if want("floor") {
        write_service(&confdir, "bench-floor", "auth required pam_permit.so\n");
        subjects.push(Subject {
            name: "floor".into(),
            service: "bench-floor".into(),
            confdir: confdir.clone(),
            kind: Kind::Floor,
            daemon_pid: None,
            mock: None,
        });
    }
    let variants: [(&str, bool, PathBuf); 2] = [
        ("smsotp-http", false, target.clone()),
        (
            "smsotp-https",
            true,
            args.tls_target_dir.clone().unwrap_or(target.clone()),
        ),
    ];
    for (name, tls, dir) in variants {
        if !want(name) {
            continue;
        }
        match start_smsotp(&dir, tls) {
            Ok(setup) => {
                let module = dir.join("libpam_smsotp.so");
                let service = format!("bench-{name}");
                write_service(
                    &confdir,
                    &service,
                    &format!(
                        "auth required pam_permit.so\nauth required {} socket={} timeout=20\n",
                        module.display(),
                        setup.daemon.socket().display()
                    ),
                );
                subjects.push(Subject {
                    name: name.into(),
                    service,
                    confdir: confdir.clone(),
                    kind: Kind::Smsotp {
                        codes: Arc::clone(&setup.mock.codes),
                    },
                    daemon_pid: setup.daemon.pid(),
                    mock: Some(Arc::clone(&setup.mock)),
                });
                if dir != target {
                    notes.push(format!(
                        "{name}: smsotpd and the module from {}",
                        dir.display()
                    ));
                }
                setups.push(setup);
            }
            Err(e) => {
                let first = e.lines().next().unwrap_or("").to_string();
                notes.push(format!(
                    "{name}: skipped, the daemon in {} did not start ({first})",
                    dir.display()
                ));
            }
        }
    }
    if want("gauth") {
        if module_exists("pam_google_authenticator.so") {
            let secret = b"smsotp-bench-gauth-1".to_vec();
            let sdir = work.path().join("gauth");
            std::fs::create_dir_all(&sdir).unwrap();
            for i in 0..USERS {
                let p = sdir.join(user(i));
                std::fs::write(&p, format!("{}\n\" TOTP_AUTH\n", otp::base32(&secret))).unwrap();
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
            }
            write_service(
                &confdir,
                "bench-gauth",
                &format!(
                    "auth required pam_permit.so\nauth required pam_google_authenticator.so \
                     secret={}/${{USER}} user=root noskewadj\n",
                    sdir.display()
                ),
            );
            subjects.push(Subject {
                name: "gauth".into(),
                service: "bench-gauth".into(),
                confdir: confdir.clone(),
                kind: Kind::Gauth { secret },
                daemon_pid: None,
                mock: None,
            });
        } else {
            notes.push("gauth: skipped, apt-get install libpam-google-authenticator".into());
        }
    }
    if want("oath") {
        if module_exists("pam_oath.so") {
            let secret = b"smsotp-bench-oath-01".to_vec();
            // One usersfile per user (`${USER}`): with one shared file,
            // liboath's lock makes concurrent logins fail
            // (OATH_FILE_LOCK_ERROR -> PAM_AUTH_ERR), see BENCHMARKS.md.
            let odir = work.path().join("oath");
            std::fs::create_dir_all(&odir).unwrap();
            for i in 0..USERS {
                std::fs::write(
                    odir.join(format!("{}.oath", user(i))),
                    format!("HOTP {} - {}\n", user(i), otp::hex(&secret)),
                )
                .unwrap();
            }
            write_service(
                &confdir,
                "bench-oath",
                &format!(
                    "auth required pam_permit.so\nauth required pam_oath.so \
                     usersfile={}/${{USER}}.oath window=20 digits=6\n",
                    odir.display()
                ),
            );
            subjects.push(Subject {
                name: "oath".into(),
                service: "bench-oath".into(),
                confdir: confdir.clone(),
                kind: Kind::Oath {
                    secret,
                    counters: Arc::new(SharedU64::new(USERS)),
                },
                daemon_pid: None,
                mock: None,
            });
        } else {
            notes.push("oath: skipped, apt-get install libpam-oath".into());
        }
    }

    let mut rss_idle: Vec<(String, u64)> = Vec::new();
    for s in &subjects {
        if let Some(pid) = s.daemon_pid {
            rss_idle.push((s.name.clone(), rss_kib(pid)));
        }
    }

    let mut results: Vec<(String, Vec<PhaseResult>)> = Vec::new();
    for s in &subjects {
        let mut rs = Vec::new();
        for &c in &args.concurrency {
            if STOP.load(Ordering::SeqCst) {
                break;
            }
            eprintln!(
                "running {} at concurrency {c} for {} s ...",
                s.name, args.seconds
            );
            let perf = args
                .perf
                .as_deref()
                .filter(|_| s.name.starts_with("smsotp") || s.name == "gauth" || s.name == "oath");
            let r = run_phase(s, c, args.seconds, perf);
            eprintln!(
                "  {:.0} logins/s, p50 {} ms, p99 {} ms, {} us CPU/login, {} failures",
                r.rate(),
                ms(r.p50),
                ms(r.p99),
                us(r.cpu_per_login()),
                r.failures
            );
            if let Some(f) = &r.first_failure {
                eprintln!("  first failure:\n{f}");
            }
            rs.push(r);
        }
        results.push((s.name.clone(), rs));
    }

    let mut rss_after: Vec<(String, u64)> = Vec::new();
    let mut pending: Vec<(String, usize, u64, Duration)> = Vec::new();
    for (s, setup) in subjects
        .iter()
        .filter(|s| s.daemon_pid.is_some())
        .zip(setups.iter())
    {
        let pid = s.daemon_pid.unwrap();
        rss_after.push((s.name.clone(), rss_kib(pid)));
        if s.name == "smsotp-http" && args.pending > 0 && !STOP.load(Ordering::SeqCst) {
            // Our fds and the daemon's share the limit we raised; leave
            // headroom for libraries, the store and the gateway.
            let n = args.pending.min((nofile as usize).saturating_sub(600));
            if n < args.pending {
                notes.push(format!(
                    "pending challenges: RLIMIT_NOFILE is {nofile} here (the hard limit; raising \
                     it needs CAP_SYS_RESOURCE), so {n} were opened instead of {}; per-challenge \
                     memory is extrapolated linearly",
                    args.pending
                ));
            }
            eprintln!("opening {n} pending challenges ...");
            let (count, rss, took) = pending_challenges(&setup.daemon.socket(), pid, n);
            pending.push((s.name.clone(), count, rss, took));
        }
    }

    // ---- report
    let mut md = String::new();
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let loadavg: Vec<&str> = loadavg.split_whitespace().take(3).collect();
    let _ = writeln!(
        md,
        "machine: {cpus} CPU(s), {cpu_model}; load average at the end {} (other work on the \
         machine shows up as noise); {} s per phase; daemon log_level = warn\n",
        loadavg.join(" "),
        args.seconds
    );
    let _ = writeln!(
        md,
        "| subject | conc | logins/s | p50 ms | p99 ms | CPU/login us (client+daemon) | client us | daemon us | gateway us (excluded) | failures |"
    );
    let _ = writeln!(
        md,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (name, rs) in &results {
        for r in rs {
            let per = |d: Duration| us(d.checked_div(r.logins.max(1) as u32).unwrap_or_default());
            let _ = writeln!(
                md,
                "| {name} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
                r.concurrency,
                r.rate(),
                ms(r.p50),
                ms(r.p99),
                us(r.cpu_per_login()),
                per(r.cpu_client),
                per(r.cpu_daemon),
                per(r.cpu_gateway),
                r.failures
            );
        }
    }
    let find = |n: &str, c: usize| {
        results
            .iter()
            .find(|(name, _)| name == n)
            .and_then(|(_, rs)| rs.iter().find(|r| r.concurrency == c))
    };
    let _ = writeln!(md, "\nratios (smsotp / other; CPU and latency: lower is better for smsotp when < 1; throughput: higher is better when > 1):\n");
    let _ = writeln!(
        md,
        "| smsotp | vs | conc | CPU/login | p50 | p99 | logins/s |"
    );
    let _ = writeln!(md, "| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    for sm in ["smsotp-http", "smsotp-https"] {
        for other in ["gauth", "oath", "floor"] {
            for &c in &args.concurrency {
                if let (Some(a), Some(b)) = (find(sm, c), find(other, c)) {
                    let ratio =
                        |x: Duration, y: Duration| x.as_secs_f64() / y.as_secs_f64().max(1e-9);
                    let _ = writeln!(
                        md,
                        "| {sm} | {other} | {c} | {:.2} | {:.2} | {:.2} | {:.2} |",
                        ratio(a.cpu_per_login(), b.cpu_per_login()),
                        ratio(a.p50, b.p50),
                        ratio(a.p99, b.p99),
                        a.rate() / b.rate().max(1e-9)
                    );
                }
            }
        }
    }
    let _ = writeln!(md, "\ndaemon memory (VmRSS):\n");
    for s in &subjects {
        if let Some(m) = &s.mock {
            let _ = writeln!(
                md,
                "- {}: the gateway took {} messages",
                s.name,
                m.requests()
            );
        }
    }
    for (name, kib) in &rss_idle {
        let after = rss_after.iter().find(|(n, _)| n == name).map_or(0, |x| x.1);
        let _ = writeln!(
            md,
            "- {name}: idle after start {kib} KiB; idle after the runs {after} KiB"
        );
    }
    for (name, count, kib, took) in &pending {
        let base = rss_after.iter().find(|(n, _)| n == name).map_or(0, |x| x.1);
        let per = (*kib as f64 - base as f64) * 1024.0 / (*count).max(1) as f64;
        let _ = writeln!(
            md,
            "- {name}: {kib} KiB with {count} pending challenges (opened in {:.1} s); \
             {per:.0} bytes per pending challenge; 100,000 would be about {:.0} MiB",
            took.as_secs_f64(),
            (base as f64 * 1024.0 + per * 100_000.0) / 1048576.0
        );
    }
    if !notes.is_empty() {
        let _ = writeln!(md, "\nnotes:\n");
        for n in &notes {
            let _ = writeln!(md, "- {n}");
        }
    }
    println!("{md}");
    if let Some(out) = &args.out {
        if let Err(e) = std::fs::write(out, &md) {
            eprintln!("cannot write {}: {e}", out.display());
        }
    }
    drop(subjects);
    drop(setups);
    drop(accounts);
}
