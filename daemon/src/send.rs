//! The send step every SMS shares (login codes, resends, lockout notices,
//! step-up codes, `smsotpctl test-sms`): the provider chain under one
//! deadline. Rendering the login message is here too; what to audit stays
//! with each caller.

use crate::providers::{ChainError, Delivery, Route, SendMeta, Sms};
use crate::state::Runtime;
use smsotp_config::Var;
use std::time::Duration;
use zeroize::Zeroizing;

/// The whole provider chain gets this long to hand a message off. It is
/// below the module's default `timeout=20`, so a slow gateway ends as a
/// clear `SendFailed` rather than as a module timeout, which
/// `failmode=safe` would read as "daemon unreachable" and let through.
pub const SEND_BUDGET: Duration = Duration::from_secs(15);

#[derive(Debug)]
pub enum Failure {
    /// Every provider failed.
    Chain(ChainError),
    /// Not done within [`SEND_BUDGET`].
    Timeout,
}

/// Hands `sms` to the provider chain; `meta.deadline` is set here.
pub async fn deliver(rt: &Runtime, sms: &Sms, meta: SendMeta) -> Result<Delivery, Failure> {
    deliver_via(rt, sms, meta, Route::Any).await
}

/// [`deliver`] through the providers `route` admits (`Route::Voice`: the
/// user typed `v` at the prompt).
pub async fn deliver_via(
    rt: &Runtime,
    sms: &Sms,
    mut meta: SendMeta,
    route: Route,
) -> Result<Delivery, Failure> {
    // Retries and backoff stop in time for the answer to reach the module.
    meta.deadline = Some(tokio::time::Instant::now() + SEND_BUDGET);
    match tokio::time::timeout(SEND_BUDGET, rt.chain.send_via(sms, &meta, route)).await {
        Ok(Ok(delivery)) => Ok(delivery),
        Ok(Err(e)) => Err(Failure::Chain(e)),
        Err(_) => Err(Failure::Timeout),
    }
}

/// What the login message's variables stand for.
pub struct CodeMessage<'a> {
    pub code: &'a str,
    pub expiry: Duration,
    pub service: &'a str,
    pub user: &'a str,
    pub rhost: Option<&'a str>,
    pub command: Option<&'a str>,
}

/// The SMS text of a code. It holds the code: wiped on drop, never logged.
pub fn render_code(rt: &Runtime, m: &CodeMessage<'_>) -> Zeroizing<String> {
    let minutes = m.expiry.as_secs().div_ceil(60);
    let mut body = crate::lang::template(rt, m.user).render(|var, out| match var {
        Var::Code => out.push_str(m.code),
        Var::ExpiryMinutes => out.push_str(&minutes.to_string()),
        Var::Host => out.push_str(&rt.hostname),
        Var::Service => out.push_str(m.service),
        Var::User => out.push_str(m.user),
        Var::Rhost => out.push_str(m.rhost.unwrap_or("")),
        Var::Command => out.push_str(m.command.unwrap_or("")),
        // Not allowed in message templates (checked at load).
        Var::Mobile | Var::Body => {}
    });
    if rt.config.origin_bound {
        // WICG one-time-codes: lets a phone offer the code for autofill
        // only on this host.
        body.push_str(&format!("\n\n@{} #{}", rt.hostname, m.code));
    }
    Zeroizing::new(body)
}
