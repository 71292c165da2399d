//! The real two-step stack: `pam_unix` checks a real account's password,
//! then the module asks for the code.

use smsotp_tests::daemon::Daemon;
use smsotp_tests::flows::*;
use smsotp_tests::libpam::{self, PAM_AUTH_ERR, PAM_SUCCESS};
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::require_root;
use smsotp_tests::users::TestUser;

const MOBILE: &str = "+15557654321";
const SERVICE: &str = "smsotp-unix";

#[test]
fn password_then_code_logs_in() {
    require_root("pam_unix reads /etc/shadow; useradd");
    let user = TestUser::create();
    let d = Daemon::builder().user(&user.name, MOBILE).start();
    let pamd = PamConfDir::new();
    pamd.unix_then_smsotp(SERVICE, &d.socket(), "timeout=10");
    let outbox = d.outbox();
    let outcome = libpam::authenticate(SERVICE, &user.name, pamd.path(), |p| match p.index {
        0 => {
            assert_eq!(p.text, "Password: ", "{}", p.transcript);
            assert_eq!(outbox.count(), 0, "no SMS before the password step");
            Some(user.password.clone())
        }
        1 => Some(outbox.last().code()),
        _ => panic!("unexpected prompt:\n{}", p.transcript),
    });
    outcome.assert_code(PAM_SUCCESS);
    assert_code_prompted(&outcome);
    assert_eq!(
        outcome.transcript.prompts(),
        vec!["Password: ".to_string(), code_prompt(MOBILE, "5 min", true)],
        "{outcome}"
    );
    let sent = outbox.read();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, MOBILE);
    d.assert_log_clean(&[&user.password]);
}

#[test]
fn wrong_password_sends_no_sms() {
    require_root("pam_unix reads /etc/shadow; useradd");
    let user = TestUser::create();
    let d = Daemon::builder().user(&user.name, MOBILE).start();
    let pamd = PamConfDir::new();
    pamd.unix_then_smsotp(SERVICE, &d.socket(), "timeout=10");
    let outbox = d.outbox();

    let denied = libpam::authenticate(SERVICE, &user.name, pamd.path(), |p| {
        assert_eq!(
            p.text, "Password: ",
            "only the password may be asked:\n{}",
            p.transcript
        );
        Some(format!("{}-wrong", user.password))
    });
    denied.assert_code(PAM_AUTH_ERR);
    assert!(denied.transcript.code_prompts().is_empty(), "{denied}");
    assert_eq!(outbox.count(), 0, "a wrong password must not cost an SMS");

    // The same service file does reach the module when the password is
    // right: the denial above came from pam_unix, not a missing stack.
    let ok = libpam::authenticate(SERVICE, &user.name, pamd.path(), |p| {
        Some(if p.index == 0 {
            user.password.clone()
        } else {
            outbox.last().code()
        })
    });
    ok.assert_code(PAM_SUCCESS);
    assert_code_prompted(&ok);
    assert_eq!(outbox.count(), 1);
    d.assert_log_clean(&[&user.password]);
}
