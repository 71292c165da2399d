//! `type = "webhook"`: the Asgardeo-style SMS OTP notification event,
//! POSTed as JSON to a receiver that sends the SMS itself, signed with
//! HMAC-SHA256 so the receiver can check origin and freshness.

use super::common::{self, HttpTransport, RawResilience, Resilience};
use super::provider_name;
use super::secret::{self, RawSecret, SecretRef};
use crate::error::Invalid;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub name: String,
    pub url: String,
    /// HMAC-SHA256 key shared with the receiver.
    pub secret: SecretRef,
    /// `securityData.iss`.
    pub issuer: String,
    /// `securityData.aud`; defaults to the URL.
    pub audience: String,
    /// `eventData.organizationName`, for receivers written against the
    /// Asgardeo event that expect it.
    pub organization: Option<String>,
    pub resilience: Resilience,
    pub transport: HttpTransport,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub name: Option<String>,
    pub url: String,
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub secret_credential: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub organization: Option<String>,
    pub timeout_seconds: Option<i64>,
    pub retries: Option<i64>,
    pub retry_backoff_ms: Option<i64>,
    pub breaker_failures: Option<i64>,
    pub breaker_cooldown_seconds: Option<i64>,
    pub ca_file: Option<PathBuf>,
    pub proxy: Option<String>,
}

fn text(key: &str, v: Option<String>, default: &str) -> Result<String, Invalid> {
    let v = v.unwrap_or_else(|| default.to_string());
    if v.is_empty() || v.len() > 256 || v.chars().any(char::is_control) {
        return Err(Invalid::new(key, "must be 1 to 256 printable characters"));
    }
    Ok(v)
}

pub(crate) fn validate(i: usize, raw: RawWebhook) -> Result<WebhookConfig, Invalid> {
    let key = |k: &str| format!("provider[{i}].{k}");
    // The body carries the number and the code: https, or localhost only.
    let url = common::secure_url(&key("url"), &raw.url, "the code")?;
    // Keep the URL exactly as written (trailing slash and all): receivers
    // route on it.
    let url = if raw.url.ends_with('/') {
        raw.url.clone()
    } else {
        url
    };
    let secret = secret::validate(
        &key("secret"),
        RawSecret {
            inline: raw.secret,
            file: raw.secret_file,
            credential: raw.secret_credential,
        },
        true,
    )?
    .ok_or_else(|| Invalid::new(key("secret"), "is required"))?;
    let audience = text(&key("audience"), raw.audience, &url)?;
    let organization = raw
        .organization
        .map(|o| text(&key("organization"), Some(o), ""))
        .transpose()?;
    Ok(WebhookConfig {
        name: provider_name(&key("name"), raw.name, "webhook")?,
        url,
        secret,
        issuer: text(&key("issuer"), raw.issuer, "smsotp")?,
        audience,
        organization,
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
