//! SMS providers. Each speaks one gateway's API; the [`Chain`] tries them
//! in order. A provider never logs the full number or the message body
//! (the body holds the code).

mod chain;
mod http;
mod outbox;

pub use chain::{Chain, ChainError};

use smsotp_config::{Mobile, ProviderConfig};
use std::future::Future;
use std::pin::Pin;
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

/// What a provider reports on success, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct Receipt {
    /// The gateway's message id or status line, if it gave one.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Worth trying again later or elsewhere (timeouts, 5xx, 429).
    #[error("temporary failure: {0}")]
    Retryable(String),
    /// Will fail the same way again (bad credentials, 4xx, bad config).
    #[error("permanent failure: {0}")]
    Permanent(String),
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Receipt, ProviderError>> + Send + 'a>>;

pub trait SmsProvider: Send + Sync {
    fn name(&self) -> &str;
    fn send<'a>(&'a self, sms: &'a Sms) -> SendFuture<'a>;
}

/// Builds the provider a config entry describes.
pub fn build(cfg: &ProviderConfig) -> Result<Box<dyn SmsProvider>, ProviderError> {
    match cfg {
        ProviderConfig::Outbox(c) => Ok(Box::new(outbox::Outbox::new(c))),
        ProviderConfig::Http(c) => Ok(Box::new(http::HttpProvider::new(c)?)),
    }
}
