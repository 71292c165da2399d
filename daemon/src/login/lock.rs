//! What a lockout of SMS codes does to a login. Wrong SMS codes from
//! someone who knows only the user name must not lock the owner out: when
//! the service allows backup codes and the user has some (and their own
//! budget is not spent), the login gets a backup-only challenge instead of
//! a refusal. And the owner is told, once per lockout, by a notice to the
//! phone.

use super::{human_secs, internal, Login, Next};
use crate::notice;
use crate::state::{Runtime, State};
use crate::store::{unix_now, StoreError};
use smsotp_proto::Response;
use std::sync::Arc;
use tracing::warn;

impl Login {
    /// SMS codes are locked until `until`: a backup-only challenge when a
    /// backup code can still complete the login, `Locked` otherwise.
    pub(super) async fn sms_locked(
        &mut self,
        state: &Arc<State>,
        rt: &Runtime,
        until: i64,
    ) -> Result<Response, StoreError> {
        let now = unix_now();
        let secs = (until - now).max(1) as u64;
        let b = &self.begin;
        audit!(
            warn,
            "locked",
            b,
            retry_after_secs = secs,
            "SMS codes are locked for this user"
        );
        self.tell_owner(state, rt).await?;
        if let Some(a) = self.active.as_mut() {
            a.challenge.succeed();
        }
        if self.backup_available(state, rt).await?
            && state
                .store
                .backup_locked_until(&self.begin.user, now)
                .await?
                .is_none()
        {
            let notice = format!("SMS codes are locked for {}", human_secs(secs));
            return Ok(self.open_backup_only(rt, notice));
        }
        Ok(Response::Locked {
            retry_after_secs: secs,
        })
    }

    /// [`sms_locked`](Self::sms_locked) in the middle of a challenge
    /// (a guess or a resend hit the lock): the connection stays open only
    /// for the backup-only challenge.
    pub(super) async fn sms_locked_mid_challenge(
        &mut self,
        state: &Arc<State>,
        rt: &Runtime,
        until: i64,
    ) -> (Response, Next) {
        match self.sms_locked(state, rt, until).await {
            Err(e) => (internal(e), Next::Close),
            Ok(resp @ Response::Challenge(_)) => (resp, Next::Continue),
            Ok(resp) => (resp, Next::Close),
        }
    }

    /// Sends the lockout notice if this session is the one to send it
    /// (the store hands the claim to exactly one per lockout), in the
    /// background: a notice must not slow or decide a login.
    async fn tell_owner(&self, state: &Arc<State>, rt: &Runtime) -> Result<(), StoreError> {
        let Some(mobile) = self.known_mobile(state, rt).await? else {
            return Ok(());
        };
        let user = self.begin.user.clone();
        let Some(until) = state.store.claim_lock_notice(&user, unix_now()).await? else {
            return Ok(());
        };
        let body = lockout_notice(&rt.hostname, self.begin.rhost.as_deref(), until);
        let rt = state.runtime();
        tokio::spawn(async move {
            notice::send(&rt, &user, &mobile, body, "lockout_notice").await;
        });
        Ok(())
    }
}

/// The notice text. No secret in it; the remote host is the caller's
/// word (a reverse-DNS name, perhaps), so only host-name characters of it
/// go into an SMS, and not too many.
pub fn lockout_notice(host: &str, rhost: Option<&str>, until: i64) -> String {
    let from: String = rhost
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '_'))
        .take(64)
        .collect();
    let from = if from.is_empty() {
        String::new()
    } else {
        format!(" from {from}")
    };
    let when = time::OffsetDateTime::from_unix_timestamp(until)
        .map(|t| format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute()))
        .unwrap_or_else(|_| "later".into());
    format!(
        "Wrong codes were entered for your account on {host}{from}; SMS codes are locked until {when}. \
         If this was not you, tell your administrator."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_names_host_rhost_and_the_end_of_the_lock() {
        // 2026-12-01 23:05:00 UTC
        let until = 1_796_166_300;
        assert_eq!(
            lockout_notice("web1", Some("203.0.113.9"), until),
            "Wrong codes were entered for your account on web1 from 203.0.113.9; \
             SMS codes are locked until 2026-12-01 23:05 UTC. \
             If this was not you, tell your administrator."
        );
        assert!(lockout_notice("web1", None, until).contains("on web1; SMS codes"));
        // Whatever the remote host says, only name characters get through.
        let odd = lockout_notice("web1", Some("evil\nCALL +1555 now!"), until);
        assert!(odd.contains(" from evilCALL1555now;"), "{odd}");
    }
}
