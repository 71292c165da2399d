//! The module's texts in every language it speaks, as static tables: no
//! i18n framework inside sshd and sudo. A language is one `Texts` value
//! (en.rs, de.rs, fr.rs); the daemon names the user's language in the
//! challenge, and anything this module does not know is English.
//!
//! Placeholders are `{name}`, filled once by [`fill`]: a value is never
//! scanned again, so a daemon reason holding `{n}` stays as it is.

use super::{de::DE, en::EN, fr::FR};

macro_rules! texts {
    ($($(#[$doc:meta])* $key:ident,)*) => {
        /// One language's texts. Every language must have every key (the
        /// compiler checks) with the same placeholders (the tests check).
        pub struct Texts {
            $($(#[$doc])* pub $key: &'static str,)*
        }

        impl Texts {
            #[cfg(test)]
            pub fn entries(&self) -> Vec<(&'static str, &'static str)> {
                vec![$((stringify!($key), self.$key)),*]
            }
        }
    };
}

texts! {
    unavailable,
    /// The daemon's listen queue stayed full for the whole deadline (someone
    /// may be flooding it); worded like the daemon's own `Busy` refusal.
    busy,
    tries_exhausted,
    /// Must tell the user to type `r`: that is what the module reads.
    expired_resend,
    expired,
    no_mobile,
    send_failed,
    /// A reply longer than any code or backup code is refused locally (the
    /// protocol rejects it rather than truncating): no try is used.
    not_a_code,
    /// Replaces every failure message once the current challenge says
    /// `show_reasons = false` (the admin's `show_failure_reason = false`).
    auth_failed,
    /// The enrolment prompt was answered with nothing.
    no_mobile_given,
    wrong_one,
    /// `{n}`: tries left.
    wrong_many,
    /// `{reason}`: the daemon's text, tamed.
    resend_refused,
    /// `{time}`: a duration from `seconds` or `minutes`.
    locked,
    send_refused_bare,
    send_refused,
    try_again,
    invalid_mobile,
    backup_accepted,
    backup_left_one,
    backup_left_many,
    backup_renew,
    seconds,
    minutes,
    /// `{mobile}` masked, `{time}`, `{tail}`: one of the two below.
    code_prompt,
    tail_resend,
    tail_plain,
    /// The tail when a voice call can be asked for: must name `r` and `v`.
    tail_call,
    /// The answer to `v` where no call can be made.
    no_call,
    backup_only,
    /// `{notice}`: the daemon's reason no SMS went out, tamed.
    backup_only_notice,
    ask_mobile,
}

/// Every language, for the completeness tests.
#[cfg(test)]
pub const ALL: [(&str, &Texts); 3] = [("en", &EN), ("de", &DE), ("fr", &FR)];

/// The texts for a BCP 47 tag from the daemon: its primary language
/// subtag (`de-AT` -> `de`), English for anything else or nothing.
pub fn for_tag(tag: Option<&str>) -> &'static Texts {
    let primary = tag.unwrap_or("").split('-').next().unwrap_or("");
    if primary.eq_ignore_ascii_case("de") {
        &DE
    } else if primary.eq_ignore_ascii_case("fr") {
        &FR
    } else {
        &EN
    }
}

/// Replaces each `{name}` of `text` by its value in `args`; an unknown
/// name stays as written.
pub fn fill(text: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after
            .find('}')
            .and_then(|close| Some((close, args.iter().find(|(k, _)| *k == &after[..close])?)));
        match value {
            Some((close, (_, v))) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders(text: &str) -> Vec<&str> {
        let mut names: Vec<&str> = text
            .split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}').map(|(name, _)| name))
            .collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn every_language_has_every_key_with_the_same_placeholders() {
        let english = EN.entries();
        for (lang, texts) in ALL {
            let entries = texts.entries();
            assert_eq!(entries.len(), english.len(), "{lang}");
            for ((key, text), (en_key, en_text)) in entries.iter().zip(&english) {
                assert_eq!(key, en_key);
                assert!(!text.trim().is_empty(), "{lang}.{key} is empty");
                assert_eq!(
                    placeholders(text),
                    placeholders(en_text),
                    "{lang}.{key}: {text:?} vs {en_text:?}"
                );
                assert!(!text.contains('\n'), "{lang}.{key}: one line");
            }
        }
    }

    #[test]
    fn the_resend_hint_names_r_and_prompts_end_in_a_colon() {
        for (lang, t) in ALL {
            assert!(t.tail_resend.contains("'r'"), "{lang}");
            assert!(
                t.tail_call.contains("'r'") && t.tail_call.contains("'v'"),
                "{lang}"
            );
            assert!(t.expired_resend.contains("'r'"), "{lang}");
            for (key, p) in [
                ("tail_resend", t.tail_resend),
                ("tail_plain", t.tail_plain),
                ("tail_call", t.tail_call),
                ("backup_only", t.backup_only),
                ("backup_only_notice", t.backup_only_notice),
                ("ask_mobile", t.ask_mobile),
            ] {
                assert!(p.ends_with(": "), "{lang}.{key}: {p:?}");
            }
        }
    }

    #[test]
    fn languages_are_picked_by_primary_subtag_and_default_to_english() {
        // The tables are consts (inlined), so compare a text, not an address.
        let lang = |tag| for_tag(tag).code_prompt;
        assert_eq!(lang(Some("de")), DE.code_prompt);
        assert_eq!(lang(Some("de-AT")), DE.code_prompt);
        assert_eq!(lang(Some("DE-ch")), DE.code_prompt);
        assert_eq!(lang(Some("fr-CA")), FR.code_prompt);
        for other in [
            None,
            Some(""),
            Some("it"),
            Some("en-GB"),
            Some("deu"),
            Some("d"),
        ] {
            assert_eq!(lang(other), EN.code_prompt, "{other:?}");
        }
    }

    #[test]
    fn fill_replaces_once_and_keeps_unknown_braces() {
        assert_eq!(fill("a {n} b {n}", &[("n", "1")]), "a 1 b 1");
        assert_eq!(
            fill("x {reason}.", &[("reason", "{n} {reason}")]),
            "x {n} {reason}."
        );
        assert_eq!(fill("{x} {", &[("n", "1")]), "{x} {");
        assert_eq!(fill("ü {n}", &[("n", "é")]), "ü é");
    }
}
