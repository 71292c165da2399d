//! The login flow of one connection: policy at `Begin`, the challenge,
//! `Verify` (SMS or backup code), `Resend` and `Enroll`.
//!
//! Budgets that must hold across sessions and hosts (guesses, sends) are
//! charged in the store *before* the work they pay for, in one
//! transaction, so parallel sessions cannot multiply them.

use crate::authz::{self, Peer};
use crate::backup;
use crate::otp::{self, Challenge, Outcome};
use crate::policy;
use crate::providers::{SendMeta, Sms};
use crate::state::{Runtime, State};
use crate::store::{unix_now, Attempt, SendDecision, SendKind, SendRequest, StoreError};
use smsotp_config::{Mobile, NoMobile, ServicePolicy, Var};
use smsotp_proto::{
    BeginRequest, ChallengeInfo, CodeAlphabet, ErrorKind, MaskedMobile, Response, SkipReason,
    VerifyMethod,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// The whole provider chain gets this long to hand a message off. It is
/// below the module's default `timeout=20`, so a slow gateway ends as a
/// clear `SendFailed` rather than as a module timeout, which
/// `failmode=safe` would read as "daemon unreachable" and let through.
pub const SEND_BUDGET: Duration = Duration::from_secs(15);
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
    begin: BeginRequest,
    policy: ServicePolicy,
    active: Option<Active>,
    enroll_tries: u32,
}

pub fn bad_request(message: impl Into<String>) -> Response {
    Response::Error {
        kind: ErrorKind::BadRequest,
        message: message.into(),
    }
}

fn internal(e: StoreError) -> Response {
    // The detail (path, SQLite error) is for the log only.
    warn!(event = "store_error", error = %e, "state store failed; denying");
    Response::Error {
        kind: ErrorKind::Internal,
        message: "the SMS code service cannot record its state; ask your administrator".into(),
    }
}

macro_rules! audit {
    ($level:ident, $event:literal, $b:expr, $($rest:tt)*) => {
        $level!(event = $event, user = %$b.user, service = %$b.service, rhost = $b.rhost.as_deref().unwrap_or(""), $($rest)*)
    };
}

impl Login {
    /// Idle deadline for the connection: the code's life plus a little, so
    /// a user may still ask for a new code after it expired.
    pub fn idle_deadline(&self) -> Duration {
        match &self.active {
            Some(a) => a.challenge.expires_in(Instant::now()) + Duration::from_secs(30),
            None => Duration::from_secs(120),
        }
    }

    pub async fn begin(
        state: &Arc<State>,
        peer: Peer,
        begin: BeginRequest,
    ) -> (Option<Login>, Response, Next) {
        let rt = state.runtime();
        if let Err(refusal) = authorize(peer, &begin.user, rt.config.allow_user_self).await {
            audit!(warn, "refused", begin, peer_uid = peer.uid, peer_pid = ?peer.pid, "peer may not begin a challenge for this user");
            let resp = Response::Error {
                kind: refusal.kind,
                message: refusal.message.to_string(),
            };
            return (None, resp, Next::Close);
        }
        let policy = rt.config.policy.for_service(&begin.service).clone();
        let mut login = Login {
            begin,
            policy,
            active: None,
            enroll_tries: 0,
        };
        let resp = match login.decide(state, &rt).await {
            Ok(r) => r,
            Err(e) => return (None, internal(e), Next::Close),
        };
        let next = if login.active.is_some() || matches!(resp, Response::AskMobile) {
            Next::Continue
        } else {
            Next::Close
        };
        (Some(login), resp, next)
    }

    async fn decide(&mut self, state: &Arc<State>, rt: &Runtime) -> Result<Response, StoreError> {
        let b = &self.begin;
        let store = &state.store;
        if let Some(reason) = self.skip_reason(state).await? {
            audit!(
                info,
                "skipped",
                b,
                reason = reason.as_str(),
                "no code needed"
            );
            return Ok(Response::Skip { reason });
        }
        let now = unix_now();
        if let Some(until) = store.lock_state(&b.user, now).await?.locked_until {
            audit!(
                warn,
                "locked",
                b,
                retry_after_secs = until - now,
                "login refused: user is locked"
            );
            return Ok(Response::Locked {
                retry_after_secs: (until - now).max(1) as u64,
            });
        }
        let mobile = match rt.users.mobile(&b.user) {
            Some(m) => Some(m.clone()),
            None => store
                .mobile(&b.user)
                .await?
                .and_then(|s| Mobile::parse(&s).ok()),
        };
        let Some(mobile) = mobile else {
            return Ok(match self.policy.no_mobile {
                NoMobile::Skip => {
                    audit!(
                        info,
                        "skipped",
                        b,
                        reason = "no-mobile",
                        "no number; policy skips"
                    );
                    Response::Skip {
                        reason: SkipReason::NoMobile,
                    }
                }
                NoMobile::Enroll => {
                    audit!(info, "enroll_asked", b, "no number; asking for one");
                    Response::AskMobile
                }
                NoMobile::Deny if self.policy.hide_unknown_users => {
                    self.fake_challenge(state, rt).await?
                }
                NoMobile::Deny => {
                    audit!(info, "no_mobile", b, "user has no mobile number; denied");
                    Response::NoMobile
                }
            });
        };
        self.send_first(state, rt, mobile, Kind::Sms).await
    }

    /// The exemptions, cheapest first.
    async fn skip_reason(&self, state: &Arc<State>) -> Result<Option<SkipReason>, StoreError> {
        let b = &self.begin;
        let p = &self.policy;
        if !p.enabled {
            return Ok(Some(SkipReason::ServiceNotEnabled));
        }
        if policy::trusted_network(p, b.rhost.as_deref()) {
            return Ok(Some(SkipReason::TrustedNetwork));
        }
        if !p.exempt_users.is_empty() || !p.exempt_groups.is_empty() {
            let (p2, user) = (p.clone(), b.user.clone());
            let exempt = tokio::task::spawn_blocking(move || policy::exemption(&p2, &user))
                .await
                .unwrap_or(None);
            if exempt.is_some() {
                return Ok(exempt);
            }
        }
        if !p.grace.is_zero() {
            if let Some(ctx) =
                policy::grace_context(&b.service, b.rhost.as_deref(), b.tty.as_deref())
            {
                if let Some(at) = state.store.last_success(&b.user, &ctx).await? {
                    let age = unix_now() - at;
                    if (0..p.grace.as_secs() as i64).contains(&age) {
                        return Ok(Some(SkipReason::GracePeriod));
                    }
                }
            }
        }
        if !p.mandatory && state.store.opted_out(&b.user).await? {
            return Ok(Some(SkipReason::OptedOut));
        }
        Ok(None)
    }

    async fn backup_available(&self, state: &Arc<State>, rt: &Runtime) -> Result<bool, StoreError> {
        Ok(rt.config.backup_codes.enabled
            && self.policy.backup_codes
            && state.store.backup_codes_left(&self.begin.user).await? > 0)
    }

    /// Checks the country and the send budgets, sends, and opens the
    /// challenge. When no SMS can go out but the user has backup codes, a
    /// backup-only challenge lets them in anyway.
    async fn send_first(
        &mut self,
        state: &Arc<State>,
        rt: &Runtime,
        mobile: Mobile,
        kind: Kind,
    ) -> Result<Response, StoreError> {
        let b = self.begin.clone();
        let code = otp::generate(&rt.config.otp);
        let challenge = Challenge::new(&state.hasher, &code, rt.config.otp, Instant::now());
        let backup =
            !matches!(kind, Kind::Enrolling { .. }) && self.backup_available(state, rt).await?;
        let refusal = if !policy::country_allowed(&rt.config.send_budget, &mobile) {
            Some(("codes cannot be sent to this country".to_string(), None))
        } else {
            let req = SendRequest {
                user: &b.user,
                rhost: b.rhost.as_deref(),
                kind: SendKind::First,
                budget: &rt.config.send_budget,
                resend: &rt.config.resend,
            };
            match state.store.reserve_send(req, unix_now()).await? {
                SendDecision::Allowed => None,
                SendDecision::Refused {
                    reason,
                    retry_after,
                } => Some((reason, retry_after)),
            }
        };
        if let Some((reason, retry_after)) = refusal {
            audit!(warn, "send_refused", b, to = %mobile, reason = %reason, "send refused by policy");
            if backup {
                return Ok(self.open(rt, Kind::BackupOnly, None, challenge, true, Some(reason)));
            }
            return Ok(Response::SendRefused {
                reason,
                retry_after_secs: retry_after,
            });
        }
        if !send_code(state, rt, &b, &mobile, &code, &challenge).await {
            if backup {
                let notice = "the SMS provider could not be reached".to_string();
                return Ok(self.open(rt, Kind::BackupOnly, None, challenge, true, Some(notice)));
            }
            return Ok(Response::SendFailed);
        }
        Ok(self.open(rt, kind, Some(mobile), challenge, backup, None))
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
        })
    }

    /// Unknown user, `hide_unknown_users`: the same prompt and about the
    /// same delay as a real send, and no code that could ever match.
    async fn fake_challenge(
        &mut self,
        state: &Arc<State>,
        rt: &Runtime,
    ) -> Result<Response, StoreError> {
        let b = &self.begin;
        audit!(
            info,
            "no_mobile",
            b,
            hidden = true,
            "user has no mobile number; fake challenge"
        );
        // The send budgets apply as if an SMS went out, or their refusals
        // would tell real users from unknown ones.
        let req = SendRequest {
            user: &b.user,
            rhost: b.rhost.as_deref(),
            kind: SendKind::First,
            budget: &rt.config.send_budget,
            resend: &rt.config.resend,
        };
        if let SendDecision::Refused {
            reason,
            retry_after,
        } = state.store.reserve_send(req, unix_now()).await?
        {
            return Ok(Response::SendRefused {
                reason,
                retry_after_secs: retry_after,
            });
        }
        // The same user always sees the same fake digits.
        let h = state.hasher.hash(&format!("fake-mobile:{}", b.user));
        let digits = format!(
            "1555{:07}",
            u32::from_be_bytes([h[0], h[1], h[2], h[3]]) % 10_000_000
        );
        let mobile = Mobile::parse(&format!("+{digits}")).ok();
        tokio::time::sleep(state.typical_send_time()).await;
        let code = otp::generate(&rt.config.otp);
        let challenge = Challenge::new(
            &state.hasher,
            &format!("{}!", code.as_str()),
            rt.config.otp,
            Instant::now(),
        );
        Ok(self.open(rt, Kind::Fake, mobile, challenge, false, None))
    }

    pub async fn verify(&mut self, state: &Arc<State>, code: &str) -> (Response, Next) {
        let rt = state.runtime();
        let Some(a) = self.active.as_mut() else {
            return (
                bad_request("no challenge on this connection; send begin first"),
                Next::Close,
            );
        };
        if a.challenge.is_spent() {
            return (bad_request("this challenge is over"), Next::Close);
        }
        let b = &self.begin;
        let backup_input = if a.backup_allowed {
            backup::parse(code)
        } else {
            None
        };
        if backup_input.is_none()
            && a.kind != Kind::BackupOnly
            && a.challenge.expires_in(Instant::now()).is_zero()
        {
            let can_resend = a.challenge.resends_left() > 0 && rt.config.resend.enabled;
            audit!(info, "expired", b, can_resend, "code expired");
            let next = if can_resend {
                Next::Continue
            } else {
                Next::Close
            };
            return (Response::Expired { can_resend }, next);
        }
        // The user's budget pays for the guess before it is checked.
        let lockout = rt.config.lockout;
        // Unknown users behind a fake challenge pay too: a budget that only
        // real users hit would tell an attacker who exists.
        match state
            .store
            .begin_attempt(&b.user, unix_now(), &lockout)
            .await
        {
            Err(e) => return (internal(e), Next::Close),
            Ok(Attempt::Locked { until }) => {
                let secs = (until - unix_now()).max(1) as u64;
                audit!(
                    warn,
                    "locked",
                    b,
                    retry_after_secs = secs,
                    "guess refused: user is locked"
                );
                a.challenge.succeed();
                return (
                    Response::Locked {
                        retry_after_secs: secs,
                    },
                    Next::Close,
                );
            }
            Ok(Attempt::Granted) => {}
        }
        let (outcome, method, left) = match backup_input {
            Some((id, secret)) => match check_backup(state, &b.user, &id, &secret).await {
                Err(e) => return (internal(e), Next::Close),
                Ok(Some(left)) => {
                    a.challenge.succeed();
                    (Outcome::Verified, VerifyMethod::BackupCode, Some(left))
                }
                Ok(None) => (a.challenge.fail_attempt(), VerifyMethod::BackupCode, None),
            },
            None if a.kind == Kind::BackupOnly => {
                (a.challenge.fail_attempt(), VerifyMethod::Sms, None)
            }
            None => (
                a.challenge.verify(&state.hasher, code, Instant::now()),
                VerifyMethod::Sms,
                None,
            ),
        };
        let right = outcome == Outcome::Verified;
        if let Err(e) = state
            .store
            .finish_attempt(&b.user, right, unix_now(), &lockout)
            .await
        {
            return (internal(e), Next::Close);
        }
        match outcome {
            Outcome::Verified => {
                if let Err(e) = self.on_success(state, method).await {
                    return (internal(e), Next::Close);
                }
                (
                    Response::Verified {
                        method,
                        backup_codes_left: left,
                    },
                    Next::Close,
                )
            }
            Outcome::Wrong { attempts_left } => {
                audit!(
                    info,
                    "wrong_code",
                    b,
                    attempts_left,
                    backup = (method == VerifyMethod::BackupCode),
                    "wrong code"
                );
                // The wrong guess may have used the user's last one.
                if let Ok(st) = state.store.lock_state(&b.user, unix_now()).await {
                    if let Some(until) = st.locked_until {
                        audit!(
                            warn,
                            "locked",
                            b,
                            lockouts = st.lockouts,
                            retry_after_secs = until - unix_now(),
                            "user locked after too many wrong codes"
                        );
                        return (
                            Response::Locked {
                                retry_after_secs: (until - unix_now()).max(1) as u64,
                            },
                            Next::Close,
                        );
                    }
                }
                (Response::Wrong { attempts_left }, Next::Continue)
            }
            Outcome::Exhausted => {
                audit!(
                    warn,
                    "tries_exhausted",
                    b,
                    "no tries left on this challenge"
                );
                (Response::TriesExhausted, Next::Close)
            }
            Outcome::Expired | Outcome::Spent => {
                (bad_request("this challenge is over"), Next::Close)
            }
        }
    }

    async fn on_success(
        &mut self,
        state: &Arc<State>,
        method: VerifyMethod,
    ) -> Result<(), StoreError> {
        let b = &self.begin;
        let now = unix_now();
        if let Some(Active {
            kind: Kind::Enrolling { store: true },
            mobile: Some(m),
            ..
        }) = &self.active
        {
            state.store.set_mobile(&b.user, m.e164(), now).await?;
            audit!(info, "enrolled", b, to = %m, "number enrolled at login");
        }
        if !self.policy.grace.is_zero() {
            if let Some(ctx) =
                policy::grace_context(&b.service, b.rhost.as_deref(), b.tty.as_deref())
            {
                state.store.record_success(&b.user, &ctx, now).await?;
            }
        }
        match method {
            VerifyMethod::Sms => audit!(info, "verified", b, method = "sms", "code verified"),
            VerifyMethod::BackupCode => audit!(info, "backup_code_used", b, "backup code accepted"),
        }
        Ok(())
    }

    pub async fn resend(&mut self, state: &Arc<State>) -> (Response, Next) {
        let rt = state.runtime();
        let Some(a) = self.active.as_mut() else {
            return (
                bad_request("no challenge on this connection; send begin first"),
                Next::Close,
            );
        };
        if a.challenge.is_spent() {
            return (bad_request("this challenge is over"), Next::Close);
        }
        let b = self.begin.clone();
        let refuse = |reason: String| {
            audit!(info, "resend_refused", b, reason = %reason, "resend refused");
            (Response::ResendRefused { reason }, Next::Continue)
        };
        if !rt.config.resend.enabled {
            return refuse("resending is disabled".into());
        }
        if a.kind == Kind::BackupOnly {
            return refuse("no SMS can be sent right now; use a backup code".into());
        }
        if a.challenge.resends_left() == 0 {
            return refuse(format!(
                "the limit of {} resends is reached",
                a.challenge.policy().max_resends
            ));
        }
        // Another session may have locked the user since this code was sent.
        match state.store.lock_state(&b.user, unix_now()).await {
            Err(e) => return (internal(e), Next::Close),
            Ok(st) => {
                if let Some(until) = st.locked_until {
                    a.challenge.succeed();
                    let secs = (until - unix_now()).max(1) as u64;
                    audit!(
                        warn,
                        "locked",
                        b,
                        retry_after_secs = secs,
                        "resend refused: user is locked"
                    );
                    return (
                        Response::Locked {
                            retry_after_secs: secs,
                        },
                        Next::Close,
                    );
                }
            }
        }
        // Fake challenges pay the budget too, or its refusals would tell
        // real users from unknown ones.
        let req = SendRequest {
            user: &b.user,
            rhost: b.rhost.as_deref(),
            kind: SendKind::Resend,
            budget: &rt.config.send_budget,
            resend: &rt.config.resend,
        };
        match state.store.reserve_send(req, unix_now()).await {
            Err(e) => return (internal(e), Next::Close),
            Ok(SendDecision::Refused {
                reason,
                retry_after,
            }) => {
                let reason = match retry_after {
                    Some(s) => format!("{reason}; try again in {}", human_secs(s)),
                    None => reason,
                };
                return refuse(reason);
            }
            Ok(SendDecision::Allowed) => {}
        }
        let code = otp::generate(a.challenge.policy());
        if a.kind == Kind::Fake {
            tokio::time::sleep(state.typical_send_time()).await;
            a.challenge.replace(
                &state.hasher,
                &format!("{}!", code.as_str()),
                Instant::now(),
            );
            return (self.challenge_response(&rt), Next::Continue);
        }
        let Some(mobile) = a.mobile.clone() else {
            return refuse("no number to send to".into());
        };
        // The old code dies before the new one is sent, whatever happens next.
        a.challenge.replace(&state.hasher, &code, Instant::now());
        if !send_code(state, &rt, &b, &mobile, &code, &a.challenge).await {
            return (Response::SendFailed, Next::Close);
        }
        (self.challenge_response(&rt), Next::Continue)
    }

    pub async fn enroll(&mut self, state: &Arc<State>, typed: &str) -> (Response, Next) {
        let rt = state.runtime();
        if self.active.is_some() || self.policy.no_mobile != NoMobile::Enroll {
            return (
                bad_request("no number was asked for on this connection"),
                Next::Close,
            );
        }
        self.enroll_tries += 1;
        let cleaned: String = typed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-' && *c != '(' && *c != ')')
            .collect();
        let mobile = match Mobile::parse(&cleaned) {
            Ok(m) if policy::country_allowed(&rt.config.send_budget, &m) => m,
            Ok(_) => {
                return self.invalid_mobile(
                    "numbers in that country cannot receive codes from this host".into(),
                )
            }
            Err(e) => return self.invalid_mobile(e.to_string()),
        };
        let kind = Kind::Enrolling {
            store: !self.policy.send_to_entered_number,
        };
        match self.send_first(state, &rt, mobile, kind).await {
            Ok(resp) => {
                let next = if self.active.is_some() {
                    Next::Continue
                } else {
                    Next::Close
                };
                (resp, next)
            }
            Err(e) => (internal(e), Next::Close),
        }
    }

    fn invalid_mobile(&self, reason: String) -> (Response, Next) {
        let b = &self.begin;
        audit!(
            info,
            "enroll_invalid",
            b,
            tries = self.enroll_tries,
            "typed number refused"
        );
        let next = if self.enroll_tries >= MAX_ENROLL_TRIES {
            Next::Close
        } else {
            Next::Continue
        };
        (Response::InvalidMobile { reason }, next)
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

/// Checks a backup code and spends it. `Some(left)` when it was right and
/// this caller spent it; `None` when wrong or already spent by a
/// concurrent login (exactly one of two simultaneous uses wins: the spend
/// is a conditional UPDATE).
async fn check_backup(
    state: &Arc<State>,
    user: &str,
    id: &str,
    secret: &str,
) -> Result<Option<u32>, StoreError> {
    let Some(hash) = state.store.backup_code_hash(user, id).await? else {
        return Ok(None);
    };
    // Through the daemon-wide argon2 slots, where a flood of generations
    // can hold at most one.
    let secret = zeroize::Zeroizing::new(secret.to_string());
    let ok = state.hashing.verify(secret, hash).await;
    if !ok || !state.store.spend_backup_code(user, id, unix_now()).await? {
        return Ok(None);
    }
    Ok(Some(state.store.backup_codes_left(user).await?))
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
) -> bool {
    let minutes = challenge.policy().expiry.as_secs().div_ceil(60);
    let mut body = rt.config.message.render(|var, out| match var {
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
    if rt.config.origin_bound {
        // WICG one-time-codes: lets a phone offer the code for autofill
        // only on this host.
        body.push_str(&format!("\n\n@{} #{}", rt.hostname, code));
    }
    let sms = Sms {
        to: mobile.clone(),
        body: zeroize::Zeroizing::new(body),
    };
    let started = Instant::now();
    let meta = SendMeta {
        validity: Some(challenge.policy().expiry),
        host: Some(rt.hostname.clone()),
        service: Some(b.service.clone()),
        // Retries and backoff stop in time for the answer to reach the module.
        deadline: Some(tokio::time::Instant::now() + SEND_BUDGET),
    };
    let sent = tokio::time::timeout(SEND_BUDGET, rt.chain.send_with(&sms, &meta)).await;
    match sent {
        Ok(Ok(delivery)) => {
            state.note_send_time(started.elapsed());
            audit!(info, "code_sent", b, to = %mobile, provider = %delivery.provider, tries = delivery.attempts.len(), segments = delivery.segments, encoding = delivery.encoding, "code sent");
            true
        }
        Ok(Err(e)) => {
            audit!(warn, "send_failed", b, to = %mobile, error = %e, "every provider failed");
            false
        }
        Err(_) => {
            audit!(warn, "send_failed", b, to = %mobile, budget_secs = SEND_BUDGET.as_secs(), "providers did not finish within the send budget");
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
