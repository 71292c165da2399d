//! The signed event webhook: the Asgardeo "SMS OTP notification" event
//! POSTed as JSON to a receiver that sends the SMS itself:
//!
//! ```json
//! {"securityData": {"iss": "smsotp", "jti": "<uuid>", "iat": 1659732032884, "aud": "<url>"},
//!  "eventData": {"sendTo": "+15551234567", "messageBody": "...", "host": "bastion-1", "service": "sshd"}}
//! ```
//!
//! Signed so the receiver can verify origin and refuse replays:
//! `Smsotp-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
//! over the exact body bytes. `jti` is unique per event (also sent as
//! `Smsotp-Event-Id`): a receiver drops a `jti` it has seen and any `t`
//! older than its tolerance (docs/PROVIDERS.md shows how).

use super::response::{self, Scrubber, MAX_BODY};
use super::{secret, ProviderError, Receipt, SendFuture, SendMeta, Sms, SmsProvider};
use hmac::{Hmac, Mac};
use reqwest::Client;
use serde::Serialize;
use sha2::Sha256;
use smsotp_config::provider::{Resilience, WebhookConfig};
use std::time::{SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

pub const SIGNATURE_HEADER: &str = "Smsotp-Signature";
pub const EVENT_ID_HEADER: &str = "Smsotp-Event-Id";
/// An HMAC key shorter than this is guessable offline from one event.
const MIN_SECRET_BYTES: usize = 16;

pub struct Webhook {
    name: String,
    client: Client,
    url: String,
    secret: Zeroizing<String>,
    issuer: String,
    audience: String,
    organization: Option<String>,
    resilience: Resilience,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    security_data: SecurityData<'a>,
    event_data: EventData<'a>,
}

#[derive(Serialize)]
struct SecurityData<'a> {
    iss: &'a str,
    jti: &'a str,
    /// Milliseconds since the epoch, as in Asgardeo's events.
    iat: u64,
    aud: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventData<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    organization_name: Option<&'a str>,
    send_to: &'a str,
    message_body: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<&'a str>,
}

/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature_header(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    // new_from_slice only fails for algorithms with fixed key sizes; HMAC
    // takes any length, so the fallback is unreachable but panic-free.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex(&mac.finalize().into_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A random (version 4) UUID: unique per event without coordination.
fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl Webhook {
    pub fn new(cfg: &WebhookConfig) -> Result<Self, ProviderError> {
        let secret = secret::read(&cfg.secret)?;
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ProviderError::Config(format!(
                "{}: the signing secret needs at least {MIN_SECRET_BYTES} characters \
                 (e.g. `openssl rand -hex 32`)",
                cfg.secret.location()
            )));
        }
        Ok(Webhook {
            client: super::client::build(cfg.resilience.timeout, &cfg.transport)?,
            url: cfg.url.clone(),
            secret,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            organization: cfg.organization.clone(),
            resilience: cfg.resilience,
            name: cfg.name.clone(),
        })
    }

    async fn deliver(&self, sms: &Sms, meta: &SendMeta) -> Result<Receipt, ProviderError> {
        let mut scrubber = Scrubber::for_sms(sms);
        scrubber.add(&self.secret, "***");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let jti = uuid_v4();
        let host = meta.host.clone().or_else(system_hostname);
        let event = Event {
            security_data: SecurityData {
                iss: &self.issuer,
                jti: &jti,
                iat: now.as_millis() as u64,
                aud: &self.audience,
            },
            event_data: EventData {
                organization_name: self.organization.as_deref(),
                send_to: sms.to.e164(),
                message_body: &sms.body,
                host: host.as_deref(),
                service: meta.service.as_deref(),
            },
        };
        let body = Zeroizing::new(serde_json::to_vec(&event).map_err(|e| {
            ProviderError::Permanent(format!("{}: cannot encode the event: {e}", self.name))
        })?);
        let signature = signature_header(self.secret.as_bytes(), now.as_secs(), &body);
        let response = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(EVENT_ID_HEADER, &jti)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| response::transport_error(&self.name, &self.url, e, &scrubber))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(Receipt {
                detail: format!("HTTP {status}"),
                id: Some(jti),
            });
        }
        let headers = response.headers().clone();
        let raw = response::read_bounded(response, MAX_BODY).await;
        let mut msg = format!("HTTP {status} from {}", self.name);
        let s = response::snippet(&raw, &scrubber);
        if !s.is_empty() {
            msg.push_str(": ");
            msg.push_str(&s);
        }
        Err(response::classify_status(status, &headers, msg))
    }
}

fn system_hostname() -> Option<String> {
    nix::unistd::gethostname().ok()?.into_string().ok()
}

impl SmsProvider for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, sms: &'a Sms, meta: &'a SendMeta) -> SendFuture<'a> {
        Box::pin(self.deliver(sms, meta))
    }

    fn resilience(&self) -> Resilience {
        self.resilience
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // Computed with: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'k'
        let s = signature_header(b"k", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            s,
            "t=1700000000,v1=1b6ad1bc9bf48c52ce01939866d5877c6cc4e87ddad27e16673cb8c4964394a3"
        );
    }

    #[test]
    fn uuids_are_v4_and_distinct() {
        let a = uuid_v4();
        let b = uuid_v4();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]));
    }
}
