//! One phase: `conc` forked worker processes logging in for a while,
//! timed per login, with the CPU of the workers (getrusage), the daemon
//! (/proc/PID/stat) and the gateway (excluded from smsotp's cost).

use crate::mock::SharedU64;
use crate::otp;
use crate::subjects::{user, Kind, Subject};
use smsotp_tests::libpam::{self, PAM_SUCCESS};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Default)]
pub struct PhaseResult {
    pub concurrency: usize,
    pub logins: u64,
    pub failures: u64,
    pub wall: Duration,
    pub p50: Duration,
    pub p99: Duration,
    /// Harness CPU (libpam + modules + conversation), gateway excluded.
    pub cpu_client: Duration,
    pub cpu_daemon: Duration,
    pub cpu_gateway: Duration,
    pub first_failure: Option<String>,
}

impl PhaseResult {
    pub fn rate(&self) -> f64 {
        self.logins as f64 / self.wall.as_secs_f64()
    }
    pub fn cpu_per_login(&self) -> Duration {
        (self.cpu_client + self.cpu_daemon)
            .checked_div(self.logins.max(1) as u32)
            .unwrap_or_default()
    }
}

pub fn self_cpu() -> Duration {
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// utime + stime of a process, from /proc/PID/stat.
pub fn proc_cpu(pid: u32) -> Duration {
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

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// One complete login of `worker`'s user. Err carries the transcript.
pub fn one_login(s: &Subject, worker: usize, last_seq: &mut u64) -> Result<(), String> {
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
pub fn run_phase(s: &Subject, conc: usize, seconds: f64, perf: Option<&Path>) -> PhaseResult {
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
    let perf_children = perf.map_or_else(Vec::new, |dir| start_perf(s, &pids, conc, seconds, dir));
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

/// `perf record -g` of the workers and the daemon for the phase, into
/// DIR/SUBJECT-cN-{workers,daemon}.perf.data (`--perf DIR`).
fn start_perf(
    s: &Subject,
    pids: &[libc::pid_t],
    conc: usize,
    seconds: f64,
    dir: &Path,
) -> Vec<std::process::Child> {
    let _ = std::fs::create_dir_all(dir);
    let workers: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
    let mut targets: Vec<(&str, String)> = vec![("workers", workers.join(","))];
    if let Some(d) = s.daemon_pid {
        targets.push(("daemon", d.to_string()));
    }
    let mut children = Vec::new();
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
            children.push(c);
        }
    }
    // perf needs a moment to attach before the phase starts.
    std::thread::sleep(Duration::from_millis(300));
    children
}
