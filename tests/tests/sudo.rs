//! sudo step-up: the real sudo (setuid, under a pty) with a test-only PAM
//! service chosen by `pam_service=` in sudoers. Both the sudoers file and
//! the service live in a private mount namespace ([`PrivateEtc`]), so the
//! host's /etc/sudoers, /etc/sudoers.d and /etc/pam.d are never written.

use smsotp_tests::daemon::Daemon;
use smsotp_tests::flows::*;
use smsotp_tests::nsetc::PrivateEtc;
use smsotp_tests::outbox::wrong_code;
use smsotp_tests::pamd::module_line;
use smsotp_tests::pty::Pty;
use smsotp_tests::require_root;
use smsotp_tests::users::TestUser;
use std::time::Duration;

const MOBILE: &str = "+15550001234";
const SERVICE: &str = "sudo-smsotp-test";
const T: Duration = Duration::from_secs(20);
/// What sudoedit may edit: a file that does not exist, and that sudoedit
/// does not create when the editor leaves it unchanged.
const EDITED: &str = "/etc/smsotp-sudoedit-test";
/// `{{command}}` at the end of the message, after the default wording so
/// the outbox reader still finds the code.
const TEMPLATE: &str = "template = \"Your login code for {{host}} is {{code}}. It expires in \
                        {{expiry_minutes}} minutes. Command: [{{command}}]\"";

struct Setup {
    user: TestUser,
    daemon: Daemon,
    etc: PrivateEtc,
}

/// sudo 1.9.13 calls pam_authenticate with PAM_SILENT (it has no
/// `pam_silent` option to turn that off), and the module honours it: no
/// PAM_ERROR_MSG reaches the user ("Wrong code. N tries left." is not
/// shown); the code prompt simply comes back.
fn setup() -> Setup {
    require_root("setuid sudo, pam_unix, useradd, mount namespaces");
    let user = TestUser::create();
    let daemon = Daemon::builder()
        .user(&user.name, MOBILE)
        .message(TEMPLATE)
        .start();
    let etc = PrivateEtc::new();
    etc.pam_service(
        SERVICE,
        &format!(
            "auth requisite pam_unix.so nodelay\n{}account required pam_unix.so\nsession required pam_permit.so\n",
            module_line("required", &daemon.socket(), "timeout=10")
        ),
    );
    etc.sudoers(&format!(
        "Defaults env_reset, !lecture, passwd_tries=2, timestamp_timeout=0\n\
         Defaults:{u} pam_service={SERVICE}, pam_login_service={SERVICE}\n\
         root ALL=(ALL:ALL) ALL\n\
         {u} ALL=(root) /usr/bin/id, /bin/bash, sudoedit {EDITED}, SETENV: /usr/bin/true\n",
        u = user.name
    ));
    Setup { user, daemon, etc }
}

/// `PROGRAM ARGS` (sudo or sudoedit) as the test user, in the namespace.
/// sudoedit's editor changes nothing, so it writes nothing back.
fn as_user(s: &Setup, program: &str, args: &[&str]) -> Pty {
    let mut cmd = s.etc.command("runuser");
    cmd.args(["-u", &s.user.name, "--", program])
        .args(args)
        .env("SUDO_EDITOR", "/usr/bin/true");
    Pty::spawn(&mut cmd)
}

/// `sudo -k /usr/bin/id -u` as the test user, in the namespace.
fn sudo_id(s: &Setup) -> Pty {
    as_user(s, "sudo", &["-k", "/usr/bin/id", "-u"])
}

#[test]
fn password_and_code_run_the_command() {
    let s = setup();
    let mut sudo = sudo_id(&s);
    sudo.expect(&format!("[sudo] password for {}: ", s.user.name), T);
    assert_eq!(s.daemon.outbox().count(), 0, "no SMS before the password");
    sudo.send_line(&s.user.password);
    sudo.expect(&code_prompt(MOBILE, "5 min", true), T);
    let sms = s.daemon.outbox().last();
    sudo.send_line(&sms.code());
    let status = sudo.wait(T).expect("sudo exits");
    assert!(status.success(), "{status}\n{}", sudo.output());
    assert!(
        sudo.output().trim_end().ends_with("\n0") || sudo.output().contains("\r\n0\r\n"),
        "id -u should print 0 as root:\n{}",
        sudo.output()
    );
    // sudo 1.9.13 puts SUDO_COMMAND into the PAM environment only when the
    // session is opened; the command comes from sudo's own argv (-k is
    // sudo's option, -u is id's).
    eprintln!("SMS body with {{{{command}}}}: {:?}", sms.body);
    assert!(
        sms.body.ends_with("Command: [/usr/bin/id -u]"),
        "body: {:?}",
        sms.body
    );
    s.daemon.assert_log_clean(&[&s.user.password]);
}

#[test]
fn wrong_code_says_sorry_try_again() {
    let s = setup();
    let mut sudo = sudo_id(&s);
    let pw_prompt = format!("[sudo] password for {}: ", s.user.name);
    sudo.expect(&pw_prompt, T);
    sudo.send_line(&s.user.password);
    let prompt = code_prompt(MOBILE, "5 min", true);
    sudo.expect(&prompt, T);
    let code = s.daemon.outbox().last().code();
    // Three wrong codes use up this code's tries; sudo then says
    // "Sorry, try again." and runs the whole stack again (new password,
    // new SMS).
    for _ in 0..2 {
        sudo.send_line(&wrong_code(&code));
        sudo.expect(&prompt, T);
    }
    sudo.send_line(&wrong_code(&code));
    sudo.expect("Sorry, try again.", T);
    assert!(
        !sudo.output().contains("Wrong code"),
        "PAM_SILENT: {}",
        sudo.output()
    );
    sudo.expect(&pw_prompt, T);
    sudo.send_line(&s.user.password);
    sudo.expect(&prompt, T);
    let second = s.daemon.outbox().nth(2);
    sudo.send_line(&second.code());
    let status = sudo.wait(T).expect("sudo exits");
    assert!(status.success(), "{status}\n{}", sudo.output());
}

#[test]
fn wrong_codes_on_every_try_are_refused() {
    let s = setup();
    let mut sudo = sudo_id(&s);
    let pw_prompt = format!("[sudo] password for {}: ", s.user.name);
    let prompt = code_prompt(MOBILE, "5 min", true);
    for round in 1..=2 {
        sudo.expect(&pw_prompt, T);
        sudo.send_line(&s.user.password);
        sudo.expect(&prompt, T);
        let code = s.daemon.outbox().nth(round).code();
        // Wrong codes until sudo gives up on this try (the code's tries,
        // or the user's guess budget, run out).
        for _ in 0..3 {
            sudo.send_line(&wrong_code(&code));
            let (i, _) = sudo
                .expect_any(
                    &[&prompt, "Sorry, try again.", "incorrect password attempts"],
                    T,
                )
                .unwrap();
            if i > 0 {
                break;
            }
        }
    }
    assert!(!sudo.output().contains("Wrong code"), "{}", sudo.output());
    assert!(
        sudo.output().contains("2 incorrect password attempts"),
        "{}",
        sudo.output()
    );
    let status = sudo.wait(T).expect("sudo exits");
    assert!(!status.success(), "{}", sudo.output());
}

/// What `{{command}}` says for each kind of sudo invocation, through the
/// real sudo: options dropped or kept, arguments quoted, control characters
/// made visible, long lines cut, shells named. Each one is then approved
/// with its code and runs.
#[test]
fn the_sms_says_what_is_being_approved() {
    let s = setup();
    let long = "x".repeat(300);
    // 117 characters and "...": MAX_SHOWN (120) in all.
    let cut = format!("/usr/bin/true {}...", "x".repeat(117 - 14));
    let edit = format!("sudoedit {EDITED}");
    // Past the module's 64 KiB read of /proc/self/cmdline: the cut word
    // is dropped.
    let huge = "y".repeat(70_000);
    let cases: [(&str, &[&str], &str); 7] = [
        ("sudo", &["/usr/bin/true"], "/usr/bin/true"),
        (
            "sudo",
            &[
                "-k",
                "-u",
                "root",
                "/usr/bin/true",
                "a b",
                "x\ny",
                "\x1b[31mred",
                "it's",
            ],
            r"-u root /usr/bin/true 'a b' 'x?y' '?[31mred' 'it'\''s'",
        ),
        ("sudo", &["-i"], "-i (login shell)"),
        ("sudo", &["--", "/usr/bin/true", &long], &cut),
        ("sudo", &["/usr/bin/true", &huge], "/usr/bin/true ..."),
        ("sudoedit", &[EDITED], &edit),
        (
            "sudo",
            &["PGPASSWORD=s3cret", "/usr/bin/true"],
            "PGPASSWORD=*** /usr/bin/true",
        ),
    ];
    for (n, (program, args, shown)) in cases.iter().enumerate() {
        let mut sudo = as_user(&s, program, args);
        sudo.expect(&format!("[sudo] password for {}: ", s.user.name), T);
        sudo.send_line(&s.user.password);
        sudo.expect(&code_prompt(MOBILE, "5 min", true), T);
        let sms = s.daemon.outbox().nth(n + 1);
        let shown_args: Vec<String> = args.iter().map(|a| shorten(a)).collect();
        eprintln!("{program} {shown_args:?}: {:?}", sms.body);
        assert!(
            sms.body.ends_with(&format!("Command: [{shown}]")),
            "{program} {shown_args:?}: {:?}",
            sms.body
        );
        sudo.send_line(&sms.code());
        if args == &["-i"] {
            // The login shell as root: leave it once it prompts (typed
            // earlier, the line is lost while sudo sets up the terminal).
            sudo.expect("# ", T);
            sudo.send_line("exit");
        }
        let status = sudo.wait(T).expect("sudo exits");
        assert!(
            status.success(),
            "{program} {shown_args:?}: {status}\n{}",
            sudo.output()
        );
    }
    assert!(
        !std::path::Path::new(EDITED).exists(),
        "sudoedit wrote {EDITED}"
    );
    s.daemon.assert_log_clean(&[&s.user.password, "s3cret"]);
}

/// A long argument as "xxx... (N bytes)" for the test's own output.
fn shorten(arg: &str) -> String {
    match arg.get(..20) {
        Some(head) if arg.len() > 40 => format!("{head}... ({} bytes)", arg.len()),
        _ => arg.to_string(),
    }
}
