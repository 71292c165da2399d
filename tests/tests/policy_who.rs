//! Who must type a code, through real libpam: services where SMS codes are
//! off, exempt users and groups (with `!name` negation), trusted networks
//! by PAM_RHOST, the grace period after a success (by remote host, or by
//! terminal for sudo), and opting out where codes are not mandatory.
//!
//! A skip must be PAM_IGNORE, never PAM_SUCCESS. Each is shown with two
//! stacks (see `policy_kit::assert_ignored`): `pam_permit` + module
//! succeeds silently, the module alone fails with PAM_PERM_DENIED (libpam's
//! answer to a stack of nothing but ignores), and the daemon's log shows
//! that it skipped the login and why.

use smsotp_tests::ctl::Ctl;
use smsotp_tests::daemon::{Daemon, DaemonBuilder};
use smsotp_tests::flows::*;
use smsotp_tests::libpam::{PAM_PERM_DENIED, PAM_SUCCESS};
use smsotp_tests::pamd::{module_line, PamConfDir};
use smsotp_tests::policy_kit::*;
use smsotp_tests::users::TestUser;
use smsotp_tests::{require_root, unique_name};

const SERVICE: &str = "pol-who";
const OPTS: &str = "timeout=10";

fn start(b: DaemonBuilder) -> (Daemon, PamConfDir) {
    require_root("only root may ask the daemon for another user's code");
    let d = b.start();
    let pamd = PamConfDir::new();
    ignore_probe_services(&pamd, SERVICE, &d.socket(), OPTS);
    (d, pamd)
}

/// `+1555126NNNN` for the n-th user of a test.
fn mobile(n: u32) -> String {
    format!("+1555126{n:04}")
}

/// A login on `service` that is prompted, types the code and gets in.
fn prompted(d: &Daemon, pamd: &PamConfDir, service: &str, user: &str, items: Items<'_>) {
    let outbox = d.outbox();
    let before = outbox.count();
    let outcome = login_with(pamd, service, user, items, type_newest_code(&outbox));
    outcome.assert_code(PAM_SUCCESS);
    assert_code_prompted(&outcome);
    assert_eq!(outbox.count(), before + 1, "{outcome}");
}

fn quoted_list(names: &[&str]) -> String {
    let items: Vec<String> = names
        .iter()
        .map(|n| smsotp_tests::daemon::toml_str(n))
        .collect();
    format!("[{}]", items.join(", "))
}

#[test]
fn disabled_service_is_ignored() {
    let user = unique_name("off");
    let (d, pamd) = start(
        Daemon::builder()
            .user(&user, &mobile(1))
            .section("service.pol-off", "enabled = false")
            .section("service.pol-off-alone", "enabled = false"),
    );
    ignore_probe_services(&pamd, "pol-off", &d.socket(), OPTS);
    // Same module line, same user, enabled service: a code is asked for.
    prompted(&d, &pamd, SERVICE, &user, Items::default());
    assert_ignored(
        &d,
        &pamd,
        "pol-off",
        &user,
        Items::default(),
        "service-not-enabled",
    );
    assert_eq!(d.outbox().count(), 1, "no SMS for the disabled service");
    d.assert_log_clean(&[]);
}

#[test]
fn exempt_users_by_name() {
    // Exemptions are for accounts NSS knows.
    let account = TestUser::create();
    let (exempt, other) = (account.name.clone(), unique_name("nx"));
    let (d, pamd) = start(
        Daemon::builder()
            .user(&exempt, &mobile(1))
            .user(&other, &mobile(2))
            .section(
                "policy",
                &format!("exempt_users = {}", quoted_list(&[&exempt])),
            ),
    );
    assert_ignored(&d, &pamd, SERVICE, &exempt, Items::default(), "exempt-user");
    prompted(&d, &pamd, SERVICE, &other, Items::default());
    assert_eq!(d.outbox().read()[0].to, mobile(2));
    d.assert_log_clean(&[]);
}

/// `exempt_groups = [G, "!G2"]` and `exempt_users = ["!u2"]`: a member of
/// G is exempt, unless the user is named with `!` or is also in G2.
#[test]
fn exempt_groups_with_negation() {
    require_root("creates local users and groups");
    let g = LocalGroup::create();
    let g2 = LocalGroup::create();
    let member = TestUser::create();
    let vetoed = TestUser::create();
    let in_both = TestUser::create();
    let outsider = TestUser::create();
    g.add(&member.name);
    g.add(&vetoed.name);
    g.add(&in_both.name);
    g2.add(&in_both.name);
    let neg_g2 = format!("!{}", g2.name);
    let neg_user = format!("!{}", vetoed.name);
    let (d, pamd) = start(
        Daemon::builder()
            .user(&member.name, &mobile(1))
            .user(&vetoed.name, &mobile(2))
            .user(&in_both.name, &mobile(3))
            .user(&outsider.name, &mobile(4))
            .section(
                "policy",
                &format!("exempt_groups = {}", quoted_list(&[&g.name, &neg_g2])),
            )
            .section(
                "policy",
                &format!("exempt_users = {}", quoted_list(&[&neg_user])),
            ),
    );
    assert_ignored(
        &d,
        &pamd,
        SERVICE,
        &member.name,
        Items::default(),
        "exempt-group",
    );
    prompted(&d, &pamd, SERVICE, &vetoed.name, Items::default());
    prompted(&d, &pamd, SERVICE, &in_both.name, Items::default());
    prompted(&d, &pamd, SERVICE, &outsider.name, Items::default());
    let to: Vec<String> = d.outbox().read().into_iter().map(|m| m.to).collect();
    assert_eq!(to, vec![mobile(2), mobile(3), mobile(4)]);
    d.assert_log_clean(&[]);
}

#[test]
fn trusted_networks_by_rhost() {
    let user = unique_name("tn");
    let (d, pamd) = start(Daemon::builder().user(&user, &mobile(1)).section(
        "policy",
        r#"trusted_networks = ["192.0.2.0/24", "2001:db8::/32"]"#,
    ));
    assert_ignored(
        &d,
        &pamd,
        SERVICE,
        &user,
        Items::rhost("192.0.2.77"),
        "trusted-network",
    );
    assert_ignored(
        &d,
        &pamd,
        SERVICE,
        &user,
        Items::rhost("2001:db8:5::1"),
        "trusted-network",
    );
    // An IPv4 peer written as IPv4-mapped IPv6 is still that address.
    assert_ignored(
        &d,
        &pamd,
        SERVICE,
        &user,
        Items::rhost("::ffff:192.0.2.78"),
        "trusted-network",
    );
    // Outside the CIDRs, without PAM_RHOST, or a name instead of an
    // address: a code is asked for.
    prompted(&d, &pamd, SERVICE, &user, Items::rhost("192.0.3.77"));
    prompted(&d, &pamd, SERVICE, &user, Items::rhost("2001:db9::1"));
    prompted(&d, &pamd, SERVICE, &user, Items::default());
    prompted(&d, &pamd, SERVICE, &user, Items::rhost("trusted.example"));
    d.assert_log_clean(&[]);
}

/// The grace period is keyed on the service too, so these logins use the
/// module-alone stack throughout: PAM_SUCCESS after a code, PAM_PERM_DENIED
/// (the module's PAM_IGNORE) when grace skipped it.
fn grace_skipped(d: &Daemon, pamd: &PamConfDir, service: &str, user: &str, items: Items<'_>) {
    let before = events(d, "skipped", user, &["reason=\"grace-period\""]).len();
    let outcome = login_with(pamd, service, user, items, no_prompt);
    outcome.assert_code(PAM_PERM_DENIED);
    assert!(outcome.transcript.entries.is_empty(), "{outcome}");
    let after = events(d, "skipped", user, &["reason=\"grace-period\""]).len();
    assert_eq!(
        after,
        before + 1,
        "the daemon audits the grace skip:\n{}",
        d.log()
    );
}

#[test]
fn grace_period_for_the_same_rhost() {
    // A grace period is for accounts NSS knows.
    let account = TestUser::create();
    let (user, other) = (account.name.clone(), unique_name("gr"));
    let (d, pamd) = start(
        Daemon::builder()
            .user(&user, &mobile(1))
            .user(&other, &mobile(2))
            .section("policy", "grace_seconds = 60"),
    );
    let alone = "pol-grace";
    pamd.write(alone, &module_line("required", &d.socket(), OPTS));
    prompted(&d, &pamd, alone, &user, Items::rhost("192.0.2.10"));
    grace_skipped(&d, &pamd, alone, &user, Items::rhost("192.0.2.10"));
    grace_skipped(&d, &pamd, alone, &user, Items::rhost("192.0.2.10"));
    // Another host is not covered ...
    prompted(&d, &pamd, alone, &user, Items::rhost("192.0.2.11"));
    // ... nor another user from the covered host, nor a login without
    // PAM_RHOST.
    prompted(&d, &pamd, alone, &other, Items::rhost("192.0.2.10"));
    prompted(&d, &pamd, alone, &user, Items::default());
    assert_eq!(d.outbox().count(), 4);
    d.assert_log_clean(&[]);
}

#[test]
fn grace_period_off_by_default() {
    let user = unique_name("gd");
    let (d, pamd) = start(Daemon::builder().user(&user, &mobile(1)));
    let alone = "pol-nograce";
    pamd.write(alone, &module_line("required", &d.socket(), OPTS));
    prompted(&d, &pamd, alone, &user, Items::rhost("192.0.2.10"));
    prompted(&d, &pamd, alone, &user, Items::rhost("192.0.2.10"));
    d.assert_log_clean(&[]);
}

/// sudo-style services are keyed on the terminal, not the remote host.
#[test]
fn grace_period_for_sudo_is_per_tty() {
    let account = TestUser::create();
    let user = account.name.clone();
    let sudo = "sudo-pol";
    let (d, pamd) = start(
        Daemon::builder()
            .user(&user, &mobile(1))
            .section(&format!("service.{sudo}"), "grace_seconds = 60"),
    );
    pamd.write(sudo, &module_line("required", &d.socket(), OPTS));
    let tty7 = Items {
        rhost: Some("192.0.2.1"),
        tty: Some("/dev/pts/7"),
    };
    let tty7_other_host = Items {
        rhost: Some("198.51.100.1"),
        tty: Some("/dev/pts/7"),
    };
    let tty8 = Items {
        rhost: Some("192.0.2.1"),
        tty: Some("/dev/pts/8"),
    };
    prompted(&d, &pamd, sudo, &user, tty7);
    grace_skipped(&d, &pamd, sudo, &user, tty7);
    grace_skipped(&d, &pamd, sudo, &user, tty7_other_host);
    prompted(&d, &pamd, sudo, &user, tty8);
    // Without a terminal there is nothing to key on.
    prompted(&d, &pamd, sudo, &user, Items::rhost("192.0.2.1"));
    // The default policy (grace 0) still applies to other services.
    prompted(&d, &pamd, SERVICE, &user, tty7);
    d.assert_log_clean(&[]);
}

#[test]
fn opt_out_where_codes_are_optional() {
    require_root("creates a local user and runs smsotpctl as that user");
    let u = TestUser::create();
    let (uid, gid) = ids(&u.name);
    let strict = "pol-strict";
    let (d, pamd) = start(
        Daemon::builder()
            .user(&u.name, &mobile(1))
            .section("policy", "mandatory = false")
            .section(&format!("service.{strict}"), "mandatory = true"),
    );
    pamd.smsotp_service(strict, &d.socket(), OPTS);
    prompted(&d, &pamd, SERVICE, &u.name, Items::default());

    // Opting out takes the code sent to the phone (read from stdin here).
    let outbox = d.outbox();
    let sent = outbox.count();
    let ran = Ctl::new(&d.socket())
        .as_user(&u.name)
        .run_answering(&["opt-out"], move || outbox.nth(sent + 1).code());
    ran.expect_code(0);
    assert_eq!(status_json(&d.socket(), &u.name)["opted_out"], true);
    assert_ignored(&d, &pamd, SERVICE, &u.name, Items::default(), "opted-out");
    // Where codes are mandatory the opt-out does not count.
    prompted(&d, &pamd, strict, &u.name, Items::default());

    let ran = ctl_as(uid, gid, &d.socket(), &["opt-in"]);
    ran.expect_code(0);
    assert_eq!(status_json(&d.socket(), &u.name)["opted_out"], false);
    prompted(&d, &pamd, SERVICE, &u.name, Items::default());
    assert!(
        !events(&d, "opted_out", &u.name, &[]).is_empty(),
        "opt-out is audited:\n{}",
        d.log()
    );
    d.assert_log_clean(&[]);
}

#[test]
fn opt_out_refused_where_codes_are_mandatory() {
    require_root("creates a local user and runs smsotpctl as that user");
    let u = TestUser::create();
    let (uid, gid) = ids(&u.name);
    let other = unique_name("oo");
    let (d, pamd) = start(
        Daemon::builder()
            .user(&u.name, &mobile(1))
            .user(&other, &mobile(2)),
    );
    let ran = ctl_as(uid, gid, &d.socket(), &["opt-out"]);
    ran.expect_code(1);
    assert!(
        ran.stderr.contains("mandatory"),
        "the refusal says why: {ran:?}"
    );
    assert_eq!(status_json(&d.socket(), &u.name)["opted_out"], false);
    prompted(&d, &pamd, SERVICE, &u.name, Items::default());
    d.assert_log_clean(&[]);
}

#[test]
fn a_user_cannot_opt_out_someone_else() {
    require_root("creates a local user and runs smsotpctl as that user");
    let u = TestUser::create();
    let (uid, gid) = ids(&u.name);
    let victim = unique_name("vi");
    let (d, pamd) = start(
        Daemon::builder()
            .user(&u.name, &mobile(1))
            .user(&victim, &mobile(2))
            .section("policy", "mandatory = false"),
    );
    let ran = ctl_as(uid, gid, &d.socket(), &["opt-out", "--user", &victim]);
    ran.expect_code(1);
    assert_eq!(status_json(&d.socket(), &victim)["opted_out"], false);
    prompted(&d, &pamd, SERVICE, &victim, Items::default());
    d.assert_log_clean(&[]);
}
