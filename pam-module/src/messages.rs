//! The PAM_ERROR_MSG texts fixed by docs/CONTRACT.md, in one place so the
//! end-to-end tests and this module cannot drift apart silently.

use smsotp_proto::limits::MAX_REASON;

pub const UNAVAILABLE: &str = "The SMS code service is unavailable.";
/// The daemon's listen queue stayed full for the whole deadline (someone
/// may be flooding it); worded like the daemon's own `Busy` refusal.
pub const BUSY: &str = "The SMS code service is busy; try again shortly.";
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
/// Replaces every failure message once the current challenge says
/// `show_reasons = false` (the admin's `show_failure_reason = false`).
pub const AUTH_FAILED: &str = "Authentication failed.";
/// Voice fallback (`v` at the prompt): the prompt's tail when a call can
/// be asked for, and the answer to `v` where none can.
pub const PROMPT_TAIL_CALL: &str = "Enter code, 'r' to resend, or 'v' for a voice call: ";
pub const NO_CALL: &str = "Voice calls are not available here.";
/// The enrolment prompt was answered with nothing.
pub const NO_MOBILE_GIVEN: &str = "No mobile number given.";

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

/// `Too many wrong codes: SMS codes are locked for this account for 15 min.`
pub fn locked(retry_after_secs: u64) -> String {
    format!(
        "Too many wrong codes: SMS codes are locked for this account for {}.",
        duration(retry_after_secs.max(1))
    )
}

/// `Cannot send a code now: REASON.` and, when the daemon says when,
/// ` Try again in N min.`. A reason that already ends a sentence does not
/// get a second full stop.
pub fn send_refused(reason: &str, retry_after_secs: Option<u64>) -> String {
    let reason = daemon_text(reason);
    let reason = reason.trim_end_matches('.').trim_end();
    let mut text = if reason.is_empty() {
        "Cannot send a code now.".to_string()
    } else {
        format!("Cannot send a code now: {reason}.")
    };
    if let Some(secs) = retry_after_secs {
        text.push_str(&format!(" Try again in {}.", duration(secs.max(1))));
    }
    text
}

/// `That number cannot be used: REASON`, shown before asking again.
pub fn invalid_mobile(reason: &str) -> String {
    format!("That number cannot be used: {}", daemon_text(reason))
}

/// The PAM_TEXT_INFO after a backup code let the login in.
pub fn backup_accepted(codes_left: Option<u32>) -> String {
    match codes_left {
        None => "Backup code accepted.".to_string(),
        Some(n) => {
            let mut text = if n == 1 {
                "Backup code accepted. 1 backup code left.".to_string()
            } else {
                format!("Backup code accepted. {n} backup codes left.")
            };
            if n <= 2 {
                text.push_str(" Generate new ones with: smsotpctl backup-codes generate");
            }
            text
        }
    }
}

/// Minutes round up so a message never promises less time than is left
/// (or claims "0 min"); under a minute seconds are more useful.
pub fn duration(secs: u64) -> String {
    if secs < 60 {
        format!("{secs} s")
    } else {
        format!("{} min", secs.div_ceil(60))
    }
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
    fn durations_round_minutes_up() {
        assert_eq!(duration(0), "0 s");
        assert_eq!(duration(59), "59 s");
        assert_eq!(duration(60), "1 min");
        assert_eq!(duration(61), "2 min");
        assert_eq!(duration(3600), "60 min");
    }

    #[test]
    fn locked_says_for_how_long() {
        assert_eq!(
            locked(900),
            "Too many wrong codes: SMS codes are locked for this account for 15 min."
        );
        assert_eq!(
            locked(61),
            "Too many wrong codes: SMS codes are locked for this account for 2 min."
        );
        assert_eq!(
            locked(30),
            "Too many wrong codes: SMS codes are locked for this account for 30 s."
        );
        // A lock that is (nearly) over never reads "for 0 s".
        assert!(locked(0).ends_with("for 1 s."));
    }

    #[test]
    fn send_refused_has_one_full_stop_and_an_optional_retry() {
        assert_eq!(
            send_refused("hourly SMS limit reached", None),
            "Cannot send a code now: hourly SMS limit reached."
        );
        assert_eq!(
            send_refused("hourly SMS limit reached.", Some(1800)),
            "Cannot send a code now: hourly SMS limit reached. Try again in 30 min."
        );
        assert_eq!(
            send_refused("cooldown", Some(20)),
            "Cannot send a code now: cooldown. Try again in 20 s."
        );
        assert_eq!(send_refused("\n", None), "Cannot send a code now.");
    }

    #[test]
    fn backup_code_counts_are_singular_and_warn_when_low() {
        assert_eq!(
            backup_accepted(Some(7)),
            "Backup code accepted. 7 backup codes left."
        );
        assert_eq!(
            backup_accepted(Some(3)),
            "Backup code accepted. 3 backup codes left."
        );
        assert_eq!(
            backup_accepted(Some(2)),
            "Backup code accepted. 2 backup codes left. Generate new ones with: smsotpctl backup-codes generate"
        );
        assert_eq!(
            backup_accepted(Some(1)),
            "Backup code accepted. 1 backup code left. Generate new ones with: smsotpctl backup-codes generate"
        );
        assert_eq!(
            backup_accepted(Some(0)),
            "Backup code accepted. 0 backup codes left. Generate new ones with: smsotpctl backup-codes generate"
        );
        assert_eq!(backup_accepted(None), "Backup code accepted.");
    }

    #[test]
    fn invalid_mobile_shows_the_tamed_reason() {
        assert_eq!(
            invalid_mobile("country +7 is not allowed\x1b[0m"),
            "That number cannot be used: country +7 is not allowed [0m"
        );
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
