//! `type = "twilio"`: Twilio Programmable Messaging, "Create a Message".

use super::common::{self, HttpTransport, RawResilience, Resilience};
use super::provider_name;
use super::secret::{self, RawSecret, SecretRef};
use crate::error::Invalid;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

pub const TWILIO_API_BASE: &str = "https://api.twilio.com";

#[derive(Debug, Clone)]
pub struct TwilioConfig {
    pub name: String,
    /// Without trailing slash; requests go to
    /// `{api_base}/2010-04-01/Accounts/{account_sid}/Messages.json`.
    pub api_base: String,
    /// `AC` + 32 hex digits. Not a secret (it is in every URL), but the
    /// path it appears in is never logged whole anyway.
    pub account_sid: String,
    pub auth: TwilioAuth,
    /// `From`: a Twilio number, short code or alphanumeric sender ID.
    pub from: Option<String>,
    /// `MessagingServiceSid` (`MG` + 32 hex); Twilio picks the sender.
    pub messaging_service_sid: Option<String>,
    /// Fixed `ValidityPeriod`; `None`: the code's own expiry when the
    /// caller gives it (a code delivered after it expired is useless).
    pub validity_period: Option<Duration>,
    pub resilience: Resilience,
    pub transport: HttpTransport,
}

#[derive(Debug, Clone)]
pub enum TwilioAuth {
    /// Basic auth with the Account SID and its auth token.
    AuthToken(SecretRef),
    /// Basic auth with an API key (`SK` + 32 hex) and its secret: can be
    /// revoked on its own, the better choice for a server.
    ApiKey { sid: String, secret: SecretRef },
}

impl TwilioAuth {
    pub fn secret(&self) -> &SecretRef {
        match self {
            TwilioAuth::AuthToken(s) => s,
            TwilioAuth::ApiKey { secret, .. } => secret,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTwilio {
    pub name: Option<String>,
    pub api_base: Option<String>,
    pub account_sid: String,
    pub auth_token: Option<String>,
    pub auth_token_file: Option<PathBuf>,
    pub auth_token_credential: Option<String>,
    pub api_key_sid: Option<String>,
    pub api_key_secret: Option<String>,
    pub api_key_secret_file: Option<PathBuf>,
    pub api_key_secret_credential: Option<String>,
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub validity_period_seconds: Option<i64>,
    pub timeout_seconds: Option<i64>,
    pub retries: Option<i64>,
    pub retry_backoff_ms: Option<i64>,
    pub breaker_failures: Option<i64>,
    pub breaker_cooldown_seconds: Option<i64>,
    pub ca_file: Option<PathBuf>,
    pub proxy: Option<String>,
}

/// `PREFIX` + 32 hex digits, as the spec's patterns say.
pub(super) fn sid(key: &str, value: &str, prefix: &str, what: &str) -> Result<String, Invalid> {
    let ok = value.len() == 34
        && value.starts_with(prefix)
        && value[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if !ok {
        return Err(Invalid::new(
            key,
            format!("must be a Twilio {what}: {prefix} followed by 32 hex digits"),
        ));
    }
    Ok(value.to_string())
}

pub(crate) fn validate(i: usize, raw: RawTwilio) -> Result<TwilioConfig, Invalid> {
    let key = |k: &str| format!("provider[{i}].{k}");
    let account_sid = sid(&key("account_sid"), &raw.account_sid, "AC", "Account SID")?;
    let auth = auth(
        &key,
        RawSecret {
            inline: raw.auth_token,
            file: raw.auth_token_file,
            credential: raw.auth_token_credential,
        },
        raw.api_key_sid,
        RawSecret {
            inline: raw.api_key_secret,
            file: raw.api_key_secret_file,
            credential: raw.api_key_secret_credential,
        },
    )?;
    let from = raw
        .from
        .map(|f| common::sender(&key("from"), &f))
        .transpose()?;
    let messaging_service_sid = raw
        .messaging_service_sid
        .map(|s| {
            sid(
                &key("messaging_service_sid"),
                &s,
                "MG",
                "Messaging Service SID",
            )
        })
        .transpose()?;
    if from.is_none() && messaging_service_sid.is_none() {
        return Err(Invalid::new(
            key("from"),
            "is required unless messaging_service_sid is set",
        ));
    }
    let validity_period = match raw.validity_period_seconds {
        None => None,
        Some(v) => Some(Duration::from_secs(crate::validate::in_range(
            &key("validity_period_seconds"),
            Some(v),
            v,
            1,
            36000,
        )? as u64)),
    };
    let api_base = common::secure_url(
        &key("api_base"),
        raw.api_base.as_deref().unwrap_or(TWILIO_API_BASE),
        "the auth token",
    )?;
    Ok(TwilioConfig {
        name: provider_name(&key("name"), raw.name, "twilio")?,
        api_base,
        account_sid,
        auth,
        from,
        messaging_service_sid,
        validity_period,
        resilience: RawResilience {
            timeout_seconds: raw.timeout_seconds,
            retries: raw.retries,
            retry_backoff_ms: raw.retry_backoff_ms,
            breaker_failures: raw.breaker_failures,
            breaker_cooldown_seconds: raw.breaker_cooldown_seconds,
        }
        .validate(key, 10)?,
        transport: common::transport(key, raw.ca_file, raw.proxy)?,
    })
}

/// The auth token, or an API key SID with its secret: exactly one. Shared
/// by the messaging and the voice (`twilio-voice`) entries.
pub(super) fn auth(
    key: &dyn Fn(&str) -> String,
    token: RawSecret,
    api_key_sid: Option<String>,
    key_secret: RawSecret,
) -> Result<TwilioAuth, Invalid> {
    let token = secret::validate(&key("auth_token"), token, false)?;
    let key_secret = secret::validate(&key("api_key_secret"), key_secret, false)?;
    Ok(match (token, api_key_sid, key_secret) {
        (Some(t), None, None) => TwilioAuth::AuthToken(t),
        (None, Some(s), Some(secret)) => TwilioAuth::ApiKey {
            sid: sid(&key("api_key_sid"), &s, "SK", "API key SID")?,
            secret,
        },
        (None, Some(_), None) => {
            return Err(Invalid::new(
                key("api_key_secret"),
                "is required with api_key_sid (api_key_secret_file or api_key_secret_credential)",
            ))
        }
        (None, None, Some(_)) => {
            return Err(Invalid::new(
                key("api_key_sid"),
                "is required with api_key_secret",
            ))
        }
        (Some(_), _, _) => {
            return Err(Invalid::new(
                key("auth_token"),
                "set either auth_token* or api_key_sid with api_key_secret*, not both",
            ))
        }
        (None, None, None) => {
            return Err(Invalid::new(
                key("auth_token"),
                "is required: set auth_token_file (or auth_token_credential), or api_key_sid with api_key_secret_file",
            ))
        }
    })
}
