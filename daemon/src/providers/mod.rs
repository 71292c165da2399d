//! SMS providers. Each speaks one gateway's API; the [`Chain`] tries them
//! in order with per-provider timeouts, retries and circuit breakers. A
//! provider never logs the full number, the message body (it holds the
//! code) or a credential.
//!
//! | file | what |
//! | --- | --- |
//! | `chain.rs` | order, timeout, retry with backoff, breaker; the report `test-sms` shows |
//! | `breaker.rs` | the circuit breaker's state machine |
//! | `client.rs` | the shared HTTPS client: trust store + extra CA, proxy, keep-alive |
//! | `response.rs` | bounded body reads, log-safe snippets, scrubbing |
//! | `secret.rs` | reading credentials from files and systemd credentials |
//! | `encoding.rs` | GSM-7 vs UCS-2 and segment counts |
//! | `render.rs` | the custom provider's URL and payload templates |
//! | `spoken.rs` | what a voice provider says: the code spelled out |
//! | `http.rs`, `twilio.rs`, `vonage.rs`, `webhook.rs`, `modem.rs`, `outbox.rs` | one provider each |
//! | `twilio_voice.rs`, `vonage_voice.rs` | a phone call speaking the code ([`Channel::Voice`]) |

mod breaker;
mod chain;
pub(crate) mod client;
pub mod encoding;
mod http;
mod modem;
mod outbox;
mod render;
mod response;
pub(crate) mod secret;
pub mod spoken;
mod twilio;
mod twilio_voice;
mod vonage;
mod vonage_voice;
pub mod webhook;

pub use chain::{Attempt, AttemptOutcome, Chain, ChainError, Delivery, Route};
pub use spoken::Spoken;

use smsotp_config::provider::Resilience;
use smsotp_config::{Mobile, ProviderConfig};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use zeroize::Zeroizing;

/// One message to send. `body` holds the code and is wiped on drop.
pub struct Sms {
    pub to: Mobile,
    pub body: Zeroizing<String>,
}

impl std::fmt::Debug for Sms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sms {{ to: {:?}, body: *** }}", self.to)
    }
}

/// What the caller knows about the message beyond number and text. All
/// optional: [`Chain::send`] passes the default.
#[derive(Debug, Clone, Default)]
pub struct SendMeta {
    /// How long the code stays valid. Gateways that can drop an undelivered
    /// message get it (Twilio `ValidityPeriod`, Vonage `ttl`): a code
    /// arriving after it expired only confuses.
    pub validity: Option<Duration>,
    /// The host name in the message (`{{host}}`), for the webhook event.
    pub host: Option<String>,
    /// The PAM service (`sshd`, `sudo`), for the webhook event.
    pub service: Option<String>,
    /// No attempt starts and no backoff sleeps past this; the caller's own
    /// budget (the PAM module waits only so long).
    pub deadline: Option<tokio::time::Instant>,
    /// The code itself, for voice providers to spell out in their own
    /// template; SMS providers ignore it. `None`: a voice provider reads
    /// the SMS text.
    pub spoken: Option<Spoken>,
}

/// What a provider reports on success, for the audit log and `test-sms`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// A short status line (`HTTP 201`, `status 0`, `sent`).
    pub detail: String,
    /// The gateway's message id (Twilio SID, Vonage message-id, modem SMS
    /// path), if it gave one.
    pub id: Option<String>,
}

impl Receipt {
    pub fn new(detail: impl Into<String>) -> Self {
        Receipt {
            detail: detail.into(),
            id: None,
        }
    }
}

/// Why a send failed, sorted by what the chain should do about it. The
/// text is log-safe: no number, body or credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Worth trying again later or elsewhere (timeouts, 5xx, connection
    /// errors).
    #[error("temporary failure: {0}")]
    Retryable(String),
    /// The gateway asked us to slow down (429, Vonage status 1).
    /// `retry_after` is its hint, if it gave one.
    #[error("rate limited: {message}")]
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Will fail the same way again (bad credentials, 4xx, no modem).
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// This gateway refuses this number (barred, invalid, not whitelisted).
    /// Another provider may still deliver; it says nothing about the
    /// gateway's health, so it never opens the breaker: one user's bad
    /// number must not take the provider away from everyone.
    #[error("number refused: {0}")]
    Recipient(String),
    /// The provider cannot be built from its configuration.
    #[error("{0}")]
    Config(String),
}

impl ProviderError {
    /// Another try at the same provider may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::Retryable(_) | ProviderError::RateLimited { .. }
        )
    }

    /// Counts towards opening the provider's circuit breaker.
    pub fn is_provider_fault(&self) -> bool {
        !matches!(self, ProviderError::Recipient(_))
    }
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Receipt, ProviderError>> + Send + 'a>>;

/// How a provider reaches the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Sms,
    /// A call that speaks the code.
    Voice,
}

/// `Debug` is required so a provider can be shown in diagnostics; every
/// implementation must keep credentials out of it.
pub trait SmsProvider: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &str;

    /// One try. Timeouts, retries and the breaker are the chain's job.
    fn send<'a>(&'a self, sms: &'a Sms, meta: &'a SendMeta) -> SendFuture<'a>;

    /// SMS unless the provider places calls.
    fn channel(&self) -> Channel {
        Channel::Sms
    }

    /// How the chain treats this provider.
    fn resilience(&self) -> Resilience {
        Resilience::default()
    }
}

/// Builds the provider a config entry describes, reading its credentials.
pub fn build(cfg: &ProviderConfig) -> Result<Box<dyn SmsProvider>, ProviderError> {
    Ok(match cfg {
        ProviderConfig::Outbox(c) => Box::new(outbox::Outbox::new(c)?),
        ProviderConfig::Http(c) => Box::new(http::HttpProvider::new(c)?),
        ProviderConfig::Twilio(c) => Box::new(twilio::Twilio::new(c)?),
        ProviderConfig::Vonage(c) => Box::new(vonage::Vonage::new(c)?),
        ProviderConfig::Webhook(c) => Box::new(webhook::Webhook::new(c)?),
        ProviderConfig::Modem(c) => Box::new(modem::Modem::new(c)),
        ProviderConfig::TwilioVoice(c) => Box::new(twilio_voice::TwilioVoice::new(c)?),
        ProviderConfig::VonageVoice(c) => Box::new(vonage_voice::VonageVoice::new(c)?),
    })
}
