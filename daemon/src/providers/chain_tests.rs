//! The chain with scripted fake providers: failover, retries only for
//! temporary failures, Retry-After, timeouts, the breaker, deadlines.

use super::super::SendFuture;
use super::*;
use smsotp_config::Mobile;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// What a fake does on one call.
#[derive(Clone, Debug)]
enum Step {
    Answer(Result<Receipt, ProviderError>),
    /// Never answers (the chain's timeout must cut it).
    Hang,
}

/// A provider that plays a script, then repeats its last step.
#[derive(Debug)]
struct Fake {
    name: &'static str,
    script: Mutex<VecDeque<Step>>,
    calls: Arc<AtomicUsize>,
    policy: Resilience,
}

impl SmsProvider for Fake {
    fn name(&self) -> &str {
        self.name
    }
    fn send<'a>(&'a self, _sms: &'a Sms, _meta: &'a SendMeta) -> SendFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let step = {
            let mut s = self.script.lock().unwrap();
            if s.len() > 1 {
                s.pop_front().unwrap()
            } else {
                s.front().cloned().unwrap()
            }
        };
        Box::pin(async move {
            match step {
                Step::Answer(r) => r,
                Step::Hang => std::future::pending().await,
            }
        })
    }
    fn resilience(&self) -> Resilience {
        self.policy
    }
}

fn policy() -> Resilience {
    Resilience {
        timeout: Duration::from_secs(2),
        retries: 2,
        backoff: Duration::from_millis(100),
        breaker_failures: 2,
        breaker_cooldown: Duration::from_secs(30),
    }
}

fn fake(name: &'static str, script: Vec<Step>) -> (Box<dyn SmsProvider>, Arc<AtomicUsize>) {
    fake_with(name, script, policy())
}

fn fake_with(
    name: &'static str,
    script: Vec<Step>,
    policy: Resilience,
) -> (Box<dyn SmsProvider>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let p = Fake {
        name,
        script: Mutex::new(script.into()),
        calls: calls.clone(),
        policy,
    };
    (Box::new(p), calls)
}

fn ok(detail: &str) -> Step {
    Step::Answer(Ok(Receipt::new(detail)))
}
fn temp(m: &str) -> Step {
    Step::Answer(Err(ProviderError::Retryable(m.into())))
}
fn perm(m: &str) -> Step {
    Step::Answer(Err(ProviderError::Permanent(m.into())))
}

fn sms() -> Sms {
    Sms {
        to: Mobile::parse("+15551234567").unwrap(),
        body: Zeroizing::new("code 123456".into()),
    }
}

fn calls(c: &Arc<AtomicUsize>) -> usize {
    c.load(Ordering::SeqCst)
}

#[tokio::test(start_paused = true)]
async fn first_failure_falls_through_to_second() {
    let (a, a_calls) = fake("a", vec![perm("HTTP 401 from a")]);
    let (b, b_calls) = fake("b", vec![ok("HTTP 200")]);
    let (c, c_calls) = fake("c", vec![ok("never")]);
    let chain = Chain::new(vec![a, b, c]);
    assert_eq!(chain.names(), ["a", "b", "c"]);
    let d = chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    assert_eq!(d.provider, "b");
    assert_eq!(d.receipt.detail, "HTTP 200");
    assert_eq!((d.encoding, d.segments), ("GSM-7", 1));
    assert_eq!(calls(&a_calls), 1, "a permanent error is not retried");
    assert_eq!(calls(&b_calls), 1);
    assert_eq!(calls(&c_calls), 0, "stops at first success");
    assert_eq!(d.attempts.len(), 2);
    assert_eq!(
        d.attempts[0].to_string().split(" [").next().unwrap(),
        "a: permanent failure: HTTP 401 from a"
    );
    assert!(d.attempts[1].to_string().starts_with("b: sent, HTTP 200 ["));
}

#[tokio::test(start_paused = true)]
async fn temporary_failures_are_retried_with_backoff() {
    let (a, a_calls) = fake(
        "a",
        vec![temp("HTTP 503"), temp("HTTP 502"), ok("HTTP 201")],
    );
    let chain = Chain::new(vec![a]);
    let start = Instant::now();
    let d = chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    assert_eq!(calls(&a_calls), 3);
    assert_eq!(
        d.attempts.iter().map(|a| a.try_number).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // Backoff 100 ms then 200 ms, each between half and all of it.
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited <= Duration::from_millis(300),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_configured_count() {
    let (a, a_calls) = fake("a", vec![temp("HTTP 503")]);
    let (b, _) = fake("b", vec![ok("HTTP 200")]);
    let chain = Chain::new(vec![a, b]);
    let d = chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    assert_eq!(calls(&a_calls), 3, "1 try + 2 retries");
    assert_eq!(d.provider, "b");
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_when_short_and_skipped_when_long() {
    let limited = |secs| {
        Step::Answer(Err(ProviderError::RateLimited {
            message: "HTTP 429".into(),
            retry_after: Some(Duration::from_secs(secs)),
        }))
    };
    let (a, a_calls) = fake("a", vec![limited(3), ok("HTTP 201")]);
    let chain = Chain::new(vec![a]);
    let start = Instant::now();
    chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    assert_eq!(calls(&a_calls), 2);
    assert_eq!(start.elapsed(), Duration::from_secs(3));

    let (a, a_calls) = fake("a", vec![limited(600)]);
    let (b, _) = fake("b", vec![ok("HTTP 200")]);
    let chain = Chain::new(vec![a, b]);
    let start = Instant::now();
    let d = chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    assert_eq!(
        calls(&a_calls),
        1,
        "a 10-minute Retry-After sends us elsewhere"
    );
    assert_eq!(d.provider, "b");
    assert!(start.elapsed() < Duration::from_millis(10));
}

#[tokio::test(start_paused = true)]
async fn a_hanging_provider_is_cut_by_its_timeout() {
    let mut p = policy();
    p.retries = 0;
    let (a, _) = fake_with("a", vec![Step::Hang], p);
    let (b, _) = fake("b", vec![ok("HTTP 200")]);
    let chain = Chain::new(vec![a, b]);
    let start = Instant::now();
    let d = chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    assert_eq!(d.provider, "b");
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert!(
        matches!(&d.attempts[0].outcome, AttemptOutcome::Failed(ProviderError::Retryable(m)) if m == "no answer within 2.0s")
    );
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_skips_and_probes() {
    let mut p = policy();
    p.retries = 0;
    let (a, a_calls) = fake_with(
        "a",
        vec![temp("HTTP 503"), temp("HTTP 503"), ok("HTTP 201")],
        p,
    );
    let (b, b_calls) = fake("b", vec![ok("HTTP 200")]);
    let chain = Chain::new(vec![a, b]);
    for _ in 0..2 {
        assert_eq!(
            chain
                .send_with(&sms(), &SendMeta::default())
                .await
                .unwrap()
                .provider,
            "b"
        );
    }
    assert_eq!(calls(&a_calls), 2);
    assert_eq!(chain.open_breakers(), ["a"]);
    // Open: a is skipped without a call.
    let d = chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    assert_eq!(calls(&a_calls), 2);
    assert!(matches!(
        d.attempts[0].outcome,
        AttemptOutcome::Skipped { .. }
    ));
    assert!(d.attempts[0].to_string().contains("circuit breaker open"));
    // After the cooldown one probe goes through; it works and closes it.
    tokio::time::advance(Duration::from_secs(31)).await;
    let d = chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    assert_eq!(d.provider, "a");
    assert!(chain.open_breakers().is_empty());
    assert_eq!(calls(&b_calls), 3);
}

#[tokio::test(start_paused = true)]
async fn recipient_errors_do_not_open_the_breaker() {
    let mut p = policy();
    p.breaker_failures = 1;
    let (a, a_calls) = fake_with(
        "a",
        vec![Step::Answer(Err(ProviderError::Recipient(
            "status 29".into(),
        )))],
        p,
    );
    let (b, _) = fake("b", vec![ok("HTTP 200")]);
    let chain = Chain::new(vec![a, b]);
    for _ in 0..3 {
        chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    }
    assert_eq!(calls(&a_calls), 3, "not retried, never skipped");
    assert!(chain.open_breakers().is_empty());
}

#[tokio::test(start_paused = true)]
async fn every_breaker_open_still_tries_once() {
    let mut p = policy();
    p.retries = 0;
    p.breaker_failures = 1;
    let (a, a_calls) = fake_with("a", vec![temp("down"), ok("back")], p);
    let chain = Chain::new(vec![a]);
    assert!(chain.send_with(&sms(), &SendMeta::default()).await.is_err());
    assert_eq!(chain.open_breakers(), ["a"]);
    let d = chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    assert_eq!(calls(&a_calls), 2);
    assert!(matches!(
        d.attempts[0].outcome,
        AttemptOutcome::Skipped { .. }
    ));
    assert_eq!(d.provider, "a");
}

#[tokio::test(start_paused = true)]
async fn deadline_bounds_tries_and_backoff() {
    let mut p = policy();
    p.retries = 5;
    p.backoff = Duration::from_millis(100);
    let (a, a_calls) = fake_with("a", vec![Step::Hang], p);
    let (b, b_calls) = fake("b", vec![ok("never")]);
    let chain = Chain::new(vec![a, b]);
    let start = Instant::now();
    let meta = SendMeta {
        deadline: Some(start + Duration::from_secs(3)),
        ..Default::default()
    };
    let e = chain.send_with(&sms(), &meta).await.unwrap_err();
    assert!(
        start.elapsed() <= Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    // Try 1 times out at 2 s, try 2 is cut at the deadline (3 s).
    assert_eq!(calls(&a_calls), 2);
    assert_eq!(calls(&b_calls), 0, "no time left for b");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn all_failing_lists_every_provider_once() {
    let mut p = policy();
    p.retries = 0;
    let (a, _) = fake_with("a", vec![temp("HTTP 503 from a")], p);
    let (b, _) = fake("b", vec![perm("HTTP 401 from b")]);
    let chain = Chain::new(vec![a, b]);
    let e = chain.send(&sms()).await.unwrap_err();
    assert_eq!(e.attempts.len(), 2);
    assert!(e.is_retryable());
    let text = e.to_string();
    assert_eq!(
        text,
        "all 2 SMS providers failed: a: temporary failure: HTTP 503 from a; \
         b: permanent failure: HTTP 401 from b"
    );
    assert!(!text.contains("5551234567"));
}

#[tokio::test]
async fn empty_chain_fails_clearly() {
    let chain = Chain::new(Vec::new());
    let e = chain.send(&sms()).await.unwrap_err();
    assert!(e.attempts.is_empty());
    assert!(!e.is_retryable());
    assert_eq!(e.to_string(), "no SMS provider is configured");
}

#[tokio::test]
async fn chain_with_real_outbox_from_config() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[[provider]]\ntype = \"outbox\"\nname = \"broken\"\npath = '{}'\n\
         [[provider]]\ntype = \"outbox\"\npath = '{}'\n",
        dir.path().join("missing").join("o.jsonl").display(),
        dir.path().join("o.jsonl").display()
    );
    let cfg = smsotp_config::parse(std::path::Path::new("t.toml"), &toml).unwrap();
    let providers = cfg
        .providers
        .iter()
        .map(super::super::build)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let chain = Chain::new(providers);
    assert_eq!(chain.names(), ["broken", "outbox"]);
    let (name, _) = chain.send(&sms()).await.unwrap();
    assert_eq!(name, "outbox");
    let text = std::fs::read_to_string(dir.path().join("o.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 1);
}
