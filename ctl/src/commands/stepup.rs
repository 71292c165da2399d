//! The SMS step-up of `backup-codes generate` and `opt-out` for callers
//! other than root: the daemon sends a code to the user's phone and answers
//! `step_up`; we ask for the code and repeat the request with it, on a new
//! connection (the daemon keeps the pending code for our uid, and the wait
//! for an SMS may be longer than it keeps an idle connection).
//!
//! Where the code is read from: when stdin is a terminal, from `/dev/tty`
//! with echo off; otherwise one line from stdin, so a script (`--json` or
//! not) can answer once it has the code. The prompt always goes to stderr
//! (or the terminal), never stdout, so `--json` still prints one object.

use super::output::{self, Failure, Reply, EXIT_FAILED};
use smsotp_proto::{Request, Response, Secret, StepUpInfo};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;
use zeroize::Zeroizing;

/// Sends `make(None)`; on a step-up, prompts and sends `make(Some(code))`
/// until the daemon accepts, refuses, or the tries run out.
pub fn call(
    socket: &Path,
    timeout: Duration,
    make: impl Fn(Option<Secret>) -> Request,
) -> Result<Reply, Failure> {
    let info = match output::call_raw(socket, timeout, &make(None))? {
        Response::StepUp(info) => info,
        other => return answer(other),
    };
    let mut prompt = first_prompt(&info);
    // The daemon counts the tries; this bound only keeps a confused
    // daemon from looping us.
    for _ in 0..=info.attempts_left {
        let code = read_code(&prompt)?;
        match output::call_raw(socket, timeout, &make(Some(Secret::new(code.as_str()))))? {
            Response::Wrong { attempts_left } => {
                prompt = format!("Wrong code ({attempts_left} tries left). Code: ");
            }
            other => return answer(other),
        }
    }
    Err(failed("no tries left for the confirmation code"))
}

fn first_prompt(info: &StepUpInfo) -> String {
    format!(
        "To confirm, enter the code sent to {} (valid {} min): ",
        info.masked_mobile.as_str(),
        info.expires_in_secs.div_ceil(60).max(1)
    )
}

fn failed(message: &str) -> Failure {
    Failure::new(EXIT_FAILED, "step_up_failed", message)
}

/// The daemon's answer when it is not a (new) step-up: the work's reply,
/// or why not.
fn answer(resp: Response) -> Result<Reply, Failure> {
    match resp {
        Response::TriesExhausted => Err(failed("no tries left for the confirmation code")),
        Response::Expired { .. } => Err(failed(
            "the confirmation code expired; run the command again",
        )),
        Response::Locked { retry_after_secs } => Err(failed(&format!(
            "too many wrong codes; locked for {} min",
            retry_after_secs.div_ceil(60)
        ))),
        Response::SendRefused { reason, .. } => Err(failed(&format!(
            "no confirmation code could be sent: {reason}"
        ))),
        Response::SendFailed => Err(failed(
            "no confirmation code could be sent: the SMS provider failed",
        )),
        other => Reply::from_response(other),
    }
}

fn read_code(prompt: &str) -> Result<Zeroizing<String>, Failure> {
    let line = if std::io::stdin().is_terminal() {
        super::hidden_input::read_line(prompt)
    } else {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{prompt}");
        let _ = err.flush();
        let mut line = Zeroizing::new(String::new());
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    }
    .map_err(|e| failed(&format!("cannot read the confirmation code: {e}")))?;
    let code = Zeroizing::new(line.trim().to_string());
    if code.is_empty() {
        return Err(failed("no confirmation code was given"));
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsotp_proto::{CodeAlphabet, MaskedMobile};

    #[test]
    fn the_prompt_names_the_masked_number_and_the_minutes() {
        let info = StepUpInfo {
            masked_mobile: MaskedMobile::new("*******4567").unwrap(),
            expires_in_secs: 299,
            attempts_left: 3,
            code_length: 6,
            alphabet: CodeAlphabet::Numeric,
        };
        assert_eq!(
            first_prompt(&info),
            "To confirm, enter the code sent to *******4567 (valid 5 min): "
        );
    }

    #[test]
    fn step_up_endings_are_failures_and_the_work_passes_through() {
        for (resp, text) in [
            (Response::TriesExhausted, "no tries left"),
            (Response::Expired { can_resend: false }, "expired"),
            (
                Response::Locked {
                    retry_after_secs: 61,
                },
                "locked for 2 min",
            ),
            (Response::SendFailed, "provider failed"),
        ] {
            let f = answer(resp).unwrap_err();
            assert_eq!((f.exit, f.kind), (EXIT_FAILED, "step_up_failed"));
            assert!(f.message.contains(text), "{}", f.message);
        }
        let done = answer(Response::Done {
            message: "ok".into(),
        })
        .unwrap();
        assert_eq!(done.into_done().unwrap(), "ok");
    }
}
