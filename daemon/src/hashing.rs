//! The one place argon2 runs, and how much of it may run at once.
//!
//! Each argon2id hash of a backup code takes 19 MiB for tens of
//! milliseconds. Unbounded, 32 parallel requests for new sets ran hundreds
//! of them at once and took the daemon to 9 GiB, and glibc kept most of it
//! afterwards. So, for the whole daemon:
//!
//! * at most [`SLOTS`] hash runs at a time (19 MiB at the peak; one more
//!   slot would double that for a few milliseconds saved at login);
//! * a generation takes the slot one hash at a time, and only one
//!   generation is ever in the slot's (first-come) queue, so a backup code
//!   typed at login waits behind at most two generation hashes (the running
//!   one and the next), never behind a flood;
//! * freed hash memory goes back to the kernel at once (see
//!   [`return_memory_to_the_kernel`]).

use crate::backup::{self, NewCode};
use std::sync::Once;
use tokio::sync::{Mutex, Semaphore};
use zeroize::Zeroizing;

/// Hashes running at once, daemon-wide.
pub const SLOTS: usize = 1;

#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    #[error("argon2: {0}")]
    Argon2(#[from] argon2::password_hash::Error),
    #[error("the hashing task did not finish")]
    Task(#[from] tokio::task::JoinError),
    #[error("the hashing slots are closed")]
    Closed(#[from] tokio::sync::AcquireError),
}

pub struct Hashing {
    slots: Semaphore,
    /// Held for a whole set: generations queue here, not in `slots`.
    generation: Mutex<()>,
}

impl Hashing {
    pub fn new() -> Self {
        return_memory_to_the_kernel();
        Hashing {
            slots: Semaphore::new(SLOTS),
            generation: Mutex::new(()),
        }
    }

    /// Checks a typed backup-code secret against its stored hash.
    pub async fn verify(&self, secret: Zeroizing<String>, phc: String) -> bool {
        let Ok(_slot) = self.slots.acquire().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || backup::matches(&secret, &phc))
            .await
            .unwrap_or(false)
    }

    /// Makes a set of `count` codes with distinct ids, one hash at a time.
    pub async fn generate(&self, count: u32) -> Result<Vec<NewCode>, HashingError> {
        let _turn = self.generation.lock().await;
        let mut out: Vec<NewCode> = Vec::with_capacity(count as usize);
        while out.len() < count as usize {
            let taken: Vec<String> = out.iter().map(|c| c.id.clone()).collect();
            let _slot = self.slots.acquire().await?;
            out.push(tokio::task::spawn_blocking(move || backup::generate_one(&taken)).await??);
        }
        Ok(out)
    }
}

impl Default for Hashing {
    fn default() -> Self {
        Self::new()
    }
}

/// glibc serves an allocation above its mmap threshold (128 KiB at start)
/// with its own mapping and unmaps it on free, but after such a free it
/// raises the threshold to the freed size (up to 32 MiB). From then on the
/// 19 MiB argon2 blocks come from the heap arenas, one per thread that ran a
/// hash, and stay in the process after the burst (7.2 GiB measured). A fixed
/// threshold turns that adjustment off: every block is mapped for its hash
/// and unmapped after it. Nothing else the daemon allocates is near 1 MiB,
/// so this costs nothing elsewhere.
fn return_memory_to_the_kernel() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: mallopt only changes allocator tunables; it is safe to call
        // at any time from any thread.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_login_check_waits_behind_at_most_one_generation_hash() {
        let h = Arc::new(Hashing::new());
        let one = h.generate(1).await.unwrap().pop().unwrap();
        let (_, secret) = backup::parse(&one.display).unwrap();
        // One hash alone, to scale the bound to this machine.
        let started = Instant::now();
        assert!(h.verify(secret.clone(), one.hash.clone()).await);
        let single = started.elapsed();
        let done = Arc::new(AtomicUsize::new(0));
        let flood: Vec<_> = (0..8)
            .map(|_| {
                let (h, done) = (Arc::clone(&h), Arc::clone(&done));
                tokio::spawn(async move {
                    h.generate(4).await.unwrap();
                    done.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = Instant::now();
        assert!(h.verify(secret, one.hash).await);
        let during = started.elapsed();
        // 32 queued generation hashes would take 32 x `single`; a login
        // waits at most for two of them and its own.
        assert!(
            during < single * 5 + Duration::from_millis(50),
            "login check took {during:?} behind a flood (one hash: {single:?})"
        );
        assert!(
            done.load(Ordering::SeqCst) < 8,
            "the flood was already over"
        );
        for f in flood {
            f.await.unwrap();
        }
    }
}
