//! Twilio Programmable Voice, "Create a Call":
//! `POST {api_base}/2010-04-01/Accounts/{AccountSid}/Calls.json` with form
//! fields `To`, `From` and `Twiml`, the inline TwiML Twilio runs when the
//! call is answered (so no webhook of ours has to be reachable); Basic
//! auth as for messages. The TwiML speaks the text twice with a pause
//! between, the code spelled out (see `spoken.rs`). Success is 201 with
//! the call JSON (`sid`, `status` "queued"); errors are the 2010 API's
//! `code`/`message` JSON, read by the messaging provider's classifier.

use super::response::Scrubber;
use super::twilio::{error, post_form};
use super::SmsProvider;
use super::{spoken, Channel, ProviderError, Receipt, SendFuture, SendMeta, Sms};
use reqwest::Client;
use serde::Deserialize;
use smsotp_config::provider::{Resilience, TwilioVoiceConfig, VoiceText};
use zeroize::Zeroizing;

/// `Twiml` is at most 4000 characters (the spec).
const MAX_TWIML: usize = 4000;

pub struct TwilioVoice {
    name: String,
    client: Client,
    url: String,
    endpoint: String,
    authorization: reqwest::header::HeaderValue,
    secret: Zeroizing<String>,
    encoded: Zeroizing<String>,
    from: String,
    voice: VoiceText,
    resilience: Resilience,
}

impl std::fmt::Debug for TwilioVoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioVoice")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Created {
    sid: Option<String>,
    status: Option<String>,
}

impl TwilioVoice {
    pub fn new(cfg: &TwilioVoiceConfig) -> Result<Self, ProviderError> {
        let (authorization, secret, encoded) = super::twilio::basic(&cfg.auth, &cfg.account_sid)?;
        Ok(TwilioVoice {
            client: super::client::build(cfg.resilience.timeout, &cfg.transport)?,
            url: format!(
                "{}/2010-04-01/Accounts/{}/Calls.json",
                cfg.api_base, cfg.account_sid
            ),
            endpoint: format!("{}/2010-04-01/Accounts/AC.../Calls.json", cfg.api_base),
            authorization,
            secret,
            encoded,
            from: cfg.from.clone(),
            voice: cfg.voice.clone(),
            resilience: cfg.resilience,
            name: cfg.name.clone(),
        })
    }

    /// The text twice, a pause between and before: the first words of a
    /// call are often lost while the phone reaches the ear.
    fn twiml(&self, text: &str) -> Zeroizing<String> {
        let lang = spoken::xml_escape(&self.voice.language);
        let say = format!(
            "<Say language=\"{lang}\">{}</Say>",
            spoken::xml_escape(text)
        );
        Zeroizing::new(format!(
            "<Response><Pause length=\"1\"/>{say}<Pause length=\"2\"/>{say}</Response>"
        ))
    }

    async fn deliver(&self, sms: &Sms, meta: &SendMeta) -> Result<Receipt, ProviderError> {
        let text = spoken::text(&self.voice, sms, meta);
        let twiml = self.twiml(&text);
        if twiml.chars().count() > MAX_TWIML {
            return Err(ProviderError::Permanent(format!(
                "{}: the spoken text is longer than Twilio's {MAX_TWIML} characters of TwiML; shorten voice_message",
                self.name
            )));
        }
        let mut scrubber = Scrubber::for_sms(sms);
        scrubber.add(&self.secret, "***");
        scrubber.add(&self.encoded, "***");
        spoken::scrub(&mut scrubber, &text, meta);
        let form = [
            ("To", sms.to.e164()),
            ("From", self.from.as_str()),
            ("Twiml", twiml.as_str()),
        ];
        let body = Zeroizing::new(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        );
        let (status, headers, raw) = post_form(
            &self.client,
            &self.url,
            &self.authorization,
            &body,
            (&self.name, &self.endpoint),
            &scrubber,
        )
        .await?;
        if !(200..300).contains(&status) {
            return Err(error(&self.name, status, &headers, &raw, &scrubber));
        }
        // 201 places the call; the JSON only adds its SID and status.
        let created: Option<Created> = serde_json::from_slice(&raw).ok();
        let (state, id) = created.map(|c| (c.status, c.sid)).unwrap_or_default();
        Ok(spoken::receipt(status, state, id, &scrubber))
    }
}

impl SmsProvider for TwilioVoice {
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
