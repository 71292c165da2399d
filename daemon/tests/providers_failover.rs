//! The chain over real HTTP providers on loopback: failover and the
//! circuit breaker under injected timeouts, 5xx, 429 and garbage bodies.

mod providers_support;

use providers_support::*;
use smsotpd::providers::{AttemptOutcome, ProviderError, SendMeta};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SID: &str = "AC0123456789abcdef0123456789abcdef";

fn twilio(s: &Setup, base: &str, extra: &str) -> String {
    let token = s.secret_file("tw.token", "tw-auth-token-5ecret-value");
    format!(
        "[[provider]]\ntype = \"twilio\"\napi_base = \"{base}\"\naccount_sid = \"{SID}\"\n\
         auth_token_file = \"{}\"\nfrom = \"+15005550006\"\n{extra}\n",
        token.display()
    )
}

fn vonage(s: &Setup, base: &str, extra: &str) -> String {
    let secret = s.secret_file("vn.secret", "vonageSecret42xyz");
    format!(
        "[[provider]]\ntype = \"vonage\"\napi_base = \"{base}\"\napi_key = \"abcd1234\"\n\
         api_secret_file = \"{}\"\nfrom = \"AcmeInc\"\n{extra}\n",
        secret.display()
    )
}

fn vonage_ok() -> Reply {
    Reply::json(
        200,
        r#"{"message-count":"1","messages":[{"status":"0","message-id":"X1"}]}"#,
    )
}

#[tokio::test]
async fn timeout_then_failover_within_bounds() {
    let slow = Mock::start(|_| Reply::Hang).await;
    let good = Mock::start(|_| vonage_ok()).await;
    let s = Setup::new();
    let chain = s.chain(&format!(
        "{}{}",
        twilio(
            &s,
            &slow.base,
            "timeout_seconds = 1\nretries = 1\nretry_backoff_ms = 50"
        ),
        vonage(&s, &good.base, "")
    ));
    let start = Instant::now();
    let d = chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    let took = start.elapsed();
    assert_eq!(d.provider, "vonage");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "{took:?}"
    );
    let fails: Vec<_> = d
        .attempts
        .iter()
        .filter(|a| a.provider == "twilio")
        .collect();
    assert_eq!(fails.len(), 2, "a timeout is retried once");
    for a in fails {
        let AttemptOutcome::Failed(ProviderError::Retryable(m)) = &a.outcome else {
            panic!("{a:?}")
        };
        assert!(
            m.contains("timed out") || m.contains("no answer within"),
            "{m}"
        );
    }
}

#[tokio::test]
async fn server_errors_retry_then_fail_over_and_open_the_breaker() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let broken = Mock::start(move |_| {
        h.fetch_add(1, Ordering::SeqCst);
        Reply::json(503, r#"{"code": 20503, "message": "Service Unavailable"}"#)
    })
    .await;
    let good = Mock::start(|_| vonage_ok()).await;
    let s = Setup::new();
    let chain = s.chain(&format!(
        "{}{}",
        twilio(&s, &broken.base, "retries = 1\nretry_backoff_ms = 20\nbreaker_failures = 2\nbreaker_cooldown_seconds = 1"),
        vonage(&s, &good.base, "")
    ));
    for _ in 0..2 {
        assert_eq!(
            chain
                .send_with(&sms(), &SendMeta::default())
                .await
                .unwrap()
                .provider,
            "vonage"
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 4, "two sends, one retry each");
    assert_eq!(chain.open_breakers(), ["twilio"]);
    // While open, twilio costs nothing.
    let d = chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 4);
    assert!(matches!(
        d.attempts[0].outcome,
        AttemptOutcome::Skipped { .. }
    ));
    // After the cooldown one probe (no retries) goes to twilio again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 5);
    assert_eq!(chain.open_breakers(), ["twilio"], "failed probe reopens");
}

#[tokio::test]
async fn rate_limit_then_success_on_the_same_provider() {
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    let flaky = Mock::start(move |_| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::json(429, r#"{"code": 20429, "message": "Too Many Requests"}"#)
                .with_header("Retry-After", "1")
        } else {
            Reply::json(201, r#"{"sid": "SM1", "status": "queued"}"#)
        }
    })
    .await;
    let s = Setup::new();
    let chain = s.chain(&twilio(&s, &flaky.base, "retries = 1"));
    let start = Instant::now();
    let d = chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(d.attempts.len(), 2);
    assert_eq!(d.receipt.id.as_deref(), Some("SM1"));
}

#[tokio::test]
async fn garbage_bodies_and_dropped_connections_fail_over() {
    let garbage = Mock::start(|_| Reply::Http {
        status: 200,
        headers: vec![],
        body: "\u{1b}[31m<<garbage>>".into(),
    })
    .await;
    let closer = Mock::start(|_| Reply::Close).await;
    let good = Mock::start(|_| Reply::json(201, r#"{"sid": "SM9"}"#)).await;
    let s = Setup::new();
    let chain = s.chain(&format!(
        "{}{}{}",
        vonage(&s, &garbage.base, "retries = 0"),
        // The same provider type twice needs distinct names.
        twilio(&s, &closer.base, "retries = 0\nname = \"tw-closer\""),
        twilio(&s, &good.base, "retries = 0\nname = \"tw-good\""),
    ));
    let d = chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    assert_eq!(d.provider, "tw-good");
    let text: Vec<String> = d.attempts.iter().map(|a| a.to_string()).collect();
    assert!(text[0].starts_with("vonage: temporary failure: HTTP 200 from vonage with an unreadable answer: [31m<<garbage>>"), "{text:?}");
    assert!(
        text[1].starts_with("tw-closer: temporary failure: tw-closer: request failed"),
        "{text:?}"
    );
    assert!(text[2].starts_with("tw-good: sent, HTTP 201"), "{text:?}");
}

#[tokio::test]
async fn everything_failing_is_reported_plainly() {
    let down = Mock::start(|_| Reply::json(500, "{}")).await;
    let s = Setup::new();
    let chain = s.chain(&format!(
        "{}{}",
        twilio(&s, &down.base, "retries = 0"),
        vonage(&s, &down.base, "retries = 0")
    ));
    let e = chain
        .send_with(&sms(), &SendMeta::default())
        .await
        .unwrap_err();
    assert!(e.is_retryable());
    assert_eq!(
        e.to_string(),
        "all 2 SMS providers failed: twilio: temporary failure: HTTP 500 from twilio: {}; \
         vonage: temporary failure: HTTP 500 from vonage: {}"
    );
}

#[tokio::test]
async fn the_callers_deadline_wins() {
    let slow = Mock::start(|_| Reply::Hang).await;
    let s = Setup::new();
    let chain = s.chain(&twilio(&s, &slow.base, "timeout_seconds = 30\nretries = 3"));
    let start = Instant::now();
    let meta = SendMeta {
        deadline: Some(tokio::time::Instant::now() + Duration::from_millis(800)),
        ..Default::default()
    };
    chain.send_with(&sms(), &meta).await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
}
