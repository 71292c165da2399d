//! The `outbox` provider's file: one JSON object per line,
//! `{"to": "+1555...", "body": "...", "at": "RFC3339"}`.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One message the daemon "sent".
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Sms {
    pub to: String,
    pub body: String,
    pub at: String,
}

impl Sms {
    /// The code in the body (default template).
    pub fn code(&self) -> String {
        extract_code(&self.body)
            .unwrap_or_else(|| panic!("no code found in SMS body {:?}", self.body))
    }
}

#[derive(Debug, Clone)]
pub struct Outbox {
    path: PathBuf,
}

impl Outbox {
    pub fn new(path: impl Into<PathBuf>) -> Outbox {
        Outbox { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every complete line so far. A missing file is an empty outbox; a
    /// trailing line without newline is still being written and is skipped.
    pub fn read(&self) -> Vec<Sms> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("cannot read outbox {}: {e}", self.path.display()),
        };
        let complete = match text.rfind('\n') {
            Some(end) => &text[..end],
            None => return Vec::new(),
        };
        complete
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("outbox line is not {{to, body, at}} JSON ({e}): {l:?}")
                })
            })
            .collect()
    }

    pub fn count(&self) -> usize {
        self.read().len()
    }

    /// Waits (at most `timeout`) until at least `n` messages are there.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Sms> {
        let deadline = Instant::now() + timeout;
        loop {
            let msgs = self.read();
            if msgs.len() >= n {
                return msgs;
            }
            if Instant::now() >= deadline {
                panic!(
                    "outbox {} has {} message(s) after {timeout:?}, expected {n}: {msgs:#?}",
                    self.path.display(),
                    msgs.len()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `n`th message (1-based), waiting up to 5 s for it.
    pub fn nth(&self, n: usize) -> Sms {
        assert!(n >= 1, "messages are numbered from 1");
        self.wait_for(n, Duration::from_secs(5))[n - 1].clone()
    }

    /// The newest message, waiting up to 5 s for there to be one.
    pub fn last(&self) -> Sms {
        self.wait_for(1, Duration::from_secs(5))
            .pop()
            .expect("at least one message")
    }

    /// Messages that carry a login code; notices to the phone (a lockout,
    /// new backup codes) do not count.
    pub fn code_count(&self) -> usize {
        self.read()
            .iter()
            .filter(|m| extract_code(&m.body).is_some())
            .count()
    }

    /// The lockout notices so far (`Wrong codes were entered ...`).
    pub fn lockout_notices(&self) -> Vec<Sms> {
        self.read()
            .into_iter()
            .filter(|m| m.body.starts_with(LOCKOUT_NOTICE_PREFIX))
            .collect()
    }

    /// The code of the newest message that carries one (notices skipped),
    /// waiting up to 5 s for there to be one.
    pub fn last_code(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(code) = self.codes().pop() {
                return code;
            }
            assert!(
                Instant::now() < deadline,
                "no code in the outbox {} after 5 s: {:#?}",
                self.path.display(),
                self.read()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every code that appears in the outbox (for log-leak checks).
    pub fn codes(&self) -> Vec<String> {
        self.read()
            .iter()
            .filter_map(|m| extract_code(&m.body))
            .collect()
    }
}

/// How the daemon's lockout notice begins.
pub const LOCKOUT_NOTICE_PREFIX: &str = "Wrong codes were entered for your account on ";

/// The code in a body rendered from the default template
/// `Your login code for {{host}} is {{code}}. It expires in ...`:
/// the alphanumeric word after the last ` is ` before `. It expires`.
pub fn extract_code(body: &str) -> Option<String> {
    let head = match body.find(". It expires") {
        Some(end) => &body[..end],
        None => body,
    };
    let start = head.rfind(" is ")? + 4;
    let code: String = head[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    (4..=10).contains(&code.len()).then_some(code)
}

/// A code of the same length and alphabet that is certainly not `code`.
pub fn wrong_code(code: &str) -> String {
    let mut chars: Vec<char> = code.chars().collect();
    let last = chars.last_mut().expect("empty code");
    *last = match *last {
        '9' => '2',
        d @ '0'..='8' => char::from(d as u8 + 1),
        'Z' => 'A',
        'z' => 'a',
        c if c.is_ascii_alphabetic() => {
            // Stay inside the unambiguous alphabet (no I, L, O).
            let mut n = char::from(c as u8 + 1);
            while matches!(n.to_ascii_uppercase(), 'I' | 'L' | 'O') {
                n = char::from(n as u8 + 1);
            }
            n
        }
        _ => '2',
    };
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_from_default_template() {
        let body = "Your login code for testhost is 042917. It expires in 5 minutes.";
        assert_eq!(extract_code(body).as_deref(), Some("042917"));
        let body = "Your login code for this is odd is AB7KQ9. It expires in 1 minutes.";
        assert_eq!(extract_code(body).as_deref(), Some("AB7KQ9"));
        assert_eq!(extract_code("no code here"), None);
    }

    #[test]
    fn wrong_code_differs() {
        for c in ["000000", "999999", "123459", "ABCDEH", "ZZZZ"] {
            let w = wrong_code(c);
            assert_ne!(w, c);
            assert_eq!(w.len(), c.len());
        }
    }
}
