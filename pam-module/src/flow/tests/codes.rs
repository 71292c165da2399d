//! Verified, wrong codes, expiry, resend and the refusals at begin.

use super::*;

// --- the happy path and what the daemon is told ---

#[test]
fn verified_first_try() {
    let r = secure([Text(CODE)], [Ok(challenge(300, 3)), Ok(verified())]);
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.conv.prompts, vec![PROMPT]);
    assert!(r.conv.errors.is_empty());
    assert!(r.conv.infos.is_empty(), "an SMS code gets no TEXT_INFO");
    assert_eq!(r.requests.first(), Some(&Request::Begin(begin())));
    assert_eq!(r.verifies(), vec![CODE]);
    assert_eq!(
        r.summary(),
        &(
            Level::Info,
            "smsotp: user=alice service=sshd rhost=192.0.2.1 tty=ssh result=verified".to_string()
        )
    );
}

#[test]
fn replies_are_trimmed_before_verifying() {
    let r = secure(
        [Text("  424242 \t")],
        [Ok(challenge(300, 3)), Ok(verified())],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.verifies(), vec![CODE]);
}

#[test]
fn verified_anywhere_but_after_verify_is_never_success() {
    // Exemptions come as `Skip` (PAM_IGNORE); a `Verified` that checked no
    // code is a daemon bug and must not let anyone in.
    for failmode in [FailMode::Secure, FailMode::Safe] {
        let r = run(failmode, [], [Ok(verified())]);
        assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
        assert!(r.conv.prompts.is_empty());
        assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
        assert!(r.summary().1.contains("result=protocol-error"));
    }
    let r = secure([Text("r")], [Ok(challenge(300, 3)), Ok(verified())]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    let r = secure(
        [Text("+15551234567")],
        [Ok(Response::AskMobile), Ok(verified())],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
}

#[test]
fn a_full_number_from_the_daemon_is_masked_anyway() {
    let info = ChallengeInfo {
        masked_mobile: MaskedMobile::new("+15551234567").unwrap(),
        ..info(300, 3)
    };
    let r = secure(
        [Text(CODE)],
        [Ok(Response::Challenge(info)), Ok(verified())],
    );
    assert_eq!(r.conv.prompts, vec![PROMPT]);
}

// --- wrong codes and tries ---

#[test]
fn wrong_then_right() {
    let r = secure(
        [Text("111111"), Text(CODE)],
        [
            Ok(challenge(300, 3)),
            Ok(Response::Wrong { attempts_left: 2 }),
            Ok(verified()),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.conv.errors, vec!["Wrong code. 2 tries left."]);
    assert_eq!(r.conv.prompts.len(), 2);
}

#[test]
fn one_try_left_is_singular() {
    let r = secure(
        [Text("111111"), Text(CODE)],
        [
            Ok(challenge(300, 3)),
            Ok(Response::Wrong { attempts_left: 1 }),
            Ok(verified()),
        ],
    );
    assert_eq!(r.conv.errors, vec!["Wrong code. 1 try left."]);
}

#[test]
fn tries_exhausted_is_maxtries() {
    let r = secure(
        [Text("111111")],
        [Ok(challenge(300, 3)), Ok(Response::TriesExhausted)],
    );
    assert_eq!(r.code, PamResultCode::PAM_MAXTRIES);
    assert_eq!(r.conv.errors, vec![messages::TRIES_EXHAUSTED]);
    assert_eq!(r.summary().0, Level::Notice);
    assert!(r.summary().1.ends_with("result=tries-exhausted"));
}

#[test]
fn wrong_with_zero_left_ends_like_exhausted() {
    let r = secure(
        [Text("111111")],
        [
            Ok(challenge(300, 3)),
            Ok(Response::Wrong { attempts_left: 0 }),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_MAXTRIES);
    assert_eq!(r.conv.errors, vec![messages::TRIES_EXHAUSTED]);
}

#[test]
fn tries_exhausted_at_begin_is_maxtries() {
    // A locked-out user: the daemon refuses before sending anything.
    let r = secure([], [Ok(Response::TriesExhausted)]);
    assert_eq!(r.code, PamResultCode::PAM_MAXTRIES);
    assert!(r.conv.prompts.is_empty());
}

// --- expiry and resend ---

#[test]
fn expired_with_resend_prompts_again_and_r_resends() {
    let r = secure(
        [Text(CODE), Text("r"), Text("777777")],
        [
            Ok(challenge(300, 3)),
            Ok(Response::Expired { can_resend: true }),
            Ok(challenge(120, 2)),
            Ok(verified()),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(
        r.conv.errors,
        vec!["The code has expired. Type 'r' for a new one."]
    );
    assert_eq!(r.resends(), 1);
    assert_eq!(r.verifies(), vec![CODE, "777777"]);
    assert_eq!(
        r.conv.prompts.get(2).map(String::as_str),
        Some("Code sent to *******4567 (expires in 2 min). Enter code, or 'r' to resend: ")
    );
}

#[test]
fn expired_without_resend_is_auth_err() {
    let r = secure(
        [Text(CODE)],
        [
            Ok(challenge(300, 0)),
            Ok(Response::Expired { can_resend: false }),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(r.conv.errors, vec!["The code has expired."]);
}

#[test]
fn capital_r_resends_and_the_new_challenge_drives_the_prompt() {
    let r = secure(
        [Text("R"), Text(CODE)],
        [Ok(challenge(300, 1)), Ok(challenge(45, 0)), Ok(verified())],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.resends(), 1);
    assert_eq!(
        r.conv.prompts.get(1).map(String::as_str),
        Some("Code sent to *******4567 (expires in 45 s). Enter code: ")
    );
    assert!(r.conv.errors.is_empty());
}

#[test]
fn resend_refused_shows_the_reason_and_prompts_again() {
    let r = secure(
        [Text("r"), Text(CODE)],
        [
            Ok(challenge(300, 0)),
            Ok(Response::ResendRefused {
                reason: "resend limit reached".into(),
            }),
            Ok(verified()),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(
        r.conv.errors,
        vec!["Cannot send another code: resend limit reached"]
    );
}

#[test]
fn send_failed_on_resend_is_authinfo_unavail() {
    let r = secure(
        [Text("r")],
        [Ok(challenge(300, 3)), Ok(Response::SendFailed)],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.conv.errors, vec![messages::SEND_FAILED]);
}

// --- refusals at begin ---

#[test]
fn no_mobile_is_auth_err() {
    let r = secure([], [Ok(Response::NoMobile)]);
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(
        r.conv.errors,
        vec![
            "No mobile number is registered for SMS codes on this account. Ask your administrator."
        ]
    );
}

#[test]
fn send_failed_is_authinfo_unavail() {
    let r = secure([], [Ok(Response::SendFailed)]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(
        r.conv.errors,
        vec!["The SMS code could not be sent. Try again later or contact your administrator."]
    );
}

#[test]
fn permission_denied_is_auth_err_with_the_daemons_message() {
    let msg = "not allowed to request a code for another user";
    let r = secure([], [Ok(error(ErrorKind::PermissionDenied, msg))]);
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(r.conv.errors, vec![msg]);
}

#[test]
fn other_daemon_errors_are_authinfo_unavail_in_both_failmodes() {
    for kind in [
        ErrorKind::Internal,
        ErrorKind::BadRequest,
        ErrorKind::UnsupportedVersion,
        ErrorKind::Busy,
    ] {
        for failmode in [FailMode::Secure, FailMode::Safe] {
            let r = run(failmode, [], [Ok(error(kind, "try later"))]);
            assert_eq!(
                r.code,
                PamResultCode::PAM_AUTHINFO_UNAVAIL,
                "{kind:?} {failmode:?}"
            );
            assert_eq!(r.conv.errors, vec!["try later"]);
        }
    }
}

#[test]
fn daemon_errors_after_a_challenge_are_mapped_the_same_way() {
    let r = secure(
        [Text(CODE)],
        [
            Ok(challenge(300, 3)),
            Ok(error(ErrorKind::Internal, "oops")),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    let r = secure(
        [Text(CODE)],
        [
            Ok(challenge(300, 3)),
            Ok(error(ErrorKind::PermissionDenied, "no")),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
}

#[test]
fn daemon_text_cannot_drive_the_terminal() {
    let r = secure(
        [],
        [Ok(error(ErrorKind::Internal, "\x1b]0;owned\x07down\r\n"))],
    );
    assert_eq!(r.conv.errors, vec!["]0;owned down"]);
}
