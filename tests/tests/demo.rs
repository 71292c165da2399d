//! The README's first command, then the suite's PAM tests, on one machine:
//! a fresh Debian 12 with a real systemd and no sudo installed (a container,
//! tests/src/container.rs, with this checkout bound read-only at its own
//! path). As root: `bash scripts/demo.sh` installs and starts smsotp; the
//! login, sshd and console test binaries that cargo built then run there
//! beside it and must pass without touching it (same config, same daemon
//! still answering); `bash scripts/demo.sh --uninstall` then leaves nothing.
//!
//! Needs the release artefacts (the demo installs them) and the other test
//! binaries built (`cargo build --workspace --all-targets`, as
//! scripts/test.sh does before it runs any test).

use smsotp_tests::container::{self, Container};
use smsotp_tests::paths;
use std::path::{Path, PathBuf};

/// The newest `NAME-<hash>` test binary cargo built for this profile.
fn test_binary(name: &str) -> PathBuf {
    let deps = paths::target_dir().join("deps");
    std::fs::read_dir(&deps)
        .expect("target deps")
        .flatten()
        .filter(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            file.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|hash| hash.len() == 16 && !hash.contains('.'))
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .unwrap_or_else(|| {
            panic!(
                "no {name} test binary in {}: run `cargo build --workspace --all-targets` first",
                deps.display()
            )
        })
}

/// What must not change while the tests run: the demo's config, its
/// daemon's pid, the installed module.
const SNAPSHOT: &str = "md5sum /etc/smsotp/smsotpd.toml /etc/smsotp/users.toml \
    /etc/pam.d/smsotp-demo /lib/*/security/pam_smsotp.so; cat /run/smsotp/smsotpd.pid";

#[test]
fn demo_then_the_pam_tests_on_the_same_machine() {
    if container::skip("demo_then_the_pam_tests_on_the_same_machine") {
        return;
    }
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("checkout")
        .canonicalize()
        .expect("checkout path");
    let release = checkout.join("target/release/smsotpd");
    assert!(
        release.exists(),
        "{} missing: cargo build --release first",
        release.display()
    );
    let binaries: Vec<PathBuf> = ["login", "sshd", "console"]
        .iter()
        .map(|n| test_binary(n))
        .collect();
    let c = Container::boot_with("demo", &[&checkout]);
    let cd = format!("export HOME=/root; cd '{}'", checkout.display());
    assert!(
        !c.run(&["sh", "-c", "command -v sudo"]).status.success(),
        "the point is a machine without sudo"
    );

    let demo = c.sh(&format!(
        "{cd} && bash scripts/demo.sh --no-build --non-interactive 2>&1"
    ));
    assert!(demo.contains("OK: accepted"), "{demo}");
    let before = c.sh(SNAPSHOT);

    for bin in &binaries {
        let out = c.run(&[
            "sh",
            "-c",
            &format!("{cd} && '{}' --test-threads=2 2>&1", bin.display()),
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("test result: ok"),
            "{} beside the demo's install:\n{text}",
            bin.display()
        );
        let summary = text.lines().find(|l| l.starts_with("test result"));
        eprintln!("{}: {}", bin.display(), summary.unwrap_or_default());
    }

    assert_eq!(
        c.sh(SNAPSHOT),
        before,
        "the tests touched the demo's install"
    );
    c.sh("kill -0 $(cat /run/smsotp/smsotpd.pid) && /usr/local/sbin/smsotpctl ping");

    let undo = c.sh(&format!("{cd} && bash scripts/demo.sh --uninstall 2>&1"));
    let left = c.sh(
        "ls -d /etc/smsotp /run/smsotp /usr/local/sbin/smsotp* /lib/*/security/pam_smsotp.so \
         /etc/pam.d/smsotp-demo 2>/dev/null || true",
    );
    assert!(left.trim().is_empty(), "--uninstall left {left}\n{undo}");
}
