//! Checking an answer. Each guess is paid for before it is checked, from
//! the budget of its kind: SMS codes from the SMS budget (`[lockout]
//! max_failures`), backup codes from their own (`backup_max_failures`), so
//! burning one leaves the other whole.
//!
//! An SMS code takes one store transaction: charge, settle, stamp the
//! success (and store an enrolled number), the lock state after. A backup
//! code takes two, so argon2 never runs inside one: charge and fetch the
//! hash, verify through the hashing slots, then spend, settle, count and
//! stamp.

use super::{bad_request, Active, Kind, Login, Next};
use crate::backup;
use crate::otp::Outcome;
use crate::policy;
use crate::reply::store_failed as internal;
use crate::state::{Runtime, State};
use crate::store::{BackupCharge, BackupSettle, Guess, GuessQuery};
use smsotp_proto::{ErrorKind, Response, VerifyMethod};
use std::sync::Arc;
use std::time::Instant;
use tracing::{info, warn};

/// What the user is told when root set a number while they enrolled.
const ENROL_RACE: &str =
    "a number was registered for this account while you were enrolling; log in again";

impl Login {
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
        match backup_input {
            Some((id, secret)) => self.verify_backup(state, &rt, &id, &secret).await,
            None => self.verify_sms(state, &rt, code).await,
        }
    }

    async fn verify_sms(
        &mut self,
        state: &Arc<State>,
        rt: &Runtime,
        code: &str,
    ) -> (Response, Next) {
        if self.kind() == Some(Kind::BackupOnly) {
            // Not a backup code, and there is no SMS code: nothing it
            // could match, so no budget to pay. It costs a try here.
            let outcome = self.challenge_fail();
            return self.settle(rt, outcome, VerifyMethod::Sms, None, None);
        }
        // The in-memory check first (microseconds); its verdict counts
        // only if the store grants the charge, in the same transaction
        // that settles it. Unknown users behind a fake challenge pay too:
        // a budget that only real users hit would tell who exists. A fake
        // challenge has no code: this is always wrong.
        let outcome = match self.active.as_mut() {
            Some(a) => a.challenge.verify(&state.hasher, code, Instant::now()),
            None => Outcome::Spent,
        };
        let right = outcome == Outcome::Verified;
        let grace = self.grace_context(rt);
        let enrol = self.enrolling_number();
        // users.toml as it is now (a reload may have added the user): an
        // enrolment never overrides it, and is then no success.
        let in_users_file =
            enrol.is_some() && state.runtime().users.mobile(&self.begin.user).is_some();
        let query = GuessQuery {
            user: &self.begin.user,
            lockout: &rt.config.lockout,
            right,
            grace: if in_users_file {
                None
            } else {
                grace.as_deref()
            },
            enrol: if in_users_file {
                None
            } else {
                enrol.as_deref()
            },
        };
        let (lock, enrolled) = match state.store.guess(query).await {
            Err(e) => return (internal(e), Next::Close),
            Ok(Guess::Locked { until, .. }) => {
                return self.sms_locked_mid_challenge(state, rt, until).await
            }
            Ok(Guess::Judged { lock, enrolled, .. }) => (lock, enrolled),
        };
        if let (Outcome::Wrong { .. } | Outcome::Exhausted, Some(until)) =
            (outcome, lock.locked_until)
        {
            // The wrong guess used the user's last one. It was checked:
            // the audit says so, whatever comes next.
            self.audit_wrong(outcome, VerifyMethod::Sms);
            return self.sms_locked_mid_challenge(state, rt, until).await;
        }
        let enrolled = if in_users_file { Some(false) } else { enrolled };
        self.settle(rt, outcome, VerifyMethod::Sms, None, enrolled)
    }

    async fn verify_backup(
        &mut self,
        state: &Arc<State>,
        rt: &Runtime,
        id: &str,
        secret: &str,
    ) -> (Response, Next) {
        let lockout = rt.config.lockout;
        let user = self.begin.user.clone();
        let backup_only = self.kind() == Some(Kind::BackupOnly);
        let hash = match state.store.backup_charge(&user, id, &lockout).await {
            Err(e) => return (internal(e), Next::Close),
            Ok(BackupCharge::Locked { now, until }) => {
                let b = &self.begin;
                audit!(
                    warn,
                    "backup_locked",
                    b,
                    "backup code refused: backup codes are locked"
                );
                if backup_only {
                    return self.backup_locked(until, now);
                }
                // An SMS code may still complete this login.
                let outcome = self.challenge_fail();
                return self.settle(rt, outcome, VerifyMethod::BackupCode, None, None);
            }
            Ok(BackupCharge::Granted { hash }) => hash,
        };
        // Outside any transaction, through the daemon-wide argon2 slots,
        // where a flood of generations can hold at most one.
        let matched = match hash {
            Some(hash) => {
                let secret = zeroize::Zeroizing::new(secret.to_string());
                state.hashing.verify(secret, hash).await
            }
            None => false,
        };
        let grace = self.grace_context(rt);
        let settled = match state
            .store
            .backup_settle(BackupSettle {
                user: &user,
                id,
                lockout: &lockout,
                matched,
                grace: grace.as_deref(),
            })
            .await
        {
            Err(e) => return (internal(e), Next::Close),
            Ok(s) => s,
        };
        // Exactly one of concurrent uses of a code spends it.
        let (outcome, left) = if settled.spent {
            if let Some(a) = self.active.as_mut() {
                a.challenge.succeed();
            }
            (Outcome::Verified, Some(settled.left))
        } else {
            (self.challenge_fail(), None)
        };
        if !settled.spent && backup_only {
            if let Some(until) = settled.locked_until {
                return self.backup_locked(until, settled.now);
            }
        }
        self.settle(rt, outcome, VerifyMethod::BackupCode, left, None)
    }

    /// The grace context a success here is stamped with, if grace is on.
    fn grace_context(&self, rt: &Runtime) -> Option<String> {
        let b = &self.begin;
        if self.policy.grace.is_zero() {
            return None;
        }
        policy::grace_context(
            &rt.hostname,
            &b.service,
            b.rhost.as_deref(),
            b.tty.as_deref(),
        )
    }

    /// The typed number to store once the code is right.
    fn enrolling_number(&self) -> Option<String> {
        match &self.active {
            Some(Active {
                kind: Kind::Enrolling { store: true },
                mobile: Some(m),
                ..
            }) => Some(m.e164().to_string()),
            _ => None,
        }
    }

    fn kind(&self) -> Option<Kind> {
        self.active.as_ref().map(|a| a.kind)
    }

    /// A wrong guess checked elsewhere costs a try on this challenge.
    fn challenge_fail(&mut self) -> Outcome {
        self.active
            .as_mut()
            .map_or(Outcome::Spent, |a| a.challenge.fail_attempt())
    }

    /// Backup codes are locked and nothing else can complete the login.
    fn backup_locked(&mut self, until: i64, now: i64) -> (Response, Next) {
        if let Some(a) = self.active.as_mut() {
            a.challenge.succeed();
        }
        let secs = (until - now).max(1) as u64;
        let b = &self.begin;
        audit!(
            warn,
            "locked",
            b,
            retry_after_secs = secs,
            backup = true,
            "backup codes are locked for this user"
        );
        (
            Response::Locked {
                retry_after_secs: secs,
            },
            Next::Close,
        )
    }

    /// The audit line of a checked wrong guess.
    fn audit_wrong(&self, outcome: Outcome, method: VerifyMethod) {
        let b = &self.begin;
        if let Outcome::Wrong { .. } | Outcome::Exhausted = outcome {
            let backup = method == VerifyMethod::BackupCode;
            crate::metrics::guess_failed(backup, outcome == Outcome::Exhausted);
        }
        match outcome {
            Outcome::Wrong { attempts_left } => audit!(
                info,
                "wrong_code",
                b,
                attempts_left,
                backup = (method == VerifyMethod::BackupCode),
                "wrong code"
            ),
            Outcome::Exhausted => audit!(
                warn,
                "tries_exhausted",
                b,
                "no tries left on this challenge"
            ),
            _ => {}
        }
    }

    /// The answer for a judged guess. `enrolled`: whether the store took
    /// the number typed at enrolment (`None`: no enrolment).
    fn settle(
        &mut self,
        rt: &Runtime,
        outcome: Outcome,
        method: VerifyMethod,
        left: Option<u32>,
        enrolled: Option<bool>,
    ) -> (Response, Next) {
        match outcome {
            Outcome::Verified => {
                if let Some(refusal) = self.on_success(rt, method, enrolled) {
                    return (refusal, Next::Close);
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
                self.audit_wrong(outcome, method);
                (Response::Wrong { attempts_left }, Next::Continue)
            }
            Outcome::Exhausted => {
                self.audit_wrong(outcome, method);
                (Response::TriesExhausted, Next::Close)
            }
            Outcome::Expired | Outcome::Spent => {
                (bad_request("this challenge is over"), Next::Close)
            }
        }
    }

    /// The audit of a right code (its bookkeeping is already committed).
    /// `Some(refusal)` when the login must still fail: an enrolment whose
    /// number was set by root meanwhile.
    fn on_success(
        &mut self,
        rt: &Runtime,
        method: VerifyMethod,
        enrolled: Option<bool>,
    ) -> Option<Response> {
        let b = &self.begin;
        match (enrolled, &self.active) {
            (Some(false), _) => {
                audit!(
                    warn,
                    "enroll_refused",
                    b,
                    "a number was registered while the user enrolled; login refused"
                );
                return Some(Response::Error {
                    kind: ErrorKind::PermissionDenied,
                    message: ENROL_RACE.into(),
                });
            }
            (
                Some(true),
                Some(Active {
                    mobile: Some(m), ..
                }),
            ) => {
                audit!(info, "enrolled", b, to = %rt.log_mobile(m), "number enrolled at login");
            }
            _ => {}
        }
        match method {
            VerifyMethod::Sms => audit!(info, "verified", b, method = "sms", "code verified"),
            VerifyMethod::BackupCode => audit!(info, "backup_code_used", b, "backup code accepted"),
        }
        None
    }
}
