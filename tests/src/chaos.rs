//! Reproducible randomness and hard kills for the crash tests.

use std::time::{Duration, Instant};

/// SplitMix64: tiny, seeded, good enough to spread kill points. A failing
/// run prints its seed; `SMSOTP_CHAOS_SEED=N` replays it.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The seed from `SMSOTP_CHAOS_SEED`, else `default`.
    pub fn seed_from_env(default: u64) -> u64 {
        std::env::var("SMSOTP_CHAOS_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(default)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`hi > lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(hi > lo, "empty range {lo}..{hi}");
        lo + self.next_u64() % (hi - lo)
    }
}

/// SIGKILL to `pid`, then waits (bounded) until the process is gone or a
/// zombie, so the caller can restart at once. The caller still reaps it.
pub fn sigkill(pid: u32) {
    // SAFETY: signalling a process we started, by pid.
    let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill -9 {pid}: {}", std::io::Error::last_os_error());
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Field 3 (after the parenthesised name) is the state; Z = zombie.
        let gone = state.is_empty()
            || state
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        if gone {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("process {pid} still runs 5 s after SIGKILL");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_reproducible_and_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            let x = a.range(10, 20);
            assert_eq!(x, b.range(10, 20));
            assert!((10..20).contains(&x));
        }
    }
}
