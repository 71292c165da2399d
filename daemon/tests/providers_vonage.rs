//! Vonage against a loopback mock answering as the SMS API does: HTTP 200
//! with a per-message `status` for every outcome (the spec's `x-errors`
//! table), the request checked against `shared/specs/vonage_sms.yml`.

mod providers_support;
#[path = "providers_support/spec.rs"]
mod spec;

use providers_support::*;
use smsotpd::providers::{AttemptOutcome, ChainError, Delivery, ProviderError, SendMeta};
use std::time::Duration;

const KEY: &str = "abcd1234";
const SECRET: &str = "vonageSecret42xyz";

fn ok_answer() -> Reply {
    Reply::json(
        200,
        r#"{"message-count":"1","messages":[{"to":"15551234567","message-id":"0A0000000123ABCD1",
            "status":"0","remaining-balance":"3.14159265","message-price":"0.03330000","network":"12345"}]}"#,
    )
}

fn status(code: &str, text: &str) -> Reply {
    Reply::json(
        200,
        &format!(
            r#"{{"message-count":"1","messages":[{{"status":"{code}","error-text":"{text}"}}]}}"#
        ),
    )
}

fn provider_toml(s: &Setup, base: &str, extra: &str) -> String {
    let secret = s.secret_file("vonage.secret", SECRET);
    format!(
        "[[provider]]\ntype = \"vonage\"\napi_base = \"{base}\"\napi_key = \"{KEY}\"\n\
         api_secret_file = \"{}\"\nfrom = \"AcmeInc\"\nretries = 0\n{extra}",
        secret.display()
    )
}

async fn send_once(reply: Reply) -> Result<Delivery, ChainError> {
    let mock = Mock::start(move |_| reply.clone()).await;
    let s = Setup::new();
    s.chain(&provider_toml(&s, &mock.base, ""))
        .send_with(&sms(), &SendMeta::default())
        .await
}

fn only_error(r: Result<Delivery, ChainError>) -> ProviderError {
    let e = r.unwrap_err();
    match &e.attempts[0].outcome {
        AttemptOutcome::Failed(e) => e.clone(),
        other => panic!("{other:?}"),
    }
}

fn spec_doc() -> serde_json::Value {
    let y: serde_yaml::Value =
        serde_yaml::from_slice(&std::fs::read(specs_dir().join("vonage_sms.yml")).unwrap())
            .unwrap();
    serde_json::to_value(y).unwrap()
}

#[tokio::test]
async fn request_matches_the_spec() {
    let mock = Mock::start(|_| ok_answer()).await;
    let s = Setup::new();
    let chain = s.chain(&provider_toml(&s, &mock.base, ""));
    let meta = SendMeta {
        validity: Some(Duration::from_secs(300)),
        ..Default::default()
    };
    let d = chain.send_with(&sms(), &meta).await.unwrap();
    assert_eq!(d.receipt.id.as_deref(), Some("0A0000000123ABCD1"));
    assert_eq!(d.receipt.detail, "status 0, 1 part(s)");

    let r = &mock.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("POST", "/sms/json")
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(r.form_value("api_key").as_deref(), Some(KEY));
    assert_eq!(r.form_value("api_secret").as_deref(), Some(SECRET));
    assert_eq!(
        r.form_value("to").as_deref(),
        Some("15551234567"),
        "digits, no +"
    );
    assert_eq!(r.form_value("from").as_deref(), Some("AcmeInc"));
    assert_eq!(r.form_value("text").as_deref(), Some(BODY));
    assert_eq!(r.form_value("type"), None, "GSM-7 text needs no type");
    assert_eq!(r.form_value("ttl").as_deref(), Some("300000"));

    let doc = spec_doc();
    let op = &doc["paths"]["/{format}"]["post"];
    let schema = &op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
    let errors = spec::check_form(&doc, schema, &r.form());
    assert!(errors.is_empty(), "{errors:?}");
    assert!(op["parameters"][0]["schema"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "json"));
}

#[tokio::test]
async fn unicode_text_is_sent_as_unicode() {
    let mock = Mock::start(|_| ok_answer()).await;
    let s = Setup::new();
    let chain = s.chain(&provider_toml(&s, &mock.base, ""));
    let d = chain
        .send_with(&sms_with("Код входа: 918273 ✓"), &SendMeta::default())
        .await
        .unwrap();
    assert_eq!((d.encoding, d.segments), ("UCS-2", 1));
    let r = &mock.requests()[0];
    assert_eq!(r.form_value("type").as_deref(), Some("unicode"));
    assert_eq!(r.form_value("text").as_deref(), Some("Код входа: 918273 ✓"));
    let doc = spec_doc();
    let schema = &doc["paths"]["/{format}"]["post"]["requestBody"]["content"]
        ["application/x-www-form-urlencoded"]["schema"];
    assert!(spec::check_form(&doc, schema, &r.form()).is_empty());
}

#[tokio::test]
async fn every_status_class_maps_as_the_spec_says() {
    // Every status listed in the spec's x-errors table gets a name.
    let doc = spec_doc();
    let table = doc["x-errors"].as_object().expect("x-errors table");
    assert!(table.len() >= 19, "{}", table.len());

    let cases: [(&str, &str, &str); 9] = [
        ("1", "Throttled", "rate"),
        ("2", "Missing to param", "permanent"),
        ("3", "Invalid value for param: to", "permanent"),
        ("4", "Bad Credentials", "permanent"),
        ("5", "Internal Error", "retryable"),
        ("9", "Partner quota exceeded", "permanent"),
        ("10", "Too many existing binds", "retryable"),
        ("29", "Non White-listed Destination - rejected", "recipient"),
        ("7", "Number barred.", "recipient"),
    ];
    for (code, text, class) in cases {
        assert!(table.contains_key(code), "status {code} is in the spec");
        let e = only_error(send_once(status(code, text)).await);
        let m = e.to_string();
        assert!(m.contains(&format!("vonage: status {code} (")), "{m}");
        assert!(m.contains(text), "{m}");
        let got = match e {
            ProviderError::RateLimited { .. } => "rate",
            ProviderError::Retryable(_) => "retryable",
            ProviderError::Permanent(_) => "permanent",
            ProviderError::Recipient(_) => "recipient",
            ProviderError::Config(_) => "config",
        };
        assert_eq!(got, class, "status {code}");
    }
    let m = only_error(send_once(status("4", "Bad Credentials")).await).to_string();
    assert!(m.contains("(invalid credentials)"), "{m}");
    assert!(!m.contains(SECRET));
}

#[tokio::test]
async fn a_failed_part_fails_the_message() {
    let r = send_once(Reply::json(
        200,
        r#"{"message-count":"2","messages":[{"status":"0","message-id":"A"},{"status":"6","error-text":"Invalid Message"}]}"#,
    ))
    .await;
    assert!(
        matches!(only_error(r), ProviderError::Recipient(m) if m.contains("status 6 (invalid message)"))
    );
}

#[tokio::test]
async fn garbage_and_http_errors_are_temporary() {
    let r = send_once(Reply::Http {
        status: 200,
        headers: vec![],
        body: "<xml>oops".into(),
    })
    .await;
    assert!(
        matches!(only_error(r), ProviderError::Retryable(m) if m.contains("unreadable answer"))
    );
    let r = send_once(Reply::json(200, r#"{"message-count":"0","messages":[]}"#)).await;
    assert!(
        matches!(only_error(r), ProviderError::Retryable(m) if m.contains("listing no message"))
    );
    let r = send_once(Reply::json(503, "{}")).await;
    assert!(
        matches!(only_error(r), ProviderError::Retryable(m) if m.starts_with("HTTP 503 from vonage"))
    );
    let r = send_once(Reply::json(429, "{}").with_header("Retry-After", "1")).await;
    assert!(
        matches!(only_error(r), ProviderError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(1))
    );
    let r = send_once(Reply::json(
        401,
        r#"{"type":"https://developer.nexmo.com/api-errors#unauthorized"}"#,
    ))
    .await;
    assert!(matches!(only_error(r), ProviderError::Permanent(_)));
}

#[tokio::test]
async fn goes_through_the_configured_proxy() {
    // The mock plays an HTTP proxy: it must see an absolute-form target for
    // the gateway, which itself is not listening at all.
    let proxy = Mock::start(|_| ok_answer()).await;
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let s = Setup::new();
    let chain = s.chain(&provider_toml(
        &s,
        &format!("http://{dead}"),
        &format!("proxy = \"{}\"\n", proxy.base),
    ));
    chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    let r = &proxy.requests()[0];
    assert_eq!(r.target, format!("http://{dead}/sms/json"));
    assert_eq!(r.form_value("api_key").as_deref(), Some(KEY));
}
