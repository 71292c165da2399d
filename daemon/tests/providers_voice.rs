//! The voice providers against loopback mocks answering as the specs say
//! (`shared/specs/twilio_calls.json`, `vonage_voice.yml`): the exact
//! request, checked against the spec; the code spelled out and spoken
//! twice; the Vonage JWT verified with the key's public half; errors
//! classified; and the chain's fallback from SMS to a call.

mod providers_support;
#[path = "providers_support/spec.rs"]
mod spec;

use providers_support::*;
use smsotpd::providers::{AttemptOutcome, ProviderError, Route, SendMeta, Spoken};
use std::sync::OnceLock;
use zeroize::Zeroizing;

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "tw-auth-token-5ecret-value";
const CALLS: &str = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls.json";
const APP: &str = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab";
/// The code of [`BODY`], as the voice providers must say it.
const SPELLED: &str = "9, 1, 8, 2, 7, 3";

fn logs() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(capture_all_logs)
}

fn meta() -> SendMeta {
    SendMeta {
        host: Some("bastion-1".into()),
        spoken: Some(Spoken {
            code: Zeroizing::new("918273".into()),
            expiry_minutes: 5,
        }),
        ..Default::default()
    }
}

fn call_created() -> Reply {
    Reply::json(
        201,
        r#"{"account_sid":"AC0123456789abcdef0123456789abcdef","api_version":"2010-04-01",
            "direction":"outbound-api","from":"+15005550006","sid":"CA0123456789abcdef0123456789abcdef",
            "status":"queued","to":"+15551234567","uri":"/2010-04-01/Accounts/AC.../Calls/CA....json"}"#,
    )
}

fn twilio_voice_toml(s: &Setup, base: &str) -> String {
    let token = s.secret_file("twilio.token", TOKEN);
    format!(
        "[[provider]]\ntype = \"twilio-voice\"\napi_base = \"{base}\"\naccount_sid = \"{SID}\"\n\
         auth_token_file = \"{}\"\nfrom = \"+15005550006\"\nretries = 0\n",
        token.display()
    )
}

/// An RSA key made by openssl, as Vonage's dashboard hands one out, and
/// its public half to check our signatures with.
fn rsa_key(s: &Setup) -> (std::path::PathBuf, Vec<u8>) {
    let key = s.dir.path().join("private.key");
    let ok = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl genpkey failed");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    (key, out.stdout)
}

fn vonage_voice_toml(base: &str, key: &std::path::Path) -> String {
    format!(
        "[[provider]]\ntype = \"vonage-voice\"\napi_base = \"{base}\"\napplication_id = \"{APP}\"\n\
         private_key_file = \"{}\"\nfrom = \"+15005550006\"\nretries = 0\nlanguage = \"en-GB\"\n",
        key.display()
    )
}

#[tokio::test]
async fn twilio_call_matches_the_spec_and_speaks_the_code_twice() {
    let mock = Mock::start(|_| call_created()).await;
    let s = Setup::new();
    let chain = s.chain(&twilio_voice_toml(&s, &mock.base));
    assert!(chain.has_voice());
    let d = chain.send_with(&sms(), &meta()).await.unwrap();
    assert_eq!(d.provider, "twilio-voice");
    assert_eq!(
        d.receipt.id.as_deref(),
        Some("CA0123456789abcdef0123456789abcdef")
    );

    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", CALLS));
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    assert_eq!(r.header("authorization"), Some(basic.as_str()));
    assert_eq!(r.form_value("To").as_deref(), Some(NUM));
    assert_eq!(r.form_value("From").as_deref(), Some("+15005550006"));

    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(specs_dir().join("twilio_calls.json")).unwrap())
            .unwrap();
    let schema = &doc["paths"]["/2010-04-01/Accounts/{AccountSid}/Calls.json"]["post"]
        ["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
    let errors = spec::check_form(&doc, schema, &r.form());
    assert!(errors.is_empty(), "{errors:?}");

    let twiml = r.form_value("Twiml").unwrap();
    assert!(twiml.chars().count() <= 4000, "the spec's Twiml limit");
    assert!(
        twiml.starts_with("<Response>") && twiml.ends_with("</Response>"),
        "{twiml}"
    );
    assert_eq!(
        twiml.matches("<Say language=\"en-US\">").count(),
        2,
        "{twiml}"
    );
    assert_eq!(twiml.matches(SPELLED).count(), 2, "{twiml}");
    // Never the code as one number: a speech engine would say "nine
    // hundred eighteen thousand ...".
    assert!(!twiml.contains("918273"), "{twiml}");
    assert!(
        twiml.contains("bastion-1") && twiml.contains("5 minutes"),
        "{twiml}"
    );
}

#[tokio::test]
async fn twilio_call_errors_are_classified_without_the_code() {
    let reply = Reply::json(
        400,
        r#"{"code": 21215, "message": "Geo permission for +15551234567, saying 9, 1, 8, 2, 7, 3 or 918273", "more_info": "https://www.twilio.com/docs/errors/21215", "status": 400}"#,
    );
    let mock = Mock::start(move |_| reply.clone()).await;
    let s = Setup::new();
    let chain = s.chain(&twilio_voice_toml(&s, &mock.base));
    let e = chain.send_with(&sms(), &meta()).await.unwrap_err();
    let [a] = &e.attempts[..] else {
        panic!("{e:?}")
    };
    let AttemptOutcome::Failed(err @ ProviderError::Recipient(text)) = &a.outcome else {
        panic!("{a:?}")
    };
    assert!(text.contains("Twilio error 21215"), "{err}");
    assert!(!text.contains("918273") && !text.contains(NUM), "{err}");
    assert!(!text.contains(SPELLED), "{err}");
}

#[tokio::test]
async fn vonage_call_matches_the_spec_with_a_verifiable_jwt() {
    let mock = Mock::start(|_| {
        Reply::json(
            201,
            r#"{"uuid":"63f61863-4a51-4f6b-86e1-46edebcf9356","status":"started","direction":"outbound","conversation_uuid":"CON-f972836a-550f-45fa-956c-12a2ab5b7d22"}"#,
        )
    })
    .await;
    let s = Setup::new();
    let (key, public) = rsa_key(&s);
    let chain = s.chain(&vonage_voice_toml(&mock.base, &key));
    let d = chain.send_with(&sms(), &meta()).await.unwrap();
    assert_eq!(
        d.receipt.id.as_deref(),
        Some("63f61863-4a51-4f6b-86e1-46edebcf9356")
    );
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("POST", "/v1/calls")
    );
    assert_eq!(r.header("content-type"), Some("application/json"));

    // The bearer token: RS256 over our claims, checked with the public key.
    let jwt = r
        .header("authorization")
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.required_spec_claims = ["exp", "iat"].iter().map(|s| s.to_string()).collect();
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        jwt,
        &jsonwebtoken::DecodingKey::from_rsa_pem(&public).unwrap(),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["application_id"], APP);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        300
    );
    assert_eq!(claims["jti"].as_str().unwrap().len(), 32);

    // The body against the spec's CreateCallRequestNcco.
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let doc = yaml_doc("vonage_voice.yml");
    let errors = check_call(&doc, &body);
    assert!(errors.is_empty(), "{errors:?}\n{body}");
    assert_eq!(body["to"][0]["number"], "15551234567");
    let talk = &body["ncco"][0];
    assert_eq!(
        (talk["action"].as_str(), talk["loop"].as_u64()),
        (Some("talk"), Some(2))
    );
    assert_eq!(talk["language"], "en-GB");
    let text = talk["text"].as_str().unwrap();
    assert_eq!(text.matches(SPELLED).count(), 1, "{text}");
    assert!(!text.contains("918273"), "{text}");
}

#[tokio::test]
async fn vonage_refusals_are_read_from_title_and_detail() {
    let mock = Mock::start(|_| {
        Reply::json(
            401,
            r#"{"type":"https://developer.nexmo.com/api-errors#unauthorized","title":"Unauthorized","detail":"You did not provide correct credentials."}"#,
        )
    })
    .await;
    let s = Setup::new();
    let (key, _) = rsa_key(&s);
    let chain = s.chain(&vonage_voice_toml(&mock.base, &key));
    let e = chain.send_with(&sms(), &meta()).await.unwrap_err();
    let AttemptOutcome::Failed(ProviderError::Permanent(text)) = &e.attempts[0].outcome else {
        panic!("{e:?}")
    };
    assert!(
        text.contains("Unauthorized: You did not provide correct credentials"),
        "{text}"
    );
    assert!(text.contains("check application_id"), "{text}");
}

/// SMS first, voice after it: the SMS gateway fails, the code is spoken
/// to the same number. A call asked for at the prompt (`Route::Voice`)
/// never touches the SMS provider. No log line holds the code.
#[tokio::test]
async fn the_chain_falls_back_from_sms_to_a_call() {
    let logs = logs();
    let sms_gw = Mock::start(|_| Reply::json(503, r#"{"code": 20500, "message": "down"}"#)).await;
    let voice = Mock::start(|_| call_created()).await;
    let s = Setup::new();
    let token = s.secret_file("sms.token", TOKEN);
    let toml = format!(
        "[[provider]]\ntype = \"twilio\"\napi_base = \"{}\"\naccount_sid = \"{SID}\"\n\
         auth_token_file = \"{}\"\nfrom = \"+15005550006\"\nretries = 0\n\n{}",
        sms_gw.base,
        token.display(),
        twilio_voice_toml(&s, &voice.base)
    );
    let chain = s.chain(&toml);
    assert_eq!(chain.names(), vec!["twilio", "twilio-voice"]);

    let d = chain.send_with(&sms(), &meta()).await.unwrap();
    assert_eq!(d.provider, "twilio-voice");
    assert_eq!((sms_gw.requests().len(), voice.requests().len()), (1, 1));
    assert_eq!(d.attempts.len(), 2);
    assert!(matches!(d.attempts[0].outcome, AttemptOutcome::Failed(_)));
    let twiml = voice.requests()[0].form_value("Twiml").unwrap();
    assert_eq!(twiml.matches(SPELLED).count(), 2);
    assert_eq!(voice.requests()[0].form_value("To").as_deref(), Some(NUM));

    let d = chain.send_via(&sms(), &meta(), Route::Voice).await.unwrap();
    assert_eq!(d.attempts.len(), 1);
    assert_eq!((sms_gw.requests().len(), voice.requests().len()), (1, 2));

    let text = logs.text();
    assert!(text.contains("twilio-voice"), "the send was logged");
    assert!(
        !text.contains("918273") && !text.contains(SPELLED),
        "{text}"
    );
    assert!(!text.contains(NUM) && !text.contains(TOKEN), "{text}");
}

/// Without a voice provider a voice route has nothing to try.
#[tokio::test]
async fn a_voice_route_without_voice_providers_sends_nothing() {
    let sms_gw = Mock::start(|_| call_created()).await;
    let s = Setup::new();
    let token = s.secret_file("sms.token", TOKEN);
    let chain = s.chain(&format!(
        "[[provider]]\ntype = \"twilio\"\napi_base = \"{}\"\naccount_sid = \"{SID}\"\n\
         auth_token_file = \"{}\"\nfrom = \"+15005550006\"\n",
        sms_gw.base,
        token.display()
    ));
    assert!(!chain.has_voice());
    let e = chain
        .send_via(&sms(), &meta(), Route::Voice)
        .await
        .unwrap_err();
    assert!(e.attempts.is_empty());
    assert_eq!(sms_gw.requests().len(), 0);
}

fn yaml_doc(name: &str) -> serde_json::Value {
    let y: serde_yaml::Value =
        serde_yaml::from_slice(&std::fs::read(specs_dir().join(name)).unwrap()).unwrap();
    serde_json::to_value(y).unwrap()
}

/// Our body against `CreateCallRequestNcco`: its required keys, every key
/// a property of the schema, and the phone endpoints as `EndpointPhoneTo`
/// / `EndpointPhoneFrom` (required keys, `AddressE164` length and pattern).
fn check_call(doc: &serde_json::Value, body: &serde_json::Value) -> Vec<String> {
    let schemas = &doc["components"]["schemas"];
    let mut required = Vec::new();
    let mut props = serde_json::Map::new();
    let mut parts: Vec<&serde_json::Value> = schemas["CreateCallRequestNcco"]["allOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| spec::resolve(doc, p))
        .collect();
    while let Some(p) = parts.pop() {
        required.extend(p["required"].as_array().into_iter().flatten().cloned());
        if let Some(o) = p["properties"].as_object() {
            props.extend(o.clone());
        }
    }
    let mut errors = Vec::new();
    for r in &required {
        if body.get(r.as_str().unwrap()).is_none() {
            errors.push(format!("required {r} missing"));
        }
    }
    for k in body.as_object().unwrap().keys() {
        if !props.contains_key(k) {
            errors.push(format!("{k} is not a property"));
        }
    }
    let e164 = &schemas["AddressE164"];
    let re = regex::Regex::new(&format!("^{}$", e164["pattern"].as_str().unwrap())).unwrap();
    let mut endpoint = |name: &str, v: &serde_json::Value| {
        for r in schemas[name]["required"].as_array().unwrap() {
            if v.get(r.as_str().unwrap()).is_none() {
                errors.push(format!("{name}: {r} missing"));
            }
        }
        let n = v["number"].as_str().unwrap_or("");
        let len = n.len() as u64;
        if !re.is_match(n)
            || len < e164["minLength"].as_u64().unwrap()
            || len > e164["maxLength"].as_u64().unwrap()
        {
            errors.push(format!("{name}: {n:?} is not an AddressE164"));
        }
    };
    for to in body["to"].as_array().into_iter().flatten() {
        endpoint("EndpointPhoneTo", to);
    }
    endpoint("EndpointPhoneFrom", &body["from"]);
    if !body["ncco"].is_array() {
        errors.push("ncco is not an array".into());
    }
    errors
}
