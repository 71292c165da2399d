//! Sending codes: the first one (country and send budgets, then the
//! provider chain, with a backup-only challenge when no SMS can go out)
//! and resends.

use super::{human_secs, internal, Kind, Login, Next, SEND_BUDGET};
use crate::otp::{self, Challenge};
use crate::policy;
use crate::providers::{Route, SendMeta, Sms};
use crate::state::{Runtime, State};
use crate::store::{unix_now, SendDecision, SendKind, SendRequest, StoreError};
use smsotp_config::{Mobile, Var};
use smsotp_proto::{BeginRequest, Response};
use std::sync::Arc;
use std::time::Instant;
use tracing::{info, warn};

impl Login {
    /// Checks the country and the send budgets, sends, and opens the
    /// challenge. When no SMS can go out but the user has backup codes, a
    /// backup-only challenge lets them in anyway (so spending a victim's
    /// send budget with abandoned logins does not lock them out).
    pub(super) async fn send_first(
        &mut self,
        state: &Arc<State>,
        rt: &Runtime,
        mobile: Mobile,
        kind: Kind,
    ) -> Result<Response, StoreError> {
        let b = self.begin.clone();
        let backup =
            !matches!(kind, Kind::Enrolling { .. }) && self.backup_available(state, rt).await?;
        let refusal = if !policy::country_allowed(&rt.config.send_budget, &mobile) {
            Some(("codes cannot be sent to this country".to_string(), None))
        } else {
            match state
                .store
                .reserve_send(self.send_request(rt, SendKind::First), unix_now())
                .await?
            {
                SendDecision::Allowed => None,
                SendDecision::Refused {
                    reason,
                    retry_after,
                } => Some((reason, retry_after)),
            }
        };
        if let Some((reason, retry_after)) = refusal {
            audit!(warn, "send_refused", b, to = %rt.log_mobile(&mobile), reason = %reason, "send refused by policy");
            if backup {
                return Ok(self.open_backup_only(rt, reason));
            }
            return Ok(Response::SendRefused {
                reason,
                retry_after_secs: retry_after,
            });
        }
        let code = otp::generate(&rt.config.otp);
        let challenge = Challenge::new(&state.hasher, &code, rt.config.otp, Instant::now());
        if !send_code(state, rt, &b, &mobile, &code, &challenge, Route::Any).await {
            if backup {
                let notice = "the SMS provider could not be reached".to_string();
                return Ok(self.open_backup_only(rt, notice));
            }
            return Ok(Response::SendFailed);
        }
        Ok(self.open(rt, kind, Some(mobile), challenge, backup, None))
    }

    /// What a send of this login is checked against.
    pub(super) fn send_request<'a>(&'a self, rt: &'a Runtime, kind: SendKind) -> SendRequest<'a> {
        SendRequest {
            user: &self.begin.user,
            rhost: self.begin.rhost.as_deref(),
            kind,
            budget: &rt.config.send_budget,
            resend: &rt.config.resend,
        }
    }

    pub async fn resend(&mut self, state: &Arc<State>) -> (Response, Next) {
        self.resend_via(state, Route::Any).await
    }

    /// A resend through the providers `route` admits (`Route::Voice`: the
    /// user typed `v`, see `call.rs`); the same checks and budgets.
    pub(super) async fn resend_via(
        &mut self,
        state: &Arc<State>,
        route: Route,
    ) -> (Response, Next) {
        let rt = state.runtime();
        let Some(a) = self.active.as_mut() else {
            return (
                super::bad_request("no challenge on this connection; send begin first"),
                Next::Close,
            );
        };
        if a.challenge.is_spent() {
            return (super::bad_request("this challenge is over"), Next::Close);
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
                    return self.sms_locked_mid_challenge(state, &rt, until).await;
                }
            }
        }
        // Fake challenges pay the budget too, or its refusals would tell
        // real users from unknown ones.
        match state
            .store
            .reserve_send(self.send_request(&rt, SendKind::Resend), unix_now())
            .await
        {
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
        let Some(a) = self.active.as_mut() else {
            return refuse("no challenge".into());
        };
        if a.kind == Kind::Fake {
            tokio::time::sleep(state.typical_send_time()).await;
            a.challenge.restart(Instant::now());
            return (self.challenge_response(&rt), Next::Continue);
        }
        let Some(mobile) = a.mobile.clone() else {
            return refuse("no number to send to".into());
        };
        let code = otp::generate(a.challenge.policy());
        // The old code dies before the new one is sent, whatever happens next.
        a.challenge.replace(&state.hasher, &code, Instant::now());
        if !send_code(state, &rt, &b, &mobile, &code, &a.challenge, route).await {
            return (Response::SendFailed, Next::Close);
        }
        (self.challenge_response(&rt), Next::Continue)
    }
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
        spoken: Some(crate::providers::Spoken {
            code: zeroize::Zeroizing::new(code.to_string()),
            expiry_minutes: minutes,
        }),
    };
    let sent = tokio::time::timeout(SEND_BUDGET, rt.chain.send_via(&sms, &meta, route)).await;
    match sent {
        Ok(Ok(delivery)) => {
            state.note_send_time(started.elapsed());
            audit!(info, "code_sent", b, to = %rt.log_mobile(mobile), provider = %delivery.provider, tries = delivery.attempts.len(), segments = delivery.segments, encoding = delivery.encoding, "code sent");
            true
        }
        Ok(Err(e)) => {
            audit!(warn, "send_failed", b, to = %rt.log_mobile(mobile), error = %e, "every provider failed");
            false
        }
        Err(_) => {
            audit!(warn, "send_failed", b, to = %rt.log_mobile(mobile), budget_secs = SEND_BUDGET.as_secs(), "providers did not finish within the send budget");
            false
        }
    }
}
