//! `type = "webhook"`: the Asgardeo-style SMS OTP notification event,
//! POSTed as JSON to a receiver that sends the SMS itself, signed with
//! HMAC-SHA256 so the receiver can check origin and freshness: per the
//! Standard Webhooks specification by default (receivers verify with a
//! published library), or the older `Smsotp-Signature: t=...,v1=...`
//! scheme for receivers written against it.

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
    /// HMAC-SHA256 key shared with the receiver: `whsec_<base64>` for
    /// the standard scheme, any text of 16+ characters for the legacy one.
    pub secret: SecretRef,
    /// The key being rotated out: both signatures are sent until it is
    /// removed, so receivers can move to the new key at their own pace.
    pub previous_secret: Option<SecretRef>,
    pub scheme: SignatureScheme,
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

/// How deliveries are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureScheme {
    /// standardwebhooks.com: `webhook-id`, `webhook-timestamp` and
    /// `webhook-signature: v1,<base64 HMAC of "id.timestamp.body">`.
    Standard,
    /// `Smsotp-Signature: t=<ts>,v1=<hex HMAC of "ts.body">`, the scheme
    /// before Standard Webhooks (`signature_scheme = "smsotp-v1"`).
    SmsotpV1,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub name: Option<String>,
    pub url: String,
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub secret_credential: Option<String>,
    pub previous_secret: Option<String>,
    pub previous_secret_file: Option<PathBuf>,
    pub previous_secret_credential: Option<String>,
    pub signature_scheme: Option<String>,
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
    let previous_secret = secret::validate(
        &key("previous_secret"),
        RawSecret {
            inline: raw.previous_secret,
            file: raw.previous_secret_file,
            credential: raw.previous_secret_credential,
        },
        false,
    )?;
    let scheme = match raw.signature_scheme.as_deref() {
        None | Some("standard") => SignatureScheme::Standard,
        Some("smsotp-v1") => SignatureScheme::SmsotpV1,
        Some(_) => {
            return Err(Invalid::new(
                key("signature_scheme"),
                "must be \"standard\" (Standard Webhooks, the default) or \"smsotp-v1\" \
                 (the older Smsotp-Signature header)",
            ))
        }
    };
    if let (SignatureScheme::SmsotpV1, Some(p)) = (scheme, &previous_secret) {
        // Receivers of the old scheme read one v1 (the documented example
        // keeps the last): a second one would break them, not rotate.
        return Err(Invalid::new(
            p.key.clone(),
            "needs signature_scheme = \"standard\": the smsotp-v1 header carries one signature",
        ));
    }
    let audience = text(&key("audience"), raw.audience, &url)?;
    let organization = raw
        .organization
        .map(|o| text(&key("organization"), Some(o), ""))
        .transpose()?;
    Ok(WebhookConfig {
        name: provider_name(&key("name"), raw.name, "webhook")?,
        url,
        secret,
        previous_secret,
        scheme,
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
