//! The peers' codes: HOTP (RFC 4226) and TOTP (RFC 6238), HMAC-SHA1, six
//! digits, as `pam_oath` and `pam_google_authenticator` expect them.

use ring::hmac;

pub fn hotp(secret: &[u8], counter: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let h = tag.as_ref();
    let off = (h[h.len() - 1] & 0x0f) as usize;
    let bin = (u32::from(h[off] & 0x7f) << 24)
        | (u32::from(h[off + 1]) << 16)
        | (u32::from(h[off + 2]) << 8)
        | u32::from(h[off + 3]);
    format!("{:06}", bin % 1_000_000)
}

pub fn totp(secret: &[u8], unix_seconds: u64) -> String {
    hotp(secret, unix_seconds / 30)
}

/// RFC 4648 base32 without padding (what google-authenticator writes).
pub fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in data {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4226_vectors() {
        let secret = b"12345678901234567890";
        let want = ["755224", "287082", "359152", "969429", "338314"];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(hotp(secret, i as u64), *w);
        }
    }

    #[test]
    fn rfc6238_vector() {
        // 94287082 with 8 digits; the last six.
        assert_eq!(totp(b"12345678901234567890", 59), "287082");
    }

    #[test]
    fn base32_of_rfc_secret() {
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }
}
