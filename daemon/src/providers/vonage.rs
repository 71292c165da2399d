//! The Vonage (Nexmo) SMS API: `POST {api_base}/sms/json` with form fields
//! `api_key`, `api_secret`, `from`, `to` (digits, no `+`), `text`, and
//! `type=unicode` when the text is not GSM-7. Vonage answers HTTP 200
//! even for errors: each message part has its own `status` ("0" is
//! success) and `error-text`, mapped from the spec's `x-errors` table.

use super::encoding;
use super::response::{self, Scrubber, MAX_BODY};
use super::{secret, ProviderError, Receipt, SendFuture, SendMeta, Sms, SmsProvider};
use reqwest::Client;
use serde::Deserialize;
use smsotp_config::provider::{Resilience, VonageConfig};
use zeroize::Zeroizing;

pub struct Vonage {
    name: String,
    client: Client,
    url: String,
    api_key: String,
    api_secret: Zeroizing<String>,
    from: String,
    resilience: Resilience,
}

impl std::fmt::Debug for Vonage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vonage")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Answer {
    messages: Vec<Part>,
}

#[derive(Deserialize)]
struct Part {
    status: String,
    #[serde(rename = "message-id")]
    message_id: Option<String>,
    #[serde(rename = "error-text")]
    error_text: Option<String>,
}

/// What to do about a non-zero status, from the spec's `x-errors` table.
fn classify(status: &str, msg: String) -> ProviderError {
    match status {
        // Throttled: the account's send rate.
        "1" => ProviderError::RateLimited {
            message: msg,
            retry_after: None,
        },
        // Internal error; too many existing binds ("back off and retry").
        "5" | "10" => ProviderError::Retryable(msg),
        // About this destination only: unrecognised prefix, barred,
        // not whitelisted (demo account), de-activated.
        "6" | "7" | "29" | "33" => ProviderError::Recipient(msg),
        // Missing/invalid parameters, invalid credentials, account barred,
        // quota (out of credit), not enabled for HTTP, too long, signature,
        // sender, network code, callback, and anything new.
        _ => ProviderError::Permanent(msg),
    }
}

fn status_name(status: &str) -> &'static str {
    match status {
        "1" => "throttled",
        "2" => "missing parameters",
        "3" => "invalid parameters",
        "4" => "invalid credentials",
        "5" => "internal error",
        "6" => "invalid message",
        "7" => "number barred",
        "8" => "partner account barred",
        "9" => "partner quota violation (out of credit)",
        "10" => "too many existing binds",
        "11" => "account not enabled for HTTP",
        "12" => "message too long",
        "14" => "invalid signature",
        "15" => "invalid sender address",
        "22" => "invalid network code",
        "23" => "invalid callback url",
        "29" => "non-whitelisted destination",
        "32" => "signature and API secret disallowed",
        "33" => "number de-activated",
        _ => "unknown status",
    }
}

impl Vonage {
    pub fn new(cfg: &VonageConfig) -> Result<Self, ProviderError> {
        let api_secret = secret::read(&cfg.api_secret)?;
        // The spec bounds the secret to 6..=32 characters.
        if !(6..=32).contains(&api_secret.len()) {
            return Err(ProviderError::Config(format!(
                "{}: a Vonage API secret has 6 to 32 characters",
                cfg.api_secret.location()
            )));
        }
        Ok(Vonage {
            client: super::client::build(cfg.resilience.timeout, &cfg.transport)?,
            url: format!("{}/sms/json", cfg.api_base),
            api_key: cfg.api_key.clone(),
            api_secret,
            from: cfg.from.clone(),
            resilience: cfg.resilience,
            name: cfg.name.clone(),
        })
    }

    pub(crate) fn form(&self, sms: &Sms, meta: &SendMeta) -> Vec<(&'static str, String)> {
        let mut form = vec![
            ("api_key", self.api_key.clone()),
            ("api_secret", self.api_secret.to_string()),
            ("from", self.from.clone()),
            ("to", sms.to.digits().to_string()),
            ("text", sms.body.to_string()),
        ];
        if encoding::analyze(&sms.body).is_unicode() {
            form.push(("type", "unicode".into()));
        }
        if let Some(v) = meta.validity {
            // Milliseconds; the spec's range is 20 000 to 604 800 000.
            let ms = (v.as_millis() as u64).clamp(20_000, 604_800_000);
            form.push(("ttl", ms.to_string()));
        }
        form
    }

    async fn deliver(&self, sms: &Sms, meta: &SendMeta) -> Result<Receipt, ProviderError> {
        let mut scrubber = Scrubber::for_sms(sms);
        scrubber.add(&self.api_secret, "***");
        let form = self.form(sms, meta);
        let body = Zeroizing::new(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
                .finish(),
        );
        let response = self
            .client
            .post(&self.url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| response::transport_error(&self.name, &self.url, e, &scrubber))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let raw = response::read_bounded(response, MAX_BODY).await;
        if status != 200 {
            let mut msg = format!("HTTP {status} from {}", self.name);
            let s = response::snippet(&raw, &scrubber);
            if !s.is_empty() {
                msg.push_str(": ");
                msg.push_str(&s);
            }
            return Err(response::classify_status(status, &headers, msg));
        }
        let Ok(answer) = serde_json::from_slice::<Answer>(&raw) else {
            // The message may or may not have gone out. Temporary, so the
            // next provider gets its turn; a second copy of the same code
            // is harmless.
            return Err(ProviderError::Retryable(format!(
                "HTTP 200 from {} with an unreadable answer: {}",
                self.name,
                response::snippet(&raw, &scrubber)
            )));
        };
        if answer.messages.is_empty() {
            return Err(ProviderError::Retryable(format!(
                "HTTP 200 from {} listing no message",
                self.name
            )));
        }
        // A long text is several parts; every one must be accepted.
        if let Some(bad) = answer.messages.iter().find(|m| m.status != "0") {
            let code = response::snippet(bad.status.as_bytes(), &scrubber);
            let mut msg = format!(
                "{}: status {code} ({})",
                self.name,
                status_name(&bad.status)
            );
            if let Some(t) = &bad.error_text {
                msg.push_str(": ");
                msg.push_str(&response::snippet(t.as_bytes(), &scrubber));
            }
            return Err(classify(&bad.status, msg));
        }
        let parts = answer.messages.len();
        Ok(Receipt {
            detail: format!("status 0, {parts} part(s)"),
            id: answer.messages[0]
                .message_id
                .as_ref()
                .map(|id| response::snippet(id.as_bytes(), &scrubber)),
        })
    }
}

impl SmsProvider for Vonage {
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
