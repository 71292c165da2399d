//! The login itself: ask the daemon for a challenge, prompt, verify, and
//! turn every answer into the PAM code and message fixed in
//! docs/CONTRACT.md. Generic over the conversation, the daemon link and the
//! log so that every row of the contract is tested without libpam.

use crate::messages;
use crate::options::FailMode;
use crate::prompt;
use crate::syslog::{Level, Log};
use pam::constants::PamResultCode;
use smsotp_proto::limits::MAX_CODE;
use smsotp_proto::{
    BeginRequest, ChallengeInfo, Client, ClientError, ErrorKind, Request, Response, Secret,
    VerifyMethod,
};
use std::time::Instant;

/// Bounds a login however the replies go (empty replies, resends, wrong
/// codes, numbers typed at the enrolment prompt), so a script at the prompt
/// cannot keep a connection open forever.
pub const MAX_PROMPTS: u32 = 16;

/// Numbers the user may type at the enrolment prompt before the login
/// fails (the daemon closes the connection after as many refusals).
pub const MAX_MOBILE_TRIES: u32 = 3;

/// Sent in the hello; shows up in the daemon's log.
pub const CLIENT_NAME: &str = concat!("pam_smsotp/", env!("CARGO_PKG_VERSION"));

/// The conversation function failed or the application went away.
#[derive(Debug, thiserror::Error)]
#[error("conversation failed: {0}")]
pub struct ConvError(pub String);

pub trait Conversation {
    /// An ECHO_OFF prompt. `Ok(None)` means the application gave no reply.
    fn prompt_secret(&mut self, msg: &str) -> Result<Option<Secret>, ConvError>;
    /// An ECHO_ON prompt (the mobile number at enrolment). The reply is
    /// personal data, so it too arrives in a `Secret` and is wiped.
    fn prompt_echo(&mut self, msg: &str) -> Result<Option<Secret>, ConvError>;
    /// A PAM_ERROR_MSG. Failures to show it are not the login's problem.
    fn error(&mut self, msg: &str);
    /// A PAM_TEXT_INFO. The contract folds the context of a prompt into the
    /// prompt itself (OpenSSH hides lone TEXT_INFO); the only one is the
    /// count of backup codes left after one was used.
    fn info(&mut self, msg: &str);
}

/// One connection to the daemon, which is also the life of one challenge.
pub trait DaemonLink {
    fn call(&mut self, request: &Request) -> Result<Response, ClientError>;
}

impl DaemonLink for Client {
    fn call(&mut self, request: &Request) -> Result<Response, ClientError> {
        Client::call(self, request)
    }
}

/// Runs one login. `connect` opens the link and exchanges hellos; it is a
/// closure so tests can script its failure modes.
pub fn authenticate<C, L, D, F>(
    conv: &mut C,
    log: &mut L,
    failmode: FailMode,
    begin: BeginRequest,
    connect: F,
) -> PamResultCode
where
    C: Conversation,
    L: Log,
    D: DaemonLink,
    F: FnOnce() -> Result<D, ClientError>,
{
    let who = who(&begin);
    let mut login = Login {
        conv,
        log,
        who,
        prompts: 0,
        resends: 0,
        show_reasons: true,
        t: &messages::EN,
    };
    let end = login.run(failmode, begin, connect);
    login.finish(end)
}

/// How a login ended, for the return code and the one summary log line.
struct End {
    code: PamResultCode,
    result: &'static str,
    level: Level,
    reason: Option<String>,
    /// More `key=value` pairs for the summary line, after the reason.
    extra: Vec<(&'static str, String)>,
}

impl End {
    fn new(code: PamResultCode, result: &'static str, level: Level) -> Self {
        End {
            code,
            result,
            level,
            reason: None,
            extra: Vec::new(),
        }
    }

    fn because(mut self, reason: impl ToString) -> Self {
        self.reason = Some(reason.to_string());
        self
    }

    fn with(mut self, key: &'static str, value: impl ToString) -> Self {
        self.extra.push((key, value.to_string()));
        self
    }
}

/// Which request an answer is for: each answer only makes sense after
/// some requests, and anything else is a protocol error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    Begin,
    Enroll,
    Verify,
    Resend,
}

impl Asked {
    fn name(self) -> &'static str {
        match self {
            Asked::Begin => "begin",
            Asked::Enroll => "enroll",
            Asked::Verify => "verify",
            Asked::Resend => "resend",
        }
    }
}

enum Next {
    Prompt,
    Challenge(ChallengeInfo),
    AskMobile,
    InvalidMobile(String),
    Done(End),
}

struct Login<'a, C, L> {
    conv: &'a mut C,
    log: &'a mut L,
    who: String,
    prompts: u32,
    resends: u32,
    /// From the current challenge: false replaces every failure message
    /// with `auth_failed`. True until a challenge exists, so
    /// refusals before one are shown as the daemon words them.
    show_reasons: bool,
    /// The user's language, from the current challenge; English until one
    /// exists (the daemon says it only with a challenge).
    t: &'static messages::Texts,
}

impl<C: Conversation, L: Log> Login<'_, C, L> {
    fn run<D, F>(&mut self, failmode: FailMode, begin: BeginRequest, connect: F) -> End
    where
        D: DaemonLink,
        F: FnOnce() -> Result<D, ClientError>,
    {
        let mut link = match connect() {
            Ok(link) => link,
            Err(e) => return self.no_challenge(failmode, "connect", e),
        };
        self.debug("connected to the daemon; sending begin");
        let answer = match link.call(&Request::Begin(begin)) {
            Ok(answer) => answer,
            // The daemon answered the hello, so it is up: a begin that
            // times out is a slow SMS gateway, which anyone who can slow
            // the gateway could cause. failmode=safe covers only a daemon
            // that cannot be reached, so this always denies.
            Err(e) => return self.no_challenge(FailMode::Secure, "begin", e),
        };
        let info = match self.on_answer(Asked::Begin, answer) {
            Next::Challenge(info) => info,
            Next::AskMobile => match self.enroll(&mut link) {
                Ok(info) => info,
                Err(end) => return end,
            },
            Next::Done(end) => return end,
            // `on_answer` never asks to prompt before a challenge exists,
            // nor reports an invalid number that was never sent.
            Next::Prompt | Next::InvalidMobile(_) => {
                return self.protocol_error("prompt without a challenge")
            }
        };
        self.challenge(&mut link, info)
    }

    /// The prompt loop. Any failure of the link from here on is
    /// PAM_AUTHINFO_UNAVAIL whatever the failmode: a code was sent, so the
    /// daemon was up and the login must not be waved through.
    fn challenge<D: DaemonLink>(&mut self, link: &mut D, mut info: ChallengeInfo) -> End {
        let mut issued = Instant::now();
        loop {
            if self.prompts >= MAX_PROMPTS {
                return prompt_limit();
            }
            self.prompts = self.prompts.saturating_add(1);
            let text = if info.sms_sent {
                let left = info
                    .expires_in_secs
                    .saturating_sub(issued.elapsed().as_secs());
                prompt::challenge_prompt(
                    self.t,
                    info.masked_mobile.as_str(),
                    left,
                    info.resends_left,
                    info.can_call,
                )
            } else {
                prompt::backup_only_prompt(self.t, info.notice.as_deref())
            };
            let reply = match self.conv.prompt_secret(&text) {
                Ok(Some(reply)) => reply,
                Ok(None) => return conv_failed("no reply"),
                Err(e) => return conv_failed(e),
            };
            let reply = Secret::new(reply.expose().trim());
            let (asked, request) = if reply.is_empty() {
                self.debug(&format!("prompt {}: empty reply", self.prompts));
                continue;
            } else if reply.expose().eq_ignore_ascii_case("r") {
                // Also at a backup-only prompt, which does not offer it:
                // the daemon decides (and says why not).
                self.resends = self.resends.saturating_add(1);
                self.debug(&format!("prompt {}: resend requested", self.prompts));
                (Asked::Resend, Request::Resend)
            } else if reply.expose().eq_ignore_ascii_case("v") {
                if !info.can_call {
                    // No voice provider, or a daemon of protocol 3 that
                    // would not know the request: nothing is sent, no try
                    // is spent (a lone `v` is no code).
                    self.debug(&format!("prompt {}: call asked, not offered", self.prompts));
                    self.conv.error(self.t.no_call);
                    continue;
                }
                self.resends = self.resends.saturating_add(1);
                self.debug(&format!("prompt {}: voice call requested", self.prompts));
                (Asked::Resend, Request::Call)
            } else if reply.len() > MAX_CODE {
                self.debug(&format!(
                    "prompt {}: reply too long to be a code",
                    self.prompts
                ));
                self.fail_msg(self.t.not_a_code);
                continue;
            } else {
                self.debug(&format!("prompt {}: verifying a reply", self.prompts));
                (Asked::Verify, Request::Verify { code: reply })
            };
            let answer = match link.call(&request) {
                Ok(answer) => answer,
                Err(e) => return self.link_lost(e),
            };
            match self.on_answer(asked, answer) {
                Next::Prompt => {}
                Next::Challenge(new) => {
                    info = new;
                    issued = Instant::now();
                }
                Next::Done(end) => return end,
                Next::AskMobile | Next::InvalidMobile(_) => {
                    return self.protocol_error("enrolment answer in the middle of a challenge")
                }
            }
        }
    }

    /// Maps one daemon answer to the contract's table.
    fn on_answer(&mut self, asked: Asked, answer: Response) -> Next {
        let prompting = matches!(asked, Asked::Verify | Asked::Resend);
        match answer {
            Response::Challenge(info) => {
                if !info.sms_sent && !info.backup_allowed {
                    // Nothing typed could ever complete it.
                    return Next::Done(
                        self.protocol_error("challenge without an SMS and without backup codes"),
                    );
                }
                self.show_reasons = info.show_reasons;
                self.t = messages::for_tag(info.lang.as_deref());
                self.debug(&format!(
                    "challenge: sent to {} sms_sent={} backup_allowed={} show_reasons={} expires_in={}s resends_left={} attempts_left={}",
                    prompt::mask(info.masked_mobile.as_str()),
                    info.sms_sent,
                    info.backup_allowed,
                    info.show_reasons,
                    info.expires_in_secs,
                    info.resends_left,
                    info.attempts_left
                ));
                Next::Challenge(info)
            }
            // Only a checked code lets the login in: `Verified` anywhere
            // else (the answer to begin, enroll or resend) is a daemon bug,
            // never a success. Exemptions come as `Skip`.
            Response::Verified {
                method,
                backup_codes_left,
            } if asked == Asked::Verify => {
                let end = End::new(PamResultCode::PAM_SUCCESS, "verified", Level::Info);
                Next::Done(match method {
                    VerifyMethod::Sms => end,
                    VerifyMethod::BackupCode => {
                        self.conv
                            .info(&messages::backup_accepted(self.t, backup_codes_left));
                        let end = end.with("method", "backup-code");
                        match backup_codes_left {
                            Some(n) => end.with("backup_codes_left", n),
                            None => end,
                        }
                    }
                })
            }
            // PAM_IGNORE, never PAM_SUCCESS: a stack whose other modules
            // are all optional cannot be passed by a skip alone.
            Response::Skip { reason } if asked == Asked::Begin => Next::Done(
                End::new(PamResultCode::PAM_IGNORE, "skipped", Level::Info)
                    .because(reason.as_str()),
            ),
            Response::AskMobile if asked == Asked::Begin => {
                self.debug("no number on file; asking for one");
                Next::AskMobile
            }
            Response::InvalidMobile { reason } if asked == Asked::Enroll => {
                Next::InvalidMobile(reason)
            }
            // Zero tries left can only end the login; treating it as
            // exhausted keeps a confused daemon from looping the prompt.
            Response::Wrong { attempts_left: 0 } | Response::TriesExhausted => {
                self.fail_msg(self.t.tries_exhausted);
                Next::Done(End::new(
                    PamResultCode::PAM_MAXTRIES,
                    "tries-exhausted",
                    Level::Notice,
                ))
            }
            Response::Wrong { attempts_left } if prompting => {
                self.debug(&format!("wrong code, attempts_left={attempts_left}"));
                self.fail_msg(&messages::wrong(self.t, attempts_left));
                Next::Prompt
            }
            Response::Expired { can_resend: true } if prompting => {
                self.debug("code expired, resend possible");
                self.fail_msg(self.t.expired_resend);
                Next::Prompt
            }
            Response::Expired { .. } => {
                self.fail_msg(self.t.expired);
                Next::Done(End::new(
                    PamResultCode::PAM_AUTH_ERR,
                    "expired",
                    Level::Notice,
                ))
            }
            Response::ResendRefused { reason } if prompting => {
                self.debug(&format!(
                    "resend refused: {}",
                    messages::daemon_text(&reason)
                ));
                self.fail_msg(&messages::resend_refused(self.t, &reason));
                Next::Prompt
            }
            Response::Locked { retry_after_secs } => {
                self.fail_msg(&messages::locked(self.t, retry_after_secs));
                Next::Done(
                    End::new(PamResultCode::PAM_AUTH_ERR, "locked", Level::Notice)
                        .with("retry_after", format!("{retry_after_secs}s")),
                )
            }
            Response::SendRefused {
                reason,
                retry_after_secs,
            } => {
                self.fail_msg(&messages::send_refused(self.t, &reason, retry_after_secs));
                let end = End::new(PamResultCode::PAM_AUTH_ERR, "send-refused", Level::Notice)
                    .because(messages::daemon_text(&reason));
                Next::Done(match retry_after_secs {
                    Some(secs) => end.with("retry_after", format!("{secs}s")),
                    None => end,
                })
            }
            Response::NoMobile => {
                self.conv.error(self.t.no_mobile);
                Next::Done(End::new(
                    PamResultCode::PAM_AUTH_ERR,
                    "no-mobile",
                    Level::Notice,
                ))
            }
            Response::SendFailed => {
                self.conv.error(self.t.send_failed);
                Next::Done(End::new(
                    PamResultCode::PAM_AUTHINFO_UNAVAIL,
                    "send-failed",
                    Level::Warning,
                ))
            }
            Response::Error { kind, message } => Next::Done(self.daemon_error(kind, &message)),
            out_of_place @ (Response::Hello { .. }
            | Response::Verified { .. }
            | Response::Skip { .. }
            | Response::AskMobile
            | Response::InvalidMobile { .. }
            | Response::Wrong { .. }
            | Response::ResendRefused { .. }
            | Response::Status(_)
            | Response::StepUp(_)
            | Response::BackupCodes { .. }
            | Response::Done { .. }
            | Response::TestSent { .. }
            | Response::StoreImported { .. }
            | Response::StoreHealth(_)) => Next::Done(self.protocol_error(&format!(
                "{} in answer to {}",
                answer_name(&out_of_place),
                asked.name()
            ))),
        }
    }

    fn debug(&mut self, msg: &str) {
        self.log
            .log(Level::Debug, &format!("smsotp: debug: {} {msg}", self.who));
    }

    /// Writes the one summary line every login gets and returns its code.
    fn finish(&mut self, end: End) -> PamResultCode {
        let mut line = format!("smsotp: {} result={}", self.who, end.result);
        if let Some(reason) = &end.reason {
            line.push_str(" reason=");
            line.push_str(&field(reason));
        }
        for (key, value) in &end.extra {
            line.push(' ');
            line.push_str(key);
            line.push('=');
            line.push_str(&field(value));
        }
        self.log.log(end.level, &line);
        self.debug(&format!(
            "prompts={} resends={} pam={:?}",
            self.prompts, self.resends, end.code
        ));
        end.code
    }
}

fn prompt_limit() -> End {
    End::new(PamResultCode::PAM_MAXTRIES, "prompt-limit", Level::Notice)
}

/// Moves the typed number out of the request into a `Secret`, which wipes
/// it on drop (a move, not a copy).
fn wipe(request: Request) {
    if let Request::Enroll { mobile } = request {
        drop(Secret::new(mobile));
    }
}

/// For protocol-error log lines; never the answer's contents.
fn answer_name(answer: &Response) -> &'static str {
    match answer {
        Response::Hello { .. } => "hello",
        Response::Challenge(_) => "challenge",
        Response::Verified { .. } => "verified",
        Response::Skip { .. } => "skip",
        Response::Locked { .. } => "locked",
        Response::SendRefused { .. } => "send_refused",
        Response::AskMobile => "ask_mobile",
        Response::InvalidMobile { .. } => "invalid_mobile",
        Response::Wrong { .. } => "wrong",
        Response::Expired { .. } => "expired",
        Response::TriesExhausted => "tries_exhausted",
        Response::ResendRefused { .. } => "resend_refused",
        Response::NoMobile => "no_mobile",
        Response::SendFailed => "send_failed",
        Response::Error { .. } => "error",
        Response::Status(_) => "status",
        Response::StepUp(_) => "step_up",
        Response::BackupCodes { .. } => "backup_codes",
        Response::Done { .. } => "done",
        Response::TestSent { .. } => "test_sent",
        Response::StoreImported { .. } => "store_imported",
        Response::StoreHealth(_) => "store_health",
    }
}

fn conv_failed(why: impl ToString) -> End {
    End::new(
        PamResultCode::PAM_CONV_ERR,
        "conversation-failed",
        Level::Notice,
    )
    .because(why)
}

/// `user=alice service=sshd rhost=192.0.2.1 tty=ssh`, with `-` for absent
/// items. The command is left out: it can be long and is not needed to
/// correlate a login.
fn who(begin: &BeginRequest) -> String {
    format!(
        "user={} service={} rhost={} tty={}",
        field(&begin.user),
        field(&begin.service),
        field(begin.rhost.as_deref().unwrap_or("-")),
        field(begin.tty.as_deref().unwrap_or("-")),
    )
}

/// Quotes a value that would otherwise blur the `key=value` layout.
fn field(value: &str) -> String {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"')
    {
        format!("{value:?}")
    } else {
        value.to_string()
    }
}

mod enroll;
mod failure;
#[cfg(test)]
mod tests;
