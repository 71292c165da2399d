//! `v` at the code prompt, through real libpam and the real module and
//! daemon: the call request reaches a loopback stand-in for Twilio's
//! Calls API with the code spelled out, and that code logs in; no `v`
//! without a voice provider; a `v` past the resend limit is refused and
//! places no call.

use smsotp_tests::daemon::{toml_str, Daemon};
use smsotp_tests::flows::*;
use smsotp_tests::http_capture::{pair, HttpCapture};
use smsotp_tests::libpam::{self, PAM_SUCCESS};
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::{require_root, unique_name};
use std::time::Duration;

const MOBILE: &str = "+15557654321";
const SID: &str = "AC0123456789abcdef0123456789abcdef";
const CALLS: &str = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls.json";
const TAIL_WITH_CALL: &str = "Enter code, 'r' to resend, or 'v' for a voice call: ";
const NO_CALL: &str = "Voice calls are not available here.";
const CREATED: &str = r#"{"sid":"CA0123456789abcdef0123456789abcdef","status":"queued"}"#;

/// The outbox (SMS) first, then a Twilio voice provider at `cap`.
fn daemon_with_voice(user: &str, cap: &HttpCapture, max_resends: u32) -> Daemon {
    voice_builder(user, cap, max_resends).start()
}

fn voice_builder(
    user: &str,
    cap: &HttpCapture,
    max_resends: u32,
) -> smsotp_tests::daemon::DaemonBuilder {
    Daemon::builder()
        .user(user, MOBILE)
        .otp(&format!("max_resends = {max_resends}"))
        .with_outbox(true)
        // The resend cooldown holds for calls too; these tests are about
        // the per-challenge limit.
        .section("resend", "cooldown_seconds = 0")
        .provider(&format!(
            "type = \"twilio-voice\"\napi_base = {}\naccount_sid = \"{SID}\"\n\
             auth_token = \"voice-test-token\"\nfrom = \"+15005550006\"\nretries = 0\n\
             timeout_seconds = 5\n",
            toml_str(&cap.url(""))
        ))
}

/// The code a call spoke: the digits of the `<Say>` text ("1, 2, 3").
fn spoken_code(twiml: &str) -> String {
    let say = twiml
        .split("<Say language=\"en-US\">")
        .nth(1)
        .and_then(|s| s.split("</Say>").next())
        .expect("a <Say> in the TwiML");
    let spelled = say
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(". ").next())
        .expect("the spelled code");
    spelled.split(", ").collect()
}

#[test]
fn v_places_a_call_whose_code_logs_in() {
    require_root("only root may ask the daemon for another user's code");
    let cap = HttpCapture::start(201, CREATED);
    let user = unique_name("voice");
    let d = daemon_with_voice(&user, &cap, 3);
    let pamd = PamConfDir::new();
    let service = unique_name("smsotp-voice");
    pamd.smsotp_service(&service, &d.socket(), "timeout=15");
    let outbox = d.outbox();
    let mut called = String::new();
    let outcome = libpam::authenticate(&service, &user, pamd.path(), |p| match p.index {
        0 => {
            assert!(p.text.ends_with(TAIL_WITH_CALL), "{}", p.transcript);
            Some("v".into())
        }
        1 => {
            let reqs = cap.wait_for(1, Duration::from_secs(10));
            called = spoken_code(pair(&reqs[0].form(), "Twiml").unwrap());
            Some(called.clone())
        }
        _ => panic!("unexpected prompt\n{}", p.transcript),
    });
    outcome.assert_code(PAM_SUCCESS);
    // One SMS (the first code), one call (the second); the SMS code died
    // when the call's was made.
    assert_eq!((outbox.code_count(), cap.requests().len()), (1, 1));
    assert_ne!(outbox.last_code(), called);
    let r = &cap.requests()[0];
    assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", CALLS));
    let form = r.form();
    assert_eq!(pair(&form, "To"), Some(MOBILE));
    let twiml = pair(&form, "Twiml").unwrap();
    assert_eq!(called.len(), 6, "{twiml}");
    let spelled: Vec<String> = called.chars().map(String::from).collect();
    assert_eq!(
        twiml.matches(&spelled.join(", ")).count(),
        2,
        "spoken twice: {twiml}"
    );
    d.assert_log_clean(&[&called]);
}

#[test]
fn without_a_voice_provider_v_is_not_offered_and_sends_nothing() {
    require_root("only root may ask the daemon for another user's code");
    let user = unique_name("novoice");
    let d = Daemon::builder().user(&user, MOBILE).start();
    let pamd = PamConfDir::new();
    let service = unique_name("smsotp-novoice");
    pamd.smsotp_service(&service, &d.socket(), "timeout=15");
    let outbox = d.outbox();
    let outcome = libpam::authenticate(&service, &user, pamd.path(), |p| {
        assert_eq!(
            p.text,
            code_prompt(MOBILE, "5 min", true),
            "{}",
            p.transcript
        );
        match p.index {
            0 => Some("v".into()),
            _ => Some(outbox.last_code()),
        }
    });
    outcome.assert_code(PAM_SUCCESS);
    assert_eq!(outcome.transcript.errors(), vec![NO_CALL]);
    assert_eq!(outbox.code_count(), 1, "a `v` sent nothing");
}

#[test]
fn a_call_beyond_the_resend_limit_is_refused() {
    require_root("only root may ask the daemon for another user's code");
    let cap = HttpCapture::start(201, CREATED);
    let user = unique_name("voicecap");
    let d = daemon_with_voice(&user, &cap, 1);
    let pamd = PamConfDir::new();
    let service = unique_name("smsotp-voicecap");
    pamd.smsotp_service(&service, &d.socket(), "timeout=15");
    let outcome = libpam::authenticate(&service, &user, pamd.path(), |p| match p.index {
        0 => {
            assert!(p.text.ends_with(TAIL_WITH_CALL), "{}", p.transcript);
            Some("v".into())
        }
        1 => {
            // The one resend is spent: neither `r` nor `v` is offered.
            assert!(p.text.ends_with(TAIL_NO_RESEND), "{}", p.transcript);
            Some("v".into())
        }
        _ => {
            let reqs = cap.wait_for(1, Duration::from_secs(10));
            Some(spoken_code(pair(&reqs[0].form(), "Twiml").unwrap()))
        }
    });
    outcome.assert_code(PAM_SUCCESS);
    assert_eq!(cap.requests().len(), 1, "the second `v` placed no call");
    assert!(
        outcome
            .transcript
            .has_error("Cannot send another code: the limit of 1 resends is reached"),
        "{outcome}"
    );
}

/// Protocol 4 is additive: a protocol 3 client gets hello 3 and a
/// challenge without `can_call` (a field it would refuse), a protocol 4
/// client gets `can_call`.
#[test]
fn a_protocol_3_client_is_answered_in_protocol_3() {
    use smsotp_proto::{BeginRequest, Request, Response};
    use smsotp_tests::wire::{exchange, request_frame};
    require_root("only root may ask the daemon for another user's code");
    let cap = HttpCapture::start(201, CREATED);
    let user = unique_name("voicev3");
    let d = daemon_with_voice(&user, &cap, 3);
    for version in [3u32, 4] {
        let mut data = request_frame(&Request::Hello {
            version,
            client: "smsotp-tests-raw".into(),
        });
        data.extend(request_frame(&Request::Begin(BeginRequest {
            user: user.clone(),
            service: "sshd".into(),
            rhost: None,
            tty: None,
            command: None,
        })));
        let reply = exchange(
            &d.socket(),
            data,
            Duration::from_secs(10),
            Duration::from_millis(500),
        );
        let frames: Vec<Response> = reply.frames.into_iter().map(Result::unwrap).collect();
        match &frames[..] {
            [Response::Hello { version: v, .. }, Response::Challenge(c)] => {
                assert_eq!(*v, version);
                assert_eq!(c.can_call, version == 4, "{c:?}");
            }
            other => panic!("protocol {version}: {other:?}"),
        }
    }
    assert_eq!(
        cap.requests().len(),
        0,
        "the outbox took both codes; no call"
    );
}

/// An unknown user (`hide_unknown_users`) is offered `v` like a real one,
/// and a `v` answers with a fresh prompt after the same pause; no call is
/// placed, and no code works.
#[test]
fn unknown_users_are_offered_a_call_that_looks_real() {
    require_root("only root may ask the daemon for another user's code");
    let cap = HttpCapture::start(201, CREATED);
    let real = unique_name("voicereal");
    let d = voice_builder(&real, &cap, 3)
        .section("policy", "hide_unknown_users = true")
        .start();
    let pamd = PamConfDir::new();
    let service = unique_name("smsotp-voiceghost");
    pamd.smsotp_service(&service, &d.socket(), "timeout=15");
    let ghost = unique_name("voiceghost");
    let outcome = libpam::authenticate(&service, &ghost, pamd.path(), |p| {
        assert!(p.text.ends_with(TAIL_WITH_CALL), "{}", p.transcript);
        match p.index {
            0 => Some("v".into()),
            _ => Some("123456".into()),
        }
    });
    assert_ne!(outcome.code, PAM_SUCCESS, "{outcome}");
    assert!(outcome.transcript.code_prompts().len() >= 2, "{outcome}");
    assert_eq!(cap.requests().len(), 0, "no call for a user nobody knows");
}
