//! Security: what a local non-root user can and cannot do, hostile frames,
//! and a full login suite at trace level whose every log line is scanned
//! for codes, backup codes, tokens and full numbers.

use serde_json::{json, Value};
use smsotp_proto::{BeginRequest, Client, ErrorKind, Request, Response, Secret};
use smsotp_tests::daemon::{contains_token, toml_str, Daemon};
use smsotp_tests::faultkit::{requests_as, rss_kib};
use smsotp_tests::flows::{assert_code_prompted, type_newest_code};
use smsotp_tests::http_capture::HttpCapture;
use smsotp_tests::libpam::{self, Outcome, PAM_SUCCESS};
use smsotp_tests::outbox::{extract_code, wrong_code};
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::wire::{exchange, frame, hello_frame, request_frame};
use smsotp_tests::{require_root, unique_name};
use std::time::Duration;

const NOBODY: u32 = 65534;
const VICTIM_MOBILE: &str = "+15557770001";
const SELF_MOBILE: &str = "+15557770002";

fn kind(v: &Value) -> &str {
    v["type"].as_str().unwrap_or("")
}

fn login(
    d: &Daemon,
    user: &str,
    responder: impl FnMut(&libpam::Prompt<'_>) -> Option<String>,
) -> Outcome {
    let pamd = PamConfDir::new();
    pamd.smsotp_service("smsotp-sec", &d.socket(), "");
    libpam::authenticate("smsotp-sec", user, pamd.path(), responder)
}

#[test]
fn non_root_cannot_send_read_or_change_for_another_user() {
    require_root("switches to uid 65534");
    let victim = unique_name("victim");
    let d = Daemon::builder()
        .user(&victim, VICTIM_MOBILE)
        .user("nobody", SELF_MOBILE)
        .top("allow_user_self = true")
        .start();
    let attempts = [
        json!({"type": "begin", "user": victim, "service": "sshd"}),
        json!({"type": "status", "user": victim}),
        json!({"type": "generate_backup_codes", "user": victim}),
        json!({"type": "set_opt_out", "user": victim, "opted_out": true}),
        json!({"type": "unlock", "user": victim}),
        json!({"type": "test_sms", "user": victim}),
        json!({"type": "set_mobile", "user": victim, "mobile": "+15550000000"}),
        json!({"type": "remove_user", "user": victim}),
    ];
    for req in &attempts {
        let answers = requests_as(NOBODY, &d.socket(), std::slice::from_ref(req));
        let a = answers.first().cloned().unwrap_or(Value::Null);
        assert_eq!(kind(&a), "error", "{req} as uid {NOBODY} -> {a}");
        assert_eq!(a["kind"], "permission_denied", "{req} -> {a}");
        let text = a.to_string();
        assert!(
            !text.contains(&VICTIM_MOBILE[2..]),
            "the answer leaks the number: {text}"
        );
    }
    assert_eq!(
        d.outbox().count(),
        0,
        "a message went out: {:?}",
        d.outbox().read()
    );
    // The victim is untouched: root sees no opt-out, no lockout, no codes.
    let mut c = Client::connect(&d.socket(), Duration::from_secs(5), "smsotp-tests").unwrap();
    match c.call(&Request::Status {
        user: victim.clone(),
    }) {
        Ok(Response::Status(s)) => {
            assert!(
                !s.opted_out && !s.locked && s.backup_codes_left == 0,
                "{s:?}"
            );
            assert_eq!(s.mobile_source, "users.toml", "{s:?}");
        }
        other => panic!("status: {other:?}"),
    }
}

/// Parallel sessions do not multiply guesses: 8 connections of the same
/// (non-root) user, 3 wrong codes each, get at most `lockout.max_failures`
/// "wrong" verdicts in all; the rest are refused as locked.
#[test]
fn guesses_are_bounded_by_the_user_budget_across_parallel_connections() {
    require_root("switches to uid 65534");
    let d = Daemon::builder()
        .user("nobody", SELF_MOBILE)
        .top("allow_user_self = true")
        .section("lockout", "max_failures = 5")
        .section("send_budget", "per_user_per_hour = 100")
        .section("resend", "cooldown_seconds = 0")
        .start();
    let socket = d.socket();
    let answers: Vec<Vec<Value>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let socket = socket.clone();
                s.spawn(move || {
                    let guess = format!("{:06}", 100_000 + i * 7);
                    let mut reqs =
                        vec![json!({"type": "begin", "user": "nobody", "service": "sshd"})];
                    reqs.extend((0..3).map(|_| json!({"type": "verify", "code": guess})));
                    requests_as(NOBODY, &socket, &reqs)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<&Value> = answers.iter().flatten().collect();
    let count = |t: &str| all.iter().filter(|a| kind(a) == t).count();
    let (wrong, locked, exhausted) = (count("wrong"), count("locked"), count("tries_exhausted"));
    let verdicts: Vec<&str> = all.iter().map(|a| kind(a)).collect();
    eprintln!("8 parallel sessions x 3 guesses: {wrong} wrong, {exhausted} exhausted, {locked} locked: {verdicts:?}");
    assert!(
        wrong + exhausted <= 5,
        "{} guesses were checked, the budget is 5: {verdicts:?}",
        wrong + exhausted
    );
    assert!(
        locked >= 1,
        "no session was told the account is locked: {verdicts:?}"
    );
    assert!(!verdicts.contains(&"verified"), "{verdicts:?}");
}

#[test]
fn hostile_frames_get_clear_errors_and_nothing_is_lost() {
    require_root("root PAM login");
    let user = unique_name("hostile");
    let d = Daemon::builder().user(&user, VICTIM_MOBILE).start();
    let pid = d.pid().unwrap();
    // A challenge in flight on another connection while the garbage comes.
    let mut pending = Client::connect(&d.socket(), Duration::from_secs(5), "smsotp-tests").unwrap();
    let begin = |u: &str| {
        Request::Begin(BeginRequest {
            user: u.to_string(),
            service: "sshd".into(),
            rhost: None,
            tty: None,
            command: None,
        })
    };
    match pending.call(&begin(&user)) {
        Ok(Response::Challenge(_)) => {}
        other => panic!("begin: {other:?}"),
    }
    let code = d.outbox().last().code();
    let rss0 = rss_kib(pid);

    let mut invalid_utf8 = b"{\"type\":\"hello\",\"version\":2,\"client\":\"".to_vec();
    invalid_utf8.extend_from_slice(b"\xff\xfe\xc3\x28");
    invalid_utf8.extend_from_slice(b"\"}");
    let mut ten_mb = (10u32 << 20).to_be_bytes().to_vec();
    ten_mb.extend(std::iter::repeat_n(b'a', 10 << 20));
    let mut four_gb = u32::MAX.to_be_bytes().to_vec();
    four_gb.extend_from_slice(b"{\"type\":");
    let with_hello = |req: &Request| {
        let mut v = hello_frame();
        v.extend(request_frame(req));
        v
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "huge username (60000 bytes)",
            with_hello(&begin(&"u".repeat(60_000))),
            "user",
        ),
        (
            "control characters in the user",
            with_hello(&begin("ali\u{7}ce\n")),
            "user",
        ),
        (
            "escape sequence in the user",
            with_hello(&begin("\u{1b}[31mroot")),
            "user",
        ),
        ("invalid UTF-8", frame(&invalid_utf8), "malformed"),
        ("10 MB frame", ten_mb, "exceeds"),
        ("frame claiming 4 GB", four_gb, "exceeds"),
    ];
    for (what, bytes, says) in cases {
        let reply = exchange(
            &d.socket(),
            bytes,
            Duration::from_secs(10),
            Duration::from_millis(300),
        );
        let errors: Vec<(ErrorKind, String)> = reply
            .frames
            .iter()
            .filter_map(|f| match f {
                Ok(Response::Error { kind, message }) => Some((*kind, message.clone())),
                _ => None,
            })
            .collect();
        eprintln!("{what}: {errors:?}, closed={}", reply.closed);
        assert!(
            errors
                .iter()
                .any(|(k, m)| *k == ErrorKind::BadRequest && m.contains(says)),
            "{what}: expected a BadRequest saying {says:?}, got {:?}",
            reply.frames
        );
        assert!(
            !reply
                .frames
                .iter()
                .any(|f| matches!(f, Ok(Response::Challenge(_)))),
            "{what}: a challenge was started"
        );
    }
    let rss1 = rss_kib(pid);
    eprintln!("daemon RSS {rss0} -> {rss1} KiB after the hostile frames");
    assert!(
        rss1 < rss0 + 16 * 1024,
        "RSS grew from {rss0} to {rss1} KiB"
    );
    // Nothing lost: the pending challenge still verifies, a new login works.
    match pending.call(&Request::Verify {
        code: Secret::new(code),
    }) {
        Ok(Response::Verified { .. }) => {}
        other => panic!("the pending challenge did not survive: {other:?}"),
    }
    let out = login(&d, &user, type_newest_code(&d.outbox()));
    out.assert_code(PAM_SUCCESS);
    // Through PAM, hostile names never get a code or a success.
    for name in [
        "x".repeat(5000),
        "ro\u{7}ot".to_string(),
        "\u{1b}]0;pwn\u{7}".to_string(),
    ] {
        let out = login(&d, &name, |_| Some("123456".into()));
        assert_ne!(out.code, PAM_SUCCESS, "{name:?}:\n{out}");
    }
    d.assert_log_clean(&[]);
}

/// A full login suite at trace level (dependencies included): right and
/// wrong codes, resend, backup codes, status, a failed send; then every
/// line of the log is searched for every code, backup code, the gateway
/// header value and the full numbers.
#[test]
fn trace_level_logs_carry_no_codes_backup_codes_tokens_or_numbers() {
    require_root("root PAM login");
    const HEADER_VALUE: &str = "tenant-9f8e7d6c5b4a3f2e";
    let gw = HttpCapture::start(200, "{\"ok\":true,\"id\":\"m-1\"}");
    let user = unique_name("trace");
    let other = unique_name("trace2");
    let d = Daemon::builder()
        .user(&user, VICTIM_MOBILE)
        .user(&other, SELF_MOBILE)
        .log_level("trace")
        .section("resend", "cooldown_seconds = 0")
        .provider(&format!(
            "type = \"http\"\nname = \"gateway\"\nurl = {}\n\
             payload = '{{\"to\": {{{{mobile}}}}, \"text\": {{{{body}}}}}}'\n\
             headers = {{ X-Tenant = \"{HEADER_VALUE}\" }}\ntimeout_seconds = 5",
            toml_str(&gw.url("/sms"))
        ))
        .start();
    let newest = || {
        let reqs = gw.requests();
        let last = reqs.last().expect("a request reached the gateway");
        extract_code(last.json()["text"].as_str().unwrap()).expect("a code in the text")
    };
    // Right code.
    let out = login(&d, &user, |_| Some(newest()));
    out.assert_code(PAM_SUCCESS);
    assert_code_prompted(&out);
    // Wrong, then resend, then right.
    let out = login(&d, &user, |p| match p.index {
        0 => Some(wrong_code(&newest())),
        1 => Some("r".into()),
        _ => Some(newest()),
    });
    out.assert_code(PAM_SUCCESS);
    // Backup codes: generate as root, log in with one.
    let mut c = Client::connect(&d.socket(), Duration::from_secs(5), "smsotp-tests").unwrap();
    let backup: Vec<String> = match c.call(&Request::GenerateBackupCodes {
        user: user.clone(),
        code: None,
    }) {
        Ok(Response::BackupCodes { codes }) => {
            codes.iter().map(|s| s.expose().to_string()).collect()
        }
        other => panic!("backup codes: {other:?}"),
    };
    let _ = c.call(&Request::Status { user: user.clone() });
    let _ = c.call(&Request::Unlock { user: user.clone() });
    drop(c);
    let out = login(&d, &user, |_| Some(backup[0].clone()));
    out.assert_code(PAM_SUCCESS);
    // A failed send, and a second user.
    gw.set_response(500, "{\"error\":\"down\"}");
    let out = login(&d, &other, |_| None);
    assert_ne!(out.code, PAM_SUCCESS);
    gw.set_response(200, "{}");
    let out = login(&d, &other, |_| Some(newest()));
    out.assert_code(PAM_SUCCESS);

    let codes: Vec<String> = gw
        .requests()
        .iter()
        .filter_map(|r| extract_code(r.json()["text"].as_str()?))
        .collect();
    assert!(codes.len() >= 4, "{codes:?}");
    let log = d.log();
    let lines = log.lines().count();
    let mut leaks = Vec::new();
    for line in log.lines() {
        for code in codes.iter().chain(backup.iter()) {
            if contains_token(line, code) {
                leaks.push(format!("code {code}: {line}"));
            }
        }
        if line.contains(HEADER_VALUE) {
            leaks.push(format!("header value: {line}"));
        }
        for m in [VICTIM_MOBILE, SELF_MOBILE] {
            if line.contains(&m[2..]) {
                leaks.push(format!("number {m}: {line}"));
            }
        }
    }
    eprintln!(
        "trace log: {lines} lines, {} bytes scanned for {} codes, {} backup codes, 1 header, 2 numbers",
        log.len(),
        codes.len(),
        backup.len()
    );
    assert!(
        lines > 20,
        "trace level produced only {lines} lines:\n{log}"
    );
    assert!(
        leaks.is_empty(),
        "secrets in the trace log:\n{}",
        leaks.join("\n")
    );
}
