//! Notices to the user's phone about their account (not codes): a lockout
//! after wrong codes, a new set of backup codes. They tell the owner of the
//! number that someone is at work on the account, so the texts carry no
//! secret and each kind is sent at most once per event that causes it
//! (callers decide when; this module only sends and audits).

use crate::providers::{SendMeta, Sms};
use crate::send::{deliver, Failure};
use crate::state::Runtime;
use smsotp_config::Mobile;
use tracing::{info, warn};

/// Sends `body` to `mobile` through the provider chain, within the same
/// budget a code gets. Failure is logged, never fatal: a notice must not
/// decide a login. `event` names the notice in the audit log
/// (`lockout_notice`, `backup_codes_notice`).
pub async fn send(
    rt: &Runtime,
    user: &str,
    mobile: &Mobile,
    body: String,
    event: &'static str,
) -> bool {
    let sms = Sms {
        to: mobile.clone(),
        body: zeroize::Zeroizing::new(body),
    };
    let meta = SendMeta {
        validity: None,
        host: Some(rt.hostname.clone()),
        service: Some("smsotpd".into()),
        deadline: None,
        // No code to spell: a voice provider reads the text.
        spoken: None,
    };
    let to = rt.log_mobile(mobile);
    match deliver(rt, &sms, meta).await {
        Ok(delivery) => {
            info!(event, user, to = %to, provider = %delivery.provider, "notice sent");
            true
        }
        Err(Failure::Chain(e)) => {
            warn!(event, user, to = %to, error = %e, "notice could not be sent");
            false
        }
        Err(Failure::Timeout) => {
            warn!(event, user, to = %to, "notice not sent within the send budget");
            false
        }
    }
}
