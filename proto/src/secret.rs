//! A string that must never reach a log: OTP codes and backup codes.

use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::Zeroizing;

/// Wipes itself on drop and prints as `Secret(***)`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// The secret text. Callers must not log or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let s = Secret::new("123456");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "123456");
    }

    #[test]
    fn serializes_as_plain_string() {
        let s = Secret::new("ab12");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"ab12\"");
        let back: Secret = serde_json::from_str("\"ab12\"").unwrap();
        assert_eq!(back, s);
    }
}
