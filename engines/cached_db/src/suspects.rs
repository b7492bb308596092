//! [`Suspects`]: the session keys whose cache entry may be stale because removing it failed,
//! so [`CachedDbStore`](crate::CachedDbStore) serves them from the database instead.
//!
//! A cache outage (or the Redis circuit breaker failing calls fast) can leave an older entry in
//! the cache after the database moved on: a save's write-through and the removal after it both
//! fail, the server comes back with the old entry, and a hit would serve the old session. Each
//! key whose removal failed is remembered here until a removal of it succeeds.

use std::{
    collections::HashMap,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

/// How many keys are remembered one by one; past this, every cache hit is distrusted for the
/// rest of the process's life (a long outage under load: the database serves every read).
pub(crate) const MAX_SUSPECTS: usize = 100_000;

/// Keys whose cache entry must not be served, each with the mark that put it there.
#[derive(Debug, Default)]
pub(crate) struct Suspects {
    /// Key → the number of the failed removal that marked it (see [`Suspects::clear`]).
    keys: Mutex<HashMap<String, u64>>,
    /// Whether `keys` may be non-empty: the fast path of every cache hit reads only this.
    any: AtomicBool,
    /// More than [`MAX_SUSPECTS`] keys were marked: no cache hit is trusted any more.
    overflowed: AtomicBool,
    /// Numbers the marks, so a removal clears only the marks older than itself.
    next_mark: AtomicU64,
}

/// A key's mark as it was before a removal started ([`Suspects::mark_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark(Option<u64>);

/// What [`Suspects::mark`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marked {
    /// The key is remembered.
    Key,
    /// The list was full: from now on every cache hit is distrusted.
    Overflowed,
}

impl Suspects {
    /// Whether a cache hit for `key` must not be served.
    pub(crate) fn distrusts(&self, key: &str) -> bool {
        if self.overflowed.load(Ordering::Acquire) {
            return true;
        }
        self.any.load(Ordering::Acquire) && self.lock().contains_key(key)
    }

    /// Whether every cache hit is distrusted (the list overflowed).
    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    /// Remembers that removing `key`'s cache entry failed.
    pub(crate) fn mark(&self, key: &str) -> Marked {
        let mark = self.next_mark.fetch_add(1, Ordering::Relaxed);
        let mut keys = self.lock();
        if keys.len() >= MAX_SUSPECTS && !keys.contains_key(key) {
            self.overflowed.store(true, Ordering::Release);
            keys.clear();
            self.any.store(false, Ordering::Release);
            return Marked::Overflowed;
        }
        keys.insert(key.to_owned(), mark);
        self.any.store(true, Ordering::Release);
        Marked::Key
    }

    /// `key`'s mark now, taken before a removal so [`clear`](Self::clear) can tell whether
    /// another failure marked it again meanwhile.
    pub(crate) fn mark_of(&self, key: &str) -> Mark {
        if !self.any.load(Ordering::Acquire) {
            return Mark(None);
        }
        Mark(self.lock().get(key).copied())
    }

    /// Forgets `key` after a removal of its entry succeeded, unless a failure since `before`
    /// marked it again (that failure may have left an entry the removal did not see).
    pub(crate) fn clear(&self, key: &str, before: Mark) {
        let Mark(Some(mark)) = before else {
            return;
        };
        let mut keys = self.lock();
        if keys.get(key) == Some(&mark) {
            keys.remove(key);
            if keys.is_empty() {
                self.any.store(false, Ordering::Release);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        // The map stays consistent whatever panicked while holding it (single inserts and
        // removals), so a poisoned lock is still usable.
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marked_key_is_distrusted_until_cleared_and_others_are_not() {
        let suspects = Suspects::default();
        assert!(!suspects.distrusts("a"));
        assert_eq!(suspects.mark("a"), Marked::Key);
        assert!(suspects.distrusts("a"));
        assert!(!suspects.distrusts("b"));
        let before = suspects.mark_of("a");
        suspects.clear("a", before);
        assert!(!suspects.distrusts("a"));
        assert!(!suspects.any.load(Ordering::Acquire));
    }

    #[test]
    fn a_failure_during_a_removal_keeps_the_key_marked() {
        let suspects = Suspects::default();
        suspects.mark("a");
        let before = suspects.mark_of("a");
        // Another call's removal fails while ours is in flight.
        suspects.mark("a");
        suspects.clear("a", before);
        assert!(suspects.distrusts("a"));
    }

    #[test]
    fn clearing_an_unmarked_key_does_nothing() {
        let suspects = Suspects::default();
        let before = suspects.mark_of("a");
        suspects.mark("a");
        suspects.clear("a", before);
        assert!(suspects.distrusts("a"), "marked after the removal began");
    }

    #[test]
    fn past_the_limit_every_hit_is_distrusted() {
        let suspects = Suspects::default();
        for n in 0..MAX_SUSPECTS {
            assert_eq!(suspects.mark(&n.to_string()), Marked::Key);
        }
        assert!(!suspects.overflowed());
        assert_eq!(suspects.mark("one more"), Marked::Overflowed);
        assert!(suspects.overflowed());
        assert!(suspects.distrusts("never marked"));
    }
}
