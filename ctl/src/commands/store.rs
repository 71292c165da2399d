//! `smsotpctl store import FILE` and `smsotpctl store check`: the state
//! store as the daemon sees it. The daemon does the work with its own
//! credentials (the PostgreSQL password never passes through here).

use super::output::{self, clean, Failure, DEFAULT_TIMEOUT_SECS};
use super::{ConnArgs, Ctx};
use clap::{Args, Subcommand};
use smsotp_proto::{Request, Response, StoreHealth, TableCopy};
use std::path::PathBuf;

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum StoreCommand {
    /// Copy a SQLite store file (e.g. /var/lib/smsotp/state.db) into the
    /// daemon's PostgreSQL store: numbers, backup codes, opt-outs,
    /// lockouts. Root only; running it again changes nothing.
    Import(ImportArgs),
    /// Whether the daemon's store answers (root: also schema and writes).
    Check(CheckArgs),
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct ImportArgs {
    /// The SQLite file (owned by root, not writable by others).
    pub file: PathBuf,
    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct CheckArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// A copy of a large store takes a while; the default wait is longer.
const IMPORT_TIMEOUT_SECS: u64 = 300;

pub fn run(cmd: &StoreCommand, ctx: &Ctx) -> Result<(), Failure> {
    match cmd {
        StoreCommand::Import(a) => import(a, ctx),
        StoreCommand::Check(a) => {
            let health = health(ctx, output::timeout(&a.conn, DEFAULT_TIMEOUT_SECS))?;
            let healthy = health.answers && health.checks.iter().all(|c| c.ok);
            // --json prints exactly one object: the health when it is
            // good, else the failure (which carries the same text).
            if !ctx.json {
                output::print_human(&format_health(&health))?;
            } else if healthy {
                output::print_json(&health)?;
            }
            if healthy {
                Ok(())
            } else {
                Err(Failure::new(
                    output::EXIT_FAILED,
                    "store_unhealthy",
                    format_health(&health).trim_end().replace('\n', "; "),
                ))
            }
        }
    }
}

fn import(args: &ImportArgs, ctx: &Ctx) -> Result<(), Failure> {
    // The daemon reads the file itself: it needs the path as the daemon
    // sees it, whatever the caller's working directory.
    let path = std::path::absolute(&args.file)
        .map_err(|e| Failure::usage(format!("{}: {e}", args.file.display())))?;
    let path = path
        .to_str()
        .ok_or_else(|| Failure::usage("the path is not UTF-8"))?
        .to_string();
    let resp = output::call_raw(
        ctx.socket,
        output::timeout(&args.conn, IMPORT_TIMEOUT_SECS),
        &Request::ImportStore { path },
    )?;
    let tables = match resp {
        Response::StoreImported { tables } => tables,
        Response::Error { kind, message } => return Err(Failure::from_daemon(kind, message)),
        _ => return Err(Failure::unexpected("an answer other than store_imported")),
    };
    if ctx.json {
        output::print_json(&serde_json::json!({ "tables": tables }))
    } else {
        output::print_human(&format_copy(&tables))
    }
}

/// `table  read  written` rows.
pub fn format_copy(tables: &[TableCopy]) -> String {
    let mut out = format!("{:<16} {:>8} {:>8}\n", "table", "read", "written");
    for t in tables {
        out += &format!("{:<16} {:>8} {:>8}\n", clean(&t.table), t.read, t.written);
    }
    out
}

/// The daemon's answer to `StoreCheck`.
pub fn health(ctx: &Ctx, timeout: std::time::Duration) -> Result<StoreHealth, Failure> {
    match output::call_raw(ctx.socket, timeout, &Request::StoreCheck)? {
        Response::StoreHealth(h) => Ok(h),
        Response::Error { kind, message } => Err(Failure::from_daemon(kind, message)),
        _ => Err(Failure::unexpected("an answer other than store_health")),
    }
}

/// `answers (0.4 ms)` or `does NOT answer: why`.
pub fn answer_text(h: &StoreHealth) -> String {
    match (h.answers, h.latency_micros, &h.error) {
        (true, Some(us), _) => format!("answers ({:.1} ms)", us as f64 / 1000.0),
        (true, None, _) => "answers".into(),
        (false, _, Some(why)) => format!("does NOT answer: {}", clean(why)),
        (false, _, None) => "does NOT answer".into(),
    }
}

pub fn format_health(h: &StoreHealth) -> String {
    let mut out = format!("store: {} {}\n", h.store.name(), answer_text(h));
    for c in &h.checks {
        out += &format!(
            "  {:<10} {:<4} {}\n",
            clean(&c.name),
            if c.ok { "ok" } else { "FAIL" },
            clean(&c.detail)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::parse;
    use crate::commands::Admin;
    use smsotp_proto::{HealthCheck, StoreKind};

    #[test]
    fn parses_import_and_check() {
        let (cmd, _) = parse(&["store", "import", "/var/lib/smsotp/state.db"]).unwrap();
        let Admin::Store(StoreCommand::Import(a)) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(a.file, PathBuf::from("/var/lib/smsotp/state.db"));
        assert!(parse(&["store", "import"]).is_err());
        let (cmd, _) = parse(&["store", "check", "--timeout", "2"]).unwrap();
        assert!(matches!(cmd, Admin::Store(StoreCommand::Check(_))));
    }

    #[test]
    fn health_shows_latency_or_the_reason_and_cleans_it() {
        let mut h = StoreHealth {
            store: StoreKind::Postgres,
            answers: true,
            latency_micros: Some(1234),
            error: None,
            checks: vec![HealthCheck {
                name: "writable".into(),
                ok: false,
                detail: "ERROR: read-only\x1b[2J".into(),
            }],
        };
        assert_eq!(
            format_health(&h),
            "store: postgres answers (1.2 ms)\n  writable   FAIL ERROR: read-only?[2J\n"
        );
        h.answers = false;
        h.error = Some("cannot reach the database".into());
        assert_eq!(
            answer_text(&h),
            "does NOT answer: cannot reach the database"
        );
    }

    #[test]
    fn copy_counts_are_a_table() {
        let t = vec![TableCopy {
            table: "mobiles".into(),
            read: 3,
            written: 0,
        }];
        assert_eq!(
            format_copy(&t),
            "table                read  written\nmobiles                 3        0\n"
        );
    }
}
