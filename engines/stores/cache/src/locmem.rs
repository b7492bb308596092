//! The in-process backend: Django's `LocMemCache`, with per-entry expiry, `MAX_ENTRIES` and LRU
//! culling, shared per `LOCATION` name within the loaded library.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    sync::{Arc, LazyLock},
    time::Duration,
};

use parking_lot::Mutex;
use sessionkit_sdk::Capabilities;

use crate::{
    backend::{CacheBackend, CacheError, CompareAndSet},
    clock::Clock,
};

/// Django's default `OPTIONS["MAX_ENTRIES"]`.
pub const DEFAULT_MAX_ENTRIES: usize = 300;
/// Django's default `OPTIONS["CULL_FREQUENCY"]`.
pub const DEFAULT_CULL_FREQUENCY: usize = 3;

/// The `OPTIONS` of a LocMem cache alias: how many entries it holds and how many go when full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocMemOptions {
    /// `MAX_ENTRIES`: a write that finds this many entries (live or expired) culls first.
    pub max_entries: usize,
    /// `CULL_FREQUENCY`: a cull removes `1/CULL_FREQUENCY` of the entries, least recently used
    /// first; 0 removes all of them.
    pub cull_frequency: usize,
}

impl Default for LocMemOptions {
    /// Django's defaults: 300 entries, cull a third.
    fn default() -> Self {
        Self {
            max_entries: DEFAULT_MAX_ENTRIES,
            cull_frequency: DEFAULT_CULL_FREQUENCY,
        }
    }
}

/// Django's `LocMemCache`: an in-process, bounded, LRU-culled cache with per-entry expiry.
///
/// Backends opened with [`LocMemBackend::shared`] and the same `LOCATION` name share one set of
/// entries, as Django's `LocMemCache` does within a process; each handle keeps its own
/// [`LocMemOptions`] (Django reads `OPTIONS` per cache object too). The registry lives in this
/// library's statics, so "the process" means one loaded copy of the engine library: two engines
/// in different libraries (`cache` and a later `cached_db`) do not share a LocMem cache.
///
/// Not persistent (a restart loses every entry) and not shared between processes.
#[derive(Clone)]
pub struct LocMemBackend {
    name: Option<Arc<str>>,
    entries: Arc<Mutex<Entries>>,
    options: LocMemOptions,
    clock: Arc<dyn Clock>,
}

/// Entries of every shared LocMem cache in this library copy, by `LOCATION` name.
static REGISTRY: LazyLock<Mutex<HashMap<String, Arc<Mutex<Entries>>>>> =
    LazyLock::new(Default::default);

impl LocMemBackend {
    /// The cache for `LOCATION` name `name`, sharing its entries with every other backend opened
    /// with the same name in this library copy (Django's per-name `_caches` dict). The entries
    /// outlive the handles, as Django's module-level dicts do.
    ///
    /// TTL deadlines are read from `clock`'s monotonic reading: opens that share a name should
    /// share a clock.
    pub fn shared(name: &str, options: LocMemOptions, clock: Arc<dyn Clock>) -> Self {
        let entries = REGISTRY.lock().entry(name.to_owned()).or_default().clone();
        Self {
            name: Some(Arc::from(name)),
            entries,
            options,
            clock,
        }
    }

    /// A cache of its own, in no registry, that reads time from `clock` (for tests and for
    /// embedding a private cache).
    pub fn private(options: LocMemOptions, clock: Arc<dyn Clock>) -> Self {
        Self {
            name: None,
            entries: Arc::default(),
            options,
            clock,
        }
    }

    /// The `LOCATION` name this cache is registered under (`None` for a private cache).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The options this handle writes with.
    pub fn options(&self) -> LocMemOptions {
        self.options
    }

    /// How many entries are held, counting expired ones not yet removed (they count toward
    /// `MAX_ENTRIES`, as in Django).
    pub fn len(&self) -> usize {
        self.entries.lock().map.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry (Django's `cache.clear()`), for every handle sharing them.
    pub fn clear(&self) {
        self.entries.lock().clear();
    }

    /// The monotonic deadline of an entry written now with `ttl`.
    fn deadline(&self, ttl: Duration) -> Duration {
        self.clock
            .monotonic()
            .checked_add(ttl)
            .unwrap_or(Duration::MAX)
    }
}

impl fmt::Debug for LocMemBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocMemBackend")
            .field("name", &self.name)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl CacheBackend for LocMemBackend {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let now = self.clock.monotonic();
        let mut entries = self.entries.lock();
        let entries = &mut *entries;
        // One lookup: check, touch and copy the live entry in place.
        let tick = entries.next_tick;
        match entries.map.get_mut(key) {
            Some(entry) if entry.deadline > now => {
                entries.next_tick += 1;
                let owned = entries
                    .lru
                    .remove(&entry.tick)
                    .unwrap_or_else(|| key.to_owned());
                entry.tick = tick;
                entries.lru.insert(tick, owned);
                Ok(Some(entry.value.clone()))
            }
            Some(_) => {
                entries.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    fn contains(&self, key: &str) -> Result<bool, CacheError> {
        let now = self.clock.monotonic();
        let mut entries = self.entries.lock();
        if entries.is_live(key, now) {
            return Ok(true);
        }
        entries.remove(key);
        Ok(false)
    }

    fn add(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        let now = self.clock.monotonic();
        let deadline = self.deadline(ttl);
        let mut entries = self.entries.lock();
        if entries.is_live(key, now) {
            return Ok(false);
        }
        entries.write(key, value, ttl, deadline, self.options);
        Ok(true)
    }

    fn set_if_present(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        let now = self.clock.monotonic();
        let deadline = self.deadline(ttl);
        let mut entries = self.entries.lock();
        if !entries.is_live(key, now) {
            entries.remove(key);
            return Ok(false);
        }
        entries.write(key, value, ttl, deadline, self.options);
        Ok(true)
    }

    fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let deadline = self.deadline(ttl);
        self.entries
            .lock()
            .write(key, value, ttl, deadline, self.options);
        Ok(())
    }

    /// Compares and writes under the cache's one lock.
    fn replace_if_prefixed(
        &self,
        key: &str,
        expected_prefix: &[u8],
        value: &[u8],
        ttl: Duration,
    ) -> Result<CompareAndSet, CacheError> {
        let now = self.clock.monotonic();
        let deadline = self.deadline(ttl);
        let mut entries = self.entries.lock();
        // One lookup for both checks.
        match entries.map.get(key) {
            Some(entry) if entry.deadline > now => {
                if !entry.value.starts_with(expected_prefix) {
                    return Ok(CompareAndSet::Mismatch(entry.value.clone()));
                }
            }
            _ => {
                entries.remove(key);
                return Ok(CompareAndSet::Missing);
            }
        }
        entries.write(key, value, ttl, deadline, self.options);
        Ok(CompareAndSet::Replaced)
    }

    fn delete(&self, key: &str) -> Result<bool, CacheError> {
        Ok(self.entries.lock().remove(key))
    }

    /// `NON_BLOCKING`: every call is a short lock on in-process memory.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NON_BLOCKING
    }
}

/// The entries of one LocMem cache, in LRU order.
///
/// Django keeps an `OrderedDict` with the most recently used key first and pops from the end;
/// here each use takes a fresh, increasing tick, and `lru` maps ticks to keys, so the least
/// recently used key is `lru`'s first.
#[derive(Default)]
struct Entries {
    map: HashMap<String, Entry>,
    lru: BTreeMap<u64, String>,
    next_tick: u64,
}

struct Entry {
    value: Vec<u8>,
    /// Monotonic reading at which the entry expires.
    deadline: Duration,
    /// The entry's position in `lru`.
    tick: u64,
}

impl Entries {
    /// Whether `key` holds an entry that has not reached its deadline at `now`.
    fn is_live(&self, key: &str, now: Duration) -> bool {
        self.map.get(key).is_some_and(|entry| entry.deadline > now)
    }

    /// Removes `key`; returns whether it was held.
    fn remove(&mut self, key: &str) -> bool {
        match self.map.remove(key) {
            Some(entry) => {
                self.lru.remove(&entry.tick);
                true
            }
            None => false,
        }
    }

    /// Django's `_set`: cull if full, then store `value` as the most recently used entry. A
    /// zero TTL stores nothing and removes any old entry (the value would be expired at once).
    fn write(
        &mut self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        deadline: Duration,
        options: LocMemOptions,
    ) {
        if ttl.is_zero() {
            self.remove(key);
            return;
        }
        // Replacing a held key below the cull threshold: overwrite its entry in place (no new
        // key or value buffers) and make it the most recently used. At the threshold Django's
        // `_set` culls first even for a held key, and so does the path below.
        let tick = self.next_tick;
        let below_threshold = self.map.len() < options.max_entries;
        if let Some(entry) = self.map.get_mut(key).filter(|_| below_threshold) {
            self.next_tick += 1;
            let owned = self
                .lru
                .remove(&entry.tick)
                .unwrap_or_else(|| key.to_owned());
            entry.tick = tick;
            self.lru.insert(tick, owned);
            entry.value.clear();
            entry.value.extend_from_slice(value);
            entry.deadline = deadline;
            return;
        }
        if self.map.len() >= options.max_entries {
            self.cull(options.cull_frequency);
        }
        self.remove(key);
        let tick = self.take_tick();
        self.lru.insert(tick, key.to_owned());
        self.map.insert(
            key.to_owned(),
            Entry {
                value: value.to_vec(),
                deadline,
                tick,
            },
        );
    }

    /// Django's `_cull`: drop `len / cull_frequency` least recently used entries, or all of
    /// them when `cull_frequency` is 0.
    fn cull(&mut self, cull_frequency: usize) {
        if cull_frequency == 0 {
            self.clear();
            return;
        }
        let count = self.map.len() / cull_frequency;
        for _ in 0..count {
            match self.lru.pop_first() {
                Some((_, key)) => {
                    self.map.remove(&key);
                }
                None => break,
            }
        }
    }

    fn clear(&mut self) {
        self.map.clear();
        self.lru.clear();
    }

    fn take_tick(&mut self) -> u64 {
        let tick = self.next_tick;
        self.next_tick += 1;
        tick
    }
}

#[cfg(test)]
mod tests {
    use sessionkit_sdk::Timestamp;

    use super::*;
    use chrono::TimeDelta;
    use sessionkit_codec::time::to_datetime;

    use crate::clock::{ManualClock, SystemClock};

    const HOUR: Duration = Duration::from_secs(3600);

    fn private(max_entries: usize, cull_frequency: usize) -> (LocMemBackend, ManualClock) {
        let clock = ManualClock::at(Timestamp::from_secs(1_750_000_000));
        let backend = LocMemBackend::private(
            LocMemOptions {
                max_entries,
                cull_frequency,
            },
            Arc::new(clock.clone()),
        );
        (backend, clock)
    }

    fn fill(backend: &LocMemBackend, keys: impl IntoIterator<Item = usize>) {
        for i in keys {
            backend.set(&format!("k{i}"), b"v", HOUR).unwrap();
        }
    }

    fn held(backend: &LocMemBackend, count: usize) -> Vec<usize> {
        (0..count)
            .filter(|i| backend.contains(&format!("k{i}")).unwrap())
            .collect()
    }

    #[test]
    fn defaults_are_djangos() {
        assert_eq!(
            LocMemOptions::default(),
            LocMemOptions {
                max_entries: 300,
                cull_frequency: 3
            }
        );
    }

    #[test]
    fn set_then_get_returns_the_value() {
        let (cache, _) = private(300, 3);
        cache.set("a", b"one", HOUR).unwrap();
        assert_eq!(cache.get("a").unwrap().as_deref(), Some(&b"one"[..]));
        assert!(cache.contains("a").unwrap());
    }

    #[test]
    fn get_of_absent_key_is_none() {
        let (cache, _) = private(300, 3);
        assert_eq!(cache.get("nope").unwrap(), None);
        assert!(!cache.contains("nope").unwrap());
    }

    #[test]
    fn entry_expires_when_its_ttl_passes() {
        let (cache, clock) = private(300, 3);
        cache.set("a", b"one", Duration::from_secs(10)).unwrap();
        clock.advance(TimeDelta::seconds(9));
        assert!(cache.contains("a").unwrap());
        clock.advance(TimeDelta::seconds(1));
        assert!(!cache.contains("a").unwrap());
        assert_eq!(cache.get("a").unwrap(), None);
    }

    #[test]
    fn expired_entry_is_removed_when_read() {
        let (cache, clock) = private(300, 3);
        cache.set("a", b"one", Duration::from_secs(1)).unwrap();
        clock.advance(TimeDelta::seconds(2));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get("a").unwrap(), None);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn expiry_follows_the_monotonic_clock_not_the_wall_clock() {
        let (cache, clock) = private(300, 3);
        cache.set("a", b"one", Duration::from_secs(10)).unwrap();
        clock.set(to_datetime(Timestamp::from_secs(2_000_000_000)));
        assert!(cache.contains("a").unwrap());
    }

    #[test]
    fn zero_ttl_stores_nothing_and_removes_an_old_entry() {
        let (cache, _) = private(300, 3);
        cache.set("a", b"one", HOUR).unwrap();
        cache.set("a", b"two", Duration::ZERO).unwrap();
        assert_eq!(cache.get("a").unwrap(), None);
        assert!(cache.add("b", b"x", Duration::ZERO).unwrap());
        assert!(!cache.contains("b").unwrap());
    }

    #[test]
    fn add_refuses_a_live_key_and_keeps_its_value() {
        let (cache, _) = private(300, 3);
        assert!(cache.add("a", b"first", HOUR).unwrap());
        assert!(!cache.add("a", b"second", HOUR).unwrap());
        assert_eq!(cache.get("a").unwrap().as_deref(), Some(&b"first"[..]));
    }

    #[test]
    fn add_takes_an_expired_key() {
        let (cache, clock) = private(300, 3);
        cache.set("a", b"old", Duration::from_secs(1)).unwrap();
        clock.advance(TimeDelta::seconds(1));
        assert!(cache.add("a", b"new", HOUR).unwrap());
        assert_eq!(cache.get("a").unwrap().as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn set_if_present_replaces_a_live_value() {
        let (cache, _) = private(300, 3);
        cache.set("a", b"old", HOUR).unwrap();
        assert!(cache.set_if_present("a", b"new", HOUR).unwrap());
        assert_eq!(cache.get("a").unwrap().as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn set_if_present_never_resurrects_a_deleted_or_expired_key() {
        let (cache, clock) = private(300, 3);
        assert!(!cache.set_if_present("gone", b"v", HOUR).unwrap());
        assert!(!cache.contains("gone").unwrap());
        cache.set("old", b"v", Duration::from_secs(1)).unwrap();
        clock.advance(TimeDelta::seconds(5));
        assert!(!cache.set_if_present("old", b"v2", HOUR).unwrap());
        assert_eq!(cache.get("old").unwrap(), None);
    }

    #[test]
    fn set_if_present_with_zero_ttl_removes_the_entry() {
        let (cache, _) = private(300, 3);
        cache.set("a", b"old", HOUR).unwrap();
        assert!(cache.set_if_present("a", b"new", Duration::ZERO).unwrap());
        assert!(!cache.contains("a").unwrap());
    }

    #[test]
    fn replace_if_prefixed_replaces_a_live_value_with_the_prefix() {
        let (cache, _) = private(300, 3);
        cache.set("a", b"prefix:old", HOUR).unwrap();
        assert_eq!(
            cache
                .replace_if_prefixed("a", b"prefix:", b"new", HOUR)
                .unwrap(),
            CompareAndSet::Replaced
        );
        assert_eq!(cache.get("a").unwrap().as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn replace_if_prefixed_leaves_another_value_and_returns_it() {
        let (cache, _) = private(300, 3);
        cache.set("a", b"other:value", HOUR).unwrap();
        assert_eq!(
            cache
                .replace_if_prefixed("a", b"prefix:", b"new", HOUR)
                .unwrap(),
            CompareAndSet::Mismatch(b"other:value".to_vec())
        );
        assert_eq!(
            cache.get("a").unwrap().as_deref(),
            Some(&b"other:value"[..])
        );
    }

    #[test]
    fn replace_if_prefixed_never_resurrects_a_deleted_or_expired_key() {
        let (cache, clock) = private(300, 3);
        assert_eq!(
            cache.replace_if_prefixed("gone", b"", b"v", HOUR).unwrap(),
            CompareAndSet::Missing
        );
        cache.set("old", b"v", Duration::from_secs(1)).unwrap();
        clock.advance(TimeDelta::seconds(1));
        assert_eq!(
            cache.replace_if_prefixed("old", b"v", b"v2", HOUR).unwrap(),
            CompareAndSet::Missing
        );
        assert!(!cache.contains("gone").unwrap());
        assert!(!cache.contains("old").unwrap());
    }

    #[test]
    fn replace_if_prefixed_with_zero_ttl_removes_the_entry() {
        let (cache, _) = private(300, 3);
        cache.set("a", b"old", HOUR).unwrap();
        assert_eq!(
            cache
                .replace_if_prefixed("a", b"old", b"new", Duration::ZERO)
                .unwrap(),
            CompareAndSet::Replaced
        );
        assert!(!cache.contains("a").unwrap());
    }

    #[test]
    fn concurrent_replace_if_prefixed_expecting_one_value_replaces_it_once() {
        const WRITERS: usize = 16;
        let (cache, _) = private(300, 3);
        cache.set("a", b"v0", HOUR).unwrap();
        let start = std::sync::Barrier::new(WRITERS);
        let outcomes: Vec<CompareAndSet> = std::thread::scope(|scope| {
            let writers: Vec<_> = (0..WRITERS)
                .map(|writer| {
                    let (cache, start) = (&cache, &start);
                    scope.spawn(move || {
                        start.wait();
                        let value = format!("writer {writer}");
                        cache
                            .replace_if_prefixed("a", b"v0", value.as_bytes(), HOUR)
                            .unwrap()
                    })
                })
                .collect();
            writers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let winners = outcomes
            .iter()
            .filter(|o| **o == CompareAndSet::Replaced)
            .count();
        assert_eq!(winners, 1, "{outcomes:?}");
        let stored = cache.get("a").unwrap().unwrap();
        assert!(stored.starts_with(b"writer "), "{stored:?}");
        for outcome in outcomes {
            if let CompareAndSet::Mismatch(seen) = outcome {
                assert_eq!(seen, stored, "a loser sees the winner's value");
            }
        }
    }

    #[test]
    fn delete_reports_whether_the_key_was_held() {
        let (cache, _) = private(300, 3);
        cache.set("a", b"v", HOUR).unwrap();
        assert!(cache.delete("a").unwrap());
        assert!(!cache.delete("a").unwrap());
        assert_eq!(cache.get("a").unwrap(), None);
    }

    #[test]
    fn full_cache_culls_a_third_least_recently_used_first() {
        // Django: the 10th write into a cache of 9 finds it full and drops 9 // 3 = 3 entries.
        let (cache, _) = private(9, 3);
        fill(&cache, 0..9);
        cache.set("k9", b"v", HOUR).unwrap();
        assert_eq!(held(&cache, 10), vec![3, 4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn get_moves_an_entry_to_the_front_of_the_lru_order() {
        let (cache, _) = private(9, 3);
        fill(&cache, 0..9);
        cache.get("k0").unwrap();
        cache.get("k1").unwrap();
        cache.set("k9", b"v", HOUR).unwrap();
        assert_eq!(held(&cache, 10), vec![0, 1, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn contains_does_not_count_as_a_use() {
        let (cache, _) = private(9, 3);
        fill(&cache, 0..9);
        assert!(cache.contains("k0").unwrap());
        cache.set("k9", b"v", HOUR).unwrap();
        assert!(!cache.contains("k0").unwrap());
    }

    #[test]
    fn overwrite_moves_an_entry_to_the_front() {
        let (cache, _) = private(9, 3);
        fill(&cache, 0..9);
        cache.set("k0", b"again", HOUR).unwrap(); // full: culls k0..k2 first, then writes k0
        assert_eq!(held(&cache, 9), vec![0, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn cull_frequency_zero_clears_the_whole_cache() {
        let (cache, _) = private(5, 0);
        fill(&cache, 0..5);
        cache.set("k5", b"v", HOUR).unwrap();
        assert_eq!(held(&cache, 6), vec![5]);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn expired_entries_count_toward_max_entries() {
        let (cache, clock) = private(3, 3);
        fill(&cache, 0..3);
        clock.advance(TimeDelta::from_std(HOUR * 2).expect("two hours fit a TimeDelta"));
        cache.set("k3", b"v", HOUR).unwrap();
        // 3 // 3 = 1 culled (k0); the expired k1 and k2 stay until read.
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn cache_never_holds_more_than_max_entries() {
        let (cache, _) = private(10, 3);
        fill(&cache, 0..1000);
        assert!(cache.len() <= 10, "len {}", cache.len());
    }

    #[test]
    fn shared_caches_with_one_name_see_the_same_entries() {
        let first = LocMemBackend::shared(
            "locmem-test-shared",
            LocMemOptions::default(),
            Arc::new(SystemClock),
        );
        let second = LocMemBackend::shared(
            "locmem-test-shared",
            LocMemOptions::default(),
            Arc::new(SystemClock),
        );
        first.set("a", b"v", HOUR).unwrap();
        assert_eq!(second.get("a").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(second.name(), Some("locmem-test-shared"));
    }

    #[test]
    fn shared_caches_with_different_names_are_separate() {
        let first = LocMemBackend::shared(
            "locmem-test-left",
            LocMemOptions::default(),
            Arc::new(SystemClock),
        );
        let second = LocMemBackend::shared(
            "locmem-test-right",
            LocMemOptions::default(),
            Arc::new(SystemClock),
        );
        first.set("a", b"v", HOUR).unwrap();
        assert_eq!(second.get("a").unwrap(), None);
    }

    #[test]
    fn shared_entries_outlive_their_handles() {
        LocMemBackend::shared(
            "locmem-test-outlive",
            LocMemOptions::default(),
            Arc::new(SystemClock),
        )
        .set("a", b"v", HOUR)
        .unwrap();
        let later = LocMemBackend::shared(
            "locmem-test-outlive",
            LocMemOptions::default(),
            Arc::new(SystemClock),
        );
        assert!(later.contains("a").unwrap());
    }

    #[test]
    fn locmem_is_non_blocking_and_not_shared() {
        let (cache, _) = private(300, 3);
        assert_eq!(cache.capabilities(), Capabilities::NON_BLOCKING);
    }

    #[test]
    fn clear_empties_the_cache() {
        let (cache, _) = private(300, 3);
        fill(&cache, 0..5);
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn concurrent_writers_keep_the_cache_consistent() {
        let (cache, _) = private(50, 3);
        std::thread::scope(|scope| {
            for t in 0..4 {
                let cache = &cache;
                scope.spawn(move || {
                    for i in 0..500 {
                        let key = format!("t{t}-{i}");
                        cache.set(&key, b"v", HOUR).unwrap();
                        cache.get(&key).unwrap();
                    }
                });
            }
        });
        let entries = cache.entries.lock();
        assert!(entries.map.len() <= 50);
        assert_eq!(entries.map.len(), entries.lru.len());
        assert!(
            entries
                .map
                .values()
                .all(|e| entries.lru.contains_key(&e.tick))
        );
    }
}
