//! `smsotpctl store import FILE`: root asks the daemon to copy a SQLite
//! store into its PostgreSQL store (the credentials are the daemon's, so
//! they never pass through the CLI). The rules are in
//! [`crate::store::copy`].

use crate::authz::Peer;
use crate::state::State;
use crate::store::copy;
use smsotp_config::StoreBackend;
use smsotp_proto::{ErrorKind, Response, TableCopy};
use std::path::Path;
use tracing::{info, warn};

pub async fn import(state: &State, peer: Peer, path: &str) -> Response {
    let refuse = |kind, message: String| Response::Error { kind, message };
    if peer.uid != 0 {
        return refuse(ErrorKind::PermissionDenied, "only root may do this".into());
    }
    let rt = state.runtime();
    let StoreBackend::Postgres(pg) = &rt.config.store.backend else {
        return refuse(
            ErrorKind::BadRequest,
            "this daemon's store is not PostgreSQL: point [store] at the fleet database first"
                .into(),
        );
    };
    match copy::sqlite_into_postgres(Path::new(path), pg).await {
        Ok(tables) => {
            let written: u64 = tables.iter().map(|t| t.written).sum();
            info!(
                event = "store_imported",
                file = path,
                rows_written = written,
                peer_uid = peer.uid,
                "SQLite store copied into PostgreSQL"
            );
            Response::StoreImported {
                tables: tables
                    .into_iter()
                    .map(|t| TableCopy {
                        table: t.table.into(),
                        read: t.read,
                        written: t.written,
                    })
                    .collect(),
            }
        }
        Err(e) => {
            warn!(event = "store_import_failed", file = path, error = %e, "store import failed");
            // Root asked; the reason (file mode, schema, database) is for them.
            refuse(ErrorKind::Internal, e.to_string())
        }
    }
}
