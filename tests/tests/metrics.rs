//! `[metrics]` on a real daemon: logins through real libpam (right code,
//! a wrong one, a send refused by the budget), then the loopback endpoint
//! scraped over HTTP and the node_exporter textfile read, each parsed by
//! the Prometheus project's Python parser (`prometheus-client` from PyPI,
//! in the venv of scripts/test-venv.sh: OpenMetrics for the endpoint, the
//! Prometheus text format for the textfile). The counters must equal the
//! events performed, and no label may carry the user or a digit of a
//! number.

use serde_json::Value;
use smsotp_tests::daemon::Daemon;
use smsotp_tests::flows::*;
use smsotp_tests::libpam::{PAM_AUTH_ERR, PAM_SUCCESS};
use smsotp_tests::outbox::wrong_code;
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::policy_kit::{
    closed_port, ctl, login_with, no_prompt, run_bounded, wait_until, Items,
};
use smsotp_tests::sshd::free_port;
use smsotp_tests::{require_root, unique_name};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const MOBILE: &str = "+15551249876";
const SERVICE: &str = "metrics-test";

/// Parses exposition text with prometheus_client; one entry per sample:
/// `[name, {label: value}, value]`.
/// A parsed sample: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

fn parse(text: &str, openmetrics: bool) -> Vec<Sample> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let ran = run_bounded(
        Command::new("bash").arg(root.join("scripts/test-venv.sh")),
        Duration::from_secs(600),
    );
    ran.expect_code(0);
    let module = if openmetrics {
        "prometheus_client.openmetrics.parser"
    } else {
        "prometheus_client.parser"
    };
    let script = format!(
        "import json, sys\nfrom {module} import text_string_to_metric_families as parse\n\
         print(json.dumps([[s.name, s.labels, s.value] for f in parse(sys.argv[1]) for s in f.samples]))"
    );
    let out = run_bounded(
        Command::new(ran.stdout.trim()).args(["-c", &script, text]),
        Duration::from_secs(60),
    );
    out.expect_code(0);
    let v: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    v.iter()
        .map(|s| {
            let labels = s[1]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            (
                s[0].as_str().unwrap().to_string(),
                labels,
                s[2].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The sum of the samples `name` whose labels include `want`; `None`
/// if there is none.
fn value(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> Option<f64> {
    let hits: Vec<f64> = samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.2)
        .collect();
    (!hits.is_empty()).then(|| hits.iter().sum())
}

/// Checks `name{k=v,...} VALUE` lines against the samples; the labels
/// given select (a line without labels sums the whole family).
fn assert_samples(samples: &[Sample], expect: &[&str], text: &str) {
    for e in expect {
        let (series, want) = e.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels: Vec<(&str, &str)> = labels
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap())
            .collect();
        let want: f64 = want.parse().unwrap();
        // A zero must be a series that says 0, not a missing one.
        let got =
            value(samples, name, &labels).unwrap_or_else(|| panic!("no series for {e} in\n{text}"));
        assert_eq!(got, want, "{e} in\n{text}");
    }
}

fn get(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn counters_equal_the_logins_performed_and_labels_name_nobody() {
    require_root("only root may ask the daemon for another user's code");
    let user = unique_name("metr");
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let textfile = dir.path().join("smsotp.prom");
    let d = Daemon::builder()
        .user(&user, MOBILE)
        .section("send_budget", "per_user_per_hour = 2")
        .section("metrics", &format!("listen = \"127.0.0.1:{port}\""))
        .section("metrics", &format!("textfile = \"{}\"", textfile.display()))
        .section("metrics", "textfile_interval_seconds = 1")
        .start();
    let pamd = PamConfDir::new();
    pamd.smsotp_service(SERVICE, &d.socket(), "timeout=10");
    let outbox = d.outbox();

    // 1: the right code. 2: a wrong code, then the right one.
    login_with(
        &pamd,
        SERVICE,
        &user,
        Items::default(),
        type_newest_code(&outbox),
    )
    .assert_code(PAM_SUCCESS);
    let mut first = true;
    login_with(&pamd, SERVICE, &user, Items::default(), |_| {
        let code = outbox.last_code();
        Some(if std::mem::take(&mut first) {
            wrong_code(&code)
        } else {
            code
        })
    })
    .assert_code(PAM_SUCCESS);
    // 3: the user's budget of 2 an hour is spent: refused, nothing sent.
    login_with(&pamd, SERVICE, &user, Items::default(), no_prompt).assert_code(PAM_AUTH_ERR);
    assert_eq!(outbox.count(), 2);

    let answer = get(port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.contains("Content-Type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    let samples = parse(body, true);
    let expect = [
        "smsotp_verifications_total{method=sms,result=ok} 2",
        "smsotp_verifications_total{method=sms,result=wrong} 1",
        "smsotp_sends_total{provider=outbox,result=sent} 2",
        "smsotp_budget_refusals_total{kind=user} 1",
        "smsotp_lockouts_total 0",
        "smsotp_events_total{event=code_sent} 2",
        "smsotp_events_total{event=wrong_code} 1",
        "smsotp_events_total{event=verified} 2",
        "smsotp_events_total{event=send_refused} 1",
        "smsotp_provider_latency_seconds_count{provider=outbox} 2",
        "smsotp_breaker_open{provider=outbox} 0",
        // Exactly those sends, verifications and refusals: nothing else.
        "smsotp_sends_total 2",
        "smsotp_verifications_total 3",
        "smsotp_budget_refusals_total 1",
    ];
    assert_samples(&samples, &expect, body);
    assert!(
        samples.iter().any(|(n, _, _)| n == "smsotp_breaker_open"),
        "the breaker gauge is there: {body}"
    );
    // Labels from fixed sets only: no user, and no digit (of a number, a
    // code or anything else) except in histogram bucket bounds.
    assert!(!body.contains(&user), "{body}");
    for (name, labels, _) in &samples {
        for (k, v) in labels {
            assert!(
                k == "le" || !v.chars().any(|c| c.is_ascii_digit()),
                "{name} {k}={v:?}"
            );
        }
    }

    // The textfile says the same, in the Prometheus text format.
    let text = wait_until(Duration::from_secs(10), || {
        let t = std::fs::read_to_string(&textfile).ok()?;
        t.contains("event=\"send_refused\"").then_some(t)
    })
    .expect("the textfile is written within its interval");
    assert_samples(&parse(&text, false), &expect, &text);
    assert!(!text.contains("# EOF"), "{text}");

    // Only GET /metrics is served.
    assert!(get(port, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
    assert!(
        get(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            .starts_with("HTTP/1.1 405 ")
    );
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(8192));
    assert!(get(port, &huge).starts_with("HTTP/1.1 431 "));
    d.assert_log_clean(&[]);
}

#[test]
fn a_flood_of_idle_connections_costs_four_slots_for_five_seconds_and_no_login() {
    require_root("only root may ask the daemon for another user's code");
    let user = unique_name("metf");
    let port = free_port();
    let d = Daemon::builder()
        .user(&user, MOBILE)
        .section("metrics", &format!("listen = \"127.0.0.1:{port}\""))
        .start();
    let pamd = PamConfDir::new();
    pamd.smsotp_service(SERVICE, &d.socket(), "timeout=10");
    // 20 connections that never send a byte.
    let idle: Vec<TcpStream> = (0..20)
        .map(|_| {
            let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        })
        .collect();
    // A login meanwhile is not slowed by them.
    let started = std::time::Instant::now();
    login_with(
        &pamd,
        SERVICE,
        &user,
        Items::default(),
        type_newest_code(&d.outbox()),
    )
    .assert_code(PAM_SUCCESS);
    let login_took = started.elapsed();
    assert!(login_took < Duration::from_secs(5), "{login_took:?}");
    // Those over the 4 slots are closed at once; the 4 at the deadline.
    // (Read newest first: the first 4 accepted are the ones held.)
    let mut closed_at = Vec::new();
    for mut s in idle.into_iter().rev() {
        let mut b = [0u8; 1];
        let n = s.read(&mut b).unwrap_or(0);
        assert_eq!(n, 0, "an idle connection got an answer");
        closed_at.push(started.elapsed());
    }
    let soon = login_took + Duration::from_secs(1);
    let early = closed_at.iter().filter(|t| **t < soon).count();
    assert!(early >= 16, "closed at {closed_at:?}");
    let last = closed_at.iter().max().unwrap();
    assert!(
        *last < Duration::from_secs(8),
        "held past the 5 s deadline: {closed_at:?}"
    );
    eprintln!("{early} of 20 closed at once, the last at {last:?}; the login took {login_took:?}");
    // And scrapes are answered again.
    assert!(get(port, "GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200 "));
}

#[test]
fn a_failing_provider_shows_in_sends_latency_and_its_open_breaker() {
    require_root("smsotpctl test-sms needs root");
    let user = unique_name("metb");
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::builder()
        .user(&user, MOBILE)
        .provider(&format!(
            "type = \"http\"\nname = \"down\"\nurl = \"http://127.0.0.1:{}/sms\"\n\
             payload = '{{\"to\": {{{{mobile}}}}, \"text\": {{{{body}}}}}}'\nretries = 0\nbreaker_failures = 1\n",
            closed_port()
        ))
        .provider(&format!(
            "type = \"outbox\"\nname = \"spare\"\npath = \"{}\"\n",
            dir.path().join("spare.jsonl").display()
        ))
        .section("metrics", &format!("listen = \"127.0.0.1:{port}\""))
        .start();
    ctl(&d.socket(), &["test-sms", &user]).expect_code(0);
    let answer = get(port, "GET /metrics HTTP/1.1\r\n\r\n");
    let body = answer.split_once("\r\n\r\n").unwrap().1;
    let samples = parse(body, true);
    let expect = [
        "smsotp_sends_total{provider=down,result=retryable} 1",
        "smsotp_sends_total{provider=spare,result=sent} 1",
        "smsotp_sends_total 2",
        "smsotp_provider_latency_seconds_count{provider=down} 1",
        "smsotp_breaker_open{provider=down} 1",
        "smsotp_breaker_open{provider=spare} 0",
    ];
    assert_samples(&samples, &expect, body);
}
