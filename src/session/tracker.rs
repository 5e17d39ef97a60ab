//! Session expiry in tick-sized buckets (ZooKeeper's `ExpiryQueue`): a pure
//! structure driven by the times its caller passes in.
//!
//! A session touched at `now` with timeout `t` expires at the first tick
//! boundary after `now + t`; all sessions of a bucket expire together, so
//! expiry costs one map operation per tick, not a timer per session.

use std::collections::{BTreeMap, HashMap, HashSet};

pub struct SessionTracker {
    tick_ms: u64,
    buckets: BTreeMap<u64, HashSet<i64>>,
    expiry_of: HashMap<i64, u64>,
}

impl SessionTracker {
    pub fn new(tick_ms: u64) -> Self {
        SessionTracker { tick_ms: tick_ms.max(1), buckets: BTreeMap::new(), expiry_of: HashMap::new() }
    }

    fn round_up(&self, t: u64) -> u64 {
        (t / self.tick_ms + 1) * self.tick_ms
    }

    /// Records activity of `session_id`; it now expires `timeout_ms` after `now_ms`.
    pub fn touch(&mut self, session_id: i64, timeout_ms: u64, now_ms: u64) {
        let at = self.round_up(now_ms + timeout_ms);
        if let Some(old) = self.expiry_of.insert(session_id, at) {
            if old == at {
                return;
            }
            if let Some(b) = self.buckets.get_mut(&old) {
                b.remove(&session_id);
                if b.is_empty() {
                    self.buckets.remove(&old);
                }
            }
        }
        self.buckets.entry(at).or_default().insert(session_id);
    }

    pub fn remove(&mut self, session_id: i64) {
        if let Some(at) = self.expiry_of.remove(&session_id) {
            if let Some(b) = self.buckets.get_mut(&at) {
                b.remove(&session_id);
                if b.is_empty() {
                    self.buckets.remove(&at);
                }
            }
        }
    }

    /// The buckets, earliest first: (expiry time, sessions in it).
    pub fn buckets(&self) -> impl Iterator<Item = (u64, &HashSet<i64>)> {
        self.buckets.iter().map(|(at, ids)| (*at, ids))
    }

    pub fn contains(&self, session_id: i64) -> bool {
        self.expiry_of.contains_key(&session_id)
    }

    pub fn len(&self) -> usize {
        self.expiry_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.expiry_of.is_empty()
    }

    /// Removes and returns every session whose bucket is due at `now_ms`,
    /// sorted so that callers propose their closes in a stable order.
    pub fn expired(&mut self, now_ms: u64) -> Vec<i64> {
        let mut out = Vec::new();
        while let Some((&at, _)) = self.buckets.first_key_value() {
            if at > now_ms {
                break;
            }
            let ids = self.buckets.remove(&at).unwrap_or_default();
            for id in ids {
                self.expiry_of.remove(&id);
                out.push(id);
            }
        }
        out.sort_unstable();
        out
    }
}

/// ZooKeeper's session password: 16 bytes from `java.util.Random` seeded
/// with `sessionId ^ 0xB3415C00`. A pure function of the id, so any server
/// (and a ZooKeeper ensemble migrated to us) validates the same password.
pub fn session_password(session_id: i64) -> Vec<u8> {
    const MULT: i64 = 0x5DEE_CE66D;
    const MASK: i64 = (1 << 48) - 1;
    let mut seed = ((session_id ^ 0xB341_5C00) ^ MULT) & MASK;
    let mut next_int = || {
        seed = (seed.wrapping_mul(MULT).wrapping_add(0xB)) & MASK;
        (seed >> 16) as i32
    };
    let mut out = Vec::with_capacity(16);
    while out.len() < 16 {
        let mut rnd = next_int();
        for _ in 0..4.min(16 - out.len()) {
            out.push(rnd as u8);
            rnd >>= 8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_at_the_next_tick_after_timeout() {
        let mut t = SessionTracker::new(100);
        t.touch(1, 1000, 50); // due at 1100
        t.touch(2, 1000, 120); // due at 1200
        assert!(t.expired(1099).is_empty());
        assert_eq!(t.expired(1100), vec![1]);
        t.touch(2, 1000, 1150); // pushed to 2200
        assert!(t.expired(1300).is_empty());
        assert_eq!(t.expired(2200), vec![2]);
        assert!(t.is_empty());
    }

    #[test]
    fn password_is_java_random() {
        // new java.util.Random(0x1234L ^ 0xB3415C00L).nextBytes(new byte[16]), printed by jshell.
        let java: [i8; 16] = [60, 24, -85, -32, 91, 14, 97, -126, 116, 29, 98, 93, 18, 124, 21, -80];
        let expected: Vec<u8> = java.iter().map(|b| *b as u8).collect();
        assert_eq!(session_password(0x1234), expected);
        assert_eq!(session_password(0x1234), session_password(0x1234));
        assert_ne!(session_password(1), session_password(2));
    }
}
