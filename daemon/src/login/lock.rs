//! What a lockout of SMS codes does to a login. Wrong SMS codes from
//! someone who knows only the user name must not lock the owner out: when
//! the service allows backup codes and the user has some (and their own
//! budget is not spent), the login gets a backup-only challenge instead of
//! a refusal. And the owner is told, once per lockout, by a notice to the
//! phone.

use super::{human_secs, Login, Next};
use crate::notice;
use crate::reply::store_failed;
use crate::rules::challenge::Step;
use crate::state::{Runtime, State};
use crate::store::{ChallengeOutcome, ChallengeQuery, Number, SendKind};
use smsotp_config::Mobile;
use smsotp_proto::Response;
use std::sync::Arc;
use tracing::warn;

impl Login {
    /// SMS codes are locked until `until` (as the store transaction `out`
    /// found): a backup-only challenge when a backup code can still
    /// complete the login, `Locked` otherwise. `tell`: this request holds
    /// the lockout's one notice, to that number.
    pub(super) fn sms_locked(
        &mut self,
        state: &State,
        rt: &Runtime,
        out: &ChallengeOutcome,
        until: i64,
        tell: Option<Mobile>,
    ) -> Response {
        let secs = (until - out.now).max(1) as u64;
        let b = &self.begin;
        audit!(
            warn,
            "locked",
            b,
            retry_after_secs = secs,
            "SMS codes are locked for this user"
        );
        if let Some(mobile) = tell {
            // In the background: a notice must not slow or decide a login.
            let body = lockout_notice(&rt.hostname, b.rhost.as_deref(), until);
            let (rt, user) = (state.runtime(), b.user.clone());
            tokio::spawn(async move {
                notice::send(&rt, &user, &mobile, body, "lockout_notice").await;
            });
        }
        if let Some(a) = self.active.as_mut() {
            a.challenge.succeed();
        }
        if out.backup_left > 0 && out.backup_locked_until.is_none() {
            let notice = format!("SMS codes are locked for {}", human_secs(secs));
            return self.open_backup_only(rt, notice);
        }
        Response::Locked {
            retry_after_secs: secs,
        }
    }

    /// A guess hit the lock in the middle of a challenge: one more
    /// transaction (it only looks: nothing is reserved) claims the
    /// owner's notice and reads the backup codes. The connection stays
    /// open only for the backup-only challenge.
    pub(super) async fn sms_locked_mid_challenge(
        &mut self,
        state: &Arc<State>,
        rt: &Runtime,
        until: i64,
    ) -> (Response, Next) {
        let mobile = self.active.as_ref().and_then(|a| a.mobile.clone());
        let verified = self.verified_number();
        let query = ChallengeQuery {
            grace: None,
            opt_out_counts: false,
            number: match (&mobile, verified) {
                (Some(m), true) => Number::Given(m),
                _ => Number::Stored,
            },
            backup_counts: self.backup_counts(rt),
            send_without_number: false,
            reserve: false,
            notice: verified,
            send: self.send_request(rt, SendKind::First),
        };
        let out = match state.store.challenge(query).await {
            Ok(out) => out,
            Err(e) => return (store_failed(e), Next::Close),
        };
        let (until, tell) = match out.step {
            Step::Locked { until, notify } => (until, if notify { mobile } else { None }),
            _ => (until, None),
        };
        match self.sms_locked(state, rt, &out, until, tell) {
            resp @ Response::Challenge(_) => (resp, Next::Continue),
            resp => (resp, Next::Close),
        }
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
