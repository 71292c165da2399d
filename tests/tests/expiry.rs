//! SLOW (about 31 s): codes expire. `expiry_seconds` cannot go below 30, and
//! there is no hidden test knob, so this file really waits. Both cases run
//! in parallel threads so the whole file costs one wait.

use smsotp_tests::daemon::{Daemon, DaemonBuilder};
use smsotp_tests::flows::*;
use smsotp_tests::libpam::{self, Outcome, PAM_AUTH_ERR, PAM_SUCCESS};
use smsotp_tests::outbox::Outbox;
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::{require_root, unique_name};
use std::time::Duration;

const MOBILE: &str = "+15550001111";
const SERVICE: &str = "smsotp-expiry";
const WAIT: Duration = Duration::from_secs(31);

fn run(
    user: &str,
    builder: DaemonBuilder,
    mut respond: impl FnMut(usize, &str, &Outbox) -> String,
) -> (Outcome, Daemon) {
    let d = builder.user(user, MOBILE).start();
    let pamd = PamConfDir::new();
    pamd.smsotp_service(SERVICE, &d.socket(), "timeout=10");
    let outbox = d.outbox();
    let outcome = libpam::authenticate(SERVICE, user, pamd.path(), |p| {
        assert!(p.text.starts_with("Code sent to "), "{}", p.transcript);
        Some(respond(p.index, p.text, &outbox))
    });
    (outcome, d)
}

/// Under a minute the prompt counts seconds; a slow machine may lose one.
fn assert_seconds_prompt(prompt: &str, can_resend: bool) {
    let ok = [30, 29]
        .iter()
        .any(|s| prompt == code_prompt(MOBILE, &format!("{s} s"), can_resend));
    assert!(ok, "prompt {prompt:?} does not say `expires in 30 s`");
}

#[test]
fn slow_expired_code_is_refused() {
    require_root("only root may ask the daemon for another user's code");

    // With resends left: the expired code is refused, 'r' brings a new one.
    let with_resend = std::thread::spawn(|| {
        let user = unique_name("exp");
        run(
            &user,
            Daemon::builder().otp("expiry_seconds = 30"),
            |i, _, outbox| match i {
                0 => {
                    std::thread::sleep(WAIT);
                    outbox.nth(1).code()
                }
                1 => "r".into(),
                2 => outbox.nth(2).code(),
                _ => panic!("too many prompts"),
            },
        )
    });
    // No resends: the expired code ends the login.
    let without_resend = std::thread::spawn(|| {
        let user = unique_name("expnr");
        run(
            &user,
            Daemon::builder()
                .otp("expiry_seconds = 30")
                .otp("max_resends = 0"),
            |i, _, outbox| match i {
                0 => {
                    std::thread::sleep(WAIT);
                    outbox.nth(1).code()
                }
                _ => panic!("no prompt expected after an expired code without resends"),
            },
        )
    });

    let (outcome, d) = with_resend.join().expect("with-resend thread");
    outcome.assert_code(PAM_SUCCESS);
    assert_code_prompted(&outcome);
    assert_seconds_prompt(outcome.transcript.code_prompts()[0], true);
    assert_eq!(
        outcome.transcript.errors(),
        vec![MSG_EXPIRED_RESEND],
        "{outcome}"
    );
    assert_eq!(d.outbox().count(), 2);
    d.assert_log_clean(&[]);

    let (outcome, d) = without_resend.join().expect("without-resend thread");
    outcome.assert_code(PAM_AUTH_ERR);
    assert_code_prompted(&outcome);
    assert_seconds_prompt(outcome.transcript.code_prompts()[0], false);
    assert_eq!(outcome.transcript.errors(), vec![MSG_EXPIRED], "{outcome}");
    assert_eq!(d.outbox().count(), 1);
    d.assert_log_clean(&[]);
}
