//! Every row of the contract table, driven by a scripted user and daemon.

use super::*;
use smsotp_proto::limits::MAX_MOBILE;
use smsotp_proto::{CodeAlphabet, FrameError, MaskedMobile, SkipReason};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::time::Duration;

const CODE: &str = "424242";
const LOCKED_15: &str = "Too many wrong codes: SMS codes are locked for this account for 15 min.";
const PROMPT: &str = "Code sent to *******4567 (expires in 5 min). Enter code, or 'r' to resend: ";

/// What the fake user types; `Err` is a failing conversation function.
enum Reply {
    Text(&'static str),
    Nothing,
    Fail,
}

#[derive(Default)]
struct FakeConv {
    replies: VecDeque<Reply>,
    /// Every prompt, ECHO_OFF and ECHO_ON, in order.
    prompts: Vec<String>,
    /// The ECHO_ON ones only.
    echoed: Vec<String>,
    errors: Vec<String>,
    infos: Vec<String>,
}

impl FakeConv {
    fn typing(replies: impl IntoIterator<Item = Reply>) -> Self {
        FakeConv {
            replies: replies.into_iter().collect(),
            ..Default::default()
        }
    }
}

impl FakeConv {
    fn reply(&mut self) -> Result<Option<Secret>, ConvError> {
        match self.replies.pop_front() {
            Some(Reply::Text(t)) => Ok(Some(Secret::new(t))),
            Some(Reply::Nothing) => Ok(None),
            Some(Reply::Fail) | None => Err(ConvError("PAM_CONV_ERR".into())),
        }
    }
}

impl Conversation for FakeConv {
    fn prompt_secret(&mut self, msg: &str) -> Result<Option<Secret>, ConvError> {
        self.prompts.push(msg.to_string());
        self.reply()
    }

    fn prompt_echo(&mut self, msg: &str) -> Result<Option<Secret>, ConvError> {
        self.prompts.push(msg.to_string());
        self.echoed.push(msg.to_string());
        self.reply()
    }

    fn error(&mut self, msg: &str) {
        self.errors.push(msg.to_string());
    }

    fn info(&mut self, msg: &str) {
        self.infos.push(msg.to_string());
    }
}

/// Answers requests from a script and records what it was asked. The
/// record is shared because the flow owns the link once connected.
struct FakeDaemon {
    answers: VecDeque<Result<Response, ClientError>>,
    seen: Rc<RefCell<Vec<Request>>>,
}

impl DaemonLink for FakeDaemon {
    fn call(&mut self, request: &Request) -> Result<Response, ClientError> {
        self.seen.borrow_mut().push(request.clone());
        self.answers
            .pop_front()
            .unwrap_or_else(|| panic!("unscripted request {request:?}"))
    }
}

#[derive(Default)]
struct FakeLog(Vec<(Level, String)>);

impl Log for FakeLog {
    fn log(&mut self, level: Level, msg: &str) {
        self.0.push((level, msg.to_string()));
    }
}

struct Run {
    code: PamResultCode,
    conv: FakeConv,
    log: FakeLog,
    requests: Vec<Request>,
}

impl Run {
    fn summary(&self) -> &(Level, String) {
        self.log
            .0
            .iter()
            .find(|(_, line)| line.contains(" result="))
            .expect("a summary line")
    }

    fn verifies(&self) -> Vec<String> {
        self.requests
            .iter()
            .filter_map(|r| match r {
                Request::Verify { code } => Some(code.expose().to_string()),
                _ => None,
            })
            .collect()
    }

    fn resends(&self) -> usize {
        self.requests
            .iter()
            .filter(|r| matches!(r, Request::Resend))
            .count()
    }

    fn enrolls(&self) -> Vec<String> {
        self.requests
            .iter()
            .filter_map(|r| match r {
                Request::Enroll { mobile } => Some(mobile.clone()),
                _ => None,
            })
            .collect()
    }
}

fn begin() -> BeginRequest {
    BeginRequest {
        user: "alice".into(),
        service: "sshd".into(),
        rhost: Some("192.0.2.1".into()),
        tty: Some("ssh".into()),
        command: None,
    }
}

fn info(expires_in_secs: u64, resends_left: u32) -> ChallengeInfo {
    ChallengeInfo {
        masked_mobile: MaskedMobile::new("*******4567").unwrap(),
        expires_in_secs,
        resends_left,
        attempts_left: 3,
        code_length: 6,
        alphabet: CodeAlphabet::Numeric,
        sms_sent: true,
        backup_allowed: false,
        notice: None,
        show_reasons: true,
        lang: None,
        can_call: false,
    }
}

fn challenge(expires_in_secs: u64, resends_left: u32) -> Response {
    Response::Challenge(info(expires_in_secs, resends_left))
}

/// A challenge whose `show_reasons` is false.
fn quiet_challenge(expires_in_secs: u64, resends_left: u32) -> Response {
    Response::Challenge(ChallengeInfo {
        show_reasons: false,
        ..info(expires_in_secs, resends_left)
    })
}

/// No SMS went out; only a backup code can complete the login.
fn backup_only(notice: Option<&str>) -> Response {
    Response::Challenge(ChallengeInfo {
        masked_mobile: MaskedMobile::new("****").unwrap(),
        resends_left: 0,
        sms_sent: false,
        backup_allowed: true,
        notice: notice.map(str::to_string),
        ..info(300, 0)
    })
}

fn verified() -> Response {
    Response::Verified {
        method: VerifyMethod::Sms,
        backup_codes_left: None,
    }
}

fn backup_verified(left: Option<u32>) -> Response {
    Response::Verified {
        method: VerifyMethod::BackupCode,
        backup_codes_left: left,
    }
}

fn error(kind: ErrorKind, message: &str) -> Response {
    Response::Error {
        kind,
        message: message.into(),
    }
}

fn unreachable() -> ClientError {
    ClientError::Absent {
        path: "/run/smsotp/smsotpd.sock".into(),
        source: io::Error::from(io::ErrorKind::NotFound),
    }
}

/// A login whose connect succeeds; `answers` starts with the answer to Begin.
fn run(
    failmode: FailMode,
    replies: impl IntoIterator<Item = Reply>,
    answers: impl IntoIterator<Item = Result<Response, ClientError>>,
) -> Run {
    let answers = answers.into_iter().collect();
    run_connect(failmode, replies, move |seen| {
        Ok(FakeDaemon { answers, seen })
    })
}

fn run_connect(
    failmode: FailMode,
    replies: impl IntoIterator<Item = Reply>,
    connect: impl FnOnce(Rc<RefCell<Vec<Request>>>) -> Result<FakeDaemon, ClientError>,
) -> Run {
    let mut conv = FakeConv::typing(replies);
    let mut log = FakeLog::default();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let link_seen = Rc::clone(&seen);
    let code = authenticate(&mut conv, &mut log, failmode, begin(), move || {
        connect(link_seen)
    });
    let requests = seen.borrow().clone();
    // Nothing the user typed as a code, and no full number, reaches the log.
    for (_, line) in &log.0 {
        assert!(!line.contains(CODE), "code in log: {line}");
        assert!(!line.contains("5551234567"), "number in log: {line}");
    }
    Run {
        code,
        conv,
        log,
        requests,
    }
}

fn secure(
    replies: impl IntoIterator<Item = Reply>,
    answers: impl IntoIterator<Item = Result<Response, ClientError>>,
) -> Run {
    run(FailMode::Secure, replies, answers)
}

use Reply::Text;

mod backup_and_locks;
mod call;
mod codes;
mod enroll;
mod languages;
mod reasons_and_logs;
mod unavailable;
