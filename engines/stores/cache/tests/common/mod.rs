//! Helpers for the Redis tests: stores on the shared server under a random key prefix (removed
//! afterwards, never a FLUSHDB), and private `redis-server` processes the outage tests may kill.

#![allow(dead_code)] // each test file uses its own part of these helpers

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, mpsc},
    thread,
    time::{Duration, Instant},
};

use sessionkit_cache::{
    CACHE_SESSION_PREFIX, CacheStore, KeyFunction, RedisBackend, RedisOptions, SystemClock,
};
use sessionkit_sdk::{SessionRecord, SessionWrite, Timestamp};

/// A session write for `key` expiring `secs` seconds from now.
pub(crate) fn write(key: &str, data: &str, secs: i64) -> SessionWrite {
    SessionWrite::new(
        SessionRecord::new(
            key,
            data,
            Timestamp::from_micros(Timestamp::now().micros + secs * 1_000_000),
        ),
        dict(data),
    )
}

/// The session dict [`write`] stores for `data` (`{"v": data}`), as compact JSON: what a store
/// keeping Django's pickled dicts (Redis) hands back as `session_data`.
pub(crate) fn dict(data: &str) -> String {
    serde_json::json!({ "v": data }).to_string()
}

/// Options for the outage tests: every timeout `timeout`, four connections.
pub(crate) fn short_timeouts(timeout: Duration) -> RedisOptions {
    RedisOptions {
        connect_timeout: timeout,
        socket_timeout: timeout,
        max_connections: 4,
        pool_timeout: timeout,
    }
}

/// A store on a Redis server under `key_prefix`, with its backend for raw commands.
pub(crate) fn store_on(
    url: &str,
    key_prefix: &str,
    options: RedisOptions,
) -> (CacheStore<Arc<RedisBackend>>, Arc<RedisBackend>) {
    let backend = Arc::new(RedisBackend::open(url, options).expect("the Redis URL is valid"));
    let store = CacheStore::new(
        backend.clone(),
        KeyFunction::new(key_prefix, 1),
        CACHE_SESSION_PREFIX,
        Arc::new(SystemClock),
    );
    (store, backend)
}

/// A random `KEY_PREFIX` for one test on the shared server; [`SharedPrefix`]'s drop deletes
/// every key under it.
pub(crate) struct SharedPrefix {
    pub url: String,
    pub prefix: String,
}

impl SharedPrefix {
    /// `None` (after printing why) when `SESSIONKIT_TEST_REDIS_URL` is not set.
    pub(crate) fn new() -> Option<Self> {
        let url = sessionkit_testkit::redis_url()?;
        let prefix = sessionkit_testkit::unique_prefix()
            .trim_end_matches(':')
            .to_owned();
        Some(Self { url, prefix })
    }

    /// The store and backend for this prefix, with default options.
    pub(crate) fn store(&self) -> (CacheStore<Arc<RedisBackend>>, Arc<RedisBackend>) {
        store_on(&self.url, &self.prefix, RedisOptions::default())
    }
}

impl Drop for SharedPrefix {
    fn drop(&mut self) {
        let Ok(backend) = RedisBackend::open(&self.url, RedisOptions::default()) else {
            return;
        };
        // The prefix is [a-z0-9:] only, so it is a literal SCAN pattern.
        let pattern = format!("{}:*", self.prefix);
        let cleaned = backend.with_connection(|con| {
            let keys: Vec<String> = redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(&pattern)
                .clone()
                .iter(con)?
                .collect::<Result<_, _>>()?;
            for key in keys {
                redis::cmd("DEL").arg(key).query::<i64>(con)?;
            }
            Ok(())
        });
        if let Err(error) = cleaned {
            eprintln!("could not remove test keys under {}: {error}", self.prefix);
        }
    }
}

/// A `redis-server` of this test's own, on a free loopback port, without persistence, in a
/// temporary directory. Killed when dropped. Never the shared server on 6379.
pub(crate) struct PrivateRedis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    socket_dir: tempfile::TempDir,
}

impl PrivateRedis {
    /// Starts one, or returns `None` after printing why (no `redis-server` on `PATH`).
    pub(crate) fn start() -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            println!("skipped: redis-server is not installed (apt-get install redis-server)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("sessionkit-redis-")
            .tempdir()
            .expect("a temporary directory");
        let socket_dir = tempfile::Builder::new()
            .prefix("sk-redis-sock-")
            .tempdir()
            .expect("a temporary directory");
        let port = free_port();
        let mut server = Self {
            child: None,
            port,
            dir,
            socket_dir,
        };
        server.restart();
        Some(server)
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `unix://<socket path>?db=0`: the same server through its Unix socket.
    pub(crate) fn unix_url(&self) -> String {
        format!(
            "unix://{}?db=0",
            self.socket_dir.path().join("redis.sock").display()
        )
    }

    /// The loopback port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The server's directory (`--dir`).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server process's id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (`STOP`, `CONT`) to the server process.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Starts the server again on the same port and waits until it answers PING.
    pub(crate) fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--unixsocket")
            .arg(self.socket_dir.path().join("redis.sock"))
            .args(["--unixsocketperm", "700"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        self.wait_ready();
    }

    /// A command on a fresh connection of its own (admin commands: CONFIG, REPLICAOF, …).
    pub(crate) fn admin<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let client = redis::Client::open(self.url()).expect("valid URL");
        let mut con = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("the private server accepts connections");
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        command.query(&mut con).expect("admin command succeeds")
    }

    fn wait_ready(&self) {
        let client = redis::Client::open(self.url()).expect("valid URL");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ping = client
                .get_connection_with_timeout(Duration::from_millis(500))
                .and_then(|mut con| redis::cmd("PING").query::<String>(&mut con));
            if ping.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "private redis-server on port {} did not start: {ping:?}",
                self.port
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// Runs `call` on another thread and returns its result, failing the test only if it has not
/// returned within `watchdog` (a hang). Never a timing assertion on how fast it was.
pub(crate) fn within<T: Send + 'static>(
    watchdog: Duration,
    call: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (sender, receiver) = mpsc::channel();
    let worker = thread::spawn(move || {
        let _ = sender.send(call());
    });
    match receiver.recv_timeout(watchdog) {
        Ok(value) => {
            let _ = worker.join();
            value
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the call hung for more than {watchdog:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            panic!("the call panicked: {:?}", worker.join().err())
        }
    }
}
