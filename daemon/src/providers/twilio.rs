//! Twilio Programmable Messaging, "Create a Message":
//! `POST {api_base}/2010-04-01/Accounts/{AccountSid}/Messages.json` with
//! form fields `To`, `From` or `MessagingServiceSid`, `Body` and
//! `ValidityPeriod`; HTTP Basic auth with the Account SID and auth token,
//! or an API key SID and secret. Success is 201 with the message JSON;
//! errors carry `code`, `message` and `more_info`.

use super::response::{self, Scrubber, MAX_BODY};
use super::{secret, ProviderError, Receipt, SendFuture, SendMeta, Sms, SmsProvider};
use reqwest::Client;
use serde::Deserialize;
use smsotp_config::provider::{Resilience, TwilioAuth, TwilioConfig};
use std::time::Duration;
use zeroize::Zeroizing;

pub struct Twilio {
    name: String,
    client: Client,
    /// `{api_base}/2010-04-01/Accounts/{sid}/Messages.json`.
    url: String,
    /// `{api_base}/...`: the URL without the account, for errors.
    endpoint: String,
    /// `Basic ...`, built once.
    authorization: reqwest::header::HeaderValue,
    /// The secret and its base64 form, for scrubbing.
    secret: Zeroizing<String>,
    encoded: Zeroizing<String>,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    validity_period: Option<Duration>,
    resilience: Resilience,
}

impl std::fmt::Debug for Twilio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Twilio")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// The fields of Twilio's answers we use; everything else is ignored.
#[derive(Deserialize)]
struct Created {
    sid: Option<String>,
    status: Option<String>,
    num_segments: Option<String>,
}

#[derive(Deserialize)]
struct TwilioErrorBody {
    code: Option<i64>,
    message: Option<String>,
    more_info: Option<String>,
}

impl Twilio {
    pub fn new(cfg: &TwilioConfig) -> Result<Self, ProviderError> {
        let (authorization, secret, encoded) = basic(&cfg.auth, &cfg.account_sid)?;
        Ok(Twilio {
            client: super::client::build(cfg.resilience.timeout, &cfg.transport)?,
            url: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                cfg.api_base, cfg.account_sid
            ),
            endpoint: format!("{}/2010-04-01/Accounts/AC.../Messages.json", cfg.api_base),
            authorization,
            secret,
            encoded,
            from: cfg.from.clone(),
            messaging_service_sid: cfg.messaging_service_sid.clone(),
            validity_period: cfg.validity_period,
            resilience: cfg.resilience,
            name: cfg.name.clone(),
        })
    }

    /// The form, in the order Twilio documents it. Only fields the spec
    /// defines; `To` is E.164.
    pub(crate) fn form(&self, sms: &Sms, meta: &SendMeta) -> Vec<(&'static str, String)> {
        let mut form = vec![("To", sms.to.e164().to_string())];
        if let Some(f) = &self.from {
            form.push(("From", f.clone()));
        }
        if let Some(m) = &self.messaging_service_sid {
            form.push(("MessagingServiceSid", m.clone()));
        }
        form.push(("Body", sms.body.to_string()));
        if let Some(v) = self.validity_period.or(meta.validity) {
            // The spec's range is 1 to 36000 seconds.
            form.push(("ValidityPeriod", v.as_secs().clamp(1, 36000).to_string()));
        }
        form
    }

    async fn deliver(&self, sms: &Sms, meta: &SendMeta) -> Result<Receipt, ProviderError> {
        let mut scrubber = Scrubber::for_sms(sms);
        scrubber.add(&self.secret, "***");
        scrubber.add(&self.encoded, "***");
        let form = self.form(sms, meta);
        let body = Zeroizing::new(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
                .finish(),
        );
        let (status, headers, body) = post_form(
            &self.client,
            &self.url,
            &self.authorization,
            &body,
            (&self.name, &self.endpoint),
            &scrubber,
        )
        .await?;
        if (200..300).contains(&status) {
            // 201 is Twilio's "created". An unreadable body does not undo
            // that: the status is the answer, the JSON only adds the SID.
            let created: Option<Created> = serde_json::from_slice(&body).ok();
            let mut detail = format!("HTTP {status}");
            let mut id = None;
            if let Some(c) = created {
                if let Some(s) = c.status {
                    detail.push_str(&format!(
                        ", status {}",
                        response::snippet(s.as_bytes(), &scrubber)
                    ));
                }
                if let Some(n) = c.num_segments {
                    detail.push_str(&format!(
                        ", {} segment(s)",
                        response::snippet(n.as_bytes(), &scrubber)
                    ));
                }
                id = c.sid.map(|s| response::snippet(s.as_bytes(), &scrubber));
            }
            return Ok(Receipt { detail, id });
        }
        Err(error(&self.name, status, &headers, &body, &scrubber))
    }
}

/// The `Authorization` header for the account (its SID and auth token, or
/// an API key), with the secret and its base64 form for scrubbing.
pub(super) type Basic = (
    reqwest::header::HeaderValue,
    Zeroizing<String>,
    Zeroizing<String>,
);

pub(super) fn basic(auth: &TwilioAuth, account_sid: &str) -> Result<Basic, ProviderError> {
    let user = match auth {
        TwilioAuth::AuthToken(_) => account_sid,
        TwilioAuth::ApiKey { sid, .. } => sid.as_str(),
    };
    let secret = secret::read(auth.secret())?;
    let (authorization, encoded) = response::basic_auth(user, &secret);
    Ok((authorization, secret, encoded))
}

/// One form POST with Basic auth: the status, headers and bounded body of
/// the answer. Shared with the Calls API (`twilio_voice.rs`).
pub(super) async fn post_form(
    client: &Client,
    url: &str,
    authorization: &reqwest::header::HeaderValue,
    body: &str,
    (name, endpoint): (&str, &str),
    scrubber: &Scrubber,
) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), ProviderError> {
    let response = client
        .post(url)
        .header(reqwest::header::AUTHORIZATION, authorization.clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| response::transport_error(name, endpoint, e, scrubber))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response::read_bounded(response, MAX_BODY).await;
    Ok((status, headers, body))
}

/// A non-2xx answer of the 2010 API, Messages and Calls alike.
pub(super) fn error(
    name: &str,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    scrubber: &Scrubber,
) -> ProviderError {
    // Twilio's error JSON; anything else (a proxy's HTML page, `{}`)
    // is shown as a snippet instead.
    let parsed: Option<TwilioErrorBody> = serde_json::from_slice::<TwilioErrorBody>(body)
        .ok()
        .filter(|p| p.code.is_some() || p.message.is_some());
    let mut msg = format!("HTTP {status} from {name}");
    let code = parsed.as_ref().and_then(|p| p.code);
    match &parsed {
        Some(p) => {
            if let Some(c) = p.code {
                msg.push_str(&format!(", Twilio error {c}"));
            }
            if let Some(m) = &p.message {
                msg.push_str(": ");
                msg.push_str(&response::snippet(m.as_bytes(), scrubber));
            }
            if let Some(more) = &p.more_info {
                msg.push_str(&format!(
                    " ({})",
                    response::snippet(more.as_bytes(), scrubber)
                ));
            }
        }
        None => {
            let s = response::snippet(body, scrubber);
            if !s.is_empty() {
                msg.push_str(": ");
                msg.push_str(&s);
            }
        }
    }
    if status == 401 {
        msg.push_str("; check account_sid and the auth token or API key");
    }
    match code {
        // Errors about this destination, not about our account:
        // 21211 invalid To, 21408 region not enabled, 21610 recipient
        // replied STOP, 21612 unroutable, 21614 not a mobile number;
        // for calls 21215 (geographic permission) and 13224 (invalid
        // phone number).
        Some(21211 | 21215 | 21408 | 21610 | 21612 | 21614 | 13224) => {
            ProviderError::Recipient(msg)
        }
        _ => response::classify_status(status, headers, msg),
    }
}

impl SmsProvider for Twilio {
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
