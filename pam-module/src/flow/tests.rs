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

// --- the happy path and what the daemon is told ---

#[test]
fn verified_first_try() {
    let r = secure([Text(CODE)], [Ok(challenge(300, 3)), Ok(verified())]);
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.conv.prompts, vec![PROMPT]);
    assert!(r.conv.errors.is_empty());
    assert!(r.conv.infos.is_empty(), "an SMS code gets no TEXT_INFO");
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
        [Ok(challenge(300, 3)), Ok(verified())],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.verifies(), vec![CODE]);
}

#[test]
fn verified_anywhere_but_after_verify_is_never_success() {
    // Exemptions come as `Skip` (PAM_IGNORE); a `Verified` that checked no
    // code is a daemon bug and must not let anyone in.
    for failmode in [FailMode::Secure, FailMode::Safe] {
        let r = run(failmode, [], [Ok(verified())]);
        assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
        assert!(r.conv.prompts.is_empty());
        assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
        assert!(r.summary().1.contains("result=protocol-error"));
    }
    let r = secure([Text("r")], [Ok(challenge(300, 3)), Ok(verified())]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    let r = secure(
        [Text("+15551234567")],
        [Ok(Response::AskMobile), Ok(verified())],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
}

#[test]
fn a_full_number_from_the_daemon_is_masked_anyway() {
    let info = ChallengeInfo {
        masked_mobile: MaskedMobile::new("+15551234567").unwrap(),
        ..info(300, 3)
    };
    let r = secure(
        [Text(CODE)],
        [Ok(Response::Challenge(info)), Ok(verified())],
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
            Ok(verified()),
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
            Ok(verified()),
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
            Ok(verified()),
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
        [Ok(challenge(300, 1)), Ok(challenge(45, 0)), Ok(verified())],
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
            Ok(verified()),
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
    let refused = ClientError::Absent {
        path: "/run/smsotp/smsotpd.sock".into(),
        source: io::Error::from_raw_os_error(libc::ECONNREFUSED),
    };
    for e in [unreachable(), refused] {
        let r = run_connect(FailMode::Secure, [], |_| Err(e));
        assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
        assert_eq!(r.conv.errors, vec!["The SMS code service is unavailable."]);
        assert!(r.log.0.iter().all(|(level, _)| *level != Level::Alert));
    }
}

/// Issue 9, finding 1: a connect flood made the module's connect fail with
/// EAGAIN, which counted as "unreachable", and `safe` let 158 of 228
/// wrong-code logins through. A present daemon that cannot serve us now
/// (full backlog, silent or hanging up at the hello, any other connect
/// error, not root) denies in every failmode.
#[test]
fn a_present_daemon_that_gives_no_challenge_denies_in_every_failmode() {
    let path = || "/run/smsotp/smsotpd.sock".to_string();
    let cases = || {
        [
            (
                ClientError::Backlog {
                    path: path(),
                    waited: Duration::from_secs(20),
                },
                messages::BUSY,
                "result=busy",
            ),
            (
                ClientError::Connect {
                    path: path(),
                    source: io::Error::from_raw_os_error(libc::EAGAIN),
                },
                messages::UNAVAILABLE,
                "result=daemon-unresponsive",
            ),
            (
                ClientError::Connect {
                    path: path(),
                    source: io::Error::from_raw_os_error(libc::EACCES),
                },
                messages::UNAVAILABLE,
                "result=daemon-unresponsive",
            ),
            (
                ClientError::Timeout(Duration::from_secs(20)),
                messages::UNAVAILABLE,
                "result=daemon-unresponsive",
            ),
            (
                ClientError::Frame(FrameError::Closed),
                messages::UNAVAILABLE,
                "result=daemon-unresponsive",
            ),
            (
                ClientError::Frame(FrameError::Io(io::Error::from_raw_os_error(
                    libc::ECONNRESET,
                ))),
                messages::UNAVAILABLE,
                "result=daemon-unresponsive",
            ),
        ]
    };
    for failmode in [FailMode::Safe, FailMode::Secure] {
        for (e, shown, result) in cases() {
            let what = e.to_string();
            let r = run_connect(failmode, [], |_| Err(e));
            assert_eq!(
                r.code,
                PamResultCode::PAM_AUTHINFO_UNAVAIL,
                "{failmode:?} {what}"
            );
            assert_eq!(r.conv.errors, vec![shown], "{what}");
            assert!(r.summary().1.contains(result), "{}", r.summary().1);
            assert!(r.log.0.iter().all(|(level, _)| *level != Level::Alert));
        }
    }
}

#[test]
fn a_daemon_that_is_not_root_is_refused_with_an_alert() {
    for failmode in [FailMode::Safe, FailMode::Secure] {
        let r = run_connect(failmode, [], |_| {
            Err(ClientError::NotRoot {
                path: "/run/smsotp/smsotpd.sock".into(),
                uid: 1000,
            })
        });
        assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
        assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
        let (level, line) = r.summary();
        assert_eq!(*level, Level::Alert);
        assert!(line.contains("result=daemon-not-root"), "{line}");
        assert!(line.contains("uid 1000"), "{line}");
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
fn begin_timing_out_denies_even_in_safe_mode() {
    // The daemon answered the hello: a slow begin is a slow gateway, and
    // letting it through would let whoever slows the gateway skip the code.
    let timeout = || Err(ClientError::Timeout(Duration::from_secs(20)));
    let r = run(FailMode::Safe, [], [timeout()]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
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
        [Ok(challenge(300, 3)), Ok(verified())],
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
    let r = secure(replies, [Ok(challenge(300, 3)), Ok(verified())]);
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
        [Ok(challenge(300, 3)), Ok(verified())],
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
    // Answers meant for smsotpctl are never a login's.
    let admin = || {
        [
            Response::Done {
                message: "ok".into(),
            },
            Response::BackupCodes {
                codes: vec![Secret::new("abcd-efgh-2345")],
            },
            Response::TestSent {
                provider: "outbox".into(),
                detail: "ok".into(),
            },
        ]
    };
    for answer in admin() {
        let r = run(FailMode::Safe, [], [Ok(answer)]);
        assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
        assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
    }
    for answer in admin() {
        let r = secure([Text(CODE)], [Ok(challenge(300, 3)), Ok(answer)]);
        assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    }
    // Expired{can_resend: true} before any prompt cannot be acted on.
    let r = secure([], [Ok(Response::Expired { can_resend: true })]);
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
}

// --- skips ---

#[test]
fn skip_is_ignore_silently_with_an_info_line() {
    let reasons = [
        SkipReason::ServiceNotEnabled,
        SkipReason::ExemptUser,
        SkipReason::ExemptGroup,
        SkipReason::TrustedNetwork,
        SkipReason::GracePeriod,
        SkipReason::OptedOut,
        SkipReason::NoMobile,
    ];
    for reason in reasons {
        for failmode in [FailMode::Secure, FailMode::Safe] {
            let r = run(failmode, [], [Ok(Response::Skip { reason })]);
            assert_eq!(r.code, PamResultCode::PAM_IGNORE, "{reason:?}");
            assert!(r.conv.prompts.is_empty());
            assert!(r.conv.errors.is_empty());
            assert!(r.conv.infos.is_empty());
            assert_eq!(
                r.summary(),
                &(
                    Level::Info,
                    format!(
                        "smsotp: user=alice service=sshd rhost=192.0.2.1 tty=ssh result=skipped reason={}",
                        reason.as_str()
                    )
                )
            );
        }
    }
}

#[test]
fn skip_after_a_challenge_or_at_enrolment_is_a_protocol_error() {
    let skip = || {
        Ok(Response::Skip {
            reason: SkipReason::GracePeriod,
        })
    };
    let r = secure([Text(CODE)], [Ok(challenge(300, 3)), skip()]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert!(r.summary().1.contains("result=protocol-error"));
    let r = secure([Text("+15551234567")], [Ok(Response::AskMobile), skip()]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
}

// --- backup codes ---

#[test]
fn backup_code_success_tells_how_many_are_left() {
    let r = secure(
        [Text("abcd-efgh-2345")],
        [Ok(challenge(300, 3)), Ok(backup_verified(Some(7)))],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert!(r.conv.errors.is_empty());
    assert_eq!(
        r.conv.infos,
        vec!["Backup code accepted. 7 backup codes left."]
    );
    assert_eq!(r.verifies(), vec!["abcd-efgh-2345"]);
    let (level, line) = r.summary();
    assert_eq!(*level, Level::Info);
    assert!(
        line.ends_with("result=verified method=backup-code backup_codes_left=7"),
        "{line}"
    );
}

#[test]
fn few_backup_codes_left_suggests_new_ones() {
    let hint = " Generate new ones with: smsotpctl backup-codes generate";
    for (left, text) in [
        (3, "Backup code accepted. 3 backup codes left.".to_string()),
        (
            2,
            format!("Backup code accepted. 2 backup codes left.{hint}"),
        ),
        (
            1,
            format!("Backup code accepted. 1 backup code left.{hint}"),
        ),
        (
            0,
            format!("Backup code accepted. 0 backup codes left.{hint}"),
        ),
    ] {
        let r = secure(
            [Text("abcd-efgh-2345")],
            [Ok(challenge(300, 3)), Ok(backup_verified(Some(left)))],
        );
        assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
        assert_eq!(r.conv.infos, vec![text]);
    }
    let r = secure(
        [Text("abcd-efgh-2345")],
        [Ok(challenge(300, 3)), Ok(backup_verified(None))],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.conv.infos, vec!["Backup code accepted."]);
}

#[test]
fn backup_codes_allowed_keep_the_normal_prompt() {
    let both = Response::Challenge(ChallengeInfo {
        backup_allowed: true,
        ..info(300, 3)
    });
    let r = secure(
        [Text("abcd-efgh-2345")],
        [Ok(both), Ok(backup_verified(Some(9)))],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.conv.prompts, vec![PROMPT]);
}

#[test]
fn no_sms_sent_asks_for_a_backup_code() {
    let r = secure(
        [Text("abcd-efgh-2345")],
        [
            Ok(backup_only(Some("the SMS provider could not be reached"))),
            Ok(backup_verified(Some(4))),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(
        r.conv.prompts,
        vec!["No SMS was sent (the SMS provider could not be reached). Enter a backup code: "]
    );
    assert_eq!(
        r.conv.infos,
        vec!["Backup code accepted. 4 backup codes left."]
    );
    let r = secure(
        [Text("111111"), Text("abcd-efgh-2345")],
        [
            Ok(backup_only(None)),
            Ok(Response::Wrong { attempts_left: 2 }),
            Ok(backup_verified(Some(4))),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(
        r.conv.prompts,
        vec!["No SMS was sent. Enter a backup code: "; 2]
    );
    assert_eq!(r.conv.errors, vec!["Wrong code. 2 tries left."]);
}

#[test]
fn r_at_a_backup_only_prompt_is_left_to_the_daemon() {
    // Not offered, but harmless: the daemon refuses it and says why.
    let r = secure(
        [Text("r"), Text("abcd-efgh-2345")],
        [
            Ok(backup_only(None)),
            Ok(Response::ResendRefused {
                reason: "no SMS can be sent right now; use a backup code".into(),
            }),
            Ok(backup_verified(Some(4))),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.resends(), 1);
    assert_eq!(
        r.conv.errors,
        vec!["Cannot send another code: no SMS can be sent right now; use a backup code"]
    );
}

#[test]
fn a_challenge_nothing_can_answer_is_a_protocol_error() {
    let dead_end = Response::Challenge(ChallengeInfo {
        sms_sent: false,
        backup_allowed: false,
        ..info(300, 0)
    });
    let r = run(FailMode::Safe, [], [Ok(dead_end)]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert!(r.conv.prompts.is_empty());
    assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
}

// --- lockout and send refusals ---

const LOCKED_15: &str = "Too many wrong codes: SMS codes are locked for this account for 15 min.";

#[test]
fn locked_at_begin_is_auth_err_with_the_time_left() {
    let r = secure(
        [],
        [Ok(Response::Locked {
            retry_after_secs: 900,
        })],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert!(r.conv.prompts.is_empty());
    assert_eq!(r.conv.errors, vec![LOCKED_15]);
    let (level, line) = r.summary();
    assert_eq!(*level, Level::Notice);
    assert!(line.ends_with("result=locked retry_after=900s"), "{line}");
    let r = secure(
        [],
        [Ok(Response::Locked {
            retry_after_secs: 42,
        })],
    );
    assert_eq!(
        r.conv.errors,
        vec!["Too many wrong codes: SMS codes are locked for this account for 42 s."]
    );
    let r = secure(
        [],
        [Ok(Response::Locked {
            retry_after_secs: 841,
        })],
    );
    assert_eq!(r.conv.errors, vec![LOCKED_15], "minutes round up");
}

#[test]
fn locked_after_a_wrong_code_or_a_resend_ends_the_login() {
    for reply in ["111111", "r"] {
        let r = secure(
            [Text(reply), Text(CODE)],
            [
                Ok(challenge(300, 3)),
                Ok(Response::Locked {
                    retry_after_secs: 900,
                }),
            ],
        );
        assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR, "{reply}");
        assert_eq!(r.conv.prompts.len(), 1);
        assert_eq!(r.conv.errors, vec![LOCKED_15]);
    }
}

#[test]
fn send_refused_is_auth_err_with_the_reason() {
    let r = secure(
        [],
        [Ok(Response::SendRefused {
            reason: "hourly SMS limit for this host reached".into(),
            retry_after_secs: Some(1500),
        })],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(
        r.conv.errors,
        vec![
            "Cannot send a code now: hourly SMS limit for this host reached. Try again in 25 min."
        ]
    );
    let line = &r.summary().1;
    assert!(
        line.ends_with(
            "result=send-refused reason=\"hourly SMS limit for this host reached\" retry_after=1500s"
        ),
        "{line}"
    );
    let r = secure(
        [],
        [Ok(Response::SendRefused {
            reason: "codes cannot be sent to this country".into(),
            retry_after_secs: None,
        })],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(
        r.conv.errors,
        vec!["Cannot send a code now: codes cannot be sent to this country."]
    );
}

#[test]
fn send_refused_on_resend_ends_the_login() {
    let r = secure(
        [Text("r"), Text(CODE)],
        [
            Ok(challenge(300, 3)),
            Ok(Response::SendRefused {
                reason: "too many codes for this user".into(),
                retry_after_secs: Some(30),
            }),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(r.conv.prompts.len(), 1);
    assert_eq!(
        r.conv.errors,
        vec!["Cannot send a code now: too many codes for this user. Try again in 30 s."]
    );
}

// --- enrolment at login ---

#[test]
fn ask_mobile_enrols_and_continues_into_the_code_prompt() {
    let r = secure(
        [Text("  +15551234567 "), Text(CODE)],
        [
            Ok(Response::AskMobile),
            Ok(challenge(300, 3)),
            Ok(verified()),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(r.conv.prompts, vec![prompt::ASK_MOBILE, PROMPT]);
    assert_eq!(
        r.conv.echoed,
        vec![
            "No mobile number is registered for SMS codes. Enter your mobile number with country code (e.g. +15551234567): "
        ]
    );
    assert_eq!(r.enrolls(), vec!["+15551234567"]);
    assert_eq!(r.verifies(), vec![CODE]);
    assert!(r.conv.errors.is_empty());
    // (run_connect checks that the number never reaches the log.)
}

#[test]
fn an_empty_number_ends_the_login() {
    for reply in ["", "   "] {
        let r = secure([Text(reply)], [Ok(Response::AskMobile)]);
        assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
        assert_eq!(r.conv.errors, vec!["No mobile number given."]);
        assert!(r.enrolls().is_empty());
        assert!(r.summary().1.ends_with("result=no-mobile-given"));
    }
}

#[test]
fn an_invalid_number_is_asked_again_then_accepted() {
    let r = secure(
        [Text("12345"), Text("+15551234567"), Text(CODE)],
        [
            Ok(Response::AskMobile),
            Ok(Response::InvalidMobile {
                reason: "not an E.164 number (+ and country code)".into(),
            }),
            Ok(challenge(300, 3)),
            Ok(verified()),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(
        r.conv.errors,
        vec!["That number cannot be used: not an E.164 number (+ and country code)"]
    );
    assert_eq!(r.conv.echoed.len(), 2);
    assert_eq!(r.enrolls(), vec!["12345", "+15551234567"]);
}

#[test]
fn three_invalid_numbers_end_the_login() {
    let invalid = || {
        Ok(Response::InvalidMobile {
            reason: "country not allowed".into(),
        })
    };
    let r = secure(
        [Text("+71"), Text("+72"), Text("+73"), Text("+74")],
        [Ok(Response::AskMobile), invalid(), invalid(), invalid()],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(r.conv.echoed.len(), 3);
    assert_eq!(r.enrolls().len(), 3);
    assert_eq!(
        r.conv.errors,
        vec!["That number cannot be used: country not allowed"; 3]
    );
    assert!(r.summary().1.ends_with("result=invalid-mobile"));
}

#[test]
fn numbers_the_protocol_would_refuse_are_invalid_locally() {
    let long: &'static str = Box::leak("1".repeat(MAX_MOBILE + 1).into_boxed_str());
    let r = secure(
        [
            Text(long),
            Text("+1555\x1b1234567"),
            Text("+15551234567"),
            Text(CODE),
        ],
        [
            Ok(Response::AskMobile),
            Ok(challenge(300, 3)),
            Ok(verified()),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(
        r.conv.errors,
        vec![
            "That number cannot be used: too long",
            "That number cannot be used: contains control characters",
        ]
    );
    assert_eq!(
        r.enrolls(),
        vec!["+15551234567"],
        "only the valid one is sent"
    );
    // Local refusals count toward the three numbers too.
    let r = secure(
        [Text(long), Text(long), Text(long)],
        [Ok(Response::AskMobile)],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert!(r.enrolls().is_empty());
}

#[test]
fn enrolment_prompts_count_toward_the_prompt_cap() {
    let replies = [Text("+71"), Text("+15551234567")]
        .into_iter()
        .chain((0..40).map(|_| Text("")));
    let r = secure(
        replies,
        [
            Ok(Response::AskMobile),
            Ok(Response::InvalidMobile {
                reason: "country not allowed".into(),
            }),
            Ok(challenge(300, 3)),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_MAXTRIES);
    assert_eq!(r.conv.prompts.len(), 16);
    assert_eq!(r.conv.echoed.len(), 2);
}

#[test]
fn enrolment_refusals_end_the_login_like_at_begin() {
    let r = secure(
        [Text("+15551234567")],
        [
            Ok(Response::AskMobile),
            Ok(Response::SendRefused {
                reason: "hourly SMS limit reached".into(),
                retry_after_secs: None,
            }),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(
        r.conv.errors,
        vec!["Cannot send a code now: hourly SMS limit reached."]
    );
    let r = secure(
        [Text("+15551234567")],
        [Ok(Response::AskMobile), Ok(Response::SendFailed)],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.conv.errors, vec![messages::SEND_FAILED]);
}

#[test]
fn a_lost_link_while_enrolling_is_unavail_even_when_safe() {
    // The daemon answered begin, so it is up; a slow send that times out
    // must not become fail-open.
    for lost in [
        ClientError::Timeout(Duration::from_secs(20)),
        ClientError::Frame(FrameError::Closed),
    ] {
        let r = run(
            FailMode::Safe,
            [Text("+15551234567")],
            [Ok(Response::AskMobile), Err(lost)],
        );
        assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
        assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
        assert!(r.summary().1.contains("result=connection-lost"));
    }
}

#[test]
fn enrolment_conversation_failure_is_conv_err() {
    let r = secure([Reply::Fail], [Ok(Response::AskMobile)]);
    assert_eq!(r.code, PamResultCode::PAM_CONV_ERR);
    let r = secure([Reply::Nothing], [Ok(Response::AskMobile)]);
    assert_eq!(r.code, PamResultCode::PAM_CONV_ERR);
    assert!(r.enrolls().is_empty());
}

#[test]
fn enrolment_answers_out_of_place_are_protocol_errors() {
    let invalid = || Ok(Response::InvalidMobile { reason: "x".into() });
    // InvalidMobile at begin, AskMobile or InvalidMobile mid-challenge,
    // AskMobile in answer to enroll.
    let r = run(FailMode::Safe, [], [invalid()]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    let r = secure(
        [Text(CODE)],
        [Ok(challenge(300, 3)), Ok(Response::AskMobile)],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    let r = secure([Text(CODE)], [Ok(challenge(300, 3)), invalid()]);
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    let r = secure(
        [Text("+15551234567")],
        [Ok(Response::AskMobile), Ok(Response::AskMobile)],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert!(r.summary().1.contains("ask_mobile in answer to enroll"));
}

// --- show_reasons = false ---

#[test]
fn hidden_reasons_say_only_authentication_failed() {
    let failed = messages::AUTH_FAILED;
    // Wrong code, then exhausted.
    let r = secure(
        [Text("111111"), Text("222222")],
        [
            Ok(quiet_challenge(300, 3)),
            Ok(Response::Wrong { attempts_left: 1 }),
            Ok(Response::TriesExhausted),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_MAXTRIES);
    assert_eq!(r.conv.errors, vec![failed, failed]);
    // Expired with and without a resend.
    let r = secure(
        [Text(CODE), Text(CODE)],
        [
            Ok(quiet_challenge(300, 3)),
            Ok(Response::Expired { can_resend: true }),
            Ok(Response::Expired { can_resend: false }),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(r.conv.errors, vec![failed, failed]);
    // Resend refused, then locked.
    let r = secure(
        [Text("r"), Text("111111")],
        [
            Ok(quiet_challenge(300, 0)),
            Ok(Response::ResendRefused {
                reason: "limit".into(),
            }),
            Ok(Response::Locked {
                retry_after_secs: 900,
            }),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(r.conv.errors, vec![failed, failed]);
    // Send refused on resend; an overlong reply; zero tries left.
    let r = secure(
        [Text("r")],
        [
            Ok(quiet_challenge(300, 3)),
            Ok(Response::SendRefused {
                reason: "budget".into(),
                retry_after_secs: Some(60),
            }),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(r.conv.errors, vec![failed]);
    let long: &'static str = Box::leak("9".repeat(MAX_CODE + 1).into_boxed_str());
    let r = secure(
        [Text(long), Text("111111")],
        [
            Ok(quiet_challenge(300, 3)),
            Ok(Response::Wrong { attempts_left: 0 }),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_MAXTRIES);
    assert_eq!(r.conv.errors, vec![failed, failed]);
}

#[test]
fn hidden_reasons_leave_other_rows_alone() {
    let r = secure(
        [Text("r")],
        [Ok(quiet_challenge(300, 3)), Ok(Response::SendFailed)],
    );
    assert_eq!(r.code, PamResultCode::PAM_AUTHINFO_UNAVAIL);
    assert_eq!(r.conv.errors, vec![messages::SEND_FAILED]);
    let r = secure(
        [Text(CODE)],
        [
            Ok(quiet_challenge(300, 3)),
            Ok(error(ErrorKind::Internal, "oops")),
        ],
    );
    assert_eq!(r.conv.errors, vec!["oops"]);
    let r = secure(
        [Text(CODE)],
        [
            Ok(quiet_challenge(300, 3)),
            Err(ClientError::Frame(FrameError::Closed)),
        ],
    );
    assert_eq!(r.conv.errors, vec![messages::UNAVAILABLE]);
}

#[test]
fn before_a_challenge_the_daemons_messages_are_shown() {
    let r = secure(
        [],
        [Ok(Response::Locked {
            retry_after_secs: 900,
        })],
    );
    assert_eq!(r.conv.errors, vec![LOCKED_15]);
    let r = secure([], [Ok(Response::TriesExhausted)]);
    assert_eq!(r.conv.errors, vec![messages::TRIES_EXHAUSTED]);
}

#[test]
fn the_latest_challenge_decides_whether_reasons_are_shown() {
    let r = secure(
        [Text("111111"), Text("r"), Text("222222"), Text(CODE)],
        [
            Ok(quiet_challenge(300, 3)),
            Ok(Response::Wrong { attempts_left: 2 }),
            Ok(challenge(300, 2)),
            Ok(Response::Wrong { attempts_left: 2 }),
            Ok(verified()),
        ],
    );
    assert_eq!(r.code, PamResultCode::PAM_SUCCESS);
    assert_eq!(
        r.conv.errors,
        vec![messages::AUTH_FAILED, "Wrong code. 2 tries left."]
    );
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
            Ok(verified()),
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
        line.contains("result=unavailable reason=\"connect: no daemon at"),
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
