//! Exit codes, errors, the one daemon round trip every command makes, and
//! printing.
//!
//! Human output goes to stdout; errors go to stderr as `smsotpctl: MESSAGE`.
//! With `--json`, stdout carries exactly one JSON object, on failure too
//! (`{"ok":false,"error":KIND,"message":...}`), so a script can always
//! parse it and branch on the exit code.

use serde::Serialize;
use smsotp_proto::{
    Client, ClientError, ErrorKind, FrameError, Request, Response, Secret, UserStatus,
};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// The operation was done.
pub const EXIT_OK: u8 = 0;
/// The daemon refused or the operation failed.
pub const EXIT_FAILED: u8 = 1;
/// Bad command line, bad argument, or no usable config.
pub const EXIT_USAGE: u8 = 2;
/// The daemon could not be reached or did not answer in time.
pub const EXIT_UNREACHABLE: u8 = 3;
/// The daemon is at its connection limit; try again shortly.
pub const EXIT_BUSY: u8 = 4;

/// Timeout when `--timeout` is not given.
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;

/// Why a command did not succeed: what to print and how to exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub exit: u8,
    /// Stable, machine-readable: the daemon's error kind (`permission_denied`,
    /// `bad_request`, `busy`, `internal`, `unsupported_version`) or one of
    /// ours (`usage`, `unreachable`, `protocol`, `declined`,
    /// `untrusted_daemon`).
    pub kind: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(exit: u8, kind: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            kind,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(EXIT_USAGE, "usage", message)
    }

    /// A reply this command does not expect: the daemon and the CLI disagree
    /// about the protocol.
    pub fn unexpected(what: &str) -> Failure {
        Failure::new(
            EXIT_FAILED,
            "protocol",
            format!("unexpected reply from the daemon ({what})"),
        )
    }

    pub fn from_client(e: &ClientError) -> Failure {
        match e {
            // The client validates before sending; we validate earlier
            // still (see `call`), so this is a usage error either way.
            ClientError::Invalid(v) => Failure::usage(format!("invalid {v}")),
            // An error in answer to hello: the daemon's only reason to send
            // one to a client of the right version is its connection limit
            // (the kind is not kept by `ClientError::Refused`).
            ClientError::Refused(message) => Failure::new(EXIT_BUSY, "busy", message.clone()),
            ClientError::Backlog { .. } => Failure::new(EXIT_BUSY, "busy", e.to_string()),
            ClientError::VersionMismatch { .. } => {
                Failure::new(EXIT_FAILED, "unsupported_version", e.to_string())
            }
            ClientError::NotRoot { .. } => {
                Failure::new(EXIT_FAILED, "untrusted_daemon", e.to_string())
            }
            // For a script "not there" and "did not answer" both mean
            // "try later or go and look"; only the PAM module must tell
            // them apart (failmode=safe).
            ClientError::Absent { .. }
            | ClientError::Connect { .. }
            | ClientError::Timeout(_)
            | ClientError::Frame(FrameError::Closed)
            | ClientError::Frame(FrameError::Io(_)) => {
                Failure::new(EXIT_UNREACHABLE, "unreachable", e.to_string())
            }
            ClientError::Frame(_) | ClientError::UnexpectedHello => {
                Failure::new(EXIT_FAILED, "protocol", e.to_string())
            }
        }
    }

    pub fn from_daemon(kind: ErrorKind, message: String) -> Failure {
        let (exit, name) = match kind {
            ErrorKind::Busy => (EXIT_BUSY, "busy"),
            ErrorKind::PermissionDenied => (EXIT_FAILED, "permission_denied"),
            ErrorKind::BadRequest => (EXIT_FAILED, "bad_request"),
            ErrorKind::Internal => (EXIT_FAILED, "internal"),
            ErrorKind::UnsupportedVersion => (EXIT_FAILED, "unsupported_version"),
        };
        Failure::new(exit, name, message)
    }

    /// The stderr line (always) and, with `--json`, the stdout object.
    pub fn render(&self, json: bool) -> (String, Option<serde_json::Value>) {
        let line = format!("smsotpctl: {}", clean(&self.message));
        let object = json
            .then(|| serde_json::json!({"ok": false, "error": self.kind, "message": self.message}));
        (line, object)
    }

    pub fn report(&self, json: bool) -> ExitCode {
        let (line, object) = self.render(json);
        if let Some(object) = object {
            println!("{object}");
        }
        eprintln!("{line}");
        ExitCode::from(self.exit)
    }
}

/// A successful answer to an admin request.
#[derive(Debug)]
pub enum Reply {
    Status(UserStatus),
    BackupCodes { codes: Vec<Secret> },
    Done { message: String },
    TestSent { provider: String, detail: String },
}

impl Reply {
    /// `Ok` for the four admin replies, the daemon's refusal for an
    /// `Error`, `protocol` for anything else (a login reply here means the
    /// daemon and the CLI disagree about the protocol).
    pub fn from_response(resp: Response) -> Result<Reply, Failure> {
        match resp {
            Response::Status(status) => Ok(Reply::Status(status)),
            Response::BackupCodes { codes } => Ok(Reply::BackupCodes { codes }),
            Response::Done { message } => Ok(Reply::Done { message }),
            Response::TestSent { provider, detail } => Ok(Reply::TestSent { provider, detail }),
            Response::Error { kind, message } => Err(Failure::from_daemon(kind, message)),
            other => Err(Failure::unexpected(&wire_type(&other))),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Reply::Status(_) => "status",
            Reply::BackupCodes { .. } => "backup_codes",
            Reply::Done { .. } => "done",
            Reply::TestSent { .. } => "test_sent",
        }
    }

    pub fn into_status(self) -> Result<UserStatus, Failure> {
        match self {
            Reply::Status(s) => Ok(s),
            other => Err(Failure::unexpected(other.kind())),
        }
    }

    pub fn into_done(self) -> Result<String, Failure> {
        match self {
            Reply::Done { message } => Ok(message),
            other => Err(Failure::unexpected(other.kind())),
        }
    }
}

/// Checks the request, connects, sends it and decodes the answer, all
/// within `timeout` for the connect and again for the call.
pub fn call(socket: &Path, timeout: Duration, req: &Request) -> Result<Reply, Failure> {
    Reply::from_response(call_raw(socket, timeout, req)?)
}

/// [`call`] without reading the answer as an admin reply (the step-up
/// answers with login-style messages).
pub fn call_raw(socket: &Path, timeout: Duration, req: &Request) -> Result<Response, Failure> {
    req.validate()
        .map_err(|v| Failure::usage(format!("invalid {v}")))?;
    let mut client =
        Client::connect(socket, timeout, "smsotpctl").map_err(|e| Failure::from_client(&e))?;
    client.call(req).map_err(|e| Failure::from_client(&e))
}

/// The `type` a response has on the wire, for messages.
fn wire_type(resp: &Response) -> String {
    serde_json::to_value(resp)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// The timeout for a command: `--timeout`, or the command's default.
pub fn timeout(conn: &super::ConnArgs, default_secs: u64) -> Duration {
    Duration::from_secs(conn.timeout.unwrap_or(default_secs))
}

/// Text from the daemon (or, through it, from an SMS provider) shown on a
/// terminal: control characters become `?` so nothing can move the cursor
/// or retitle the window. JSON output is escaped by serde instead.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Human output: the text as is (it ends with a newline) on stdout.
pub fn print_human(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::new(EXIT_FAILED, "io", format!("cannot write output: {e}")))
}

/// A successful `--json` answer: the command's object with `"ok": true`
/// added, so every object a command prints has `ok` (as `ping` and
/// `check-config` do).
#[derive(Serialize)]
pub struct Success<'a, T: Serialize + ?Sized> {
    pub ok: bool,
    #[serde(flatten)]
    pub inner: &'a T,
}

pub fn success<T: Serialize + ?Sized>(inner: &T) -> Success<'_, T> {
    Success { ok: true, inner }
}

/// `--json` output of a success: one object, one line, with `"ok": true`.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &success(value))
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| Failure::new(EXIT_FAILED, "io", format!("cannot write output: {e}")))
}

/// The answer to a request that only says it was done: the daemon's
/// message (or `fallback` when it sent none) for people, an object naming
/// the user and the action for scripts.
pub fn done_text(message: &str, fallback: &str) -> String {
    let message = clean(message.trim());
    if message.is_empty() {
        format!("{fallback}\n")
    } else {
        format!("{message}\n")
    }
}

pub fn done_json(user: &str, action: &str, message: &str) -> serde_json::Value {
    serde_json::json!({"user": user, "action": action, "message": message})
}

pub fn print_done(
    ctx: &super::Ctx,
    user: &str,
    action: &str,
    message: &str,
    fallback: &str,
) -> Result<(), Failure> {
    if ctx.json {
        print_json(&done_json(user, action, message))
    } else {
        print_human(&done_text(message, fallback))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn io_err(kind: io::ErrorKind) -> io::Error {
        io::Error::new(kind, "x")
    }

    #[test]
    fn client_errors_map_to_exit_codes() {
        let absent = ClientError::Absent {
            path: "/run/smsotp/s".into(),
            source: io_err(io::ErrorKind::NotFound),
        };
        assert_eq!(Failure::from_client(&absent).exit, EXIT_UNREACHABLE);
        let connect = ClientError::Connect {
            path: "/run/smsotp/s".into(),
            source: io_err(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(Failure::from_client(&connect).exit, EXIT_UNREACHABLE);
        let backlog = ClientError::Backlog {
            path: "/run/smsotp/s".into(),
            waited: Duration::from_secs(10),
        };
        let f = Failure::from_client(&backlog);
        assert_eq!((f.exit, f.kind), (EXIT_BUSY, "busy"));
        let impostor = ClientError::NotRoot {
            path: "/run/smsotp/s".into(),
            uid: 1000,
        };
        let f = Failure::from_client(&impostor);
        assert_eq!((f.exit, f.kind), (EXIT_FAILED, "untrusted_daemon"));
        let timeout = ClientError::Timeout(Duration::from_secs(1));
        assert_eq!(Failure::from_client(&timeout).exit, EXIT_UNREACHABLE);
        let closed = ClientError::Frame(FrameError::Closed);
        assert_eq!(Failure::from_client(&closed).exit, EXIT_UNREACHABLE);
        let reset = ClientError::Frame(FrameError::Io(io_err(io::ErrorKind::ConnectionReset)));
        assert_eq!(Failure::from_client(&reset).exit, EXIT_UNREACHABLE);
        let busy = ClientError::Refused("the SMS code service is busy".into());
        let f = Failure::from_client(&busy);
        assert_eq!((f.exit, f.kind), (EXIT_BUSY, "busy"));
        let version = ClientError::VersionMismatch { server: 9 };
        assert_eq!(Failure::from_client(&version).exit, EXIT_FAILED);
        assert_eq!(
            Failure::from_client(&ClientError::UnexpectedHello).exit,
            EXIT_FAILED
        );
        let invalid = ClientError::Invalid(smsotp_proto::check_user("-x").unwrap_err());
        let f = Failure::from_client(&invalid);
        assert_eq!((f.exit, f.kind), (EXIT_USAGE, "usage"));
        assert_eq!(f.message, "invalid user: not a valid login name");
    }

    #[test]
    fn daemon_errors_map_to_exit_codes() {
        let cases = [
            (ErrorKind::Busy, EXIT_BUSY, "busy"),
            (
                ErrorKind::PermissionDenied,
                EXIT_FAILED,
                "permission_denied",
            ),
            (ErrorKind::BadRequest, EXIT_FAILED, "bad_request"),
            (ErrorKind::Internal, EXIT_FAILED, "internal"),
            (
                ErrorKind::UnsupportedVersion,
                EXIT_FAILED,
                "unsupported_version",
            ),
        ];
        for (kind, exit, name) in cases {
            let f = Failure::from_daemon(kind, "m".into());
            assert_eq!((f.exit, f.kind), (exit, name), "{kind:?}");
            // The kind names are the protocol's own.
            assert_eq!(serde_json::to_value(kind).unwrap(), name);
        }
    }

    #[test]
    fn exit_codes_are_distinct_and_stable() {
        assert_eq!(
            [
                EXIT_OK,
                EXIT_FAILED,
                EXIT_USAGE,
                EXIT_UNREACHABLE,
                EXIT_BUSY
            ],
            [0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn error_reply_becomes_a_failure_with_the_daemons_message() {
        let resp = Response::Error {
            kind: ErrorKind::PermissionDenied,
            message: "only root may change another user's number".into(),
        };
        let f = Reply::from_response(resp).unwrap_err();
        assert_eq!(f.exit, EXIT_FAILED);
        let (line, object) = f.render(false);
        assert_eq!(
            line,
            "smsotpctl: only root may change another user's number"
        );
        assert!(object.is_none());
        let (_, object) = f.render(true);
        assert_eq!(
            object.unwrap(),
            serde_json::json!({"ok": false, "error": "permission_denied",
                "message": "only root may change another user's number"})
        );
        let busy = Reply::from_response(Response::Error {
            kind: ErrorKind::Busy,
            message: "busy".into(),
        })
        .unwrap_err();
        assert_eq!(busy.exit, EXIT_BUSY);
    }

    #[test]
    fn login_replies_are_unexpected_here() {
        let f = Reply::from_response(Response::TriesExhausted).unwrap_err();
        assert_eq!((f.exit, f.kind), (EXIT_FAILED, "protocol"));
        assert_eq!(
            f.message,
            "unexpected reply from the daemon (tries_exhausted)"
        );
        let f = Reply::from_response(Response::NoMobile).unwrap_err();
        assert!(f.message.contains("no_mobile"), "{}", f.message);
    }

    #[test]
    fn admin_replies_are_accepted() {
        let status = UserStatus {
            user: "alice".into(),
            mobile: Some("********4567".into()),
            mobile_source: "users.toml".into(),
            locked: false,
            locked_for_secs: None,
            recent_failures: 0,
            lockouts: 0,
            backup_codes_left: 10,
            opted_out: false,
            store: smsotp_proto::StoreKind::Sqlite,
        };
        let r = Reply::from_response(Response::Status(status.clone())).unwrap();
        assert_eq!(r.into_status().unwrap(), status);
        let r = Reply::from_response(Response::BackupCodes {
            codes: vec![Secret::new("a1b2-c3d4"), Secret::new("e5f6-a7b8")],
        })
        .unwrap();
        match r {
            Reply::BackupCodes { codes } => assert_eq!(codes[1].expose(), "e5f6-a7b8"),
            other => panic!("{other:?}"),
        }
        let r = Reply::from_response(Response::Done {
            message: "unlocked alice".into(),
        })
        .unwrap();
        assert_eq!(r.into_done().unwrap(), "unlocked alice");
        let r = Reply::from_response(Response::TestSent {
            provider: "http".into(),
            detail: "202 Accepted".into(),
        })
        .unwrap();
        assert!(matches!(r, Reply::TestSent { .. }));
        // A reply of the wrong kind for the command is refused.
        let r = Reply::from_response(Response::Done { message: "".into() }).unwrap();
        let f = r.into_status().unwrap_err();
        assert_eq!(f.message, "unexpected reply from the daemon (done)");
        let r = Reply::from_response(Response::Status(status)).unwrap();
        assert_eq!(r.into_done().unwrap_err().kind, "protocol");
    }

    #[test]
    fn backup_codes_do_not_leak_through_debug() {
        let r = Reply::from_response(Response::BackupCodes {
            codes: vec![Secret::new("1234-5678")],
        })
        .unwrap();
        assert!(!format!("{r:?}").contains("1234-5678"));
    }

    #[test]
    fn terminal_text_is_cleaned() {
        assert_eq!(clean("ok\x1b]0;pwned\x07 done\n"), "ok?]0;pwned? done?");
        assert_eq!(done_text("  unlocked alice \n", "x"), "unlocked alice\n");
        assert_eq!(done_text("", "alice: unlocked"), "alice: unlocked\n");
        let f = Failure::new(EXIT_FAILED, "internal", "bad\x1b[2Jthing");
        assert_eq!(f.render(false).0, "smsotpctl: bad?[2Jthing");
    }

    #[test]
    fn done_json_names_user_and_action() {
        assert_eq!(
            serde_json::to_value(success(&done_json("alice", "unlock", "unlocked alice"))).unwrap(),
            serde_json::json!({"ok": true, "user": "alice", "action": "unlock", "message": "unlocked alice"})
        );
    }
}
