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
};
use std::time::Instant;

/// Bounds a login however the replies go (empty replies, resends, wrong
/// codes), so a script at the prompt cannot keep a connection open forever.
pub const MAX_PROMPTS: u32 = 16;

/// Sent in the hello; shows up in the daemon's log.
pub const CLIENT_NAME: &str = concat!("pam_smsotp/", env!("CARGO_PKG_VERSION"));

/// The conversation function failed or the application went away.
#[derive(Debug, thiserror::Error)]
#[error("conversation failed: {0}")]
pub struct ConvError(pub String);

pub trait Conversation {
    /// An ECHO_OFF prompt. `Ok(None)` means the application gave no reply.
    fn prompt_secret(&mut self, msg: &str) -> Result<Option<Secret>, ConvError>;
    /// A PAM_ERROR_MSG. Failures to show it are not the login's problem.
    fn error(&mut self, msg: &str);
    /// A PAM_TEXT_INFO. The contract folds all context into the prompt
    /// (OpenSSH hides lone TEXT_INFO), so the flow does not use it today.
    #[allow(dead_code)]
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
}

impl End {
    fn new(code: PamResultCode, result: &'static str, level: Level) -> Self {
        End {
            code,
            result,
            level,
            reason: None,
        }
    }

    fn because(mut self, reason: impl ToString) -> Self {
        self.reason = Some(reason.to_string());
        self
    }
}

/// Which request an answer is for: before a challenge exists, answers that
/// only make sense at a prompt are protocol errors.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Asked {
    Begin,
    Verify,
    Resend,
}

enum Next {
    Prompt,
    Challenge(ChallengeInfo),
    Done(End),
}

struct Login<'a, C, L> {
    conv: &'a mut C,
    log: &'a mut L,
    who: String,
    prompts: u32,
    resends: u32,
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
            Err(e) => return self.no_challenge(failmode, "begin", e),
        };
        match self.on_answer(Asked::Begin, answer) {
            Next::Challenge(info) => self.challenge(&mut link, info),
            Next::Done(end) => end,
            // `on_answer` never asks to prompt before a challenge exists.
            Next::Prompt => self.protocol_error("prompt without a challenge"),
        }
    }

    /// The prompt loop. Any failure of the link from here on is
    /// PAM_AUTHINFO_UNAVAIL whatever the failmode: a code was sent, so the
    /// daemon was up and the login must not be waved through.
    fn challenge<D: DaemonLink>(&mut self, link: &mut D, mut info: ChallengeInfo) -> End {
        let mut issued = Instant::now();
        loop {
            if self.prompts >= MAX_PROMPTS {
                return End::new(PamResultCode::PAM_MAXTRIES, "prompt-limit", Level::Notice);
            }
            self.prompts = self.prompts.saturating_add(1);
            let left = info
                .expires_in_secs
                .saturating_sub(issued.elapsed().as_secs());
            let text =
                prompt::challenge_prompt(info.masked_mobile.as_str(), left, info.resends_left);
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
                self.resends = self.resends.saturating_add(1);
                self.debug(&format!("prompt {}: resend requested", self.prompts));
                (Asked::Resend, Request::Resend)
            } else if reply.len() > MAX_CODE {
                self.debug(&format!(
                    "prompt {}: reply too long to be a code",
                    self.prompts
                ));
                self.conv.error(messages::NOT_A_CODE);
                continue;
            } else {
                self.debug(&format!("prompt {}: verifying a reply", self.prompts));
                (Asked::Verify, Request::Verify { code: reply })
            };
            let answer = match link.call(&request) {
                Ok(answer) => answer,
                Err(e) => {
                    self.conv.error(messages::UNAVAILABLE);
                    return End::new(
                        PamResultCode::PAM_AUTHINFO_UNAVAIL,
                        "connection-lost",
                        Level::Warning,
                    )
                    .because(e);
                }
            };
            match self.on_answer(asked, answer) {
                Next::Prompt => {}
                Next::Challenge(new) => {
                    info = new;
                    issued = Instant::now();
                }
                Next::Done(end) => return end,
            }
        }
    }

    /// Maps one daemon answer to the contract's table.
    fn on_answer(&mut self, asked: Asked, answer: Response) -> Next {
        let prompting = asked != Asked::Begin;
        match answer {
            Response::Challenge(info) => {
                self.debug(&format!(
                    "challenge: sent to {} expires_in={}s resends_left={} attempts_left={}",
                    prompt::mask(info.masked_mobile.as_str()),
                    info.expires_in_secs,
                    info.resends_left,
                    info.attempts_left
                ));
                Next::Challenge(info)
            }
            Response::Verified => Next::Done(End::new(
                PamResultCode::PAM_SUCCESS,
                "verified",
                Level::Info,
            )),
            // Zero tries left can only end the login; treating it as
            // exhausted keeps a confused daemon from looping the prompt.
            Response::Wrong { attempts_left: 0 } | Response::TriesExhausted => {
                self.conv.error(messages::TRIES_EXHAUSTED);
                Next::Done(End::new(
                    PamResultCode::PAM_MAXTRIES,
                    "tries-exhausted",
                    Level::Notice,
                ))
            }
            Response::Wrong { attempts_left } if prompting => {
                self.debug(&format!("wrong code, attempts_left={attempts_left}"));
                self.conv.error(&messages::wrong(attempts_left));
                Next::Prompt
            }
            Response::Expired { can_resend: true } if prompting => {
                self.debug("code expired, resend possible");
                self.conv.error(messages::EXPIRED_RESEND);
                Next::Prompt
            }
            Response::Expired { .. } => {
                self.conv.error(messages::EXPIRED);
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
                self.conv.error(&messages::resend_refused(&reason));
                Next::Prompt
            }
            Response::NoMobile => {
                self.conv.error(messages::NO_MOBILE);
                Next::Done(End::new(
                    PamResultCode::PAM_AUTH_ERR,
                    "no-mobile",
                    Level::Notice,
                ))
            }
            Response::SendFailed => {
                self.conv.error(messages::SEND_FAILED);
                Next::Done(End::new(
                    PamResultCode::PAM_AUTHINFO_UNAVAIL,
                    "send-failed",
                    Level::Warning,
                ))
            }
            Response::Error { kind, message } => Next::Done(self.daemon_error(kind, &message)),
            Response::Hello { .. } | Response::Wrong { .. } | Response::ResendRefused { .. } => {
                Next::Done(self.protocol_error(match asked {
                    Asked::Begin => "answer to begin makes no sense without a challenge",
                    Asked::Verify | Asked::Resend => "hello in the middle of a challenge",
                }))
            }
        }
    }

    /// `Busy` lands here too and is never "unavailable": a flood of
    /// connections must not turn failmode=safe into fail-open.
    fn daemon_error(&mut self, kind: ErrorKind, message: &str) -> End {
        let shown = messages::daemon_text(message);
        if !shown.is_empty() {
            self.conv.error(&shown);
        }
        let end = if kind == ErrorKind::PermissionDenied {
            End::new(
                PamResultCode::PAM_AUTH_ERR,
                "permission-denied",
                Level::Warning,
            )
        } else {
            End::new(
                PamResultCode::PAM_AUTHINFO_UNAVAIL,
                "daemon-error",
                Level::Warning,
            )
        };
        end.because(format!("{kind:?}: {shown}"))
    }

    /// Connect, hello or begin failed, so no code was sent. Only a daemon
    /// that cannot be reached (or does not answer in time) is "unavailable";
    /// a daemon that answered with a refusal is up and has said no.
    fn no_challenge(&mut self, failmode: FailMode, step: &str, e: ClientError) -> End {
        if !e.is_unavailable() {
            let shown = match &e {
                ClientError::Refused(message) => messages::daemon_text(message),
                _ => String::new(),
            };
            self.conv.error(if shown.is_empty() {
                messages::UNAVAILABLE
            } else {
                &shown
            });
            return End::new(
                PamResultCode::PAM_AUTHINFO_UNAVAIL,
                "daemon-refused",
                Level::Warning,
            )
            .because(format!("{step}: {e}"));
        }
        match failmode {
            FailMode::Safe => {
                self.log.log(
                    Level::Alert,
                    &format!(
                        "smsotp daemon unreachable, failmode=safe lets the login through ({} {step}: {e})",
                        self.who
                    ),
                );
                End::new(
                    PamResultCode::PAM_IGNORE,
                    "unavailable-ignored",
                    Level::Notice,
                )
                .because(format!("{step}: {e}"))
            }
            FailMode::Secure => {
                self.conv.error(messages::UNAVAILABLE);
                End::new(
                    PamResultCode::PAM_AUTHINFO_UNAVAIL,
                    "unavailable",
                    Level::Warning,
                )
                .because(format!("{step}: {e}"))
            }
        }
    }

    fn protocol_error(&mut self, what: &str) -> End {
        self.conv.error(messages::UNAVAILABLE);
        End::new(
            PamResultCode::PAM_AUTHINFO_UNAVAIL,
            "protocol-error",
            Level::Warning,
        )
        .because(what)
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
        self.log.log(end.level, &line);
        self.debug(&format!(
            "prompts={} resends={} pam={:?}",
            self.prompts, self.resends, end.code
        ));
        end.code
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

#[cfg(test)]
mod tests;
