//! `smsotp-bench daemon`: a real smsotpd on a temp socket, driven in-process
//! by the proto client over many concurrent connections, one begin+verify
//! cycle per connection (as the module does per login: connect, Hello,
//! Begin, Verify). Reports cycles/s, p50/p99 and the daemon's CPU per cycle
//! (/proc/PID/stat utime+stime) for SQLite sync normal, SQLite sync full
//! and PostgreSQL on loopback, in one run (issue #10, "Measured").
//!
//! The codes come from the `outbox` provider's file, on tmpfs (/dev/shm)
//! so that its fdatasync per message costs what a gateway hand-off would
//! not; `--provider gateway` uses the loopback HTTP gateway instead
//! (keep-alive, the daemon's real HTTP client; its CPU is not the
//! daemon's). Users have entries in users.toml but no accounts (the daemon
//! still asks NSS at every Begin).

use crate::args::{list, num, pairs, usage};
use crate::daemon_report::render;
use crate::measure::proc_cpu;
use crate::mock::{Codes, Mock};
use crate::outbox_tail::OutboxTail;
use crate::report::us;
use crate::subjects::{bench_daemon, start_daemon, user_name};
use smsotp_proto::{BeginRequest, Client, Request, Response, Secret};
use smsotp_tests::daemon::{toml_str, Daemon};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

pub const BACKENDS: [&str; 3] = ["sqlite-normal", "sqlite-full", "postgres"];

pub struct Opts {
    pub seconds: f64,
    pub connections: Vec<usize>,
    pub only: Option<Vec<String>>,
    pub gateway: bool,
    pub out: Option<PathBuf>,
    /// Cycles under callgrind for the daemon's instructions (0: skip).
    pub callgrind: usize,
}

pub fn parse(args: impl Iterator<Item = String>) -> Opts {
    let mut o = Opts {
        seconds: 5.0,
        connections: vec![1, 16, 64],
        only: None,
        gateway: false,
        out: None,
        callgrind: 0,
    };
    for (flag, val) in pairs(args) {
        match flag.as_str() {
            "--seconds" => o.seconds = num(&val),
            "--connections" => {
                o.connections = list(&val).iter().map(|c| num(&Some(c.clone()))).collect()
            }
            "--only" => o.only = Some(list(&val)),
            "--provider" => o.gateway = val.as_deref() == Some("gateway"),
            "--out" => o.out = val.map(PathBuf::from),
            "--callgrind" => o.callgrind = num(&val),
            _ => usage(),
        }
    }
    if o.connections.iter().any(|&c| c == 0 || c > 4096) {
        usage();
    }
    o
}

#[derive(Default)]
pub struct CycleResult {
    pub backend: String,
    pub connections: usize,
    pub cycles: u64,
    pub failures: u64,
    pub wall: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub daemon_cpu: Duration,
    /// Context switches of all the daemon's threads during the phase.
    pub switches: u64,
    pub first_failure: Option<String>,
}

impl CycleResult {
    pub fn rate(&self) -> f64 {
        self.cycles as f64 / self.wall.as_secs_f64().max(1e-9)
    }
    pub fn cpu_per_cycle(&self) -> Duration {
        self.daemon_cpu
            .checked_div(self.cycles.max(1) as u32)
            .unwrap_or_default()
    }
}

/// Voluntary + involuntary context switches summed over a process's
/// threads (/proc/PID/task/*/status): each is a hand-off or a preemption,
/// and their count moves far less with machine noise than seconds do.
fn switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|st| {
            st.lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// A running daemon for one backend and where its codes arrive.
pub struct Rig {
    pub daemon: Daemon,
    pub codes: Arc<Codes>,
    /// The outbox provider's file (None with the gateway).
    pub outbox: Option<PathBuf>,
    stop: Arc<AtomicBool>,
    pump: Option<std::thread::JoinHandle<()>>,
    _mock: Option<Mock>,
    _pg: Option<smsotp_tests::pg::Postgres>,
    _dir: tempfile::TempDir,
    _state: Option<tempfile::TempDir>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(p) = self.pump.take() {
            let _ = p.join();
        }
    }
}

/// Starts smsotpd from `target` with `backend` for `users` users.
pub fn rig(target: &Path, backend: &str, users: usize, gateway: bool) -> Result<Rig, String> {
    // tmpfs where there is one (the outbox's fdatasync per message is then
    // free, as a gateway hand-off would be); the temp dir otherwise.
    let named = tempfile::Builder::new().prefix("smsotp-bench-d").clone();
    let dir = named
        .tempdir_in("/dev/shm")
        .or_else(|_| named.tempdir())
        .map_err(|e| e.to_string())?;
    let mut b = bench_daemon(users).top("max_connections_per_user = 64");
    let mut pg = None;
    let mut state_dir = None;
    b = match backend {
        "postgres" => {
            let p = smsotp_tests::pg::Postgres::start().ok_or("PostgreSQL is not installed")?;
            let url = p.database();
            pg = Some(p);
            b.postgres_store(&url)
        }
        sqlite => {
            // The state on disk like a host's /var/lib (not tmpfs), so
            // sync = full pays its real fsync.
            let sync = sqlite.strip_prefix("sqlite-").unwrap_or("normal");
            let state = tempfile::Builder::new()
                .prefix("smsotp-bench-state")
                .tempdir_in("/var/tmp")
                .map_err(|e| e.to_string())?;
            let db = state.path().join("state.db");
            state_dir = Some(state);
            b.section(
                "store",
                &format!("path = {}", toml_str(&db.to_string_lossy())),
            )
            .section("store", &format!("sync = \"{sync}\""))
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let outbox = (!gateway).then(|| dir.path().join("outbox.jsonl"));
    let (codes, mock, pump) = if gateway {
        let m = Mock::start(users, None);
        b = b.provider(&format!(
            "type = \"http\"\nname = \"gateway\"\nurl = {}\n\
             payload = '{{\"to\": {{{{mobile}}}}, \"text\": {{{{body}}}}}}'\ntimeout_seconds = 10\n",
            toml_str(&m.url())
        ));
        (Arc::clone(&m.codes), Some(m), None)
    } else {
        let path = dir.path().join("outbox.jsonl");
        b = b.with_outbox(false).provider(&format!(
            "type = \"outbox\"\npath = {}\n",
            toml_str(&path.to_string_lossy())
        ));
        let tail = OutboxTail::at_end(&path);
        let codes = Arc::new(Codes::new(users));
        let (c, s) = (Arc::clone(&codes), Arc::clone(&stop));
        (
            codes,
            None,
            Some(std::thread::spawn(move || tail.pump(&c, &s))),
        )
    };
    let daemon = start_daemon(b, target)?;
    Ok(Rig {
        daemon,
        codes,
        outbox,
        stop,
        pump,
        _mock: mock,
        _pg: pg,
        _dir: dir,
        _state: state_dir,
    })
}

/// One begin+verify cycle of user `i` on a fresh connection.
pub fn cycle(socket: &Path, codes: &Codes, i: usize, seq: &mut u64) -> Result<(), String> {
    let mut c = Client::connect(socket, Duration::from_secs(20), "smsotp-bench")
        .map_err(|e| format!("connect: {e}"))?;
    let begin = Request::Begin(BeginRequest {
        user: user_name(i),
        service: "bench-daemon".into(),
        rhost: None,
        tty: None,
        command: None,
    });
    match c.call(&begin).map_err(|e| format!("begin: {e}"))? {
        Response::Challenge(_) => {}
        other => return Err(format!("begin answered {other:?}")),
    }
    let code = codes
        .wait_newer(i, *seq, Duration::from_secs(10))
        .ok_or("no code arrived within 10 s")?;
    *seq = codes.get(i).0;
    match c.call(&Request::Verify {
        code: Secret::new(code),
    }) {
        Ok(Response::Verified { .. }) => Ok(()),
        Ok(other) => Err(format!("verify answered {other:?}")),
        Err(e) => Err(format!("verify: {e}")),
    }
}

/// Users per connection, taken in turn: a connection alone at several
/// thousand cycles/s would spend one user's send budget (at most 10,000
/// an hour) within a run, and the daemon would rightly refuse it.
pub const USERS_PER_CONNECTION: usize = 8;

/// `conns` threads cycling for `seconds` against the rig.
pub fn run(rig: &Rig, backend: &str, conns: usize, seconds: f64) -> CycleResult {
    let socket = rig.daemon.socket();
    let pid = rig.daemon.pid().unwrap_or(0);
    let go = Barrier::new(conns + 1);
    let failures = AtomicU64::new(0);
    let first: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let duration = Duration::from_secs_f64(seconds);
    let (lats, cpu0, t0) = std::thread::scope(|s| {
        let hs: Vec<_> = (0..conns)
            .map(|i| {
                let (socket, codes, go, failures, first) =
                    (&socket, &rig.codes, &go, &failures, &first);
                s.spawn(move || {
                    let users: Vec<usize> = (0..USERS_PER_CONNECTION)
                        .map(|k| i * USERS_PER_CONNECTION + k)
                        .collect();
                    let mut seqs: Vec<u64> = users.iter().map(|&u| codes.get(u).0).collect();
                    let fail = |e: String| {
                        failures.fetch_add(1, Ordering::Relaxed);
                        first.lock().unwrap().get_or_insert(e);
                    };
                    // Warm-up: pools, prepared statements, the account cache.
                    for (k, &u) in users.iter().enumerate() {
                        if let Err(e) = cycle(socket, codes, u, &mut seqs[k]) {
                            fail(format!("(warm-up) {e}"));
                        }
                    }
                    go.wait();
                    let mut lat = Vec::with_capacity(1 << 14);
                    let end = Instant::now() + duration;
                    let mut k = 0;
                    while Instant::now() < end {
                        let t = Instant::now();
                        match cycle(socket, codes, users[k], &mut seqs[k]) {
                            Ok(()) => lat.push(t.elapsed()),
                            Err(e) => fail(e),
                        }
                        k = (k + 1) % USERS_PER_CONNECTION;
                    }
                    lat
                })
            })
            .collect();
        go.wait();
        let (cpu0, sw0, t0) = (proc_cpu(pid), switches(pid), Instant::now());
        let lats: Vec<Duration> = hs.into_iter().flat_map(|h| h.join().unwrap()).collect();
        (lats, (cpu0, sw0), t0)
    });
    let wall = t0.elapsed();
    let daemon_cpu = proc_cpu(pid).saturating_sub(cpu0.0);
    let switches = switches(pid).saturating_sub(cpu0.1);
    let mut lats = lats;
    lats.sort_unstable();
    let pct = |q: f64| {
        lats.get(((lats.len() as f64 * q) as usize).min(lats.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    CycleResult {
        backend: backend.into(),
        connections: conns,
        cycles: lats.len() as u64,
        failures: failures.into_inner(),
        wall,
        p50: pct(0.5),
        p99: pct(0.99),
        daemon_cpu,
        switches,
        first_failure: first.into_inner().unwrap(),
    }
}

pub fn main(args: impl Iterator<Item = String>) -> ExitCode {
    let o = parse(args);
    smsotp_tests::require_root("starts smsotpd and a PostgreSQL cluster");
    let target = crate::subjects::target();
    let users = o.connections.iter().copied().max().unwrap_or(1) * USERS_PER_CONNECTION;
    let mut results = Vec::new();
    let mut notes = Vec::new();
    for backend in BACKENDS {
        if o.only
            .as_ref()
            .is_some_and(|l| !l.iter().any(|x| x == backend))
        {
            continue;
        }
        let rig = match rig(&target, backend, users, o.gateway) {
            Ok(r) => r,
            Err(e) => {
                notes.push(format!(
                    "{backend}: skipped ({})",
                    e.lines().next().unwrap_or("")
                ));
                continue;
            }
        };
        for &c in &o.connections {
            eprintln!(
                "daemon bench: {backend}, {c} connections, {} s ...",
                o.seconds
            );
            let r = run(&rig, backend, c, o.seconds);
            eprintln!(
                "  {:.0} cycles/s, {} us daemon CPU/cycle, {} failures",
                r.rate(),
                us(r.cpu_per_cycle()),
                r.failures
            );
            if let Some(f) = &r.first_failure {
                eprintln!("  first failure: {f}");
            }
            results.push(r);
        }
    }
    let mut md = render(&results, &o);
    if o.callgrind > 0 {
        eprintln!("daemon under callgrind ({} cycles) ...", o.callgrind);
        let per = tempfile::tempdir()
            .map_err(|e| e.to_string())
            .and_then(|d| crate::callgrind::daemon_per_cycle(&target, o.callgrind, d.path()));
        let _ = match per {
            Ok(ir) => writeln!(
                md,
                "\ndaemon instructions per cycle (callgrind, SQLite normal, {} cycles): {ir}",
                o.callgrind
            ),
            Err(e) => writeln!(md, "\ndaemon instructions per cycle: not measured ({e})"),
        };
    }
    for n in &notes {
        let _ = writeln!(md, "- {n}");
    }
    println!("{md}");
    if let Some(out) = &o.out {
        let _ = std::fs::write(out, &md);
    }
    let failed: u64 = results.iter().map(|r| r.failures).sum();
    if failed > 0 || results.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
