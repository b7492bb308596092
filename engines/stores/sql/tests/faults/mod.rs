//! What the database fault suites (`pg_faults.rs`, `mysql_faults.rs`) share: the bound they
//! configure, timing a call against it, and the two fake servers (a listener that never
//! answers, a proxy whose traffic can be frozen). See `pg_faults.rs` for why 3 × the bound.

use std::{
    io::{Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use sessionkit_sdk::{ErrorKind, SessionRecord, SessionWrite, StoreError, Timestamp};
use sessionkit_sql::{DatabaseUrl, SqlStore, SqlStoreOptions};

/// The `call_timeout` these tests configure (short, so the suite stays CI-sized).
pub(crate) const BOUND: Duration = Duration::from_secs(1);
/// The most a bounded call may take here (see the module docs for why 3×).
pub(crate) const GENEROUS: Duration = Duration::from_secs(3);
/// Fails a call that does not return at all.
pub(crate) const WATCHDOG: Duration = Duration::from_secs(20);

pub(crate) fn write(key: &str, data: &str) -> SessionWrite {
    SessionWrite {
        record: SessionRecord {
            session_key: key.into(),
            session_data: data.into(),
            expire_date: Timestamp::from_secs(Timestamp::now().as_secs() + 3600),
        },
        session_json: "{}".into(),
    }
}

/// `url` with `call_timeout` set to [`BOUND`].
pub(crate) fn bounded(url: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}call_timeout={}", BOUND.as_secs_f64())
}

pub(crate) fn open(url: &str) -> Result<SqlStore, StoreError> {
    let url = DatabaseUrl::parse(url).expect("valid URL");
    SqlStore::open(&url, SqlStoreOptions::new("django_session"))
}

/// Runs `call` on its own thread; its result and how long it took, or a test failure if it
/// does not return within the watchdog.
pub(crate) fn timed<T: Send + 'static>(
    name: &str,
    call: impl FnOnce() -> T + Send + 'static,
) -> (T, Duration) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let started = Instant::now();
        let result = call();
        let _ = tx.send((result, started.elapsed()));
    });
    rx.recv_timeout(WATCHDOG)
        .unwrap_or_else(|_| panic!("{name}: no answer within {WATCHDOG:?}: the call hangs"))
}

/// Asserts that `result` is a clean `Unavailable` error that came back within [`GENEROUS`].
pub(crate) fn assert_bounded_unavailable<T: std::fmt::Debug>(
    name: &str,
    (result, took): (Result<T, StoreError>, Duration),
) -> StoreError {
    let error = result.expect_err(name);
    println!("{name}: {took:?}: {error}");
    assert_eq!(error.kind, ErrorKind::Unavailable, "{name}: {error}");
    assert!(
        took <= GENEROUS,
        "{name} took {took:?}, over 3 × the {BOUND:?} bound"
    );
    error
}

/// A loopback listener that accepts connections and never sends a byte (a server process that
/// is up but hung, as far as a client can tell).
pub(crate) fn silent_listener() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    address
}

/// A TCP proxy whose traffic can be frozen: while frozen, bytes read on either side are held,
/// sockets stay open, and nothing reaches the other side.
pub(crate) struct FreezableProxy {
    pub(crate) address: SocketAddr,
    frozen: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
}

impl FreezableProxy {
    pub(crate) fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let frozen = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (f, a) = (frozen.clone(), accepted.clone());
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                a.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let (client2, server2) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                let (f1, f2) = (f.clone(), f.clone());
                thread::spawn(move || pump(client, server, &f1));
                thread::spawn(move || pump(server2, client2, &f2));
            }
        });
        Self {
            address,
            frozen,
            accepted,
        }
    }

    pub(crate) fn freeze(&self, frozen: bool) {
        self.frozen.store(frozen, Ordering::SeqCst);
    }

    pub(crate) fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

pub(crate) fn pump(mut from: TcpStream, mut to: TcpStream, frozen: &AtomicBool) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while frozen.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(5));
        }
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// `url` with its `host:port` replaced by `address`.
pub(crate) fn through(url: &str, address: SocketAddr) -> String {
    let authority_start = url.find("://").expect("scheme") + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| authority_start + i);
    let host_start = url[authority_start..authority_end]
        .rfind('@')
        .map_or(authority_start, |at| authority_start + at + 1);
    format!("{}{address}{}", &url[..host_start], &url[authority_end..])
}
