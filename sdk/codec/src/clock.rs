//! The one source of time for the host and every store: expiry is judged against [`Clock::now`],
//! and in-process TTL deadlines against [`Clock::monotonic`], so a test (or a host that injects
//! one clock everywhere) moves all of them together without sleeping.
//!
//! Stores receive their clock when they are opened and never read the system clock themselves
//! for expiry.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use sessionkit_sdk::Timestamp;

use crate::time::{from_datetime, to_datetime};

/// A source of time, so expiry can be tested without sleeping and judged consistently.
pub trait Clock: Send + Sync + Debug {
    /// The wall-clock time, which a record's `expire_date` is judged against.
    fn now(&self) -> Timestamp;

    /// [`now`](Clock::now) as a `chrono` date, for Django's expiry arithmetic.
    fn now_utc(&self) -> DateTime<Utc> {
        to_datetime(self.now())
    }

    /// A reading that never goes backwards, from an arbitrary fixed origin: in-process TTL
    /// deadlines use it, so a wall-clock jump does not move them. The default reads the
    /// process's [`Instant`].
    fn monotonic(&self) -> Duration {
        process_monotonic()
    }
}

/// The origin of [`SystemClock::monotonic`] readings.
static ORIGIN: LazyLock<Instant> = LazyLock::new(Instant::now);

fn process_monotonic() -> Duration {
    ORIGIN.elapsed()
}

/// The system's clocks (what production uses): [`Timestamp::now`] and [`Instant`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to, for tests; clones share the same time.
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
    /// A clock stopped at `start`, whose monotonic reading is zero.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self::at(from_datetime(start))
    }

    /// A clock stopped at `start` (the FFI timestamp form of [`new`](Self::new)).
    pub fn at(start: Timestamp) -> Self {
        Self {
            inner: Arc::new(ManualTime {
                wall_micros: AtomicI64::new(start.micros),
                monotonic_micros: AtomicU64::new(0),
            }),
        }
    }

    /// Sets the wall clock alone (a clock jump, backwards too); the monotonic reading does not
    /// move.
    pub fn set(&self, now: DateTime<Utc>) {
        self.inner
            .wall_micros
            .store(from_datetime(now).micros, Ordering::SeqCst);
    }

    /// Moves the wall clock by `by` (negative moves it back); saturates at the ends of the
    /// range. Time passing forward also moves the monotonic reading; a negative `by` is a jump
    /// and leaves it alone.
    pub fn advance(&self, by: TimeDelta) {
        let delta = by.num_microseconds().unwrap_or(if by < TimeDelta::zero() {
            i64::MIN
        } else {
            i64::MAX
        });
        // fetch_update's closure always returns Some, so these cannot fail.
        let _ = self
            .inner
            .wall_micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| {
                Some(m.saturating_add(delta))
            });
        if let Ok(forward) = u64::try_from(delta) {
            let _ =
                self.inner
                    .monotonic_micros
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| {
                        Some(m.saturating_add(forward))
                    });
        }
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
    use chrono::{Datelike, TimeZone};

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
    }

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::new(t0());
        let other = clock.clone();
        assert_eq!(clock.now_utc(), t0());
        clock.advance(TimeDelta::seconds(10));
        assert_eq!(other.now_utc(), t0() + TimeDelta::seconds(10));
        assert_eq!(other.monotonic(), Duration::from_secs(10));
        clock.set(t0() - TimeDelta::days(1));
        assert_eq!(other.now_utc(), t0() - TimeDelta::days(1));
        clock.advance(TimeDelta::MAX);
        assert_eq!(clock.now(), Timestamp::from_micros(i64::MAX));
    }

    #[test]
    fn a_wall_clock_jump_leaves_the_monotonic_reading_alone() {
        let clock = ManualClock::at(Timestamp::from_secs(100));
        clock.set(to_datetime(Timestamp::from_secs(10)));
        clock.advance(TimeDelta::seconds(-5));
        assert_eq!(clock.now(), Timestamp::from_secs(5));
        assert_eq!(clock.monotonic(), Duration::ZERO);
    }

    #[test]
    fn system_clock_reads_the_wall_clock_and_a_monotonic_one() {
        assert!(SystemClock.now_utc().year() >= 2025);
        let first = SystemClock.monotonic();
        assert!(SystemClock.monotonic() >= first);
    }
}

/// The host's clock as an engine's store sees it (contract 0.2): wall-clock readings come from
/// the host, so a host that freezes time freezes the engine's expiry judgement with it.
/// Monotonic readings stay the plugin's own process clock (the contract lends only the wall
/// clock), so in-process TTL deadlines follow real time.
#[derive(Debug, Clone)]
pub struct HostClock(sessionkit_sdk::Host);

impl HostClock {
    /// The clock of `host` (the system clock for [`Host::standalone`](sessionkit_sdk::Host)).
    pub fn new(host: &sessionkit_sdk::Host) -> Self {
        Self(host.clone())
    }
}

impl Clock for HostClock {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
}
