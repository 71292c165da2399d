//! E.164 mobile numbers. The full number is needed only by providers;
//! everything that may reach a log or a prompt uses the masked form.

use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Mobile(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MobileError {
    #[error("must start with '+' and the country code (E.164), e.g. +15551234567")]
    NoPlus,
    #[error("must have 7 to 15 digits after '+' (E.164)")]
    Length,
    #[error("may contain only digits after '+' (no spaces or dashes)")]
    NotDigits,
    #[error("country code cannot start with 0")]
    LeadingZero,
}

impl Mobile {
    pub fn parse(s: &str) -> Result<Mobile, MobileError> {
        let digits = s.strip_prefix('+').ok_or(MobileError::NoPlus)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MobileError::NotDigits);
        }
        if !(7..=15).contains(&digits.len()) {
            return Err(MobileError::Length);
        }
        if digits.starts_with('0') {
            return Err(MobileError::LeadingZero);
        }
        Ok(Mobile(s.to_string()))
    }

    /// `+15551234567`. For providers only: never log it.
    pub fn e164(&self) -> &str {
        &self.0
    }

    /// `15551234567`: what APIs that refuse the `+` (Vonage) want.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// All digits but the last `visible` become `*`; the `+` is dropped.
    pub fn masked(&self, visible: usize) -> String {
        let digits = self.digits();
        let shown = visible.min(digits.len());
        let mut out = "*".repeat(digits.len() - shown);
        out.push_str(&digits[digits.len() - shown..]);
        out
    }
}

impl fmt::Debug for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mobile({})", self.masked(4))
    }
}

impl fmt::Display for Mobile {
    /// Displays masked, so a stray `{}` in a log line cannot leak it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked(4))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_numbers() {
        let m = Mobile::parse("+15551234567").unwrap();
        assert_eq!(m.e164(), "+15551234567");
        assert_eq!(m.digits(), "15551234567");
        assert_eq!(m.masked(4), "*******4567");
        assert_eq!(m.masked(0), "***********");
        assert_eq!(m.masked(99), "15551234567");
        assert!(Mobile::parse("+4915112345678").is_ok());
    }

    #[test]
    fn invalid_numbers_say_why() {
        assert_eq!(Mobile::parse("15551234567"), Err(MobileError::NoPlus));
        assert_eq!(Mobile::parse("+1 555 123"), Err(MobileError::NotDigits));
        assert_eq!(Mobile::parse("+123"), Err(MobileError::Length));
        assert_eq!(Mobile::parse("+1234567890123456"), Err(MobileError::Length));
        assert_eq!(Mobile::parse("+0123456789"), Err(MobileError::LeadingZero));
        assert_eq!(Mobile::parse("+١٢٣٤٥٦٧٨"), Err(MobileError::NotDigits));
        assert_eq!(Mobile::parse(""), Err(MobileError::NoPlus));
    }

    #[test]
    fn debug_and_display_are_masked() {
        let m = Mobile::parse("+15551234567").unwrap();
        assert!(!format!("{m:?}").contains("5551234"));
        assert!(!format!("{m}").contains("5551234"));
    }
}
