//! The signed event webhook: the Asgardeo-shaped event, and the older
//! `signature_scheme = "smsotp-v1"` signature checked by implementations
//! that share no code with the daemon's (the `hmac` crate used directly,
//! and `openssl dgst`). The default, Standard Webhooks, is checked by its
//! own published verifier in webhook_standard.rs.

mod providers_support;

use hmac::{Hmac, Mac};
use providers_support::*;
use sha2::Sha256;
use smsotpd::providers::{AttemptOutcome, ProviderError, SendMeta};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const KEY: &str = "whsec-0123456789abcdef-test-key";

fn toml(s: &Setup, url: &str) -> String {
    let key = s.secret_file("webhook.key", KEY);
    format!(
        "[[provider]]\ntype = \"webhook\"\nurl = \"{url}\"\nsecret_file = \"{}\"\n\
         issuer = \"smsotp-test\"\norganization = \"myorg\"\nretries = 0\n\
         signature_scheme = \"smsotp-v1\"\n",
        key.display()
    )
}

/// `t=...,v1=...` into its parts.
fn parse_signature(h: &str) -> (u64, String) {
    let mut t = None;
    let mut v1 = None;
    for part in h.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse().ok(),
            Some(("v1", v)) => v1 = Some(v.to_string()),
            _ => {}
        }
    }
    (t.expect("t="), v1.expect("v1="))
}

#[tokio::test]
async fn event_shape_and_signature_verify_independently() {
    let mock = Mock::start(|_| Reply::json(202, "{}")).await;
    let s = Setup::new();
    let url = format!("{}/hooks/sms", mock.base);
    let chain = s.chain(&toml(&s, &url));
    let meta = SendMeta {
        host: Some("bastion-1".into()),
        service: Some("sshd".into()),
        ..Default::default()
    };
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let d = chain.send_with(&sms(), &meta).await.unwrap();
    chain.send_with(&sms(), &meta).await.unwrap();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    let r = &reqs[0];
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("POST", "/hooks/sms")
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("webhook-signature"),
        None,
        "the older scheme sends only its own header"
    );

    // The event, as the seed describes Asgardeo's.
    let ev: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let sec = &ev["securityData"];
    assert_eq!(sec["iss"], "smsotp-test");
    assert_eq!(sec["aud"], url.as_str());
    let iat = sec["iat"]
        .as_u64()
        .expect("iat is a number of milliseconds");
    assert!(iat >= before.as_millis() as u64 && iat < before.as_millis() as u64 + 60_000);
    let jti = sec["jti"].as_str().unwrap();
    assert_eq!(jti.len(), 36);
    assert_eq!(d.receipt.id.as_deref(), Some(jti));
    assert_eq!(r.header("smsotp-event-id"), Some(jti));
    let other: serde_json::Value = serde_json::from_slice(&reqs[1].body).unwrap();
    assert_ne!(
        other["securityData"]["jti"], sec["jti"],
        "jti unique per event"
    );
    let data = &ev["eventData"];
    assert_eq!(data["sendTo"], NUM);
    assert_eq!(data["messageBody"], BODY);
    assert_eq!(data["host"], "bastion-1");
    assert_eq!(data["service"], "sshd");
    assert_eq!(data["organizationName"], "myorg");

    // The signature, recomputed with the hmac crate over the exact bytes.
    let (t, v1) = parse_signature(r.header("smsotp-signature").unwrap());
    assert!(t.abs_diff(before.as_secs()) <= 60);
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&r.body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, want);

    // And with openssl, the way the docs tell a receiver to check by hand.
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(&r.body);
    let out = openssl_hmac(KEY, &signed);
    assert!(out.ends_with(&v1), "openssl says {out}, header says {v1}");

    // A tampered body or another key does not verify.
    let mut mac = Hmac::<Sha256>::new_from_slice(b"another-key-entirely").unwrap();
    mac.update(&signed);
    assert_ne!(
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
        v1
    );
}

fn openssl_hmac(key: &str, data: &[u8]) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl is installed");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn receiver_errors_are_classified() {
    for (status, retryable) in [(500, true), (503, true), (400, false), (401, false)] {
        let mock = Mock::start(move |_| Reply::json(status, "{\"error\":\"x\"}")).await;
        let s = Setup::new();
        let e = s
            .chain(&toml(&s, &format!("{}/h", mock.base)))
            .send_with(&sms(), &SendMeta::default())
            .await
            .unwrap_err();
        let AttemptOutcome::Failed(err) = &e.attempts[0].outcome else {
            panic!()
        };
        assert_eq!(err.is_retryable(), retryable, "{status}: {err}");
    }
    let mock = Mock::start(|_| Reply::json(429, "").with_header("Retry-After", "3")).await;
    let s = Setup::new();
    let e = s
        .chain(&toml(&s, &format!("{}/h", mock.base)))
        .send_with(&sms(), &SendMeta::default())
        .await
        .unwrap_err();
    assert!(matches!(
        &e.attempts[0].outcome,
        AttemptOutcome::Failed(ProviderError::RateLimited { retry_after: Some(d), .. }) if *d == Duration::from_secs(3)
    ));
}

#[tokio::test]
async fn short_keys_and_remote_plain_http_are_refused() {
    let s = Setup::new();
    let key = s.secret_file("short.key", "tooshort");
    let build = |extra: &str| {
        let cfg = s.load(&format!(
            "[[provider]]\ntype = \"webhook\"\nurl = \"https://hooks.example/x\"\nsecret_file = \"{}\"\n{extra}",
            key.display()
        ));
        smsotpd::providers::build(&cfg.providers[0])
            .unwrap_err()
            .to_string()
    };
    let e = build("signature_scheme = \"smsotp-v1\"\n");
    assert!(
        e.contains("secret_file: the signing secret needs at least 16 characters"),
        "{e}"
    );
    assert!(!e.contains("tooshort"), "{e}");
    // The default scheme wants a whsec_ key, and says how to make one or
    // keep the old scheme.
    let e = build("");
    assert!(
        e.contains("secret_file: a Standard Webhooks secret starts with `whsec_`")
            && e.contains("signature_scheme = \"smsotp-v1\""),
        "{e}"
    );
    assert!(!e.contains("tooshort"), "{e}");

    let e = smsotp_config::parse(
        std::path::Path::new("/etc/smsotp/smsotpd.toml"),
        "[[provider]]\ntype = \"webhook\"\nurl = \"http://hooks.example/x\"\nsecret_file = \"/k\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("/etc/smsotp/smsotpd.toml:3: provider[0].url: must be https"),
        "{e}"
    );
}
