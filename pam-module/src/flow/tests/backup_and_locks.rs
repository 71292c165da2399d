//! Skips, backup codes, lockouts and send refusals.

use super::*;

// --- skips ---

#[test]
fn skip_is_ignore_silently_with_an_info_line() {
    let reasons = [
        SkipReason::ServiceNotEnabled,
        SkipReason::ExemptUser,
        SkipReason::ExemptGroup,
        SkipReason::TrustedNetwork,
        SkipReason::GracePeriod,
        SkipReason::OptedOut,
        SkipReason::NoMobile,
    ];
    for reason in reasons {
        for failmode in [FailMode::Secure, FailMode::Safe] {
            let r = run(failmode, [], [Ok(Response::Skip { reason })]);
            assert_eq!(r.code, PamResultCode::PAM_IGNORE, "{reason:?}");
            assert!(r.conv.prompts.is_empty());
            assert!(r.conv.errors.is_empty());
            assert!(r.conv.infos.is_empty());
            assert_eq!(
                r.summary(),
                &(
                    Level::Info,
                    format!(
                        "smsotp: user=alice service=sshd rhost=192.0.2.1 tty=ssh result=skipped reason={}",
                        reason.as_str()
                    )
                )
            );
        }
    }
}

#[test]
fn skip_after_a_challenge_or_at_enrolment_is_a_protocol_error() {
    let skip = || {
        Ok(Response::Skip {
            reason: SkipReason::GracePeriod,
        })
    };
    let r = secure([Text(CODE)], [Ok(challenge(300, 3)), skip()]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert!(r.summary().1.contains("result=protocol-error"));
    let r = secure([Text("+15551234567")], [Ok(Response::AskMobile), skip()]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
}

// --- backup codes ---

#[test]
fn backup_code_success_tells_how_many_are_left() {
    let r = secure(
        [Text("abcd-efgh-2345")],
        [Ok(challenge(300, 3)), Ok(backup_verified(Some(7)))],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert!(r.conv.errors.is_empty());
    assert_eq!(
        r.conv.infos,
        vec!["Backup code accepted. 7 backup codes left."]
    );
    assert_eq!(r.verifies(), vec!["abcd-efgh-2345"]);
    let (level, line) = r.summary();
    assert_eq!(*level, Level::Info);
    assert!(
        line.ends_with("result=verified method=backup-code backup_codes_left=7"),
        "{line}"
    );
}

#[test]
fn few_backup_codes_left_suggests_new_ones() {
    let hint = " Generate new ones with: smsotpctl backup-codes generate";
    for (left, text) in [
        (3, "Backup code accepted. 3 backup codes left.".to_string()),
        (
            2,
            format!("Backup code accepted. 2 backup codes left.{hint}"),
        ),
        (
            1,
            format!("Backup code accepted. 1 backup code left.{hint}"),
        ),
        (
            0,
            format!("Backup code accepted. 0 backup codes left.{hint}"),
        ),
    ] {
        let r = secure(
            [Text("abcd-efgh-2345")],
            [Ok(challenge(300, 3)), Ok(backup_verified(Some(left)))],
        );
        assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
        assert_eq!(r.conv.infos, vec![text]);
    }
    let r = secure(
        [Text("abcd-efgh-2345")],
        [Ok(challenge(300, 3)), Ok(backup_verified(None))],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.conv.infos, vec!["Backup code accepted."]);
}

#[test]
fn backup_codes_allowed_keep_the_normal_prompt() {
    let both = Response::Challenge(ChallengeInfo {
        backup_allowed: true,
        ..info(300, 3)
    });
    let r = secure(
        [Text("abcd-efgh-2345")],
        [Ok(both), Ok(backup_verified(Some(9)))],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.conv.prompts, vec![PROMPT]);
}

#[test]
fn no_sms_sent_asks_for_a_backup_code() {
    let r = secure(
        [Text("abcd-efgh-2345")],
        [
            Ok(backup_only(Some("the SMS provider could not be reached"))),
            Ok(backup_verified(Some(4))),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(
        r.conv.prompts,
        vec!["No SMS was sent (the SMS provider could not be reached). Enter a backup code: "]
    );
    assert_eq!(
        r.conv.infos,
        vec!["Backup code accepted. 4 backup codes left."]
    );
    let r = secure(
        [Text("111111"), Text("abcd-efgh-2345")],
        [
            Ok(backup_only(None)),
            Ok(Response::Wrong { attempts_left: 2 }),
            Ok(backup_verified(Some(4))),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(
        r.conv.prompts,
        vec!["No SMS was sent. Enter a backup code: "; 2]
    );
    assert_eq!(r.conv.errors, vec!["Wrong code. 2 tries left."]);
}

#[test]
fn r_at_a_backup_only_prompt_is_left_to_the_daemon() {
    // Not offered, but harmless: the daemon refuses it and says why.
    let r = secure(
        [Text("r"), Text("abcd-efgh-2345")],
        [
            Ok(backup_only(None)),
            Ok(Response::ResendRefused {
                reason: "no SMS can be sent right now; use a backup code".into(),
            }),
            Ok(backup_verified(Some(4))),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.resends(), 1);
    assert_eq!(
        r.conv.errors,
        vec!["Cannot send another code: no SMS can be sent right now; use a backup code"]
    );
}

#[test]
fn a_challenge_nothing_can_answer_is_a_protocol_error() {
    let dead_end = Response::Challenge(ChallengeInfo {
        sms_sent: false,
        backup_allowed: false,
        ..info(300, 0)
    });
    let r = run(FailMode::Safe, [], [Ok(dead_end)]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert!(r.conv.prompts.is_empty());
    assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
}

// --- lockout and send refusals ---

#[test]
fn locked_at_begin_is_auth_err_with_the_time_left() {
    let r = secure(
        [],
        [Ok(Response::Locked {
            retry_after_secs: 900,
        })],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert!(r.conv.prompts.is_empty());
    assert_eq!(r.conv.errors, vec![LOCKED_15]);
    let (level, line) = r.summary();
    assert_eq!(*level, Level::Notice);
    assert!(line.ends_with("result=locked retry_after=900s"), "{line}");
    let r = secure(
        [],
        [Ok(Response::Locked {
            retry_after_secs: 42,
        })],
    );
    assert_eq!(
        r.conv.errors,
        vec!["Too many wrong codes: SMS codes are locked for this account for 42 s."]
    );
    let r = secure(
        [],
        [Ok(Response::Locked {
            retry_after_secs: 841,
        })],
    );
    assert_eq!(r.conv.errors, vec![LOCKED_15], "minutes round up");
}

#[test]
fn locked_after_a_wrong_code_or_a_resend_ends_the_login() {
    for reply in ["111111", "r"] {
        let r = secure(
            [Text(reply), Text(CODE)],
            [
                Ok(challenge(300, 3)),
                Ok(Response::Locked {
                    retry_after_secs: 900,
                }),
            ],
        );
        assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR, "{reply}");
        assert_eq!(r.conv.prompts.len(), 1);
        assert_eq!(r.conv.errors, vec![LOCKED_15]);
    }
}

#[test]
fn send_refused_is_auth_err_with_the_reason() {
    let r = secure(
        [],
        [Ok(Response::SendRefused {
            reason: "hourly SMS limit for this host reached".into(),
            retry_after_secs: Some(1500),
        })],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(
        r.conv.errors,
        vec![
            "Cannot send a code now: hourly SMS limit for this host reached. Try again in 25 min."
        ]
    );
    let line = &r.summary().1;
    assert!(
        line.ends_with(
            "result=send-refused reason=\"hourly SMS limit for this host reached\" retry_after=1500s"
        ),
        "{line}"
    );
    let r = secure(
        [],
        [Ok(Response::SendRefused {
            reason: "codes cannot be sent to this country".into(),
            retry_after_secs: None,
        })],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(
        r.conv.errors,
        vec!["Cannot send a code now: codes cannot be sent to this country."]
    );
}

#[test]
fn send_refused_on_resend_ends_the_login() {
    let r = secure(
        [Text("r"), Text(CODE)],
        [
            Ok(challenge(300, 3)),
            Ok(Response::SendRefused {
                reason: "too many codes for this user".into(),
                retry_after_secs: Some(30),
            }),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(r.conv.prompts.len(), 1);
    assert_eq!(
        r.conv.errors,
        vec!["Cannot send a code now: too many codes for this user. Try again in 30 s."]
    );
}
