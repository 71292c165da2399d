//! Console logins under a pty: `login` (run by root, as getty would) and
//! `su` (run by an unprivileged caller) with the `login` and `su` PAM
//! services replaced, inside a private mount namespace only, by password +
//! code stacks.

use smsotp_tests::daemon::Daemon;
use smsotp_tests::flows::*;
use smsotp_tests::nsetc::PrivateEtc;
use smsotp_tests::outbox::wrong_code;
use smsotp_tests::pamd::module_line;
use smsotp_tests::pty::Pty;
use smsotp_tests::require_root;
use smsotp_tests::users::TestUser;
use std::process::Command;
use std::time::Duration;

const MOBILE: &str = "+15550009876";
const T: Duration = Duration::from_secs(20);
const MARKER: &str = "SMSOTP-CONSOLE-OK";

fn setup(service: &str) -> (TestUser, Daemon, PrivateEtc) {
    require_root("login, su, pam_unix, useradd, mount namespaces");
    let user = TestUser::create();
    let out = Command::new("usermod")
        .args(["-s", "/bin/sh", &user.name])
        .output()
        .expect("usermod");
    assert!(out.status.success(), "{out:?}");
    let daemon = Daemon::builder().user(&user.name, MOBILE).start();
    let etc = PrivateEtc::new();
    etc.pam_service(
        service,
        &format!(
            "auth requisite pam_unix.so nodelay\n{}account required pam_unix.so\nsession required pam_unix.so\n",
            module_line("required", &daemon.socket(), "timeout=10")
        ),
    );
    (user, daemon, etc)
}

#[test]
fn login_asks_for_password_then_code() {
    let (user, daemon, etc) = setup("login");
    let mut cmd = etc.command("login");
    cmd.arg(&user.name);
    let mut login = Pty::spawn(&mut cmd);
    login.expect("Password: ", T);
    login.send_line(&user.password);
    login.expect(&code_prompt(MOBILE, "5 min", true), T);
    let code = daemon.outbox().last().code();
    login.send_line(&wrong_code(&code));
    login.expect(&wrong_code_msg(2), T);
    login.expect(&code_prompt(MOBILE, "5 min", true), T);
    login.send_line(&code);
    // A shell: prove it by running something in it.
    std::thread::sleep(Duration::from_millis(300));
    login.send_line(&format!("echo {}-$((40+2)); exit", MARKER));
    login.expect(&format!("{MARKER}-42"), T);
    let _ = login.wait(T);
    daemon.assert_log_clean(&[&user.password]);
}

#[test]
fn su_from_an_unprivileged_caller_needs_the_code() {
    let (user, daemon, etc) = setup("su");
    let su = |etc: &PrivateEtc| {
        let mut cmd = etc.command("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "su"])
            .arg(&user.name)
            .args(["-c", &format!("echo {MARKER}")]);
        Pty::spawn(&mut cmd)
    };
    let mut p = su(&etc);
    p.expect("Password: ", T);
    p.send_line(&user.password);
    p.expect(&code_prompt(MOBILE, "5 min", true), T);
    p.send_line(&daemon.outbox().last().code());
    p.expect(MARKER, T);
    let status = p.wait(T).expect("su exits");
    assert!(status.success(), "{}", p.output());

    // A wrong code (every try): su refuses.
    let mut p = su(&etc);
    p.expect("Password: ", T);
    p.send_line(&user.password);
    let prompt = code_prompt(MOBILE, "5 min", true);
    p.expect(&prompt, T);
    let code = daemon.outbox().nth(2).code();
    for _ in 0..3 {
        p.send_line(&wrong_code(&code));
        if p.expect_any(&[&prompt, MSG_TRIES_EXHAUSTED], T).unwrap().0 == 1 {
            break;
        }
    }
    // PAM_MAXTRIES: util-linux su says so in its own words.
    p.expect(
        "su: Have exhausted maximum number of retries for service",
        T,
    );
    let status = p.wait(T).expect("su exits");
    assert!(!status.success(), "{}", p.output());
    assert!(
        !p.output().contains(&format!("\n{MARKER}")),
        "{}",
        p.output()
    );
}
