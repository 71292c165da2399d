//! A real OpenSSH `sshd` on 127.0.0.1 with its own config, host key and PAM
//! service, and an `ssh` client under a pty.
//!
//! Debian's sshd names its PAM service after `basename(argv[0])`, so the
//! fixture runs a copy of `/usr/sbin/sshd` called after the test's service
//! (e.g. `sshd-smsotp-test`). The service file lives in a [`PrivateEtc`],
//! so the host's `/etc/pam.d` is never touched. Drop stops sshd by its
//! process group (SIGTERM, then SIGKILL) and removes everything.

use crate::nsetc::PrivateEtc;
use crate::pty::Pty;
use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Sshd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub port: u16,
    pub service: String,
}

/// `sshd_config` for a password + code login of `user` only.
pub fn default_config(dir: &Path, port: u16, user: &str) -> String {
    format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/hostkey\nPidFile {dir}/sshd.pid\n\
         UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\n\
         PubkeyAuthentication no\nAuthenticationMethods keyboard-interactive\nAllowUsers {user}\n\
         StrictModes no\nUseDNS no\nLogLevel VERBOSE\nLoginGraceTime 60\nMaxAuthTries 3\n\
         PrintMotd no\nPrintLastLog no\n",
        dir = dir.display()
    )
}

impl Sshd {
    /// Starts sshd as PAM service `service` (whose file must already be in
    /// `etc`) for `user`; `extra` lines go at the top of sshd_config (the
    /// first value of a keyword wins).
    pub fn start(etc: &PrivateEtc, service: &str, user: &str, extra: &str) -> Sshd {
        crate::require_root("sshd binds a port and runs PAM as root");
        assert!(
            etc.dir().join("pam.d").join(service).is_file(),
            "write /etc/pam.d/{service} into the PrivateEtc first (else libpam falls back to `other`)"
        );
        let mut dir = tempfile::Builder::new()
            .prefix("smsotp-sshd-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        // Privilege separation directory of the installed openssh-server
        // (systemd-tmpfiles makes it at boot; containers may lack it).
        let _ = fs::create_dir_all("/run/sshd");
        let key = dir.path().join("hostkey");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .output()
            .expect("run ssh-keygen");
        assert!(out.status.success(), "ssh-keygen: {out:?}");
        let binary = dir.path().join(service);
        fs::copy("/usr/sbin/sshd", &binary).expect("copy sshd");
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let config = dir.path().join("sshd_config");
            fs::write(
                &config,
                format!("{extra}\n{}", default_config(dir.path(), port, user)),
            )
            .expect("write sshd_config");
            let log = dir.path().join("sshd.log");
            let _ = fs::remove_file(&log);
            let mut cmd = etc.command(&binary);
            cmd.arg("-D")
                .arg("-f")
                .arg(&config)
                .arg("-E")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .process_group(0);
            let child = cmd.spawn().expect("start sshd");
            let mut sshd = Sshd {
                dir,
                child: Some(child),
                port,
                service: service.to_string(),
            };
            match sshd.wait_ready() {
                Ok(()) => return sshd,
                Err(e) => {
                    last = e;
                    sshd.stop();
                    dir = std::mem::replace(
                        &mut sshd.dir,
                        tempfile::tempdir().expect("placeholder temp dir"),
                    );
                }
            }
        }
        panic!("sshd did not start: {last}");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let mut err = String::new();
                if let Some(mut e) = self.child.take().and_then(|mut c| c.stderr.take()) {
                    let _ = e.read_to_string(&mut err);
                }
                return Err(format!(
                    "sshd exited ({status}): {err}\nlog:\n{}",
                    self.log()
                ));
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut banner = [0u8; 4];
                if s.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no SSH banner on port {} within {START_TIMEOUT:?}\nlog:\n{}",
                    self.port,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("sshd.log")
    }

    pub fn log(&self) -> String {
        fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits (at most 5 s) for `needle` in sshd's log.
    pub fn wait_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ssh user@127.0.0.1 -p PORT COMMAND...` under a pty,
    /// keyboard-interactive only, no config files, no host-key questions.
    pub fn ssh(&self, user: &str, command: &[&str]) -> Pty {
        let mut cmd = Command::new("ssh");
        cmd.args(["-F", "/dev/null", "-p"])
            .arg(self.port.to_string())
            .args([
                "-o",
                "PreferredAuthentications=keyboard-interactive",
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "NumberOfPasswordPrompts=1",
                "-o",
                "BatchMode=no",
            ])
            .arg(format!("{user}@127.0.0.1"))
            .args(command)
            .env_remove("SSH_AUTH_SOCK");
        Pty::spawn(&mut cmd)
    }

    /// SIGTERM to sshd's process group, SIGKILL after 3 s; reaps it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pgid = child.id() as libc::pid_t;
        // SAFETY: signalling the process group sshd leads (process_group(0)).
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above; whatever is left of the group goes.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port that was free a moment ago (the caller retries on a race).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}
