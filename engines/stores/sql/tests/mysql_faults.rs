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

mod faults;

use faults::{
    FreezableProxy, assert_bounded_unavailable, bounded, open, silent_listener, through, timed,
    write,
};
use std::{
    net::{SocketAddr, ToSocketAddrs},
    sync::Arc,
    thread,
};

use sessionkit_sdk::{SessionStore, StoreError};
use sessionkit_sql::{
    DatabaseUrl, SqlStore,
    testing::{MysqlClient, TempMysqlDatabase, mysql_url},
};

const KEY: &str = "myfault0123456789abcdefghijklmno";

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

#[test]
fn a_server_that_never_answers_cannot_hold_open_or_calls() {
    let address = silent_listener();
    let url = bounded(&format!("mysql://root@{address}/test"));
    let error = assert_bounded_unavailable("open", timed("open", move || open(&url).map(drop)));
    assert!(error.message.contains("no answer within"), "{error}");
    assert!(error.message.contains("call_timeout"), "{error}");
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
