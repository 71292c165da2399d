//! A private `/etc/pam.d` (and optionally `/etc/sudoers`) for programs that
//! read fixed paths: sshd, sudo, su and login.
//!
//! The fixture copies the host's `/etc/pam.d` into a temporary directory,
//! lets a test add service files there, and runs programs through
//! `unshare --mount --propagation private`, which bind-mounts the copy over
//! `/etc/pam.d` in a mount namespace of their own. The host's files are
//! never written, so nothing is left behind even when a test is killed; the
//! temporary directory goes away on drop.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

pub struct PrivateEtc {
    dir: tempfile::TempDir,
}

impl Default for PrivateEtc {
    fn default() -> Self {
        Self::new()
    }
}

impl PrivateEtc {
    pub fn new() -> PrivateEtc {
        crate::require_root("mount namespaces and bind mounts");
        let dir = tempfile::Builder::new()
            .prefix("smsotp-etc-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let out = Command::new("cp")
            .arg("-a")
            .arg("/etc/pam.d")
            .arg(dir.path().join("pam.d"))
            .output()
            .expect("run cp");
        assert!(out.status.success(), "cp -a /etc/pam.d: {out:?}");
        PrivateEtc { dir }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes the service file `name` into the private pam.d.
    pub fn pam_service(&self, name: &str, contents: &str) {
        assert_eq!(
            name,
            name.to_lowercase(),
            "libpam lower-cases service names"
        );
        let path = self.dir.path().join("pam.d").join(name);
        fs::write(&path, contents).expect("write pam service");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    }

    /// Uses `contents` as `/etc/sudoers` inside the namespace (0440,
    /// checked with `visudo -cf` first).
    pub fn sudoers(&self, contents: &str) {
        let path = self.dir.path().join("sudoers");
        fs::write(&path, contents).expect("write sudoers");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o440)).expect("chmod");
        let out = Command::new("visudo")
            .arg("-cf")
            .arg(&path)
            .output()
            .expect("run visudo");
        assert!(
            out.status.success(),
            "visudo -cf refuses the test sudoers:\n{contents}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `program` (then the caller's `.arg`s) in a mount namespace where
    /// `/etc/pam.d` (and `/etc/sudoers`, if set) are the private copies.
    /// unshare and sh both exec, so the child's pid is the program's.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg(
                "set -e; mount --bind \"$1/pam.d\" /etc/pam.d; \
                 if [ -f \"$1/sudoers\" ]; then mount --bind \"$1/sudoers\" /etc/sudoers; fi; \
                 shift; exec \"$@\"",
            )
            .arg("sh")
            .arg(self.dir.path())
            .arg(program);
        cmd
    }
}
