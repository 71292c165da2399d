//! Directory values to E.164. People type numbers into the directory the
//! way they write them: `+1 555 123 4567`, `+44 (0)20 7946 0000`,
//! `0049 30 1234567`, `030 1234567`. libphonenumber's metadata (the
//! `phonenumber` crate) knows each country's trunk and international
//! prefixes, so a national format becomes E.164 by the rules phones use,
//! not by a guess of ours. Anything it cannot read as a valid number is
//! no number: a code is never sent to a guess.

use phonenumber::country::Id;
use phonenumber::Mode;
use smsotp_config::Mobile;
use std::str::FromStr;

/// A value longer than this is not a phone number (E.164 is 15 digits;
/// room is left for spaces, brackets and an extension).
const MAX_VALUE: usize = 64;

/// The country national formats are read in, checked once when the
/// config is loaded.
pub fn country(code: &str) -> Result<Id, String> {
    Id::from_str(code).map_err(|_| format!("{code:?} is not a country code libphonenumber knows"))
}

/// `Some` only for a valid number without extension, in E.164.
pub fn e164(value: &str, default_country: Option<Id>) -> Option<Mobile> {
    if value.len() > MAX_VALUE || value.chars().any(char::is_control) {
        return None;
    }
    // Without a country, only the international forms can be read:
    // `+CC ...` (and `00CC`, `011CC` need the country's own prefix).
    let number = phonenumber::parse(default_country, value).ok()?;
    if number.extension().is_some() || !phonenumber::is_valid(&number) {
        return None;
    }
    let text = number.format().mode(Mode::E164).to_string();
    Mobile::parse(&text).ok()
}

/// A directory value as a log line may show it: every digit but the last
/// `visible` hidden, the punctuation kept so the format that failed is
/// still recognisable (`+** (*)** **** 0000`).
pub fn masked(value: &str, visible: usize) -> String {
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    value
        .chars()
        .take(MAX_VALUE)
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen + visible > digits {
                    c
                } else {
                    '*'
                }
            } else if c.is_control() || c.is_alphanumeric() {
                // Letters may spell a name or a word; hide them too.
                '*'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(value: &str, country: Option<&str>) -> Option<String> {
        e164(value, country.map(country_id)).map(|m| m.e164().to_string())
    }

    fn country_id(c: &str) -> Id {
        country(c).unwrap()
    }

    #[test]
    fn international_and_national_formats() {
        assert_eq!(
            norm("+1 555 123 4567", None).as_deref(),
            None,
            "555-123 is not a valid US exchange"
        );
        assert_eq!(
            norm("+1 201 555 0123", None).as_deref(),
            Some("+12015550123")
        );
        assert_eq!(
            norm("+44 (0)20 7946 0000", None).as_deref(),
            Some("+442079460000")
        );
        assert_eq!(
            norm("(0)20 7946 0000", Some("GB")).as_deref(),
            Some("+442079460000")
        );
        assert_eq!(
            norm("020 7946 0000", Some("GB")).as_deref(),
            Some("+442079460000")
        );
        assert_eq!(
            norm("0049 30 1234567", Some("DE")).as_deref(),
            Some("+49301234567")
        );
        assert_eq!(
            norm("0049 30 1234567", Some("GB")).as_deref(),
            Some("+49301234567")
        );
        assert_eq!(
            norm("030 1234567", Some("DE")).as_deref(),
            Some("+49301234567")
        );
        assert_eq!(
            norm("+49-151-12345678", None).as_deref(),
            Some("+4915112345678")
        );
        assert_eq!(
            norm("(201) 555-0123", Some("US")).as_deref(),
            Some("+12015550123")
        );
    }

    #[test]
    fn what_cannot_be_read_is_no_number() {
        // A national format without default_country is ambiguous.
        assert_eq!(norm("020 7946 0000", None), None);
        for bad in [
            "",
            "n/a",
            "ask reception",
            "+44 20",
            "+999 1234567",
            "+44 20 7946 0000 ext. 12",
            "+44 20 7946 0000\n+1 201 555 0123",
            "+44 20 7946 0000\0",
            &"1".repeat(200),
        ] {
            assert_eq!(norm(bad, Some("GB")), None, "{bad:?}");
        }
        assert!(country("XX").is_err());
        assert!(country("GB").is_ok());
    }

    #[test]
    fn masking_keeps_the_shape_not_the_number() {
        assert_eq!(masked("+44 (0)20 7946 0000", 4), "+** (*)** **** 0000");
        assert_eq!(masked("call 0207", 2), "**** **07");
        assert_eq!(masked("0049 30 12", 0), "**** ** **");
    }
}
