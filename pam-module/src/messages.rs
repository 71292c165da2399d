//! The PAM_ERROR_MSG and TEXT_INFO texts fixed by docs/CONTRACT.md, in
//! one place so the end-to-end tests and this module cannot drift apart
//! silently. Each takes the user's [`Texts`] (English, German, French:
//! see `messages/catalogue.rs`); the English ones keep their names as
//! constants.

use smsotp_proto::limits::MAX_REASON;

mod catalogue;
mod de;
mod en;
mod fr;

pub use catalogue::{fill, for_tag, Texts};
pub use en::EN;

// The English texts under the names the contract tests use.
#[cfg(test)]
pub const UNAVAILABLE: &str = EN.unavailable;
#[cfg(test)]
pub const BUSY: &str = EN.busy;
#[cfg(test)]
pub const TRIES_EXHAUSTED: &str = EN.tries_exhausted;
#[cfg(test)]
pub const SEND_FAILED: &str = EN.send_failed;
#[cfg(test)]
pub const NOT_A_CODE: &str = EN.not_a_code;
#[cfg(test)]
pub const AUTH_FAILED: &str = EN.auth_failed;

pub fn wrong(t: &Texts, tries_left: u32) -> String {
    if tries_left == 1 {
        t.wrong_one.to_string()
    } else {
        fill(t.wrong_many, &[("n", &tries_left.to_string())])
    }
}

pub fn resend_refused(t: &Texts, reason: &str) -> String {
    fill(t.resend_refused, &[("reason", &daemon_text(reason))])
}

/// `Too many wrong codes: SMS codes are locked for this account for 15 min.`
pub fn locked(t: &Texts, retry_after_secs: u64) -> String {
    fill(t.locked, &[("time", &duration(t, retry_after_secs.max(1)))])
}

/// `Cannot send a code now: REASON.` and, when the daemon says when,
/// ` Try again in N min.`. A reason that already ends a sentence does not
/// get a second full stop.
pub fn send_refused(t: &Texts, reason: &str, retry_after_secs: Option<u64>) -> String {
    let reason = daemon_text(reason);
    let reason = reason.trim_end_matches('.').trim_end();
    let mut text = if reason.is_empty() {
        t.send_refused_bare.to_string()
    } else {
        fill(t.send_refused, &[("reason", reason)])
    };
    if let Some(secs) = retry_after_secs {
        text.push(' ');
        text.push_str(&fill(t.try_again, &[("time", &duration(t, secs.max(1)))]));
    }
    text
}

/// `That number cannot be used: REASON`, shown before asking again.
pub fn invalid_mobile(t: &Texts, reason: &str) -> String {
    fill(t.invalid_mobile, &[("reason", &daemon_text(reason))])
}

/// The PAM_TEXT_INFO after a backup code let the login in.
pub fn backup_accepted(t: &Texts, codes_left: Option<u32>) -> String {
    match codes_left {
        None => t.backup_accepted.to_string(),
        Some(n) => {
            let mut text = if n == 1 {
                t.backup_left_one.to_string()
            } else {
                fill(t.backup_left_many, &[("n", &n.to_string())])
            };
            if n <= 2 {
                text.push(' ');
                text.push_str(t.backup_renew);
            }
            text
        }
    }
}

/// Minutes round up so a message never promises less time than is left
/// (or claims "0 min"); under a minute seconds are more useful.
pub fn duration(t: &Texts, secs: u64) -> String {
    if secs < 60 {
        fill(t.seconds, &[("n", &secs.to_string())])
    } else {
        fill(t.minutes, &[("n", &secs.div_ceil(60).to_string())])
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
        assert_eq!(wrong(&EN, 1), "Wrong code. 1 try left.");
        assert_eq!(wrong(&EN, 2), "Wrong code. 2 tries left.");
    }

    #[test]
    fn durations_round_minutes_up() {
        assert_eq!(duration(&EN, 0), "0 s");
        assert_eq!(duration(&EN, 59), "59 s");
        assert_eq!(duration(&EN, 60), "1 min");
        assert_eq!(duration(&EN, 61), "2 min");
        assert_eq!(duration(&EN, 3600), "60 min");
    }

    #[test]
    fn locked_says_for_how_long() {
        assert_eq!(
            locked(&EN, 900),
            "Too many wrong codes: SMS codes are locked for this account for 15 min."
        );
        assert_eq!(
            locked(&EN, 61),
            "Too many wrong codes: SMS codes are locked for this account for 2 min."
        );
        assert_eq!(
            locked(&EN, 30),
            "Too many wrong codes: SMS codes are locked for this account for 30 s."
        );
        // A lock that is (nearly) over never reads "for 0 s".
        assert!(locked(&EN, 0).ends_with("for 1 s."));
    }

    #[test]
    fn send_refused_has_one_full_stop_and_an_optional_retry() {
        assert_eq!(
            send_refused(&EN, "hourly SMS limit reached", None),
            "Cannot send a code now: hourly SMS limit reached."
        );
        assert_eq!(
            send_refused(&EN, "hourly SMS limit reached.", Some(1800)),
            "Cannot send a code now: hourly SMS limit reached. Try again in 30 min."
        );
        assert_eq!(
            send_refused(&EN, "cooldown", Some(20)),
            "Cannot send a code now: cooldown. Try again in 20 s."
        );
        assert_eq!(send_refused(&EN, "\n", None), "Cannot send a code now.");
    }

    #[test]
    fn backup_code_counts_are_singular_and_warn_when_low() {
        assert_eq!(
            backup_accepted(&EN, Some(7)),
            "Backup code accepted. 7 backup codes left."
        );
        assert_eq!(
            backup_accepted(&EN, Some(3)),
            "Backup code accepted. 3 backup codes left."
        );
        assert_eq!(
            backup_accepted(&EN, Some(2)),
            "Backup code accepted. 2 backup codes left. Generate new ones with: smsotpctl backup-codes generate"
        );
        assert_eq!(
            backup_accepted(&EN, Some(1)),
            "Backup code accepted. 1 backup code left. Generate new ones with: smsotpctl backup-codes generate"
        );
        assert_eq!(
            backup_accepted(&EN, Some(0)),
            "Backup code accepted. 0 backup codes left. Generate new ones with: smsotpctl backup-codes generate"
        );
        assert_eq!(backup_accepted(&EN, None), "Backup code accepted.");
    }

    #[test]
    fn invalid_mobile_shows_the_tamed_reason() {
        assert_eq!(
            invalid_mobile(&EN, "country +7 is not allowed\x1b[0m"),
            "That number cannot be used: country +7 is not allowed [0m"
        );
    }

    #[test]
    fn daemon_text_is_tamed() {
        assert_eq!(daemon_text("\x1b[2Jbusy\nnow"), "[2Jbusy now");
        assert_eq!(daemon_text(&"x".repeat(2000)).len(), MAX_REASON);
        assert_eq!(
            resend_refused(&EN, "limit reached"),
            "Cannot send another code: limit reached"
        );
    }
}
