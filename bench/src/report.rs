//! The markdown report of one run: the phases, the ratios smsotp / peer,
//! instructions per login, module load cost, daemon memory, notes.

use crate::measure::PhaseResult;
use std::fmt::Write as _;
use std::time::Duration;

/// Everything one run measured.
#[derive(Default)]
pub struct Run {
    pub seconds: f64,
    pub concurrency: Vec<usize>,
    pub results: Vec<(String, Vec<PhaseResult>)>,
    /// (subject, messages the loopback gateway took).
    pub gateway_requests: Vec<(String, u64)>,
    /// (subject, KiB idle after start, KiB idle after the runs).
    pub rss: Vec<(String, u64, u64)>,
    /// (subject, challenges held, KiB with them, time to open them).
    pub pending: Vec<(String, usize, u64, Duration)>,
    /// Rendered by crate::callgrind and crate::loadcost.
    pub sections: Vec<String>,
    pub notes: Vec<String>,
}

impl Run {
    pub fn failures(&self) -> u64 {
        self.results
            .iter()
            .flat_map(|(_, rs)| rs.iter().map(|r| r.failures))
            .sum()
    }

    fn find(&self, n: &str, c: usize) -> Option<&PhaseResult> {
        self.results
            .iter()
            .find(|(name, _)| name == n)
            .and_then(|(_, rs)| rs.iter().find(|r| r.concurrency == c))
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

pub fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

/// The machine, as far as it matters to the numbers.
pub fn machine() -> String {
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
    format!(
        "machine: {cpus} CPU(s), {cpu_model}; load average at the end {} (other work on the \
         machine shows up as noise)",
        loadavg.join(" ")
    )
}

fn phases(md: &mut String, run: &Run) {
    let _ = writeln!(
        md,
        "| subject | conc | logins/s | p50 ms | p99 ms | CPU/login us (client+daemon) | client us | daemon us | gateway us (excluded) | failures |"
    );
    let _ = writeln!(
        md,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (name, rs) in &run.results {
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
}

fn ratios(md: &mut String, run: &Run) {
    let _ = writeln!(md, "\nratios (smsotp / other; CPU and latency: lower is better for smsotp when < 1; throughput: higher is better when > 1):\n");
    let _ = writeln!(
        md,
        "| smsotp | vs | conc | CPU/login | p50 | p99 | logins/s |"
    );
    let _ = writeln!(md, "| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    let ratio = |x: Duration, y: Duration| x.as_secs_f64() / y.as_secs_f64().max(1e-9);
    for sm in ["smsotp-http", "smsotp-https"] {
        for other in ["gauth", "oath", "floor"] {
            for &c in &run.concurrency {
                if let (Some(a), Some(b)) = (run.find(sm, c), run.find(other, c)) {
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
}

fn memory(md: &mut String, run: &Run) {
    let _ = writeln!(md, "\ndaemon memory (VmRSS):\n");
    for (name, n) in &run.gateway_requests {
        let _ = writeln!(md, "- {name}: the gateway took {n} messages");
    }
    for (name, idle, after) in &run.rss {
        let _ = writeln!(
            md,
            "- {name}: idle after start {idle} KiB; idle after the runs {after} KiB"
        );
    }
    for (name, count, kib, took) in &run.pending {
        let base = run.rss.iter().find(|r| &r.0 == name).map_or(0, |r| r.2);
        let per = (*kib as f64 - base as f64) * 1024.0 / (*count).max(1) as f64;
        let _ = writeln!(
            md,
            "- {name}: {kib} KiB with {count} pending challenges (opened in {:.1} s); \
             {per:.0} bytes per pending challenge; 100,000 would be about {:.0} MiB",
            took.as_secs_f64(),
            (base as f64 * 1024.0 + per * 100_000.0) / 1048576.0
        );
    }
}

pub fn render(run: &Run) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "{}; {} s per phase; daemon log_level = warn\n",
        machine(),
        run.seconds
    );
    phases(&mut md, run);
    ratios(&mut md, run);
    for s in &run.sections {
        let _ = writeln!(md, "\n{s}");
    }
    memory(&mut md, run);
    if !run.notes.is_empty() {
        let _ = writeln!(md, "\nnotes:\n");
        for n in &run.notes {
            let _ = writeln!(md, "- {n}");
        }
    }
    md
}
