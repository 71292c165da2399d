//! Logins driven straight over the daemon's socket with the blocking proto
//! client (what the PAM module does, minus libpam), for tests that need
//! many parallel sessions or must kill the daemon mid-exchange.
//!
//! Every call runs under the client's deadline, so a stalled or killed
//! daemon ends a call with an error instead of hanging a test thread.

use smsotp_proto::{BeginRequest, Client, ClientError, Request, Response, Secret, UserStatus};
use std::path::Path;
use std::time::Duration;

/// Per-call deadline: far above what a healthy daemon needs (argon2 checks
/// under load take tens of milliseconds), far below a test's budget.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One connection to the daemon, i.e. one login.
pub struct Session {
    client: Client,
}

impl Session {
    pub fn connect(socket: &Path) -> Result<Session, ClientError> {
        Self::connect_with(socket, CALL_TIMEOUT)
    }

    pub fn connect_with(socket: &Path, timeout: Duration) -> Result<Session, ClientError> {
        Ok(Session {
            client: Client::connect(socket, timeout, "smsotp-tests")?,
        })
    }

    /// Connects and sends `Begin` for `user` on `service` (rhost
    /// `192.0.2.7`, a documentation address).
    pub fn begin(
        socket: &Path,
        user: &str,
        service: &str,
    ) -> Result<(Session, Response), ClientError> {
        Self::begin_from(socket, user, service, Some("192.0.2.7"))
    }

    pub fn begin_from(
        socket: &Path,
        user: &str,
        service: &str,
        rhost: Option<&str>,
    ) -> Result<(Session, Response), ClientError> {
        let mut s = Session::connect(socket)?;
        let r = s.call(&Request::Begin(BeginRequest {
            user: user.into(),
            service: service.into(),
            rhost: rhost.map(str::to_string),
            tty: None,
            command: None,
        }))?;
        Ok((s, r))
    }

    pub fn verify(&mut self, code: &str) -> Result<Response, ClientError> {
        self.call(&Request::Verify {
            code: Secret::new(code),
        })
    }

    pub fn resend(&mut self) -> Result<Response, ClientError> {
        self.call(&Request::Resend)
    }

    pub fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        self.client.call(req)
    }
}

/// `Status` for `user`, as the caller (root in these tests).
pub fn status(socket: &Path, user: &str) -> UserStatus {
    let mut s = Session::connect(socket).unwrap_or_else(|e| panic!("connect for status: {e}"));
    match s.call(&Request::Status { user: user.into() }) {
        Ok(Response::Status(st)) => st,
        other => panic!("status of {user}: {other:?}"),
    }
}

/// `GenerateBackupCodes` for `user`: the codes in display form.
pub fn generate_backup_codes(socket: &Path, user: &str) -> Vec<String> {
    let mut s = Session::connect(socket).unwrap_or_else(|e| panic!("connect for codes: {e}"));
    match s.call(&Request::GenerateBackupCodes {
        user: user.into(),
        code: None,
    }) {
        Ok(Response::BackupCodes { codes }) => {
            codes.iter().map(|c| c.expose().to_string()).collect()
        }
        other => panic!("backup codes for {user}: {other:?}"),
    }
}

/// What one `Verify` of a backup code came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupUse {
    /// `Verified` by backup code: this login got in.
    Verified,
    /// A definite refusal (`Wrong`, `TriesExhausted`, `Locked`): this
    /// login did not spend the code.
    Refused,
    /// No answer (the daemon died or the connection broke): the code may
    /// or may not have been spent.
    Unknown,
}

/// A fresh login for `user` that types `code` at the prompt. Panics on
/// answers a healthy daemon must not give (e.g. no backup code allowed
/// while the user has some); transport errors are [`BackupUse::Unknown`].
pub fn use_backup_code(socket: &Path, user: &str, service: &str, code: &str) -> BackupUse {
    let (mut s, r) = match Session::begin(socket, user, service) {
        Ok(x) => x,
        Err(_) => return BackupUse::Unknown,
    };
    match r {
        Response::Challenge(info) => assert!(
            info.backup_allowed,
            "backup codes not allowed at the prompt: {info:?}"
        ),
        other => panic!("begin for a backup-code login: {other:?}"),
    }
    match s.verify(code) {
        Ok(Response::Verified {
            method: smsotp_proto::VerifyMethod::BackupCode,
            ..
        }) => BackupUse::Verified,
        Ok(Response::Wrong { .. } | Response::TriesExhausted | Response::Locked { .. }) => {
            BackupUse::Refused
        }
        Ok(other) => panic!("verify of a backup code: {other:?}"),
        Err(_) => BackupUse::Unknown,
    }
}

/// `Unlock` for `user` (root only): lifts a lockout, clears the counters.
pub fn unlock(socket: &Path, user: &str) {
    let mut s = Session::connect(socket).unwrap_or_else(|e| panic!("connect for unlock: {e}"));
    match s.call(&Request::Unlock { user: user.into() }) {
        Ok(Response::Done { .. }) => {}
        other => panic!("unlock of {user}: {other:?}"),
    }
}

/// Seconds since the epoch (the daemon's durable clock).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
