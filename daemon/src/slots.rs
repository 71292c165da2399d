//! Connection slots of one socket. Root's logins (PAM inside sshd, sudo,
//! login) must always find room, so on the public socket each non-root uid
//! holds at most `per_user` connections and all of them together leave
//! `root_reserve` slots to uid 0. The root socket has only its total cap:
//! nobody but root can connect to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Why a connection got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot is taken (for a non-root peer: every slot it may use).
    Full,
    /// This uid already holds its `per_user` connections.
    PerUser,
}

#[derive(Debug)]
pub struct Slots {
    max: usize,
    /// `None` on the root socket.
    per_user: Option<usize>,
    root_reserve: usize,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    by_uid: HashMap<u32, usize>,
}

/// Slots kept for uid 0 on the public socket: an eighth of the cap, at
/// most 16, and never all of it.
pub fn root_reserve(max: usize) -> usize {
    max.div_ceil(8).min(16).min(max.saturating_sub(1))
}

impl Slots {
    /// The public socket: a per-uid cap and root's reserve.
    pub fn public(max: usize, per_user: usize) -> Arc<Slots> {
        Slots::new(max, Some(per_user), root_reserve(max))
    }

    /// The root socket: its total cap only.
    pub fn root_only(max: usize) -> Arc<Slots> {
        Slots::new(max, None, 0)
    }

    fn new(max: usize, per_user: Option<usize>, root_reserve: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max,
            per_user,
            root_reserve,
            held: Mutex::default(),
        })
    }

    /// A slot for a connection from `uid`, given back when the [`Slot`]
    /// is dropped.
    pub fn take(self: &Arc<Self>, uid: u32) -> Result<Slot, Refusal> {
        let mut held = self.lock();
        let room = if uid == 0 {
            self.max
        } else {
            self.max - self.root_reserve
        };
        if held.total >= room {
            return Err(Refusal::Full);
        }
        let mine = held.by_uid.get(&uid).copied().unwrap_or(0);
        if uid != 0 && self.per_user.is_some_and(|cap| mine >= cap) {
            return Err(Refusal::PerUser);
        }
        held.total += 1;
        held.by_uid.insert(uid, mine + 1);
        Ok(Slot {
            slots: Arc::clone(self),
            uid,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        // The counts stay consistent even if a holder panicked: every
        // change is one statement under the lock.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One connection's slot.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    uid: u32,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.lock();
        held.total = held.total.saturating_sub(1);
        if let Some(n) = held.by_uid.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                // Only uids holding connections stay in the map.
                held.by_uid.remove(&self.uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 9, finding 3: one uid holding every connection locked root's
    /// logins out.
    #[test]
    fn a_non_root_uid_gets_its_cap_and_root_keeps_its_reserve() {
        let slots = Slots::public(16, 4);
        let mine: Vec<Slot> = (0..4).map(|_| slots.take(1000).unwrap()).collect();
        assert_eq!(slots.take(1000).unwrap_err(), Refusal::PerUser);
        // Others fill what is left to non-root peers: 16 - 2 reserved.
        let others: Vec<Slot> = (0..10).map(|i| slots.take(2000 + i / 4).unwrap()).collect();
        assert_eq!(slots.take(3000).unwrap_err(), Refusal::Full);
        let root: Vec<Slot> = (0..2).map(|_| slots.take(0).unwrap()).collect();
        assert_eq!(slots.take(0).unwrap_err(), Refusal::Full);
        assert_eq!(slots.lock().total, 16);
        assert_eq!(slots.lock().by_uid[&1000], 4);
        drop((mine, others, root));
        assert_eq!(slots.lock().total, 0);
        assert!(slots.lock().by_uid.is_empty());
    }

    #[test]
    fn root_is_not_capped_per_uid() {
        let slots = Slots::public(8, 1);
        let held: Vec<Slot> = (0..8).map(|_| slots.take(0).unwrap()).collect();
        assert_eq!(held.len(), 8);
        let root_socket = Slots::root_only(3);
        let held: Vec<Slot> = (0..3).map(|_| root_socket.take(0).unwrap()).collect();
        assert_eq!(root_socket.take(0).unwrap_err(), Refusal::Full);
        drop(held);
        assert!(root_socket.take(0).is_ok());
    }

    #[test]
    fn the_reserve_is_an_eighth_at_most_sixteen_never_all() {
        assert_eq!(root_reserve(1), 0);
        assert_eq!(root_reserve(2), 1);
        assert_eq!(root_reserve(16), 2);
        assert_eq!(root_reserve(256), 16);
        assert_eq!(root_reserve(65536), 16);
    }
}
