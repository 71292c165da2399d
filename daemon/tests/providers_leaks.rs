//! No secret reaches a log line, at TRACE and from every crate (reqwest,
//! hyper, rustls, zbus included), nor an error text or `Debug` output:
//! every provider is driven through success and failure, with gateways
//! that echo the number, the text and the credentials back, then all
//! captured output is scanned. One test: the capture is process-wide.

mod providers_support;

use providers_support::*;
use smsotpd::providers::SendMeta;

const TOKEN: &str = "TwTokenLeakCanary0001";
const VSECRET: &str = "VnSecretLeak02";
/// A Standard Webhooks secret whose base64 is itself a canary (24 bytes).
const WKEY: &str = "whsec_WhKeyLeakCanary0003xyzAAAAAAAAAA";
const BEARER: &str = "BearerLeakCanary0004";
const CODE: &str = "918273";

#[tokio::test]
async fn no_secret_in_trace_logs_errors_or_debug() {
    let logs = capture_all_logs();
    // Every gateway echoes the whole request (number, text, credentials)
    // in its answer, as some error pages do.
    let echo = |status: u16| {
        move |r: &Captured| {
            let mut body = String::from_utf8_lossy(&r.body).to_string();
            body.push_str(&format!(" auth={:?}", r.header("authorization")));
            Reply::json(
                status,
                &serde_json::json!({"code": 1, "message": body, "more_info": body}).to_string(),
            )
        }
    };
    let ok = Mock::start(|_| Reply::json(201, r#"{"sid":"SM1","status":"queued"}"#)).await;
    let bad400 = Mock::start(echo(400)).await;
    let bad500 = Mock::start(echo(500)).await;
    let vonage_bad = Mock::start(|r: &Captured| {
        let text = String::from_utf8_lossy(&r.body).to_string();
        Reply::json(
            200,
            &serde_json::json!({"messages": [{"status": "4", "error-text": text}]}).to_string(),
        )
    })
    .await;

    let s = Setup::new();
    let tok = s.secret_file("tok", TOKEN);
    let vsec = s.secret_file("vsec", VSECRET);
    let wkey = s.secret_file("wkey", WKEY);
    let bearer = s.secret_file("bearer", BEARER);
    let twilio = |base: &str, name: &str| {
        format!(
            "[[provider]]\ntype = \"twilio\"\nname = \"{name}\"\napi_base = \"{base}\"\n\
             account_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token_file = \"{}\"\n\
             from = \"+15005550006\"\nretries = 1\nretry_backoff_ms = 10\n",
            tok.display()
        )
    };
    let vonage = |base: &str, name: &str| {
        format!(
            "[[provider]]\ntype = \"vonage\"\nname = \"{name}\"\napi_base = \"{base}\"\napi_key = \"abcd1234\"\n\
             api_secret_file = \"{}\"\nfrom = \"AcmeInc\"\nretries = 0\n",
            vsec.display()
        )
    };
    let webhook = |base: &str, name: &str| {
        format!(
            "[[provider]]\ntype = \"webhook\"\nname = \"{name}\"\nurl = \"{base}/hook\"\nsecret_file = \"{}\"\nretries = 0\n",
            wkey.display()
        )
    };
    let http = |base: &str, name: &str| {
        format!(
            "[[provider]]\ntype = \"http\"\nname = \"{name}\"\nurl = \"{base}/x?to={{{{mobile}}}}\"\n\
             payload = '{{\"t\": {{{{body}}}}}}'\nretries = 0\n\
             auth = {{ type = \"bearer\", token_file = \"{}\" }}\n",
            bearer.display()
        )
    };
    let modem = "[[provider]]\ntype = \"modem\"\ndbus_address = \"unix:path=/nonexistent/bus.sock\"\nretries = 0\n";
    // Everything failing in every way, then a success at the end.
    let config = [
        twilio(&bad400.base, "t400"),
        twilio(&bad500.base, "t500"),
        vonage(&vonage_bad.base, "v4"),
        vonage(&bad500.base, "v500"),
        webhook(&bad400.base, "w400"),
        http(&bad500.base, "h500"),
        http(&bad400.base, "h400"),
        modem.to_string(),
        webhook(&ok.base, "wok"),
    ]
    .concat();
    let chain = s.chain(&config);
    let meta = SendMeta {
        host: Some("bastion-1".into()),
        service: Some("sshd".into()),
        ..Default::default()
    };
    let d = chain.send_with(&sms(), &meta).await.unwrap();
    assert_eq!(d.provider, "wok");
    // And each alone, for its success path and the chain's failure text.
    let mut texts = vec![format!("{d:?}"), format!("{chain:?}")];
    for c in [twilio(&ok.base, "tok"), http(&ok.base, "hok")] {
        let ch = s.chain(&c);
        texts.push(format!("{:?}", ch.send_with(&sms(), &meta).await.unwrap()));
    }
    let all_fail = s.chain(
        &[
            twilio(&bad400.base, "a"),
            vonage(&vonage_bad.base, "b"),
            http(&bad500.base, "c"),
        ]
        .concat(),
    );
    let e = all_fail.send_with(&sms(), &meta).await.unwrap_err();
    texts.push(e.to_string());
    texts.push(format!("{e:?}"));
    texts.push(format!("{:?}", s.load(&config)));
    for p in &s.load(&config).providers {
        let built = smsotpd::providers::build(p).unwrap_or_else(|e| panic!("{e}"));
        texts.push(format!("{built:?}"));
    }

    let captured = logs.text();
    if std::env::var_os("SMSOTP_DUMP_LOGS").is_some() {
        eprintln!("{captured}");
    }
    assert!(captured.contains("sms sent"), "the capture works");
    assert!(captured.contains("*******4567"), "numbers appear masked");
    assert!(
        captured.contains("TRACE") || captured.contains("DEBUG"),
        "verbose levels captured"
    );
    let haystack = format!("{captured}\n{}", texts.join("\n"));
    // Echoed headers carry Basic credentials base64-encoded.
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let basic = b64(&format!("AC0123456789abcdef0123456789abcdef:{TOKEN}"));
    for secret in [
        TOKEN,
        VSECRET,
        WKEY,
        &WKEY[6..],
        BEARER,
        CODE,
        "15551234567",
        "5551234567",
        BODY,
        &basic,
        &b64(TOKEN),
    ] {
        if let Some(i) = haystack.find(secret) {
            let start = haystack[..i].rfind('\n').map_or(0, |n| n + 1);
            let end = haystack[i..].find('\n').map_or(haystack.len(), |n| i + n);
            panic!("secret {secret:?} leaked: {}", &haystack[start..end]);
        }
    }
}
