//! The login flow of one connection: policy at `Begin`, the challenge,
//! `Verify` (SMS or backup code), `Resend` and `Enroll`.
//!
//! Budgets that must hold across sessions and hosts (guesses, sends) are
//! charged in the store *before* the work they pay for, in one
//! transaction, so parallel sessions cannot multiply them.
//!
//! Here: `Begin` and the challenge's shape. Sending and resending are in
//! `send`, checking answers in `verify`, what a lockout of SMS codes does
//! in `lock`, the unknown user's fake challenge in `fake`, enrolment in
//! `enroll`.

use crate::account::{self, Account};
use crate::authz::{self, Peer};
use crate::otp::Challenge;
use crate::policy;
use crate::state::{Runtime, State};
use crate::store::{unix_now, StoreError};
use smsotp_config::{Mobile, NoMobile, ServicePolicy};
use smsotp_proto::{
    BeginRequest, ChallengeInfo, CodeAlphabet, ErrorKind, MaskedMobile, Response, SkipReason,
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
    /// `user` is the canonical account name when NSS knows it.
    begin: BeginRequest,
    /// Whether NSS knows the user. Unknown names are never skipped.
    known: bool,
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

mod call;
mod enroll;
mod fake;
mod lock;
mod send;
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

    pub async fn begin(
        state: &Arc<State>,
        peer: Peer,
        mut begin: BeginRequest,
    ) -> (Option<Login>, Response, Next) {
        let rt = state.runtime();
        // Before anything else: every rule below is keyed on the account,
        // not on how its name was typed.
        let account = account::resolve(&begin.user).await;
        begin.user = account.name().to_string();
        if let Err(refusal) = authorize(peer, &begin.user, rt.config.allow_user_self).await {
            audit!(warn, "refused", begin, peer_uid = peer.uid, peer_pid = ?peer.pid, "peer may not begin a challenge for this user");
            let resp = Response::Error {
                kind: refusal.kind,
                message: refusal.message.to_string(),
            };
            return (None, resp, Next::Close);
        }
        let policy = if peer.uid == 0 {
            rt.config.policy.for_service(&begin.service).clone()
        } else {
            // An unprivileged caller (allow_user_self) says what it likes
            // about where the login comes from: none of it may pick a
            // trusted network, a service's exemptions or a grace period.
            begin.rhost = None;
            begin.tty = None;
            begin.command = None;
            rt.config.policy.default.clone()
        };
        let mut login = Login {
            begin,
            known: matches!(account, Account::Known(_)),
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
        if let Some(until) = store.lock_state(&b.user, unix_now()).await?.locked_until {
            return self.sms_locked(state, rt, until).await;
        }
        let Some(mobile) = self.known_mobile(state, rt).await? else {
            return Ok(match self.policy.no_mobile {
                NoMobile::Skip if self.known => {
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
                NoMobile::Enroll if self.known => {
                    audit!(info, "enroll_asked", b, "no number; asking for one");
                    Response::AskMobile
                }
                _ if self.policy.hide_unknown_users => self.fake_challenge(state, rt).await?,
                _ => {
                    audit!(
                        info,
                        "no_mobile",
                        b,
                        known = self.known,
                        "user has no mobile number; denied"
                    );
                    Response::NoMobile
                }
            });
        };
        self.send_first(state, rt, mobile, Kind::Sms).await
    }

    /// The number codes go to: users.toml first, then the store.
    async fn known_mobile(
        &self,
        state: &Arc<State>,
        rt: &Runtime,
    ) -> Result<Option<Mobile>, StoreError> {
        let user = &self.begin.user;
        Ok(match rt.users.mobile(user) {
            Some(m) => Some(m.clone()),
            None => state
                .store
                .mobile(user)
                .await?
                .and_then(|s| Mobile::parse(&s).ok()),
        })
    }

    /// The exemptions, cheapest first. Those that depend on who the user
    /// is (exempt users and groups, grace, opt-out) need an account NSS
    /// knows; the service's own switch and trusted networks do not.
    async fn skip_reason(&self, state: &Arc<State>) -> Result<Option<SkipReason>, StoreError> {
        let b = &self.begin;
        let p = &self.policy;
        if !p.enabled {
            return Ok(Some(SkipReason::ServiceNotEnabled));
        }
        if policy::trusted_network(p, b.rhost.as_deref()) {
            return Ok(Some(SkipReason::TrustedNetwork));
        }
        if !self.known {
            return Ok(None);
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
            if let Some(ctx) = policy::grace_context(
                &state.runtime().hostname,
                &b.service,
                b.rhost.as_deref(),
                b.tty.as_deref(),
            ) {
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

/// "45 s", "3 min": how the module words waiting times too.
fn human_secs(secs: u64) -> String {
    if secs < 60 {
        format!("{secs} s")
    } else {
        format!("{} min", secs.div_ceil(60))
    }
}
