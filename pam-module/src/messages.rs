//! The PAM_ERROR_MSG texts fixed by docs/CONTRACT.md, in one place so the
//! end-to-end tests and this module cannot drift apart silently.

use smsotp_proto::limits::MAX_REASON;

pub const UNAVAILABLE: &str = "The SMS code service is unavailable.";
pub const TRIES_EXHAUSTED: &str = "Too many wrong codes. Log in again to get a new code.";
pub const EXPIRED_RESEND: &str = "The code has expired. Type 'r' for a new one.";
pub const EXPIRED: &str = "The code has expired.";
pub const NO_MOBILE: &str =
    "No mobile number is registered for SMS codes on this account. Ask your administrator.";
pub const SEND_FAILED: &str =
    "The SMS code could not be sent. Try again later or contact your administrator.";
/// Not in the contract's table: a reply longer than any code or backup code
/// is refused locally (the protocol rejects it rather than truncating), so
/// the daemon never sees it and no try is used.
pub const NOT_A_CODE: &str = "Wrong code.";

pub fn wrong(tries_left: u32) -> String {
    if tries_left == 1 {
        "Wrong code. 1 try left.".to_string()
    } else {
        format!("Wrong code. {tries_left} tries left.")
    }
}

pub fn resend_refused(reason: &str) -> String {
    format!("Cannot send another code: {}", daemon_text(reason))
}

/// Text from the daemon goes to the user's terminal: control characters
/// (escape sequences, newlines) are replaced and the length is capped, so
/// even a confused daemon cannot repaint a terminal or flood it.
pub fn daemon_text(text: &str) -> String {
    text.chars()
        .take(MAX_REASON)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_is_singular_for_one() {
        assert_eq!(wrong(1), "Wrong code. 1 try left.");
        assert_eq!(wrong(2), "Wrong code. 2 tries left.");
    }

    #[test]
    fn daemon_text_is_tamed() {
        assert_eq!(daemon_text("\x1b[2Jbusy\nnow"), "[2Jbusy now");
        assert_eq!(daemon_text(&"x".repeat(2000)).len(), MAX_REASON);
        assert_eq!(
            resend_refused("limit reached"),
            "Cannot send another code: limit reached"
        );
    }
}
