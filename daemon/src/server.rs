//! The accept loop: peer credentials, a cap on concurrent connections, and
//! a clean stop. `run(listener, state, shutdown)` is what both the binary
//! and the in-process tests call.

use crate::authz::Peer;
use crate::session::Session;
use crate::state::State;
use smsotp_proto::{frame::encode, ErrorKind, Response};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{error, warn};

/// How long running sessions get to finish after shutdown is asked for.
const DRAIN: Duration = Duration::from_secs(2);

pub async fn run(
    listener: UnixListener,
    state: Arc<State>,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sessions = JoinSet::new();
    // One descriptor held back for answering `Busy` when the process runs
    // out of them (see refuse_without_fds).
    let mut reserve = std::fs::File::open("/dev/null").ok();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
            // Reap finished sessions so the set does not grow.
            Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) {
                    refuse_without_fds(&listener, &mut reserve, max_connections).await;
                } else {
                    error!(error = %e, "accept failed");
                }
                // Back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let peer = match stream.peer_cred() {
            Ok(c) => Peer {
                uid: c.uid(),
                pid: c.pid(),
            },
            Err(e) => {
                warn!(error = %e, "cannot read peer credentials; closing");
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            refuse_busy(&stream, peer, max_connections);
            continue;
        };
        let session = Session::new(stream, peer, Arc::clone(&state));
        let stop = stop_rx.clone();
        sessions.spawn(async move {
            session.run(stop).await;
            drop(permit);
        });
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(DRAIN, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    sessions.abort_all();
}

/// Over the cap: answer `Busy` without reading, so the module denies
/// instead of treating us as unreachable (which `failmode=safe` would wave
/// through). A fresh socket's buffer takes the few bytes at once, so a
/// non-blocking write keeps the accept loop from ever waiting here.
fn refuse_busy(stream: &UnixStream, peer: Peer, max: usize) {
    warn!(peer_uid = peer.uid, peer_pid = ?peer.pid, max_connections = max, "connection limit reached; refusing");
    if let Ok(frame) = encode(&Response::Error {
        kind: ErrorKind::Busy,
        message: "the SMS code service is busy; try again shortly".into(),
    }) {
        let _ = stream.try_write(&frame);
    }
}

/// Out of file descriptors: a connection left in the backlog would time
/// the module out, which `failmode=safe` lets through. Free the reserve
/// descriptor, take the connection, answer `Busy`, and take the reserve
/// back.
async fn refuse_without_fds(
    listener: &UnixListener,
    reserve: &mut Option<std::fs::File>,
    max: usize,
) {
    error!("out of file descriptors; refusing connections as busy");
    drop(reserve.take());
    if let Ok(Ok((stream, _))) =
        tokio::time::timeout(Duration::from_millis(5), listener.accept()).await
    {
        let peer = stream
            .peer_cred()
            .map(|c| Peer {
                uid: c.uid(),
                pid: c.pid(),
            })
            .unwrap_or(Peer {
                uid: u32::MAX,
                pid: None,
            });
        refuse_busy(&stream, peer, max);
    }
    *reserve = std::fs::File::open("/dev/null").ok();
}
