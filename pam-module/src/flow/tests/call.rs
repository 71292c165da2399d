//! `v` at the prompt: a call is asked for only where the challenge offers
//! one, and then counts like a resend.

use super::*;

const PROMPT_CALL: &str = "Code sent to *******4567 (expires in 5 min). Enter code, 'r' to resend, or 'v' for a voice call: ";

fn callable(resends_left: u32) -> Response {
    Response::Challenge(ChallengeInfo {
        can_call: true,
        ..info(300, resends_left)
    })
}

#[test]
fn v_asks_for_a_call_and_the_spoken_code_logs_in() {
    let r = secure(
        [Text("V"), Text(CODE)],
        [Ok(callable(3)), Ok(callable(2)), Ok(verified())],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.conv.prompts, vec![PROMPT_CALL, PROMPT_CALL]);
    let calls = r
        .requests
        .iter()
        .filter(|q| matches!(q, Request::Call))
        .count();
    assert_eq!((calls, r.resends()), (1, 0));
    assert_eq!(r.verifies(), vec![CODE]);
}

#[test]
fn without_a_voice_provider_v_is_neither_offered_nor_sent() {
    let r = secure(
        [Text("v"), Text(CODE)],
        [Ok(challenge(300, 3)), Ok(verified())],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.conv.prompts, vec![PROMPT, PROMPT]);
    assert_eq!(r.conv.errors, vec![messages::EN.no_call]);
    // Only the begin and the one code: no call, and `v` spent no try.
    assert_eq!(r.requests.len(), 2);
    assert_eq!(r.verifies(), vec![CODE]);
}

#[test]
fn a_refused_call_is_shown_like_a_refused_resend() {
    let r = secure(
        [Text("v"), Text(CODE)],
        [
            Ok(callable(1)),
            Ok(Response::ResendRefused {
                reason: "the limit of 1 resends is reached".into(),
            }),
            Ok(verified()),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(
        r.conv.errors,
        vec!["Cannot send another code: the limit of 1 resends is reached"]
    );
}
