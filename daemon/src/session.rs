//! One connection: a hello, then either one login (begin, verify, resend,
//! enroll) or admin requests. The challenge lives and dies with the
//! connection, so a dropped login leaves nothing pending behind.

use crate::admin;
use crate::authz::Peer;
use crate::login::{bad_request, Login, Next};
use crate::state::State;
use crate::wire::{read_frame, write_frame};
use smsotp_proto::{
    ErrorKind, FrameError, Request, Response, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tracing::{debug, warn};

/// A client gets this long to say hello and to send its first request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Session<S> {
    stream: S,
    peer: Peer,
    state: Arc<State>,
    login: Option<Login>,
    /// Without a login on it, the connection closes at this instant
    /// however often it sends requests: a `status` every few seconds must
    /// not keep a slot forever (issue 9, finding 3).
    admin_until: Instant,
    /// The protocol the client said hello with; answers are shaped for it.
    version: u32,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub fn new(stream: S, peer: Peer, state: Arc<State>) -> Self {
        let admin_until = Instant::now() + state.runtime().config.admin_lifetime;
        Session {
            stream,
            peer,
            state,
            login: None,
            admin_until,
            version: PROTOCOL_VERSION,
        }
    }

    /// Serves the connection until the login ends, the peer leaves, it
    /// idles past its deadline, or the daemon shuts down.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        if !self.handshake().await {
            return;
        }
        loop {
            let wait = match &self.login {
                Some(login) => login.idle_deadline(),
                None => {
                    let left = self.admin_until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        debug!(uid = self.peer.uid, "admin connection reached its lifetime");
                        return;
                    }
                    HANDSHAKE_TIMEOUT.min(left)
                }
            };
            let req = tokio::select! {
                r = tokio::time::timeout(wait, read_frame::<_, Request>(&mut self.stream)) => r,
                _ = shutdown.changed() => return,
            };
            let req = match req {
                Err(_) => {
                    debug!(
                        uid = self.peer.uid,
                        "connection idle past its deadline or lifetime"
                    );
                    return;
                }
                Ok(Err(FrameError::Closed)) => return,
                Ok(Err(e)) => {
                    self.refuse_frame(e).await;
                    return;
                }
                Ok(Ok(req)) => req,
            };
            let (resp, next) = match req.validate() {
                Err(e) => (bad_request(e.to_string()), Next::Close),
                // Boxed: a request's future (a Begin's is over 6 KB) then
                // lives only while it runs, and a session waiting for its
                // next frame, such as a pending challenge held open by
                // anyone, keeps a few hundred bytes instead.
                Ok(()) => Box::pin(self.handle(req)).await,
            };
            let resp = resp.for_version(self.version);
            if write_frame(&mut self.stream, &resp).await.is_err() || next == Next::Close {
                return;
            }
        }
    }

    async fn handshake(&mut self) -> bool {
        let hello = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            read_frame::<_, Request>(&mut self.stream),
        )
        .await;
        let resp = match hello {
            // Every version from the oldest still spoken: protocol 4 only
            // added messages, and `version` keeps them from older clients.
            Ok(Ok(Request::Hello { version, .. }))
                if (MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version) =>
            {
                self.version = version;
                Response::Hello {
                    version,
                    server: crate::SERVER_NAME.to_string(),
                }
            }
            Ok(Ok(Request::Hello { version, .. })) => {
                warn!(
                    uid = self.peer.uid,
                    client_version = version,
                    "client speaks another protocol version"
                );
                let _ = write_frame(
                    &mut self.stream,
                    &Response::Error {
                        kind: ErrorKind::UnsupportedVersion,
                        message: format!(
                            "this daemon speaks protocols {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}, not {version}"
                        ),
                    },
                )
                .await;
                return false;
            }
            Ok(Ok(_)) => {
                let _ = write_frame(
                    &mut self.stream,
                    &bad_request("the first message must be hello"),
                )
                .await;
                return false;
            }
            Ok(Err(FrameError::Closed)) | Err(_) => return false,
            Ok(Err(e)) => {
                self.refuse_frame(e).await;
                return false;
            }
        };
        write_frame(&mut self.stream, &resp).await.is_ok()
    }

    /// Garbage or an oversized frame: say so once (best effort) and hang up.
    async fn refuse_frame(&mut self, e: FrameError) {
        warn!(uid = self.peer.uid, pid = ?self.peer.pid, error = %e, "refused a malformed frame");
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            write_frame(&mut self.stream, &bad_request(e.to_string())),
        )
        .await;
    }

    async fn handle(&mut self, req: Request) -> (Response, Next) {
        match req {
            Request::Hello { .. } => (bad_request("hello was already exchanged"), Next::Close),
            Request::Begin(begin) => {
                if self.login.is_some() {
                    return (
                        bad_request("a challenge is already in progress on this connection"),
                        Next::Close,
                    );
                }
                let (login, resp, next) = Login::begin(&self.state, self.peer, begin).await;
                self.login = login;
                (resp, next)
            }
            Request::Verify { code } => match self.login.as_mut() {
                Some(l) => l.verify(&self.state, code.expose()).await,
                None => (
                    bad_request("no challenge on this connection; send begin first"),
                    Next::Close,
                ),
            },
            Request::Call => match self.login.as_mut() {
                Some(l) => l.call(&self.state).await,
                None => (
                    bad_request("no challenge on this connection; send begin first"),
                    Next::Close,
                ),
            },
            Request::Resend => match self.login.as_mut() {
                Some(l) => l.resend(&self.state).await,
                None => (
                    bad_request("no challenge on this connection; send begin first"),
                    Next::Close,
                ),
            },
            Request::Enroll { mobile } => match self.login.as_mut() {
                Some(l) => l.enroll(&self.state, &mobile).await,
                None => (
                    bad_request("no number was asked for on this connection"),
                    Next::Close,
                ),
            },
            admin_req => {
                if self.login.is_some() {
                    return (
                        bad_request("admin requests cannot share a login's connection"),
                        Next::Close,
                    );
                }
                (
                    admin::handle(&self.state, self.peer, admin_req).await,
                    Next::Continue,
                )
            }
        }
    }
}
