//! Language tags (BCP 47, the common subset): `de`, `de-AT`, `fr-CA`,
//! `zh-Hant-TW`, `es-419`. A strict small check rather than a crate: the
//! tags only pick a template and a prompt catalogue, so extensions,
//! private use and grandfathered tags would only be places for a typo to
//! hide. Tags are stored in canonical case (`de-AT`, `zh-Hant`), so
//! `DE-at` in users.toml finds `[message.lang.de-AT]`.

use crate::error::Invalid;
use crate::raw::RawMessage;
use crate::template::{Template, Var};
use crate::types::DaemonConfig;
use std::collections::BTreeMap;
use std::fmt;

/// Longest tag accepted: language (3) + script (4) + region (3) + dashes.
pub const MAX_TAG: usize = 12;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LangTag(String);

impl LangTag {
    /// `language[-Script][-REGION]`: language 2-3 letters, script 4
    /// letters, region 2 letters or 3 digits.
    pub fn parse(text: &str) -> Result<LangTag, String> {
        let bad = || {
            format!(
                "{:?} is not a language tag; use a BCP 47 tag such as \"de\", \"de-AT\" or \"fr-CA\"",
                text.chars().take(40).collect::<String>()
            )
        };
        if text.is_empty() || text.len() > MAX_TAG {
            return Err(bad());
        }
        let mut parts = text.split('-');
        let language = parts.next().unwrap_or_default();
        if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err(bad());
        }
        let mut out = language.to_ascii_lowercase();
        let mut script_done = false;
        let mut region_done = false;
        for part in parts {
            let letters = part.bytes().all(|b| b.is_ascii_alphabetic());
            let digits = part.bytes().all(|b| b.is_ascii_digit());
            if part.len() == 4 && letters && !script_done && !region_done {
                script_done = true;
                out.push('-');
                out.push_str(&part[..1].to_ascii_uppercase());
                out.push_str(&part[1..].to_ascii_lowercase());
            } else if ((part.len() == 2 && letters) || (part.len() == 3 && digits)) && !region_done
            {
                region_done = true;
                out.push('-');
                out.push_str(&part.to_ascii_uppercase());
            } else {
                return Err(bad());
            }
        }
        Ok(LangTag(out))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tag, then each shorter prefix: `zh-Hant-TW`, `zh-Hant`, `zh`.
    /// The template lookup walks this before falling back to the default.
    pub fn fallbacks(&self) -> impl Iterator<Item = &str> {
        let s = self.0.as_str();
        let mut end = Some(s.len());
        std::iter::from_fn(move || {
            let e = end?;
            end = s[..e].rfind('-');
            Some(&s[..e])
        })
    }
}

impl fmt::Debug for LangTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LangTag({})", self.0)
    }
}

impl fmt::Display for LangTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The language side of `[message]`, checked: the default language, the
/// per-language templates by canonical tag and the segment limit.
pub(crate) struct Languages {
    pub default_lang: LangTag,
    pub templates: BTreeMap<LangTag, Template>,
    pub max_segments: u8,
}

/// A message template must contain the code: one without it would send
/// an SMS that cannot log anyone in.
pub(crate) fn message_template(key: &str, text: &str) -> Result<Template, Invalid> {
    let t = Template::parse(text, &Var::MESSAGE).map_err(|e| Invalid::new(key, e))?;
    if !t.uses(Var::Code) {
        return Err(Invalid::new(key, "must contain {{code}}"));
    }
    Ok(t)
}

pub(crate) fn languages(raw: &RawMessage) -> Result<Languages, Invalid> {
    let default_lang = LangTag::parse(raw.default_lang.as_deref().unwrap_or("en"))
        .map_err(|e| Invalid::new("message.default_lang", e))?;
    let mut templates = BTreeMap::new();
    for (tag, table) in &raw.lang {
        let key = format!("message.lang.{tag}");
        let lang = LangTag::parse(tag).map_err(|e| Invalid::new(&key, e))?;
        let Some(text) = &table.template else {
            return Err(Invalid::new(key, "needs a `template`"));
        };
        let template = message_template(&format!("{key}.template"), text)?;
        if templates.insert(lang.clone(), template).is_some() {
            return Err(Invalid::new(
                key,
                format!("a second table for {lang} (tags are case-insensitive)"),
            ));
        }
    }
    let max_segments =
        crate::validate::in_range("message.max_segments", raw.max_segments, 4, 1, 10)? as u8;
    Ok(Languages {
        default_lang,
        templates,
        max_segments,
    })
}

impl DaemonConfig {
    /// The template for `lang`: the tag, then each shorter prefix
    /// (`de-AT` -> `de`), then `message.template`. Also says which
    /// `[message.lang.*]` table answered (`None`: the default template).
    pub fn template_for(&self, lang: &LangTag) -> (&Template, Option<&LangTag>) {
        for tag in lang.fallbacks() {
            if let Some((k, t)) = self.lang_templates.get_key_value(tag) {
                return (t, Some(k));
            }
        }
        (&self.message, None)
    }

    /// Every template an SMS may be rendered from, with its key path.
    pub fn message_templates(&self) -> impl Iterator<Item = (String, &Template)> {
        std::iter::once(("message.template".to_string(), &self.message)).chain(
            self.lang_templates
                .iter()
                .map(|(tag, t)| (format!("message.lang.{tag}.template"), t)),
        )
    }
}

impl std::borrow::Borrow<str> for LangTag {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_canonicalises() {
        for (input, canonical) in [
            ("de", "de"),
            ("DE-at", "de-AT"),
            ("fr-CA", "fr-CA"),
            ("es-419", "es-419"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("sr-Latn", "sr-Latn"),
            ("haw", "haw"),
        ] {
            assert_eq!(LangTag::parse(input).unwrap().as_str(), canonical);
        }
    }

    #[test]
    fn refuses_what_is_not_a_plain_tag() {
        for bad in [
            "",
            "d",
            "deutsch",
            "de_AT",
            "de-",
            "-de",
            "de--AT",
            "de-AT-AT",
            "de-AT-Latn",
            "de-1996",
            "en-US-x-private",
            "i-klingon",
            "de-A",
            "d3",
            "de AT",
            "ру",
        ] {
            let e = LangTag::parse(bad).unwrap_err();
            assert!(e.contains("not a language tag"), "{bad}: {e}");
        }
    }

    #[test]
    fn fallback_chain_drops_one_subtag_at_a_time() {
        let t = LangTag::parse("zh-Hant-TW").unwrap();
        assert_eq!(
            t.fallbacks().collect::<Vec<_>>(),
            ["zh-Hant-TW", "zh-Hant", "zh"]
        );
        let t = LangTag::parse("de").unwrap();
        assert_eq!(t.fallbacks().collect::<Vec<_>>(), ["de"]);
    }
}

#[cfg(test)]
mod config_tests {
    use std::path::Path;

    fn parse(message: &str) -> Result<crate::DaemonConfig, crate::ConfigError> {
        crate::parse(Path::new("c.toml"), &format!("[message]\n{message}\n"))
    }

    #[test]
    fn templates_fall_back_from_region_to_language_to_default() {
        let c = parse(
            "default_lang = \"en\"\n\
             [message.lang.de]\ntemplate = \"Ihr Code: {{code}}\"\n\
             [message.lang.fr-CA]\ntemplate = \"Code : {{code}}\"\n",
        )
        .unwrap();
        let pick = |tag: &str| {
            let (_, k) = c.template_for(&super::LangTag::parse(tag).unwrap());
            k.map(|k| k.to_string())
        };
        assert_eq!(pick("de-AT").as_deref(), Some("de"));
        assert_eq!(pick("de").as_deref(), Some("de"));
        assert_eq!(pick("fr-CA").as_deref(), Some("fr-CA"));
        assert_eq!(pick("fr").as_deref(), None, "fr-CA is not a fallback of fr");
        assert_eq!(pick("it").as_deref(), None);
        assert_eq!(c.default_lang.as_str(), "en");
        assert_eq!(c.message_templates().count(), 3);
        assert_eq!(c.max_segments, 4);
    }

    #[test]
    fn errors_name_line_and_key() {
        let cases = [
            (
                "default_lang = \"english\"",
                2,
                "message.default_lang",
                "not a language tag",
            ),
            (
                "[message.lang.de_DE]\ntemplate = \"{{code}}\"",
                2,
                "message.lang.de_DE",
                "not a language tag",
            ),
            (
                "[message.lang.de]\ntemplate = \"Kein Code\"",
                3,
                "message.lang.de.template",
                "must contain {{code}}",
            ),
            (
                "[message.lang.de]\ntemplate = \"{{kode}}\"",
                3,
                "message.lang.de.template",
                "unknown placeholder",
            ),
            (
                "[message.lang.de]\ntemplat = \"{{code}}\"",
                3,
                "message.lang.de.templat",
                "unknown field",
            ),
            (
                "[message.lang.de]\n",
                2,
                "message.lang.de",
                "needs a `template`",
            ),
            (
                "max_segments = 0",
                2,
                "message.max_segments",
                "between 1 and 10",
            ),
        ];
        for (text, line, key, message) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{text}: {e}");
            assert_eq!(e.line, Some(line), "{text}: {e}");
            assert!(e.message.contains(message), "{text}: {e}");
        }
        let e = parse("[message.lang.de]\ntemplate = \"{{code}}\"\n[message.lang.DE]\ntemplate = \"{{code}}\"").unwrap_err();
        assert!(e.message.contains("a second table for de"), "{e}");
    }
}
