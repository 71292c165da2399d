//! smsotpctl at a real terminal: the step-up prompt turns echo off, and
//! whatever ends it (Ctrl-C typed at the prompt, SIGTERM from elsewhere)
//! the user's terminal gets its echo back. Without that, the shell the
//! user returns to types blind.

use smsotp_tests::ctl::Ctl;
use smsotp_tests::daemon::Daemon;
use smsotp_tests::require_root;
use smsotp_tests::users::TestUser;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

const MOBILE: &str = "+15557790001";
const PROMPT: &str = "To confirm, enter the code sent to *******0001";

#[test]
fn the_terminal_echoes_again_after_the_prompt_is_interrupted() {
    require_root("creates a local user and runs smsotpctl as it");
    let u = TestUser::create();
    let d = Daemon::builder().user(&u.name, MOBILE).start();
    let me = Ctl::new(&d.socket()).as_user(&u.name);

    for (how, signal) in [("ctrl-c", libc::SIGINT), ("sigterm", libc::SIGTERM)] {
        let mut tty = me.on_terminal(&["backup-codes", "generate"]);
        tty.expect(PROMPT, Duration::from_secs(10));
        // The prompt is up once echo is off; the state to restore from.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while tty.echoes() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!tty.echoes(), "{how}: the code prompt must not echo");
        match how {
            "ctrl-c" => tty.send_raw(b"\x03"),
            _ => {
                let pid = tty.pid().expect("smsotpctl is running") as libc::pid_t;
                // SAFETY: signalling the child this test started.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        let status = tty
            .wait(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{how}: smsotpctl did not end: {}", tty.output()));
        assert_eq!(
            status.signal(),
            Some(signal),
            "{how}: dies of the signal, as the shell expects: {status:?}"
        );
        assert!(tty.echoes(), "{how}: the terminal echoes again");
    }
}
