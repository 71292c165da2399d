//! `users.toml`: the administrator's map from login name to mobile number.

use crate::error::{ConfigError, Invalid};
use crate::locate::from_toml;
use crate::mobile::Mobile;
use crate::raw::RawUsers;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, Default)]
pub struct Users {
    map: HashMap<String, Mobile>,
}

impl Users {
    pub fn load(path: &Path) -> Result<Users, ConfigError> {
        let text = crate::read_bounded(path)?;
        Users::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Users, ConfigError> {
        let raw: RawUsers = from_toml(path, text)?;
        let mut map = HashMap::with_capacity(raw.users.len());
        for (user, number) in raw.users {
            let key = || format!("users.{user}");
            if user.is_empty()
                || user.len() > 256
                || user.contains('/')
                || user.chars().any(char::is_control)
            {
                return Err(Invalid::new(key(), "not a valid login name").locate(path, text));
            }
            let mobile = Mobile::parse(number.trim())
                .map_err(|e| Invalid::new(key(), e.to_string()).locate(path, text))?;
            map.insert(user, mobile);
        }
        Ok(Users { map })
    }

    pub fn mobile(&self, user: &str) -> Option<&Mobile> {
        self.map.get(user)
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
    fn unknown_top_level_key_is_refused() {
        let e =
            Users::parse(Path::new("u.toml"), "[user]\nalice = \"+15551234567\"\n").unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("unknown field"), "{e}");
    }
}
