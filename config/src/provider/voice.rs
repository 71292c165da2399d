//! `type = "twilio-voice"` and `type = "vonage-voice"`: a phone call that
//! speaks the code, for numbers SMS does not reach (landlines, some
//! roaming phones and countries). The chain tries them like any provider,
//! in config order, so listed after the SMS providers they are the
//! fallback; the user can also ask for a call at the prompt (`v`).
//!
//! The spoken text is its own template, `voice_message`: a text written
//! for the eye ("code: 123456") is read by a speech engine as "one
//! hundred twenty-three thousand ...". `{{code}}` in it is spoken one
//! character at a time with a pause between (see the daemon's
//! `providers/spoken.rs`).

use super::common::{self, HttpTransport, RawResilience, Resilience};
use super::provider_name;
use super::secret::{self, RawSecret, SecretRef};
use super::twilio::{self, TwilioAuth, TWILIO_API_BASE};
use crate::error::Invalid;
use crate::template::{Template, Var};
use serde::Deserialize;
use std::path::PathBuf;

pub const VONAGE_VOICE_API_BASE: &str = "https://api.nexmo.com";

/// What a voice template may say: the call has no room for the rest, and
/// user, rhost and command would read a stranger's input aloud.
pub const VOICE_VARS: [Var; 4] = [Var::Code, Var::ExpiryMinutes, Var::Host, Var::Service];

/// Spoken twice by every voice provider (the code is the part people
/// miss), so it says "again" only implicitly.
pub const DEFAULT_VOICE_MESSAGE: &str =
    "Your login code for {{host}} is: {{code}}. It expires in {{expiry_minutes}} minutes.";

/// Longest spoken text, after rendering: Vonage's `talk` takes 1500
/// characters, Twilio's `Twiml` 4000 with the markup.
pub const MAX_VOICE_TEXT: usize = 1000;

#[derive(Debug, Clone)]
pub struct VoiceText {
    pub template: Template,
    /// `language` of the speech engine (`en-US`, `de-DE`): BCP 47, as
    /// both APIs take it.
    pub language: String,
}

#[derive(Debug, Clone)]
pub struct TwilioVoiceConfig {
    pub name: String,
    /// Requests go to `{api_base}/2010-04-01/Accounts/{account_sid}/Calls.json`.
    pub api_base: String,
    pub account_sid: String,
    pub auth: TwilioAuth,
    /// `From`: a Twilio voice number in E.164 (calls need a number, not an
    /// alphanumeric sender).
    pub from: String,
    pub voice: VoiceText,
    pub resilience: Resilience,
    pub transport: HttpTransport,
}

#[derive(Debug, Clone)]
pub struct VonageVoiceConfig {
    pub name: String,
    /// Requests go to `{api_base}/v1/calls`.
    pub api_base: String,
    /// The Vonage application's UUID: the JWT's `application_id` claim.
    pub application_id: String,
    /// The application's RSA private key (PEM) the JWT is signed with.
    pub private_key: SecretRef,
    /// `from.number`: digits, no `+`.
    pub from: String,
    pub voice: VoiceText,
    pub resilience: Resilience,
    pub transport: HttpTransport,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTwilioVoice {
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
    pub from: String,
    pub voice_message: Option<String>,
    pub language: Option<String>,
    pub timeout_seconds: Option<i64>,
    pub retries: Option<i64>,
    pub retry_backoff_ms: Option<i64>,
    pub breaker_failures: Option<i64>,
    pub breaker_cooldown_seconds: Option<i64>,
    pub ca_file: Option<PathBuf>,
    pub proxy: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVonageVoice {
    pub name: Option<String>,
    pub api_base: Option<String>,
    pub application_id: String,
    pub private_key: Option<String>,
    pub private_key_file: Option<PathBuf>,
    pub private_key_credential: Option<String>,
    pub from: String,
    pub voice_message: Option<String>,
    pub language: Option<String>,
    pub timeout_seconds: Option<i64>,
    pub retries: Option<i64>,
    pub retry_backoff_ms: Option<i64>,
    pub breaker_failures: Option<i64>,
    pub breaker_cooldown_seconds: Option<i64>,
    pub ca_file: Option<PathBuf>,
    pub proxy: Option<String>,
}

/// Timeout, retries, breaker and transport of a raw voice entry (both
/// have the same keys; `deny_unknown_fields` rules out serde's flatten).
macro_rules! common {
    ($raw:expr, $key:expr) => {
        (
            RawResilience {
                timeout_seconds: $raw.timeout_seconds,
                retries: $raw.retries,
                retry_backoff_ms: $raw.retry_backoff_ms,
                breaker_failures: $raw.breaker_failures,
                breaker_cooldown_seconds: $raw.breaker_cooldown_seconds,
            }
            .validate($key, 10)?,
            common::transport($key, $raw.ca_file, $raw.proxy)?,
        )
    };
}

fn voice_text(
    key: &dyn Fn(&str) -> String,
    template: Option<String>,
    language: Option<String>,
) -> Result<VoiceText, Invalid> {
    let text = template.as_deref().unwrap_or(DEFAULT_VOICE_MESSAGE);
    let template =
        Template::parse(text, &VOICE_VARS).map_err(|e| Invalid::new(key("voice_message"), e))?;
    if !template.uses(Var::Code) {
        return Err(Invalid::new(
            key("voice_message"),
            "must contain {{code}}: the call is for speaking it",
        ));
    }
    let language = language.unwrap_or_else(|| "en-US".into());
    // BCP 47 as the two APIs list it: `xx-YY`, sometimes `xxx-YY`.
    let ok = (5..=8).contains(&language.len())
        && language
            .split('-')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        && language.contains('-');
    if !ok {
        return Err(Invalid::new(
            key("language"),
            "must be a language tag such as en-US or de-DE",
        ));
    }
    Ok(VoiceText { template, language })
}

/// A caller ID must be a number: a call cannot come from "ACME".
fn caller_id(key: &str, raw: &str) -> Result<String, Invalid> {
    let from = common::sender(key, raw)?;
    if !from
        .trim_start_matches('+')
        .bytes()
        .all(|b| b.is_ascii_digit())
    {
        return Err(Invalid::new(
            key,
            "must be a phone number: a call cannot come from an alphanumeric sender ID",
        ));
    }
    Ok(from)
}

pub(crate) fn validate_twilio(i: usize, raw: RawTwilioVoice) -> Result<TwilioVoiceConfig, Invalid> {
    let key = |k: &str| format!("provider[{i}].{k}");
    let account_sid = twilio::sid(&key("account_sid"), &raw.account_sid, "AC", "Account SID")?;
    let auth = twilio::auth(
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
    let from = caller_id(&key("from"), &raw.from)?;
    if !from.starts_with('+') {
        return Err(Invalid::new(key("from"), "must be E.164 (+15551234567)"));
    }
    let api_base = common::secure_url(
        &key("api_base"),
        raw.api_base.as_deref().unwrap_or(TWILIO_API_BASE),
        "the auth token",
    )?;
    let (resilience, transport) = common!(raw, key);
    Ok(TwilioVoiceConfig {
        name: provider_name(&key("name"), raw.name, "twilio-voice")?,
        api_base,
        account_sid,
        auth,
        from,
        voice: voice_text(&key, raw.voice_message, raw.language)?,
        resilience,
        transport,
    })
}

pub(crate) fn validate_vonage(i: usize, raw: RawVonageVoice) -> Result<VonageVoiceConfig, Invalid> {
    let key = |k: &str| format!("provider[{i}].{k}");
    if uuid_shape(&raw.application_id).is_none() {
        return Err(Invalid::new(
            key("application_id"),
            "must be the Vonage application's UUID (8-4-4-4-12 hex digits)",
        ));
    }
    let private_key = secret::validate(
        &key("private_key"),
        RawSecret {
            inline: raw.private_key,
            file: raw.private_key_file,
            credential: raw.private_key_credential,
        },
        true,
    )?
    .ok_or_else(|| Invalid::new(key("private_key"), "is required (private_key_file)"))?;
    let from = caller_id(&key("from"), &raw.from)?;
    let from = from.strip_prefix('+').map(str::to_string).unwrap_or(from);
    let api_base = common::secure_url(
        &key("api_base"),
        raw.api_base.as_deref().unwrap_or(VONAGE_VOICE_API_BASE),
        "the signed token",
    )?;
    let (resilience, transport) = common!(raw, key);
    Ok(VonageVoiceConfig {
        name: provider_name(&key("name"), raw.name, "vonage-voice")?,
        api_base,
        application_id: raw.application_id,
        private_key,
        from,
        voice: voice_text(&key, raw.voice_message, raw.language)?,
        resilience,
        transport,
    })
}

/// `Some(())` for 8-4-4-4-12 hex digits.
fn uuid_shape(s: &str) -> Option<()> {
    let parts: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    (parts.len() == 5
        && parts
            .iter()
            .zip(lens)
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit())))
    .then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> String {
        format!("provider[0].{k}")
    }

    #[test]
    fn voice_text_needs_the_code_and_a_language_tag() {
        assert!(voice_text(&key, None, None).is_ok());
        let e = voice_text(&key, Some("Hello {{host}}".into()), None).unwrap_err();
        assert!(e.message.contains("{{code}}"), "{e:?}");
        let e = voice_text(&key, Some("{{code}} for {{user}}".into()), None).unwrap_err();
        assert_eq!(e.key, "provider[0].voice_message", "{e:?}");
        assert!(voice_text(&key, None, Some("de-DE".into())).is_ok());
        assert!(voice_text(&key, None, Some("german".into())).is_err());
    }

    #[test]
    fn caller_ids_are_numbers() {
        assert!(caller_id("k", "+15005550006").is_ok());
        assert!(caller_id("k", "ACME").is_err());
        assert!(uuid_shape("aaaaaaaa-bbbb-cccc-dddd-0123456789ab").is_some());
        assert!(uuid_shape("aaaaaaaa-bbbb-cccc-dddd").is_none());
    }
}
