//! Every provider type: a good entry parses to the expected values, and
//! each mistake names file, line and key.

use super::*;
use std::time::Duration;

const FILE: &str = "/etc/smsotp/smsotpd.toml";
const SID: &str = "AC0123456789abcdef0123456789abcdef";

fn parse(text: &str) -> Result<Vec<ProviderConfig>, String> {
    crate::parse(Path::new(FILE), text)
        .map(|c| c.providers)
        .map_err(|e| e.to_string())
}

fn err(text: &str) -> String {
    parse(text).unwrap_err()
}

#[test]
fn twilio_entry() {
    let p = parse(&format!(
        "[[provider]]\ntype = \"twilio\"\naccount_sid = \"{SID}\"\nauth_token_file = \"/etc/smsotp/t\"\n\
         from = \"+15005550006\"\ntimeout_seconds = 5\nretries = 2\nretry_backoff_ms = 250\n\
         breaker_failures = 4\nbreaker_cooldown_seconds = 30\nproxy = \"http://proxy:3128\"\nca_file = \"/etc/ssl/x.pem\"\n"
    ))
    .unwrap();
    let ProviderConfig::Twilio(t) = &p[0] else {
        panic!()
    };
    assert_eq!(t.name, "twilio");
    assert_eq!(t.api_base, TWILIO_API_BASE);
    assert_eq!(
        t.resilience,
        Resilience {
            timeout: Duration::from_secs(5),
            retries: 2,
            backoff: Duration::from_millis(250),
            breaker_failures: 4,
            breaker_cooldown: Duration::from_secs(30),
        }
    );
    assert_eq!(t.transport.proxy.as_deref(), Some("http://proxy:3128"));
    assert!(matches!(&t.auth, TwilioAuth::AuthToken(s) if s.key == "provider[0].auth_token_file"));
    assert_eq!(p[0].resilience(), t.resilience);
    assert_eq!(p[0].inline_secret_key(0), None);
}

#[test]
fn twilio_mistakes() {
    let base = "[[provider]]\ntype = \"twilio\"\n";
    let e = err(&format!(
        "{base}account_sid = \"AC123\"\nauth_token_file = \"/t\"\nfrom = \"+15005550006\"\n"
    ));
    assert!(
        e.starts_with(&format!(
            "{FILE}:3: provider[0].account_sid: must be a Twilio Account SID"
        )),
        "{e}"
    );
    let e = err(&format!(
        "{base}account_sid = \"{SID}\"\nfrom = \"+15005550006\"\n"
    ));
    assert!(e.contains("provider[0].auth_token: is required"), "{e}");
    let e = err(&format!("{base}account_sid = \"{SID}\"\nauth_token = \"a\"\nauth_token_file = \"/t\"\nfrom = \"+1500\"\n"));
    assert!(e.contains(":4: provider[0].auth_token: set only one of auth_token, auth_token_file and auth_token_credential"), "{e}");
    let e = err(&format!(
        "{base}account_sid = \"{SID}\"\nauth_token_file = \"/t\"\n"
    ));
    assert!(
        e.contains("provider[0].from: is required unless messaging_service_sid"),
        "{e}"
    );
    let e = err(&format!("{base}account_sid = \"{SID}\"\nauth_token_file = \"/t\"\nfrom = \"+15005550006\"\napi_base = \"http://api.twilio.com\"\n"));
    assert!(e.contains(":6: provider[0].api_base: must be https"), "{e}");
    let e = err(&format!("{base}account_sid = \"{SID}\"\nauth_token_file = \"/t\"\nfrom = \"+15005550006\"\nretries = 9\n"));
    assert!(
        e.contains(":6: provider[0].retries: must be between 0 and 5, not 9"),
        "{e}"
    );
    // serde buffers internally tagged enums, so the line of an unknown key
    // inside a [[provider]] is lost (as for every provider type); the
    // message still names the key and lists the valid ones.
    let e = err(&format!("{base}account_sid = \"{SID}\"\nauth_token_file = \"/t\"\nfrom = \"+15005550006\"\ntoken = \"x\"\n"));
    assert!(
        e.contains("unknown field `token`, expected one of `name`, `api_base`"),
        "{e}"
    );
    let e = err(&format!("{base}account_sid = \"{SID}\"\nauth_token_file = \"/t\"\nfrom = \"+15005550006\"\nvalidity_period_seconds = 0\n"));
    assert!(
        e.contains("provider[0].validity_period_seconds: must be between 1 and 36000"),
        "{e}"
    );
}

#[test]
fn vonage_entry_and_mistakes() {
    let p = parse("[[provider]]\ntype = \"vonage\"\napi_key = \"abcd1234\"\napi_secret_credential = \"vonage\"\nfrom = \"+447700900000\"\n").unwrap();
    let ProviderConfig::Vonage(v) = &p[0] else {
        panic!()
    };
    assert_eq!(v.from, "447700900000", "no + for Vonage");
    assert_eq!(v.api_base, VONAGE_API_BASE);
    let e = err("[[provider]]\ntype = \"vonage\"\napi_key = \"abc\"\napi_secret_file = \"/s\"\nfrom = \"Acme\"\n");
    assert!(
        e.starts_with(&format!(
            "{FILE}:3: provider[0].api_key: must be the 8-character"
        )),
        "{e}"
    );
    let e = err("[[provider]]\ntype = \"vonage\"\napi_key = \"abcd1234\"\nfrom = \"Acme\"\n");
    assert!(e.contains("provider[0].api_secret: is required"), "{e}");
    let e = err("[[provider]]\ntype = \"vonage\"\napi_key = \"abcd1234\"\napi_secret_file = \"/s\"\nfrom = \"Way Too Long Sender\"\n");
    assert!(
        e.contains(":5: provider[0].from: must be an E.164 number"),
        "{e}"
    );
}

#[test]
fn webhook_entry_and_mistakes() {
    let p = parse("[[provider]]\ntype = \"webhook\"\nurl = \"https://hooks.example/sms/\"\nsecret_file = \"/k\"\n").unwrap();
    let ProviderConfig::Webhook(w) = &p[0] else {
        panic!()
    };
    assert_eq!(w.url, "https://hooks.example/sms/");
    assert_eq!(
        w.audience, w.url,
        "the audience defaults to the URL as written"
    );
    assert_eq!(w.issuer, "smsotp");
    let e = err("[[provider]]\ntype = \"webhook\"\nurl = \"https://hooks.example/x?k=1\"\nsecret_file = \"/k\"\n");
    assert!(
        e.contains(":3: provider[0].url: must not have a query"),
        "{e}"
    );
    let e = err("[[provider]]\ntype = \"webhook\"\nurl = \"https://hooks.example/x\"\nsecret_credential = \"../etc/shadow\"\n");
    assert!(
        e.contains(":4: provider[0].secret_credential: must be a systemd credential name"),
        "{e}"
    );
}

#[test]
fn webhook_signature_scheme_and_rotation() {
    use super::SignatureScheme;
    let base = "[[provider]]\ntype = \"webhook\"\nurl = \"https://hooks.example/x\"\nsecret_file = \"/k\"\n";
    let p = parse(base).unwrap();
    let ProviderConfig::Webhook(w) = &p[0] else {
        panic!()
    };
    assert_eq!(w.scheme, SignatureScheme::Standard, "standard by default");
    assert!(w.previous_secret.is_none());
    let p = parse(&format!("{base}previous_secret_file = \"/old\"\n")).unwrap();
    assert_eq!(p[0].secrets().len(), 2, "both keys are read and located");
    let p = parse(&format!("{base}signature_scheme = \"smsotp-v1\"\n")).unwrap();
    let ProviderConfig::Webhook(w) = &p[0] else {
        panic!()
    };
    assert_eq!(w.scheme, SignatureScheme::SmsotpV1);
    let e = err(&format!("{base}signature_scheme = \"hmac\"\n"));
    assert!(
        e.contains(":5: provider[0].signature_scheme: must be \"standard\""),
        "{e}"
    );
    let e = err(&format!(
        "{base}signature_scheme = \"smsotp-v1\"\nprevious_secret_file = \"/old\"\n"
    ));
    assert!(
        e.contains("provider[0].previous_secret_file: needs signature_scheme = \"standard\""),
        "{e}"
    );
}

#[test]
fn modem_entry_and_mistakes() {
    let p = parse("[[provider]]\ntype = \"modem\"\n").unwrap();
    let ProviderConfig::Modem(m) = &p[0] else {
        panic!()
    };
    assert_eq!(m.select, ModemSelect::First);
    assert!(m.delete_after_send);
    assert_eq!(m.resilience.timeout, Duration::from_secs(12));
    let e = err("[[provider]]\ntype = \"modem\"\nimei = \"12ab\"\n");
    assert!(
        e.contains(":3: provider[0].imei: must be 14 to 17 digits"),
        "{e}"
    );
    let e = err("[[provider]]\ntype = \"modem\"\nmodem_path = \"/org/x\"\n");
    assert!(
        e.contains(":3: provider[0].modem_path: must be a ModemManager object path"),
        "{e}"
    );
    let e = err("[[provider]]\ntype = \"modem\"\nimei = \"350000000000001\"\nmodem_path = \"/org/freedesktop/ModemManager1/Modem/0\"\n");
    assert!(e.contains("set imei or modem_path, not both"), "{e}");
}

#[test]
fn inline_secrets_are_found() {
    let p = parse(&format!("[[provider]]\ntype = \"outbox\"\n[[provider]]\ntype = \"twilio\"\naccount_sid = \"{SID}\"\nauth_token = \"t\"\nfrom = \"+15005550006\"\n")).unwrap();
    assert_eq!(
        p[1].inline_secret_key(1).as_deref(),
        Some("provider[1].auth_token")
    );
    let p = parse("[[provider]]\ntype = \"http\"\nurl = \"https://u:pw@gw/x\"\npayload = '{\"t\": {{body}}}'\n").unwrap();
    assert_eq!(
        p[0].inline_secret_key(0).as_deref(),
        Some("provider[0].url")
    );
    let p = parse("[[provider]]\ntype = \"http\"\nmethod = \"GET\"\nurl = \"https://gw/x?api_key=K&to=$ctx.num&text=$ctx.msg\"\n").unwrap();
    assert_eq!(
        p[0].inline_secret_key(0),
        None,
        "an API key id in the query is not flagged"
    );
    let p = parse("[[provider]]\ntype = \"http\"\nurl = \"https://gw/x\"\npayload = '{\"t\": {{body}}}'\nheaders = { X-Tags = \"a\" }\n").unwrap();
    assert_eq!(p[0].inline_secret_key(0), None);
}

#[test]
fn voice_entries() {
    let p = parse(&format!(
        "[[provider]]\ntype = \"twilio-voice\"\naccount_sid = \"{SID}\"\nauth_token_file = \"/etc/smsotp/t\"\n\
         from = \"+15005550006\"\nretries = 0\n\n\
         [[provider]]\ntype = \"vonage-voice\"\napplication_id = \"aaaaaaaa-bbbb-cccc-dddd-0123456789ab\"\n\
         private_key_file = \"/etc/smsotp/vonage.key\"\nfrom = \"+15005550006\"\nlanguage = \"de-DE\"\n\
         voice_message = \"Code {{{{code}}}}\"\n"
    ))
    .unwrap();
    assert!(p.iter().all(ProviderConfig::is_voice));
    let ProviderConfig::TwilioVoice(t) = &p[0] else {
        panic!()
    };
    assert_eq!(
        (t.name.as_str(), t.from.as_str()),
        ("twilio-voice", "+15005550006")
    );
    assert_eq!(t.voice.language, "en-US");
    assert_eq!(t.resilience.retries, 0);
    let ProviderConfig::VonageVoice(v) = &p[1] else {
        panic!()
    };
    assert_eq!(
        (v.api_base.as_str(), v.from.as_str()),
        (voice::VONAGE_VOICE_API_BASE, "15005550006")
    );
    assert_eq!(v.voice.language, "de-DE");
    assert_eq!(p[1].secrets()[0].key, "provider[1].private_key_file");
}

#[test]
fn voice_mistakes_name_the_key() {
    let twilio = |extra: &str| {
        format!(
            "[[provider]]\ntype = \"twilio-voice\"\naccount_sid = \"{SID}\"\nauth_token_file = \"/etc/smsotp/t\"\n{extra}"
        )
    };
    let e = err(&twilio("from = \"ACME\"\n"));
    assert!(
        e.contains("provider[0].from") && e.contains("phone number"),
        "{e}"
    );
    let e = err(&twilio(
        "from = \"+15005550006\"\nvoice_message = \"no code here\"\n",
    ));
    assert!(
        e.contains("provider[0].voice_message") && e.contains("{{code}}"),
        "{e}"
    );
    let e = err(&twilio(
        "from = \"+15005550006\"\nvoice_message = \"{{code}} for {{user}}\"\n",
    ));
    assert!(e.contains("provider[0].voice_message"), "{e}");
    let e = err(&twilio(
        "from = \"+15005550006\"\nmessaging_service_sid = \"MG0\"\n",
    ));
    assert!(e.contains("messaging_service_sid"), "{e}");
    let e = err(
        "[[provider]]\ntype = \"vonage-voice\"\napplication_id = \"not-a-uuid\"\n\
         private_key_file = \"/etc/smsotp/k\"\nfrom = \"15005550006\"\n",
    );
    assert!(e.contains("provider[0].application_id"), "{e}");
    let e = err(
        "[[provider]]\ntype = \"vonage-voice\"\napplication_id = \"aaaaaaaa-bbbb-cccc-dddd-0123456789ab\"\n\
         from = \"15005550006\"\n",
    );
    assert!(e.contains("provider[0].private_key"), "{e}");
}
