//! The built Debian package, and installing it into a [`Container`] (a minimal
//! Debian 12 with the package's dependencies).

use crate::container::Container;
use crate::outbox::Outbox;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The .deb under test: `SMSOTP_DEB` (scripts/test.sh builds it once with
/// lintian), else built here from the release artefacts, once per process.
pub fn built() -> PathBuf {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        if let Some(deb) = std::env::var_os("SMSOTP_DEB") {
            return PathBuf::from(deb);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = root.join("target/deb-test");
        let started = Instant::now();
        let output = Command::new("timeout")
            .args(["600", "bash"])
            .arg(root.join("packaging/deb/build.sh"))
            .arg("--no-build")
            .arg("--out")
            .arg(&out)
            .stdin(Stdio::null())
            .output()
            .expect("run build.sh");
        assert!(
            output.status.success(),
            "build.sh failed (run `cargo build --release` first):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!("build.sh took {:?}", started.elapsed());
        let stdout = String::from_utf8_lossy(&output.stdout);
        PathBuf::from(
            stdout
                .lines()
                .last()
                .expect("build.sh prints the .deb")
                .trim(),
        )
    })
    .clone()
}

/// Where [`install`] puts the .deb inside the container.
pub const IN_CONTAINER: &str = "/root/smsotp.deb";

/// Copies the .deb in and installs it with `dpkg -i`, which fails if a
/// dependency is missing: the cached image holds them (there is no mirror
/// inside, and apt 2.6 cannot install a local .deb without package lists).
/// Returns dpkg's output.
pub fn install(c: &Container) -> String {
    std::fs::copy(built(), c.path(IN_CONTAINER)).expect("copy the .deb in");
    let started = Instant::now();
    let out = c.sh(&format!(
        "DEBIAN_FRONTEND=noninteractive dpkg -i {IN_CONTAINER} 2>&1"
    ));
    eprintln!("dpkg -i smsotp.deb took {:?}", started.elapsed());
    out
}

/// Every path in the container that mentions smsotp, except what the tests
/// themselves add (`/etc/pam.d/smsotp-test*`, the .deb in /root).
pub fn leftovers(c: &Container) -> BTreeSet<String> {
    c.sh("find /etc /usr /lib /var/lib /run -xdev -name '*smsotp*' 2>/dev/null || true")
        .lines()
        .filter(|p| !p.starts_with("/etc/pam.d/smsotp-test"))
        .map(str::to_string)
        .collect()
}

/// A login through pamtester inside the container, for `service`: answers
/// the password prompt (if `password`) at once and the code prompt with what
/// `code_for` finds once the SMS is out. Returns pamtester's output after
/// asserting success and that the code prompt appeared.
pub fn login(
    c: &Container,
    service: &str,
    user: &str,
    password: Option<&str>,
    code_for: impl FnOnce() -> String,
) -> String {
    let mut child = c
        .command("pamtester")
        .args([service, user, "authenticate"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pamtester");
    let mut stdin = child.stdin.take().expect("stdin");
    if let Some(pw) = password {
        writeln!(stdin, "{pw}").expect("answer the password prompt");
    }
    let code = code_for();
    writeln!(stdin, "{code}").expect("answer the code prompt");
    drop(stdin);
    let out = child.wait_with_output().expect("pamtester");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "login as {user} failed:\n{text}");
    assert!(text.contains("Code sent to"), "no code prompt:\n{text}");
    text
}

/// The installed config's `outbox` provider file, seen from the host.
fn outbox(c: &Container) -> Outbox {
    Outbox::new(c.path("/var/lib/smsotp/outbox.jsonl"))
}

/// How many SMS the outbox holds.
pub fn sent(c: &Container) -> usize {
    outbox(c).count()
}

/// The code in the SMS after the first `before`, once it is there.
pub fn next_code(c: &Container, before: usize) -> String {
    outbox(c)
        .wait_for(before + 1, Duration::from_secs(15))
        .pop()
        .expect("an SMS")
        .code()
}
