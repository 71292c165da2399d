//! `users.toml`: the administrator's map from login name to mobile number
//! and, in the table form, the user's language:
//! `alice = "+15551234567"` or `bob = { mobile = "+4915112345678", lang = "de" }`.
//! A table may leave out `mobile` (the number then comes from the store,
//! e.g. enrolled at login) but must say something.

use crate::error::{ConfigError, Invalid};
use crate::lang::LangTag;
use crate::locate::from_toml;
use crate::mobile::Mobile;
use crate::raw::RawUsers;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct Users {
    map: HashMap<String, Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    mobile: Option<Mobile>,
    lang: Option<LangTag>,
}

fn entry(key: &str, value: toml::Value) -> Result<Entry, Invalid> {
    let mobile = |key: String, text: &str| {
        Mobile::parse(text.trim()).map_err(|e| Invalid::new(key, e.to_string()))
    };
    match value {
        toml::Value::String(number) => Ok(Entry {
            mobile: Some(mobile(key.to_string(), &number)?),
            lang: None,
        }),
        toml::Value::Table(table) => {
            let mut e = Entry {
                mobile: None,
                lang: None,
            };
            for (field, value) in table {
                let sub = format!("{key}.{field}");
                let Some(text) = value.as_str() else {
                    return Err(Invalid::new(sub, "must be a string"));
                };
                match field.as_str() {
                    "mobile" => e.mobile = Some(mobile(sub, text)?),
                    "lang" => e.lang = Some(LangTag::parse(text).map_err(|m| Invalid::new(sub, m))?),
                    _ => {
                        return Err(Invalid::new(
                            sub,
                            format!("unknown field `{field}`, expected `mobile` or `lang`"),
                        ))
                    }
                }
            }
            if e.mobile.is_none() && e.lang.is_none() {
                return Err(Invalid::new(key, "an empty table; give `mobile` or `lang`"));
            }
            Ok(e)
        }
        _ => Err(Invalid::new(
            key,
            "must be a number (\"+15551234567\") or a table ({ mobile = \"+15551234567\", lang = \"de\" })",
        )),
    }
}

impl Users {
    pub fn load(path: &Path) -> Result<Users, ConfigError> {
        let text = crate::read_bounded(path)?;
        Users::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Users, ConfigError> {
        let raw: RawUsers = from_toml(path, text)?;
        let mut map = HashMap::with_capacity(raw.users.len());
        for (user, value) in raw.users {
            let key = format!("users.{user}");
            if user.is_empty()
                || user.len() > 256
                || user.contains('/')
                || user.chars().any(char::is_control)
            {
                return Err(Invalid::new(key, "not a valid login name").locate(path, text));
            }
            let e = entry(&key, value).map_err(|e| e.locate(path, text))?;
            map.insert(user, e);
        }
        Ok(Users { map })
    }

    pub fn mobile(&self, user: &str) -> Option<&Mobile> {
        self.map.get(user)?.mobile.as_ref()
    }

    /// The user's language from the table form, if it names one.
    pub fn lang(&self, user: &str) -> Option<&LangTag> {
        self.map.get(user)?.lang.as_ref()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_masks() {
        let u = Users::parse(Path::new("u.toml"), "[users]\nalice = \"+15551234567\"\n").unwrap();
        assert_eq!(u.len(), 1);
        assert_eq!(u.mobile("alice").unwrap().masked(4), "*******4567");
        assert!(u.mobile("bob").is_none());
    }

    #[test]
    fn bad_number_names_line_and_user() {
        let text = "[users]\nalice = \"+15551234567\"\nbob = \"555-1234\"\n";
        let e = Users::parse(Path::new("/etc/smsotp/users.toml"), text).unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("/etc/smsotp/users.toml:3: users.bob: "),
            "{s}"
        );
        assert!(s.contains("E.164"), "{s}");
    }

    #[test]
    fn table_form_gives_mobile_and_lang() {
        let text = "[users]\nalice = \"+15551234567\"\nbob = { mobile = \"+4915112345678\", lang = \"DE-at\" }\ncarol = { lang = \"fr\" }\n";
        let u = Users::parse(Path::new("u.toml"), text).unwrap();
        assert_eq!(u.len(), 3);
        assert!(u.lang("alice").is_none());
        assert_eq!(u.mobile("bob").unwrap().masked(4), "*********5678");
        assert_eq!(u.lang("bob").unwrap().as_str(), "de-AT");
        assert!(u.mobile("carol").is_none(), "number from the store");
        assert_eq!(u.lang("carol").unwrap().as_str(), "fr");
    }

    #[test]
    fn table_form_errors_name_line_and_key() {
        let cases = [
            (
                "bob = { mobile = \"+4915112345678\", lang = \"deutsch\" }",
                "users.bob.lang",
                "not a language tag",
            ),
            ("bob = { mobile = \"0151\" }", "users.bob.mobile", "E.164"),
            (
                "bob = { mobil = \"+4915112345678\" }",
                "users.bob.mobil",
                "unknown field `mobil`",
            ),
            ("bob = { lang = 7 }", "users.bob.lang", "must be a string"),
            ("bob = {}", "users.bob", "empty table"),
            ("bob = 15551234567", "users.bob", "must be a number"),
        ];
        for (line, key, message) in cases {
            let text = format!("[users]\nalice = \"+15551234567\"\n{line}\n");
            let e = Users::parse(Path::new("u.toml"), &text).unwrap_err();
            assert_eq!(e.line, Some(3), "{line}: {e}");
            assert_eq!(e.key.as_deref(), Some(key), "{line}: {e}");
            assert!(e.message.contains(message), "{line}: {e}");
        }
    }

    #[test]
    fn unknown_top_level_key_is_refused() {
        let e =
            Users::parse(Path::new("u.toml"), "[user]\nalice = \"+15551234567\"\n").unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("unknown field"), "{e}");
    }
}
