//! `Begin`: who asks and for whom, the exemptions that need no store, then
//! one store transaction ([`crate::store::Store::challenge`]) that reads
//! the rest (grace, opt-out, lock, number, backup codes), decides with
//! [`crate::rules::challenge`] and reserves the send; this file acts on
//! what it returns.

use super::{authorize, Kind, Login, Next};
use crate::account::{self, Account};
use crate::authz::Peer;
use crate::numbers::{self, Plan};
use crate::policy;
use crate::reply::store_failed;
use crate::rules::challenge::Step;
use crate::state::{Runtime, State};
use crate::store::{ChallengeOutcome, ChallengeQuery, SendDecision, SendKind};
use smsotp_config::NoMobile;
use smsotp_proto::{BeginRequest, Response, SkipReason};
use std::sync::Arc;
use tracing::{info, warn};

/// What a refused send tells the user.
pub(super) const COUNTRY_REFUSED: &str = "codes cannot be sent to this country";

impl Login {
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
        let resp = login.decide(state, &rt).await;
        let next = if login.active.is_some() || matches!(resp, Response::AskMobile) {
            Next::Continue
        } else {
            Next::Close
        };
        (Some(login), resp, next)
    }

    async fn decide(&mut self, state: &Arc<State>, rt: &Runtime) -> Response {
        if let Some(reason) = self.local_skip().await {
            return self.skip(reason);
        }
        let b = &self.begin;
        let p = &self.policy;
        let grace_ctx = (self.known && !p.grace.is_zero())
            .then(|| {
                policy::grace_context(
                    &rt.hostname,
                    &b.service,
                    b.rhost.as_deref(),
                    b.tty.as_deref(),
                )
            })
            .flatten();
        let numbers = numbers::plan(rt, &b.user, self.known).await;
        // A directory that could not be asked denies a login without a
        // number; it must not pay for a fake challenge first.
        let cannot_ask = matches!(
            numbers,
            Plan::Unreachable(_) | Plan::Stored { below: Err(_) }
        );
        // What a login without a number comes to, decided before the
        // store is asked, so a fake challenge's send is reserved in the
        // same transaction.
        let fake = !(self.known && matches!(p.no_mobile, NoMobile::Skip | NoMobile::Enroll))
            && p.hide_unknown_users
            && !cannot_ask;
        let query = ChallengeQuery {
            grace: grace_ctx.as_deref().map(|c| (c, p.grace.as_secs())),
            opt_out_counts: self.known && !p.mandatory,
            number: numbers.number(),
            backup_counts: self.backup_counts(rt),
            send_without_number: fake,
            reserve: true,
            notice: true,
            send: self.send_request(rt, SendKind::First),
        };
        let out = match state.store.challenge(query).await {
            Ok(out) => out,
            Err(e) => return store_failed(e),
        };
        let mobile = match numbers.resolve(out.stored.clone()) {
            Ok(found) => found.map(|(m, _)| m),
            // "Cannot ask" is not "no number": never a skip or an
            // enrolment, whatever `no_mobile` says.
            Err(e) if matches!(out.step, Step::NoNumber { .. }) => {
                return numbers::denied(&b.user, &b.service, &e)
            }
            Err(_) => None,
        };
        match out.step {
            Step::Grace => self.skip(SkipReason::GracePeriod),
            Step::OptedOut => self.skip(SkipReason::OptedOut),
            Step::Locked { until, notify } => {
                let tell = if notify { mobile } else { None };
                self.sms_locked(state, rt, &out, until, tell)
            }
            Step::NoNumber { .. } => self.no_number(state, rt, &out).await,
            Step::CountryRefused => self.refused(rt, &out, COUNTRY_REFUSED.into(), None),
            Step::Send => match (out.send.clone(), mobile) {
                (Some(SendDecision::Allowed), Some(m)) => {
                    let backup = out.backup_left > 0;
                    self.send_and_open(state, rt, m, Kind::Sms, backup).await
                }
                (
                    Some(SendDecision::Refused {
                        reason,
                        retry_after,
                    }),
                    _,
                ) => self.refused(rt, &out, reason, retry_after),
                // The store decided to send without reserving: deny.
                _ => Response::SendFailed,
            },
        }
    }

    fn skip(&self, reason: SkipReason) -> Response {
        let b = &self.begin;
        audit!(
            info,
            "skipped",
            b,
            reason = reason.as_str(),
            "no code needed"
        );
        Response::Skip { reason }
    }

    /// No SMS may go out: a backup-only challenge when the user has backup
    /// codes (so spending a victim's send budget with abandoned logins
    /// does not lock them out), else the refusal.
    pub(super) fn refused(
        &mut self,
        rt: &Runtime,
        out: &ChallengeOutcome,
        reason: String,
        retry_after: Option<u64>,
    ) -> Response {
        let b = &self.begin;
        audit!(warn, "send_refused", b, reason = %reason, "send refused by policy");
        crate::metrics::budget_refused(&reason);
        if out.backup_left > 0 {
            return self.open_backup_only(rt, reason);
        }
        Response::SendRefused {
            reason,
            retry_after_secs: retry_after,
        }
    }

    async fn no_number(
        &mut self,
        state: &Arc<State>,
        rt: &Runtime,
        out: &ChallengeOutcome,
    ) -> Response {
        let b = &self.begin;
        match self.policy.no_mobile {
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
            _ if self.policy.hide_unknown_users => self.fake_challenge(state, rt, out).await,
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
        }
    }

    /// The exemptions that need no store, cheapest first. Those that
    /// depend on who the user is need an account NSS knows; the service's
    /// own switch and trusted networks do not.
    async fn local_skip(&self) -> Option<SkipReason> {
        let b = &self.begin;
        let p = &self.policy;
        if !p.enabled {
            return Some(SkipReason::ServiceNotEnabled);
        }
        if policy::trusted_network(p, b.rhost.as_deref()) {
            return Some(SkipReason::TrustedNetwork);
        }
        if self.known && (!p.exempt_users.is_empty() || !p.exempt_groups.is_empty()) {
            let (p2, user) = (p.clone(), b.user.clone());
            return tokio::task::spawn_blocking(move || policy::exemption(&p2, &user))
                .await
                .unwrap_or(None);
        }
        None
    }
}
