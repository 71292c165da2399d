//! A hostile peer on the socket: each kind of garbage is refused or the
//! connection closed, the daemon neither dies nor balloons, no SMS goes
//! out, and a normal login works afterwards.

use smsotp_proto::{BeginRequest, ErrorKind, Request, Response};
use smsotp_tests::daemon::Daemon;
use smsotp_tests::flows::*;
use smsotp_tests::libpam::{self, PAM_SUCCESS};
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::wire::{exchange, frame, hello_frame, pseudo_random, request_frame, RawReply};
use smsotp_tests::{require_root, unique_name};
use std::time::Duration;

const MOBILE: &str = "+15558889999";
const DEADLINE: Duration = Duration::from_secs(5);
/// After an answer, how long to wait for the close that may follow.
const GRACE: Duration = Duration::from_millis(300);

/// Resident memory of a process in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The stream is out of sync: the daemon must close it, answering at most
/// an Error first.
fn assert_closed(what: &str, r: &RawReply) {
    assert!(r.closed, "{what}: connection left open: {r:?}");
    assert_only_errors(what, r);
}

/// The frame was well-formed but wrong: an Error answer or a close will do.
fn assert_refused(what: &str, r: &RawReply) {
    assert!(
        r.closed || !r.frames.is_empty(),
        "{what}: no answer and no close: {r:?}"
    );
    assert_only_errors(what, r);
}

/// Every answer is an Error (a Hello is fine: some cases send one first).
fn assert_only_errors(what: &str, r: &RawReply) {
    for f in &r.frames {
        match f {
            Ok(Response::Error { .. }) | Ok(Response::Hello { .. }) => {}
            other => panic!("{what}: unexpected answer {other:?}"),
        }
    }
}

#[test]
fn garbage_is_refused_and_the_daemon_carries_on() {
    require_root("only root may ask the daemon for another user's code");
    let user = unique_name("hostile");
    let mut d = Daemon::builder().user(&user, MOBILE).start();
    let sock = d.socket();
    let pid = d.pid().expect("running");
    let rss_before = rss_kib(pid);

    // Random bytes (the first one makes the "length" far above 64 KiB).
    let mut noise = pseudo_random(4096, 0x5eed_1234);
    noise[0] = 0xA5;
    assert_closed("random bytes", &exchange(&sock, noise, DEADLINE, DEADLINE));

    // A header claiming 4 GB, then a little payload.
    let mut huge = vec![0xFF, 0xFF, 0xFF, 0xFF];
    huge.extend_from_slice(b"{\"type\":\"hello\"}");
    assert_closed("4 GB header", &exchange(&sock, huge, DEADLINE, DEADLINE));

    // A 10 MB frame, actually sent.
    let ten_mb = 10 * 1024 * 1024;
    let mut big = (ten_mb as u32).to_be_bytes().to_vec();
    big.resize(4 + ten_mb, b'a');
    assert_closed("10 MB body", &exchange(&sock, big, DEADLINE, DEADLINE));

    // Just over the 64 KiB limit, after a valid hello.
    let mut over = hello_frame();
    over.extend_from_slice(&frame(&vec![b' '; 64 * 1024 + 1]));
    assert_closed(
        "64 KiB + 1 frame",
        &exchange(&sock, over, DEADLINE, DEADLINE),
    );

    // A zero-length frame.
    assert_refused(
        "empty frame",
        &exchange(&sock, vec![0, 0, 0, 0], DEADLINE, GRACE),
    );

    // Invalid UTF-8 inside JSON.
    let bad_utf8 = frame(b"{\"type\":\"hello\",\"version\":1,\"client\":\"\xff\xfe\"}");
    assert_refused("invalid UTF-8", &exchange(&sock, bad_utf8, DEADLINE, GRACE));

    // Not JSON at all.
    assert_refused(
        "not JSON",
        &exchange(&sock, frame(b"hello?"), DEADLINE, GRACE),
    );

    // A Begin before any hello: must not start a challenge.
    let begin = Request::Begin(BeginRequest {
        user: user.clone(),
        service: "garbage".into(),
        rhost: None,
        tty: None,
        command: None,
    });
    assert_refused(
        "frame before hello",
        &exchange(&sock, request_frame(&begin), DEADLINE, GRACE),
    );

    // A hello with a version nobody speaks.
    let future = request_frame(&Request::Hello {
        version: 999,
        client: "future".into(),
    });
    let r = exchange(&sock, future, DEADLINE, GRACE);
    assert_refused("hello version 999", &r);
    if let Some(Ok(Response::Error { kind, .. })) = r.frames.first() {
        assert_eq!(*kind, ErrorKind::UnsupportedVersion, "{r:?}");
    }

    // Verify with no challenge, after a proper hello.
    let mut verify = hello_frame();
    verify.extend_from_slice(&frame(br#"{"type":"verify","code":"123456"}"#));
    let r = exchange(&sock, verify, DEADLINE, GRACE);
    assert!(
        matches!(r.frames.first(), Some(Ok(Response::Hello { .. }))),
        "hello first: {r:?}"
    );
    for f in &r.frames[1..] {
        assert!(
            matches!(f, Ok(Response::Error { .. })),
            "verify without challenge: {r:?}"
        );
    }

    assert!(d.is_running(), "the daemon died:\n{}", d.log());
    let rss_after = rss_kib(pid);
    assert!(
        rss_after < rss_before + 64 * 1024,
        "daemon memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    assert_eq!(d.outbox().count(), 0, "garbage must not send an SMS");

    // And a real login still works.
    let pamd = PamConfDir::new();
    pamd.smsotp_service("smsotp-after-garbage", &sock, "timeout=10");
    let outbox = d.outbox();
    let ok = libpam::authenticate(
        "smsotp-after-garbage",
        &user,
        pamd.path(),
        type_newest_code(&outbox),
    );
    ok.assert_code(PAM_SUCCESS);
    assert_code_prompted(&ok);
    assert_eq!(outbox.count(), 1);
    d.assert_log_clean(&[]);
    d.stop();
}
