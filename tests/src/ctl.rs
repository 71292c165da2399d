//! Runs the built `smsotpctl` against a test daemon's socket, as root or
//! as another local user (through `setpriv`), with a deadline.

use crate::paths;
use smsotp_proto::UserStatus;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// No command of the CLI may take longer (its own default timeout is 10 s,
/// `test-sms` 30 s; tests pass `--timeout` where it matters).
const RUN_LIMIT: Duration = Duration::from_secs(20);

/// What one `smsotpctl` run printed and how it exited.
#[derive(Debug, Clone)]
pub struct CtlRun {
    pub args: Vec<String>,
    /// The exit code; `None` if it died by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CtlRun {
    /// Panics with the whole run unless it exited with `expected`.
    pub fn expect_code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(expected),
            "smsotpctl {:?} exited {:?}, expected {expected}\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout as the one JSON object `--json` promises.
    pub fn json(&self) -> serde_json::Value {
        let lines: Vec<&str> = self
            .stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "--json must print exactly one line on stdout: {self:#?}"
        );
        serde_json::from_str(lines[0])
            .unwrap_or_else(|e| panic!("--json printed no JSON ({e}): {self:#?}"))
    }

    /// The `--json status` object as the protocol's [`UserStatus`] (the
    /// CLI adds `"ok": true`, which is checked and dropped, and the store's
    /// `store_health`, which is dropped: `smsotpctl store check` tests it).
    pub fn status(&self) -> UserStatus {
        self.expect_code(0);
        let mut v = self.json();
        let object = v.as_object_mut().expect("a JSON object");
        assert_eq!(
            object.remove("ok"),
            Some(serde_json::Value::Bool(true)),
            "{self:#?}"
        );
        object.remove("store_health");
        serde_json::from_value(v).unwrap_or_else(|e| panic!("not a status ({e}): {self:#?}"))
    }

    /// stdout and stderr together, for leak checks.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A `smsotpctl` command line aimed at one socket.
pub struct Ctl {
    binary: PathBuf,
    socket: PathBuf,
    as_user: Option<String>,
}

impl Ctl {
    pub fn new(socket: &Path) -> Ctl {
        Ctl {
            binary: paths::smsotpctl(),
            socket: socket.to_path_buf(),
            as_user: None,
        }
    }

    /// Run as `user` (real and effective uid and gid, its groups) via
    /// `setpriv --reuid --regid --init-groups`. Needs root.
    pub fn as_user(mut self, user: &str) -> Ctl {
        self.as_user = Some(user.into());
        self
    }

    /// `smsotpctl --socket SOCKET ARGS...`, stdin from /dev/null (not a
    /// terminal), bounded by [`RUN_LIMIT`].
    pub fn run(&self, args: &[&str]) -> CtlRun {
        run_bounded(self.command(args), args, None)
    }

    /// Like [`run`](Self::run), with stdin a pipe: `answer` runs on a
    /// helper thread (e.g. waits for the step-up SMS in the outbox), its
    /// line is written to stdin, and stdin is closed, so a second prompt
    /// reads end-of-file.
    pub fn run_answering(
        &self,
        args: &[&str],
        answer: impl FnOnce() -> String + Send + 'static,
    ) -> CtlRun {
        run_bounded(self.command(args), args, Some(Box::new(answer)))
    }

    /// `smsotpctl --socket SOCKET ARGS...` on a terminal of its own, as a
    /// user at a shell runs it.
    pub fn on_terminal(&self, args: &[&str]) -> crate::pty::Pty {
        crate::pty::Pty::spawn(&mut self.command(args))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = match &self.as_user {
            Some(user) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={user}"))
                    .arg(format!("--regid={user}"))
                    .arg("--init-groups")
                    .arg("--")
                    .arg(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        };
        cmd.arg("--socket").arg(&self.socket).args(args);
        // A clean environment: nothing of the caller's steers the CLI.
        cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        cmd
    }
}

type Answer = Box<dyn FnOnce() -> String + Send>;

fn run_bounded(mut cmd: Command, args: &[&str], answer: Option<Answer>) -> CtlRun {
    let mut child = cmd
        .stdin(if answer.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run smsotpctl: {e}"));
    if let (Some(answer), Some(mut stdin)) = (answer, child.stdin.take()) {
        // Detached: it ends when `answer` returns (its own waits are
        // bounded) and the write fails at once if the child is gone.
        std::thread::spawn(move || {
            use std::io::Write;
            let line = answer();
            let _ = writeln!(stdin, "{line}");
        });
    }
    // Drain both pipes from threads so a chatty child cannot block.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait smsotpctl") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("smsotpctl {args:?} did not finish within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    CtlRun {
        args: args.iter().map(|s| s.to_string()).collect(),
        code: status.code(),
        stdout,
        stderr,
    }
}
