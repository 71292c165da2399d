//! The signed event webhook: the Asgardeo "SMS OTP notification" event
//! POSTed as JSON to a receiver that sends the SMS itself:
//!
//! ```json
//! {"securityData": {"iss": "smsotp", "jti": "<uuid>", "iat": 1659732032884, "aud": "<url>"},
//!  "eventData": {"sendTo": "+15551234567", "messageBody": "...", "host": "bastion-1", "service": "sshd"}}
//! ```
//!
//! Signed so the receiver can verify origin and refuse replays, over the
//! exact body bytes. By default per Standard Webhooks (standardwebhooks.com),
//! which receivers check with a published library:
//! `webhook-id: <jti>`, `webhook-timestamp: <unix seconds>`,
//! `webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<ts>.<body>")>`,
//! the key being the base64 of a `whsec_` secret; during a rotation one
//! signature per key, space-separated. With `signature_scheme = "smsotp-v1"`
//! the older header instead:
//! `Smsotp-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! `jti` is unique per event (also sent as `Smsotp-Event-Id`): a receiver
//! drops an id it has seen and any timestamp older than its tolerance
//! (docs/PROVIDERS.md shows how).

use super::response::{self, Scrubber, MAX_BODY};
use super::{secret, ProviderError, Receipt, SendFuture, SendMeta, Sms, SmsProvider};
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::Client;
use serde::Serialize;
use sha2::Sha256;
use smsotp_config::provider::{Resilience, SecretRef, SignatureScheme, WebhookConfig};
use std::time::{SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

pub const SIGNATURE_HEADER: &str = "Smsotp-Signature";
pub const EVENT_ID_HEADER: &str = "Smsotp-Event-Id";
pub const STANDARD_ID_HEADER: &str = "webhook-id";
pub const STANDARD_TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const STANDARD_SIGNATURE_HEADER: &str = "webhook-signature";
/// An HMAC key shorter than this is guessable offline from one event.
const MIN_SECRET_BYTES: usize = 16;
/// The specification's bounds for a `whsec_` key, decoded.
const STANDARD_KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
const STANDARD_PREFIX: &str = "whsec_";

pub struct Webhook {
    name: String,
    client: Client,
    url: String,
    /// The secrets as configured, current first: scrubbed from echoed errors.
    secrets: Vec<Zeroizing<String>>,
    /// The HMAC keys they stand for, in the same order.
    keys: Vec<Zeroizing<Vec<u8>>>,
    scheme: SignatureScheme,
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

/// `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`, one per key,
/// space-separated: the Standard Webhooks `webhook-signature` value.
pub fn standard_signature(keys: &[&[u8]], id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut out = String::new();
    for key in keys {
        // As above: HMAC takes a key of any length.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
            continue;
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str("v1,");
        base64::engine::general_purpose::STANDARD
            .encode_string(mac.finalize().into_bytes(), &mut out);
    }
    out
}

/// The HMAC key of one configured secret under `scheme`. A standard key
/// is `whsec_` and the base64 of 24 to 64 random bytes, as the
/// specification says and its libraries expect.
fn key_of(
    s: &SecretRef,
    text: &str,
    scheme: SignatureScheme,
) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
    let fail = |what: &str| Err(ProviderError::Config(format!("{}: {what}", s.location())));
    match scheme {
        SignatureScheme::SmsotpV1 if text.len() < MIN_SECRET_BYTES => fail(&format!(
            "the signing secret needs at least {MIN_SECRET_BYTES} characters \
             (e.g. `openssl rand -hex 32`)"
        )),
        SignatureScheme::SmsotpV1 => Ok(Zeroizing::new(text.as_bytes().to_vec())),
        SignatureScheme::Standard => {
            let how = "(make one with `echo whsec_$(openssl rand -base64 32)`; \
                       or set signature_scheme = \"smsotp-v1\" to keep the older scheme)";
            let Some(b64) = text.strip_prefix(STANDARD_PREFIX) else {
                return fail(&format!(
                    "a Standard Webhooks secret starts with `whsec_` {how}"
                ));
            };
            // Padded or not: generators differ, the verifiers accept both.
            use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
            let key = match STANDARD
                .decode(b64)
                .or_else(|_| STANDARD_NO_PAD.decode(b64))
            {
                Ok(k) => Zeroizing::new(k),
                Err(_) => return fail(&format!("the text after `whsec_` is not base64 {how}")),
            };
            if !STANDARD_KEY_BYTES.contains(&key.len()) {
                return fail(&format!(
                    "the key is {} bytes; Standard Webhooks wants 24 to 64 {how}",
                    key.len()
                ));
            }
            Ok(key)
        }
    }
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
        let mut secrets = Vec::new();
        let mut keys = Vec::new();
        for s in std::iter::once(&cfg.secret).chain(cfg.previous_secret.as_ref()) {
            let text = secret::read(s)?;
            keys.push(key_of(s, &text, cfg.scheme)?);
            secrets.push(text);
        }
        Ok(Webhook {
            client: super::client::build(cfg.resilience.timeout, &cfg.transport)?,
            url: cfg.url.clone(),
            secrets,
            keys,
            scheme: cfg.scheme,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            organization: cfg.organization.clone(),
            resilience: cfg.resilience,
            name: cfg.name.clone(),
        })
    }

    async fn deliver(&self, sms: &Sms, meta: &SendMeta) -> Result<Receipt, ProviderError> {
        let mut scrubber = Scrubber::for_sms(sms);
        for s in &self.secrets {
            scrubber.add(s, "***");
        }
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
        let mut request = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_ID_HEADER, &jti);
        let ts = now.as_secs();
        request = match self.scheme {
            SignatureScheme::Standard => {
                let keys: Vec<&[u8]> = self.keys.iter().map(|k| k.as_slice()).collect();
                request
                    .header(STANDARD_ID_HEADER, &jti)
                    .header(STANDARD_TIMESTAMP_HEADER, ts.to_string())
                    .header(
                        STANDARD_SIGNATURE_HEADER,
                        standard_signature(&keys, &jti, ts, &body),
                    )
            }
            SignatureScheme::SmsotpV1 => {
                request.header(SIGNATURE_HEADER, signature_header(&self.keys[0], ts, &body))
            }
        };
        let response = request
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
    fn standard_signature_matches_the_specification_vector() {
        // The test vector of the Standard Webhooks reference libraries.
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let s = standard_signature(
            &[&key],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(s, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let two = standard_signature(
            &[&key, b"other"],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert!(
            two.starts_with("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,"),
            "{two}"
        );
        assert_eq!(two.split(' ').count(), 2);
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
