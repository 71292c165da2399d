//! An unreachable or unusable daemon, the prompt itself, and answers out of place.

use super::*;

// --- an unreachable daemon ---

#[test]
fn unreachable_secure_is_authinfo_unavail() {
    let refused = ClientError::Absent {
        path: "/run/smsotp/smsotpd.sock".into(),
        source: io::Error::from_raw_os_error(libc::ECONNREFUSED),
    };
    for e in [unreachable(), refused] {
        let r = run_connect(FailMode::Secure, [], |_| Err(e));
        assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
        assert_eq!(r.conv.errors, vec!["The SMS code service is unavailable."]);
        assert!(r.log.0.iter().all(|(level, _)| *level != Level::Alert));
    }
}

/// Issue 9, finding 1: a connect flood made the module's connect fail with
/// EAGAIN, which counted as "unreachable", and `safe` let 158 of 228
/// wrong-code logins through. A present daemon that cannot serve us now
/// (full backlog, silent or hanging up at the hello, any other connect
/// error, not root) denies in every failmode.
#[test]
fn a_present_daemon_that_gives_no_challenge_denies_in_every_failmode() {
    let path = || "/run/smsotp/smsotpd.sock".to_string();
    let cases = || {
        [
            (
                ClientError::Backlog {
                    path: path(),
                    waited: Duration::from_secs(20),
                },
                messages::BUSY,
                "result=busy",
            ),
            (
                ClientError::Connect {
                    path: path(),
                    source: io::Error::from_raw_os_error(libc::EAGAIN),
                },
                messages::UNAVAILABLE,
                "result=daemon-unresponsive",
            ),
            (
                ClientError::Connect {
                    path: path(),
                    source: io::Error::from_raw_os_error(libc::EACCES),
                },
                messages::UNAVAILABLE,
                "result=daemon-unresponsive",
            ),
            (
                ClientError::Timeout(Duration::from_secs(20)),
                messages::UNAVAILABLE,
                "result=daemon-unresponsive",
            ),
            (
                ClientError::Frame(FrameError::Closed),
                messages::UNAVAILABLE,
                "result=daemon-unresponsive",
            ),
            (
                ClientError::Frame(FrameError::Io(io::Error::from_raw_os_error(
                    libc::ECONNRESET,
                ))),
                messages::UNAVAILABLE,
                "result=daemon-unresponsive",
            ),
        ]
    };
    for failmode in [FailMode::Safe, FailMode::Secure] {
        for (e, shown, result) in cases() {
            let what = e.to_string();
            let r = run_connect(failmode, [], |_| Err(e));
            assert_eq!(
                r.code,
                PamResultCode::PAM_AUTHINFO_UNAVAIL,
                "{failmode:?} {what}"
            );
            assert_eq!(r.conv.errors, vec![shown], "{what}");
            assert!(r.summary().1.contains(result), "{}", r.summary().1);
            assert!(r.log.0.iter().all(|(level, _)| *level != Level::Alert));
        }
    }
}

#[test]
fn a_daemon_that_is_not_root_is_refused_with_an_alert() {
    for failmode in [FailMode::Safe, FailMode::Secure] {
        let r = run_connect(failmode, [], |_| {
            Err(ClientError::NotRoot {
                path: "/run/smsotp/smsotpd.sock".into(),
                uid: 1000,
            })
        });
        assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
        assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
        let (level, line) = r.summary();
        assert_eq!(*level, Level::Alert);
        assert!(line.contains("result=daemon-not-root"), "{line}");
        assert!(line.contains("uid 1000"), "{line}");
    }
}

#[test]
fn unreachable_safe_is_ignore_with_an_alert() {
    let r = run_connect(FailMode::Safe, [], |_| Err(unreachable()));
    assert_eq!(r.code, PamResultCode::PAM_IGNORE);
    assert!(r.conv.errors.is_empty());
    assert!(r.conv.prompts.is_empty());
    let alert = r
        .log
        .0
        .iter()
        .find(|(level, _)| *level == Level::Alert)
        .unwrap();
    assert!(
        alert
            .1
            .starts_with("smsotp daemon unreachable, failmode=safe lets the login through"),
        "{}",
        alert.1
    );
    assert!(alert.1.contains("user=alice"));
}

#[test]
fn begin_timing_out_denies_even_in_safe_mode() {
    // The daemon answered the hello: a slow begin is a slow gateway, and
    // letting it through would let whoever slows the gateway skip the code.
    let timeout = || Err(ClientError::Timeout(Duration::from_secs(20)));
    let r = run(FailMode::Safe, [], [timeout()]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
    let r = run(FailMode::Secure, [], [timeout()]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
}

#[test]
fn a_refusing_daemon_is_not_unreachable() {
    // Busy at hello arrives as `Refused`; a version skew as `VersionMismatch`.
    let r = run_connect(FailMode::Safe, [], |_| {
        Err(ClientError::Refused("too many connections".into()))
    });
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.conv.errors, vec!["too many connections"]);
    let r = run_connect(FailMode::Safe, [], |_| {
        Err(ClientError::VersionMismatch { server: 2 })
    });
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
    let r = run_connect(FailMode::Safe, [], |_| {
        Err(ClientError::Frame(FrameError::Malformed("x".into())))
    });
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
}

#[test]
fn connection_lost_after_challenge_is_unavail_in_both_failmodes() {
    for failmode in [FailMode::Secure, FailMode::Safe] {
        for lost in [
            ClientError::Frame(FrameError::Closed),
            ClientError::Timeout(Duration::from_secs(20)),
        ] {
            let r = run(failmode, [Text(CODE)], [Ok(challenge(300, 3)), Err(lost)]);
            assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL, "{failmode:?}");
            assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
            assert!(r.summary().1.contains("result=connection-lost"));
        }
    }
}

// --- the prompt itself ---

#[test]
fn empty_replies_prompt_again_without_asking_the_daemon() {
    let r = secure(
        [Text(""), Text("   "), Text(CODE)],
        [Ok(challenge(300, 3)), Ok(verified())],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.conv.prompts.len(), 3);
    assert_eq!(r.requests.len(), 2);
    assert!(r.conv.errors.is_empty());
}

#[test]
fn at_most_sixteen_prompts() {
    let r = secure((0..40).map(|_| Text("")), [Ok(challenge(300, 3))]);
    assert_eq!(r.code, PamResultCode::PAM_MAXTRIES);
    assert_eq!(r.conv.prompts.len(), 16);
    assert!(r.summary().1.ends_with("result=prompt-limit"));
}

#[test]
fn the_sixteenth_reply_still_counts() {
    let replies = (0..15).map(|_| Text("")).chain([Text(CODE)]);
    let r = secure(replies, [Ok(challenge(300, 3)), Ok(verified())]);
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.conv.prompts.len(), 16);
}

#[test]
fn resends_count_toward_the_prompt_cap() {
    let answers = std::iter::once(Ok(challenge(300, 3))).chain((0..16).map(|_| {
        Ok(Response::ResendRefused {
            reason: "slow down".into(),
        })
    }));
    let r = secure((0..16).map(|_| Text("r")), answers);
    assert_eq!(r.code, PamResultCode::PAM_MAXTRIES);
    assert_eq!(r.resends(), 16);
}

#[test]
fn a_reply_longer_than_any_code_is_not_sent() {
    let long: &'static str = Box::leak("9".repeat(MAX_CODE + 1).into_boxed_str());
    let r = secure(
        [Text(long), Text(CODE)],
        [Ok(challenge(300, 3)), Ok(verified())],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.verifies(), vec![CODE]);
    assert_eq!(r.conv.errors, vec![messages::NOT_A_CODE]);
}

#[test]
fn conversation_failure_is_conv_err() {
    let r = secure([Reply::Fail], [Ok(challenge(300, 3))]);
    assert_eq!(r.code, PamResultCode::PAM_CONV_ERR);
    assert!(r.conv.errors.is_empty());
    let r = secure([Reply::Nothing], [Ok(challenge(300, 3))]);
    assert_eq!(r.code, PamResultCode::PAM_CONV_ERR);
    assert_eq!(r.requests.len(), 1);
}

// --- answers that make no sense where they arrive ---

#[test]
fn out_of_place_answers_are_protocol_errors() {
    let hello = || Response::Hello {
        version: 1,
        server: "x".into(),
    };
    for at_begin in [
        hello(),
        Response::Wrong { attempts_left: 2 },
        Response::ResendRefused { reason: "x".into() },
    ] {
        let r = run(FailMode::Safe, [], [Ok(at_begin)]);
        assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
        assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
    }
    let r = secure([Text(CODE)], [Ok(challenge(300, 3)), Ok(hello())]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    // Answers meant for smsotpctl are never a login's.
    let admin = || {
        [
            Response::Done {
                message: "ok".into(),
            },
            Response::BackupCodes {
                codes: vec![Secret::new("abcd-efgh-2345")],
            },
            Response::TestSent {
                provider: "outbox".into(),
                detail: "ok".into(),
            },
        ]
    };
    for answer in admin() {
        let r = run(FailMode::Safe, [], [Ok(answer)]);
        assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
        assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
    }
    for answer in admin() {
        let r = secure([Text(CODE)], [Ok(challenge(300, 3)), Ok(answer)]);
        assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    }
    // Expired{can_resend: true} before any prompt cannot be acted on.
    let r = secure([], [Ok(Response::Expired { can_resend: true })]);
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
}
