#![doc = include_str!("../README.md")]

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

/// The leader of a caller's batch panicked, so the batch's outcome is unknown to that caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the writer committing this operation's batch panicked; its outcome is unknown")]
pub struct BatchPanicked;

/// Commits the operations of concurrent callers in batches, one commit per batch (see the
/// crate docs).
pub struct GroupCommit<Op, Out> {
    state: Mutex<State<Op, Out>>,
    changed: Condvar,
    max_batch: usize,
}

/// What the callers share, under the mutex.
struct State<Op, Out> {
    /// Operations no leader has taken yet, with their tickets, oldest first.
    queued: Vec<(u64, Op)>,
    /// Whether a leader is committing a batch now.
    leading: bool,
    /// The ticket the next operation gets.
    next_ticket: u64,
    /// Outcomes of committed operations whose callers have not picked them up yet.
    finished: HashMap<u64, Option<Out>>,
    /// Batches committed so far (for the tests' and benches' view of batching).
    batches: u64,
}

impl<Op, Out> GroupCommit<Op, Out> {
    /// A group commit that puts at most `max_batch` operations (at least 1) in one commit.
    pub fn new(max_batch: usize) -> Self {
        Self {
            state: Mutex::new(State {
                queued: Vec::new(),
                leading: false,
                next_ticket: 0,
                finished: HashMap::new(),
                batches: 0,
            }),
            changed: Condvar::new(),
            max_batch: max_batch.max(1),
        }
    }

    /// Batches committed so far: with `n` writes and `b` batches, `n / b` writes shared a commit.
    pub fn batches(&self) -> u64 {
        self.state.lock().batches
    }

    /// Operations waiting for a leader to take them (not counting a batch being committed): lets
    /// a test wait until its writers have queued behind a held commit instead of sleeping.
    pub fn queued(&self) -> usize {
        self.state.lock().queued.len()
    }

    /// Queues `op` and returns its outcome once a commit that ran after it was queued is done.
    ///
    /// If no commit is running, this caller leads: `commit` gets the queued operations (its
    /// own among them, at most `max_batch`) and must return one outcome per operation, in the
    /// same order. Otherwise the caller waits; its `commit` is used only if it comes to lead a
    /// later batch. A panic in `commit` unwinds the leader and gives every other caller of that
    /// batch [`BatchPanicked`].
    pub fn submit(
        &self,
        op: Op,
        commit: impl FnOnce(Vec<Op>) -> Vec<Out>,
    ) -> Result<Out, BatchPanicked> {
        let mut state = self.state.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queued.push((ticket, op));
        let mut commit = Some(commit);
        loop {
            if let Some(outcome) = state.finished.remove(&ticket) {
                return outcome.ok_or(BatchPanicked);
            }
            if state.leading {
                self.changed.wait(&mut state);
                continue;
            }
            // Lead: take this caller's operation and up to `max_batch - 1` others.
            let batch = take_batch(&mut state.queued, ticket, self.max_batch);
            state.leading = true;
            drop(state);
            let (tickets, ops): (Vec<u64>, Vec<Op>) = batch.into_iter().unzip();
            let count = ops.len();
            let run = commit
                .take()
                .expect("a caller leads at most once: its own op is in the batch");
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let outs = run(ops);
                assert_eq!(outs.len(), count, "group commit: one outcome per operation");
                outs
            }));
            state = self.state.lock();
            state.leading = false;
            state.batches += 1;
            match outcome {
                Ok(outs) => {
                    let mut own = None;
                    for (each, out) in tickets.into_iter().zip(outs) {
                        if each == ticket {
                            own = Some(out);
                        } else {
                            state.finished.insert(each, Some(out));
                        }
                    }
                    self.changed.notify_all();
                    return Ok(own.expect("the leader's own operation is in its batch"));
                }
                Err(payload) => {
                    for each in tickets.into_iter().filter(|each| *each != ticket) {
                        state.finished.insert(each, None);
                    }
                    self.changed.notify_all();
                    drop(state);
                    resume_unwind(payload);
                }
            }
        }
    }
}

/// Removes the batch a leader commits from `queued`: everything if it fits, else the leader's
/// own operation and the oldest others.
fn take_batch<Op>(queued: &mut Vec<(u64, Op)>, own: u64, max_batch: usize) -> Vec<(u64, Op)> {
    if queued.len() <= max_batch {
        return std::mem::take(queued);
    }
    let position = queued
        .iter()
        .position(|(ticket, _)| *ticket == own)
        .expect("a waiting caller's operation is queued until a batch takes it");
    let mut batch = vec![queued.remove(position)];
    batch.extend(queued.drain(..max_batch - 1));
    batch
}

/// Many callers' writes made durable by one shared sync (one directory fsync for many renames).
pub struct SyncBarrier<E> {
    group: GroupCommit<(), Result<(), Arc<E>>>,
}

impl<E> SyncBarrier<E> {
    /// A barrier with no sync running.
    pub fn new() -> Self {
        Self {
            group: GroupCommit::new(usize::MAX),
        }
    }

    /// Syncs run so far.
    pub fn syncs(&self) -> u64 {
        self.group.batches()
    }

    /// Returns once a `sync` that started after this call began has finished, with its result:
    /// this caller runs `sync` itself unless one is already running, in which case the next
    /// one (run by one of the callers waiting for it) covers everyone waiting.
    pub fn wait(&self, sync: impl FnOnce() -> Result<(), E>) -> Result<(), SyncFailed<E>> {
        let outcome = self.group.submit((), |callers| {
            let result = sync().map_err(Arc::new);
            vec![result; callers.len()]
        });
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(SyncFailed::Failed(error)),
            Err(BatchPanicked) => Err(SyncFailed::Panicked),
        }
    }
}

impl<E> Default for SyncBarrier<E> {
    fn default() -> Self {
        Self::new()
    }
}

/// Why [`SyncBarrier::wait`] could not promise durability.
#[derive(Debug)]
pub enum SyncFailed<E> {
    /// The shared sync failed with this error (every caller it covered gets the same one).
    Failed(Arc<E>),
    /// The caller running the shared sync panicked.
    Panicked,
}

impl<E: std::fmt::Display> std::fmt::Display for SyncFailed<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Failed(error) => write!(f, "the shared sync failed: {error}"),
            Self::Panicked => write!(f, "{BatchPanicked}"),
        }
    }
}

impl<E: std::fmt::Debug + std::fmt::Display> std::error::Error for SyncFailed<E> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::thread;
    use std::time::Duration;

    #[test]
    fn a_lone_caller_commits_its_own_operation() {
        let group = GroupCommit::new(8);
        let out = group.submit(3, |ops| ops.into_iter().map(|op| op * 2).collect());
        assert_eq!(out, Ok(6));
        assert_eq!(group.batches(), 1);
    }

    #[test]
    fn queued_counts_the_callers_waiting_behind_a_commit() {
        let group = Arc::new(GroupCommit::<u32, u32>::new(8));
        let (entered, release) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        let leader = {
            let (group, entered, release) = (group.clone(), entered.clone(), release.clone());
            thread::spawn(move || {
                group.submit(1, |ops| {
                    entered.wait();
                    release.wait();
                    ops
                })
            })
        };
        entered.wait();
        assert_eq!(group.queued(), 0, "the leader took its own operation");
        let followers: Vec<_> = (2..5)
            .map(|op| {
                let group = group.clone();
                thread::spawn(move || group.submit(op, |ops| ops))
            })
            .collect();
        while group.queued() < 3 {
            thread::yield_now();
        }
        release.wait();
        assert_eq!(leader.join().expect("leader"), Ok(1));
        for (op, follower) in (2..5).zip(followers) {
            assert_eq!(follower.join().expect("follower"), Ok(op));
        }
        assert_eq!(group.queued(), 0);
        assert_eq!(group.batches(), 2, "the three followers shared one batch");
    }

    #[test]
    fn concurrent_callers_share_commits_and_each_gets_its_own_outcome() {
        let group = Arc::new(GroupCommit::new(64));
        let commits = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(Barrier::new(32));
        let threads: Vec<_> = (0..32u64)
            .map(|n| {
                let (group, commits, start) = (group.clone(), commits.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    let mut mine = Vec::new();
                    for round in 0..20u64 {
                        let op = n * 1000 + round;
                        let out = group
                            .submit(op, |ops| {
                                commits.fetch_add(1, Ordering::SeqCst);
                                // A slow commit, so others queue behind it.
                                thread::sleep(Duration::from_millis(2));
                                ops.into_iter().map(|op| op + 1).collect()
                            })
                            .expect("no panic");
                        mine.push((op, out));
                    }
                    mine
                })
            })
            .collect();
        for handle in threads {
            for (op, out) in handle.join().expect("thread") {
                assert_eq!(out, op + 1);
            }
        }
        let commits = commits.load(Ordering::SeqCst);
        assert_eq!(group.batches() as usize, commits);
        assert!(
            commits < 32 * 20 / 2,
            "{commits} commits for 640 operations: no batching"
        );
    }

    #[test]
    fn a_batch_never_exceeds_the_bound() {
        let group = Arc::new(GroupCommit::new(4));
        let largest = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (group, largest) = (group.clone(), largest.clone());
                thread::spawn(move || {
                    for _ in 0..10 {
                        group
                            .submit((), |ops| {
                                largest.fetch_max(ops.len(), Ordering::SeqCst);
                                thread::sleep(Duration::from_millis(1));
                                vec![(); ops.len()]
                            })
                            .expect("no panic");
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().expect("thread"));
        let largest = largest.load(Ordering::SeqCst);
        assert!((1..=4).contains(&largest), "largest batch {largest}");
    }

    #[test]
    fn a_panicking_leader_fails_its_batch_and_the_next_caller_leads() {
        let group = Arc::new(GroupCommit::<u32, u32>::new(16));
        let entered = Arc::new(Barrier::new(2));
        let leader = {
            let (group, entered) = (group.clone(), entered.clone());
            thread::spawn(move || {
                group.submit(1, |_| {
                    entered.wait();
                    thread::sleep(Duration::from_millis(50));
                    panic!("commit failed hard");
                })
            })
        };
        entered.wait();
        // Queued behind the panicking leader; whether it lands in that batch depends on timing,
        // so it either gets BatchPanicked or is committed by itself afterwards.
        let follower = group.submit(2, |ops| ops.into_iter().collect());
        assert!(
            leader.join().is_err(),
            "the leader's panic unwinds the leader"
        );
        assert!(matches!(follower, Ok(2) | Err(BatchPanicked)));
        assert_eq!(
            group.submit(5, |ops| ops),
            Ok(5),
            "the group works after a panic"
        );
    }

    #[test]
    fn a_barrier_sync_always_starts_after_the_caller_arrived() {
        let barrier = Arc::new(SyncBarrier::<std::io::Error>::new());
        // `written` counts writes done; each sync records how many it covers.
        let written = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (barrier, written) = (barrier.clone(), written.clone());
                thread::spawn(move || {
                    for _ in 0..20 {
                        let mine = written.fetch_add(1, Ordering::SeqCst) + 1;
                        let covered = AtomicU64::new(0);
                        let mut ran = false;
                        barrier
                            .wait(|| {
                                ran = true;
                                covered.store(written.load(Ordering::SeqCst), Ordering::SeqCst);
                                thread::sleep(Duration::from_millis(1));
                                Ok(())
                            })
                            .expect("sync");
                        if ran {
                            assert!(covered.load(Ordering::SeqCst) >= mine);
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().expect("thread"));
        assert!(
            barrier.syncs() < 16 * 20,
            "{} syncs for 320 writes",
            barrier.syncs()
        );
    }

    #[test]
    fn a_failed_sync_is_reported_to_every_caller_it_covered() {
        let barrier = SyncBarrier::new();
        let outcome = barrier.wait(|| Err(std::io::Error::other("disk gone")));
        assert!(
            matches!(&outcome, Err(SyncFailed::Failed(e)) if e.to_string() == "disk gone"),
            "{outcome:?}"
        );
        assert!(barrier.wait(|| Ok::<(), std::io::Error>(())).is_ok());
    }
}
