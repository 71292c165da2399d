//! Checking an answer. Each guess is paid for before it is checked, from
//! the budget of its kind: SMS codes from the SMS budget (`[lockout]
//! max_failures`), backup codes from their own (`backup_max_failures`), so
//! burning one leaves the other whole.

use super::{bad_request, check_backup, internal, Active, Kind, Login, Next};
use crate::backup;
use crate::otp::Outcome;
use crate::policy;
use crate::state::{Runtime, State};
use crate::store::{unix_now, Attempt, Budget, StoreError};
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
        let lockout = rt.config.lockout;
        let user = self.begin.user.clone();
        if self.kind() == Some(Kind::BackupOnly) {
            // Not a backup code, and there is no SMS code: nothing it
            // could match, so no budget to pay. It costs a try here.
            let outcome = self.challenge_fail();
            return self
                .settle(state, rt, outcome, VerifyMethod::Sms, None)
                .await;
        }
        // The user's budget pays for the guess before it is checked.
        // Unknown users behind a fake challenge pay too: a budget that only
        // real users hit would tell an attacker who exists.
        match state
            .store
            .begin_attempt(Budget::Sms, &user, unix_now(), &lockout)
            .await
        {
            Err(e) => return (internal(e), Next::Close),
            Ok(Attempt::Locked { until }) => {
                return self.sms_locked_mid_challenge(state, rt, until).await
            }
            Ok(Attempt::Granted) => {}
        }
        let outcome = match self.active.as_mut() {
            // A fake challenge has no code: this is always wrong.
            Some(a) => a.challenge.verify(&state.hasher, code, Instant::now()),
            None => Outcome::Spent,
        };
        let right = outcome == Outcome::Verified;
        if let Err(e) = state
            .store
            .finish_attempt(Budget::Sms, &user, right, unix_now(), &lockout)
            .await
        {
            return (internal(e), Next::Close);
        }
        if let Outcome::Wrong { .. } | Outcome::Exhausted = outcome {
            // The wrong guess may have used the user's last one.
            match state.store.lock_state(&user, unix_now()).await {
                Err(e) => return (internal(e), Next::Close),
                Ok(st) => {
                    if let Some(until) = st.locked_until {
                        // It was checked: the audit says so, whatever comes next.
                        self.audit_wrong(outcome, VerifyMethod::Sms);
                        return self.sms_locked_mid_challenge(state, rt, until).await;
                    }
                }
            }
        }
        self.settle(state, rt, outcome, VerifyMethod::Sms, None)
            .await
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
        match state
            .store
            .begin_attempt(Budget::Backup, &user, unix_now(), &lockout)
            .await
        {
            Err(e) => return (internal(e), Next::Close),
            Ok(Attempt::Locked { until }) => {
                let b = &self.begin;
                audit!(
                    warn,
                    "backup_locked",
                    b,
                    "backup code refused: backup codes are locked"
                );
                if backup_only {
                    return self.backup_locked(until);
                }
                // An SMS code may still complete this login.
                let outcome = self.challenge_fail();
                return self
                    .settle(state, rt, outcome, VerifyMethod::BackupCode, None)
                    .await;
            }
            Ok(Attempt::Granted) => {}
        }
        let (outcome, left) = match check_backup(state, &user, id, secret).await {
            Err(e) => return (internal(e), Next::Close),
            Ok(Some(left)) => {
                if let Some(a) = self.active.as_mut() {
                    a.challenge.succeed();
                }
                (Outcome::Verified, Some(left))
            }
            Ok(None) => (self.challenge_fail(), None),
        };
        let right = outcome == Outcome::Verified;
        if let Err(e) = state
            .store
            .finish_attempt(Budget::Backup, &user, right, unix_now(), &lockout)
            .await
        {
            return (internal(e), Next::Close);
        }
        if !right && backup_only {
            match state.store.backup_locked_until(&user, unix_now()).await {
                Err(e) => return (internal(e), Next::Close),
                Ok(Some(until)) => return self.backup_locked(until),
                Ok(None) => {}
            }
        }
        self.settle(state, rt, outcome, VerifyMethod::BackupCode, left)
            .await
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
    fn backup_locked(&mut self, until: i64) -> (Response, Next) {
        if let Some(a) = self.active.as_mut() {
            a.challenge.succeed();
        }
        let secs = (until - unix_now()).max(1) as u64;
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

    /// The answer for a judged guess.
    async fn settle(
        &mut self,
        state: &Arc<State>,
        rt: &Runtime,
        outcome: Outcome,
        method: VerifyMethod,
        left: Option<u32>,
    ) -> (Response, Next) {
        match outcome {
            Outcome::Verified => {
                match self.on_success(state, rt, method).await {
                    Err(e) => return (internal(e), Next::Close),
                    Ok(Some(refusal)) => return (refusal, Next::Close),
                    Ok(None) => {}
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

    /// Bookkeeping of a right code. `Some(refusal)` when the login must
    /// still fail: an enrolment whose number was set by root meanwhile.
    async fn on_success(
        &mut self,
        state: &Arc<State>,
        rt: &Runtime,
        method: VerifyMethod,
    ) -> Result<Option<Response>, StoreError> {
        let b = &self.begin;
        let now = unix_now();
        if let Some(Active {
            kind: Kind::Enrolling { store: true },
            mobile: Some(m),
            ..
        }) = &self.active
        {
            // users.toml as it is now (a reload may have added the user),
            // then the store, atomically: never overwrite a number.
            let in_users_file = state.runtime().users.mobile(&b.user).is_some();
            if in_users_file
                || !state
                    .store
                    .add_mobile_if_none(&b.user, m.e164(), now)
                    .await?
            {
                audit!(
                    warn,
                    "enroll_refused",
                    b,
                    "a number was registered while the user enrolled; login refused"
                );
                return Ok(Some(Response::Error {
                    kind: ErrorKind::PermissionDenied,
                    message: ENROL_RACE.into(),
                }));
            }
            audit!(info, "enrolled", b, to = %rt.log_mobile(m), "number enrolled at login");
        }
        if !self.policy.grace.is_zero() {
            if let Some(ctx) = policy::grace_context(
                &rt.hostname,
                &b.service,
                b.rhost.as_deref(),
                b.tty.as_deref(),
            ) {
                state.store.record_success(&b.user, &ctx, now).await?;
            }
        }
        match method {
            VerifyMethod::Sms => audit!(info, "verified", b, method = "sms", "code verified"),
            VerifyMethod::BackupCode => audit!(info, "backup_code_used", b, "backup code accepted"),
        }
        Ok(None)
    }
}
