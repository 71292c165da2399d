//! The one ECHO_OFF prompt per round. OpenSSH does not show a lone
//! TEXT_INFO during keyboard-interactive, so the context travels in the
//! prompt itself.

/// `Code sent to *******4567 (expires in 5 min). Enter code, or 'r' to resend: `
pub fn challenge_prompt(masked_mobile: &str, expires_in_secs: u64, resends_left: u32) -> String {
    let tail = if resends_left == 0 {
        "Enter code: "
    } else {
        "Enter code, or 'r' to resend: "
    };
    format!(
        "Code sent to {} (expires in {}). {tail}",
        mask(masked_mobile),
        expiry(expires_in_secs)
    )
}

/// Minutes round up so the prompt never promises less time than is left
/// as "0 min"; under a minute seconds are more useful.
fn expiry(secs: u64) -> String {
    if secs < 60 {
        format!("{secs} s")
    } else {
        format!("{} min", secs.div_ceil(60))
    }
}

/// Hides all digits but the last four and drops the `+`. The daemon already
/// sends a masked number; doing it again here means a daemon bug can never
/// put a full number on a terminal or in syslog. Idempotent on masked input.
pub fn mask(number: &str) -> String {
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let first_shown = digits.saturating_sub(4);
    let mut digit_index = 0usize;
    number
        .chars()
        .filter(|c| *c != '+')
        .map(|c| {
            if c.is_ascii_digit() {
                let shown = digit_index >= first_shown;
                digit_index = digit_index.saturating_add(1);
                if shown {
                    c
                } else {
                    '*'
                }
            } else if c == '*' {
                '*'
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_example() {
        assert_eq!(
            challenge_prompt("*******4567", 300, 3),
            "Code sent to *******4567 (expires in 5 min). Enter code, or 'r' to resend: "
        );
    }

    #[test]
    fn minutes_round_up() {
        assert_eq!(expiry(60), "1 min");
        assert_eq!(expiry(61), "2 min");
        assert_eq!(expiry(299), "5 min");
        assert_eq!(expiry(3600), "60 min");
    }

    #[test]
    fn under_a_minute_is_seconds() {
        assert_eq!(expiry(59), "59 s");
        assert_eq!(expiry(1), "1 s");
        assert_eq!(expiry(0), "0 s");
    }

    #[test]
    fn no_resends_left_drops_the_r_hint() {
        assert_eq!(
            challenge_prompt("*******4567", 45, 0),
            "Code sent to *******4567 (expires in 45 s). Enter code: "
        );
    }

    #[test]
    fn masking_is_idempotent_and_hides_full_numbers() {
        assert_eq!(mask("+15551234567"), "*******4567");
        assert_eq!(mask("*******4567"), "*******4567");
        assert_eq!(mask("********7890"), "********7890");
        assert_eq!(mask("123"), "123");
        assert_eq!(mask(""), "");
    }
}
