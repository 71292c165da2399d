//! The custom HTTP provider's completion: Basic, Bearer and API-key
//! header auth from secret files, and response-body success checks for
//! gateways that always answer 200.

mod providers_support;

use providers_support::*;
use smsotpd::providers::{AttemptOutcome, ProviderError, SendMeta};

fn http(url: &str, extra: &str) -> String {
    format!(
        "[[provider]]\ntype = \"http\"\nname = \"gw\"\nurl = \"{url}\"\n\
         payload = '{{\"to\": {{{{mobile}}}}, \"text\": {{{{body}}}}}}'\nretries = 0\n{extra}\n"
    )
}

#[tokio::test]
async fn bearer_basic_and_api_key_auth() {
    let mock = Mock::start(|_| Reply::json(200, "{}")).await;
    let s = Setup::new();
    let tok = s.secret_file("t", "bearer-tok-123");
    let pw = s.secret_file("p", "basic:pass-456");
    let key = s.secret_file("k", "api-key-789");
    let url = format!("{}/send", mock.base);
    let chain = s.chain(&http(
        &url,
        &format!(
            "auth = {{ type = \"bearer\", token_file = \"{}\" }}",
            tok.display()
        ),
    ));
    chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    let r = &mock.requests()[0];
    assert_eq!(r.header("authorization"), Some("Bearer bearer-tok-123"));

    let chain = s.chain(&http(
        &url,
        &format!(
            "[provider.auth]\ntype = \"basic\"\nusername = \"user\"\npassword_file = \"{}\"",
            pw.display()
        ),
    ));
    chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    // "user:basic:pass-456" in base64.
    assert_eq!(
        mock.requests()[1].header("authorization"),
        Some("Basic dXNlcjpiYXNpYzpwYXNzLTQ1Ng==")
    );

    let chain = s.chain(&http(
        &url,
        &format!(
            "auth = {{ type = \"api_key\", header = \"X-API-Key\", key_file = \"{}\" }}",
            key.display()
        ),
    ));
    chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    assert_eq!(mock.requests()[2].header("x-api-key"), Some("api-key-789"));
    assert_eq!(mock.requests()[2].header("authorization"), None);
}

async fn check(reply: Reply, extra: &str) -> Result<(), ProviderError> {
    let mock = Mock::start(move |_| reply.clone()).await;
    let s = Setup::new();
    let chain = s.chain(&http(&format!("{}/send", mock.base), extra));
    match chain.send_with(&sms(), &SendMeta::default()).await {
        Ok(_) => Ok(()),
        Err(e) => match &e.attempts[0].outcome {
            AttemptOutcome::Failed(err) => Err(err.clone()),
            other => panic!("{other:?}"),
        },
    }
}

#[tokio::test]
async fn json_pointer_checks() {
    let eq = "success_json_pointer = \"/messages/0/status\"\nsuccess_json_equals = \"0\"";
    assert!(
        check(Reply::json(200, r#"{"messages":[{"status":"0"}]}"#), eq)
            .await
            .is_ok()
    );
    assert!(
        check(Reply::json(200, r#"{"messages":[{"status":0}]}"#), eq)
            .await
            .is_ok(),
        "a number compares as text"
    );
    let e = check(
        Reply::json(
            200,
            r#"{"messages":[{"status":"4","error-text":"Bad Credentials for +15551234567"}]}"#,
        ),
        eq,
    )
    .await
    .unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("HTTP 200 from gw but /messages/0/status is not \"0\""),
        "{m}"
    );
    assert!(!m.contains("5551234567"), "{m}");
    assert!(e.is_retryable());

    let truthy = "success_json_pointer = \"/ok\"";
    assert!(check(Reply::json(200, r#"{"ok":true}"#), truthy)
        .await
        .is_ok());
    assert!(check(Reply::json(200, r#"{"ok":false}"#), truthy)
        .await
        .is_err());
    assert!(check(Reply::json(200, r#"{}"#), truthy).await.is_err());
    let e = check(Reply::json(200, "not json"), truthy)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("the body is not JSON"), "{e}");
}

#[tokio::test]
async fn regex_checks() {
    let re = "success_body_regex = '^OK\\b'";
    assert!(check(Reply::json(200, "OK 12345"), re).await.is_ok());
    let e = check(Reply::json(200, "ERR quota"), re).await.unwrap_err();
    assert!(e.to_string().contains("does not match /^OK\\b/"), "{e}");
    // A bad pattern is refused when the provider is built.
    let s = Setup::new();
    let cfg = s.load(&http(
        "http://127.0.0.1:9/x",
        "success_body_regex = '(unclosed'",
    ));
    let e = smsotpd::providers::build(&cfg.providers[0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("success_body_regex is not a valid regex"), "{e}");
}

#[test]
fn auth_config_errors_name_line_and_key() {
    let p = std::path::Path::new("/etc/smsotp/smsotpd.toml");
    let e = smsotp_config::parse(p, &http("http://127.0.0.1:9/x", "headers = { Authorization = \"x\" }\nauth = { type = \"bearer\", token_file = \"/t\" }"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("provider[0].auth: sets the Authorization header, which headers also sets"),
        "{e}"
    );
    let e = smsotp_config::parse(
        p,
        &http("http://127.0.0.1:9/x", "auth = { type = \"bearer\" }"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("/etc/smsotp/smsotpd.toml:7: provider[0].auth.token: is required"),
        "{e}"
    );
    let e = smsotp_config::parse(
        p,
        &http("http://127.0.0.1:9/x", "success_json_equals = \"0\""),
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("/etc/smsotp/smsotpd.toml:7: provider[0].success_json_equals: needs success_json_pointer"), "{e}");
}
