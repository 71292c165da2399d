//! Enrolment at login.

use super::*;

// --- enrolment at login ---

#[test]
fn ask_mobile_enrols_and_continues_into_the_code_prompt() {
    let r = secure(
        [Text("  +15551234567 "), Text(CODE)],
        [
            Ok(Response::AskMobile),
            Ok(challenge(300, 3)),
            Ok(verified()),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.conv.prompts, vec![prompt::ASK_MOBILE, PROMPT]);
    assert_eq!(
        r.conv.echoed,
        vec![
            "No mobile number is registered for SMS codes. Enter your mobile number with country code (e.g. +15551234567): "
        ]
    );
    assert_eq!(r.enrolls(), vec!["+15551234567"]);
    assert_eq!(r.verifies(), vec![CODE]);
    assert!(r.conv.errors.is_empty());
    // (run_connect checks that the number never reaches the log.)
}

#[test]
fn an_empty_number_ends_the_login() {
    for reply in ["", "   "] {
        let r = secure([Text(reply)], [Ok(Response::AskMobile)]);
        assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
        assert_eq!(r.conv.errors, vec!["No mobile number given."]);
        assert!(r.enrolls().is_empty());
        assert!(r.summary().1.ends_with("result=no-mobile-given"));
    }
}

#[test]
fn an_invalid_number_is_asked_again_then_accepted() {
    let r = secure(
        [Text("12345"), Text("+15551234567"), Text(CODE)],
        [
            Ok(Response::AskMobile),
            Ok(Response::InvalidMobile {
                reason: "not an E.164 number (+ and country code)".into(),
            }),
            Ok(challenge(300, 3)),
            Ok(verified()),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(
        r.conv.errors,
        vec!["That number cannot be used: not an E.164 number (+ and country code)"]
    );
    assert_eq!(r.conv.echoed.len(), 2);
    assert_eq!(r.enrolls(), vec!["12345", "+15551234567"]);
}

#[test]
fn three_invalid_numbers_end_the_login() {
    let invalid = || {
        Ok(Response::InvalidMobile {
            reason: "country not allowed".into(),
        })
    };
    let r = secure(
        [Text("+71"), Text("+72"), Text("+73"), Text("+74")],
        [Ok(Response::AskMobile), invalid(), invalid(), invalid()],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(r.conv.echoed.len(), 3);
    assert_eq!(r.enrolls().len(), 3);
    assert_eq!(
        r.conv.errors,
        vec!["That number cannot be used: country not allowed"; 3]
    );
    assert!(r.summary().1.ends_with("result=invalid-mobile"));
}

#[test]
fn numbers_the_protocol_would_refuse_are_invalid_locally() {
    let long: &'static str = Box::leak("1".repeat(MAX_MOBILE + 1).into_boxed_str());
    let r = secure(
        [
            Text(long),
            Text("+1555\x1b1234567"),
            Text("+15551234567"),
            Text(CODE),
        ],
        [
            Ok(Response::AskMobile),
            Ok(challenge(300, 3)),
            Ok(verified()),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(
        r.conv.errors,
        vec![
            "That number cannot be used: too long",
            "That number cannot be used: contains control characters",
        ]
    );
    assert_eq!(
        r.enrolls(),
        vec!["+15551234567"],
        "only the valid one is sent"
    );
    // Local refusals count toward the three numbers too.
    let r = secure(
        [Text(long), Text(long), Text(long)],
        [Ok(Response::AskMobile)],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert!(r.enrolls().is_empty());
}

#[test]
fn enrolment_prompts_count_toward_the_prompt_cap() {
    let replies = [Text("+71"), Text("+15551234567")]
        .into_iter()
        .chain((0..40).map(|_| Text("")));
    let r = secure(
        replies,
        [
            Ok(Response::AskMobile),
            Ok(Response::InvalidMobile {
                reason: "country not allowed".into(),
            }),
            Ok(challenge(300, 3)),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_MAXTRIES);
    assert_eq!(r.conv.prompts.len(), 16);
    assert_eq!(r.conv.echoed.len(), 2);
}

#[test]
fn enrolment_refusals_end_the_login_like_at_begin() {
    let r = secure(
        [Text("+15551234567")],
        [
            Ok(Response::AskMobile),
            Ok(Response::SendRefused {
                reason: "hourly SMS limit reached".into(),
                retry_after_secs: None,
            }),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(
        r.conv.errors,
        vec!["Cannot send a code now: hourly SMS limit reached."]
    );
    let r = secure(
        [Text("+15551234567")],
        [Ok(Response::AskMobile), Ok(Response::SendFailed)],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.conv.errors, vec![messages::SEND_FAILED]);
}

#[test]
fn a_lost_link_while_enrolling_is_unavail_even_when_safe() {
    // The daemon answered begin, so it is up; a slow send that times out
    // must not become fail-open.
    for lost in [
        ClientError::Timeout(Duration::from_secs(20)),
        ClientError::Frame(FrameError::Closed),
    ] {
        let r = run(
            FailMode::Safe,
            [Text("+15551234567")],
            [Ok(Response::AskMobile), Err(lost)],
        );
        assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
        assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
        assert!(r.summary().1.contains("result=connection-lost"));
    }
}

#[test]
fn enrolment_conversation_failure_is_conv_err() {
    let r = secure([Reply::Fail], [Ok(Response::AskMobile)]);
    assert_eq!(r.code, PamResultCode::PAM_CONV_ERR);
    let r = secure([Reply::Nothing], [Ok(Response::AskMobile)]);
    assert_eq!(r.code, PamResultCode::PAM_CONV_ERR);
    assert!(r.enrolls().is_empty());
}

#[test]
fn enrolment_answers_out_of_place_are_protocol_errors() {
    let invalid = || Ok(Response::InvalidMobile { reason: "x".into() });
    // InvalidMobile at begin, AskMobile or InvalidMobile mid-challenge,
    // AskMobile in answer to enroll.
    let r = run(FailMode::Safe, [], [invalid()]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    let r = secure(
        [Text(CODE)],
        [Ok(challenge(300, 3)), Ok(Response::AskMobile)],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    let r = secure([Text(CODE)], [Ok(challenge(300, 3)), invalid()]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    let r = secure(
        [Text("+15551234567")],
        [Ok(Response::AskMobile), Ok(Response::AskMobile)],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert!(r.summary().1.contains("ask_mobile in answer to enroll"));
}
