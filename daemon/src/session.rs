//! One connection = at most one login's challenge. The challenge lives and
//! dies with the connection, so a dropped login leaves nothing behind.

use crate::authz::{self, Peer};
use crate::otp::{self, Challenge, Outcome};
use crate::providers::Sms;
use crate::state::{Runtime, State};
use crate::wire::{read_frame, write_frame};
use smsotp_config::{Mobile, Var};
use smsotp_proto::{
    BeginRequest, ChallengeInfo, CodeAlphabet, ErrorKind, FrameError, MaskedMobile, Request,
    Response, PROTOCOL_VERSION,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// A client gets this long to say hello and begin.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole provider chain gets this long to hand a message off. It is
/// below the module's default `timeout=20`, so a slow gateway ends as a
/// clear `SendFailed` rather than as a module timeout, which
/// `failmode=safe` would read as "daemon unreachable" and let through.
pub const SEND_BUDGET: Duration = Duration::from_secs(15);
/// After a code expires the user may still ask for a new one for a while.
const AFTER_EXPIRY_GRACE: Duration = Duration::from_secs(30);

/// The login this connection is about, for logs and the message.
struct Login {
    begin: BeginRequest,
    mobile: Mobile,
    challenge: Challenge,
}

pub struct Session<S> {
    stream: S,
    peer: Peer,
    state: Arc<State>,
    login: Option<Login>,
}

enum Next {
    Continue,
    Close,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub fn new(stream: S, peer: Peer, state: Arc<State>) -> Self {
        Session {
            stream,
            peer,
            state,
            login: None,
        }
    }

    /// Serves the connection until the login ends, the peer leaves, it
    /// idles past its deadline, or the daemon shuts down.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        if !self.handshake().await {
            return;
        }
        loop {
            let idle = self.idle_deadline();
            let req = tokio::select! {
                r = tokio::time::timeout(idle, read_frame::<_, Request>(&mut self.stream)) => r,
                _ = shutdown.changed() => return,
            };
            let req = match req {
                Err(_) => {
                    debug!(uid = self.peer.uid, "connection idle past its deadline");
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
                Ok(()) => self.handle(req).await,
            };
            if write_frame(&mut self.stream, &resp).await.is_err() {
                return;
            }
            if let Next::Close = next {
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
            Ok(Ok(Request::Hello { version, .. })) if version == PROTOCOL_VERSION => {
                Response::Hello {
                    version: PROTOCOL_VERSION,
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
                            "this daemon speaks protocol {PROTOCOL_VERSION}, not {version}"
                        ),
                    },
                )
                .await;
                return false;
            }
            Ok(Ok(_)) => {
                let _ = write_frame(
                    &mut self.stream,
                    &bad_request("the first message must be hello".into()),
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

    fn idle_deadline(&self) -> Duration {
        match &self.login {
            None => HANDSHAKE_TIMEOUT,
            Some(l) => l.challenge.expires_in(Instant::now()) + AFTER_EXPIRY_GRACE,
        }
    }

    async fn handle(&mut self, req: Request) -> (Response, Next) {
        match req {
            Request::Hello { .. } => (
                bad_request("hello was already exchanged".into()),
                Next::Close,
            ),
            Request::Begin(begin) => self.begin(begin).await,
            Request::Verify { code } => self.verify(code.expose()),
            Request::Resend => self.resend().await,
        }
    }

    async fn begin(&mut self, begin: BeginRequest) -> (Response, Next) {
        if self.login.is_some() {
            return (
                bad_request("a challenge is already in progress on this connection".into()),
                Next::Close,
            );
        }
        let rt = self.state.runtime();
        if let Err(refusal) = self.authorize(&begin.user, rt.config.allow_user_self).await {
            warn!(
                event = "refused",
                peer_uid = self.peer.uid,
                peer_pid = ?self.peer.pid,
                user = %begin.user,
                service = %begin.service,
                "peer may not begin a challenge for this user"
            );
            return (
                Response::Error {
                    kind: refusal.kind,
                    message: refusal.message.to_string(),
                },
                Next::Close,
            );
        }
        let Some(mobile) = rt.users.mobile(&begin.user).cloned() else {
            info!(
                event = "no_mobile",
                user = %begin.user,
                service = %begin.service,
                rhost = begin.rhost.as_deref().unwrap_or(""),
                "user has no mobile number; denied"
            );
            return (Response::NoMobile, Next::Close);
        };
        let code = otp::generate(&rt.config.otp);
        let now = Instant::now();
        let challenge = Challenge::new(&self.state.hasher, &code, rt.config.otp, now);
        let login = Login {
            begin,
            mobile,
            challenge,
        };
        if !send_code(&rt, &login, &code).await {
            return (Response::SendFailed, Next::Close);
        }
        let info = challenge_info(&login, now);
        self.login = Some(login);
        (Response::Challenge(info), Next::Continue)
    }

    async fn authorize(&self, user: &str, allow_user_self: bool) -> Result<(), authz::Refusal> {
        let peer = self.peer;
        if peer.uid == 0 {
            return Ok(());
        }
        // A non-root check resolves the peer's uid through NSS, which may
        // block (LDAP, sssd): keep it off the reactor.
        let user = user.to_string();
        tokio::task::spawn_blocking(move || authz::may_begin(peer, &user, allow_user_self))
            .await
            .unwrap_or(Err(authz::Refusal {
                kind: ErrorKind::Internal,
                message: "internal error while checking the caller",
            }))
    }

    fn verify(&mut self, code: &str) -> (Response, Next) {
        let Some(login) = self.login.as_mut() else {
            return (
                bad_request("no challenge on this connection; send begin first".into()),
                Next::Close,
            );
        };
        let outcome = login
            .challenge
            .verify(&self.state.hasher, code, Instant::now());
        let b = &login.begin;
        let rhost = b.rhost.as_deref().unwrap_or("");
        match outcome {
            Outcome::Verified => {
                info!(event = "verified", user = %b.user, service = %b.service, rhost, "code verified");
                (Response::Verified, Next::Close)
            }
            Outcome::Wrong { attempts_left } => {
                info!(event = "wrong_code", user = %b.user, service = %b.service, rhost, attempts_left, "wrong code");
                (Response::Wrong { attempts_left }, Next::Continue)
            }
            Outcome::Exhausted => {
                warn!(event = "tries_exhausted", user = %b.user, service = %b.service, rhost, "no tries left");
                (Response::TriesExhausted, Next::Close)
            }
            Outcome::Expired => {
                let can_resend = login.challenge.resends_left() > 0;
                info!(event = "expired", user = %b.user, service = %b.service, rhost, can_resend, "code expired");
                let next = if can_resend {
                    Next::Continue
                } else {
                    Next::Close
                };
                (Response::Expired { can_resend }, next)
            }
            Outcome::Spent => (bad_request("this challenge is over".into()), Next::Close),
        }
    }

    async fn resend(&mut self) -> (Response, Next) {
        let Some(login) = self.login.as_mut() else {
            return (
                bad_request("no challenge on this connection; send begin first".into()),
                Next::Close,
            );
        };
        if login.challenge.is_spent() {
            return (bad_request("this challenge is over".into()), Next::Close);
        }
        let rt = self.state.runtime();
        if login.challenge.resends_left() == 0 {
            info!(event = "resend_refused", user = %login.begin.user, service = %login.begin.service, "resend limit reached");
            let max = rt.config.otp.max_resends;
            let reason = if max == 0 {
                "resending is disabled".to_string()
            } else {
                format!("the limit of {max} resends is reached")
            };
            return (Response::ResendRefused { reason }, Next::Continue);
        }
        // Resends keep the policy the challenge began with, even across a
        // reload, so the code's shape and limits cannot change mid-login.
        let code = otp::generate(login.challenge.policy());
        let now = Instant::now();
        // The old code dies before the new one is sent, whatever happens next.
        login.challenge.replace(&self.state.hasher, &code, now);
        if !send_code(&rt, login, &code).await {
            return (Response::SendFailed, Next::Close);
        }
        (
            Response::Challenge(challenge_info(login, now)),
            Next::Continue,
        )
    }
}

fn bad_request(message: String) -> Response {
    Response::Error {
        kind: ErrorKind::BadRequest,
        message,
    }
}

fn challenge_info(login: &Login, now: Instant) -> ChallengeInfo {
    let masked = login.mobile.masked(4);
    ChallengeInfo {
        masked_mobile: MaskedMobile::new(&masked).unwrap_or_else(|| {
            MaskedMobile::new("****").unwrap_or_else(|| unreachable!("'****' is a valid mask"))
        }),
        expires_in_secs: login.challenge.expires_in(now).as_secs(),
        resends_left: login.challenge.resends_left(),
        attempts_left: login.challenge.attempts_left(),
        code_length: login.challenge.policy().length,
        alphabet: match login.challenge.policy().kind {
            smsotp_config::CodeKind::Numeric => CodeAlphabet::Numeric,
            smsotp_config::CodeKind::Alphanumeric => CodeAlphabet::Alphanumeric,
        },
    }
}

/// Renders the SMS text and hands it to the provider chain. The body holds
/// the code: it is wiped on drop and never logged.
async fn send_code(rt: &Runtime, login: &Login, code: &str) -> bool {
    let b = &login.begin;
    let minutes = login.challenge.policy().expiry.as_secs().div_ceil(60);
    let body = rt.config.message.render(|var, out| match var {
        Var::Code => out.push_str(code),
        Var::ExpiryMinutes => out.push_str(&minutes.to_string()),
        Var::Host => out.push_str(&rt.hostname),
        Var::Service => out.push_str(&b.service),
        Var::User => out.push_str(&b.user),
        Var::Rhost => out.push_str(b.rhost.as_deref().unwrap_or("")),
        Var::Command => out.push_str(b.command.as_deref().unwrap_or("")),
        // Not allowed in message templates (checked at load).
        Var::Mobile | Var::Body => {}
    });
    let sms = Sms {
        to: login.mobile.clone(),
        body: zeroize::Zeroizing::new(body),
    };
    let rhost = b.rhost.as_deref().unwrap_or("");
    let sent = tokio::time::timeout(SEND_BUDGET, rt.chain.send(&sms)).await;
    match sent {
        Ok(Ok((provider, _receipt))) => {
            info!(event = "code_sent", user = %b.user, service = %b.service, rhost, to = %login.mobile, provider, "code sent");
            true
        }
        Ok(Err(e)) => {
            warn!(event = "send_failed", user = %b.user, service = %b.service, rhost, to = %login.mobile, error = %e, "every provider failed");
            false
        }
        Err(_) => {
            warn!(event = "send_failed", user = %b.user, service = %b.service, rhost, to = %login.mobile, budget_secs = SEND_BUDGET.as_secs(), "providers did not finish within the send budget");
            false
        }
    }
}
