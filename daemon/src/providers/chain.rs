//! The provider chain: providers tried in config order, first success wins.
//!
//! Around each provider: a per-try timeout, retries with jittered
//! exponential backoff for temporary failures only (a 401 will not get
//! better in 500 ms), and a circuit breaker that skips a provider after
//! repeated failures. Everything that happened is returned as a list of
//! [`Attempt`]s, for the log and for `smsotpctl test-sms`.
//!
//! Voice providers ([`Channel::Voice`]) are slots like the others: a
//! normal send ([`Route::Any`]) tries every provider in config order, so
//! a voice provider listed after the SMS providers is reached only when
//! each of those failed or was skipped, and the code is then spoken to
//! the same number. A call the user asked for at the prompt
//! ([`Route::Voice`]) tries the voice providers alone, in their order.

use super::breaker::{Admit, Breaker};
use super::encoding;
use super::{Channel, ProviderError, Receipt, SendMeta, Sms, SmsProvider};
use smsotp_config::provider::Resilience;
use std::fmt;
use std::time::Duration;
use tokio::time::Instant;

/// Longest backoff between two tries, whatever the doubling says.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A `Retry-After` longer than this sends us to the next provider
/// instead: a login cannot wait minutes.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

struct Slot {
    provider: Box<dyn SmsProvider>,
    policy: Resilience,
    breaker: Breaker,
}

pub struct Chain {
    slots: Vec<Slot>,
    /// Digits of the number its log lines show (`message.mask_visible_digits`).
    mask_visible: usize,
}

/// Which providers a send may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Route {
    /// Every provider, in config order (voice ones among them).
    #[default]
    Any,
    /// Only the providers that place calls: the user asked for one.
    Voice,
}

impl Route {
    fn admits(self, channel: Channel) -> bool {
        match self {
            Route::Any => true,
            Route::Voice => channel == Channel::Voice,
        }
    }
}

/// One try at one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub provider: String,
    /// 1 for the first try at this provider, 2 for its first retry, ...
    pub try_number: u32,
    pub outcome: AttemptOutcome,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Sent(Receipt),
    Failed(ProviderError),
    /// Not tried: its circuit breaker is open.
    Skipped {
        retry_in: Duration,
    },
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.provider)?;
        if self.try_number > 1 {
            write!(f, " (try {})", self.try_number)?;
        }
        match &self.outcome {
            AttemptOutcome::Sent(r) => write!(f, ": sent, {}", r.detail)?,
            AttemptOutcome::Failed(e) => write!(f, ": {e}")?,
            AttemptOutcome::Skipped { retry_in } => write!(
                f,
                ": skipped, circuit breaker open (next try in {}s)",
                retry_in.as_secs().max(1)
            )?,
        }
        if !matches!(self.outcome, AttemptOutcome::Skipped { .. }) {
            write!(f, " [{} ms]", self.elapsed.as_millis())?;
        }
        Ok(())
    }
}

/// A message handed off, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub provider: String,
    pub receipt: Receipt,
    /// Every try, failed ones first, the successful one last.
    pub attempts: Vec<Attempt>,
    /// `GSM-7` or `UCS-2`, and how many SMS segments the text takes.
    pub encoding: &'static str,
    pub segments: u32,
}

/// Every provider failed or was skipped. Attempts are in the order made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainError {
    pub attempts: Vec<Attempt>,
}

impl ChainError {
    /// True if trying the whole chain again later may work.
    pub fn is_retryable(&self) -> bool {
        self.attempts.iter().any(|a| match &a.outcome {
            AttemptOutcome::Failed(e) => e.is_retryable(),
            AttemptOutcome::Skipped { .. } => true,
            AttemptOutcome::Sent(_) => false,
        })
    }
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One entry per provider: its last outcome and how many tries.
        let mut last: Vec<&Attempt> = Vec::new();
        for a in &self.attempts {
            match last.iter_mut().find(|l| l.provider == a.provider) {
                Some(l) => *l = a,
                None => last.push(a),
            }
        }
        if last.is_empty() {
            return f.write_str("no SMS provider is configured");
        }
        let noun = if last.len() == 1 {
            "provider"
        } else {
            "providers"
        };
        write!(f, "all {} SMS {noun} failed: ", last.len())?;
        for (i, a) in last.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: ", a.provider)?;
            match &a.outcome {
                AttemptOutcome::Failed(e) => write!(f, "{e}")?,
                AttemptOutcome::Skipped { .. } => f.write_str("skipped (circuit breaker open)")?,
                AttemptOutcome::Sent(_) => f.write_str("sent")?,
            }
            if a.try_number > 1 {
                write!(f, " (after {} tries)", a.try_number)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ChainError {}

impl Chain {
    pub fn new(providers: Vec<Box<dyn SmsProvider>>) -> Self {
        let slots = providers
            .into_iter()
            .map(|provider| {
                let policy = provider.resilience();
                Slot {
                    breaker: Breaker::new(policy.breaker_failures, policy.breaker_cooldown),
                    policy,
                    provider,
                }
            })
            .collect();
        Chain {
            slots,
            mask_visible: 4,
        }
    }

    /// Log lines show this many digits of the number, as the prompt does.
    pub fn masking(mut self, visible: usize) -> Self {
        self.mask_visible = visible;
        self
    }

    /// Provider names in the order they are tried (for status output and
    /// the startup log).
    pub fn names(&self) -> Vec<&str> {
        self.slots.iter().map(|s| s.provider.name()).collect()
    }

    /// Whether any provider places calls: only then is `v` offered at
    /// the prompt.
    pub fn has_voice(&self) -> bool {
        self.slots
            .iter()
            .any(|s| s.provider.channel() == Channel::Voice)
    }

    /// Names of the providers whose circuit breaker is open now.
    pub fn open_breakers(&self) -> Vec<&str> {
        self.slots
            .iter()
            .filter(|s| s.breaker.is_open())
            .map(|s| s.provider.name())
            .collect()
    }

    /// Sends through the first provider that accepts the message and
    /// returns its name with its receipt. Kept for callers that need no
    /// report; [`Chain::send_with`] is the full form.
    pub async fn send(&self, sms: &Sms) -> Result<(String, Receipt), ChainError> {
        self.send_with(sms, &SendMeta::default())
            .await
            .map(|d| (d.provider, d.receipt))
    }

    /// Sends through the chain and reports every try. If every provider
    /// is skipped by its breaker, each is tried once anyway: an open
    /// breaker saves time, it must not by itself fail a login.
    pub async fn send_with(&self, sms: &Sms, meta: &SendMeta) -> Result<Delivery, ChainError> {
        self.send_via(sms, meta, Route::Any).await
    }

    /// [`Chain::send_with`] through the providers `route` admits only.
    pub async fn send_via(
        &self,
        sms: &Sms,
        meta: &SendMeta,
        route: Route,
    ) -> Result<Delivery, ChainError> {
        let slots: Vec<&Slot> = self
            .slots
            .iter()
            .filter(|s| route.admits(s.provider.channel()))
            .collect();
        let enc = encoding::analyze(&sms.body);
        tracing::debug!(
            to = %sms.to.masked(self.mask_visible),
            encoding = enc.name(),
            segments = enc.segments(),
            units = enc.units(),
            "sending sms"
        );
        let mut attempts = Vec::new();
        let mut tried_any = false;
        for last_resort in [false, true] {
            if last_resort && (tried_any || slots.is_empty()) {
                break;
            }
            if last_resort {
                tracing::warn!("every provider's circuit breaker is open; trying each once anyway");
            }
            for slot in slots.iter().copied() {
                let probe = if last_resort {
                    true
                } else {
                    match slot.breaker.admit() {
                        Admit::Yes => false,
                        Admit::Probe => true,
                        Admit::No { retry_in } => {
                            tracing::debug!(
                                provider = slot.provider.name(),
                                retry_in_s = retry_in.as_secs(),
                                "skipped: circuit breaker open"
                            );
                            record(
                                &mut attempts,
                                Attempt {
                                    provider: slot.provider.name().to_string(),
                                    try_number: 0,
                                    outcome: AttemptOutcome::Skipped { retry_in },
                                    elapsed: Duration::ZERO,
                                },
                            );
                            continue;
                        }
                    }
                };
                tried_any = true;
                let retries = if probe { 0 } else { slot.policy.retries };
                if let Some(receipt) = self.try_slot(slot, retries, sms, meta, &mut attempts).await
                {
                    tracing::info!(
                        provider = slot.provider.name(),
                        to = %sms.to.masked(self.mask_visible),
                        detail = %receipt.detail,
                        encoding = enc.name(),
                        segments = enc.segments(),
                        tries = attempts.iter().filter(|a| a.provider == slot.provider.name()).count(),
                        "sms sent"
                    );
                    return Ok(Delivery {
                        provider: slot.provider.name().to_string(),
                        receipt,
                        attempts,
                        encoding: enc.name(),
                        segments: enc.segments(),
                    });
                }
                if past(meta.deadline) {
                    tracing::warn!(to = %sms.to.masked(self.mask_visible), "send deadline reached; not trying further providers");
                    return Err(ChainError { attempts });
                }
            }
        }
        if slots.is_empty() {
            tracing::error!(to = %sms.to.masked(self.mask_visible), route = ?route, "no provider for this route is configured");
        }
        Err(ChainError { attempts })
    }

    /// Tries one provider up to `1 + retries` times. Returns the receipt
    /// on success; records every try in `attempts`.
    async fn try_slot(
        &self,
        slot: &Slot,
        retries: u32,
        sms: &Sms,
        meta: &SendMeta,
        attempts: &mut Vec<Attempt>,
    ) -> Option<Receipt> {
        let name = slot.provider.name();
        let mut last_error = None;
        for try_number in 1..=retries + 1 {
            let Some(limit) = time_left(meta.deadline, slot.policy.timeout) else {
                break;
            };
            let start = Instant::now();
            let result = match tokio::time::timeout(limit, slot.provider.send(sms, meta)).await {
                Ok(r) => r,
                Err(_) => Err(ProviderError::Retryable(format!(
                    "no answer within {:.1}s",
                    limit.as_secs_f32()
                ))),
            };
            let elapsed = start.elapsed();
            let error = match result {
                Ok(receipt) => {
                    slot.breaker.success();
                    record(
                        attempts,
                        Attempt {
                            provider: name.to_string(),
                            try_number,
                            outcome: AttemptOutcome::Sent(receipt.clone()),
                            elapsed,
                        },
                    );
                    return Some(receipt);
                }
                Err(e) => e,
            };
            tracing::warn!(provider = name, to = %sms.to.masked(self.mask_visible), try_number, error = %error, "send failed");
            record(
                attempts,
                Attempt {
                    provider: name.to_string(),
                    try_number,
                    outcome: AttemptOutcome::Failed(error.clone()),
                    elapsed,
                },
            );
            let delay = (try_number <= retries && error.is_retryable())
                .then(|| retry_delay(&error, slot.policy.backoff, try_number))
                .flatten()
                .filter(|d| fits(meta.deadline, *d));
            last_error = Some(error);
            match delay {
                Some(d) => {
                    tracing::debug!(provider = name, delay_ms = d.as_millis() as u64, "retrying");
                    tokio::time::sleep(d).await;
                }
                None => break,
            }
        }
        if let Some(e) = last_error {
            self.record_failure(slot, &e);
        }
        None
    }

    fn record_failure(&self, slot: &Slot, error: &ProviderError) {
        if !error.is_provider_fault() {
            // The gateway answered sensibly; it is healthy.
            slot.breaker.success();
        } else if slot.breaker.failure() {
            tracing::warn!(
                provider = slot.provider.name(),
                cooldown_s = slot.policy.breaker_cooldown.as_secs(),
                "circuit breaker opened: skipping this provider for a while"
            );
        }
    }
}

/// Notes a finished try, counted in the metrics as it ends: a send that
/// the caller's deadline drops midway still counts the tries it made.
fn record(attempts: &mut Vec<Attempt>, attempt: Attempt) {
    crate::metrics::attempt(&attempt);
    attempts.push(attempt);
}

/// Whether sleeping `delay` still leaves a try a fair chance (200 ms)
/// before the deadline.
fn fits(deadline: Option<Instant>, delay: Duration) -> bool {
    deadline.is_none_or(|d| Instant::now() + delay + Duration::from_millis(200) < d)
}

fn past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// `want`, shortened to what is left before the deadline; `None` if
/// nothing is.
fn time_left(deadline: Option<Instant>, want: Duration) -> Option<Duration> {
    match deadline {
        None => Some(want),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            (!left.is_zero()).then(|| want.min(left))
        }
    }
}

/// The gateway's `Retry-After` if it gave a usable one; otherwise
/// exponential backoff with "equal jitter" (half fixed, half random), so
/// hosts that failed together do not retry together. `None`: the gateway
/// wants longer than a login can wait.
fn retry_delay(error: &ProviderError, base: Duration, try_number: u32) -> Option<Duration> {
    if let ProviderError::RateLimited {
        retry_after: Some(hint),
        ..
    } = error
    {
        return (*hint <= MAX_RETRY_AFTER).then_some(*hint);
    }
    let exp = base
        .saturating_mul(1u32 << (try_number - 1).min(16))
        .min(MAX_BACKOFF);
    let half = exp / 2;
    let jitter_ms = rand::random_range(0..=half.as_millis() as u64);
    Some(half + Duration::from_millis(jitter_ms))
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chain")
            .field("providers", &self.names())
            .finish()
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
