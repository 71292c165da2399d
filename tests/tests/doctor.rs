//! `smsotpctl doctor` against a fixture root (`--root`) that starts healthy
//! and is then broken one way at a time, with the real `sshd -T -f` and a
//! real daemon socket. Each broken fixture must give its check, a fix, and
//! exit code 1; warnings alone keep exit code 0.

use smsotp_tests::daemon::Daemon;
use smsotp_tests::{paths, require_root};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const COMMON_AUTH: &str = "auth [success=1 default=ignore] pam_unix.so\nauth requisite pam_deny.so\nauth required pam_permit.so\n";
const GOOD_STACK: &str =
    "@include common-auth\nauth required pam_smsotp.so\naccount required pam_permit.so\n";

struct Fixture {
    root: tempfile::TempDir,
    daemon: Daemon,
}

fn write(path: PathBuf, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

impl Fixture {
    fn new() -> Fixture {
        require_root("sshd -T reads host keys; the daemon socket");
        let root = tempfile::Builder::new()
            .prefix("smsotp-doctor-")
            .tempdir_in("/tmp")
            .unwrap();
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let r = root.path();
        let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
        let module = r.join(format!("lib/{multiarch}/security/pam_smsotp.so"));
        fs::create_dir_all(module.parent().unwrap()).unwrap();
        fs::copy(paths::pam_module(), &module).unwrap();
        fs::set_permissions(&module, fs::Permissions::from_mode(0o644)).unwrap();
        write(r.join("etc/pam.d/common-auth"), COMMON_AUTH, 0o644);
        write(r.join("etc/pam.d/sshd"), GOOD_STACK, 0o644);
        write(r.join("etc/pam.d/sudo"), GOOD_STACK, 0o644);
        write(
            r.join("etc/pam.d/other"),
            "auth required pam_deny.so\n",
            0o644,
        );
        write(
            r.join("etc/smsotp/smsotpd.toml"),
            "users_file = \"/etc/smsotp/users.toml\"\n[[provider]]\ntype = \"outbox\"\npath = \"/var/lib/smsotp/outbox.jsonl\"\n",
            0o600,
        );
        write(
            r.join("etc/smsotp/users.toml"),
            "[users]\nalice = \"+15551234567\"\n",
            0o600,
        );
        let key = r.join("etc/ssh/hostkey");
        fs::create_dir_all(key.parent().unwrap()).unwrap();
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let fx = Fixture {
            root,
            daemon: Daemon::builder().start(),
        };
        fx.sshd_config("");
        // sshd -T insists on its privilege separation directory.
        let _ = fs::create_dir_all("/run/sshd");
        fx
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// `extra` comes first: for sshd the first value of a keyword wins.
    fn sshd_config(&self, extra: &str) {
        write(
            self.path("etc/ssh/sshd_config"),
            &format!(
                "{extra}\nHostKey {}\nUsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\n\
                 PubkeyAuthentication yes\nAuthenticationMethods keyboard-interactive\n",
                self.path("etc/ssh/hostkey").display()
            ),
            0o600,
        );
    }

    /// Runs doctor; returns (exit code, report JSON).
    fn doctor(&self, socket: &Path) -> (i32, serde_json::Value) {
        let out = Command::new(paths::smsotpctl())
            .arg("--config")
            .arg("/etc/smsotp/smsotpd.toml")
            .arg("--socket")
            .arg(socket)
            .args(["--json", "doctor", "--root"])
            .arg(self.root.path())
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "doctor --json ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), report)
    }

    fn run(&self) -> (i32, serde_json::Value) {
        self.doctor(&self.daemon.socket())
    }
}

fn has(report: &serde_json::Value, check: &str, severity: &str) -> bool {
    report["findings"].as_array().unwrap().iter().any(|f| {
        f["check"] == check
            && f["severity"] == severity
            && (severity != "error" || f["fix"].is_string())
    })
}

#[track_caller]
fn assert_problem(fx: &Fixture, check: &str) {
    let (code, report) = fx.run();
    assert_eq!(code, 1, "{check}: {report:#}");
    assert!(has(&report, check, "error"), "{check} missing: {report:#}");
}

#[test]
fn healthy_fixture_passes() {
    let fx = Fixture::new();
    let (code, report) = fx.run();
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["healthy"], true);
    for ok in [
        "module.installed",
        "config.ok",
        "pam.ok",
        "sshd.ok",
        "daemon.up",
    ] {
        assert!(has(&report, ok, "ok"), "{ok}: {report:#}");
    }
    // The text form says the same.
    let out = Command::new(paths::smsotpctl())
        .arg("--socket")
        .arg(fx.daemon.socket())
        .args(["doctor", "--root"])
        .arg(fx.root.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("smsotp doctor: healthy"));
}

#[test]
fn broken_pam_stacks() {
    let fx = Fixture::new();
    let sshd = fx.path("etc/pam.d/sshd");
    for (stack, check) in [
        ("@include common-auth\nauth sufficient pam_smsotp.so\n", "pam.sufficient"),
        ("@include common-auth\nauth optional pam_smsotp.so\n", "pam.optional"),
        ("@include common-auth\n", "pam.module-absent"),
        ("auth sufficient pam_unix.so\nauth required pam_smsotp.so\n", "pam.sufficient-before"),
        ("auth [success=done default=ignore] pam_unix.so\nauth required pam_smsotp.so\n", "pam.sufficient-before"),
        ("auth [success=1 default=ignore] pam_unix.so\nauth required pam_smsotp.so\nauth required pam_permit.so\n", "pam.jump-over"),
        ("auth required pam_unix.so\nauth required pam_smsotp.so\n", "pam.code-after-failed-password"),
        ("@include common-auth\nauth required pam_smsotp.so socket=/run/elsewhere.sock\n", "pam.socket-mismatch"),
        ("@include common-auth\nauth required /nonexistent/pam_smsotp.so\n", "pam.module-file-missing"),
    ] {
        write(sshd.clone(), stack, 0o644);
        assert_problem(&fx, check);
    }
    write(sshd.clone(), GOOD_STACK, 0o644);
    // No /etc/pam.d/sudo: libpam would run `other` for sudo, a hole only
    // where sudo is installed (under --root: the fixture's /usr/bin/sudo).
    fs::remove_file(fx.path("etc/pam.d/sudo")).unwrap();
    let (code, report) = fx.run();
    assert_eq!(code, 0, "{report:#}");
    assert!(has(&report, "pam.program-absent", "info"), "{report:#}");
    write(fx.path("usr/bin/sudo"), "#!/bin/sh\n", 0o4755);
    assert_problem(&fx, "pam.service-missing");
    fs::remove_file(fx.path("usr/bin/sudo")).unwrap();
    write(fx.path("etc/pam.d/sudo"), GOOD_STACK, 0o644);

    // Skips that are warnings, not errors: exit code stays 0.
    write(
        fx.path("etc/pam.d/common-auth"),
        &COMMON_AUTH.replace("pam_unix.so", "pam_unix.so nullok"),
        0o644,
    );
    write(
        sshd,
        "@include common-auth\nauth required pam_smsotp.so failmode=safe\n",
        0o644,
    );
    let (code, report) = fx.run();
    assert_eq!(code, 0, "{report:#}");
    assert!(has(&report, "pam.nullok", "warning"), "{report:#}");
    assert!(has(&report, "pam.failmode-safe", "warning"), "{report:#}");
}

#[test]
fn broken_sshd_config() {
    let fx = Fixture::new();
    for (extra, check) in [
        ("UsePAM no", "sshd.usepam"),
        // (with the default `keyboard-interactive` list sshd itself refuses it)
        (
            "KbdInteractiveAuthentication no\nAuthenticationMethods any",
            "sshd.kbdinteractive",
        ),
        ("AuthenticationMethods any", "sshd.publickey-alone"),
        (
            "AuthenticationMethods publickey,keyboard-interactive publickey",
            "sshd.publickey-alone",
        ),
        ("NoSuchKeyword yes", "sshd.unreadable"),
    ] {
        fx.sshd_config(extra);
        assert_problem(&fx, check);
    }
    fx.sshd_config("PasswordAuthentication yes");
    let (code, report) = fx.run();
    assert_eq!(code, 0, "{report:#}");
    assert!(has(&report, "sshd.password", "warning"), "{report:#}");
}

#[test]
fn broken_files_and_daemon() {
    let fx = Fixture::new();
    let conf = fx.path("etc/smsotp/smsotpd.toml");
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();
    assert_problem(&fx, "config.permissions");
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o600)).unwrap();
    let users = fx.path("etc/smsotp/users.toml");
    fs::set_permissions(&users, fs::Permissions::from_mode(0o666)).unwrap();
    assert_problem(&fx, "config.permissions");
    fs::set_permissions(&users, fs::Permissions::from_mode(0o600)).unwrap();
    let text = fs::read_to_string(&conf).unwrap();
    fs::write(&conf, format!("{text}\nno_such_key = 1\n")).unwrap();
    assert_problem(&fx, "config.invalid");
    fs::write(&conf, text).unwrap();

    // Daemon not running.
    let (code, report) = fx.doctor(&fx.path("run/smsotp/smsotpd.sock"));
    assert_eq!(code, 1);
    assert!(has(&report, "daemon.down", "error"), "{report:#}");

    // A socket in a directory anyone can write: someone else could answer.
    let open_dir = fx.path("run/open");
    fs::create_dir_all(&open_dir).unwrap();
    fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o777)).unwrap();
    let sock = open_dir.join("smsotpd.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o600)).unwrap();
    let (code, report) = fx.doctor(&sock);
    assert_eq!(code, 1);
    assert!(has(&report, "socket.directory", "error"), "{report:#}");
    assert!(has(&report, "socket.mode", "warning"), "{report:#}");

    // Module missing.
    let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
    fs::remove_file(fx.path(&format!("lib/{multiarch}/security/pam_smsotp.so"))).unwrap();
    assert_problem(&fx, "module.missing");
}

/// Which policy section each service that loads the module gets (the
/// family rule: `sudo-i` gets `[service.sudo]`), and a variant of a
/// protected service whose own stack does not load the module (Debian's
/// `sudo-i` includes common-auth, not `sudo`).
#[test]
fn policy_sections_and_unprotected_variants() {
    let fx = Fixture::new();
    let conf = fx.path("etc/smsotp/smsotpd.toml");
    let text = fs::read_to_string(&conf).unwrap();
    fs::write(
        &conf,
        format!("{text}\n[policy]\nenabled = false\n[service.sudo]\nenabled = true\n"),
    )
    .unwrap();
    write(fx.path("etc/pam.d/sudo-i"), GOOD_STACK, 0o644);
    let (code, report) = fx.run();
    assert_eq!(code, 0, "{report:#}");
    let policy = |subject: &str| -> (String, String) {
        let f = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == "pam.policy" && f["subject"] == subject)
            .unwrap_or_else(|| panic!("no pam.policy for {subject}: {report:#}"));
        (
            f["severity"].as_str().unwrap().to_string(),
            f["message"].as_str().unwrap().to_string(),
        )
    };
    let (sev, msg) = policy("/etc/pam.d/sudo-i");
    assert_eq!(sev, "info");
    assert!(msg.contains("[service.sudo] (the `sudo` family)"), "{msg}");
    let (sev, msg) = policy("/etc/pam.d/sshd");
    assert_eq!(sev, "info", "{msg}");
    assert!(
        msg.contains("[policy]") && msg.contains("enabled = false"),
        "{msg}"
    );

    write(fx.path("etc/pam.d/sudo-i"), "@include common-auth\n", 0o644);
    assert_problem(&fx, "pam.family-unprotected");
}
