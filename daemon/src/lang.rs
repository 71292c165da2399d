//! The user's language: which template an SMS is rendered from and which
//! language the module is told to prompt in. Resolved from users.toml's
//! table form (`lang = "de"`), else `message.default_lang`. The store does
//! not record a language yet, so an enrolled user without a users.toml
//! entry gets the default.
//!
//! Also the load-time check that every template, at its longest, fits
//! `message.max_segments`: a translation with one character outside GSM-7
//! is sent as UCS-2 at 70 characters a segment, which can double what
//! every code costs.

use crate::providers::encoding;
use crate::state::Runtime;
use smsotp_config::{DaemonConfig, LangTag, Template, Var};
use smsotp_proto::limits::MAX_SERVICE;

/// What the module is told and what picks the template.
pub fn user_lang<'a>(rt: &'a Runtime, user: &str) -> &'a LangTag {
    rt.users.lang(user).unwrap_or(&rt.config.default_lang)
}

/// `[message.lang.*]` for the user's language or a shorter prefix of it,
/// else `message.template`.
pub fn template<'a>(rt: &'a Runtime, user: &str) -> &'a Template {
    rt.config.template_for(user_lang(rt, user)).0
}

/// Longest values the placeholders can take, all GSM-7: a login name as
/// `useradd` allows it, the protocol's bound on a service, a DNS name,
/// the module's cap on `{{command}}`. Non-ASCII values (a Unicode login
/// name) can still turn one message into UCS-2 at send time.
const LONGEST_USER: usize = 32;
const LONGEST_RHOST: usize = 253;
const LONGEST_COMMAND: usize = 120;

/// The longest text `template` can render to with this config and host.
fn worst_case(config: &DaemonConfig, hostname: &str, template: &Template) -> String {
    let code = "0".repeat(usize::from(config.otp.length));
    let minutes = config.otp.expiry.as_secs().div_ceil(60).to_string();
    let mut body = template.render(|var, out| match var {
        Var::Code => out.push_str(&code),
        Var::ExpiryMinutes => out.push_str(&minutes),
        Var::Host => out.push_str(hostname),
        Var::Service => out.push_str(&"s".repeat(MAX_SERVICE)),
        Var::User => out.push_str(&"u".repeat(LONGEST_USER)),
        Var::Rhost => out.push_str(&"r".repeat(LONGEST_RHOST)),
        Var::Command => out.push_str(&"c".repeat(LONGEST_COMMAND)),
        Var::Mobile | Var::Body => {}
    });
    if config.origin_bound {
        // As send_code appends it.
        body.push_str(&format!("\n\n@{hostname} #{code}"));
    }
    body
}

/// Every template at its longest within `message.max_segments`, or the
/// first that is not, by key.
pub fn check_segments(config: &DaemonConfig, hostname: &str) -> Result<(), String> {
    for (key, template) in config.message_templates() {
        let enc = encoding::analyze(&worst_case(config, hostname, template));
        if enc.segments() > u32::from(config.max_segments) {
            return Err(format!(
                "{key}: at its longest this text takes {} {} SMS segments ({} {}), more than message.max_segments = {}; shorten it, drop long placeholders, or raise the limit",
                enc.segments(),
                enc.name(),
                enc.units(),
                if enc.is_unicode() { "UTF-16 units" } else { "septets" },
                config.max_segments
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> DaemonConfig {
        smsotp_config::parse(Path::new("c.toml"), text).unwrap()
    }

    #[test]
    fn the_default_template_fits_one_gsm7_segment_at_its_longest() {
        let c = config("");
        let body = worst_case(&c, &"h".repeat(64), &c.message);
        let enc = encoding::analyze(&body);
        assert_eq!((enc.name(), enc.segments()), ("GSM-7", 1), "{body}");
        assert!(check_segments(&config("[message]\nmax_segments = 1"), &"h".repeat(64)).is_ok());
    }

    /// 92 UTF-16 units with an 8-letter host: two UCS-2 segments, where
    /// the same length in GSM-7 would be one.
    const RU: &str = "Ваш код для входа на сервер {{host}}: {{code}}. Он действует {{expiry_minutes}} минут. Никому его не сообщайте.";

    #[test]
    fn umlauts_stay_gsm7_but_cyrillic_is_ucs2_and_counted_so() {
        // ä, ü are in the GSM 03.38 alphabet; Cyrillic is not.
        let text = |max: u8| {
            format!(
                "[message]\nmax_segments = {max}\n\
                 [message.lang.de]\ntemplate = \"Ihr Anmeldecode für {{{{host}}}} ist {{{{code}}}}. Gültig {{{{expiry_minutes}}}} Minuten.\"\n\
                 [message.lang.ru]\ntemplate = {RU:?}\n"
            )
        };
        let c = config(&text(1));
        let de = worst_case(
            &c,
            "testhost",
            &c.lang_templates[&LangTag::parse("de").unwrap()],
        );
        let enc = encoding::analyze(&de);
        assert_eq!((enc.name(), enc.segments()), ("GSM-7", 1), "{de}");
        let ru = worst_case(
            &c,
            "testhost",
            &c.lang_templates[&LangTag::parse("ru").unwrap()],
        );
        let enc = encoding::analyze(&ru);
        assert_eq!(
            (enc.name(), enc.units(), enc.segments()),
            ("UCS-2", 92, 2),
            "{ru}"
        );
        let e = check_segments(&c, "testhost").unwrap_err();
        assert!(
            e.starts_with("message.lang.ru.template: at its longest this text takes 2 UCS-2 SMS segments (92 UTF-16 units), more than message.max_segments = 1"),
            "{e}"
        );
        assert!(check_segments(&config(&text(2)), "testhost").is_ok());
    }

    #[test]
    fn long_placeholders_and_the_origin_line_are_counted() {
        let c = config(
            "[message]\nmax_segments = 1\norigin_bound = true\ntemplate = \"{{code}} {{command}}\"",
        );
        // 6 + 1 + 120 + "\n\n@testhost #" (13) + 6 = 146 septets: one segment.
        assert_eq!(worst_case(&c, "testhost", &c.message).len(), 146);
        assert!(check_segments(&c, "testhost").is_ok());
        let c = config("[message]\nmax_segments = 1\ntemplate = \"{{code}} {{rhost}}\"");
        let e = check_segments(&c, "testhost").unwrap_err();
        assert!(
            e.starts_with("message.template: at its longest this text takes 2 GSM-7"),
            "{e}"
        );
    }
}
