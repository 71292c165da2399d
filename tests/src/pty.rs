//! A program under a pseudo-terminal, driven expect-style.
//!
//! `ssh`, `su`, `login` and `sudo` read passwords from their controlling
//! terminal, not from stdin, so the tests give them one: `openpty`, the
//! slave as stdin/stdout/stderr, `setsid` + `TIOCSCTTY` in the child. Every
//! wait has a deadline; on failure the panic shows everything the program
//! printed. Drop kills the child's whole process group and reaps it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Pty {
    master: File,
    child: Option<Child>,
    /// Everything read so far.
    output: String,
    /// `output[..seen]` has been consumed by earlier `expect`s.
    seen: usize,
    eof: bool,
    what: String,
}

impl Pty {
    /// Starts `cmd` on a new pty in its own session.
    pub fn spawn(cmd: &mut Command) -> Pty {
        let what = format!("{cmd:?}");
        let (mut m, mut s) = (-1, -1);
        // SAFETY: openpty writes two descriptors into m and s.
        let rc = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned here.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        // SAFETY: fcntl on our own descriptor.
        unsafe {
            let flags = libc::fcntl(m, libc::F_GETFL);
            libc::fcntl(m, libc::F_SETFL, flags | libc::O_NONBLOCK);
            libc::fcntl(m, libc::F_SETFD, libc::FD_CLOEXEC);
        }
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup pty slave"));
        cmd.stdin(stdio(&slave))
            .stdout(stdio(&slave))
            .stderr(stdio(&slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        drop(slave);
        Pty {
            master: File::from(master),
            child: Some(child),
            output: String::new(),
            seen: 0,
            eof: false,
            what,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything the program printed so far.
    pub fn output(&self) -> &str {
        &self.output
    }

    /// Reads what is available, waiting at most `wait`. False at EOF.
    fn pump(&mut self, wait: Duration) -> bool {
        if self.eof {
            return false;
        }
        let mut pfd = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = wait.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n <= 0 {
            return true;
        }
        let mut buf = [0u8; 4096];
        match self.master.read(&mut buf) {
            Ok(0) => {
                self.eof = true;
                false
            }
            Ok(k) => {
                self.output.push_str(&String::from_utf8_lossy(&buf[..k]));
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
            // EIO: every slave descriptor is closed (the program exited).
            Err(_) => {
                self.eof = true;
                false
            }
        }
    }

    /// Waits until one of `needles` appears in the output after the last
    /// match; returns its index and the text up to and including it.
    pub fn expect_any(
        &mut self,
        needles: &[&str],
        timeout: Duration,
    ) -> Result<(usize, String), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let fresh = &self.output[self.seen..];
            let hit = needles
                .iter()
                .enumerate()
                .filter_map(|(i, n)| fresh.find(n).map(|p| (p, i, n.len())))
                .min();
            if let Some((pos, i, len)) = hit {
                let text = fresh[..pos + len].to_string();
                self.seen += pos + len;
                return Ok((i, text));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "none of {needles:?} within {timeout:?} from {}; output so far:\n{}",
                    self.what, self.output
                ));
            }
            if !self.pump((deadline - now).min(Duration::from_millis(100))) {
                // EOF: one last look, then give up.
                let fresh = &self.output[self.seen..];
                if !needles.iter().any(|n| fresh.contains(n)) {
                    return Err(format!(
                        "{} ended before any of {needles:?}; output:\n{}",
                        self.what, self.output
                    ));
                }
            }
        }
    }

    /// Like [`expect_any`](Self::expect_any) with one needle; panics on failure.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        match self.expect_any(&[needle], timeout) {
            Ok((_, text)) => text,
            Err(e) => panic!("{e}"),
        }
    }

    /// Types `line` and Enter.
    pub fn send_line(&mut self, line: &str) {
        let mut data = line.as_bytes().to_vec();
        data.push(b'\r');
        self.send_raw(&data);
    }

    /// Types these bytes as they are (`b"\x03"` is Ctrl-C).
    pub fn send_raw(&mut self, data: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut off = 0;
        while off < data.len() {
            match self.master.write(&data[off..]) {
                Ok(n) => off += n,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("write to pty of {}: {e}", self.what),
            }
        }
    }

    /// Whether the terminal echoes what is typed (the pty pair shares one
    /// set of terminal settings, so the master reads the program's).
    pub fn echoes(&self) -> bool {
        // SAFETY: tcgetattr fills a termios for our open descriptor.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            assert_eq!(libc::tcgetattr(self.master.as_raw_fd(), &mut t), 0);
            t.c_lflag & libc::ECHO != 0
        }
    }

    /// Reads until the program exits (at most `timeout`, then kills it) and
    /// returns its status (None when it had to be killed).
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let _ = self.pump(Duration::from_millis(50));
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    // Drain what is left in the pty buffer: until EOF, or
                    // until nothing more arrives for 50 ms.
                    loop {
                        let before = self.output.len();
                        let open = self.pump(Duration::from_millis(50));
                        if !open || self.output.len() == before || Instant::now() >= deadline {
                            break;
                        }
                    }
                    self.child = None;
                    return Some(status);
                }
            } else {
                return None;
            }
            if Instant::now() >= deadline {
                self.kill();
                return None;
            }
        }
    }

    /// SIGKILL to the child's process group (it is a session leader), then reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling the process group our child leads.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        self.kill();
    }
}
