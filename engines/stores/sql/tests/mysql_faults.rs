//! MySQL/MariaDB faults, as the PostgreSQL fault suite checks them: a table locked by another
//! session, a server that accepts connections and never answers, and a server that goes silent
//! in the middle of a session. Every call must come back within the URL's `call_timeout` as a
//! clean `Unavailable` error, and the store must work again once the fault is gone.
//!
//! The shared server is never locked or stopped: the lock is taken on a fresh database made
//! for the run, and silence comes from TCP endpoints this test controls (a listener that never
//! answers, and a proxy in front of the server whose traffic can be frozen while its sockets
//! stay open, which is what a hung server looks like from the client).
//!
//! Timing: each call must end within [`GENEROUS`] = 3 × the bound, room for a loaded 2-core
//! CI machine, so the check fails only when a call is not bounded at all. A watchdog of 20 ×
//! the bound turns a real hang into a failure instead of a stuck test.

use std::{
    io::{Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use sessionkit_sdk::{ErrorKind, SessionRecord, SessionStore, SessionWrite, StoreError, Timestamp};
use sessionkit_sql::{
    DatabaseUrl, SqlStore, SqlStoreOptions,
    testing::{MysqlClient, TempMysqlDatabase, mysql_url},
};

/// The `call_timeout` these tests configure (short, so the suite stays CI-sized).
const BOUND: Duration = Duration::from_secs(1);
/// The most a bounded call may take here (see the module docs for why 3×).
const GENEROUS: Duration = Duration::from_secs(3);
/// Fails a call that does not return at all.
const WATCHDOG: Duration = Duration::from_secs(20);

const KEY: &str = "myfault0123456789abcdefghijklmno";

fn write(key: &str, data: &str) -> SessionWrite {
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
fn bounded(url: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}call_timeout={}", BOUND.as_secs_f64())
}

fn open(url: &str) -> Result<SqlStore, StoreError> {
    let url = DatabaseUrl::parse(url).expect("valid URL");
    SqlStore::open(&url, SqlStoreOptions::new("django_session"))
}

/// Runs `call` on its own thread; its result and how long it took, or a test failure if it
/// does not return within the watchdog.
fn timed<T: Send + 'static>(
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
fn assert_bounded_unavailable<T: std::fmt::Debug>(
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

/// One contract call by name, for looping over every kind of call.
type Call = fn(&SqlStore) -> Result<(), StoreError>;

const CALLS: [(&str, Call); 5] = [
    ("load", |s| s.load(KEY).map(drop)),
    ("exists", |s| s.exists(KEY).map(drop)),
    ("save", |s| s.save(write(KEY, "changed")).map(drop)),
    ("create", |s| {
        s.create(write("myfault9999999999abcdefghijklmno", "new"))
            .map(drop)
    }),
    ("delete", |s| s.delete(KEY)),
];

#[test]
fn a_locked_table_gives_a_clean_error_within_the_bound_and_then_works() {
    let Some(base) = mysql_url() else { return };
    let db = TempMysqlDatabase::create(&base);
    let store = Arc::new(open(&bounded(db.url())).expect("open"));
    store.create(write(KEY, "before")).expect("create");

    // Another session write-locks the table and keeps it: every statement on the table, reads
    // included, waits behind it.
    let mut locker = MysqlClient::connect(db.url());
    locker.exec("LOCK TABLES django_session WRITE");

    for (name, call) in CALLS {
        let store = store.clone();
        let error = assert_bounded_unavailable(name, timed(name, move || call(&store)));
        // The server's statement or lock timeout reports it, or the client bound cuts it on a
        // slow machine: either way the message says so.
        assert!(
            error.message.contains("timeout")
                || error.message.contains("max_statement_time")
                || error.message.contains("no answer within"),
            "{name}: {error}"
        );
    }

    locker.exec("UNLOCK TABLES");
    let record = store.load(KEY).expect("load after the lock").expect("kept");
    assert_eq!(record.session_data.as_str(), "before");
    store
        .save(write(KEY, "after"))
        .expect("save after the lock");
}

/// A loopback listener that accepts connections and never sends a byte (a server process that
/// is up but hung, as far as a client can tell).
fn silent_listener() -> SocketAddr {
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

#[test]
fn a_server_that_never_answers_cannot_hold_open_or_calls() {
    let address = silent_listener();
    let url = bounded(&format!("mysql://root@{address}/test"));
    let error = assert_bounded_unavailable("open", timed("open", move || open(&url).map(drop)));
    assert!(error.message.contains("no answer within"), "{error}");
    assert!(error.message.contains("call_timeout"), "{error}");
}

/// A TCP proxy whose traffic can be frozen: while frozen, bytes read on either side are held,
/// sockets stay open, and nothing reaches the other side.
struct FreezableProxy {
    address: SocketAddr,
    frozen: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
}

impl FreezableProxy {
    fn start(upstream: SocketAddr) -> Self {
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

    fn freeze(&self, frozen: bool) {
        self.frozen.store(frozen, Ordering::SeqCst);
    }

    fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, frozen: &AtomicBool) {
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
fn through(url: &str, address: SocketAddr) -> String {
    let authority_start = url.find("://").expect("scheme") + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| authority_start + i);
    let host_start = url[authority_start..authority_end]
        .rfind('@')
        .map_or(authority_start, |at| authority_start + at + 1);
    format!("{}{address}{}", &url[..host_start], &url[authority_end..])
}

/// The server address of a MySQL URL.
fn server_address(url: &str) -> SocketAddr {
    let Ok(DatabaseUrl::Mysql(my)) = DatabaseUrl::parse(url) else {
        panic!("not a MySQL URL")
    };
    (my.opts().ip_or_hostname(), my.opts().tcp_port())
        .to_socket_addrs()
        .expect("resolve")
        .next()
        .expect("an address")
}

#[test]
fn a_server_gone_silent_mid_session_is_bounded_and_its_connections_are_not_reused() {
    let Some(base) = mysql_url() else { return };
    let db = TempMysqlDatabase::create(&base);
    let proxy = FreezableProxy::start(server_address(db.url()));
    let store = Arc::new(open(&bounded(&through(db.url(), proxy.address))).expect("open"));
    store.create(write(KEY, "before")).expect("create");
    assert!(store.load(KEY).expect("load").is_some());

    proxy.freeze(true);
    for (name, call) in CALLS {
        let store = store.clone();
        let error = assert_bounded_unavailable(name, timed(name, move || call(&store)));
        assert!(
            error.message.contains("no answer within"),
            "{name}: {error}"
        );
    }
    // More callers at once than the pool has connections: each still gets its answer within
    // the bound (waiting for a connection is part of the call), none waits behind the others.
    let many: Vec<_> = (0..12)
        .map(|i| {
            let store = store.clone();
            thread::spawn(move || {
                let name = format!("concurrent load {i}");
                let result = timed(&name, move || store.load(KEY).map(drop));
                assert_bounded_unavailable(&name, result);
            })
        })
        .collect();
    for handle in many {
        handle.join().expect("a concurrent call failed its check");
    }

    let before = proxy.connections();
    proxy.freeze(false);
    let record = store
        .load(KEY)
        .expect("load once the server answers")
        .expect("kept");
    assert_eq!(record.session_data.as_str(), "before");
    assert!(
        proxy.connections() > before,
        "the call after the outage used a connection that had timed out"
    );
}
