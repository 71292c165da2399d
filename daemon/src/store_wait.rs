//! Start-up with a fleet database that does not answer yet.
//!
//! A daemon that exited here would remove its sockets, and a module with
//! `failmode=safe` treats a missing socket as "no daemon": the login would
//! go through on the password alone because the database was down when
//! the host booted. So while PostgreSQL cannot be reached (or migrated)
//! the daemon listens anyway and refuses every request at once, with the
//! same sentence a login gets when the store fails mid-request, and
//! retries the store in the background (1 s, doubling to 30 s). When it
//! answers, the caller serves normally: no restart needed. A SQLite store
//! that cannot be opened is a local configuration problem and still stops
//! the daemon, as before.

use crate::store::{self, Store, StoreError};
use crate::wire::{read_frame, write_frame};
use smsotp_config::{StoreBackend, StoreConfig};
use smsotp_proto::{ErrorKind, Request, Response, PROTOCOL_VERSION};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tracing::{error, info, warn};

/// What a request gets while the store is unreachable (the login flow's
/// wording, so the user reads one sentence for one cause).
pub const STORE_DOWN: &str = "the SMS code service cannot record its state; ask your administrator";
/// Connections being refused at once; more are closed unanswered (which
/// the module also treats as a refusal, never as "no daemon").
const MAX_REFUSING: usize = 64;
/// A peer gets this long to say hello and ask.
const PER_CONNECTION: Duration = Duration::from_secs(5);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(30);

/// The opened store; for PostgreSQL, waits (refusing on `listeners`) until
/// it can be opened. Errors for SQLite, or when told to stop meanwhile.
pub async fn open(
    cfg: &StoreConfig,
    listeners: [&UnixListener; 2],
) -> Result<Arc<dyn Store>, StoreError> {
    let e = match store::open(cfg).await {
        Ok(s) => return Ok(s),
        Err(e) => e,
    };
    if !matches!(cfg.backend, StoreBackend::Postgres(_)) {
        return Err(e);
    }
    error!(event = "store_error", error = %e,
        "cannot open the state store; refusing every request until it answers");
    let _ = sd_notify::notify(
        false,
        &[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status("refusing logins: the state store does not answer"),
        ],
    );
    // Signals' default action would kill the daemon and leave its socket
    // files with nobody listening, which failmode=safe also waves through:
    // a reload waits for the store, a stop removes the sockets (in main).
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return Err(e);
    };
    let slots = Arc::new(Semaphore::new(MAX_REFUSING));
    let mut delay = FIRST_RETRY;
    let mut last = e;
    loop {
        let wait = delay;
        let attempt = async move {
            tokio::time::sleep(wait).await;
            store::open(cfg).await
        };
        tokio::pin!(attempt);
        let opened = loop {
            tokio::select! {
                r = &mut attempt => break r,
                _ = hup.recv() => warn!("reload ignored: still waiting for the state store"),
                _ = term.recv() => return Err(last),
                _ = int.recv() => return Err(last),
                Ok((s, _)) = listeners[0].accept() => refuse(s, &slots),
                Ok((s, _)) = listeners[1].accept() => refuse(s, &slots),
            }
        };
        match opened {
            Ok(s) => {
                info!(
                    event = "store_recovered",
                    "the state store answers; serving"
                );
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Status("serving")]);
                return Ok(s);
            }
            Err(e) => {
                warn!(event = "store_error", error = %e, retry_in_secs = delay.as_secs(),
                    "the state store still does not answer");
                delay = (delay * 2).min(LAST_RETRY);
                last = e;
            }
        }
    }
}

/// Hello, then one request answered with [`STORE_DOWN`]; bounded in time
/// and in number.
fn refuse(mut stream: UnixStream, slots: &Arc<Semaphore>) {
    let Ok(permit) = Arc::clone(slots).try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let _ = tokio::time::timeout(PER_CONNECTION, async {
            match read_frame::<_, Request>(&mut stream).await {
                Ok(Request::Hello { version, .. }) if version == PROTOCOL_VERSION => {}
                _ => return,
            }
            let hello = Response::Hello {
                version: PROTOCOL_VERSION,
                server: crate::SERVER_NAME.to_string(),
            };
            if write_frame(&mut stream, &hello).await.is_err() {
                return;
            }
            if read_frame::<_, Request>(&mut stream).await.is_ok() {
                let down = Response::Error {
                    kind: ErrorKind::Internal,
                    message: STORE_DOWN.into(),
                };
                let _ = write_frame(&mut stream, &down).await;
            }
        })
        .await;
    });
}
