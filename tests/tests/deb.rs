//! The Debian package end to end, inside a Debian 12 container with a real
//! systemd (tests/src/container.rs), so a host where smsotp is installed
//! and running is never touched: `apt install ./smsotp.deb`, file modes and
//! conffiles, the installed daemon under systemd, a login through the
//! installed module by its bare name and through the pam-auth-update
//! profile's common-auth (password, then code), doctor, `dpkg -r`,
//! `dpkg -P`, and nothing left. The unit's own behaviour under systemd is
//! tests/tests/systemd.rs.

use smsotp_tests::container::{self, Container};
use smsotp_tests::debpkg;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

const MOBILE: &str = "+15553332211";

fn assert_mode(c: &Container, path: &str, mode: u32) {
    let meta = fs::metadata(c.path(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(meta.permissions().mode() & 0o7777, mode, "{path}");
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "{path}");
}

#[test]
fn deb_install_use_remove_purge() {
    if container::skip("deb_install_use_remove_purge") {
        return;
    }
    let deb = debpkg::built();
    eprintln!(
        "{}: {} bytes",
        deb.display(),
        fs::metadata(&deb).expect("the .deb").len()
    );
    let c = Container::boot("deb");
    let common_auth_before =
        fs::read_to_string(c.path("/etc/pam.d/common-auth")).expect("common-auth");
    let seen_before = fs::read_to_string(c.path("/var/lib/pam/seen")).unwrap_or_default();

    // --- install ---
    debpkg::install(&c);
    assert_eq!(
        c.sh("dpkg-query -W -f='${Status}' smsotp"),
        "install ok installed"
    );
    let module = c.sh("dpkg -L smsotp | grep '/security/pam_smsotp.so$'");
    let module = module.trim();
    for (path, mode) in [
        (module, 0o644),
        ("/usr/sbin/smsotpd", 0o755),
        ("/usr/sbin/smsotpctl", 0o755),
        ("/etc/smsotp/smsotpd.toml", 0o600),
        ("/etc/smsotp/users.toml", 0o600),
        ("/lib/systemd/system/smsotpd.service", 0o644),
        ("/lib/systemd/system/smsotpd.socket", 0o644),
        ("/lib/systemd/system/smsotpd-root.socket", 0o644),
        ("/usr/share/pam-configs/smsotp", 0o644),
        ("/usr/share/man/man8/smsotpd.8.gz", 0o644),
        ("/usr/share/man/man8/smsotpctl.8.gz", 0o644),
        ("/usr/share/man/man8/pam_smsotp.8.gz", 0o644),
        ("/usr/share/bash-completion/completions/smsotpctl", 0o644),
        ("/usr/share/zsh/vendor-completions/_smsotpctl", 0o644),
        ("/var/lib/smsotp", 0o700),
    ] {
        assert_mode(&c, path, mode);
    }
    let conffiles =
        fs::read_to_string(c.path("/var/lib/dpkg/info/smsotp.conffiles")).expect("conffiles");
    for f in ["/etc/smsotp/smsotpd.toml", "/etc/smsotp/users.toml"] {
        assert!(conffiles.contains(f), "{conffiles}");
    }
    // The profile is installed but NOT enabled: no stack changed.
    assert_eq!(
        fs::read_to_string(c.path("/etc/pam.d/common-auth")).expect("common-auth"),
        common_auth_before,
        "installing must not change common-auth"
    );

    // --- use it: the daemon under systemd, the module by its bare name ---
    c.sh(&format!(
        "useradd -m debuser && echo debuser:deb-pass-1 | chpasswd && \
         printf 'debuser = \"%s\"\\n' '{MOBILE}' >> /etc/smsotp/users.toml && \
         smsotpd --config /etc/smsotp/smsotpd.toml --check-config && \
         systemctl restart smsotpd && smsotpctl ping"
    ));
    c.write(
        "/etc/pam.d/smsotp-test-permit",
        "auth required pam_permit.so\nauth required pam_smsotp.so timeout=10\naccount required pam_permit.so\n",
        0o644,
    );
    let sent = debpkg::sent(&c);
    let text = debpkg::login(&c, "smsotp-test-permit", "debuser", None, || {
        debpkg::next_code(&c, sent)
    });
    assert!(text.contains("*******2211"), "{text}");

    // The pam-auth-update profile, enabled for real in the container: the
    // password first, then the code.
    c.sh("DEBIAN_FRONTEND=noninteractive pam-auth-update --enable smsotp");
    let common_auth = fs::read_to_string(c.path("/etc/pam.d/common-auth")).expect("common-auth");
    let permit = common_auth
        .find("pam_permit.so")
        .expect("pam_permit in common-auth");
    let sms = common_auth
        .find("pam_smsotp.so")
        .unwrap_or_else(|| panic!("profile not applied:\n{common_auth}"));
    assert!(
        sms > permit,
        "pam_smsotp.so must come after the password block:\n{common_auth}"
    );
    c.write(
        "/etc/pam.d/smsotp-test-common",
        "@include common-auth\naccount required pam_permit.so\n",
        0o644,
    );
    let sent = debpkg::sent(&c);
    let text = debpkg::login(
        &c,
        "smsotp-test-common",
        "debuser",
        Some("deb-pass-1"),
        || debpkg::next_code(&c, sent),
    );
    assert!(text.contains("Password:"), "{text}");

    // doctor, run from the package, sees the module, the config and the daemon.
    let out = c.run(&[
        "smsotpctl",
        "doctor",
        "--json",
        "--no-sshd",
        "--service",
        "deb-none",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("doctor --json");
    let checks: Vec<(String, String)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap_or("").into(),
                f["severity"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    for want in ["module.installed", "config.ok", "daemon.up"] {
        assert!(
            checks.contains(&(want.into(), "ok".into())),
            "{want}: {report:#}"
        );
    }

    // --- remove: programs go, configuration stays, the stack is restored ---
    c.sh("dpkg -r smsotp");
    assert_eq!(
        c.sh("dpkg-query -W -f='${Status}' smsotp"),
        "deinstall ok config-files"
    );
    assert!(!c.path(module).exists() && !c.path("/usr/sbin/smsotpd").exists());
    assert!(
        c.path("/etc/smsotp/smsotpd.toml").exists(),
        "dpkg -r keeps conffiles"
    );
    assert_eq!(
        fs::read_to_string(c.path("/etc/pam.d/common-auth")).expect("common-auth"),
        common_auth_before,
        "dpkg -r takes the module out of common-auth"
    );

    // --- purge: nothing left ---
    c.sh("dpkg -P smsotp");
    let status = c.sh("dpkg-query -W -f='${Status}' smsotp 2>/dev/null || true");
    assert!(
        status.is_empty() || status.contains("not-installed"),
        "{status}"
    );
    let left = debpkg::leftovers(&c);
    assert!(left.is_empty(), "purge left: {left:?}");
    assert_eq!(
        fs::read_to_string(c.path("/var/lib/pam/seen")).unwrap_or_default(),
        seen_before
    );
}
