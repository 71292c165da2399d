//! The accept loop: peer credentials, connection slots per socket, and a
//! clean stop. `run(listeners, state, limits, shutdown)` is what both the
//! binary and the in-process tests call.
//!
//! Two sockets, one session code. The public one serves everyone within a
//! per-uid cap and keeps slots for root; the root one (mode 0600) serves
//! only uid 0, so no other user can flood it or take its slots.

use crate::authz::Peer;
use crate::listener::Access;
use crate::refusals::{Reason, Refusals, Summary};
use crate::session::Session;
use crate::slots::{Refusal, Slots};
use crate::state::State;
use smsotp_proto::{frame::encode, ErrorKind, Response};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{error, warn};

/// How long running sessions get to finish after shutdown is asked for.
const DRAIN: Duration = Duration::from_secs(2);

const BUSY: &str = "the SMS code service is busy; try again shortly";
const BUSY_PER_USER: &str =
    "the SMS code service is busy: too many connections from this user; try again shortly";

/// The sockets to serve.
pub struct Listeners {
    pub public: UnixListener,
    /// `None` only for in-process tests that need no root socket.
    pub root: Option<UnixListener>,
}

/// Connection caps, as configured (after clamping to the open-file limit).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Per socket.
    pub max_connections: usize,
    /// Per non-root uid, on the public socket.
    pub max_connections_per_user: usize,
}

pub async fn run(
    listeners: Listeners,
    state: Arc<State>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let public_slots = Slots::public(limits.max_connections, limits.max_connections_per_user);
    let root_slots = Slots::root_only(limits.max_connections);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sessions = JoinSet::new();
    let mut refusals = Refusals::default();
    let mut summary_timer = tokio::time::interval(crate::refusals::WINDOW);
    // One descriptor held back for answering `Busy` when the process runs
    // out of them (see refuse_without_fds).
    let mut reserve = std::fs::File::open("/dev/null").ok();
    tokio::pin!(shutdown);
    loop {
        let (accepted, access, listener) = tokio::select! {
            a = listeners.public.accept() => (a, Access::Public, &listeners.public),
            (a, l) = accept_if_any(listeners.root.as_ref()) => (a, Access::RootOnly, l),
            _ = &mut shutdown => break,
            // Reap finished sessions so the set does not grow.
            Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
            _ = summary_timer.tick() => {
                log_summary(refusals.due(Instant::now()));
                continue;
            }
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) {
                    refuse_without_fds(listener, &mut reserve).await;
                    log_summary(refusals.note(Reason::NoDescriptors, None, Instant::now()));
                } else {
                    error!(error = %e, socket = access.name(), "accept failed");
                }
                // Back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(cred) = stream.peer_cred() else {
            log_summary(refusals.note(Reason::NoCredentials, None, Instant::now()));
            continue;
        };
        let peer = Peer {
            uid: cred.uid(),
            pid: cred.pid(),
        };
        // The socket's mode already keeps others out; this is for a mode
        // changed by hand or a socket unit written without SocketMode=.
        if access == Access::RootOnly && peer.uid != 0 {
            log_summary(refusals.note(Reason::NotRoot, Some(peer.uid), Instant::now()));
            continue;
        }
        let slots = match access {
            Access::Public => &public_slots,
            Access::RootOnly => &root_slots,
        };
        let slot = match slots.take(peer.uid) {
            Ok(slot) => slot,
            Err(refusal) => {
                let reason = match refusal {
                    Refusal::Full => {
                        refuse_busy(&stream, BUSY);
                        Reason::Busy
                    }
                    Refusal::PerUser => {
                        refuse_busy(&stream, BUSY_PER_USER);
                        Reason::PerUser
                    }
                };
                log_summary(refusals.note(reason, Some(peer.uid), Instant::now()));
                continue;
            }
        };
        let session = Session::new(stream, peer, Arc::clone(&state));
        let stop = stop_rx.clone();
        sessions.spawn(async move {
            session.run(stop).await;
            drop(slot);
        });
    }
    log_summary(refusals.flush(Instant::now()));
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(DRAIN, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    sessions.abort_all();
}

type Accepted = std::io::Result<(UnixStream, tokio::net::unix::SocketAddr)>;

/// The root socket's accept, or never when there is none.
async fn accept_if_any(listener: Option<&UnixListener>) -> (Accepted, &UnixListener) {
    match listener {
        Some(l) => (l.accept().await, l),
        None => std::future::pending().await,
    }
}

fn log_summary(summary: Option<Summary>) {
    let Some(s) = summary else { return };
    let (top_uid, top_uid_refused) = s.top_uid.unzip();
    warn!(
        refused = s.total(),
        busy = s.busy,
        per_user_cap = s.per_user,
        not_root_on_root_socket = s.not_root,
        no_peer_credentials = s.no_credentials,
        out_of_descriptors = s.no_descriptors,
        top_uid,
        top_uid_refused,
        seconds = s.over.as_secs_f64(),
        "connections refused (one summary per 10 s at most)"
    );
}

/// No slot: answer `Busy` without reading, so the module denies instead
/// of treating us as unreachable (which `failmode=safe` would wave
/// through). A fresh socket's buffer takes the few bytes at once, so a
/// non-blocking write keeps the accept loop from ever waiting here.
fn refuse_busy(stream: &UnixStream, message: &str) {
    if let Ok(frame) = encode(&Response::Error {
        kind: ErrorKind::Busy,
        message: message.into(),
    }) {
        let _ = stream.try_write(&frame);
    }
}

/// Out of file descriptors: a connection left in the backlog would time
/// the module out. Free the reserve descriptor, take the connection,
/// answer `Busy`, and take the reserve back.
async fn refuse_without_fds(listener: &UnixListener, reserve: &mut Option<std::fs::File>) {
    drop(reserve.take());
    if let Ok(Ok((stream, _))) =
        tokio::time::timeout(Duration::from_millis(5), listener.accept()).await
    {
        refuse_busy(&stream, BUSY);
    }
    *reserve = std::fs::File::open("/dev/null").ok();
}
