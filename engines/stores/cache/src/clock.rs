//! Where the cache store and the in-process backend read the time, so tests can move it.

use std::{
    fmt,
    sync::{
        Arc, LazyLock,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use sessionkit_sdk::Timestamp;

/// A source of time for the cache store (wall clock) and the in-process backend (monotonic).
///
/// Production code uses [`SystemClock`]; tests use [`ManualClock`] to expire entries without
/// sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The wall-clock time, which a record's `expire_date` is judged against.
    fn now(&self) -> Timestamp;

    /// A reading that never goes backwards, from an arbitrary fixed origin: the in-process
    /// backend's TTL deadlines use it, so a wall-clock jump does not move them.
    fn monotonic(&self) -> Duration;
}

/// The process's own clocks: [`Timestamp::now`] and [`Instant`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// The origin of [`SystemClock::monotonic`] readings.
static ORIGIN: LazyLock<Instant> = LazyLock::new(Instant::now);

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn monotonic(&self) -> Duration {
        ORIGIN.elapsed()
    }
}

/// A clock that moves only when told to, for tests of expiry.
///
/// Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<ManualTime>,
}

#[derive(Debug)]
struct ManualTime {
    wall_micros: AtomicI64,
    monotonic_micros: AtomicU64,
}

impl ManualClock {
    /// A clock whose wall time is `start` and whose monotonic reading is zero.
    pub fn new(start: Timestamp) -> Self {
        Self {
            inner: Arc::new(ManualTime {
                wall_micros: AtomicI64::new(start.micros),
                monotonic_micros: AtomicU64::new(0),
            }),
        }
    }

    /// Moves both the wall clock and the monotonic clock forward by `by` (time passing).
    pub fn advance(&self, by: Duration) {
        let micros = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.inner
            .monotonic_micros
            .fetch_add(micros, Ordering::SeqCst);
        let signed = i64::try_from(micros).unwrap_or(i64::MAX);
        self.inner.wall_micros.fetch_add(signed, Ordering::SeqCst);
    }

    /// Sets the wall clock alone (a clock jump); the monotonic clock does not move.
    pub fn set_wall(&self, at: Timestamp) {
        self.inner.wall_micros.store(at.micros, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.inner.wall_micros.load(Ordering::SeqCst))
    }

    fn monotonic(&self) -> Duration {
        Duration::from_micros(self.inner.monotonic_micros.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_advance_moves_both_clocks() {
        let clock = ManualClock::new(Timestamp::from_secs(100));
        clock.advance(Duration::from_secs(5));
        assert_eq!(clock.now(), Timestamp::from_secs(105));
        assert_eq!(clock.monotonic(), Duration::from_secs(5));
    }

    #[test]
    fn manual_clock_wall_jump_leaves_monotonic_alone() {
        let clock = ManualClock::new(Timestamp::from_secs(100));
        clock.set_wall(Timestamp::from_secs(10));
        assert_eq!(clock.now(), Timestamp::from_secs(10));
        assert_eq!(clock.monotonic(), Duration::ZERO);
    }

    #[test]
    fn system_clock_monotonic_never_goes_backwards() {
        let first = SystemClock.monotonic();
        let second = SystemClock.monotonic();
        assert!(second >= first);
    }
}
