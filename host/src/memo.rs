//! The decode memo: recently seen `session_data` strings and the sessions they decode to, so a
//! session that is read on every request is verified, inflated and parsed once, not each time.
//!
//! Only engines with [`KeyFormat::DjangoSessionKey`](sessionkit_sdk::KeyFormat) use it: their
//! `session_data` is decoded without `max_age`, so what a string decodes to depends only on the
//! string and the engine's codec (salt, `SECRET_KEY`, fallbacks), which are fixed for the
//! engine's lifetime. A hit therefore returns exactly what decoding would. Signed-cookie
//! payloads are judged against `max_age` at the current time and are never memoised.
//!
//! The memo is a set-associative cache: a fast seeded hash of the string picks a set of
//! [`WAYS`] entries, each set behind its own lock and kept in least-recently-used order. A hit
//! needs the full string to be equal, never only the hash. Its size is bounded by its capacity
//! (default [`DEFAULT_CAPACITY`] entries; each holds the string, the decoded map and, for
//! sessions this engine wrote, their JSON: about 1.5 KiB for a 200-byte session).
//!
//! Entries written by this engine also carry the [`Encoded`] form they came from, which lets a
//! save of an unchanged session re-sign the compressed payload instead of compressing again
//! ([`SessionCodec::encode_reusing`](sessionkit_codec::SessionCodec::encode_reusing)).

use std::{hash::BuildHasher, sync::Arc};

use parking_lot::Mutex;
use sessionkit_codec::{SessionMap, signing::Encoded};

/// How many decoded sessions an engine keeps by default.
pub(crate) const DEFAULT_CAPACITY: usize = 4096;

/// Entries per set.
const WAYS: usize = 4;

/// A decoded session as the memo and a [`Session`](crate::Session) share it.
#[derive(Clone, Debug)]
pub(crate) struct Decoded {
    /// The session's data, shared until someone changes it (copy on write).
    pub(crate) map: Arc<SessionMap>,
    /// How this engine encoded exactly `map`, when it did (`None` for data decoded from the
    /// store, which another program may have written with another zlib). Invariant:
    /// `encoded.session_json` is `map`'s JSON; `map` is never mutated while shared here.
    pub(crate) encoded: Option<Arc<Encoded>>,
}

impl Decoded {
    /// A session decoded from data this engine did not (knowingly) write.
    pub(crate) fn from_decode(map: SessionMap) -> Self {
        Self {
            map: Arc::new(map),
            encoded: None,
        }
    }
}

/// A bounded map from exact `session_data` strings to what they decode to.
pub(crate) struct DecodeMemo {
    sets: Box<[Mutex<Vec<Entry>>]>,
    hasher: foldhash::fast::RandomState,
}

struct Entry {
    hash: u64,
    data: Box<str>,
    decoded: Decoded,
}

impl DecodeMemo {
    /// A memo holding at most `capacity` entries (rounded up to a power of two, at least
    /// [`WAYS`]).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let sets = (capacity.div_ceil(WAYS)).max(1).next_power_of_two();
        Self {
            sets: (0..sets).map(|_| Mutex::new(Vec::new())).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// What `data` decodes to, if remembered.
    pub(crate) fn get(&self, data: &str) -> Option<Decoded> {
        self.get_hashed(self.hasher.hash_one(data), data)
    }

    /// Remembers that `data` decodes to `decoded`, evicting the least recently used entry of
    /// its set when the set is full.
    pub(crate) fn insert(&self, data: &str, decoded: Decoded) {
        self.insert_hashed(self.hasher.hash_one(data), data, decoded);
    }

    fn get_hashed(&self, hash: u64, data: &str) -> Option<Decoded> {
        let mut set = self.set(hash).lock();
        let at = set
            .iter()
            .position(|entry| entry.hash == hash && *entry.data == *data)?;
        // Most recently used first.
        set[..=at].rotate_right(1);
        Some(set[0].decoded.clone())
    }

    fn insert_hashed(&self, hash: u64, data: &str, decoded: Decoded) {
        let mut set = self.set(hash).lock();
        if let Some(at) = set
            .iter()
            .position(|entry| entry.hash == hash && *entry.data == *data)
        {
            set[at].decoded = decoded;
            set[..=at].rotate_right(1);
            return;
        }
        if set.len() == WAYS {
            set.pop();
        }
        set.insert(
            0,
            Entry {
                hash,
                data: data.into(),
                decoded,
            },
        );
    }

    /// The most entries it holds at once.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.sets.len() * WAYS
    }

    /// How many entries it holds now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sets.iter().map(|set| set.lock().len()).sum()
    }

    fn set(&self, hash: u64) -> &Mutex<Vec<Entry>> {
        // The set count is a power of two; the low bits of a good hash pick the set.
        let index = (hash as usize) & (self.sets.len() - 1);
        &self.sets[index]
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn decoded(n: i64) -> Decoded {
        let mut map = SessionMap::new();
        map.insert("n".into(), json!(n));
        Decoded::from_decode(map)
    }

    fn n_of(decoded: &Decoded) -> i64 {
        decoded.map["n"].as_i64().unwrap()
    }

    #[test]
    fn remembers_what_was_inserted_under_the_exact_string() {
        let memo = DecodeMemo::with_capacity(64);
        memo.insert("abc:1:sig", decoded(1));
        memo.insert("abc:1:sih", decoded(2));
        assert_eq!(n_of(&memo.get("abc:1:sig").unwrap()), 1);
        assert_eq!(n_of(&memo.get("abc:1:sih").unwrap()), 2);
        for other in ["abc:1:si", "abc:1:sig ", "ABC:1:sig", ""] {
            assert!(memo.get(other).is_none(), "{other:?}");
        }
    }

    #[test]
    fn a_hit_shares_the_remembered_map() {
        let memo = DecodeMemo::with_capacity(64);
        let value = decoded(7);
        memo.insert("data", value.clone());
        assert!(Arc::ptr_eq(&memo.get("data").unwrap().map, &value.map));
    }

    #[test]
    fn inserting_the_same_string_again_replaces_its_entry() {
        let memo = DecodeMemo::with_capacity(64);
        memo.insert("data", decoded(1));
        memo.insert("data", decoded(2));
        assert_eq!(n_of(&memo.get("data").unwrap()), 2);
        assert_eq!(memo.len(), 1);
    }

    #[test]
    fn equal_hashes_never_serve_another_strings_entry() {
        // Every string under one hash (a real collision of the 64-bit hash looks like this):
        // only full string equality tells them apart.
        let memo = DecodeMemo::with_capacity(64);
        memo.insert_hashed(42, "one", decoded(1));
        memo.insert_hashed(42, "two", decoded(2));
        assert_eq!(n_of(&memo.get_hashed(42, "one").unwrap()), 1);
        assert_eq!(n_of(&memo.get_hashed(42, "two").unwrap()), 2);
        assert!(memo.get_hashed(42, "three").is_none());
        assert!(memo.get_hashed(42, "on").is_none());
        assert_eq!(
            memo.len(),
            2,
            "a collision is a second entry, not a replacement"
        );
    }

    #[test]
    fn stays_within_its_capacity_and_keeps_recent_entries() {
        let memo = DecodeMemo::with_capacity(64);
        assert_eq!(memo.capacity(), 64);
        for n in 0..10_000 {
            memo.insert(&format!("session-data-{n}"), decoded(n));
            assert!(memo.len() <= 64);
        }
        assert!(memo.len() > 32, "a full memo holds most of its capacity");
        // The last insert of each set is always still there.
        assert_eq!(n_of(&memo.get("session-data-9999").unwrap()), 9999);
        assert!(memo.get("session-data-0").is_none(), "long evicted");
    }

    #[test]
    fn least_recently_used_entry_of_a_set_goes_first() {
        let memo = DecodeMemo::with_capacity(WAYS); // one set
        for n in 0..WAYS as i64 {
            memo.insert(&format!("d{n}"), decoded(n));
        }
        assert!(memo.get("d0").is_some()); // d1 is now the least recently used
        memo.insert("new", decoded(99));
        assert!(memo.get("d1").is_none());
        for kept in ["d0", "d2", "d3", "new"] {
            assert!(memo.get(kept).is_some(), "{kept}");
        }
    }

    #[test]
    fn tiny_capacities_still_hold_one_set() {
        let memo = DecodeMemo::with_capacity(0);
        assert_eq!(memo.capacity(), WAYS);
        memo.insert("x", decoded(1));
        assert!(memo.get("x").is_some());
    }
}
