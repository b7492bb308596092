//! How `clear_expired` walks through millions of expired rows: batch after batch, each its own
//! short transaction, sized so that one batch takes about [`ClearBatches::target`], with a pause
//! between batches on SQLite so that writers waiting for its single write lock get in.
//!
//! Why adaptive: the time one batch takes depends on the disk, the row width, the indexes and
//! the load, so no single row count suits a laptop's SQLite file and a busy PostgreSQL server.
//! A fixed count is available for tests and for operators who measured their own
//! (`BENCHMARKS.md`, "clearsessions at scale", has the figures behind the defaults).

use std::time::{Duration, Instant};

use sessionkit_sdk::Progress;

/// The operation name `clear_expired` reports its progress under.
pub(crate) const OPERATION: &str = "clear_expired";

/// How `clear_expired` sizes its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClearBatches {
    /// The first batch's row count.
    pub first: usize,
    /// The fewest rows a batch deletes (after a slow batch).
    pub min: usize,
    /// The most rows a batch deletes (after fast ones).
    pub max: usize,
    /// How long one batch should take; the next batch's size follows from the last one's
    /// rows per second. Equal `min` and `max` make the size fixed.
    pub target: Duration,
}

impl ClearBatches {
    /// The default: batches of about 50 ms, between 100 and 50,000 rows, starting at 1,000.
    pub const ADAPTIVE: ClearBatches = ClearBatches {
        first: 1_000,
        min: 100,
        max: 50_000,
        target: Duration::from_millis(50),
    };

    /// Always `rows` rows per batch (at least 1).
    pub const fn fixed(rows: usize) -> ClearBatches {
        let rows = if rows == 0 { 1 } else { rows };
        ClearBatches {
            first: rows,
            min: rows,
            max: rows,
            target: Duration::from_millis(50),
        }
    }

    /// The size of the batch after one that deleted `rows` rows of a requested `size` in
    /// `took`: the rate so far scaled to the target, at most doubling or halving per step,
    /// within `min..=max`.
    pub(crate) fn next(&self, size: usize, took: Duration) -> usize {
        if self.min >= self.max {
            return self.min;
        }
        let took = took.as_secs_f64().max(1e-4);
        let scaled = size as f64 * self.target.as_secs_f64() / took;
        let bounded = scaled.clamp(size as f64 / 2.0, size as f64 * 2.0);
        (bounded as usize).clamp(self.min, self.max)
    }
}

impl Default for ClearBatches {
    fn default() -> Self {
        Self::ADAPTIVE
    }
}

/// One batch as a backend ran it: how many rows went.
pub(crate) struct Batch {
    /// Rows the batch deleted.
    pub(crate) deleted: u64,
}

/// Runs `batch(size)` until a batch deletes fewer rows than it was asked to, sizing each by
/// `batches`, reporting progress after each, and sleeping `pause(took)` between batches.
/// Returns how many rows went in all.
pub(crate) fn run<E>(
    batches: &ClearBatches,
    progress: Option<(&Progress, u64)>,
    pause: impl Fn(Duration) -> Duration,
    mut batch: impl FnMut(usize) -> Result<Batch, E>,
) -> Result<u64, E> {
    let mut size = batches.first.clamp(batches.min.max(1), batches.max.max(1));
    let mut done = 0u64;
    loop {
        let started = Instant::now();
        let Batch { deleted } = batch(size)?;
        let took = started.elapsed();
        done += deleted;
        if let Some((progress, total)) = progress {
            progress.report(done, total);
        }
        if deleted < size as u64 {
            return Ok(done);
        }
        size = batches.next(size, took);
        let rest = pause(took);
        if !rest.is_zero() {
            std::thread::sleep(rest);
        }
    }
}

/// The progress total from counting the expired rows, or 0 (unknown: the display then shows
/// rows done without an end) when the count failed — on a huge table it can outlast the call
/// bound, and only the display needs it, so the clear goes on without it.
pub(crate) fn total_or_unknown<E: std::fmt::Display>(counted: Result<i64, E>) -> u64 {
    match counted {
        Ok(total) => u64::try_from(total).unwrap_or(0),
        Err(error) => {
            tracing::warn!(
                "counting the expired sessions failed ({error}); clearing without a total"
            );
            0
        }
    }
}

/// SQLite's pause after a batch that held the write lock for `took`: as long again (at least
/// 1 ms, at most 50 ms). A writer that found the lock taken sleeps in SQLite's busy handler in
/// growing steps (1, 2, 5, 10, 15, 20, 25 … 100 ms); a pause as long as the batch lets it wake
/// up into a free lock instead of finding the next batch holding it.
pub(crate) fn sqlite_pause(took: Duration) -> Duration {
    took.clamp(Duration::from_millis(1), Duration::from_millis(50))
}

/// PostgreSQL's pause: none. Its batches lock only the expired rows they delete (skipping rows
/// another transaction holds), so no reader or writer of a live session waits for them.
pub(crate) fn no_pause(_took: Duration) -> Duration {
    Duration::ZERO
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_size_never_changes() {
        let fixed = ClearBatches::fixed(7);
        assert_eq!(fixed.next(7, Duration::from_secs(3)), 7);
        assert_eq!(fixed.next(7, Duration::from_nanos(1)), 7);
        assert_eq!(ClearBatches::fixed(0).first, 1);
    }

    #[test]
    fn the_adaptive_size_moves_toward_the_target_at_most_twofold() {
        let adaptive = ClearBatches::ADAPTIVE;
        // 1,000 rows in 25 ms: twice as fast as the target, so twice the rows.
        assert_eq!(adaptive.next(1_000, Duration::from_millis(25)), 2_000);
        // 1,000 rows in 1 ms would scale fiftyfold: capped at double.
        assert_eq!(adaptive.next(1_000, Duration::from_millis(1)), 2_000);
        // 1,000 rows in 200 ms: halved (not quartered).
        assert_eq!(adaptive.next(1_000, Duration::from_millis(200)), 500);
        // Within bounds.
        assert_eq!(adaptive.next(40_000, Duration::from_millis(1)), 50_000);
        assert_eq!(adaptive.next(150, Duration::from_secs(1)), 100);
    }

    #[test]
    fn run_stops_after_a_short_batch_and_sums_what_went() {
        let mut left = 25u64;
        let mut sizes = Vec::new();
        let removed = run::<()>(&ClearBatches::fixed(10), None, no_pause, |size| {
            sizes.push(size);
            let deleted = left.min(size as u64);
            left -= deleted;
            Ok(Batch { deleted })
        });
        assert_eq!(removed, Ok(25));
        assert_eq!(sizes, [10, 10, 10]);
    }

    #[test]
    fn sqlite_pauses_as_long_as_the_batch_within_bounds() {
        assert_eq!(
            sqlite_pause(Duration::from_micros(10)),
            Duration::from_millis(1)
        );
        assert_eq!(
            sqlite_pause(Duration::from_millis(20)),
            Duration::from_millis(20)
        );
        assert_eq!(
            sqlite_pause(Duration::from_secs(2)),
            Duration::from_millis(50)
        );
    }
}
