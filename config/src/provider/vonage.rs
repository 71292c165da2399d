//! `type = "vonage"`: the Vonage (Nexmo) SMS API, `POST /sms/json`.

use super::common::{self, HttpTransport, RawResilience, Resilience};
use super::provider_name;
use super::secret::{self, RawSecret, SecretRef};
use crate::error::Invalid;
use serde::Deserialize;
use std::path::PathBuf;

pub const VONAGE_API_BASE: &str = "https://rest.nexmo.com";

#[derive(Debug, Clone)]
pub struct VonageConfig {
    pub name: String,
    /// Without trailing slash; requests go to `{api_base}/sms/json`.
    pub api_base: String,
    /// The 8-character API key (an account identifier, sent with every
    /// request; not a secret on its own).
    pub api_key: String,
    pub api_secret: SecretRef,
    /// `from`: a number (digits, no `+`) or an alphanumeric sender ID.
    pub from: String,
    pub resilience: Resilience,
    pub transport: HttpTransport,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVonage {
    pub name: Option<String>,
    pub api_base: Option<String>,
    pub api_key: String,
    pub api_secret: Option<String>,
    pub api_secret_file: Option<PathBuf>,
    pub api_secret_credential: Option<String>,
    pub from: String,
    pub timeout_seconds: Option<i64>,
    pub retries: Option<i64>,
    pub retry_backoff_ms: Option<i64>,
    pub breaker_failures: Option<i64>,
    pub breaker_cooldown_seconds: Option<i64>,
    pub ca_file: Option<PathBuf>,
    pub proxy: Option<String>,
}

pub(crate) fn validate(i: usize, raw: RawVonage) -> Result<VonageConfig, Invalid> {
    let key = |k: &str| format!("provider[{i}].{k}");
    // The spec fixes the key at 8 characters (minLength = maxLength = 8).
    if raw.api_key.len() != 8 || !raw.api_key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Invalid::new(
            key("api_key"),
            "must be the 8-character Vonage API key (letters and digits)",
        ));
    }
    let api_secret = secret::validate(
        &key("api_secret"),
        RawSecret {
            inline: raw.api_secret,
            file: raw.api_secret_file,
            credential: raw.api_secret_credential,
        },
        true,
    )?
    .ok_or_else(|| Invalid::new(key("api_secret"), "is required"))?;
    let from = common::sender(&key("from"), &raw.from)?;
    // Vonage wants numbers without the '+'.
    let from = from.strip_prefix('+').map(str::to_string).unwrap_or(from);
    let api_base = common::secure_url(
        &key("api_base"),
        raw.api_base.as_deref().unwrap_or(VONAGE_API_BASE),
        "the API secret",
    )?;
    Ok(VonageConfig {
        name: provider_name(&key("name"), raw.name, "vonage")?,
        api_base,
        api_key: raw.api_key,
        api_secret,
        from,
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
