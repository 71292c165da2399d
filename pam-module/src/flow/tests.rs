//! Every row of the contract table, driven by a scripted user and daemon.

use super::*;
use smsotp_proto::{CodeAlphabet, FrameError, MaskedMobile};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::time::Duration;

const CODE: &str = "424242";
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
    prompts: Vec<String>,
    errors: Vec<String>,
}

impl FakeConv {
    fn typing(replies: impl IntoIterator<Item = Reply>) -> Self {
        FakeConv {
            replies: replies.into_iter().collect(),
            ..Default::default()
        }
    }
}

impl Conversation for FakeConv {
    fn prompt_secret(&mut self, msg: &str) -> Result<Option<Secret>, ConvError> {
        self.prompts.push(msg.to_string());
        match self.replies.pop_front() {
            Some(Reply::Text(t)) => Ok(Some(Secret::new(t))),
            Some(Reply::Nothing) => Ok(None),
            Some(Reply::Fail) | None => Err(ConvError("PAM_CONV_ERR".into())),
        }
    }

    fn error(&mut self, msg: &str) {
        self.errors.push(msg.to_string());
    }

    fn info(&mut self, _msg: &str) {
        panic!("the contract shows no TEXT_INFO");
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

fn challenge(expires_in_secs: u64, resends_left: u32) -> Response {
    Response::Challenge(ChallengeInfo {
        masked_mobile: MaskedMobile::new("*******4567").unwrap(),
        expires_in_secs,
        resends_left,
        attempts_left: 3,
        code_length: 6,
        alphabet: CodeAlphabet::Numeric,
    })
}

fn error(kind: ErrorKind, message: &str) -> Response {
    Response::Error {
        kind,
        message: message.into(),
    }
}

fn unreachable() -> ClientError {
    ClientError::Connect {
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

// --- the happy path and what the daemon is told ---

#[test]
fn verified_first_try() {
    let r = secure(
        [Text(CODE)],
        [Ok(challenge(300, 3)), Ok(Response::Verified)],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.conv.prompts, vec![PROMPT]);
    assert!(r.conv.errors.is_empty());
    assert_eq!(r.requests.first(), Some(&Request::Begin(begin())));
    assert_eq!(r.verifies(), vec![CODE]);
    assert_eq!(
        r.summary(),
        &(
            Level::Info,
            "smsotp: user=alice service=sshd rhost=192.0.2.1 tty=ssh result=verified".to_string()
        )
    );
}

#[test]
fn replies_are_trimmed_before_verifying() {
    let r = secure(
        [Text("  424242 \t")],
        [Ok(challenge(300, 3)), Ok(Response::Verified)],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.verifies(), vec![CODE]);
}

#[test]
fn verified_at_begin_needs_no_prompt() {
    // The daemon's policy may exempt a user; it says so with `Verified`.
    let r = secure([], [Ok(Response::Verified)]);
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert!(r.conv.prompts.is_empty());
}

#[test]
fn a_full_number_from_the_daemon_is_masked_anyway() {
    let info = ChallengeInfo {
        masked_mobile: MaskedMobile::new("+15551234567").unwrap(),
        expires_in_secs: 300,
        resends_left: 3,
        attempts_left: 3,
        code_length: 6,
        alphabet: CodeAlphabet::Numeric,
    };
    let r = secure(
        [Text(CODE)],
        [Ok(Response::Challenge(info)), Ok(Response::Verified)],
    );
    assert_eq!(r.conv.prompts, vec![PROMPT]);
}

// --- wrong codes and tries ---

#[test]
fn wrong_then_right() {
    let r = secure(
        [Text("111111"), Text(CODE)],
        [
            Ok(challenge(300, 3)),
            Ok(Response::Wrong { attempts_left: 2 }),
            Ok(Response::Verified),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.conv.errors, vec!["Wrong code. 2 tries left."]);
    assert_eq!(r.conv.prompts.len(), 2);
}

#[test]
fn one_try_left_is_singular() {
    let r = secure(
        [Text("111111"), Text(CODE)],
        [
            Ok(challenge(300, 3)),
            Ok(Response::Wrong { attempts_left: 1 }),
            Ok(Response::Verified),
        ],
    );
    assert_eq!(r.conv.errors, vec!["Wrong code. 1 try left."]);
}

#[test]
fn tries_exhausted_is_maxtries() {
    let r = secure(
        [Text("111111")],
        [Ok(challenge(300, 3)), Ok(Response::TriesExhausted)],
    );
    assert_eq!(r.code, PamResultCode::PAM_MAXTRIES);
    assert_eq!(r.conv.errors, vec![messages::TRIES_EXHAUSTED]);
    assert_eq!(r.summary().0, Level::Notice);
    assert!(r.summary().1.ends_with("result=tries-exhausted"));
}

#[test]
fn wrong_with_zero_left_ends_like_exhausted() {
    let r = secure(
        [Text("111111")],
        [
            Ok(challenge(300, 3)),
            Ok(Response::Wrong { attempts_left: 0 }),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_MAXTRIES);
    assert_eq!(r.conv.errors, vec![messages::TRIES_EXHAUSTED]);
}

#[test]
fn tries_exhausted_at_begin_is_maxtries() {
    // A locked-out user: the daemon refuses before sending anything.
    let r = secure([], [Ok(Response::TriesExhausted)]);
    assert_eq!(r.code, PamResultCode::PAM_MAXTRIES);
    assert!(r.conv.prompts.is_empty());
}

// --- expiry and resend ---

#[test]
fn expired_with_resend_prompts_again_and_r_resends() {
    let r = secure(
        [Text(CODE), Text("r"), Text("777777")],
        [
            Ok(challenge(300, 3)),
            Ok(Response::Expired { can_resend: true }),
            Ok(challenge(120, 2)),
            Ok(Response::Verified),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(
        r.conv.errors,
        vec!["The code has expired. Type 'r' for a new one."]
    );
    assert_eq!(r.resends(), 1);
    assert_eq!(r.verifies(), vec![CODE, "777777"]);
    assert_eq!(
        r.conv.prompts.get(2).map(String::as_str),
        Some("Code sent to *******4567 (expires in 2 min). Enter code, or 'r' to resend: ")
    );
}

#[test]
fn expired_without_resend_is_auth_err() {
    let r = secure(
        [Text(CODE)],
        [
            Ok(challenge(300, 0)),
            Ok(Response::Expired { can_resend: false }),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(r.conv.errors, vec!["The code has expired."]);
}

#[test]
fn capital_r_resends_and_the_new_challenge_drives_the_prompt() {
    let r = secure(
        [Text("R"), Text(CODE)],
        [
            Ok(challenge(300, 1)),
            Ok(challenge(45, 0)),
            Ok(Response::Verified),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.resends(), 1);
    assert_eq!(
        r.conv.prompts.get(1).map(String::as_str),
        Some("Code sent to *******4567 (expires in 45 s). Enter code: ")
    );
    assert!(r.conv.errors.is_empty());
}

#[test]
fn resend_refused_shows_the_reason_and_prompts_again() {
    let r = secure(
        [Text("r"), Text(CODE)],
        [
            Ok(challenge(300, 0)),
            Ok(Response::ResendRefused {
                reason: "resend limit reached".into(),
            }),
            Ok(Response::Verified),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(
        r.conv.errors,
        vec!["Cannot send another code: resend limit reached"]
    );
}

#[test]
fn send_failed_on_resend_is_authinfo_unavail() {
    let r = secure(
        [Text("r")],
        [Ok(challenge(300, 3)), Ok(Response::SendFailed)],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.conv.errors, vec![messages::SEND_FAILED]);
}

// --- refusals at begin ---

#[test]
fn no_mobile_is_auth_err() {
    let r = secure([], [Ok(Response::NoMobile)]);
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(
        r.conv.errors,
        vec![
            "No mobile number is registered for SMS codes on this account. Ask your administrator."
        ]
    );
}

#[test]
fn send_failed_is_authinfo_unavail() {
    let r = secure([], [Ok(Response::SendFailed)]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(
        r.conv.errors,
        vec!["The SMS code could not be sent. Try again later or contact your administrator."]
    );
}

#[test]
fn permission_denied_is_auth_err_with_the_daemons_message() {
    let msg = "not allowed to request a code for another user";
    let r = secure([], [Ok(error(ErrorKind::PermissionDenied, msg))]);
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(r.conv.errors, vec![msg]);
}

#[test]
fn other_daemon_errors_are_authinfo_unavail_in_both_failmodes() {
    for kind in [
        ErrorKind::Internal,
        ErrorKind::BadRequest,
        ErrorKind::UnsupportedVersion,
        ErrorKind::Busy,
    ] {
        for failmode in [FailMode::Secure, FailMode::Safe] {
            let r = run(failmode, [], [Ok(error(kind, "try later"))]);
            assert_eq!(
                r.code,
                PamResultCode::PAM_AUTHINFO_UNAVAIL,
                "{kind:?} {failmode:?}"
            );
            assert_eq!(r.conv.errors, vec!["try later"]);
        }
    }
}

#[test]
fn daemon_errors_after_a_challenge_are_mapped_the_same_way() {
    let r = secure(
        [Text(CODE)],
        [
            Ok(challenge(300, 3)),
            Ok(error(ErrorKind::Internal, "oops")),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    let r = secure(
        [Text(CODE)],
        [
            Ok(challenge(300, 3)),
            Ok(error(ErrorKind::PermissionDenied, "no")),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
}

#[test]
fn daemon_text_cannot_drive_the_terminal() {
    let r = secure(
        [],
        [Ok(error(ErrorKind::Internal, "\x1b]0;owned\x07down\r\n"))],
    );
    assert_eq!(r.conv.errors, vec!["]0;owned down"]);
}

// --- an unreachable daemon ---

#[test]
fn unreachable_secure_is_authinfo_unavail() {
    for e in [
        unreachable(),
        ClientError::Timeout(Duration::from_secs(20)),
        ClientError::Frame(FrameError::Closed),
    ] {
        let r = run_connect(FailMode::Secure, [], |_| Err(e));
        assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
        assert_eq!(r.conv.errors, vec!["The SMS code service is unavailable."]);
        assert!(r.log.0.iter().all(|(level, _)| *level != Level::Alert));
    }
}

#[test]
fn unreachable_safe_is_ignore_with_an_alert() {
    let r = run_connect(FailMode::Safe, [], |_| Err(unreachable()));
    assert_eq!(r.code, PamResultCode::PAM_IGNORE);
    assert!(r.conv.errors.is_empty());
    assert!(r.conv.prompts.is_empty());
    let alert = r
        .log
        .0
        .iter()
        .find(|(level, _)| *level == Level::Alert)
        .unwrap();
    assert!(
        alert
            .1
            .starts_with("smsotp daemon unreachable, failmode=safe lets the login through"),
        "{}",
        alert.1
    );
    assert!(alert.1.contains("user=alice"));
}

#[test]
fn begin_timing_out_counts_as_unreachable() {
    let timeout = || Err(ClientError::Timeout(Duration::from_secs(20)));
    let r = run(FailMode::Safe, [], [timeout()]);
    assert_eq!(r.code, PamResultCode::PAM_IGNORE);
    let r = run(FailMode::Secure, [], [timeout()]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
}

#[test]
fn a_refusing_daemon_is_not_unreachable() {
    // Busy at hello arrives as `Refused`; a version skew as `VersionMismatch`.
    let r = run_connect(FailMode::Safe, [], |_| {
        Err(ClientError::Refused("too many connections".into()))
    });
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.conv.errors, vec!["too many connections"]);
    let r = run_connect(FailMode::Safe, [], |_| {
        Err(ClientError::VersionMismatch { server: 2 })
    });
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
    let r = run_connect(FailMode::Safe, [], |_| {
        Err(ClientError::Frame(FrameError::Malformed("x".into())))
    });
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
}

#[test]
fn connection_lost_after_challenge_is_unavail_in_both_failmodes() {
    for failmode in [FailMode::Secure, FailMode::Safe] {
        for lost in [
            ClientError::Frame(FrameError::Closed),
            ClientError::Timeout(Duration::from_secs(20)),
        ] {
            let r = run(failmode, [Text(CODE)], [Ok(challenge(300, 3)), Err(lost)]);
            assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL, "{failmode:?}");
            assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
            assert!(r.summary().1.contains("result=connection-lost"));
        }
    }
}

// --- the prompt itself ---

#[test]
fn empty_replies_prompt_again_without_asking_the_daemon() {
    let r = secure(
        [Text(""), Text("   "), Text(CODE)],
        [Ok(challenge(300, 3)), Ok(Response::Verified)],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.conv.prompts.len(), 3);
    assert_eq!(r.requests.len(), 2);
    assert!(r.conv.errors.is_empty());
}

#[test]
fn at_most_sixteen_prompts() {
    let r = secure((0..40).map(|_| Text("")), [Ok(challenge(300, 3))]);
    assert_eq!(r.code, PamResultCode::PAM_MAXTRIES);
    assert_eq!(r.conv.prompts.len(), 16);
    assert!(r.summary().1.ends_with("result=prompt-limit"));
}

#[test]
fn the_sixteenth_reply_still_counts() {
    let replies = (0..15).map(|_| Text("")).chain([Text(CODE)]);
    let r = secure(replies, [Ok(challenge(300, 3)), Ok(Response::Verified)]);
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.conv.prompts.len(), 16);
}

#[test]
fn resends_count_toward_the_prompt_cap() {
    let answers = std::iter::once(Ok(challenge(300, 3))).chain((0..16).map(|_| {
        Ok(Response::ResendRefused {
            reason: "slow down".into(),
        })
    }));
    let r = secure((0..16).map(|_| Text("r")), answers);
    assert_eq!(r.code, PamResultCode::PAM_MAXTRIES);
    assert_eq!(r.resends(), 16);
}

#[test]
fn a_reply_longer_than_any_code_is_not_sent() {
    let long: &'static str = Box::leak("9".repeat(MAX_CODE + 1).into_boxed_str());
    let r = secure(
        [Text(long), Text(CODE)],
        [Ok(challenge(300, 3)), Ok(Response::Verified)],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.verifies(), vec![CODE]);
    assert_eq!(r.conv.errors, vec![messages::NOT_A_CODE]);
}

#[test]
fn conversation_failure_is_conv_err() {
    let r = secure([Reply::Fail], [Ok(challenge(300, 3))]);
    assert_eq!(r.code, PamResultCode::PAM_CONV_ERR);
    assert!(r.conv.errors.is_empty());
    let r = secure([Reply::Nothing], [Ok(challenge(300, 3))]);
    assert_eq!(r.code, PamResultCode::PAM_CONV_ERR);
    assert_eq!(r.requests.len(), 1);
}

// --- answers that make no sense where they arrive ---

#[test]
fn out_of_place_answers_are_protocol_errors() {
    let hello = || Response::Hello {
        version: 1,
        server: "x".into(),
    };
    for at_begin in [
        hello(),
        Response::Wrong { attempts_left: 2 },
        Response::ResendRefused { reason: "x".into() },
    ] {
        let r = run(FailMode::Safe, [], [Ok(at_begin)]);
        assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
        assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
    }
    let r = secure([Text(CODE)], [Ok(challenge(300, 3)), Ok(hello())]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    // Expired{can_resend: true} before any prompt cannot be acted on.
    let r = secure([], [Ok(Response::Expired { can_resend: true })]);
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
}

// --- logging ---

#[test]
fn debug_lines_describe_steps_without_secrets() {
    let r = secure(
        [Text(""), Text("r"), Text("111111"), Text(CODE)],
        [
            Ok(challenge(300, 3)),
            Ok(challenge(300, 2)),
            Ok(Response::Wrong { attempts_left: 2 }),
            Ok(Response::Verified),
        ],
    );
    let debug: Vec<&str> = r
        .log
        .0
        .iter()
        .filter(|(level, _)| *level == Level::Debug)
        .map(|(_, line)| line.as_str())
        .collect();
    assert!(debug.iter().any(|l| l.contains("empty reply")));
    assert!(debug.iter().any(|l| l.contains("resend requested")));
    assert!(debug.iter().any(|l| l.contains("prompts=4 resends=1")));
    assert!(r.log.0.iter().all(|(_, l)| !l.contains("111111")));
}

#[test]
fn failures_log_a_reason() {
    let r = run_connect(FailMode::Secure, [], |_| Err(unreachable()));
    let (level, line) = r.summary();
    assert_eq!(*level, Level::Warning);
    assert!(
        line.contains("result=unavailable reason=\"connect: cannot connect"),
        "{line}"
    );
}

#[test]
fn odd_values_are_quoted_in_logs() {
    assert_eq!(field("sshd"), "sshd");
    assert_eq!(field("a b"), "\"a b\"");
    assert_eq!(field("a\nb"), "\"a\\nb\"");
    assert_eq!(field(""), "\"\"");
}
