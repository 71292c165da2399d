//! smsotp-bench: complete logins through real Linux-PAM, for smsotp and
//! its peers, measured in one run on one machine. See docs/BENCHMARKS.md.
//!
//! Subjects (subjects.rs; each a pam.d stack in a temporary directory,
//! started with `pam_start_confdir`): `floor` (pam_permit alone, the cost
//! of libpam itself), `smsotp-http` / `smsotp-https` (pam_smsotp ->
//! smsotpd -> `http` provider -> a loopback gateway, plain or TLS),
//! `gauth` (pam_google_authenticator TOTP), `oath` (pam_oath HOTP).
//! measure.rs runs the phases in forked workers, report.rs writes the
//! table and the ratios; callgrind.rs adds instructions per login,
//! loadcost.rs the module's dlopen cost, daemon_bench.rs the daemon alone.
//!
//! The conversation answers like a user. A benchmark, never a test:
//! nothing here fails on slowness; wrong outcomes are counted and
//! reported, and `--smoke` (CI) exits 1 on any.

mod args;
mod callgrind;
mod daemon_bench;
mod daemon_report;
mod loadcost;
mod measure;
mod mock;
mod otp;
mod outbox_tail;
mod pending;
mod report;
mod subjects;

use args::Args;
use report::{ms, us, Run};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use subjects::{Subjects, USERS};

/// Set by SIGINT/SIGTERM: finish the current phase, skip the rest, clean up.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1).peekable();
    match argv.peek().map(String::as_str) {
        Some("dlopen") => loadcost::main(argv.skip(1)),
        Some("daemon") => daemon_bench::main(argv.skip(1)),
        Some("callgrind-login") => callgrind::child_main(argv.skip(1)),
        _ => logins(args::parse_logins(argv)),
    }
}

/// The whole-login benchmark: every subject at every concurrency.
fn logins(args: Args) -> ExitCode {
    smsotp_tests::require_root("drives libpam with other users' codes");
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    eprintln!("creating {USERS} local test accounts (removed at the end) ...");
    let accounts: Vec<smsotp_tests::users::TestUser> = (0..USERS)
        .map(|_| smsotp_tests::users::TestUser::create())
        .collect();
    subjects::set_users(accounts.iter().map(|a| a.name.clone()).collect());
    let nofile = pending::raise_nofile();
    let work = tempfile::Builder::new()
        .prefix("smsotp-bench-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let target = crate::subjects::target();
    let subjects = Subjects::build(&args, work.path(), &target);
    let mut run = Run {
        seconds: args.seconds,
        concurrency: args.concurrency.clone(),
        notes: subjects.notes.clone(),
        ..Default::default()
    };
    let idle: Vec<u64> = subjects
        .setups
        .iter()
        .map(|s| daemon_rss(&s.daemon))
        .collect();
    run.results = phases(&args, &subjects);
    memory(&args, &subjects, &idle, nofile, &mut run);
    if args.dlopen > 0 && !STOP.load(Ordering::SeqCst) {
        eprintln!("module load cost ...");
        run.sections.push(loadcost::section(&target, args.dlopen));
    }
    if args.callgrind > 0 && !STOP.load(Ordering::SeqCst) {
        eprintln!(
            "instructions per login under callgrind ({} logins each) ...",
            args.callgrind
        );
        run.sections.push(callgrind::section(
            &subjects,
            &target,
            args.callgrind,
            args.callgrind_dir.as_deref(),
        ));
    }
    let md = report::render(&run);
    println!("{md}");
    if let Some(out) = &args.out {
        if let Err(e) = std::fs::write(out, &md) {
            eprintln!("cannot write {}: {e}", out.display());
        }
    }
    drop(subjects);
    drop(accounts);
    smoke_verdict(&args, &run)
}

/// Every phase of every subject; progress on stderr.
fn phases(args: &Args, subjects: &Subjects) -> Vec<(String, Vec<measure::PhaseResult>)> {
    let mut results = Vec::new();
    for s in &subjects.list {
        let mut rs = Vec::new();
        for &c in &args.concurrency {
            if STOP.load(Ordering::SeqCst) {
                break;
            }
            eprintln!(
                "running {} at concurrency {c} for {} s ...",
                s.name, args.seconds
            );
            let perf = args.perf.as_deref().filter(|_| s.name != "floor");
            let r = measure::run_phase(s, c, args.seconds, perf);
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
    results
}

fn daemon_rss(d: &smsotp_tests::daemon::Daemon) -> u64 {
    d.pid().map(pending::rss_kib).unwrap_or(0)
}

/// Daemon memory after the runs, and with many pending challenges.
fn memory(args: &Args, subjects: &Subjects, idle: &[u64], nofile: u64, run: &mut Run) {
    for (setup, idle) in subjects.setups.iter().zip(idle) {
        let name = subjects
            .list
            .iter()
            .find(|s| s.daemon_pid == setup.daemon.pid())
            .map_or(String::new(), |s| s.name.clone());
        run.gateway_requests
            .push((name.clone(), setup.mock.requests()));
        run.rss
            .push((name.clone(), *idle, daemon_rss(&setup.daemon)));
        if name != "smsotp-http" || args.pending == 0 || STOP.load(Ordering::SeqCst) {
            continue;
        }
        // Our fds and the daemon's share the limit we raised; leave
        // headroom for libraries, the store and the gateway.
        let n = args.pending.min((nofile as usize).saturating_sub(600));
        if n < args.pending {
            run.notes.push(format!(
                "pending challenges: RLIMIT_NOFILE is {nofile} here (the hard limit; raising \
                 it needs CAP_SYS_RESOURCE), so {n} were opened instead of {}; per-challenge \
                 memory is extrapolated linearly",
                args.pending
            ));
        }
        eprintln!("opening {n} pending challenges ...");
        let pid = setup.daemon.pid().unwrap_or(0);
        let (count, rss, took) = pending::pending_challenges(&setup.daemon.socket(), pid, n);
        run.pending.push((name, count, rss, took));
    }
}

/// `--smoke`: any wrong outcome, or a phase without a single login, fails.
fn smoke_verdict(args: &Args, run: &Run) -> ExitCode {
    if !args.smoke {
        return ExitCode::SUCCESS;
    }
    let empty: Vec<String> = run
        .results
        .iter()
        .flat_map(|(n, rs)| {
            rs.iter()
                .filter(|r| r.logins == 0)
                .map(move |r| format!("{n} c={}", r.concurrency))
        })
        .collect();
    let expected = args.only.as_ref().map_or(5, Vec::len);
    if run.failures() > 0 || !empty.is_empty() || run.results.len() < expected {
        eprintln!(
            "smoke: {} wrong outcomes; phases without a login: {empty:?}; {} of {expected} subjects ran ({:?})",
            run.failures(),
            run.results.len(),
            run.notes
        );
        return ExitCode::FAILURE;
    }
    eprintln!("smoke: ok, zero wrong outcomes");
    ExitCode::SUCCESS
}
