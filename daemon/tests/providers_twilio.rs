//! Twilio against a loopback mock that answers as the real API does
//! (status codes and JSON shapes from `shared/specs/twilio_messages.json`):
//! the exact request, validated against the spec; every error class; TLS
//! with a private CA; connection reuse.

mod providers_support;
#[path = "providers_support/spec.rs"]
mod spec;

use providers_support::*;
use smsotpd::providers::{AttemptOutcome, ProviderError, SendMeta};
use std::time::Duration;

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "tw-auth-token-5ecret-value";
const PATH: &str = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json";

fn created() -> Reply {
    Reply::json(
        201,
        r#"{"account_sid":"AC0123456789abcdef0123456789abcdef","api_version":"2010-04-01",
            "body":"...","direction":"outbound-api","error_code":null,"error_message":null,
            "from":"+15005550006","num_segments":"1","sid":"SM0123456789abcdef0123456789abcdef",
            "status":"queued","to":"+15551234567","uri":"/2010-04-01/Accounts/AC.../Messages/SM....json"}"#,
    )
}

fn twilio_error(status: u16, code: u32, message: &str) -> Reply {
    Reply::json(
        status,
        &format!(
            r#"{{"code": {code}, "message": "{message}", "more_info": "https://www.twilio.com/docs/errors/{code}", "status": {status}}}"#
        ),
    )
}

fn provider_toml(s: &Setup, base: &str, extra: &str) -> String {
    let token = s.secret_file("twilio.token", TOKEN);
    format!(
        "[[provider]]\ntype = \"twilio\"\napi_base = \"{base}\"\naccount_sid = \"{SID}\"\n\
         auth_token_file = \"{}\"\nfrom = \"+15005550006\"\nretries = 0\n{extra}",
        token.display()
    )
}

async fn send_once(
    reply: Reply,
) -> (
    Result<smsotpd::providers::Delivery, smsotpd::providers::ChainError>,
    Vec<Captured>,
) {
    let mock = Mock::start(move |_| reply.clone()).await;
    let s = Setup::new();
    let chain = s.chain(&provider_toml(&s, &mock.base, ""));
    let r = chain.send_with(&sms(), &SendMeta::default()).await;
    (r, mock.requests())
}

fn only_error(
    r: Result<smsotpd::providers::Delivery, smsotpd::providers::ChainError>,
) -> ProviderError {
    let e = r.unwrap_err();
    match &e.attempts[..] {
        [a] => match &a.outcome {
            AttemptOutcome::Failed(e) => e.clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn request_matches_the_spec_and_the_answer_is_read() {
    let mock = Mock::start(|_| created()).await;
    let s = Setup::new();
    let chain = s.chain(&provider_toml(&s, &mock.base, ""));
    let meta = SendMeta {
        validity: Some(Duration::from_secs(300)),
        ..Default::default()
    };
    let d = chain.send_with(&sms(), &meta).await.unwrap();
    assert_eq!(d.provider, "twilio");
    assert_eq!(
        d.receipt.id.as_deref(),
        Some("SM0123456789abcdef0123456789abcdef")
    );
    assert!(
        d.receipt.detail.starts_with("HTTP 201, status queued"),
        "{}",
        d.receipt.detail
    );

    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, PATH);
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    // Basic auth: Account SID and token.
    let expected = format!(
        "Basic {}",
        base64_encode(format!("{SID}:{TOKEN}").as_bytes())
    );
    assert_eq!(r.header("authorization"), Some(expected.as_str()));
    assert_eq!(r.form_value("To").as_deref(), Some(NUM));
    assert_eq!(r.form_value("From").as_deref(), Some("+15005550006"));
    assert_eq!(r.form_value("Body").as_deref(), Some(BODY));
    assert_eq!(r.form_value("ValidityPeriod").as_deref(), Some("300"));

    // Against the published OpenAPI document.
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(specs_dir().join("twilio_messages.json")).unwrap())
            .unwrap();
    let op = &doc["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages.json"]["post"];
    let schema = &op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
    let errors = spec::check_form(&doc, schema, &r.form());
    assert!(errors.is_empty(), "{errors:?}");
    let param = &op["parameters"][0];
    assert_eq!(param["name"], "AccountSid");
    assert!(spec::check_param(&doc, param, SID).is_empty());
    assert_eq!(
        doc["components"]["securitySchemes"]["accountSid_authToken"]["scheme"],
        "basic"
    );
    assert!(op["responses"]["201"].is_object(), "success is 201");
}

#[tokio::test]
async fn messaging_service_and_api_key_auth() {
    let mock = Mock::start(|_| created()).await;
    let s = Setup::new();
    let secret = s.secret_file("key.secret", "sk-secret-value-123");
    let toml = format!(
        "[[provider]]\ntype = \"twilio\"\napi_base = \"{}\"\naccount_sid = \"{SID}\"\n\
         api_key_sid = \"SK0123456789abcdef0123456789abcdef\"\napi_key_secret_file = \"{}\"\n\
         messaging_service_sid = \"MG0123456789abcdef0123456789abcdef\"\nvalidity_period_seconds = 120\n",
        mock.base,
        secret.display()
    );
    let chain = s.chain(&toml);
    chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    let r = &mock.requests()[0];
    assert_eq!(r.form_value("From"), None);
    assert_eq!(
        r.form_value("MessagingServiceSid").as_deref(),
        Some("MG0123456789abcdef0123456789abcdef")
    );
    assert_eq!(r.form_value("ValidityPeriod").as_deref(), Some("120"));
    let expected = format!(
        "Basic {}",
        base64_encode(b"SK0123456789abcdef0123456789abcdef:sk-secret-value-123")
    );
    assert_eq!(r.header("authorization"), Some(expected.as_str()));
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(specs_dir().join("twilio_messages.json")).unwrap())
            .unwrap();
    let schema = &doc["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages.json"]["post"]
        ["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
    assert!(spec::check_form(&doc, schema, &r.form()).is_empty());
}

#[tokio::test]
async fn bad_number_is_a_recipient_error_with_twilio_details() {
    let (r, _) = send_once(twilio_error(
        400,
        21211,
        "The 'To' number +15551234567 is not a valid phone number.",
    ))
    .await;
    match only_error(r) {
        ProviderError::Recipient(m) => {
            assert!(
                m.starts_with(
                    "HTTP 400 from twilio, Twilio error 21211: The 'To' number *******4567 is not"
                ),
                "{m}"
            );
            assert!(
                m.contains("(https://www.twilio.com/docs/errors/21211)"),
                "{m}"
            );
            assert!(!m.contains("5551234567"), "{m}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn other_400s_are_permanent() {
    let (r, _) = send_once(twilio_error(
        400,
        21606,
        "The From phone number is not a valid, SMS-capable inbound phone number",
    ))
    .await;
    assert!(
        matches!(only_error(r), ProviderError::Permanent(m) if m.contains("Twilio error 21606"))
    );
}

#[tokio::test]
async fn unauthorized_is_permanent_and_says_what_to_check() {
    let (r, reqs) = send_once(twilio_error(401, 20003, "Authenticate")).await;
    assert_eq!(reqs.len(), 1);
    match only_error(r) {
        ProviderError::Permanent(m) => {
            assert!(
                m.contains("HTTP 401 from twilio, Twilio error 20003: Authenticate"),
                "{m}"
            );
            assert!(m.contains("check account_sid"), "{m}");
            assert!(!m.contains(TOKEN));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn too_many_requests_carries_retry_after() {
    let (r, _) =
        send_once(twilio_error(429, 20429, "Too Many Requests").with_header("Retry-After", "2"))
            .await;
    assert_eq!(
        only_error(r),
        ProviderError::RateLimited {
            message: "HTTP 429 from twilio, Twilio error 20429: Too Many Requests (https://www.twilio.com/docs/errors/20429)".into(),
            retry_after: Some(Duration::from_secs(2)),
        }
    );
}

#[tokio::test]
async fn server_errors_are_retryable() {
    for status in [500, 502, 503] {
        let (r, _) = send_once(twilio_error(status, 20500, "Internal Server Error")).await;
        assert!(
            matches!(only_error(r), ProviderError::Retryable(m) if m.starts_with(&format!("HTTP {status} from twilio")))
        );
    }
    // An HTML error page from a load balancer, not Twilio's JSON.
    let (r, _) = send_once(Reply::Http {
        status: 502,
        headers: vec![],
        body: "<html>Bad Gateway</html>".into(),
    })
    .await;
    assert!(
        matches!(only_error(r), ProviderError::Retryable(m) if m == "HTTP 502 from twilio: <html>Bad Gateway</html>")
    );
}

#[tokio::test]
async fn created_with_a_garbage_body_still_counts_as_sent() {
    let (r, _) = send_once(Reply::Http {
        status: 201,
        headers: vec![],
        body: "\u{0}\u{1}not json".into(),
    })
    .await;
    let d = r.unwrap();
    assert_eq!(d.receipt.detail, "HTTP 201");
    assert_eq!(d.receipt.id, None);
}

#[tokio::test]
async fn connections_are_kept_alive_and_reused() {
    let mock = Mock::start(|_| created()).await;
    let s = Setup::new();
    let chain = s.chain(&provider_toml(&s, &mock.base, ""));
    for _ in 0..3 {
        chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    }
    assert_eq!(mock.requests().len(), 3);
    assert_eq!(
        mock.connections(),
        1,
        "one TCP connection for three messages"
    );
}

#[tokio::test]
async fn tls_with_a_private_ca_and_refused_without_it() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "smsotp test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &ca).unwrap();

    let mock = Mock::start_tls(&leaf_cert.pem(), &leaf_key.serialize_pem(), |_| created()).await;
    assert!(mock.base.starts_with("https://localhost:"));
    let s = Setup::new();
    let ca_file = s.dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    let chain = s.chain(&provider_toml(
        &s,
        &mock.base,
        &format!("ca_file = \"{}\"\n", ca_file.display()),
    ));
    let d = chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    assert_eq!(d.receipt.detail, "HTTP 201, status queued, 1 segment(s)");
    assert_eq!(mock.requests()[0].target, PATH);

    // The same server without the CA: the handshake must fail, temporarily
    // (a certificate problem may be a rotation in progress), and the error
    // must say it is about the certificate.
    let chain = s.chain(&provider_toml(&s, &mock.base, ""));
    let e = chain
        .send_with(&sms(), &SendMeta::default())
        .await
        .unwrap_err();
    let AttemptOutcome::Failed(ProviderError::Retryable(m)) = &e.attempts[0].outcome else {
        panic!("{e:?}")
    };
    assert!(
        m.to_lowercase().contains("certificate") || m.contains("UnknownIssuer"),
        "{m}"
    );
    assert_eq!(
        mock.requests().len(),
        1,
        "nothing sent over the untrusted connection"
    );
}

/// Standard base64, for checking Basic auth without another dependency.
fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
