//! The prompts: one ECHO_OFF prompt per round for a code, one ECHO_ON
//! prompt for a number to enrol. OpenSSH does not show a lone TEXT_INFO
//! during keyboard-interactive, so the context travels in the prompt itself.

use crate::messages::{daemon_text, duration, fill, Texts};

/// ECHO_ON: the user is typing a phone number, not a secret. Asked before
/// any challenge, so before the daemon has said a language: English
/// unless a later version tells the language earlier.
#[cfg(test)]
pub const ASK_MOBILE: &str = crate::messages::EN.ask_mobile;

/// `Code sent to *******4567 (expires in 5 min). Enter code, or 'r' to resend: `
///
/// A backup code, where the challenge allows one, is accepted at this same
/// prompt; saying so would make it too long for a terminal line.
///
/// `v` (the code by phone call) is offered too when the daemon has a voice
/// provider (`can_call`) and a resend is left: a call is a resend and
/// spends one.
pub fn challenge_prompt(
    t: &Texts,
    masked_mobile: &str,
    expires_in_secs: u64,
    resends_left: u32,
    can_call: bool,
) -> String {
    let tail = if resends_left == 0 {
        t.tail_plain
    } else if can_call {
        t.tail_call
    } else {
        t.tail_resend
    };
    fill(
        t.code_prompt,
        &[
            ("mobile", &mask(masked_mobile)),
            ("time", &duration(t, expires_in_secs)),
            ("tail", tail),
        ],
    )
}

/// No SMS went out, so only a backup code can complete the login:
/// `No SMS was sent (NOTICE). Enter a backup code: `. The notice comes from
/// the daemon and is tamed like every daemon text; 'r' is not offered.
pub fn backup_only_prompt(t: &Texts, notice: Option<&str>) -> String {
    let notice = notice.map(daemon_text).unwrap_or_default();
    if notice.is_empty() {
        t.backup_only.to_string()
    } else {
        fill(t.backup_only_notice, &[("notice", &notice)])
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
    use crate::messages::EN;

    #[test]
    fn contract_example() {
        assert_eq!(
            challenge_prompt(&EN, "*******4567", 300, 3, false),
            "Code sent to *******4567 (expires in 5 min). Enter code, or 'r' to resend: "
        );
    }

    #[test]
    fn minutes_round_up() {
        assert_eq!(duration(&EN, 60), "1 min");
        assert_eq!(duration(&EN, 61), "2 min");
        assert_eq!(duration(&EN, 299), "5 min");
        assert_eq!(duration(&EN, 3600), "60 min");
    }

    #[test]
    fn under_a_minute_is_seconds() {
        assert_eq!(duration(&EN, 59), "59 s");
        assert_eq!(duration(&EN, 1), "1 s");
        assert_eq!(duration(&EN, 0), "0 s");
    }

    #[test]
    fn backup_only_prompt_with_and_without_a_notice() {
        assert_eq!(
            backup_only_prompt(&EN, Some("the SMS provider is down")),
            "No SMS was sent (the SMS provider is down). Enter a backup code: "
        );
        assert_eq!(
            backup_only_prompt(&EN, None),
            "No SMS was sent. Enter a backup code: "
        );
        // A notice that is nothing once tamed is no notice.
        assert_eq!(
            backup_only_prompt(&EN, Some(" \n")),
            "No SMS was sent. Enter a backup code: "
        );
        assert_eq!(
            backup_only_prompt(&EN, Some("down\x1b[2J")),
            "No SMS was sent (down [2J). Enter a backup code: "
        );
    }

    #[test]
    fn german_and_french_prompts() {
        use crate::messages::for_tag;
        assert_eq!(
            challenge_prompt(for_tag(Some("de-AT")), "*******4567", 300, 3, false),
            "Code an *******4567 gesendet (läuft in 5 Min. ab). Code eingeben oder 'r' für einen neuen: "
        );
        assert_eq!(
            challenge_prompt(for_tag(Some("fr")), "*******4567", 45, 0, false),
            "Code envoyé au *******4567 (expire dans 45 s). Saisissez le code : "
        );
        assert_eq!(
            backup_only_prompt(for_tag(Some("de")), Some("provider down")),
            "Es wurde keine SMS gesendet (provider down). Backup-Code eingeben: "
        );
    }

    #[test]
    fn a_call_is_offered_only_with_a_voice_provider_and_a_resend_left() {
        assert_eq!(
            challenge_prompt(&EN, "*******4567", 300, 3, true),
            "Code sent to *******4567 (expires in 5 min). Enter code, 'r' to resend, or 'v' for a voice call: "
        );
        assert_eq!(
            challenge_prompt(&EN, "*******4567", 300, 0, true),
            "Code sent to *******4567 (expires in 5 min). Enter code: "
        );
    }

    #[test]
    fn no_resends_left_drops_the_r_hint() {
        assert_eq!(
            challenge_prompt(&EN, "*******4567", 45, 0, false),
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
