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
