//! The state store: a SQLite file must pass the daemon's own permission
//! rule (whoever can write it can reset lockouts or add backup codes);
//! and, through the running daemon, the store must answer, and for
//! PostgreSQL be at this smsotpd's schema and accept writes (the daemon
//! checks with its own credentials; it answers those only to root).

use super::{Finding, Host, Severity};
use smsotp_config::perms::{self, Role};
use smsotp_config::{DaemonConfig, StoreBackend};
use smsotp_proto::{Client, Request, Response};
use std::path::Path;
use std::time::Duration;

/// The file, when the config names SQLite (checked on the host itself).
pub fn file(host: &Host, cfg: &DaemonConfig) -> Vec<Finding> {
    if !matches!(cfg.store.backend, StoreBackend::Sqlite) {
        return Vec::new();
    }
    let shown = cfg.store.path.display().to_string();
    let path = host.path(&cfg.store.path);
    if !path.exists() {
        return vec![Finding::new(
            "store.file",
            Severity::Info,
            shown,
            "not created yet: the daemon creates it (mode 0600) when it starts",
        )];
    }
    match perms::check(&path, Role::Store) {
        Ok(()) => vec![Finding::new(
            "store.file",
            Severity::Ok,
            shown,
            "the SQLite store is root's and private",
        )],
        Err(e) => vec![
            Finding::new("store.file", Severity::Error, shown.clone(), e.to_string()).fix(format!(
                "chown root:root {shown} && chmod 0600 {shown} (and its directory root's, 0700)"
            )),
        ],
    }
}

/// What the daemon says of its store (nothing if it cannot be reached:
/// the daemon check says so already).
pub fn through_daemon(socket: &Path) -> Vec<Finding> {
    let Ok(mut client) = Client::connect(socket, Duration::from_secs(3), "smsotpctl-doctor") else {
        return Vec::new();
    };
    let health = match client.call(&Request::StoreCheck) {
        Ok(Response::StoreHealth(h)) => h,
        Ok(Response::Error { .. }) => {
            return vec![Finding::new(
                "store.unchecked",
                Severity::Info,
                "daemon",
                "this smsotpd cannot report on its store (older than smsotpctl)",
            )]
        }
        Ok(_) | Err(_) => {
            return vec![Finding::new(
                "store.unchecked",
                Severity::Warning,
                "daemon",
                "the daemon did not answer the store check",
            )]
        }
    };
    let subject = format!("store ({})", health.store.name());
    let mut out = vec![if health.answers {
        Finding::new(
            "store.answers",
            Severity::Ok,
            subject.clone(),
            format!(
                "the store answers ({:.1} ms)",
                health.latency_micros.unwrap_or(0) as f64 / 1000.0
            ),
        )
    } else {
        Finding::new(
            "store.down",
            Severity::Error,
            subject.clone(),
            format!(
                "the store does not answer: every login is refused until it does ({})",
                health.error.as_deref().unwrap_or("no reason given")
            ),
        )
        .fix("see the daemon's log (event store_error) and docs/FLEET.md, Faults")
    }];
    // The file is checked on the host itself (file()), also with --root.
    for c in health.checks.iter().filter(|c| c.name != "file") {
        let check = match c.name.as_str() {
            "reachable" => "store.pg.reachable",
            "schema" => "store.pg.schema",
            "writable" => "store.pg.writable",
            _ => "store.other",
        };
        let finding = Finding::new(
            check,
            if c.ok { Severity::Ok } else { Severity::Error },
            subject.clone(),
            c.detail.clone(),
        );
        out.push(match (c.ok, c.name.as_str()) {
            (false, "schema") => finding.fix("run the same smsotpd version on every host of the fleet"),
            (false, "writable") => finding.fix(
                "point [store] url at the primary (target_session_attrs=read-write) and grant the role INSERT/UPDATE/DELETE on schema smsotp",
            ),
            _ => finding,
        });
    }
    if health.checks.is_empty() && health.store.name() == "postgres" {
        out.push(Finding::new(
            "store.pg.unchecked",
            Severity::Info,
            subject,
            "run doctor as root to check the schema and write access",
        ));
    }
    out
}
