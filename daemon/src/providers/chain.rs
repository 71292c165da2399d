//! The provider chain: providers tried in config order, first success wins.
//!
//! Each attempt goes through [`Chain::attempt`], the one place where a
//! later retry policy, per-provider deadline or circuit breaker can hook in
//! without changing `send`'s contract.

use super::{ProviderError, Receipt, Sms, SmsProvider};
use std::fmt;

pub struct Chain {
    providers: Vec<Box<dyn SmsProvider>>,
}

/// Every provider failed. Attempts are in the order they were made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainError {
    pub attempts: Vec<(String, ProviderError)>,
}

impl ChainError {
    /// True if at least one failure may clear up on its own, so trying the
    /// whole chain again later is worth it.
    pub fn is_retryable(&self) -> bool {
        self.attempts
            .iter()
            .any(|(_, e)| matches!(e, ProviderError::Retryable(_)))
    }
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.attempts.len() {
            0 => f.write_str("no SMS provider is configured"),
            n => {
                let noun = if n == 1 { "provider" } else { "providers" };
                write!(f, "all {n} SMS {noun} failed: ")?;
                for (i, (name, e)) in self.attempts.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{name}: {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ChainError {}

impl Chain {
    pub fn new(providers: Vec<Box<dyn SmsProvider>>) -> Self {
        Chain { providers }
    }

    /// Provider names in the order they are tried (for status output and
    /// the startup log).
    pub fn names(&self) -> Vec<&str> {
        self.providers.iter().map(|p| p.name()).collect()
    }

    /// Sends through the first provider that accepts the message and
    /// returns its name with its receipt.
    pub async fn send(&self, sms: &Sms) -> Result<(String, Receipt), ChainError> {
        let mut attempts = Vec::new();
        for provider in &self.providers {
            let name = provider.name();
            match self.attempt(provider.as_ref(), sms).await {
                Ok(receipt) => {
                    tracing::info!(
                        provider = name,
                        to = %sms.to, // Display is masked
                        detail = %receipt.detail,
                        "sms sent"
                    );
                    return Ok((name.to_string(), receipt));
                }
                Err(e) => {
                    tracing::warn!(provider = name, to = %sms.to, error = %e, "send failed");
                    attempts.push((name.to_string(), e));
                }
            }
        }
        if attempts.is_empty() {
            tracing::error!(to = %sms.to, "no SMS provider is configured");
        }
        Err(ChainError { attempts })
    }

    /// One try with one provider. Today a plain call; retries with backoff
    /// and a circuit breaker belong here.
    async fn attempt(
        &self,
        provider: &dyn SmsProvider,
        sms: &Sms,
    ) -> Result<Receipt, ProviderError> {
        provider.send(sms).await
    }
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chain")
            .field("providers", &self.names())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::SendFuture;
    use smsotp_config::Mobile;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use zeroize::Zeroizing;

    /// A provider with a fixed answer that counts its calls.
    struct Fake {
        name: &'static str,
        result: Result<Receipt, ProviderError>,
        calls: Arc<AtomicUsize>,
    }

    impl SmsProvider for Fake {
        fn name(&self) -> &str {
            self.name
        }
        fn send<'a>(&'a self, _sms: &'a Sms) -> SendFuture<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let r = self.result.clone();
            Box::pin(async move { r })
        }
    }

    fn fake(
        name: &'static str,
        result: Result<Receipt, ProviderError>,
    ) -> (Box<dyn SmsProvider>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let p = Fake {
            name,
            result,
            calls: calls.clone(),
        };
        (Box::new(p), calls)
    }

    fn ok(detail: &str) -> Result<Receipt, ProviderError> {
        Ok(Receipt {
            detail: detail.into(),
        })
    }

    fn sms() -> Sms {
        Sms {
            to: Mobile::parse("+15551234567").unwrap(),
            body: Zeroizing::new("code 123456".into()),
        }
    }

    #[tokio::test]
    async fn first_failure_falls_through_to_second() {
        let (a, a_calls) = fake("a", Err(ProviderError::Retryable("HTTP 503 from a".into())));
        let (b, b_calls) = fake("b", ok("HTTP 200"));
        let (c, c_calls) = fake("c", ok("never"));
        let chain = Chain::new(vec![a, b, c]);
        assert_eq!(chain.names(), ["a", "b", "c"]);
        let (name, receipt) = chain.send(&sms()).await.unwrap();
        assert_eq!(name, "b");
        assert_eq!(receipt.detail, "HTTP 200");
        assert_eq!(a_calls.load(Ordering::SeqCst), 1);
        assert_eq!(b_calls.load(Ordering::SeqCst), 1);
        assert_eq!(c_calls.load(Ordering::SeqCst), 0, "stops at first success");
    }

    #[tokio::test]
    async fn all_failing_lists_every_attempt() {
        let (a, _) = fake("a", Err(ProviderError::Retryable("HTTP 503 from a".into())));
        let (b, _) = fake("b", Err(ProviderError::Permanent("HTTP 401 from b".into())));
        let chain = Chain::new(vec![a, b]);
        let e = chain.send(&sms()).await.unwrap_err();
        assert_eq!(
            e.attempts,
            vec![
                (
                    "a".to_string(),
                    ProviderError::Retryable("HTTP 503 from a".into())
                ),
                (
                    "b".to_string(),
                    ProviderError::Permanent("HTTP 401 from b".into())
                ),
            ]
        );
        assert!(e.is_retryable());
        let text = e.to_string();
        assert_eq!(
            text,
            "all 2 SMS providers failed: a: temporary failure: HTTP 503 from a; \
             b: permanent failure: HTTP 401 from b"
        );
        assert!(!text.contains("5551234567"));
    }

    #[tokio::test]
    async fn empty_chain_fails_clearly() {
        let chain = Chain::new(Vec::new());
        let e = chain.send(&sms()).await.unwrap_err();
        assert!(e.attempts.is_empty());
        assert!(!e.is_retryable());
        assert_eq!(e.to_string(), "no SMS provider is configured");
    }

    #[tokio::test]
    async fn chain_with_real_outbox_from_config() {
        let dir = tempfile::tempdir().unwrap();
        let toml = format!(
            "[[provider]]\ntype = \"outbox\"\nname = \"broken\"\npath = '{}'\n\
             [[provider]]\ntype = \"outbox\"\npath = '{}'\n",
            dir.path().join("missing").join("o.jsonl").display(),
            dir.path().join("o.jsonl").display()
        );
        let cfg = smsotp_config::parse(std::path::Path::new("t.toml"), &toml).unwrap();
        let providers = cfg
            .providers
            .iter()
            .map(crate::providers::build)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let chain = Chain::new(providers);
        assert_eq!(chain.names(), ["broken", "outbox"]);
        let (name, _) = chain.send(&sms()).await.unwrap();
        assert_eq!(name, "outbox");
        let text = std::fs::read_to_string(dir.path().join("o.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 1);
    }
}
