//! A small blocking connection pool shared by both backends.
//!
//! Connections are made on demand up to a maximum, handed out exclusively, and returned on
//! drop; a caller that finds every connection busy waits up to a bounded time (or until the
//! deadline of its call), then gets
//! [`ErrorKind::Unavailable`](sessionkit_sdk::ErrorKind::Unavailable). A connection the
//! caller marks broken is closed instead of returned.

use std::{
    ops::{Deref, DerefMut},
    time::{Duration, Instant},
};

use parking_lot::{Condvar, Mutex};
use sessionkit_sdk::{StoreError, StoreResult};

/// Makes connections for a [`Pool`].
pub(crate) trait Manager: Send + Sync + 'static {
    /// One connection.
    type Conn: Send;

    /// Opens a new connection, ready for use.
    fn connect(&self) -> StoreResult<Self::Conn>;

    /// Opens a new connection that must be ready by `deadline` (the caller's call ends then);
    /// managers whose connect has its own bound may ignore it.
    fn connect_until(&self, deadline: Instant) -> StoreResult<Self::Conn> {
        let _ = deadline;
        self.connect()
    }
}

/// A bounded set of connections made by `M`.
pub(crate) struct Pool<M: Manager> {
    manager: M,
    state: Mutex<State<M::Conn>>,
    available: Condvar,
    max_size: usize,
    checkout_timeout: Duration,
}

struct State<C> {
    idle: Vec<C>,
    /// Connections in existence or being opened, idle or checked out.
    open: usize,
}

impl<M: Manager> Pool<M> {
    /// A pool of at most `max_size` (≥ 1) connections; callers wait at most `checkout_timeout`.
    pub(crate) fn new(manager: M, max_size: usize, checkout_timeout: Duration) -> Self {
        Self {
            manager,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            available: Condvar::new(),
            max_size: max_size.max(1),
            checkout_timeout,
        }
    }

    /// The manager, for backend settings.
    pub(crate) fn manager(&self) -> &M {
        &self.manager
    }

    /// An idle connection, a new one if the pool is not full, or the next one returned.
    ///
    /// # Errors
    ///
    /// The manager's error when a new connection fails; `Unavailable` when none is free
    /// within the checkout timeout.
    pub(crate) fn get(&self) -> StoreResult<Pooled<'_, M>> {
        self.get_until(Instant::now() + self.checkout_timeout)
    }

    /// As [`get`](Self::get), but waiting for a free connection, or opening a new one, only
    /// until `deadline`.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), with `deadline` in place of the checkout timeout.
    pub(crate) fn get_until(&self, deadline: Instant) -> StoreResult<Pooled<'_, M>> {
        let started = Instant::now();
        let mut state = self.state.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                    broken: false,
                });
            }
            if state.open < self.max_size {
                state.open += 1;
                drop(state);
                return match self.manager.connect_until(deadline) {
                    Ok(conn) => Ok(Pooled {
                        pool: self,
                        conn: Some(conn),
                        broken: false,
                    }),
                    Err(error) => {
                        self.release_slot();
                        Err(error)
                    }
                };
            }
            if self.available.wait_until(&mut state, deadline).timed_out() {
                return Err(StoreError::unavailable(format!(
                    "all {} database connections stayed busy for {:?}",
                    self.max_size,
                    deadline.saturating_duration_since(started)
                )));
            }
        }
    }

    /// Closes every idle connection (after a server restart they are all dead).
    pub(crate) fn discard_idle(&self) {
        let mut state = self.state.lock();
        let closed = state.idle.len();
        state.open -= closed;
        let idle = std::mem::take(&mut state.idle);
        drop(state);
        drop(idle);
        for _ in 0..closed {
            self.available.notify_one();
        }
    }

    fn release_slot(&self) {
        self.state.lock().open -= 1;
        self.available.notify_one();
    }

    fn put_back(&self, conn: M::Conn) {
        self.state.lock().idle.push(conn);
        self.available.notify_one();
    }
}

/// A checked-out connection; returns to its pool when dropped.
pub(crate) struct Pooled<'a, M: Manager> {
    pool: &'a Pool<M>,
    conn: Option<M::Conn>,
    broken: bool,
}

impl<M: Manager> Pooled<'_, M> {
    /// Closes this connection instead of returning it (its session state is unknown).
    pub(crate) fn mark_broken(&mut self) {
        self.broken = true;
    }
}

impl<M: Manager> Deref for Pooled<'_, M> {
    type Target = M::Conn;

    fn deref(&self) -> &M::Conn {
        // `conn` is Some from construction until drop.
        self.conn
            .as_ref()
            .expect("pooled connection used after drop")
    }
}

impl<M: Manager> DerefMut for Pooled<'_, M> {
    fn deref_mut(&mut self) -> &mut M::Conn {
        // `conn` is Some from construction until drop.
        self.conn
            .as_mut()
            .expect("pooled connection used after drop")
    }
}

impl<M: Manager> Drop for Pooled<'_, M> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if self.broken {
                drop(conn);
                self.pool.release_slot();
            } else {
                self.pool.put_back(conn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use sessionkit_sdk::ErrorKind;

    use super::*;

    #[derive(Default)]
    struct Counter {
        made: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
    }

    impl Manager for Arc<Counter> {
        type Conn = usize;
        fn connect(&self) -> StoreResult<usize> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(StoreError::unavailable("refused"));
            }
            Ok(self.made.fetch_add(1, Ordering::SeqCst))
        }
    }

    #[test]
    fn connections_are_reused() {
        let counter = Arc::new(Counter::default());
        let pool = Pool::new(counter.clone(), 2, Duration::from_secs(1));
        for _ in 0..5 {
            let conn = pool.get().unwrap();
            assert_eq!(*conn, 0);
        }
        assert_eq!(counter.made.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_full_pool_times_out_as_unavailable() {
        let pool = Pool::new(Arc::new(Counter::default()), 1, Duration::from_millis(10));
        let _held = pool.get().unwrap();
        let err = pool.get().err().unwrap();
        assert_eq!(err.kind, ErrorKind::Unavailable);
    }

    #[test]
    fn a_checkout_waits_only_until_its_deadline() {
        let pool = Pool::new(Arc::new(Counter::default()), 1, Duration::from_secs(3600));
        let _held = pool.get().unwrap();
        // The pool's own checkout timeout is an hour; the call's deadline wins.
        let err = pool
            .get_until(Instant::now() + Duration::from_millis(20))
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::Unavailable);
        assert!(err.message.contains("stayed busy"), "{}", err.message);
    }

    #[test]
    fn broken_connections_free_their_slot() {
        let counter = Arc::new(Counter::default());
        let pool = Pool::new(counter.clone(), 1, Duration::from_millis(10));
        pool.get().unwrap().mark_broken();
        assert_eq!(*pool.get().unwrap(), 1);
    }

    #[test]
    fn failed_connects_free_their_slot() {
        let counter = Arc::new(Counter::default());
        let pool = Pool::new(counter.clone(), 1, Duration::from_millis(10));
        counter.fail.store(true, Ordering::SeqCst);
        assert_eq!(pool.get().err().unwrap().kind, ErrorKind::Unavailable);
        counter.fail.store(false, Ordering::SeqCst);
        assert!(pool.get().is_ok());
    }

    #[test]
    fn discard_idle_closes_idle_connections() {
        let counter = Arc::new(Counter::default());
        let pool = Pool::new(counter.clone(), 1, Duration::from_millis(10));
        drop(pool.get().unwrap());
        pool.discard_idle();
        assert_eq!(*pool.get().unwrap(), 1);
    }

    #[test]
    fn waiters_get_returned_connections() {
        let pool = Arc::new(Pool::new(
            Arc::new(Counter::default()),
            1,
            Duration::from_secs(30),
        ));
        let held = pool.get().unwrap();
        let waiter = {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || *pool.get().unwrap())
        };
        drop(held);
        assert_eq!(waiter.join().unwrap(), 0);
    }
}
