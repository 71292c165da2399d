//! The Debian package end to end: build it (packaging/deb/build.sh), `dpkg
//! -i`, use it (the installed smsotpd started by hand, without systemd; a
//! login through the installed module by its bare name; the pam-auth-update
//! profile enabled inside a private mount namespace only), `dpkg -r`,
//! `dpkg -P`, and check that nothing is left.
//!
//! Refuses to run when smsotp is already installed on this machine. A guard
//! purges the package and stops the daemon on every exit path.

use smsotp_tests::flows::{assert_code_prompted, code_prompt};
use smsotp_tests::libpam::{self, PAM_SUCCESS};
use smsotp_tests::outbox::Outbox;
use smsotp_tests::pamd::PamConfDir;
use smsotp_tests::require_root;
use smsotp_tests::users::TestUser;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const MOBILE: &str = "+15553332211";
const SOCKET: &str = "/run/smsotp/smsotpd.sock";

fn run(cmd: &mut Command) -> Output {
    let what = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn dpkg_status() -> String {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "smsotp"])
        .output()
        .expect("dpkg-query");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn multiarch() -> String {
    let out = run(Command::new("dpkg-architecture").arg("-qDEB_HOST_MULTIARCH"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every path under the roots whose name mentions smsotp, except the
/// scratch files of tests (which may run concurrently).
fn smsotp_paths() -> BTreeSet<String> {
    let out = Command::new("find")
        .args([
            "/etc", "/usr", "/lib", "/var/lib", "/run", "-xdev", "-name", "*smsotp*",
        ])
        .output()
        .expect("find");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|p| !p.contains("smsotp-e2e-") && !p.contains("smsotpt") && !p.contains("-test"))
        .map(str::to_string)
        .collect()
}

/// Purges the package (and stops our daemon) however the test ends.
struct Installed {
    daemon: Option<Child>,
    installed: bool,
}

impl Installed {
    fn stop_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        self.stop_daemon();
        if self.installed {
            let _ = Command::new("dpkg").args(["-P", "smsotp"]).status();
        }
    }
}

fn build_deb(out: &Path) -> PathBuf {
    if let Some(deb) = std::env::var_os("SMSOTP_DEB") {
        return PathBuf::from(deb);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let started = Instant::now();
    let output = run(Command::new("timeout")
        .args(["600", "bash"])
        .arg(root.join("packaging/deb/build.sh"))
        .arg("--no-build")
        .arg("--out")
        .arg(out));
    eprintln!("build.sh took {:?}", started.elapsed());
    let stdout = String::from_utf8_lossy(&output.stdout);
    PathBuf::from(
        stdout
            .lines()
            .last()
            .expect("build.sh prints the .deb")
            .trim(),
    )
}

fn wait_for_daemon(child: &mut Child, log: &Path) {
    let log_text = || fs::read_to_string(log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the installed smsotpd exited: {status}\n{}", log_text());
        }
        if smsotp_proto::Client::connect(Path::new(SOCKET), Duration::from_millis(500), "deb-test")
            .is_ok()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "installed smsotpd did not answer on {SOCKET}:\n{}",
            log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Enables the profile with pam-auth-update inside a private mount
/// namespace (copies of /etc/pam.d and /var/lib/pam) and returns the
/// common-auth it wrote. The host's files are not touched.
fn common_auth_with_profile() -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    run(Command::new("cp")
        .arg("-a")
        .arg("/etc/pam.d")
        .arg(dir.path().join("pam.d")));
    run(Command::new("cp")
        .arg("-a")
        .arg("/var/lib/pam")
        .arg(dir.path().join("varlibpam")));
    let out = run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
        .arg(
            "set -e; mount --bind \"$1/pam.d\" /etc/pam.d; mount --bind \"$1/varlibpam\" /var/lib/pam; \
             DEBIAN_FRONTEND=noninteractive pam-auth-update --enable smsotp >&2; cat /etc/pam.d/common-auth",
        )
        .arg("sh")
        .arg(dir.path()));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn deb_install_use_remove_purge() {
    require_root("dpkg -i");
    let status = dpkg_status();
    assert!(
        status.is_empty() || status.contains("not-installed"),
        "smsotp is already installed here ({status}); this test installs and purges it, so it refuses to run"
    );
    assert!(
        !Path::new(SOCKET).exists(),
        "{SOCKET} exists: another smsotpd runs here; refusing to interfere"
    );
    let scratch = tempfile::tempdir().expect("tempdir");
    let deb = build_deb(scratch.path());
    let size = fs::metadata(&deb).expect("the .deb").len();
    eprintln!("{}: {size} bytes", deb.display());

    let before = smsotp_paths();
    let common_auth_before = fs::read_to_string("/etc/pam.d/common-auth").unwrap_or_default();
    let seen_before = fs::read_to_string("/var/lib/pam/seen").unwrap_or_default();

    // --- install ---
    let mut guard = Installed {
        daemon: None,
        installed: true,
    };
    let started = Instant::now();
    run(Command::new("dpkg")
        .arg("-i")
        .arg(&deb)
        .env("DEBIAN_FRONTEND", "noninteractive"));
    eprintln!("dpkg -i took {:?}", started.elapsed());
    assert_eq!(dpkg_status(), "install ok installed");

    let module = PathBuf::from(format!("/lib/{}/security/pam_smsotp.so", multiarch()));
    for (path, mode) in [
        (module.clone(), 0o644),
        ("/usr/sbin/smsotpd".into(), 0o755),
        ("/usr/sbin/smsotpctl".into(), 0o755),
        ("/etc/smsotp/smsotpd.toml".into(), 0o600),
        ("/etc/smsotp/users.toml".into(), 0o600),
        ("/lib/systemd/system/smsotpd.service".into(), 0o644),
        ("/usr/share/pam-configs/smsotp".into(), 0o644),
        ("/usr/share/man/man8/smsotpd.8.gz".into(), 0o644),
        ("/usr/share/man/man8/smsotpctl.8.gz".into(), 0o644),
        ("/usr/share/man/man8/pam_smsotp.8.gz".into(), 0o644),
        (
            "/usr/share/bash-completion/completions/smsotpctl".into(),
            0o644,
        ),
        ("/usr/share/zsh/vendor-completions/_smsotpctl".into(), 0o644),
    ] {
        let meta = fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            mode,
            "{}",
            path.display()
        );
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "{}", path.display());
    }
    let conffiles = fs::read_to_string("/var/lib/dpkg/info/smsotp.conffiles").expect("conffiles");
    assert!(
        conffiles.contains("/etc/smsotp/smsotpd.toml"),
        "{conffiles}"
    );
    assert!(conffiles.contains("/etc/smsotp/users.toml"), "{conffiles}");
    // The profile is installed but NOT enabled: no stack changed.
    assert_eq!(
        fs::read_to_string("/etc/pam.d/common-auth").unwrap_or_default(),
        common_auth_before,
        "installing must not change common-auth"
    );
    let meta = fs::metadata("/var/lib/smsotp").expect("/var/lib/smsotp");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o700);

    // --- use it: the installed daemon by hand, the installed module by name ---
    let user = TestUser::create();
    let mut users = fs::OpenOptions::new()
        .append(true)
        .open("/etc/smsotp/users.toml")
        .expect("users.toml");
    std::io::Write::write_all(
        &mut users,
        format!("\"{}\" = \"{MOBILE}\"\n", user.name).as_bytes(),
    )
    .expect("append user");
    drop(users);
    run(Command::new("/usr/sbin/smsotpd").args([
        "--config",
        "/etc/smsotp/smsotpd.toml",
        "--check-config",
    ]));
    let log = fs::File::create(scratch.path().join("smsotpd.log")).expect("log");
    let child = Command::new("/usr/sbin/smsotpd")
        .args(["--config", "/etc/smsotp/smsotpd.toml"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .spawn()
        .expect("start the installed smsotpd");
    guard.daemon = Some(child);
    wait_for_daemon(
        guard.daemon.as_mut().expect("child"),
        &scratch.path().join("smsotpd.log"),
    );
    run(Command::new("/usr/sbin/smsotpctl").arg("ping"));

    let outbox = Outbox::new("/var/lib/smsotp/outbox.jsonl");
    let pamd = PamConfDir::new();
    pamd.write(
        "deb-permit",
        "auth required pam_permit.so\nauth required pam_smsotp.so timeout=10\naccount required pam_permit.so\n",
    );
    let outcome = libpam::authenticate("deb-permit", &user.name, pamd.path(), |_| {
        Some(outbox.last().code())
    });
    outcome.assert_code(PAM_SUCCESS);
    assert_code_prompted(&outcome);
    assert_eq!(
        outcome.transcript.code_prompts(),
        vec![code_prompt(MOBILE, "5 min", true)]
    );

    // The pam-auth-update profile, enabled in a private namespace, yields a
    // common-auth that asks for the password and then the code.
    let common_auth = common_auth_with_profile();
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
    assert!(
        common_auth.lines().any(|l| l.starts_with("auth")
            && l.contains("required")
            && l.contains("pam_smsotp.so")),
        "{common_auth}"
    );
    // The stack inline: Linux-PAM 1.5.2 resolves `@include` against
    // /etc/pam.d even under pam_start_confdir, which would read the host's
    // common-auth (without the module) instead of this one.
    pamd.write(
        "deb-common",
        &format!("{common_auth}\naccount required pam_permit.so\n"),
    );
    let sent_before = outbox.count();
    let outcome = libpam::authenticate("deb-common", &user.name, pamd.path(), |p| {
        Some(if p.text == "Password: " {
            user.password.clone()
        } else {
            outbox
                .wait_for(sent_before + 1, Duration::from_secs(5))
                .pop()
                .expect("sms")
                .code()
        })
    });
    outcome.assert_code(PAM_SUCCESS);
    assert_code_prompted(&outcome);
    assert_eq!(outcome.transcript.prompts()[0], "Password: ");

    // doctor, run from the package, sees the module, the config and the daemon.
    let out = Command::new("/usr/sbin/smsotpctl")
        .args(["doctor", "--json", "--no-sshd", "--service", "deb-none"])
        .output()
        .expect("doctor");
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

    // --- remove: programs go, configuration stays ---
    guard.stop_daemon();
    run(Command::new("dpkg").args(["-r", "smsotp"]));
    assert_eq!(dpkg_status(), "deinstall ok config-files");
    assert!(!module.exists() && !Path::new("/usr/sbin/smsotpd").exists());
    assert!(
        Path::new("/etc/smsotp/smsotpd.toml").exists(),
        "dpkg -r keeps conffiles"
    );

    // --- purge: nothing left ---
    run(Command::new("dpkg").args(["-P", "smsotp"]));
    guard.installed = false;
    let status = dpkg_status();
    assert!(
        status.is_empty() || status.contains("not-installed"),
        "{status}"
    );
    let after = smsotp_paths();
    assert_eq!(after, before, "purge left (or removed) files");
    for gone in ["/etc/smsotp", "/var/lib/smsotp", "/run/smsotp"] {
        assert!(!Path::new(gone).exists(), "{gone} survived the purge");
    }
    assert_eq!(
        fs::read_to_string("/etc/pam.d/common-auth").unwrap_or_default(),
        common_auth_before
    );
    assert_eq!(
        fs::read_to_string("/var/lib/pam/seen").unwrap_or_default(),
        seen_before
    );
}
