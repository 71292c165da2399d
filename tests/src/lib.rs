//! End-to-end fixtures for smsotp.
//!
//! The tests in `tests/tests/` drive the real Linux-PAM library ([`libpam`])
//! against the built `libpam_smsotp.so` and a real `smsotpd` process
//! ([`daemon`]), with providers that are local files ([`outbox`]) or a
//! loopback HTTP server ([`http_capture`]). Every fixture cleans up in `Drop`
//! and every wait is bounded, so a broken build fails a test instead of
//! hanging it.
//!
//! Almost every test needs root: the module asks the daemon for a code on
//! behalf of another user (only root may), `pam_unix` reads `/etc/shadow`,
//! and the permission tests switch to an unprivileged uid. [`require_root`]
//! says so clearly.

pub mod chaos;
pub mod container;
pub mod ctl;
pub mod daemon;
pub mod debpkg;
pub mod faultkit;
pub mod flood;
pub mod flows;
pub mod http_capture;
pub mod libpam;
pub mod nsetc;
pub mod outbox;
pub mod pamd;
pub mod paths;
pub mod pg;
pub mod policy_kit;
pub mod pty;
pub mod session;
pub mod slapd;
pub mod sshd;
pub mod users;
pub mod wire;

use std::sync::atomic::{AtomicU32, Ordering};

/// Panics with a clear message unless the test runs as root.
pub fn require_root(what: &str) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        panic!(
            "this end-to-end test must run as root ({what}); \
             run `sudo -E cargo test -p smsotp-tests` (euid is {euid})"
        );
    }
}

/// A login name no other test in this run uses: attempt budgets and
/// lockouts belong to the user, so tests must not share one.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}x{n}", std::process::id())
}
