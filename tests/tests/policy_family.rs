//! Per-service policy reaches a service's family, through the real daemon
//! and real libpam: with `[policy] enabled = false` and `[service.sudo]
//! enabled = true`, `sudo -i` (PAM service `sudo-i`) must be asked for a
//! code like `sudo`, while `su-l` (family `su`, no section) stays on
//! `[policy]`. Before the family rule `sudo-i` was skipped: password only.

use smsotp_tests::daemon::Daemon;
use smsotp_tests::flows::*;
use smsotp_tests::libpam::PAM_SUCCESS;
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::policy_kit::*;
use smsotp_tests::{require_root, unique_name};

const OPTS: &str = "timeout=10";

#[test]
fn sudo_i_gets_the_sudo_section() {
    require_root("only root may ask the daemon for another user's code");
    let user = unique_name("fam");
    let d = Daemon::builder()
        .user(&user, "+15551270001")
        .section("policy", "enabled = false")
        .section("service.sudo", "enabled = true")
        .start();
    let pamd = PamConfDir::new();
    for service in ["sudo", "sudo-i", "su-l"] {
        ignore_probe_services(&pamd, service, &d.socket(), OPTS);
    }
    let outbox = d.outbox();
    for service in ["sudo", "sudo-i"] {
        let before = outbox.count();
        let outcome = login_with(
            &pamd,
            service,
            &user,
            Items::default(),
            type_newest_code(&outbox),
        );
        outcome.assert_code(PAM_SUCCESS);
        assert_code_prompted(&outcome);
        assert_eq!(outbox.count(), before + 1, "{service}: one SMS: {outcome}");
    }
    assert_ignored(
        &d,
        &pamd,
        "su-l",
        &user,
        Items::default(),
        "service-not-enabled",
    );
    assert_eq!(outbox.count(), 2, "no SMS for su-l");
    d.assert_log_clean(&[]);
}
