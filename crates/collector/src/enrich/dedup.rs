//! Recently seen event ids, in fixed memory.
//!
//! A slot table as in Divolte: each id hashes to one slot holding a 64-bit signature. Seeing the
//! same id again while its slot still holds its signature flags a duplicate; a later id that
//! lands in the same slot evicts it. Memory is 8 bytes per slot, whatever the traffic, and there
//! are no false positives short of a 64-bit signature collision.

use std::hash::{BuildHasher, Hasher};

/// The slot table.
#[derive(Debug)]
pub(crate) struct Dedup {
    slots: Vec<u64>,
    hasher: std::collections::hash_map::RandomState,
}

impl Dedup {
    /// A table of `slots` slots.
    pub(crate) fn new(slots: usize) -> Self {
        Self { slots: vec![0; slots.max(1)], hasher: std::collections::hash_map::RandomState::new() }
    }

    /// Records `(site, event_id)` and returns whether it was seen recently.
    pub(crate) fn seen(&mut self, site: &str, event_id: &str) -> bool {
        let mut h = self.hasher.build_hasher();
        h.write(site.as_bytes());
        h.write_u8(0xff);
        h.write(event_id.as_bytes());
        let hash = h.finish();
        // Slot from the low bits, signature from all of them; 0 marks an empty slot.
        let slot = (hash % self.slots.len() as u64) as usize;
        let signature = hash | 1;
        let duplicate = self.slots[slot] == signature;
        self.slots[slot] = signature;
        duplicate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_repeats_and_forgets_in_bounded_memory() {
        let mut d = Dedup::new(1000);
        assert!(!d.seen("s", "a"));
        assert!(d.seen("s", "a"));
        assert!(!d.seen("other", "a"), "ids are per site");
        for i in 0..100_000 {
            d.seen("s", &i.to_string());
        }
        assert_eq!(d.slots.len(), 1000);
        assert!(!d.seen("s", "a"), "old ids are eventually forgotten");
    }
}
