//! Shared steps of the login tests: the expected prompt text, a responder
//! that types the code from the outbox, and common assertions.

use crate::libpam::{Outcome, Prompt};
use crate::outbox::Outbox;

/// The contract's masking: every digit but the last four becomes `*`, the
/// `+` is dropped. `+15551234567` -> `*******4567`.
pub fn mask(mobile: &str) -> String {
    let digits: Vec<char> = mobile.chars().filter(char::is_ascii_digit).collect();
    let keep = digits.len().saturating_sub(4);
    digits
        .iter()
        .enumerate()
        .map(|(i, d)| if i < keep { '*' } else { *d })
        .collect()
}

pub const TAIL_WITH_RESEND: &str = "Enter code, or 'r' to resend: ";
pub const TAIL_NO_RESEND: &str = "Enter code: ";

/// The exact prompt for `mobile`, `expires` (e.g. `5 min`, `30 s`).
pub fn code_prompt(mobile: &str, expires: &str, can_resend: bool) -> String {
    format!(
        "Code sent to {} (expires in {expires}). {}",
        mask(mobile),
        if can_resend {
            TAIL_WITH_RESEND
        } else {
            TAIL_NO_RESEND
        }
    )
}

pub const MSG_TRIES_EXHAUSTED: &str = "Too many wrong codes. Log in again to get a new code.";
pub const MSG_EXPIRED_RESEND: &str = "The code has expired. Type 'r' for a new one.";
pub const MSG_EXPIRED: &str = "The code has expired.";
pub const MSG_RESEND_REFUSED_PREFIX: &str = "Cannot send another code: ";
pub const MSG_NO_MOBILE: &str =
    "No mobile number is registered for SMS codes on this account. Ask your administrator.";
pub const MSG_SEND_FAILED: &str =
    "The SMS code could not be sent. Try again later or contact your administrator.";
pub const MSG_UNAVAILABLE: &str = "The SMS code service is unavailable.";
pub const MSG_NOT_ALLOWED: &str = "not allowed to request a code for another user";

/// `Wrong code. N tries left.` / `Wrong code. 1 try left.`
pub fn wrong_code_msg(left: u32) -> String {
    if left == 1 {
        "Wrong code. 1 try left.".into()
    } else {
        format!("Wrong code. {left} tries left.")
    }
}

/// A responder that answers each code prompt with the newest code in the
/// outbox and panics on any other prompt.
pub fn type_newest_code(outbox: &Outbox) -> impl FnMut(&Prompt<'_>) -> Option<String> + '_ {
    move |p: &Prompt<'_>| {
        assert!(
            p.text.starts_with("Code sent to "),
            "unexpected prompt {:?}; conversation so far:\n{}",
            p.text,
            p.transcript
        );
        Some(outbox.last().code())
    }
}

/// Panics unless the module's code prompt appeared (guards against libpam
/// silently falling back to another service file).
pub fn assert_code_prompted(outcome: &Outcome) {
    assert!(
        !outcome.transcript.code_prompts().is_empty(),
        "the smsotp code prompt never appeared; conversation:\n{}",
        outcome.transcript
    );
}
