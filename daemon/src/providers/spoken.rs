//! What a voice provider says: the `voice_message` template with the code
//! spelled out one character at a time ("4, 7, 1, 1, 0, 9"), so a speech
//! engine neither reads it as a number ("four hundred seventy-one
//! thousand ...") nor runs the digits together. The commas are pauses in
//! both Twilio's and Vonage's engines; the providers repeat the whole text
//! a second time.

use super::response::{self, Scrubber};
use super::{Receipt, SendMeta, Sms};
use smsotp_config::provider::voice::MAX_VOICE_TEXT;
use smsotp_config::provider::VoiceText;
use smsotp_config::Var;
use zeroize::Zeroizing;

/// The code and its expiry, for the voice template. `Debug` hides the code.
#[derive(Clone)]
pub struct Spoken {
    pub code: Zeroizing<String>,
    pub expiry_minutes: u64,
}

impl std::fmt::Debug for Spoken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Spoken {{ code: ***, expiry_minutes: {} }}",
            self.expiry_minutes
        )
    }
}

/// `code` one character at a time, separated by `", "`.
pub fn spell(code: &str, out: &mut String) {
    for (i, c) in code.chars().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push(c);
    }
}

/// The text to speak. Without [`SendMeta::spoken`] (a test message, a
/// notice) there is no code to spell: the SMS text is read as it is.
pub fn text(voice: &VoiceText, sms: &Sms, meta: &SendMeta) -> Zeroizing<String> {
    let Some(spoken) = &meta.spoken else {
        return Zeroizing::new(truncate(&sms.body).to_string());
    };
    let rendered = Zeroizing::new(voice.template.render(|var, out| match var {
        Var::Code => spell(&spoken.code, out),
        Var::ExpiryMinutes => out.push_str(&spoken.expiry_minutes.to_string()),
        Var::Host => out.push_str(meta.host.as_deref().unwrap_or("")),
        Var::Service => out.push_str(meta.service.as_deref().unwrap_or("")),
        // Refused in voice templates at load.
        _ => {}
    }));
    Zeroizing::new(truncate(&rendered).to_string())
}

/// At most [`MAX_VOICE_TEXT`] characters: a host name cannot push the
/// request past what the APIs accept.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(MAX_VOICE_TEXT) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Teaches `scrubber` what a voice gateway might echo besides the number:
/// the spoken text, the code, and the code as spelled out.
pub(crate) fn scrub(scrubber: &mut Scrubber, text: &str, meta: &SendMeta) {
    scrubber.add(text, "<message>");
    if let Some(s) = &meta.spoken {
        scrubber.add(&s.code, "<code>");
        let mut spelled = Zeroizing::new(String::new());
        spell(&s.code, &mut spelled);
        scrubber.add(&spelled, "<code>");
    }
}

/// A placed call's receipt: `HTTP 201, call queued` and the call's id,
/// both as log-safe snippets of what the gateway answered.
pub(crate) fn receipt(
    status: u16,
    state: Option<String>,
    id: Option<String>,
    scrubber: &Scrubber,
) -> Receipt {
    let mut detail = format!("HTTP {status}, call");
    if let Some(s) = state {
        detail.push(' ');
        detail.push_str(&response::snippet(s.as_bytes(), scrubber));
    }
    Receipt {
        detail,
        id: id.map(|s| response::snippet(s.as_bytes(), scrubber)),
    }
}

/// `s` with the five XML special characters escaped, for TwiML.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsotp_config::Mobile;

    fn voice(t: &str) -> VoiceText {
        VoiceText {
            template: smsotp_config::Template::parse(
                t,
                &smsotp_config::provider::voice::VOICE_VARS,
            )
            .unwrap(),
            language: "en-US".into(),
        }
    }

    #[test]
    fn the_code_is_spelled_and_the_rest_rendered() {
        let sms = Sms {
            to: Mobile::parse("+15551234567").unwrap(),
            body: Zeroizing::new("code 123456".into()),
        };
        let meta = SendMeta {
            host: Some("bastion".into()),
            spoken: Some(Spoken {
                code: Zeroizing::new("470109".into()),
                expiry_minutes: 5,
            }),
            ..Default::default()
        };
        let t = text(
            &voice("{{host}}: {{code}} ({{expiry_minutes}})"),
            &sms,
            &meta,
        );
        assert_eq!(&*t, "bastion: 4, 7, 0, 1, 0, 9 (5)");
        // No code given: the SMS text, as it is.
        let t = text(&voice("{{code}}"), &sms, &SendMeta::default());
        assert_eq!(&*t, "code 123456");
        assert!(!format!("{meta:?}").contains("470109"));
    }

    #[test]
    fn long_texts_are_cut_and_markup_escaped() {
        let long = "x".repeat(MAX_VOICE_TEXT + 50);
        assert_eq!(truncate(&long).len(), MAX_VOICE_TEXT);
        assert_eq!(xml_escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
    }
}
