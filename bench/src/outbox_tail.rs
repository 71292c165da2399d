//! Reads the codes the daemon's `outbox` provider appends to its file
//! (one JSON line per message, `smsotp_tests::outbox`), incrementally:
//! re-reading the whole file per login, as the e2e tests may, would make
//! a long benchmark quadratic.

use crate::mock::{slot_of, Codes};
use smsotp_tests::outbox::Sms;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct OutboxTail {
    path: PathBuf,
    offset: u64,
    /// Bytes of a line not yet terminated by '\n' (still being written).
    partial: Vec<u8>,
}

impl OutboxTail {
    /// Starts at the current end of the file (older codes are spent).
    pub fn at_end(path: &Path) -> OutboxTail {
        let offset = std::fs::metadata(path).map_or(0, |m| m.len());
        OutboxTail {
            path: path.to_path_buf(),
            offset,
            partial: Vec::new(),
        }
    }

    /// The complete messages appended since the last call.
    pub fn poll(&mut self) -> Vec<Sms> {
        let Ok(mut f) = File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut new = Vec::new();
        let Ok(n) = f.read_to_end(&mut new) else {
            return Vec::new();
        };
        self.offset += n as u64;
        self.partial.extend_from_slice(&new);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let lines: Vec<u8> = self.partial.drain(..=end).collect();
        String::from_utf8_lossy(&lines)
            .lines()
            .filter_map(|l| serde_json::from_str::<Sms>(l).ok())
            .collect()
    }

    /// Waits (bounded) for the next message to `to`; its code.
    pub fn next_code_for(&mut self, to: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(sms) = self.poll().into_iter().rev().find(|s| s.to == to) {
                return smsotp_tests::outbox::extract_code(&sms.body);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Feeds every new code into `codes` (slot = the number's last six
    /// digits, as the loopback gateway does) until `stop`.
    pub fn pump(mut self, codes: &Codes, stop: &std::sync::atomic::AtomicBool) {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let batch = self.poll();
            if batch.is_empty() {
                std::thread::sleep(Duration::from_micros(50));
            }
            for sms in batch {
                if let (Some(slot), Some(code)) = (
                    slot_of(&sms.to),
                    smsotp_tests::outbox::extract_code(&sms.body),
                ) {
                    codes.put(slot, &code);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(to: &str, code: &str) -> String {
        format!(
            "{{\"to\": \"{to}\", \"body\": \"Your login code for h is {code}. It expires in 5 minutes.\", \"at\": \"2026-01-01T00:00:00Z\"}}\n"
        )
    }

    #[test]
    fn reads_only_what_was_appended_and_waits_for_the_end_of_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.jsonl");
        std::fs::write(&path, line("+1555000001", "111111")).unwrap();
        // Messages before the tail started are spent.
        let mut tail = OutboxTail::at_end(&path);
        assert!(tail.poll().is_empty());
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let second = line("+1555000002", "222222");
        let (head, rest) = second.split_at(30);
        f.write_all(head.as_bytes()).unwrap();
        // Half a line is still being written: nothing yet, nothing lost.
        assert!(tail.poll().is_empty());
        f.write_all(rest.as_bytes()).unwrap();
        f.write_all(line("+1555000003", "333333").as_bytes())
            .unwrap();
        let got: Vec<(String, String)> = tail
            .poll()
            .into_iter()
            .map(|s| (s.to.clone(), s.code()))
            .collect();
        assert_eq!(
            got,
            [
                ("+1555000002".to_string(), "222222".to_string()),
                ("+1555000003".to_string(), "333333".to_string())
            ]
        );
        assert!(tail.poll().is_empty());
        f.write_all(line("+1555000002", "444444").as_bytes())
            .unwrap();
        assert_eq!(
            tail.next_code_for("+1555000002", Duration::from_secs(1)),
            Some("444444".to_string())
        );
        assert_eq!(
            tail.next_code_for("+1555000002", Duration::from_millis(50)),
            None
        );
    }
}
