//! Enrolment at login (`no_mobile = "enroll"`): the typed number gets a
//! code; it is stored once the code is right, and only if the user still
//! has no number then (see `verify`). One store transaction: the lock
//! check and the send's reservation together.

use super::begin::COUNTRY_REFUSED;
use super::{bad_request, Kind, Login, Next, MAX_ENROLL_TRIES};
use crate::policy;
use crate::reply::store_failed;
use crate::rules::challenge::Step;
use crate::state::State;
use crate::store::{ChallengeQuery, SendDecision, SendKind};
use smsotp_config::{Mobile, NoMobile};
use smsotp_proto::Response;
use std::sync::Arc;
use tracing::info;

impl Login {
    pub async fn enroll(&mut self, state: &Arc<State>, typed: &str) -> (Response, Next) {
        let rt = state.runtime();
        // Only for accounts NSS knows (`decide` asks no one else), and
        // only once per connection.
        if self.active.is_some() || self.policy.no_mobile != NoMobile::Enroll || !self.known {
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
        // The typed number is unproven: it is never told of a lockout,
        // and backup codes do not complete an enrolment.
        let query = ChallengeQuery::send_to(&mobile, self.send_request(&rt, SendKind::First));
        let out = match state.store.challenge(query).await {
            Ok(out) => out,
            Err(e) => return (store_failed(e), Next::Close),
        };
        let resp = match (out.step, out.send.clone()) {
            (Step::Locked { until, .. }, _) => self.sms_locked(state, &rt, &out, until, None),
            (Step::Send, Some(SendDecision::Allowed)) => {
                self.send_and_open(state, &rt, mobile, kind, false).await
            }
            (
                Step::Send,
                Some(SendDecision::Refused {
                    reason,
                    retry_after,
                }),
            ) => self.refused(&rt, &out, reason, retry_after),
            (Step::CountryRefused, _) => self.refused(&rt, &out, COUNTRY_REFUSED.into(), None),
            _ => Response::SendFailed,
        };
        let next = if self.active.is_some() {
            Next::Continue
        } else {
            Next::Close
        };
        (resp, next)
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
