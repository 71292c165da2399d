//! GSM-7 or UCS-2: which encoding a text needs and how many SMS segments
//! it takes. One character outside the GSM 03.38 alphabet (an emoji, a
//! curly quote from a template pasted out of a word processor) switches
//! the whole message to UCS-2 and cuts a segment from 160 to 70
//! characters, doubling or tripling the cost of every code. The daemon
//! logs the count, and Vonage needs `type=unicode` for such text.

/// GSM 03.38 default alphabet (one septet each).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38 extension table (escape + one septet: two each).
const GSM7_EXTENDED: &str = "\u{000C}^{}\\[~]|€";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `septets`: extension characters count twice.
    Gsm7 { septets: usize },
    /// `units`: UTF-16 code units (an emoji is two).
    Ucs2 { units: usize },
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Gsm7 { .. } => "GSM-7",
            Encoding::Ucs2 { .. } => "UCS-2",
        }
    }

    pub fn is_unicode(self) -> bool {
        matches!(self, Encoding::Ucs2 { .. })
    }

    /// Septets or UTF-16 units.
    pub fn units(self) -> usize {
        match self {
            Encoding::Gsm7 { septets } => septets,
            Encoding::Ucs2 { units } => units,
        }
    }

    /// SMS segments: one up to 160 septets / 70 units; beyond that each
    /// segment loses room to the concatenation header (153 / 67).
    pub fn segments(self) -> u32 {
        let (units, single, multi) = match self {
            Encoding::Gsm7 { septets } => (septets, 160, 153),
            Encoding::Ucs2 { units } => (units, 70, 67),
        };
        if units <= single {
            1
        } else {
            units.div_ceil(multi) as u32
        }
    }
}

pub fn analyze(text: &str) -> Encoding {
    let mut septets = 0;
    for c in text.chars() {
        if GSM7_BASIC.contains(c) {
            septets += 1;
        } else if GSM7_EXTENDED.contains(c) {
            septets += 2;
        } else {
            return Encoding::Ucs2 {
                units: text.encode_utf16().count(),
            };
        }
    }
    Encoding::Gsm7 { septets }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ascii_is_gsm7() {
        let e = analyze("Your login code for bastion-1 is 123456. It expires in 5 minutes.");
        assert_eq!(e.name(), "GSM-7");
        assert_eq!(e.segments(), 1);
    }

    #[test]
    fn extension_characters_count_twice() {
        assert_eq!(analyze("{}€"), Encoding::Gsm7 { septets: 6 });
        assert_eq!(analyze(&"a".repeat(159)).segments(), 1);
        assert_eq!(analyze(&format!("{}€", "a".repeat(159))).segments(), 2);
    }

    #[test]
    fn gsm7_segment_boundaries() {
        assert_eq!(analyze(&"a".repeat(160)).segments(), 1);
        assert_eq!(analyze(&"a".repeat(161)).segments(), 2);
        assert_eq!(analyze(&"a".repeat(306)).segments(), 2);
        assert_eq!(analyze(&"a".repeat(307)).segments(), 3);
    }

    #[test]
    fn one_foreign_character_makes_it_ucs2() {
        let e = analyze("Code 123456 ✓");
        assert!(e.is_unicode());
        assert_eq!(e.segments(), 1);
        assert_eq!(analyze(&"ж".repeat(70)).segments(), 1);
        assert_eq!(analyze(&"ж".repeat(71)).segments(), 2);
        assert_eq!(analyze(&"ж".repeat(134)).segments(), 2);
        assert_eq!(analyze(&"ж".repeat(135)).segments(), 3);
        // A curly quote is not GSM-7, a straight one is.
        assert!(analyze("it’s").is_unicode());
        assert!(!analyze("it's").is_unicode());
    }

    #[test]
    fn emoji_take_two_units() {
        assert_eq!(analyze("👍"), Encoding::Ucs2 { units: 2 });
        assert_eq!(analyze(&"👍".repeat(35)).segments(), 1);
        assert_eq!(analyze(&"👍".repeat(36)).segments(), 2);
    }
}
