//! The daemon authorises by SO_PEERCRED: a non-root caller cannot start a
//! challenge (and so cannot make the daemon text someone) for another user.
//! The caller is this crate's `raw-client`, run as uid/gid 65534.

use smsotp_proto::{ErrorKind, Response};
use smsotp_tests::daemon::Daemon;
use smsotp_tests::flows::MSG_NOT_ALLOWED;
use smsotp_tests::{require_root, unique_name};
use std::os::unix::process::CommandExt;
use std::process::Command;

const NOBODY: u32 = 65534;

/// Runs raw-client (as `uid`, or as ourselves) and returns its Response,
/// panicking with its output if it got none.
fn begin_as(uid: Option<u32>, d: &Daemon, user: &str) -> Response {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_raw-client"));
    cmd.arg(d.socket()).arg(user).arg("perm-test");
    if let Some(uid) = uid {
        // std drops supplementary groups when root sets a uid.
        cmd.uid(uid).gid(uid);
    }
    let out = cmd.output().expect("run raw-client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "raw-client failed: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("raw-client printed no JSON ({e}): {stdout}"));
    if let Some(expected) = uid {
        assert_eq!(v["uid"], expected, "{v}");
    }
    match v.get("response") {
        Some(r) => serde_json::from_value(r.clone()).expect("a Response"),
        None => panic!(
            "raw-client got no response (socket {} mode {:o}): {v}",
            d.socket().display(),
            std::fs::metadata(d.socket())
                .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()))
                .unwrap_or(0)
        ),
    }
}

#[test]
fn unprivileged_caller_cannot_begin_for_another_user() {
    require_root("switches to uid 65534");
    let alice = unique_name("alice");
    let d = Daemon::builder().user(&alice, "+15554445555").start();

    let refused = begin_as(Some(NOBODY), &d, &alice);
    match &refused {
        Response::Error {
            kind: ErrorKind::PermissionDenied,
            message,
        } => assert_eq!(message, MSG_NOT_ALLOWED),
        other => panic!("uid {NOBODY} began a challenge for {alice}: {other:?}"),
    }
    assert_eq!(
        d.outbox().count(),
        0,
        "a refused Begin must not send an SMS"
    );

    // Control: the same request from root is served, so the refusal above
    // was about the caller, not the socket or the users file.
    assert!(
        matches!(begin_as(None, &d, &alice), Response::Challenge(_)),
        "root's Begin should start a challenge"
    );
    assert_eq!(d.outbox().count(), 1);
    d.assert_log_clean(&[]);
}

#[test]
fn unprivileged_caller_for_itself_only_when_allowed() {
    require_root("switches to uid 65534");
    // `nobody` is uid 65534 on Debian.
    let other = unique_name("other");
    let strict = Daemon::builder()
        .user("nobody", "+15556667777")
        .user(&other, "+15556667778")
        .start();
    let r = begin_as(Some(NOBODY), &strict, "nobody");
    assert!(
        matches!(
            r,
            Response::Error {
                kind: ErrorKind::PermissionDenied,
                ..
            }
        ),
        "allow_user_self = false must refuse even the caller's own login: {r:?}"
    );
    assert_eq!(strict.outbox().count(), 0);

    let relaxed = Daemon::builder()
        .top("allow_user_self = true")
        .user("nobody", "+15556667777")
        .user(&other, "+15556667778")
        .start();
    let r = begin_as(Some(NOBODY), &relaxed, "nobody");
    assert!(matches!(r, Response::Challenge(_)), "{r:?}");
    assert_eq!(relaxed.outbox().count(), 1);
    // Still not for anyone else.
    let r = begin_as(Some(NOBODY), &relaxed, &other);
    assert!(
        matches!(
            r,
            Response::Error {
                kind: ErrorKind::PermissionDenied,
                ..
            }
        ),
        "{r:?}"
    );
    assert_eq!(relaxed.outbox().count(), 1);
    strict.assert_log_clean(&[]);
    relaxed.assert_log_clean(&[]);
}
