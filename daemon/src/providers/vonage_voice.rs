//! The Vonage Voice API, "Create an outbound call": `POST
//! {api_base}/v1/calls` with a JSON body: `to` (a `phone` endpoint,
//! digits without `+`), `from`, and an inline NCCO whose one `talk`
//! action speaks the text twice (`loop: 2`). Auth is a bearer JWT signed
//! RS256 with the application's private key, carrying `application_id`,
//! `iat`, `exp` and a fresh `jti`; one is made per call, valid a few
//! minutes, so a leaked one is soon worthless. Success is 201 with the
//! call's `uuid`; errors are JSON with `title` and `detail`.

use super::response::{self, Scrubber, MAX_BODY};
use super::SmsProvider;
use super::{secret, spoken, Channel, ProviderError, Receipt, SendFuture, SendMeta, Sms};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Client;
use serde::{Deserialize, Serialize};
use smsotp_config::provider::{Resilience, VoiceText, VonageVoiceConfig};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// How long a signed token is valid: a call is placed within seconds.
const TOKEN_LIFETIME: Duration = Duration::from_secs(300);

pub struct VonageVoice {
    name: String,
    client: Client,
    url: String,
    application_id: String,
    /// Parsed once at build: a broken key fails at start, not at login.
    key: EncodingKey,
    from: String,
    voice: VoiceText,
    resilience: Resilience,
}

impl std::fmt::Debug for VonageVoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VonageVoice")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    application_id: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
}

#[derive(Deserialize)]
struct Created {
    uuid: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
struct VonageErrorBody {
    title: Option<String>,
    detail: Option<String>,
}

impl VonageVoice {
    pub fn new(cfg: &VonageVoiceConfig) -> Result<Self, ProviderError> {
        let pem = secret::read_pem(&cfg.private_key)?;
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| {
            ProviderError::Config(format!(
                "{}: is not an RSA private key in PEM form (the application's private.key)",
                cfg.private_key.location()
            ))
        })?;
        Ok(VonageVoice {
            client: super::client::build(cfg.resilience.timeout, &cfg.transport)?,
            url: format!("{}/v1/calls", cfg.api_base),
            application_id: cfg.application_id.clone(),
            key,
            from: cfg.from.clone(),
            voice: cfg.voice.clone(),
            resilience: cfg.resilience,
            name: cfg.name.clone(),
        })
    }

    fn token(&self) -> Result<Zeroizing<String>, ProviderError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            application_id: &self.application_id,
            iat: now,
            exp: now + TOKEN_LIFETIME.as_secs(),
            jti: format!("{:032x}", rand::random::<u128>()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map(Zeroizing::new)
            .map_err(|e| {
                ProviderError::Permanent(format!("{}: cannot sign the token: {e}", self.name))
            })
    }

    pub(crate) fn body(&self, sms: &Sms, text: &str) -> serde_json::Value {
        serde_json::json!({
            "to": [{ "type": "phone", "number": sms.to.digits() }],
            "from": { "type": "phone", "number": self.from },
            "ncco": [{
                "action": "talk",
                "text": text,
                "language": self.voice.language,
                "loop": 2,
            }],
        })
    }

    async fn deliver(&self, sms: &Sms, meta: &SendMeta) -> Result<Receipt, ProviderError> {
        let text = spoken::text(&self.voice, sms, meta);
        let token = self.token()?;
        let mut scrubber = Scrubber::for_sms(sms);
        scrubber.add(&token, "***");
        spoken::scrub(&mut scrubber, &text, meta);
        let body = Zeroizing::new(self.body(sms, &text).to_string());
        let mut auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", *token))
            .map_err(|_| ProviderError::Permanent(format!("{}: unusable token", self.name)))?;
        auth.set_sensitive(true);
        let response = self
            .client
            .post(&self.url)
            .header(reqwest::header::AUTHORIZATION, auth)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| response::transport_error(&self.name, &self.url, e, &scrubber))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let raw = response::read_bounded(response, MAX_BODY).await;
        if (200..300).contains(&status) {
            let created: Option<Created> = serde_json::from_slice(&raw).ok();
            let (state, id) = created.map(|c| (c.status, c.uuid)).unwrap_or_default();
            return Ok(spoken::receipt(status, state, id, &scrubber));
        }
        let mut msg = format!("HTTP {status} from {}", self.name);
        match serde_json::from_slice::<VonageErrorBody>(&raw)
            .ok()
            .filter(|e| e.title.is_some() || e.detail.is_some())
        {
            Some(e) => {
                for part in [e.title, e.detail].into_iter().flatten() {
                    msg.push_str(": ");
                    msg.push_str(&response::snippet(part.as_bytes(), &scrubber));
                }
            }
            None => {
                let s = response::snippet(&raw, &scrubber);
                if !s.is_empty() {
                    msg.push_str(": ");
                    msg.push_str(&s);
                }
            }
        }
        if status == 401 {
            msg.push_str("; check application_id and the private key");
        }
        Err(response::classify_status(status, &headers, msg))
    }
}

impl SmsProvider for VonageVoice {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, sms: &'a Sms, meta: &'a SendMeta) -> SendFuture<'a> {
        Box::pin(self.deliver(sms, meta))
    }

    fn channel(&self) -> Channel {
        Channel::Voice
    }

    fn resilience(&self) -> Resilience {
        self.resilience
    }
}
