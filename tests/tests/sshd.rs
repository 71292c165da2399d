//! A real OpenSSH sshd on 127.0.0.1 and the real `ssh` client under a pty:
//! keyboard-interactive runs the PAM stack `pam_unix` (password) then
//! pam_smsotp.so (code). OpenSSH shows only prompts during
//! keyboard-interactive, so the tests assert on the prompt text.

use smsotp_tests::daemon::{Daemon, DaemonBuilder};
use smsotp_tests::flows::*;
use smsotp_tests::nsetc::PrivateEtc;
use smsotp_tests::outbox::wrong_code;
use smsotp_tests::pamd::module_line;
use smsotp_tests::require_root;
use smsotp_tests::sshd::Sshd;
use smsotp_tests::users::TestUser;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const MOBILE: &str = "+15557654321";
const T: Duration = Duration::from_secs(20);
const MARKER: &str = "SMSOTP-SSH-LOGIN-OK";

/// A user with a real shell (sshd runs the command through it).
fn shell_user() -> TestUser {
    let user = TestUser::create();
    let out = Command::new("usermod")
        .args(["-s", "/bin/sh", &user.name])
        .output()
        .expect("usermod");
    assert!(out.status.success(), "usermod: {out:?}");
    user
}

fn stack(socket: &Path, opts: &str) -> String {
    format!(
        "auth requisite pam_unix.so nodelay\n{}account required pam_unix.so\nsession required pam_unix.so\n",
        module_line("required", socket, &format!("timeout=10 {opts}"))
    )
}

fn service_name(tag: &str) -> String {
    smsotp_tests::unique_name(&format!("sshd-smsotp-{tag}-"))
}

struct Setup {
    user: TestUser,
    daemon: Daemon,
    sshd: Sshd,
    _etc: PrivateEtc,
}

fn setup(tag: &str, opts: &str, with_number: bool) -> Setup {
    setup_with(tag, opts, with_number, |b| b)
}

fn setup_with(
    tag: &str,
    opts: &str,
    with_number: bool,
    config: impl FnOnce(DaemonBuilder) -> DaemonBuilder,
) -> Setup {
    require_root("sshd, pam_unix, useradd");
    let user = shell_user();
    // No resend cooldown: the resend test asks at once on purpose.
    let mut b = config(Daemon::builder().section("resend", "cooldown_seconds = 0"));
    if with_number {
        b = b.user(&user.name, MOBILE);
    } else {
        b = b.user("someoneelse", MOBILE);
    }
    let daemon = b.start();
    let etc = PrivateEtc::new();
    let service = service_name(tag);
    etc.pam_service(&service, &stack(&daemon.socket(), opts));
    let sshd = Sshd::start(&etc, &service, &user.name, "");
    Setup {
        user,
        daemon,
        sshd,
        _etc: etc,
    }
}

/// Password step; returns the pty waiting at whatever comes next.
fn password(s: &Setup) -> smsotp_tests::pty::Pty {
    let mut ssh = s.sshd.ssh(&s.user.name, &["echo", MARKER]);
    ssh.expect("Password: ", T);
    assert_eq!(
        s.daemon.outbox().code_count(),
        0,
        "no SMS before the password step"
    );
    ssh.send_line(&s.user.password);
    ssh
}

fn assert_logged_in(s: &Setup, ssh: &mut smsotp_tests::pty::Pty) {
    ssh.expect(MARKER, T);
    let status = ssh.wait(T).expect("ssh exits");
    assert!(status.success(), "ssh: {status}\n{}", ssh.output());
    assert!(
        s.sshd.wait_log(&format!(
            "Accepted keyboard-interactive/pam for {}",
            s.user.name
        )),
        "sshd log:\n{}",
        s.sshd.log()
    );
}

fn assert_denied(s: &Setup, ssh: &mut smsotp_tests::pty::Pty) {
    ssh.expect("Permission denied", T);
    let status = ssh.wait(T).expect("ssh exits");
    assert!(!status.success(), "{}", ssh.output());
    assert!(!ssh.output().contains(MARKER), "{}", ssh.output());
    assert!(
        !s.sshd.log().contains("Accepted keyboard-interactive"),
        "sshd log:\n{}",
        s.sshd.log()
    );
}

#[test]
fn password_and_code_log_in() {
    let s = setup("ok", "", true);
    let mut ssh = password(&s);
    ssh.expect(&code_prompt(MOBILE, "5 min", true), T);
    let sms = s.daemon.outbox().last();
    assert_eq!(sms.to, MOBILE);
    ssh.send_line(&sms.code());
    assert_logged_in(&s, &mut ssh);
    assert_eq!(s.daemon.outbox().code_count(), 1);
    s.daemon.assert_log_clean(&[&s.user.password]);
}

#[test]
fn wrong_code_then_right_code() {
    let s = setup("wrong", "", true);
    let mut ssh = password(&s);
    ssh.expect(&code_prompt(MOBILE, "5 min", true), T);
    let code = s.daemon.outbox().last().code();
    ssh.send_line(&wrong_code(&code));
    // The error message rides along with the next prompt.
    ssh.expect(&wrong_code_msg(2), T);
    ssh.expect(&code_prompt(MOBILE, "5 min", true), T);
    ssh.send_line(&code);
    assert_logged_in(&s, &mut ssh);
}

#[test]
fn wrong_codes_only_are_denied() {
    let s = setup("deny", "", true);
    let mut ssh = password(&s);
    let prompt = code_prompt(MOBILE, "5 min", true);
    ssh.expect(&prompt, T);
    let code = s.daemon.outbox().last().code();
    for _ in 0..3 {
        ssh.send_line(&wrong_code(&code));
        if ssh
            .expect_any(&[&prompt, "Permission denied"], T)
            .unwrap()
            .0
            == 1
        {
            break;
        }
    }
    assert!(
        ssh.output().contains(&wrong_code_msg(1)),
        "{}",
        ssh.output()
    );
    // NumberOfPasswordPrompts=1: one keyboard-interactive round, then out.
    let _ = ssh.wait(T);
    assert!(!ssh.output().contains(MARKER), "{}", ssh.output());
    assert!(
        !s.sshd.log().contains("Accepted keyboard-interactive"),
        "{}",
        s.sshd.log()
    );
    assert_eq!(s.daemon.outbox().code_count(), 1);
}

#[test]
fn resend_sends_a_new_code_and_kills_the_old_one() {
    let s = setup("resend", "", true);
    let mut ssh = password(&s);
    let prompt = code_prompt(MOBILE, "5 min", true);
    ssh.expect(&prompt, T);
    let first = s.daemon.outbox().nth(1).code();
    ssh.send_line("r");
    ssh.expect(&prompt, T);
    let second = s.daemon.outbox().nth(2).code();
    assert_eq!(s.daemon.outbox().code_count(), 2);
    if first != second {
        ssh.send_line(&first);
        ssh.expect(&wrong_code_msg(2), T);
        ssh.expect(&prompt, T);
    }
    ssh.send_line(&second);
    assert_logged_in(&s, &mut ssh);
}

#[test]
fn user_without_a_number_is_denied() {
    let s = setup("nonum", "", false);
    let mut ssh = password(&s);
    assert_denied(&s, &mut ssh);
    // The module ran (the daemon was asked and answered NoMobile): the
    // stack is ours, not a fallback to /etc/pam.d/other.
    assert_eq!(s.daemon.outbox().code_count(), 0);
    assert!(
        s.daemon.log().contains(&s.user.name),
        "the daemon never saw the login; log:\n{}",
        s.daemon.log()
    );
}

fn daemon_down(opts: &str) -> (Setup, smsotp_tests::pty::Pty) {
    let mut s = setup("down", opts, true);
    // First prove that this sshd's stack reaches the module.
    let mut ssh = password(&s);
    ssh.expect(&code_prompt(MOBILE, "5 min", true), T);
    ssh.send_line(&s.daemon.outbox().last().code());
    assert_logged_in(&s, &mut ssh);
    s.daemon.stop();
    let mut ssh = s.sshd.ssh(&s.user.name, &["echo", MARKER]);
    ssh.expect("Password: ", T);
    ssh.send_line(&s.user.password);
    (s, ssh)
}

#[test]
fn daemon_down_failmode_secure_denies() {
    let (s, mut ssh) = daemon_down("failmode=secure");
    ssh.expect("Permission denied", T);
    let _ = ssh.wait(T);
    assert!(!ssh.output().contains(MARKER), "{}", ssh.output());
    assert_eq!(
        s.sshd
            .log()
            .matches("Accepted keyboard-interactive")
            .count(),
        1,
        "only the first login (daemon up) may be accepted:\n{}",
        s.sshd.log()
    );
}

#[test]
fn daemon_down_failmode_safe_lets_the_password_through() {
    let (s, mut ssh) = daemon_down("failmode=safe");
    ssh.expect(MARKER, T);
    let _ = ssh.wait(T);
    let tail = &ssh.output()[ssh.output().find("Password: ").unwrap_or(0)..];
    assert!(!tail.contains("Code sent to"), "{}", ssh.output());
    assert_eq!(
        s.sshd
            .log()
            .matches("Accepted keyboard-interactive")
            .count(),
        2,
        "{}",
        s.sshd.log()
    );
}

#[test]
fn backup_code_at_the_code_prompt() {
    let s = setup("backup", "", true);
    let codes = smsotp_tests::policy_kit::generate_backup_codes(&s.daemon.socket(), &s.user.name);
    let mut ssh = password(&s);
    ssh.expect(&code_prompt(MOBILE, "5 min", true), T);
    ssh.send_line(&codes[0]);
    assert_logged_in(&s, &mut ssh);
    assert_eq!(
        smsotp_tests::policy_kit::backup_count(&s.daemon.socket(), &s.user.name),
        codes.len() as u32 - 1
    );
    let secrets: Vec<&str> = codes.iter().map(String::as_str).collect();
    s.daemon.assert_log_clean(&secrets);
}

#[test]
fn user_without_a_number_skipped_by_policy_logs_in_with_the_password() {
    let s = setup_with("skip", "", false, |b| {
        b.section("policy", "no_mobile = \"skip\"")
    });
    let mut ssh = password(&s);
    assert_logged_in(&s, &mut ssh);
    assert_eq!(s.daemon.outbox().code_count(), 0);
    // The module ran and chose to skip (PAM_IGNORE), it was not bypassed.
    assert!(
        s.daemon.log().contains("reason=\"no-mobile\""),
        "daemon log:\n{}",
        s.daemon.log()
    );
}

#[test]
fn user_without_a_number_enrolls_one_over_ssh() {
    let s = setup_with("enroll", "", false, |b| {
        b.section("policy", "no_mobile = \"enroll\"")
    });
    let mut ssh = password(&s);
    ssh.expect("Enter your mobile number with country code", T);
    ssh.send_line("+15550009999");
    ssh.expect(&code_prompt("+15550009999", "5 min", true), T);
    let sms = s.daemon.outbox().last();
    assert_eq!(sms.to, "+15550009999");
    ssh.send_line(&sms.code());
    assert_logged_in(&s, &mut ssh);
    let status = smsotp_tests::policy_kit::status_json(&s.daemon.socket(), &s.user.name);
    assert_eq!(status["mobile_source"], "enrolled", "{status}");
}
