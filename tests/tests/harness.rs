//! Checks of the fixtures themselves against real libpam modules, and of
//! the libpam stacking rules the module tests rely on. No daemon needed.

use smsotp_tests::libpam::{self, Style, PAM_AUTH_ERR, PAM_CONV_ERR, PAM_PERM_DENIED, PAM_SUCCESS};
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::users::TestUser;

#[test]
fn conversation_records_info_and_answers_prompts() {
    smsotp_tests::require_root("pam_unix reads /etc/shadow");
    let user = TestUser::create();
    let pamd = PamConfDir::new();
    pamd.write(
        "harness-unix",
        "auth required pam_debug.so auth=success\nauth required pam_unix.so nodelay\n",
    );
    let ok = libpam::authenticate("harness-unix", &user.name, pamd.path(), |p| {
        assert_eq!(p.style, Style::EchoOff);
        Some(user.password.clone())
    });
    ok.assert_code(PAM_SUCCESS);
    assert_eq!(ok.transcript.prompts(), vec!["Password: "]);
    // pam_debug announces what it returns as PAM_TEXT_INFO.
    assert_eq!(
        ok.transcript.infos(),
        vec!["auth=success"],
        "{}",
        ok.transcript
    );

    let bad = libpam::authenticate("harness-unix", &user.name, pamd.path(), |_| {
        Some("not the password".into())
    });
    bad.assert_code(PAM_AUTH_ERR);

    let none = libpam::authenticate("harness-unix", &user.name, pamd.path(), |_| None);
    // A refused conversation never succeeds (pam_unix 1.5 reports it as
    // PAM_AUTHTOK_ERR; others say PAM_CONV_ERR).
    assert!(
        matches!(
            none.code,
            PAM_CONV_ERR | PAM_AUTH_ERR | libpam::PAM_AUTHTOK_ERR
        ),
        "{none}"
    );
}

#[test]
#[should_panic(expected = "boom from the responder")]
fn a_panicking_responder_fails_the_test_not_the_process() {
    let pamd = PamConfDir::new();
    // pam_unix prompts even for unknown users.
    pamd.write("harness-panic", "auth required pam_unix.so nodelay\n");
    libpam::authenticate("harness-panic", "nosuchuser-smsotp", pamd.path(), |_| {
        panic!("boom from the responder")
    });
}

/// The rules `failmode=safe` relies on, checked with pam_debug standing in
/// for a module that returns PAM_IGNORE.
#[test]
fn libpam_stacking_of_ignore_and_failure() {
    let pamd = PamConfDir::new();
    let run = |service: &str, stack: &str| {
        pamd.write(service, stack);
        libpam::authenticate(service, "nobody", pamd.path(), |p| {
            panic!("no prompt expected, got {:?}", p.text)
        })
        .code
    };
    // permit + required IGNORE: the ignore is skipped, the stack succeeds.
    assert_eq!(
        run(
            "s-permit-ignore",
            "auth required pam_permit.so\nauth required pam_debug.so auth=ignore\n"
        ),
        PAM_SUCCESS
    );
    // A stack of nothing but IGNORE fails closed.
    assert_eq!(
        run("s-only-ignore", "auth required pam_debug.so auth=ignore\n"),
        PAM_PERM_DENIED
    );
    // permit + required AUTHINFO_UNAVAIL: that code is what libpam returns.
    assert_eq!(
        run(
            "s-permit-unavail",
            "auth required pam_permit.so\nauth required pam_debug.so auth=authinfo_unavail\n"
        ),
        libpam::PAM_AUTHINFO_UNAVAIL
    );
    // With a confdir, a missing service file (and no `other` in it) makes
    // pam_start itself fail: nothing falls back to /etc/pam.d.
    let missing = libpam::Pam::start("s-missing", "nobody", pamd.path(), |_| None);
    assert_eq!(missing.err(), Some(libpam::PAM_ABORT));
}
