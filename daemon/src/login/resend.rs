//! `Resend`: the challenge's own checks, then one store transaction that
//! sees whether another session locked the user meanwhile and reserves
//! the resend against the budgets and the cooldown.

use super::begin::COUNTRY_REFUSED;
use super::{human_secs, Kind, Login, Next};
use crate::providers::Route;
use crate::reply::{bad_request, store_failed};
use crate::rules::challenge::Step;
use crate::state::State;
use crate::store::{ChallengeQuery, Number, SendDecision, SendKind};
use smsotp_proto::Response;
use std::sync::Arc;
use std::time::Instant;
use tracing::info;

impl Login {
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
        let Some(a) = self.active.as_ref() else {
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
        let (kind, mobile) = (a.kind, a.mobile.clone());
        let verified = self.verified_number();
        // Fake challenges pay the budget too, or its refusals would tell
        // real users from unknown ones; their number is nobody's.
        let query = ChallengeQuery {
            grace: None,
            opt_out_counts: false,
            number: match (&mobile, kind) {
                (Some(m), Kind::Sms | Kind::Enrolling { .. }) => Number::Given(m),
                _ => Number::Stored,
            },
            backup_counts: self.backup_counts(&rt),
            send_without_number: kind == Kind::Fake,
            reserve: true,
            notice: verified,
            send: self.send_request(&rt, SendKind::Resend),
        };
        let out = match state.store.challenge(query).await {
            Ok(out) => out,
            Err(e) => return (store_failed(e), Next::Close),
        };
        let decision = match out.step {
            // Another session locked the user since this code was sent.
            Step::Locked { until, notify } => {
                let tell = if notify { mobile } else { None };
                return match self.sms_locked(state, &rt, &out, until, tell) {
                    resp @ Response::Challenge(_) => (resp, Next::Continue),
                    resp => (resp, Next::Close),
                };
            }
            Step::CountryRefused => return refuse(COUNTRY_REFUSED.into()),
            _ => out.send.clone(),
        };
        match decision {
            Some(SendDecision::Allowed) => {}
            Some(SendDecision::Refused {
                reason,
                retry_after,
            }) => {
                crate::metrics::budget_refused(&reason);
                let reason = match retry_after {
                    Some(s) => format!("{reason}; try again in {}", human_secs(s)),
                    None => reason,
                };
                return refuse(reason);
            }
            None => return refuse("no number to send to".into()),
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
        let code = crate::otp::generate(a.challenge.policy());
        // The old code dies before the new one is sent, whatever happens next.
        a.challenge.replace(&state.hasher, &code, Instant::now());
        if !super::send_code(state, &rt, &b, &mobile, &code, &a.challenge, route).await {
            return (Response::SendFailed, Next::Close);
        }
        (self.challenge_response(&rt), Next::Continue)
    }
}
