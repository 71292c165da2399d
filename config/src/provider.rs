//! `[[provider]]` entries: the raw TOML shape of each provider type and its
//! validation into [`ProviderConfig`]. One submodule per provider type;
//! settings they share (timeouts, retries, breaker, TLS, proxy) are in
//! [`common`], credentials in [`secret`].

pub mod common;
mod http;
mod modem;
pub mod secret;
mod twilio;
pub mod voice;
mod vonage;
mod webhook;

pub use common::{HttpTransport, Resilience};
pub use http::{BodyCheck, ContentType, Header, HttpAuth, HttpConfig, HttpMethod};
pub use modem::{ModemConfig, ModemSelect};
pub use secret::{SecretRef, SecretSource};
pub use twilio::{TwilioAuth, TwilioConfig, TWILIO_API_BASE};
pub use voice::{TwilioVoiceConfig, VoiceText, VonageVoiceConfig};
pub use vonage::{VonageConfig, VONAGE_API_BASE};
pub use webhook::{SignatureScheme, WebhookConfig};

use crate::error::{ConfigError, Invalid};
use crate::types::DEFAULT_OUTBOX;
use crate::validate::absolute;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub enum ProviderConfig {
    Outbox(OutboxConfig),
    Http(HttpConfig),
    Twilio(TwilioConfig),
    Vonage(VonageConfig),
    Webhook(WebhookConfig),
    Modem(ModemConfig),
    TwilioVoice(TwilioVoiceConfig),
    VonageVoice(VonageVoiceConfig),
}

impl ProviderConfig {
    pub fn name(&self) -> &str {
        match self {
            ProviderConfig::Outbox(c) => &c.name,
            ProviderConfig::Http(c) => &c.name,
            ProviderConfig::Twilio(c) => &c.name,
            ProviderConfig::Vonage(c) => &c.name,
            ProviderConfig::Webhook(c) => &c.name,
            ProviderConfig::Modem(c) => &c.name,
            ProviderConfig::TwilioVoice(c) => &c.name,
            ProviderConfig::VonageVoice(c) => &c.name,
        }
    }

    /// Timeout, retries and breaker. The outbox is a local file: it gets
    /// the defaults.
    pub fn resilience(&self) -> Resilience {
        match self {
            ProviderConfig::Outbox(_) => Resilience::default(),
            ProviderConfig::Http(c) => c.resilience,
            ProviderConfig::Twilio(c) => c.resilience,
            ProviderConfig::Vonage(c) => c.resilience,
            ProviderConfig::Webhook(c) => c.resilience,
            ProviderConfig::Modem(c) => c.resilience,
            ProviderConfig::TwilioVoice(c) => c.resilience,
            ProviderConfig::VonageVoice(c) => c.resilience,
        }
    }

    /// Every credential this provider reads.
    pub fn secrets(&self) -> Vec<&SecretRef> {
        match self {
            ProviderConfig::Outbox(_) | ProviderConfig::Modem(_) => Vec::new(),
            ProviderConfig::Http(c) => c.auth.iter().map(HttpAuth::secret).collect(),
            ProviderConfig::Twilio(c) => vec![c.auth.secret()],
            ProviderConfig::Vonage(c) => vec![&c.api_secret],
            ProviderConfig::Webhook(c) => std::iter::once(&c.secret)
                .chain(c.previous_secret.as_ref())
                .collect(),
            ProviderConfig::TwilioVoice(c) => vec![c.auth.secret()],
            ProviderConfig::VonageVoice(c) => vec![&c.private_key],
        }
    }

    /// The HTTPS settings (an extra CA file, a proxy) of a provider that
    /// talks HTTP.
    pub fn transport(&self) -> Option<&HttpTransport> {
        match self {
            ProviderConfig::Outbox(_) | ProviderConfig::Modem(_) => None,
            ProviderConfig::Http(c) => Some(&c.transport),
            ProviderConfig::Twilio(c) => Some(&c.transport),
            ProviderConfig::Vonage(c) => Some(&c.transport),
            ProviderConfig::Webhook(c) => Some(&c.transport),
            ProviderConfig::TwilioVoice(c) => Some(&c.transport),
            ProviderConfig::VonageVoice(c) => Some(&c.transport),
        }
    }

    fn secrets_mut(&mut self) -> Vec<&mut SecretRef> {
        match self {
            ProviderConfig::Outbox(_) | ProviderConfig::Modem(_) => Vec::new(),
            ProviderConfig::Http(c) => match &mut c.auth {
                Some(HttpAuth::Basic { password: s, .. })
                | Some(HttpAuth::Bearer { token: s })
                | Some(HttpAuth::ApiKey { key: s, .. }) => vec![s],
                None => Vec::new(),
            },
            ProviderConfig::Twilio(c) => match &mut c.auth {
                TwilioAuth::AuthToken(s) | TwilioAuth::ApiKey { secret: s, .. } => vec![s],
            },
            ProviderConfig::Vonage(c) => vec![&mut c.api_secret],
            ProviderConfig::Webhook(c) => std::iter::once(&mut c.secret)
                .chain(c.previous_secret.as_mut())
                .collect(),
            ProviderConfig::TwilioVoice(c) => match &mut c.auth {
                TwilioAuth::AuthToken(s) | TwilioAuth::ApiKey { secret: s, .. } => vec![s],
            },
            ProviderConfig::VonageVoice(c) => vec![&mut c.private_key],
        }
    }

    /// Speaks the code in a phone call rather than texting it.
    pub fn is_voice(&self) -> bool {
        matches!(
            self,
            ProviderConfig::TwilioVoice(_) | ProviderConfig::VonageVoice(_)
        )
    }

    /// The dotted key of a credential written inline in this entry (the
    /// `i`th provider), if there is one.
    pub fn inline_secret_key(&self, i: usize) -> Option<String> {
        if let ProviderConfig::Http(c) = self {
            return http::inline_secret(i, c);
        }
        self.secrets()
            .into_iter()
            .find(|s| s.is_inline())
            .map(|s| s.key.clone())
    }
}

#[derive(Debug, Clone)]
pub struct OutboxConfig {
    pub name: String,
    pub path: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawProvider {
    Outbox {
        name: Option<String>,
        path: Option<PathBuf>,
    },
    Http(http::RawHttp),
    Twilio(twilio::RawTwilio),
    Vonage(vonage::RawVonage),
    Webhook(webhook::RawWebhook),
    Modem(modem::RawModem),
    #[serde(rename = "twilio-voice")]
    TwilioVoice(voice::RawTwilioVoice),
    #[serde(rename = "vonage-voice")]
    VonageVoice(voice::RawVonageVoice),
}

pub(crate) fn validate(i: usize, raw: RawProvider) -> Result<ProviderConfig, Invalid> {
    let key = |k: &str| format!("provider[{i}].{k}");
    Ok(match raw {
        RawProvider::Outbox { name, path } => ProviderConfig::Outbox(OutboxConfig {
            name: provider_name(&key("name"), name, "outbox")?,
            path: absolute(&key("path"), path, DEFAULT_OUTBOX)?,
        }),
        RawProvider::Http(r) => ProviderConfig::Http(http::validate(i, r)?),
        RawProvider::Twilio(r) => ProviderConfig::Twilio(twilio::validate(i, r)?),
        RawProvider::Vonage(r) => ProviderConfig::Vonage(vonage::validate(i, r)?),
        RawProvider::Webhook(r) => ProviderConfig::Webhook(webhook::validate(i, r)?),
        RawProvider::Modem(r) => ProviderConfig::Modem(modem::validate(i, r)?),
        RawProvider::TwilioVoice(r) => ProviderConfig::TwilioVoice(voice::validate_twilio(i, r)?),
        RawProvider::VonageVoice(r) => ProviderConfig::VonageVoice(voice::validate_vonage(i, r)?),
    })
}

pub(crate) fn provider_name(
    key: &str,
    name: Option<String>,
    default: &str,
) -> Result<String, Invalid> {
    let n = name.unwrap_or_else(|| default.to_string());
    if n.is_empty()
        || n.len() > 64
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Invalid::new(
            key,
            "must be 1 to 64 letters, digits, '-' or '_'",
        ));
    }
    Ok(n)
}

/// A credential written inline is only as private as the file holding it:
/// refuses a config with one that its group or others can read. Called by
/// [`crate::load`], which knows the file; `parse` (text only) cannot check.
pub(crate) fn refuse_readable_inline_secrets(
    path: &Path,
    text: &str,
    config: &crate::DaemonConfig,
) -> Result<(), ConfigError> {
    use std::os::unix::fs::MetadataExt;
    let Some(key) = config
        .providers
        .iter()
        .enumerate()
        .find_map(|(i, p)| p.inline_secret_key(i))
        .or_else(|| config.store.inline_secret_key())
    else {
        return Ok(());
    };
    let meta = std::fs::metadata(path).map_err(|e| ConfigError::io(path, e))?;
    let mode = meta.mode();
    let Some(who) = crate::perms::readers(mode, meta.gid()) else {
        return Ok(());
    };
    let short = key.rsplit('.').next().unwrap_or(&key);
    let instead = if key.contains(".headers.") || key.ends_with(".url") {
        "move the credential to an `auth` table with a token_file, password_file or key_file"
            .to_string()
    } else {
        format!("move it to {short}_file or {short}_credential")
    };
    Err(Invalid::new(
        key.clone(),
        format!(
            "is a credential written inline, but the file is readable by {who} (mode {:04o}); \
             run `chmod 600 {}`, or {instead}",
            mode & 0o7777,
            path.display()
        ),
    )
    .locate(path, text))
}

/// Records `FILE:LINE` in every secret reference, so an error reading a
/// secret file later (at provider build) still points into the config.
pub(crate) fn locate_secrets(path: &Path, text: &str, config: &mut crate::DaemonConfig) {
    let store = config.store.secrets_mut();
    let providers = config.providers.iter_mut().flat_map(|p| p.secrets_mut());
    let directory = config.directory.iter_mut().flat_map(|d| d.secrets_mut());
    {
        for s in store.into_iter().chain(providers).chain(directory) {
            let line = crate::locate::line_of_key(text, &s.key);
            s.origin = Some(match line {
                Some(l) => format!("{}:{l}", path.display()),
                None => path.display().to_string(),
            });
        }
    }
}

#[cfg(test)]
#[path = "provider/tests.rs"]
mod tests;
