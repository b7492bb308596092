//! [`SaveTurns`]: this process's merging saves of one session take turns instead of racing.
//!
//! A save through a conditional-save engine that finds the record changed reloads it, replays
//! its own changes and tries again (`Session::merge_in`). Two processes racing that way settle
//! within a few rounds. Requests of *one* process do not: with a stream of requests writing the
//! same session, a fresh request keeps landing between a retrying save's reload and its
//! conditional write, and the retrying one can lose every round until it gives up with
//! `WriteConflict` (measured: 16 keep-alive connections writing one session on Redis got 500s).
//! So the async saves of one process queue per session key, first come first served, and only
//! saves of other processes (or this process's sync saves) can still make one retry.

use std::hash::BuildHasher;
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

/// How many turn queues keys are spread over: unrelated sessions sharing one queue only wait
/// for each other's save step, so a few dozen cover a busy process.
const STRIPES: usize = 64;

/// One FIFO turn queue per stripe of session keys.
pub(crate) struct SaveTurns {
    stripes: Box<[Arc<Mutex<()>>]>,
    hasher: foldhash::fast::RandomState,
}

impl SaveTurns {
    /// Turn queues with nobody waiting.
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Arc::new(Mutex::new(()))).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// Waits for `key`'s turn (FIFO among this process's saves of keys on its stripe); the turn
    /// lasts until the guard is dropped.
    pub(crate) async fn take(&self, key: &str) -> OwnedMutexGuard<()> {
        let stripe = self.hasher.hash_one(key) as usize % self.stripes.len();
        Arc::clone(&self.stripes[stripe]).lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl SaveTurns {
        fn stripe_of(&self, key: &str) -> usize {
            self.hasher.hash_one(key) as usize % self.stripes.len()
        }
    }

    #[tokio::test]
    async fn saves_of_one_key_take_turns_and_other_stripes_do_not_wait() {
        let turns = SaveTurns::new();
        let held = turns.take("a").await;
        let stripe = Arc::clone(&turns.stripes[turns.stripe_of("a")]);
        assert!(
            stripe.try_lock().is_err(),
            "a second save of one key waits for the first"
        );
        let other = (0..1000)
            .map(|n| format!("key{n}"))
            .find(|key| turns.stripe_of(key) != turns.stripe_of("a"))
            .expect("1000 keys do not all share one of 64 stripes");
        let _other = turns.take(&other).await;
        drop(held);
        assert!(stripe.try_lock().is_ok(), "the turn ends with its guard");
    }
}
