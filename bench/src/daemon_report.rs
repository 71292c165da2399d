//! The report of `smsotp-bench daemon`: one row per store and connection
//! count, then issue #10's aims against the best phase of each store.

use crate::daemon_bench::{CycleResult, Opts};
use crate::report::{machine, ms, us};
use std::fmt::Write as _;

pub fn render(rs: &[CycleResult], o: &Opts) -> String {
    let mut md = String::new();
    let provider = if o.gateway {
        "loopback HTTP gateway"
    } else {
        "outbox on tmpfs"
    };
    let _ = writeln!(
        md,
        "{}; {} s per phase; provider: {provider}; TOKIO_WORKER_THREADS={}\n",
        machine(),
        o.seconds,
        std::env::var("TOKIO_WORKER_THREADS").unwrap_or_else(|_| "(default)".into())
    );
    let _ = writeln!(
        md,
        "| store | connections | cycles/s | p50 ms | p99 ms | daemon CPU/cycle us | daemon switches/cycle | failures |"
    );
    let _ = writeln!(
        md,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in rs {
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {} | {} | {} | {:.1} | {} |",
            r.backend,
            r.connections,
            r.rate(),
            ms(r.p50),
            ms(r.p99),
            us(r.cpu_per_cycle()),
            r.switches as f64 / r.cycles.max(1) as f64,
            r.failures
        );
    }
    aims(&mut md, rs);
    md
}

/// Issue #10's aims on a 2-core host, against the best phase per store.
fn aims(md: &mut String, rs: &[CycleResult]) {
    let best = |b: &str| {
        rs.iter()
            .filter(|r| r.backend == b)
            .max_by(|x, y| x.rate().total_cmp(&y.rate()))
    };
    let _ = writeln!(md, "\naims (issue #10), best phase per store:\n");
    if let Some(r) = best("sqlite-normal") {
        let _ = writeln!(
            md,
            "- sqlite-normal: {:.0} cycles/s (aim >= 10000: {:.2}x of it), {} us daemon CPU/cycle \
             (aim <= 100: {:.1}x over)",
            r.rate(),
            r.rate() / 10_000.0,
            us(r.cpu_per_cycle()),
            r.cpu_per_cycle().as_secs_f64() / 100e-6
        );
    }
    if let Some(r) = best("postgres") {
        let _ = writeln!(
            md,
            "- postgres: {:.0} cycles/s (aim >= 2000: {:.2}x of it)",
            r.rate(),
            r.rate() / 2_000.0
        );
    }
}
