//! What every HTTP provider does with an answer: read a bounded body,
//! turn a status or a transport error into a [`ProviderError`], and make
//! any text from outside safe for a log line (no number, code, credential,
//! control or bidi characters; bounded length).

use super::{ProviderError, Sms};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use std::time::Duration;
use zeroize::{Zeroize, Zeroizing};

/// The most of a response body we read: enough for any gateway's JSON,
/// bounded so a hostile or broken endpoint cannot make us buffer without
/// limit.
pub(crate) const MAX_BODY: usize = 64 * 1024;
/// How much of a body goes into an error message.
pub(crate) const MAX_SNIPPET: usize = 200;

/// Strings that must not reach a log, with what replaces them.
pub(crate) struct Scrubber {
    /// Longest first, so a URL is replaced whole before the number in it.
    items: Vec<(String, String)>,
    /// Pieces (a tail of the number, a stretch of the code) replaced only
    /// where they stand alone, not inside a longer run of letters and
    /// digits: a gateway's message id must survive.
    pieces: Vec<String>,
}

impl Scrubber {
    /// The number and the message in the forms a gateway might echo them
    /// (plain, form-encoded, JSON-escaped, digits only).
    pub(crate) fn for_sms(sms: &Sms) -> Self {
        let masked = sms.to.masked(4);
        let mut s = Scrubber {
            items: Vec::new(),
            pieces: Vec::new(),
        };
        s.add(sms.to.e164(), &masked);
        s.add(sms.to.digits(), &masked);
        s.add(
            &form_urlencoded::byte_serialize(sms.to.e164().as_bytes()).collect::<String>(),
            &masked,
        );
        s.add(&sms.body, "<message>");
        s.add(
            &form_urlencoded::byte_serialize(sms.body.as_bytes()).collect::<String>(),
            "<message>",
        );
        let json = serde_json::Value::String(sms.body.to_string()).to_string();
        s.add(json.trim_matches('"'), "<message>");
        // Gateways also echo pieces: the number without its country code,
        // or the code alone (a truncated body, "failed, 918273"). Every
        // national-length tail of the number, and every 4+ character
        // stretch of each code-like word of the message (see
        // [`code_like`]), is scrubbed too.
        // The national number (the digits without a 1-3 digit country
        // code) and whole code-like words go wherever they appear, even
        // inside longer runs of digits; shorter pieces only where they
        // stand alone, so a gateway's message id survives.
        let digits = sms.to.digits();
        for len in 7..digits.len() {
            let tail = &digits[digits.len() - len..];
            if len + 3 >= digits.len() {
                s.add(tail, &masked);
            } else {
                s.pieces.push(tail.to_string());
            }
            // National format with the trunk prefix (07700 900123).
            s.pieces.push(format!("0{tail}"));
        }
        for word in sms.body.split(|c: char| !c.is_ascii_alphanumeric()) {
            if word.len() < 4 || word.len() > 16 || !code_like(word) {
                continue;
            }
            s.add(word, "***");
            for start in 0..word.len() {
                for end in start + 4..=word.len() {
                    s.pieces.push(word[start..end].to_string());
                }
            }
        }
        s.pieces.sort_by_key(|p| std::cmp::Reverse(p.len()));
        s.pieces.dedup();
        s
    }

    pub(crate) fn add(&mut self, secret: &str, replacement: &str) {
        // Very short strings (a test body of "x") would blank out ordinary
        // words; real numbers, messages and credentials are far longer.
        if secret.len() >= 4 {
            self.items
                .push((secret.to_string(), replacement.to_string()));
            self.items.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        }
    }

    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (secret, replacement) in &self.items {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), replacement);
            }
        }
        for piece in &self.pieces {
            out = replace_standalone(&out, piece, "***");
        }
        out
    }
}

impl Drop for Scrubber {
    fn drop(&mut self) {
        for (s, _) in &mut self.items {
            s.zeroize();
        }
        for p in &mut self.pieces {
            p.zeroize();
        }
    }
}

/// A word of the message that may be the code (or a `#code` line): it
/// holds a digit, or it is written only in the letters of the alphanumeric
/// code alphabet. The scrubber does not know which word is the code, and a
/// letters-only code (`ABCDEF`, one in six 6-character alphanumeric
/// codes) has no digit to give it away; a template's ordinary words are in
/// lower or mixed case, so they and their pieces stay readable. Over-eager
/// only for all-capital template words without O, I or L, which cost a log
/// line a word, never a code.
fn code_like(word: &str) -> bool {
    word.bytes().any(|b| b.is_ascii_digit())
        || word.bytes().all(|b| crate::otp::ALPHANUMERIC.contains(&b))
}

/// Replaces `piece` where it stands alone: a run of digits where neither
/// neighbour is a digit (a number glued to words is still caught), other
/// pieces where neither neighbour is a letter or digit.
fn replace_standalone(text: &str, piece: &str, with: &str) -> String {
    let numeric = piece.bytes().all(|b| b.is_ascii_digit());
    let joins = |b: u8| {
        if numeric {
            b.is_ascii_digit()
        } else {
            b.is_ascii_alphanumeric()
        }
    };
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (at, _) in text.match_indices(piece) {
        if at < last {
            continue;
        }
        let end = at + piece.len();
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(end).copied();
        let alone = !before.is_some_and(joins) && !after.is_some_and(joins);
        if alone {
            out.push_str(&text[last..at]);
            out.push_str(with);
            last = end;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// `Basic base64(user:secret)`, marked sensitive (kept out of reqwest's
/// `Debug`), with the encoded credential for the scrubber: a gateway that
/// echoes request headers back must not put the token in our logs in
/// base64 either.
pub(crate) fn basic_auth(user: &str, secret: &str) -> (HeaderValue, Zeroizing<String>) {
    use base64::Engine;
    let encoded = Zeroizing::new(
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}")),
    );
    let mut value = HeaderValue::from_str(&format!("Basic {}", *encoded))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    value.set_sensitive(true);
    (value, encoded)
}

/// Reads at most `limit` bytes of the body; an error or the overall
/// timeout just ends the read with what arrived.
pub(crate) async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    while buf.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(limit - buf.len());
                buf.extend_from_slice(&chunk[..take]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    buf
}

/// A log-safe excerpt of outside text: secrets scrubbed first (so a cut
/// cannot leave half a number), control and bidi characters removed (no
/// forged log lines), whitespace collapsed, then at most 200 bytes.
pub(crate) fn snippet(body: &[u8], scrubber: &Scrubber) -> String {
    let text = scrubber.scrub(&String::from_utf8_lossy(body));
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_control() || is_bidi_or_invisible(c) {
                ' '
            } else {
                c
            }
        })
        .collect();
    let mut out = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.len() > MAX_SNIPPET {
        let mut cut = MAX_SNIPPET;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

fn is_bidi_or_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `e: cause: cause`, skipping a cause that repeats its parent's text.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// `Retry-After` in seconds (the HTTP-date form is rare from APIs and
/// not worth a date parser), capped at an hour.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: u64 = v.parse().ok()?;
    Some(Duration::from_secs(secs.min(3600)))
}

/// The usual meaning of an HTTP failure status: 429 slow down, 5xx and
/// 408 temporary, every other status permanent.
pub(crate) fn classify_status(status: u16, headers: &HeaderMap, message: String) -> ProviderError {
    match status {
        429 => ProviderError::RateLimited {
            message,
            retry_after: retry_after(headers),
        },
        408 | 500..=599 => ProviderError::Retryable(message),
        _ => ProviderError::Permanent(message),
    }
}

/// No response at all: a refused or reset connection, a TLS failure, a
/// timeout. All are worth another try (here or with the next provider),
/// except a request we could not even build.
pub(crate) fn transport_error(
    provider: &str,
    endpoint: &str,
    e: reqwest::Error,
    scrubber: &Scrubber,
) -> ProviderError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let permanent = e.is_builder();
    // reqwest's own Display includes the full URL; without_url() drops
    // it, and the scrub catches it should a cause repeat it.
    let cause = error_chain(&e.without_url());
    let msg = scrubber.scrub(&format!("{provider}: {what} ({endpoint}): {cause}"));
    if permanent {
        ProviderError::Permanent(msg)
    } else {
        ProviderError::Retryable(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsotp_config::Mobile;
    use zeroize::Zeroizing;

    #[test]
    fn snippet_is_bounded_clean_and_scrubbed() {
        let s = Sms {
            to: Mobile::parse("+15551234567").unwrap(),
            body: Zeroizing::new("Your code is 918273".into()),
        };
        let mut scrubber = Scrubber::for_sms(&s);
        scrubber.add("http://h/x?key=SECRETKEY", "<url>");
        scrubber.add("SECRETKEY", "***");
        let body = format!(
            "err\x1b[31m\r\nfake log line\u{202E} for +15551234567 msg Your code is 918273 key=SECRETKEY {}",
            "y".repeat(1000)
        );
        let out = snippet(body.as_bytes(), &scrubber);
        assert!(out.len() <= MAX_SNIPPET + 3, "{}", out.len());
        assert!(!out.chars().any(|c| c.is_control()), "{out:?}");
        assert!(!out.contains('\u{202E}'));
        assert!(!out.contains("5551234567"), "{out}");
        assert!(!out.contains("918273"), "{out}");
        assert!(!out.contains("SECRETKEY"), "{out}");
        assert!(out.contains("*******4567"), "{out}");
        assert!(out.starts_with("err [31m fake log line for"), "{out}");
        // Multi-byte text is cut on a character boundary.
        let out = snippet("é".repeat(300).as_bytes(), &scrubber);
        assert!(out.ends_with("..."));
    }

    #[test]
    fn partial_echoes_are_scrubbed() {
        // The three echoes the provider_response fuzz target found
        // (fuzz/regressions/provider_response/).
        let s = Sms {
            to: Mobile::parse("+15551234567").unwrap(),
            body: Zeroizing::new(
                "Your login code for fuzzhost is 918273. It expires in 5 minutes.".into(),
            ),
        };
        let scrubber = Scrubber::for_sms(&s);
        for echo in [
            r#"{"error":"+15551234567 failed, 918273"}"#,
            "{\"error\":\"+\u{f9}5551234567 failed, 918273\"}",
            r#"{"code":21617,"message":"Body too long: Your login code for fuzzhost is 918273. It exp"}"#,
            "national 5551234567 or 05551234567, cut code 9182 and 18273",
            r#"{"mess5551234567":"x","code":"abc918273"}"#,
            "{\"error\" )155551234567 failed, 91827918273\"}",
        ] {
            let out = snippet(echo.as_bytes(), &scrubber);
            for secret in ["5551234567", "551234567", "918273", "9182", "18273"] {
                assert!(!out.contains(secret), "{secret} in {out}");
            }
        }
        // Status codes and words of the message stay readable.
        let out = snippet(
            br#"{"code":21617,"message":"login code too long"}"#,
            &scrubber,
        );
        assert!(out.contains("21617") && out.contains("login code"), "{out}");
    }

    fn sms_with_code(code: &str) -> Sms {
        Sms {
            to: Mobile::parse("+15551234567").unwrap(),
            body: Zeroizing::new(format!(
                "Your login code for fuzzhost is {code}. It expires in 5 minutes."
            )),
        }
    }

    #[test]
    fn letters_only_codes_are_scrubbed_and_message_ids_survive() {
        // An alphanumeric code may have no digit to give it away
        // (fuzz/regressions/provider_response/letters-only-code-echoed-alone).
        let scrubber = Scrubber::for_sms(&sms_with_code("ABCDEF"));
        for echo in [
            r#"{"error":"+15551234567 failed, ABCDEF"}"#,
            r#"{"message":"Body too long: Your login code for fuzzhost is ABCDEF. It exp"}"#,
            r#"{"messABCDEF":"x","code":"xyzABCDEF"}"#,
            "cut code ABCD and CDEF",
        ] {
            let out = snippet(echo.as_bytes(), &scrubber);
            for secret in ["ABCDEF", "ABCD", "CDEF"] {
                assert!(!out.contains(secret), "{secret} in {out}");
            }
        }
        // Message ids (Vonage's upper-case hex, Twilio's SID) and the
        // template's words stay readable.
        let out = snippet(
            br#"{"message-id":"0A0000001234ABCD","sid":"SMabcdef98765432abcdef98765432ab","status":"login code queued"}"#,
            &scrubber,
        );
        for kept in [
            "0A0000001234ABCD",
            "SMabcdef98765432abcdef98765432ab",
            "login code",
        ] {
            assert!(out.contains(kept), "{kept} lost: {out}");
        }
    }

    #[test]
    fn no_random_alphanumeric_code_survives_an_echo() {
        // Measured on 10,000 random 6-character codes: before letters-only
        // words counted as code-like, 1,662 to 1,679 (those without a
        // digit, (23/31)^6 = 16.7%) were left in "failed, CODE", and so
        // were their first four characters.
        let policy = smsotp_config::OtpPolicy {
            kind: smsotp_config::CodeKind::Alphanumeric,
            ..Default::default()
        };
        let (mut whole, mut cut) = (0, 0);
        for _ in 0..10_000 {
            let code = crate::otp::generate(&policy);
            let scrubber = Scrubber::for_sms(&sms_with_code(&code));
            let out = scrubber.scrub(&format!(r#"{{"error":"failed, {}"}}"#, code.as_str()));
            whole += usize::from(out.contains(code.as_str()));
            let out = scrubber.scrub(&format!("cut: {}", &code[..4]));
            cut += usize::from(out.contains(&code[..4]));
        }
        assert_eq!(
            (whole, cut),
            (0, 0),
            "codes left in of 10,000: (whole, first four)"
        );
    }

    #[test]
    fn statuses_classify() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(
            classify_status(429, &h, "m".into()),
            ProviderError::RateLimited {
                message: "m".into(),
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert!(classify_status(503, &h, "m".into()).is_retryable());
        assert!(!classify_status(401, &h, "m".into()).is_retryable());
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
