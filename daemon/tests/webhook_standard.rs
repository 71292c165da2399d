//! The webhook provider's default signatures (Standard Webhooks), checked
//! by the specification's own Python verifier from PyPI
//! (`standardwebhooks`, installed into a cached venv by
//! scripts/test-venv.sh): a loopback receiver that answers 204 only for a
//! delivery that verifies. Rotation (two keys, both signatures) and a
//! replay past the verifier's 5-minute tolerance are judged by it too.

mod providers_support;

use providers_support::*;
use smsotpd::providers::{AttemptOutcome, ProviderError, SendMeta};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Two keys of 32 random bytes, and one nobody configured, as
/// `whsec_<base64>` (made with `openssl rand -base64 32`).
const NEW: &str = "whsec_o6n2mRNjfsMLuHAfz3f+wopxdaMbovpYjs+zvAVCoB8=";
const OLD: &str = "whsec_9BHb7aLCvkLnWcIn66Ab4uZf+ooFCbrepiRBmL1qOKU=";
const STRANGER: &str = "whsec_lqPiSwP9PRBdyaDDojG/GloJHU6IiC/nBethoY6Qc0E=";

fn venv_python() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/test-venv.sh");
    let out = Command::new("bash")
        .arg(script)
        .output()
        .expect("run scripts/test-venv.sh");
    assert!(
        out.status.success(),
        "scripts/test-venv.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The Python receiver, trusting the given secrets; killed on drop.
struct Receiver {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
}

impl Receiver {
    fn start(secrets: &[&str]) -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhook_standard/receiver.py");
        let child = Command::new(venv_python())
            .arg(script)
            .arg(&port_file)
            .arg(dir.path().join("log"))
            .args(secrets)
            .spawn()
            .expect("start the receiver");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p;
            }
            assert!(Instant::now() < deadline, "the receiver did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        Receiver {
            child,
            url: format!("http://127.0.0.1:{port}/hooks/smsotp"),
            dir,
        }
    }

    /// One entry per delivery received, in order.
    fn log(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn provider(s: &Setup, url: &str, previous: Option<&str>) -> String {
    let key = s.secret_file("webhook.key", NEW);
    let mut t = format!(
        "[[provider]]\ntype = \"webhook\"\nurl = \"{url}\"\nsecret_file = \"{}\"\nretries = 0\n",
        key.display()
    );
    if let Some(p) = previous {
        let old = s.secret_file("webhook-old.key", p);
        t.push_str(&format!("previous_secret_file = \"{}\"\n", old.display()));
    }
    t
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn deliveries_verify_with_the_published_verifier_and_replays_do_not() {
    let rx = Receiver::start(&[NEW, STRANGER]);
    let s = Setup::new();
    let chain = s.chain(&provider(&s, &rx.url, None));
    for _ in 0..2 {
        let d = chain.send_with(&sms(), &SendMeta::default()).await;
        assert!(d.is_ok(), "the receiver refused a delivery: {:?}", d.err());
    }
    let log = rx.log();
    assert_eq!(log.len(), 2, "{log:?}");
    for entry in &log {
        let now = strings(&entry["now"]);
        assert_eq!(now[0], "ok", "{entry}");
        assert!(
            now[1].starts_with("refused"),
            "another key verifies: {entry}"
        );
        // Six minutes on, the same bytes and headers are refused as stale.
        let later = strings(&entry["replayed_later"]);
        assert!(
            later[0].contains("too old"),
            "replay accepted or refused for the wrong reason: {entry}"
        );
        // Nor can a replayer freshen the timestamp: it is signed.
        let retimed = strings(&entry["retimed"]);
        assert!(
            retimed[0].contains("No matching signature"),
            "a moved timestamp still verifies: {entry}"
        );
        assert_eq!(entry["signature"].as_str().unwrap().split(' ').count(), 1);
    }
}

#[tokio::test]
async fn an_unpadded_secret_is_the_same_key() {
    let rx = Receiver::start(&[NEW]);
    let s = Setup::new();
    let key = s.secret_file("nopad.key", NEW.trim_end_matches('='));
    let toml = format!(
        "[[provider]]\ntype = \"webhook\"\nurl = \"{}\"\nsecret_file = \"{}\"\nretries = 0\n",
        rx.url,
        key.display()
    );
    s.chain(&toml)
        .send_with(&sms(), &SendMeta::default())
        .await
        .unwrap();
    assert_eq!(strings(&rx.log()[0]["now"]), ["ok"]);
}

#[tokio::test]
async fn during_a_rotation_both_keys_verify() {
    // Receivers part-way through the rotation: one still on the old key,
    // one already on the new, one on neither.
    let rx = Receiver::start(&[OLD, NEW, STRANGER]);
    let s = Setup::new();
    let chain = s.chain(&provider(&s, &rx.url, Some(OLD)));
    chain.send_with(&sms(), &SendMeta::default()).await.unwrap();
    let log = rx.log();
    assert_eq!(log.len(), 1);
    let now = strings(&log[0]["now"]);
    assert_eq!(&now[..2], ["ok", "ok"], "{}", log[0]);
    assert!(now[2].starts_with("refused"), "{}", log[0]);
    let sig = log[0]["signature"].as_str().unwrap();
    assert_eq!(sig.split(' ').count(), 2, "{sig}");
    assert!(sig.split(' ').all(|p| p.starts_with("v1,")), "{sig}");
}

#[tokio::test]
async fn a_receiver_with_another_key_refuses_and_the_send_fails() {
    let rx = Receiver::start(&[STRANGER]);
    let s = Setup::new();
    let e = s
        .chain(&provider(&s, &rx.url, None))
        .send_with(&sms(), &SendMeta::default())
        .await
        .unwrap_err();
    assert_eq!(e.attempts.len(), 1, "401 is not retried");
    assert!(
        matches!(&e.attempts[0].outcome, AttemptOutcome::Failed(ProviderError::Permanent(m)) if m.contains("HTTP 401")),
        "{:?}",
        e.attempts[0].outcome
    );
    assert_eq!(rx.log().len(), 1);
}

#[test]
fn malformed_standard_secrets_are_refused_without_showing_them() {
    let s = Setup::new();
    for (bad, why) in [
        ("whsec_not*base64*at*all", "is not base64"),
        ("whsec_c2hvcnQ=", "the key is 5 bytes"),
    ] {
        let key = s.secret_file("bad.key", bad);
        let cfg = s.load(&format!(
            "[[provider]]\ntype = \"webhook\"\nurl = \"https://hooks.example/x\"\nsecret_file = \"{}\"\n",
            key.display()
        ));
        let e = smsotpd::providers::build(&cfg.providers[0])
            .unwrap_err()
            .to_string();
        assert!(e.contains(why), "{e}");
        assert!(!e.contains(&bad[6..]), "the secret is in the error: {e}");
    }
}
