//! A fresh SMS code for self-service changes that weaken an account: a new
//! set of backup codes, opting out of SMS codes. Without it, anything
//! running as alice (one stolen password plus a foothold) could mint
//! backup codes or opt her out and keep a permanent way past the second
//! factor. Root is exempt: root can change the store anyway.
//!
//! The first request (no code) sends a code to the user's number, charged
//! to the send budget like a login's, and is answered `StepUp`; the same
//! request repeated with the code does the work. The pending code belongs
//! to the caller's uid and the action (the CLI may reconnect after its
//! prompt), is kept only as a keyed hash, and every guess at it is charged
//! to the user's guess budget, so it is no cheaper to guess than a login.

use crate::authz::Peer;
use crate::numbers::lookup;
use crate::otp::{self, Challenge, Outcome};
use crate::reply::store_failed as internal;
use crate::rules::challenge::Step;
use crate::state::{Runtime, State};
use crate::store::{ChallengeQuery, Guess, GuessQuery, SendDecision, SendKind, SendRequest};
use smsotp_config::CodeKind;
use smsotp_proto::{CodeAlphabet, ErrorKind, MaskedMobile, Response, Secret, StepUpInfo};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tracing::{info, warn};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    BackupCodes,
    OptOut,
}

impl Action {
    /// What the SMS says the code is for.
    fn words(self) -> &'static str {
        match self {
            Action::BackupCodes => "new backup codes",
            Action::OptOut => "opting out of SMS codes",
        }
    }
}

struct Pending {
    user: String,
    challenge: Challenge,
}

/// Codes sent and not yet used, at most one per (uid, action).
#[derive(Default)]
pub struct StepUps {
    pending: Mutex<HashMap<(u32, Action), Pending>>,
}

impl StepUps {
    fn lock(&self) -> MutexGuard<'_, HashMap<(u32, Action), Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new code replaces the caller's earlier one for the same action;
    /// dead entries of anyone go too, so the map stays small.
    fn put(&self, uid: u32, action: Action, pending: Pending) {
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|_, p| !p.challenge.is_spent() && !p.challenge.expires_in(now).is_zero());
        map.insert((uid, action), pending);
    }

    fn take(&self, uid: u32, action: Action, user: &str) -> Option<Pending> {
        let mut map = self.lock();
        match map.get(&(uid, action)) {
            Some(p) if p.user == user => map.remove(&(uid, action)),
            _ => None,
        }
    }
}

fn refuse(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error {
        kind,
        message: message.into(),
    }
}

/// `Ok` when the caller may go ahead: root, or `code` is the right step-up
/// code. Otherwise the answer to send instead (a code was sent, the code
/// was wrong, no number, a budget refused ...).
pub async fn require(
    state: &Arc<State>,
    rt: &Runtime,
    peer: Peer,
    user: &str,
    action: Action,
    code: Option<&Secret>,
) -> Result<(), Response> {
    if peer.uid == 0 {
        return Ok(());
    }
    match code {
        None => Err(send(state, rt, peer, user, action).await),
        Some(code) => check(state, rt, peer, user, action, code.expose()).await,
    }
}

fn locked(until: i64, now: i64) -> Response {
    Response::Locked {
        retry_after_secs: (until - now).max(1) as u64,
    }
}

async fn send(
    state: &Arc<State>,
    rt: &Runtime,
    peer: Peer,
    user: &str,
    action: Action,
) -> Response {
    match try_send(state, rt, peer, user, action).await {
        Ok(answer) | Err(answer) => answer,
    }
}

async fn try_send(
    state: &Arc<State>,
    rt: &Runtime,
    peer: Peer,
    user: &str,
    action: Action,
) -> Result<Response, Response> {
    let Some((mobile, _)) = lookup(state, rt, user)
        .await
        .map_err(|e| internal(e.into()))?
    else {
        return Err(refuse(
            ErrorKind::PermissionDenied,
            format!(
                "{user} has no mobile number, so this cannot be confirmed with an SMS code; \
                 ask your administrator"
            ),
        ));
    };
    // One transaction: the lock (another session may hold it), the
    // country and the send budgets. The number may not have been proven
    // by a login yet, so no lockout notice goes to it from here.
    let send = SendRequest {
        user,
        rhost: None,
        host: &rt.hostname,
        kind: SendKind::First,
        budget: &rt.config.send_budget,
        resend: &rt.config.resend,
    };
    let query = ChallengeQuery::send_to(&mobile, send);
    let out = state.store.challenge(query).await.map_err(internal)?;
    let refused = match (out.step, out.send) {
        (Step::Locked { until, .. }, _) => return Ok(locked(until, out.now)),
        (Step::Send, Some(SendDecision::Allowed)) => None,
        (
            Step::Send,
            Some(SendDecision::Refused {
                reason,
                retry_after,
            }),
        ) => Some((reason, retry_after)),
        _ => Some(("codes cannot be sent to this country".to_string(), None)),
    };
    if let Some((reason, retry_after)) = refused {
        warn!(event = "step_up_refused", user, peer_uid = peer.uid, reason = %reason, "send budget refused the step-up code");
        return Err(Response::SendRefused {
            reason,
            retry_after_secs: retry_after,
        });
    }
    let policy = rt.config.otp;
    let code = otp::generate(&policy);
    let challenge = Challenge::new(&state.hasher, &code, policy, Instant::now());
    // The default login template's shape ("... is CODE. It expires in"),
    // and it says what the code is for: a user who did not ask learns that
    // someone has their password.
    let body = format!(
        "Code to confirm {} for {user} on {} is {}. It expires in {} minutes. \
         Not you? Someone knows your password: tell your administrator.",
        action.words(),
        rt.hostname,
        code.as_str(),
        policy.expiry.as_secs().div_ceil(60)
    );
    if !crate::notice::send(rt, user, &mobile, body, "step_up_code").await {
        return Err(Response::SendFailed);
    }
    let info = StepUpInfo {
        masked_mobile: MaskedMobile::new(&rt.log_mobile(&mobile))
            .or_else(|| MaskedMobile::new("****"))
            .unwrap_or_else(|| unreachable!("'****' is a valid mask")),
        expires_in_secs: challenge.expires_in(Instant::now()).as_secs(),
        attempts_left: challenge.attempts_left(),
        code_length: policy.length,
        alphabet: match policy.kind {
            CodeKind::Numeric => CodeAlphabet::Numeric,
            CodeKind::Alphanumeric => CodeAlphabet::Alphanumeric,
        },
    };
    state.stepups.put(
        peer.uid,
        action,
        Pending {
            user: user.to_string(),
            challenge,
        },
    );
    Ok(Response::StepUp(info))
}

async fn check(
    state: &Arc<State>,
    rt: &Runtime,
    peer: Peer,
    user: &str,
    action: Action,
    code: &str,
) -> Result<(), Response> {
    let Some(mut pending) = state.stepups.take(peer.uid, action, user) else {
        return Err(refuse(
            ErrorKind::BadRequest,
            "no confirmation code is pending for this; run the command again to get one",
        ));
    };
    if pending.challenge.expires_in(Instant::now()).is_zero() {
        return Err(Response::Expired { can_resend: false });
    }
    // Checked in memory, counted only if the store grants the guess, in
    // the one transaction that charges and settles it.
    let outcome = pending
        .challenge
        .verify(&state.hasher, code, Instant::now());
    let right = outcome == Outcome::Verified;
    let query = GuessQuery {
        user,
        lockout: &rt.config.lockout,
        right,
        grace: None,
        enrol: None,
    };
    let (now, lock) = match state.store.guess(query).await.map_err(internal)? {
        Guess::Locked { now, until } => return Err(locked(until, now)),
        Guess::Judged { now, lock, .. } => (now, lock),
    };
    info!(
        event = "step_up_checked",
        user,
        peer_uid = peer.uid,
        right,
        "step-up code checked"
    );
    match outcome {
        Outcome::Verified => Ok(()),
        Outcome::Wrong { attempts_left } => {
            if let Some(until) = lock.locked_until {
                return Err(locked(until, now));
            }
            state.stepups.put(peer.uid, action, pending);
            Err(Response::Wrong { attempts_left })
        }
        Outcome::Exhausted => Err(Response::TriesExhausted),
        Outcome::Expired | Outcome::Spent => Err(Response::Expired { can_resend: false }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::CodeHasher;
    use smsotp_config::OtpPolicy;

    fn pending(h: &CodeHasher, user: &str, policy: OtpPolicy) -> Pending {
        Pending {
            user: user.into(),
            challenge: Challenge::new(h, "123456", policy, Instant::now()),
        }
    }

    #[test]
    fn a_code_serves_only_its_uid_action_and_user_and_only_once() {
        let (h, s) = (CodeHasher::new(), StepUps::default());
        s.put(
            1000,
            Action::BackupCodes,
            pending(&h, "alice", OtpPolicy::default()),
        );
        assert!(
            s.take(1001, Action::BackupCodes, "alice").is_none(),
            "other uid"
        );
        assert!(
            s.take(1000, Action::OptOut, "alice").is_none(),
            "other action"
        );
        assert!(
            s.take(1000, Action::BackupCodes, "bob").is_none(),
            "other user"
        );
        assert!(s.take(1000, Action::BackupCodes, "alice").is_some());
        assert!(
            s.take(1000, Action::BackupCodes, "alice").is_none(),
            "taken"
        );
    }

    #[test]
    fn dead_codes_are_dropped_when_a_new_one_is_sent() {
        let (h, s) = (CodeHasher::new(), StepUps::default());
        let gone = OtpPolicy {
            expiry: std::time::Duration::ZERO,
            ..OtpPolicy::default()
        };
        s.put(1, Action::OptOut, pending(&h, "a", gone));
        s.put(2, Action::OptOut, pending(&h, "b", OtpPolicy::default()));
        assert_eq!(s.lock().len(), 1, "the expired code of uid 1 went");
    }
}
