//! A hung Redis (issue 9, defect 5): a private `redis-server` stopped with SIGSTOP keeps its
//! sockets open and answers nothing. Before the circuit breaker every request paid a connect
//! or command timeout on each call it made; now a request pays at most one timeout, the
//! breaker fails the rest fast, one probe per cool-down checks the server, and the store works
//! again after SIGCONT without a restart. (Redis killed outright refuses connections at once;
//! `redis_outage.rs` covers that and the restart.)
//!
//! Timing: a request must end within [`GENEROUS`] = 3 × the one timeout it may pay. The code
//! waits one timeout; the factor 3 leaves room for a loaded 2-core CI machine (thread
//! scheduling, the error path), so the check fails only when a request pays several timeouts.
//! A watchdog of 20 s turns a hang into a failure. The count of timeouts per request is the
//! exact check; the time bound backs it up.

mod common;

use std::{
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use sessionkit_cache::{CacheStore, RedisBackend, RedisOptions};
use sessionkit_sdk::{SessionStore, StoreError};

use common::{PrivateRedis, dict, short_timeouts, store_on, within, write};

/// Every timeout of the backend under test.
const TIMEOUT: Duration = Duration::from_millis(500);
/// The most one request may take while the server is hung (see the module docs for why 3×).
const GENEROUS: Duration = Duration::from_millis(1500);
const WATCHDOG: Duration = Duration::from_secs(20);
/// The breaker's cool-down here (the default, 1 s).
const COOLDOWN: Duration = sessionkit_cache::redis_backend::DEFAULT_BREAKER_COOLDOWN;

fn options() -> RedisOptions {
    short_timeouts(TIMEOUT)
}

fn key(i: usize) -> String {
    format!("hung{i:04}abcdefghijklmnopqrstuvwx")
}

/// What one request did: the calls' errors and how long it took.
struct Request {
    errors: Vec<StoreError>,
    took: Duration,
}

impl Request {
    /// Errors that cost a wait (a timeout or a busy pool), as opposed to the breaker's
    /// immediate refusals.
    fn waits(&self) -> usize {
        self.errors
            .iter()
            .filter(|e| !e.message.contains("circuit breaker"))
            .count()
    }

    fn fast_failures(&self) -> usize {
        self.errors.len() - self.waits()
    }
}

/// A request as the host makes it when the view touches the session: load, then save.
fn request(store: &CacheStore<Arc<RedisBackend>>, key: &str) -> Request {
    let started = Instant::now();
    let mut errors = Vec::new();
    if let Err(error) = store.load(key) {
        errors.push(error);
    }
    if let Err(error) = store.save(write(key, "touched", 60)) {
        errors.push(error);
    }
    Request {
        errors,
        took: started.elapsed(),
    }
}

fn assert_bounded(label: &str, request: &Request) {
    assert!(
        request.waits() <= 1,
        "{label}: paid {} waits: {:?}",
        request.waits(),
        request.errors
    );
    assert!(
        request.took <= GENEROUS,
        "{label}: took {:?} (over 3 × the {TIMEOUT:?} timeout): {:?}",
        request.took,
        request.errors
    );
    for error in &request.errors {
        assert_eq!(
            error.kind,
            sessionkit_sdk::ErrorKind::Unavailable,
            "{label}: {error}"
        );
    }
}

#[test]
fn a_hung_server_costs_at_most_one_timeout_per_request_and_recovers_after_sigcont() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let (store, backend) = store_on(&server.url(), "hung", options());
    let store = Arc::new(store);
    store.create(write(&key(1), "before", 60)).unwrap();

    server.signal("STOP");
    // Requests for a little over two cool-downs: the first opens the breaker, later ones fail
    // fast, and each cool-down's end lets one probe pay a timeout again.
    let run = within(WATCHDOG, {
        let store = store.clone();
        move || {
            let started = Instant::now();
            let mut requests = Vec::new();
            while started.elapsed() < COOLDOWN * 5 / 2 {
                requests.push(request(&store, &key(1)));
                thread::sleep(Duration::from_millis(50));
            }
            requests
        }
    });
    for (i, request) in run.iter().enumerate() {
        assert_bounded(&format!("request {i}"), request);
        assert_eq!(request.errors.len(), 2, "request {i}: both calls fail");
    }
    let waits: usize = run.iter().map(Request::waits).sum();
    let fast: usize = run.iter().map(Request::fast_failures).sum();
    println!(
        "{} requests while stopped: {waits} paid a timeout, {fast} calls failed fast",
        run.len()
    );
    assert!(run[0].waits() == 1, "the first request pays the timeout");
    assert!(
        run[0].fast_failures() == 1,
        "and its second call fails fast: {:?}",
        run[0].errors
    );
    assert!(
        waits >= 2,
        "a probe after the cool-down pays a timeout again"
    );
    assert!(
        waits < run.len(),
        "most requests fail fast: {waits} of {}",
        run.len()
    );
    assert!(backend.breaker_open());

    server.signal("CONT");
    let recovered = within(WATCHDOG, {
        let store = store.clone();
        move || {
            let started = Instant::now();
            loop {
                match store.load(&key(1)) {
                    Ok(record) => return (record, started.elapsed()),
                    Err(_) => thread::sleep(Duration::from_millis(50)),
                }
            }
        }
    });
    println!("answering again {:?} after SIGCONT", recovered.1);
    assert_eq!(
        recovered
            .0
            .expect("the session survived")
            .session_data
            .as_str(),
        dict("before")
    );
    assert!(!backend.breaker_open(), "the probe's answer closed it");
    store.save(write(&key(1), "after", 60)).unwrap();
}

#[test]
fn concurrent_requests_each_pay_at_most_one_timeout() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let (store, backend) = store_on(&server.url(), "hung", options());
    let store = Arc::new(store);
    // Warm the pool so the stop catches connections mid-use, not only new ones.
    for i in 0..4 {
        store.create(write(&key(i), "d", 60)).unwrap();
    }
    server.signal("STOP");
    // Twice as many threads as connections, so some wait for a connection as well.
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                within(WATCHDOG, move || {
                    (0..4)
                        .map(|_| request(&store, &key(t % 4)))
                        .collect::<Vec<_>>()
                })
            })
        })
        .collect();
    let (mut total, mut waits) = (0, 0);
    for (t, handle) in threads.into_iter().enumerate() {
        for (i, request) in handle.join().unwrap().iter().enumerate() {
            assert_bounded(&format!("thread {t} request {i}"), request);
            total += 1;
            waits += request.waits();
        }
    }
    println!("{total} concurrent requests while stopped: {waits} paid one wait, the rest none");
    assert_eq!(total, 32);
    assert!(backend.breaker_open());
    server.signal("CONT");
}
