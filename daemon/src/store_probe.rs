//! `smsotpctl status` and `doctor` ask whether the store answers: one
//! cheap read through the daemon's own store (its pool, its file), timed
//! and bounded; root also gets the deeper checks (PostgreSQL schema and
//! write access on a connection of their own, or the SQLite file's
//! permissions). Only root sees error text: it names the database.

use crate::authz::Peer;
use crate::state::State;
use crate::store::copy;
use smsotp_config::perms::{self, Role};
use smsotp_config::StoreBackend;
use smsotp_proto::{HealthCheck, Response, StoreHealth, StoreKind};
use std::time::{Duration, Instant};

/// Well under the CLI's default wait, so the answer says why.
const PROBE_TIMEOUT: Duration = Duration::from_secs(4);

pub async fn check(state: &State, peer: Peer) -> Response {
    let rt = state.runtime();
    let root = peer.uid == 0;
    let started = Instant::now();
    // The empty name is no login name (the protocol refuses it), so this
    // read touches no one's row.
    let read = tokio::time::timeout(PROBE_TIMEOUT, state.store.opted_out("")).await;
    let (answers, latency_micros, error) = match read {
        Ok(Ok(_)) => (true, Some(started.elapsed().as_micros() as u64), None),
        Ok(Err(e)) => (false, None, Some(e.to_string())),
        Err(_) => (
            false,
            None,
            Some(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
        ),
    };
    let error = error.map(|e| {
        if root {
            e
        } else {
            "the state store does not answer; ask your administrator".into()
        }
    });
    let (store, checks) = match &rt.config.store.backend {
        StoreBackend::Sqlite => {
            let path = &rt.config.store.path;
            let file = match perms::check(path, Role::Store) {
                Ok(()) => HealthCheck {
                    name: "file".into(),
                    ok: true,
                    detail: format!("{}: owner and mode as required", path.display()),
                },
                Err(e) => HealthCheck {
                    name: "file".into(),
                    ok: false,
                    detail: e.to_string(),
                },
            };
            (StoreKind::Sqlite, vec![file])
        }
        StoreBackend::Postgres(pg) => {
            let checks = if root {
                match tokio::time::timeout(PROBE_TIMEOUT * 3, copy::target_health(pg)).await {
                    Ok(found) => found
                        .into_iter()
                        .map(|c| HealthCheck {
                            name: c.name.into(),
                            ok: c.ok,
                            detail: c.detail,
                        })
                        .collect(),
                    Err(_) => vec![HealthCheck {
                        name: "reachable".into(),
                        ok: false,
                        detail: "no answer in time".into(),
                    }],
                }
            } else {
                Vec::new()
            };
            (StoreKind::Postgres, checks)
        }
    };
    Response::StoreHealth(StoreHealth {
        store,
        answers,
        latency_micros,
        error,
        checks: if root { checks } else { Vec::new() },
    })
}
