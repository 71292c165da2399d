//! Hidden failure reasons and what goes to syslog.

use super::*;

// --- show_reasons = false ---

#[test]
fn hidden_reasons_say_only_authentication_failed() {
    let failed = messages::AUTH_FAILED;
    // Wrong code, then exhausted.
    let r = secure(
        [Text("111111"), Text("222222")],
        [
            Ok(quiet_challenge(300, 3)),
            Ok(Response::Wrong { attempts_left: 1 }),
            Ok(Response::TriesExhausted),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_MAXTRIES);
    assert_eq!(r.conv.errors, vec![failed, failed]);
    // Expired with and without a resend.
    let r = secure(
        [Text(CODE), Text(CODE)],
        [
            Ok(quiet_challenge(300, 3)),
            Ok(Response::Expired { can_resend: true }),
            Ok(Response::Expired { can_resend: false }),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(r.conv.errors, vec![failed, failed]);
    // Resend refused, then locked.
    let r = secure(
        [Text("r"), Text("111111")],
        [
            Ok(quiet_challenge(300, 0)),
            Ok(Response::ResendRefused {
                reason: "limit".into(),
            }),
            Ok(Response::Locked {
                retry_after_secs: 900,
            }),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(r.conv.errors, vec![failed, failed]);
    // Send refused on resend; an overlong reply; zero tries left.
    let r = secure(
        [Text("r")],
        [
            Ok(quiet_challenge(300, 3)),
            Ok(Response::SendRefused {
                reason: "budget".into(),
                retry_after_secs: Some(60),
            }),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(r.conv.errors, vec![failed]);
    let long: &'static str = Box::leak("9".repeat(MAX_CODE + 1).into_boxed_str());
    let r = secure(
        [Text(long), Text("111111")],
        [
            Ok(quiet_challenge(300, 3)),
            Ok(Response::Wrong { attempts_left: 0 }),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_MAXTRIES);
    assert_eq!(r.conv.errors, vec![failed, failed]);
}

#[test]
fn hidden_reasons_leave_other_rows_alone() {
    let r = secure(
        [Text("r")],
        [Ok(quiet_challenge(300, 3)), Ok(Response::SendFailed)],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.conv.errors, vec![messages::SEND_FAILED]);
    let r = secure(
        [Text(CODE)],
        [
            Ok(quiet_challenge(300, 3)),
            Ok(error(ErrorKind::Internal, "oops")),
        ],
    );
    assert_eq!(r.conv.errors, vec!["oops"]);
    let r = secure(
        [Text(CODE)],
        [
            Ok(quiet_challenge(300, 3)),
            Err(ClientError::Frame(FrameError::Closed)),
        ],
    );
    assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
}

#[test]
fn before_a_challenge_the_daemons_messages_are_shown() {
    let r = secure(
        [],
        [Ok(Response::Locked {
            retry_after_secs: 900,
        })],
    );
    assert_eq!(r.conv.errors, vec![LOCKED_15]);
    let r = secure([], [Ok(Response::TriesExhausted)]);
    assert_eq!(r.conv.errors, vec![messages::TRIES_EXHAUSTED]);
}

#[test]
fn the_latest_challenge_decides_whether_reasons_are_shown() {
    let r = secure(
        [Text("111111"), Text("r"), Text("222222"), Text(CODE)],
        [
            Ok(quiet_challenge(300, 3)),
            Ok(Response::Wrong { attempts_left: 2 }),
            Ok(challenge(300, 2)),
            Ok(Response::Wrong { attempts_left: 2 }),
            Ok(verified()),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(
        r.conv.errors,
        vec![messages::AUTH_FAILED, "Wrong code. 2 tries left."]
    );
}

// --- logging ---

#[test]
fn debug_lines_describe_steps_without_secrets() {
    let r = secure(
        [Text(""), Text("r"), Text("111111"), Text(CODE)],
        [
            Ok(challenge(300, 3)),
            Ok(challenge(300, 2)),
            Ok(Response::Wrong { attempts_left: 2 }),
            Ok(verified()),
        ],
    );
    let debug: Vec<&str> = r
        .log
        .0
        .iter()
        .filter(|(level, _)| *level == Level::Debug)
        .map(|(_, line)| line.as_str())
        .collect();
    assert!(debug.iter().any(|l| l.contains("empty reply")));
    assert!(debug.iter().any(|l| l.contains("resend requested")));
    assert!(debug.iter().any(|l| l.contains("prompts=4 resends=1")));
    assert!(r.log.0.iter().all(|(_, l)| !l.contains("111111")));
}

#[test]
fn failures_log_a_reason() {
    let r = run_connect(FailMode::Secure, [], |_| Err(unreachable()));
    let (level, line) = r.summary();
    assert_eq!(*level, Level::Warning);
    assert!(
        line.contains("result=unavailable reason=\"connect: no daemon at"),
        "{line}"
    );
}

#[test]
fn odd_values_are_quoted_in_logs() {
    assert_eq!(field("sshd"), "sshd");
    assert_eq!(field("a b"), "\"a b\"");
    assert_eq!(field("a\nb"), "\"a\\nb\"");
    assert_eq!(field(""), "\"\"");
}
