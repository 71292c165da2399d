//! A real `smsotpd` process in a temporary directory.
//!
//! The fixture writes `smsotpd.toml` and `users.toml`, starts the binary with
//! `--config`, sends its stdout and stderr to `smsotpd.log`, and waits until
//! a protocol hello succeeds. Drop stops it (SIGTERM, SIGKILL after 3 s) and
//! reaps it, so no test leaves a daemon behind.

use crate::outbox::Outbox;
use crate::paths;
use smsotp_proto::Client;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Config knobs, as raw TOML so tests can say exactly what an admin would.
#[derive(Debug, Clone)]
pub struct DaemonBuilder {
    users: Vec<(String, String)>,
    /// `name = VALUE` lines written as given (the table form).
    user_lines: Vec<String>,
    top: Vec<String>,
    otp: Vec<String>,
    message: Vec<String>,
    providers: Vec<String>,
    outbox_provider: Option<bool>,
    sections: Vec<(String, Vec<String>)>,
    log_level: String,
    hostname: String,
}

impl Default for DaemonBuilder {
    fn default() -> Self {
        DaemonBuilder {
            users: Vec::new(),
            user_lines: Vec::new(),
            top: Vec::new(),
            otp: Vec::new(),
            message: Vec::new(),
            providers: Vec::new(),
            outbox_provider: None,
            sections: Vec::new(),
            // Verbose on purpose: the log-leak check is stronger when the
            // daemon says as much as it ever would.
            log_level: "debug".into(),
            hostname: "testhost".into(),
        }
    }
}

impl DaemonBuilder {
    /// `[users] name = "mobile"` in users.toml.
    pub fn user(mut self, name: &str, mobile: &str) -> Self {
        self.users.push((name.into(), mobile.into()));
        self
    }

    /// `[users] name = VALUE` with VALUE as raw TOML, e.g.
    /// `{ mobile = "+4915112345678", lang = "de" }`.
    pub fn user_line(mut self, name: &str, value: &str) -> Self {
        self.user_lines
            .push(format!("{} = {value}", toml_str(name)));
        self
    }

    /// A raw top-level line, e.g. `allow_user_self = true`.
    pub fn top(mut self, line: &str) -> Self {
        self.top.push(line.into());
        self
    }

    /// A raw line under `[otp]`, e.g. `expiry_seconds = 30`.
    pub fn otp(mut self, line: &str) -> Self {
        self.otp.push(line.into());
        self
    }

    /// A raw line under `[message]`.
    pub fn message(mut self, line: &str) -> Self {
        self.message.push(line.into());
        self
    }

    /// A raw `[[provider]]` block body (without the header line). When any
    /// is given, the outbox provider is left out unless
    /// [`with_outbox`](Self::with_outbox) asks for it (it is then first).
    pub fn provider(mut self, body: &str) -> Self {
        self.providers.push(body.into());
        self
    }

    pub fn with_outbox(mut self, yes: bool) -> Self {
        self.outbox_provider = Some(yes);
        self
    }

    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.into();
        self
    }

    /// `hostname` (the `{{host}}` of the template); default `testhost`.
    pub fn hostname(mut self, host: &str) -> Self {
        self.hostname = host.into();
        self
    }

    /// A line in any other table (`policy`, `service.sudo`, `lockout`,
    /// `resend`, `send_budget`, `backup_codes`, `store`); repeated calls
    /// with the same table add to it.
    pub fn section(mut self, table: &str, line: &str) -> Self {
        match self.sections.iter_mut().find(|(n, _)| n == table) {
            Some((_, lines)) => lines.push(line.to_string()),
            None => self
                .sections
                .push((table.to_string(), vec![line.to_string()])),
        }
        self
    }

    /// `[store] backend = "postgres"` at `url` (a [`crate::pg::Postgres`]
    /// database): daemons given the same URL share their state, a fleet.
    pub fn postgres_store(self, url: &str) -> Self {
        self.section("store", "backend = \"postgres\"")
            .section("store", &format!("url = {}", toml_str(url)))
    }

    fn config_text(&self, dir: &Path) -> String {
        let q = |p: &Path| toml_str(&p.to_string_lossy());
        let mut s = String::new();
        s += &format!("socket = {}\n", q(&dir.join("smsotpd.sock")));
        // Never the host's /run/smsotp/root.sock.
        s += &format!("root_socket = {}\n", q(&dir.join("root.sock")));
        s += &format!("users_file = {}\n", q(&dir.join("users.toml")));
        s += &format!("hostname = {}\n", toml_str(&self.hostname));
        s += &format!("log_level = {}\n", toml_str(&self.log_level));
        for line in &self.top {
            s += line;
            s += "\n";
        }
        if !self.otp.is_empty() {
            s += "\n[otp]\n";
            for line in &self.otp {
                s += line;
                s += "\n";
            }
        }
        if !self.message.is_empty() {
            s += "\n[message]\n";
            for line in &self.message {
                s += line;
                s += "\n";
            }
        }
        for (name, lines) in &self.sections {
            s += &format!("\n[{name}]\n");
            for line in lines {
                s += line;
                s += "\n";
            }
        }
        // Durable state in the test's own directory, never the host's.
        if !self.sections.iter().any(|(n, _)| n == "store") {
            s += &format!("\n[store]\npath = {}\n", q(&dir.join("state.db")));
        }
        let outbox = self.outbox_provider.unwrap_or(self.providers.is_empty());
        if outbox {
            s += "\n[[provider]]\ntype = \"outbox\"\n";
            s += &format!("path = {}\n", q(&dir.join("outbox.jsonl")));
        }
        for body in &self.providers {
            s += "\n[[provider]]\n";
            s += body;
            s += "\n";
        }
        s
    }

    fn users_text(&self) -> String {
        let mut s = String::from("[users]\n");
        for (name, mobile) in &self.users {
            s += &format!("{} = {}\n", toml_str(name), toml_str(mobile));
        }
        for line in &self.user_lines {
            s += line;
            s += "\n";
        }
        s
    }

    /// Writes the files into `dir` as an admin keeps them; the config path.
    fn write_files(&self, dir: &Path) -> PathBuf {
        let config = dir.join("smsotpd.toml");
        fs::write(&config, self.config_text(dir)).expect("write config");
        // As an admin keeps it: the daemon refuses inline secrets in a
        // config others can read.
        fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).expect("chmod config");
        fs::write(dir.join("users.toml"), self.users_text()).expect("write users");
        // Whatever the umask: the daemon refuses a users file that group or
        // others could change.
        fs::set_permissions(dir.join("users.toml"), fs::Permissions::from_mode(0o644))
            .expect("chmod users");
        config
    }

    /// `smsotpd --check-config` on these files: exit status and stderr.
    pub fn check_config(self) -> (Option<i32>, String) {
        let dir = tempfile::Builder::new()
            .prefix("smsotp-check-")
            .tempdir_in("/tmp")
            .expect("create temp dir");
        let config = self.write_files(dir.path());
        let out = Command::new(paths::smsotpd())
            .arg("--config")
            .arg(&config)
            .arg("--check-config")
            .output()
            .expect("run smsotpd --check-config");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Writes the files, starts the daemon, waits for its hello.
    pub fn start(self) -> Daemon {
        let binary = paths::smsotpd();
        let dir = tempfile::Builder::new()
            .prefix("smsotp-e2e-")
            .tempdir_in("/tmp")
            .expect("create temp dir");
        // Reachable by the unprivileged uid of the permission tests.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let config = self.write_files(dir.path());
        let mut daemon = Daemon {
            dir,
            config,
            child: None,
            users: self.users,
            binary,
        };
        daemon.spawn();
        daemon
    }
}

/// A TOML basic string literal.
pub fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out += "\\\"",
            '\\' => out += "\\\\",
            '\n' => out += "\\n",
            c if c.is_control() => out += &format!("\\u{:04X}", c as u32),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub struct Daemon {
    dir: tempfile::TempDir,
    config: PathBuf,
    child: Option<Child>,
    users: Vec<(String, String)>,
    binary: PathBuf,
}

impl Daemon {
    pub fn builder() -> DaemonBuilder {
        DaemonBuilder::default()
    }

    fn spawn(&mut self) {
        let log_path = self.log_path();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open daemon log");
        let child = Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "smsotpd exited during start-up ({status}).\nconfig:\n{}\nlog:\n{}",
                    fs::read_to_string(&self.config).unwrap_or_default(),
                    self.log()
                );
            }
            let last_err =
                match Client::connect(&self.socket(), Duration::from_millis(500), "smsotp-tests") {
                    Ok(_) => return,
                    Err(e) => e.to_string(),
                };
            if Instant::now() >= deadline {
                self.kill();
                panic!(
                    "smsotpd did not answer a hello within {START_TIMEOUT:?} (last error: \
                     {last_err}).\nconfig:\n{}\nlog:\n{}",
                    fs::read_to_string(&self.config).unwrap_or_default(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts it again after [`stop`](Self::stop), same files.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The temp directory (config, users, socket, outbox, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The public socket (0666).
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("smsotpd.sock")
    }

    /// The root-only socket (0600); pass it as `socket=` where a test wants
    /// what the module uses by default as root.
    pub fn root_socket(&self) -> PathBuf {
        self.dir.path().join("root.sock")
    }

    pub fn outbox(&self) -> Outbox {
        Outbox::new(self.dir.path().join("outbox.jsonl"))
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("smsotpd.log")
    }

    /// Everything the daemon printed so far.
    pub fn log(&self) -> String {
        fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends SIGHUP and waits (bounded) for the daemon's verdict: returns
    /// its log line, `configuration reloaded` or `reload failed ...`.
    pub fn reload(&self) -> String {
        let verdicts = |log: &str| -> Vec<String> {
            log.lines()
                .filter(|l| l.contains("configuration reloaded") || l.contains("reload failed"))
                .map(String::from)
                .collect()
        };
        let before = verdicts(&self.log()).len();
        let pid = self.pid().expect("daemon running") as libc::pid_t;
        // SAFETY: signalling our own child by pid.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(line) = verdicts(&self.log()).get(before) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no reload verdict in the log within {START_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The mobile numbers in users.toml.
    pub fn mobiles(&self) -> Vec<String> {
        self.users.iter().map(|(_, m)| m.clone()).collect()
    }

    /// SIGTERM, then SIGKILL after 3 s; reaps the process.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + STOP_GRACE;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Panics if the daemon log holds a mobile number of users.toml (beyond
    /// its last four digits), any code of the outbox, or any of `extra`.
    pub fn assert_log_clean(&self, extra_secrets: &[&str]) {
        let log = self.log();
        for mobile in self.mobiles() {
            let digits: String = mobile.chars().filter(char::is_ascii_digit).collect();
            // Everything but the leading country digit: catches the number
            // with or without `+`/country code.
            let probe = &digits[1.min(digits.len())..];
            assert!(
                !log.contains(probe),
                "daemon log leaks the mobile number {mobile}:\n{log}"
            );
        }
        let mut codes = self.outbox().codes();
        codes.extend(extra_secrets.iter().map(|s| s.to_string()));
        for code in codes {
            assert!(
                !contains_token(&log, &code),
                "daemon log leaks the code {code}:\n{log}"
            );
        }
    }
}

/// True when `needle` occurs in `hay` not touching other letters or digits
/// (so a code is not found inside a longer number).
pub fn contains_token(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let bytes = hay.as_bytes();
    hay.match_indices(needle).any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + needle.len()).copied();
        !before.is_some_and(|b| b.is_ascii_alphanumeric())
            && !after.is_some_and(|b| b.is_ascii_alphanumeric())
    })
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_str(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn tokens() {
        assert!(contains_token("code=123456 sent", "123456"));
        assert!(!contains_token("id 91234567", "123456"));
        assert!(contains_token("123456", "123456"));
    }

    #[test]
    fn config_layout() {
        let b = Daemon::builder()
            .user("alice", "+15551234567")
            .top("allow_user_self = true")
            .otp("expiry_seconds = 30");
        let text = b.config_text(Path::new("/tmp/x"));
        assert!(text
            .starts_with("socket = \"/tmp/x/smsotpd.sock\"\nroot_socket = \"/tmp/x/root.sock\"\n"));
        let top_end = text.find("[otp]").unwrap();
        assert!(text[..top_end].contains("allow_user_self = true"));
        assert!(text.contains("[[provider]]\ntype = \"outbox\"\npath = \"/tmp/x/outbox.jsonl\""));
        assert_eq!(b.users_text(), "[users]\n\"alice\" = \"+15551234567\"\n");
    }
}
