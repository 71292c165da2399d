//! Fixtures for the policy tests (`tests/tests/policy_*.rs`): running the
//! real `smsotpctl` (as root or as a local user through `setpriv`), a
//! local group that is removed on drop, logins with PAM_RHOST/PAM_TTY set,
//! and reading the daemon's audit events.
//!
//! Every child process is waited for with a deadline and reaped; every
//! account or group made here is removed on drop.

use crate::daemon::Daemon;
use crate::libpam::{code_name, Outcome, Pam, Prompt, PAM_PERM_DENIED, PAM_SUCCESS};
use crate::pamd::{module_line, PamConfDir};
use std::ffi::CString;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long any helper process may run before it is killed.
pub const CHILD_LIMIT: Duration = Duration::from_secs(20);

/// What a finished helper process left.
#[derive(Debug, Clone)]
pub struct Ran {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub what: String,
}

impl Ran {
    /// Panics with everything it printed unless it exited with `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "`{}` exited with {:?}, expected {code}\nstdout:\n{}\nstderr:\n{}",
            self.what,
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout parsed as the one JSON object `--json` promises.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "`{}` did not print one JSON object ({e}):\nstdout:\n{}\nstderr:\n{}",
                self.what, self.stdout, self.stderr
            )
        })
    }
}

/// Runs `cmd` with stdin closed and its output captured, killing it after
/// `limit`. Always reaps it.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Ran {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    // Readers on threads: a chatty child cannot block on a full pipe.
    let out_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
    let Some(status) = status else {
        panic!("`{what}` did not finish within {limit:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    };
    Ran {
        code: status.code(),
        stdout,
        stderr,
        what,
    }
}

/// `smsotpctl --socket SOCKET ARGS...` as root.
pub fn ctl(socket: &Path, args: &[&str]) -> Ran {
    let mut cmd = Command::new(crate::paths::smsotpctl());
    cmd.arg("--socket").arg(socket).args(args);
    run_bounded(&mut cmd, CHILD_LIMIT)
}

/// The same, as `uid`/`gid` with that user's groups
/// (`setpriv --reuid --regid --init-groups`).
pub fn ctl_as(uid: u32, gid: u32, socket: &Path, args: &[&str]) -> Ran {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--init-groups")
        .arg("--")
        .arg(crate::paths::smsotpctl())
        .arg("--socket")
        .arg(socket)
        .args(args)
        // Nothing of root's environment should decide anything.
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    run_bounded(&mut cmd, CHILD_LIMIT)
}

/// `smsotpctl --json status USER`, checked for exit 0 and `ok: true`.
pub fn status_json(socket: &Path, user: &str) -> serde_json::Value {
    let ran = ctl(socket, &["--json", "status", user]);
    ran.expect_code(0);
    let v = ran.json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["user"], user, "{v}");
    v
}

/// `smsotpctl backup-codes generate USER`: the codes, one per stdout line.
pub fn generate_backup_codes(socket: &Path, user: &str) -> Vec<String> {
    let ran = ctl(socket, &["backup-codes", "generate", user]);
    ran.expect_code(0);
    let codes: Vec<String> = ran
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    for c in &codes {
        assert!(
            c.len() == 19
                && c.chars().enumerate().all(|(i, ch)| if i % 5 == 4 {
                    ch == '-'
                } else {
                    ch.is_ascii_uppercase() || ch.is_ascii_digit()
                }),
            "not a backup code (XXXX-XXXX-XXXX-XXXX): {c:?}\nstdout:\n{}\nstderr:\n{}",
            ran.stdout,
            ran.stderr
        );
    }
    assert!(
        ran.stderr.contains("backup codes for"),
        "the header goes to stderr: {:?}",
        ran.stderr
    );
    codes
}

/// `smsotpctl backup-codes count USER` (human output: just the number).
pub fn backup_count(socket: &Path, user: &str) -> u32 {
    let ran = ctl(socket, &["backup-codes", "count", user]);
    ran.expect_code(0);
    ran.stdout
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("count is not a number ({e}): {:?}", ran.stdout))
}

/// uid and primary gid of a local account (`getpwnam_r`: tests run on
/// several threads, so not the static-buffer `getpwnam`).
pub fn ids(user: &str) -> (u32, u32) {
    let name = CString::new(user).expect("NUL in user name");
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value to be overwritten.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; the strings getpwnam_r
    // stores point into `buf`, which outlives the read below.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    assert!(
        rc == 0 && !result.is_null(),
        "no passwd entry for {user} (rc {rc})"
    );
    (pw.pw_uid, pw.pw_gid)
}

/// groupadd/groupdel/gpasswd lock /etc/group; one at a time here.
static GROUPS: Mutex<()> = Mutex::new(());

fn run_retrying(cmd: &mut Command, what: &str) {
    let mut last = String::new();
    for _ in 0..10 {
        let ran = run_bounded(cmd, CHILD_LIMIT);
        if ran.code == Some(0) {
            return;
        }
        last = ran.stderr;
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what} failed: {last}");
}

/// A real local group (`groupadd`), removed with `groupdel` on drop.
pub struct LocalGroup {
    pub name: String,
}

impl LocalGroup {
    pub fn create() -> LocalGroup {
        crate::require_root("creates a local group with groupadd");
        let name = crate::unique_name("smsotpg");
        let _guard = GROUPS.lock().unwrap_or_else(|e| e.into_inner());
        run_retrying(Command::new("groupadd").arg(&name), "groupadd");
        LocalGroup { name }
    }

    /// Adds `user` to the group (supplementary membership).
    pub fn add(&self, user: &str) {
        let _guard = GROUPS.lock().unwrap_or_else(|e| e.into_inner());
        run_retrying(
            Command::new("gpasswd").args(["-a", user, &self.name]),
            "gpasswd -a",
        );
    }
}

impl Drop for LocalGroup {
    fn drop(&mut self) {
        let _guard = GROUPS.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..10 {
            let out = Command::new("groupdel")
                .arg(&self.name)
                .stdin(Stdio::null())
                .output();
            match out {
                // 6: no such group (already gone).
                Ok(o) if o.status.success() || o.status.code() == Some(6) => return,
                Ok(o) => eprintln!(
                    "groupdel {} failed: {}",
                    self.name,
                    String::from_utf8_lossy(&o.stderr)
                ),
                Err(e) => eprintln!("groupdel {}: {e}", self.name),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// PAM items of one login.
#[derive(Debug, Clone, Copy, Default)]
pub struct Items<'a> {
    pub rhost: Option<&'a str>,
    pub tty: Option<&'a str>,
}

impl<'a> Items<'a> {
    pub fn rhost(rhost: &'a str) -> Self {
        Items {
            rhost: Some(rhost),
            tty: None,
        }
    }

    pub fn tty(tty: &'a str) -> Self {
        Items {
            rhost: None,
            tty: Some(tty),
        }
    }
}

/// One `pam_authenticate` with the given items set.
pub fn login_with(
    pamd: &PamConfDir,
    service: &str,
    user: &str,
    items: Items<'_>,
    responder: impl FnMut(&Prompt<'_>) -> Option<String>,
) -> Outcome {
    let mut pam = Pam::start(service, user, pamd.path(), responder)
        .unwrap_or_else(|rc| panic!("pam_start_confdir failed: {} ({rc})", code_name(rc)));
    if let Some(r) = items.rhost {
        pam.set_rhost(r);
    }
    if let Some(t) = items.tty {
        pam.set_tty(t);
    }
    let code = pam.authenticate(0);
    let transcript = pam.transcript().clone();
    pam.end();
    Outcome { code, transcript }
}

/// A responder for logins that must not prompt at all.
pub fn no_prompt(p: &Prompt<'_>) -> Option<String> {
    panic!("no prompt expected:\n{}", p.transcript)
}

/// Two service files for one module line: `NAME` is `pam_permit` + the
/// module (a PAM_IGNORE from the module leaves PAM_SUCCESS), `NAME-alone`
/// is the module by itself (a PAM_IGNORE leaves libpam with nothing but
/// ignores: PAM_PERM_DENIED; a PAM_SUCCESS would mean the module said yes).
pub fn ignore_probe_services(pamd: &PamConfDir, name: &str, socket: &Path, opts: &str) {
    pamd.smsotp_service(name, socket, opts);
    pamd.write(
        &format!("{name}-alone"),
        &module_line("required", socket, opts),
    );
}

/// Asserts that the module answered PAM_IGNORE for `user` on the pair of
/// services made by [`ignore_probe_services`], silently, and that the
/// daemon audited the skip with `reason`.
pub fn assert_ignored(
    d: &Daemon,
    pamd: &PamConfDir,
    name: &str,
    user: &str,
    items: Items<'_>,
    reason: &str,
) {
    let before = skip_count(d, user, reason);
    let stacked = login_with(pamd, name, user, items, no_prompt);
    stacked.assert_code(PAM_SUCCESS);
    assert!(
        stacked.transcript.entries.is_empty(),
        "a skip says nothing to the user: {stacked}"
    );
    let alone = login_with(pamd, &format!("{name}-alone"), user, items, no_prompt);
    alone.assert_code(PAM_PERM_DENIED);
    assert!(alone.transcript.entries.is_empty(), "{alone}");
    // Both logins reached the daemon, which decided to skip them and why.
    let after = wait_until(Duration::from_secs(5), || {
        let n = skip_count(d, user, reason);
        (n >= before + 2).then_some(n)
    });
    assert!(
        after.is_some(),
        "the daemon log does not show two skips (reason {reason}) for {user}:\n{}",
        d.log()
    );
}

/// Audit lines of the daemon for `event` that mention `user` (and every
/// one of `also`).
pub fn events(d: &Daemon, event: &str, user: &str, also: &[&str]) -> Vec<String> {
    let ev = format!("event=\"{event}\"");
    // `user = %name` logs `user=name`, a plain `user` field `user="name"`.
    let plain = format!("user={user} ");
    let quoted = format!("user=\"{user}\"");
    d.log()
        .lines()
        .filter(|l| {
            l.contains(&ev)
                && (l.contains(&plain) || l.contains(&quoted))
                && also.iter().all(|a| l.contains(a))
        })
        .map(str::to_string)
        .collect()
}

fn skip_count(d: &Daemon, user: &str, reason: &str) -> usize {
    events(d, "skipped", user, &[&format!("reason=\"{reason}\"")]).len()
}

/// Polls `f` every 20 ms until it returns `Some` or `limit` passes.
pub fn wait_until<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback TCP port nobody listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("local addr").port()
}

/// Panics if the daemon log holds `mobile` (beyond its last four digits):
/// for numbers typed at login, which `assert_log_clean` does not know.
pub fn assert_log_lacks_number(d: &Daemon, mobile: &str) {
    let digits: String = mobile.chars().filter(char::is_ascii_digit).collect();
    let probe = &digits[1.min(digits.len())..];
    let log = d.log();
    assert!(
        !log.contains(probe),
        "daemon log leaks the number {mobile}:\n{log}"
    );
}
