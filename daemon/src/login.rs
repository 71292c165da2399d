//! The login flow of one connection: policy at `Begin`, the challenge,
//! `Verify` (SMS or backup code), `Resend` and `Enroll`.
//!
//! Budgets that must hold across sessions and hosts (guesses, sends) are
//! charged in the store *before* the work they pay for, in one
//! transaction, so parallel sessions cannot multiply them.
//!
//! One file per request: `begin`, `verify`, `resend`, `enroll`; each makes
//! one store transaction (a backup code two, around argon2; a guess that
//! locks one more, to claim the owner's notice). What a lockout of SMS
//! codes does is in `lock`, the unknown user's fake challenge in `fake`.
//! Here: the connection's state, the challenge's shape and the code's
//! send.

use crate::authz::{self, Peer};
use crate::otp::Challenge;
use crate::providers::{Route, SendMeta, Sms, Spoken};
use crate::send::{self, CodeMessage, Failure, SEND_BUDGET};
use crate::state::{Runtime, State};
use crate::store::{SendKind, SendRequest};
use smsotp_config::{Mobile, ServicePolicy};
use smsotp_proto::{BeginRequest, ChallengeInfo, CodeAlphabet, ErrorKind, MaskedMobile, Response};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

pub use crate::reply::bad_request;
/// Wrong numbers typed at the enrolment prompt before the login ends.
const MAX_ENROLL_TRIES: u32 = 3;

/// Whether the connection should stay open after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A code went to the user's known number.
    Sms,
    /// No SMS went out; only a backup code can complete the login.
    BackupOnly,
    /// A code went to a number typed at login; stored once it is right
    /// unless `send_to_entered_number` asked not to.
    Enrolling { store: bool },
    /// Unknown user with `hide_unknown_users`: looks real, never succeeds.
    Fake,
}

struct Active {
    kind: Kind,
    mobile: Option<Mobile>,
    masked: String,
    challenge: Challenge,
    backup_allowed: bool,
    notice: Option<String>,
}

/// Everything this connection knows about its login.
pub struct Login {
    /// `user` is the canonical account name when NSS knows it.
    begin: BeginRequest,
    /// Whether NSS knows the user. Unknown names are never skipped.
    known: bool,
    policy: ServicePolicy,
    active: Option<Active>,
    enroll_tries: u32,
}

macro_rules! audit {
    ($level:ident, $event:literal, $b:expr, $($rest:tt)*) => {{
        $crate::metrics::event($event);
        $level!(event = $event, user = %$b.user, service = %$b.service, rhost = $b.rhost.as_deref().unwrap_or(""), $($rest)*)
    }};
}

mod begin;
mod call;
mod enroll;
mod fake;
mod lock;
mod resend;
mod verify;

impl Login {
    /// Idle deadline for the connection: the code's life plus a little, so
    /// a user may still ask for a new code after it expired.
    pub fn idle_deadline(&self) -> Duration {
        match &self.active {
            Some(a) => a.challenge.expires_in(Instant::now()) + Duration::from_secs(30),
            None => Duration::from_secs(120),
        }
    }

    fn open(
        &mut self,
        rt: &Runtime,
        kind: Kind,
        mobile: Option<Mobile>,
        challenge: Challenge,
        backup_allowed: bool,
        notice: Option<String>,
    ) -> Response {
        let visible = usize::from(rt.config.mask_visible_digits);
        let masked = mobile
            .as_ref()
            .map(|m| m.masked(visible))
            .unwrap_or_else(|| "****".into());
        self.active = Some(Active {
            kind,
            mobile,
            masked,
            challenge,
            backup_allowed,
            notice,
        });
        self.challenge_response(rt)
    }

    /// A challenge no SMS went out for: only a backup code completes it,
    /// and it has no code of its own that anything could match.
    fn open_backup_only(&mut self, rt: &Runtime, notice: String) -> Response {
        let challenge = Challenge::without_code(rt.config.otp, Instant::now());
        self.open(rt, Kind::BackupOnly, None, challenge, true, Some(notice))
    }

    /// Whether backup codes may complete this login: never an enrolment
    /// (it must prove the typed number) nor a fake challenge.
    fn backup_counts(&self, rt: &Runtime) -> bool {
        rt.config.backup_codes.enabled
            && self.policy.backup_codes
            && !matches!(
                self.active.as_ref().map(|a| a.kind),
                Some(Kind::Enrolling { .. } | Kind::Fake)
            )
    }

    /// Whether the challenge's number is the user's own (not one typed at
    /// enrolment, not a fake), so it may be told of a lockout.
    fn verified_number(&self) -> bool {
        self.active.as_ref().is_some_and(|a| a.kind == Kind::Sms)
    }

    /// What a send of this login is checked against.
    fn send_request<'a>(&'a self, rt: &'a Runtime, kind: SendKind) -> SendRequest<'a> {
        SendRequest {
            user: &self.begin.user,
            rhost: self.begin.rhost.as_deref(),
            host: &rt.hostname,
            kind,
            budget: &rt.config.send_budget,
            resend: &rt.config.resend,
        }
    }

    /// Sends a code (its reservation already recorded) and opens the
    /// challenge; `SendFailed`, or a backup-only challenge when `backup`,
    /// if no provider took it.
    async fn send_and_open(
        &mut self,
        state: &Arc<State>,
        rt: &Runtime,
        mobile: Mobile,
        kind: Kind,
        backup: bool,
    ) -> Response {
        let code = crate::otp::generate(&rt.config.otp);
        let challenge = Challenge::new(&state.hasher, &code, rt.config.otp, Instant::now());
        if !send_code(
            state,
            rt,
            &self.begin,
            &mobile,
            &code,
            &challenge,
            Route::Any,
        )
        .await
        {
            if backup {
                let notice = "the SMS provider could not be reached".to_string();
                return self.open_backup_only(rt, notice);
            }
            return Response::SendFailed;
        }
        self.open(rt, kind, Some(mobile), challenge, backup, None)
    }

    fn challenge_response(&self, rt: &Runtime) -> Response {
        let Some(a) = &self.active else {
            return bad_request("no challenge");
        };
        let p = a.challenge.policy();
        let can_resend = a.kind != Kind::BackupOnly && rt.config.resend.enabled;
        Response::Challenge(ChallengeInfo {
            masked_mobile: MaskedMobile::new(&a.masked)
                .or_else(|| MaskedMobile::new("****"))
                .unwrap_or_else(|| unreachable!("'****' is a valid mask")),
            expires_in_secs: a.challenge.expires_in(Instant::now()).as_secs(),
            resends_left: if can_resend {
                a.challenge.resends_left()
            } else {
                0
            },
            attempts_left: a.challenge.attempts_left(),
            code_length: p.length,
            alphabet: match p.kind {
                smsotp_config::CodeKind::Numeric => CodeAlphabet::Numeric,
                smsotp_config::CodeKind::Alphanumeric => CodeAlphabet::Alphanumeric,
            },
            sms_sent: a.kind != Kind::BackupOnly,
            backup_allowed: a.backup_allowed,
            notice: a.notice.clone(),
            show_reasons: self.policy.show_failure_reason,
            lang: Some(crate::lang::user_lang(rt, &self.begin.user).to_string()),
            can_call: can_resend && rt.chain.has_voice(),
        })
    }
}

async fn authorize(peer: Peer, user: &str, allow_user_self: bool) -> Result<(), authz::Refusal> {
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

/// Renders the SMS text and hands it to the provider chain. The body holds
/// the code: it is wiped on drop and never logged.
async fn send_code(
    state: &State,
    rt: &Runtime,
    b: &BeginRequest,
    mobile: &Mobile,
    code: &str,
    challenge: &Challenge,
    route: Route,
) -> bool {
    let body = send::render_code(
        rt,
        &CodeMessage {
            code,
            expiry: challenge.policy().expiry,
            service: &b.service,
            user: &b.user,
            rhost: b.rhost.as_deref(),
            command: b.command.as_deref(),
        },
    );
    let sms = Sms {
        to: mobile.clone(),
        body,
    };
    let meta = SendMeta {
        validity: Some(challenge.policy().expiry),
        host: Some(rt.hostname.clone()),
        service: Some(b.service.clone()),
        deadline: None,
        spoken: Some(Spoken {
            code: zeroize::Zeroizing::new(code.to_string()),
            expiry_minutes: challenge.policy().expiry.as_secs().div_ceil(60),
        }),
    };
    let started = Instant::now();
    match send::deliver_via(rt, &sms, meta, route).await {
        Ok(delivery) => {
            state.note_send_time(started.elapsed());
            audit!(info, "code_sent", b, to = %rt.log_mobile(mobile), provider = %delivery.provider, tries = delivery.attempts.len(), segments = delivery.segments, encoding = delivery.encoding, "code sent");
            true
        }
        Err(Failure::Chain(e)) => {
            audit!(warn, "send_failed", b, to = %rt.log_mobile(mobile), error = %e, "every provider failed");
            false
        }
        Err(Failure::Timeout) => {
            audit!(warn, "send_failed", b, to = %rt.log_mobile(mobile), budget_secs = SEND_BUDGET.as_secs(), "providers did not finish within the send budget");
            false
        }
    }
}

/// "45 s", "3 min": how the module words waiting times too.
fn human_secs(secs: u64) -> String {
    if secs < 60 {
        format!("{secs} s")
    } else {
        format!("{} min", secs.div_ceil(60))
    }
}
