//! The Redis backend: [`CacheBackend`] over a Redis server (`redis://`, `rediss://`,
//! `unix://`), a Redis Cluster (`redis+cluster://`, see [`crate::redis_cluster`]) or the master a
//! set of Sentinels names (`redis+sentinel://`, see [`crate::redis_sentinel`]), through a small
//! pool of synchronous connections with bounded timeouts.

use std::{
    collections::HashMap,
    fmt, io,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use parking_lot::{Condvar, Mutex};
use redis::{Client, Connection, ConnectionLike, RedisError, Value, cluster::ClusterConnection};
use sessionkit_sdk::Capabilities;

use sessionkit_codec::redact_url;

use crate::{
    backend::{
        CacheBackend, CacheError, CacheOp, CacheReply, CacheStep, CacheWait, CompareAndSet,
        ValueWithTtl,
    },
    redis_cluster::{ClusterOptions, ClusterTarget},
    redis_ready::{ReadState, ReadyPool, Socket, parse_reply},
    redis_sentinel::SentinelTarget,
    redis_topology::{ClusterLocation, SentinelLocation},
};

/// Default time to open a connection (TCP connect, TLS, `AUTH`/`SELECT`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time one command may take to be sent and answered.
pub const DEFAULT_SOCKET_TIMEOUT: Duration = Duration::from_secs(2);
/// Default number of connections a backend keeps open at most.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
/// Default time a call waits for a free connection when all are in use.
pub const DEFAULT_POOL_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time the backend fails fast after a call timed out, before one call probes the
/// server again (see [`RedisBackend`]'s circuit breaker).
pub const DEFAULT_BREAKER_COOLDOWN: Duration = Duration::from_secs(1);
/// The longest TTL sent to Redis, in milliseconds (about 31,700 years). Redis refuses an
/// expiry whose absolute time overflows, so a record expiring later is kept this long (its
/// own `expire_date` still decides when it stops loading).
pub const MAX_TTL_MILLIS: u64 = 1_000_000_000_000_000;

/// The compare-and-set script of [`RedisBackend::replace_if_prefixed`]: `KEYS[1]` the key,
/// `ARGV[1]` the prefix the live value must begin with, `ARGV[2]` the new value, `ARGV[3]` its
/// TTL in milliseconds (`0`: remove the entry). Returns 1 when it wrote, 0 when no value is
/// stored, the stored value when it does not begin with the prefix. Redis runs a script as one
/// atomic step, so nothing can write between its `GET` and its `SET`.
pub const COMPARE_AND_SET_SCRIPT: &str = concat!(
    "local current = redis.call('GET', KEYS[1])\n",
    "if not current then\n",
    "  return 0\n",
    "end\n",
    "if string.sub(current, 1, #ARGV[1]) ~= ARGV[1] then\n",
    "  return current\n",
    "end\n",
    "if ARGV[3] == '0' then\n",
    "  redis.call('DEL', KEYS[1])\n",
    "else\n",
    "  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n",
    "end\n",
    "return 1",
);

/// The script of [`RedisBackend`]'s `get_with_ttl`: `KEYS[1]`'s value (nil when absent) and
/// its `PTTL`, read in one atomic step.
pub const GET_WITH_TTL_SCRIPT: &str =
    "return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}";

/// The SHA-1 of [`COMPARE_AND_SET_SCRIPT`], the name Redis caches it under (`EVALSHA`); the
/// Redis tests check it against the server's `SCRIPT LOAD`.
pub const COMPARE_AND_SET_SHA1: &str = "b8fedc22e3e1acf3bb21633b3316ea569de8a556";

/// How a Redis backend connects: timeouts and pool size, from the alias's `OPTIONS`.
///
/// Every operation is bounded: a server that does not answer gives
/// [`CacheError::Unavailable`] after [`socket_timeout`](Self::socket_timeout), never a hang.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisOptions {
    /// `OPTIONS["socket_connect_timeout"]` (seconds): time to open a connection.
    pub connect_timeout: Duration,
    /// `OPTIONS["socket_timeout"]` (seconds): time one command may take on the wire.
    pub socket_timeout: Duration,
    /// `OPTIONS["max_connections"]`: connections open at most (calls beyond wait).
    pub max_connections: usize,
    /// `OPTIONS["pool_timeout"]` (seconds): time a call waits for a free connection.
    pub pool_timeout: Duration,
}

impl Default for RedisOptions {
    /// 2 s timeouts and 16 connections.
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            socket_timeout: DEFAULT_SOCKET_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            pool_timeout: DEFAULT_POOL_TIMEOUT,
        }
    }
}

/// Django's `RedisCache` as a [`CacheBackend`]: one Redis server, pooled connections; or a
/// Redis Cluster ([`open_cluster`](Self::open_cluster)), or the master a set of Sentinels names
/// ([`open_sentinel`](Self::open_sentinel)), with the same pool, timeouts and breaker (the
/// differences are in [`crate::redis_cluster`] and [`crate::redis_sentinel`]).
///
/// - `add` is `SET key value PX ttl NX`, `set_if_present` is `SET … PX ttl XX` (an update never
///   brings back a deleted or expired entry), `set` is `SET … PX ttl`, `delete` is `DEL`,
///   `contains` is `EXISTS`; a zero TTL is a `DEL` (or an `EXISTS` for `add`), as the trait's
///   TTL rules say. TTLs are rounded up to whole milliseconds.
/// - `replace_if_prefixed` is one server-side Lua script ([`COMPARE_AND_SET_SCRIPT`]), sent by
///   `EVALSHA` and, on a server that has not cached it yet (`NOSCRIPT`), by `EVAL` on the same
///   connection: one round trip, and atomic because Redis runs nothing else during a script.
///   (`WATCH`/`MULTI` would take a `GET` plus a transaction, two or three round trips, and a
///   retry loop under contention.)
/// - Connections are opened on demand (opening the backend does not connect), kept for reuse,
///   and at most [`RedisOptions::max_connections`] exist at once. A connection that fails with
///   anything but an error reply from the server is dropped, along with every idle one (they
///   most likely point at the same dead server); a call whose reused connection turns out to be
///   closed is retried once on a new connection, so the first call after a server restart
///   succeeds. Every command here is safe to repeat, with one visible effect: if the old server
///   applied a `SET NX` just before dying, the retry reports the key as taken and the host
///   retries with a new key (the orphan expires by its TTL).
/// - Failures map in one function ([`map_redis_error`]): connection loss, timeouts, a busy
///   pool and the replies `OOM`, `MISCONF`, `READONLY`, `LOADING`, `MASTERDOWN`, `BUSY`,
///   `TRYAGAIN`, `CLUSTERDOWN` are [`CacheError::Unavailable`]; other error replies are
///   [`CacheError::Backend`]. Messages name the server (password redacted), never a key.
///
/// - A circuit breaker bounds what a hung server costs: the first call that times out (connect
///   or command, or a wait for a connection that outlasts the pool timeout) opens it, and for
///   the cool-down ([`DEFAULT_BREAKER_COOLDOWN`], see
///   [`with_breaker_cooldown`](Self::with_breaker_cooldown)) every call fails at once with
///   [`CacheError::Unavailable`] instead of waiting out its own timeout. After the cool-down
///   one call is let through as a probe while the others keep failing fast: if the server
///   answers (a reply, even an error reply) the breaker closes, otherwise it opens for another
///   cool-down. It opens on the first timeout, not after several, because the host's request
///   makes several calls (load, then save) and must never pay more than one timeout; a
///   refused connection fails fast by itself and does not open it.
///
/// Connections are opened on demand, so a server that is down when the backend opens only
/// makes the calls fail until it is back.
///
/// # Calls that do not block (one server: `redis://`, `unix://`)
///
/// [`CacheBackend::start`] runs an operation on a second pool, of non-blocking sockets
/// (the private `redis_ready` module): it sends the same command the blocking path sends (the same
/// `Request`, `EVALSHA` then `EVAL` on `NOSCRIPT`) and answers `Wait` on the socket until the
/// reply is whole, then reads it as the blocking path does. The rules around it are the
/// blocking path's:
///
/// - No idle socket: `Blocking`, nothing done. The next blocking call the server answers opens
///   one socket per such miss (connect, `AUTH`, `SELECT` within the connect timeout), up to
///   `max_connections` non-blocking sockets besides the blocking pool's.
/// - The breaker admits the call at `start` (an open breaker fails it at once) and hears its
///   outcome when it ends; a wait that times out (`resume` with `timed_out`) is a command
///   timeout: `Unavailable`, the breaker opens, the socket and the idle ones are dropped.
/// - A socket found closed before any byte of the reply (a server restart since it was
///   pooled) drops the idle ones and hands the operation back as `Blocking` from `resume`: the
///   blocking path retries it on a new connection, as it retries its own pooled ones.
/// - Any other I/O failure drops the socket and the idle ones; a reply that is not RESP or not
///   of the expected type drops the socket; neither panics. `cancel` drops the socket (its
///   reply may be in flight).
///
/// Cluster, Sentinel and TLS (`rediss://`) backends answer `Blocking` to every `start`.
pub struct RedisBackend {
    /// Where connections go: one server, a cluster, or the master the Sentinels name.
    target: Target,
    /// The URL with any password replaced, for messages.
    url: String,
    options: RedisOptions,
    idle: Mutex<Vec<RedisConnection>>,
    /// How many connections are checked out or being opened.
    busy: Mutex<usize>,
    freed: Condvar,
    breaker: Breaker,
    /// The non-blocking connections of calls that do not block (one server over TCP or a
    /// Unix socket only; see [`CacheBackend::start`]).
    ready: Option<ReadyPool>,
    /// Operations started without blocking that wait for their socket, by ticket.
    in_flight: Mutex<HashMap<u64, InFlight>>,
    next_ticket: AtomicU64,
}

impl RedisBackend {
    /// A backend for the server at `url` (`redis://[[user]:password@]host[:port][/db]`,
    /// `rediss://…` for TLS, `unix:///path/to/socket[?db=N]`). Does not connect.
    ///
    /// # Errors
    ///
    /// The reason `url` is not a usable Redis URL (without the URL's password).
    pub fn open(url: &str, options: RedisOptions) -> Result<Self, String> {
        if options.max_connections == 0 {
            return Err("max_connections must be at least 1".to_owned());
        }
        let (client, db) = server_client(url)?;
        Ok(Self::with_target(
            Target::Server { client, db },
            redact_url(url),
            options,
        ))
    }

    /// A backend for the Redis Cluster at `location` (seed nodes; the rest of the cluster is
    /// discovered from them). Does not connect. See [`crate::redis_cluster`] for how slots,
    /// redirections and failovers are followed.
    ///
    /// # Errors
    ///
    /// The reason the seed URLs are not usable (without the password).
    pub fn open_cluster(
        location: &ClusterLocation,
        options: RedisOptions,
        cluster: ClusterOptions,
    ) -> Result<Self, String> {
        if options.max_connections == 0 {
            return Err("max_connections must be at least 1".to_owned());
        }
        let target = ClusterTarget::open(location, &options, cluster)?;
        Ok(Self::with_target(
            Target::Cluster(target),
            location.redacted(),
            options,
        ))
    }

    /// A backend for the master the Sentinels at `location` name for its service. Does not
    /// connect; every new connection asks the Sentinels again, so writes follow a failover.
    ///
    /// # Errors
    ///
    /// The reason the location is not usable (without the password).
    pub fn open_sentinel(
        location: &SentinelLocation,
        options: RedisOptions,
    ) -> Result<Self, String> {
        if options.max_connections == 0 {
            return Err("max_connections must be at least 1".to_owned());
        }
        let target = SentinelTarget::open(location)?;
        Ok(Self::with_target(
            Target::Sentinel(target),
            location.redacted(),
            options,
        ))
    }

    fn with_target(target: Target, url: String, options: RedisOptions) -> Self {
        let ready = match &target {
            Target::Server { client, db } => ReadyPool::for_client(
                client,
                *db,
                options.max_connections,
                options.connect_timeout,
            ),
            Target::Cluster(_) | Target::Sentinel(_) => None,
        };
        Self {
            ready,
            in_flight: Mutex::new(HashMap::new()),
            next_ticket: AtomicU64::new(1),
            target,
            url,
            options,
            idle: Mutex::new(Vec::new()),
            busy: Mutex::new(0),
            freed: Condvar::new(),
            breaker: Breaker::new(DEFAULT_BREAKER_COOLDOWN),
        }
    }

    /// This backend with a circuit-breaker cool-down other than [`DEFAULT_BREAKER_COOLDOWN`]
    /// (how long calls fail fast after a timeout before one probes the server).
    #[must_use]
    pub fn with_breaker_cooldown(mut self, cooldown: Duration) -> Self {
        self.breaker = Breaker::new(cooldown);
        self
    }

    /// Whether the circuit breaker currently fails calls fast (open, or a probe in flight).
    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// The server's URL with any password replaced by `***`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The timeouts and pool size this backend uses.
    pub fn options(&self) -> RedisOptions {
        self.options
    }

    /// How many open connections wait in the pool for reuse (tests check that broken ones are
    /// dropped).
    pub fn idle_connections(&self) -> usize {
        self.idle.lock().len()
    }

    /// How many non-blocking connections wait for reuse by calls that do not block (tests
    /// check the blocking path opens them and failures drop them).
    pub fn idle_ready_connections(&self) -> usize {
        self.ready.as_ref().map_or(0, ReadyPool::idle_count)
    }

    /// Checks that the server answers (`PING`), e.g. at start-up.
    ///
    /// # Errors
    ///
    /// As any operation: [`CacheError::Unavailable`] when the server cannot be reached.
    pub fn ping(&self) -> Result<(), CacheError> {
        self.run(|con| redis::cmd("PING").query::<String>(con).map(drop))
    }

    /// Runs `command` on a pooled connection, with the backend's timeouts, pool rules and error
    /// mapping: for benchmarks comparing raw commands on the same connections, and for tests
    /// that need a command the trait does not have. `command` may run twice (see the retry
    /// rule on [`RedisBackend`]), so it must be safe to repeat.
    ///
    /// # Errors
    ///
    /// `command`'s error, mapped as every operation's.
    pub fn with_connection<T>(
        &self,
        command: impl Fn(&mut RedisConnection) -> redis::RedisResult<T>,
    ) -> Result<T, CacheError> {
        self.run(command)
    }

    /// The circuit breaker and the pool's rules around one command (see [`RedisBackend`]).
    fn run<T>(
        &self,
        command: impl Fn(&mut RedisConnection) -> redis::RedisResult<T>,
    ) -> Result<T, CacheError> {
        let ticket = self
            .breaker
            .admit(Instant::now())
            .map_err(|refusal| self.refused(refusal))?;
        let slot = match self.acquire_slot() {
            Ok(slot) => slot,
            Err(error) => {
                // Every connection stayed busy for the pool timeout: they are all stuck on a
                // server that does not answer (its commands take microseconds), so this wait
                // counts as a timeout and opens the breaker.
                ticket.settle(
                    self.target.breaker_outcome(Outcome::TimedOut),
                    Instant::now(),
                );
                return Err(error);
            }
        };
        // Another call may have timed out while this one waited for a connection.
        if !ticket.is_probe() && self.breaker.is_open() {
            let refusal = self.breaker.refusal(Instant::now());
            ticket.settle(Outcome::Skipped, Instant::now());
            return Err(self.refused(refusal));
        }
        let result = self.run_on_slot(&command);
        let outcome = match &result {
            Ok(_) => Outcome::Answered,
            Err(failure) => failure.outcome,
        };
        // Settled before the slot is given back, so a caller waiting for it sees the breaker
        // this call opened.
        ticket.settle(outcome, Instant::now());
        drop(slot);
        // The server answers: open a non-blocking connection if calls lately found none.
        if outcome == Outcome::Answered
            && let Some(ready) = &self.ready
        {
            ready.top_up();
        }
        result.map_err(|failure| failure.error)
    }

    /// The error for a call the breaker did not let through.
    fn refused(&self, refusal: Refusal) -> CacheError {
        CacheError::Unavailable(match refusal {
            Refusal::CoolingDown(left) => format!(
                "Redis at {} timed out recently; failing fast for {left:?} more (circuit \
                 breaker), then one call probes it",
                self.url
            ),
            Refusal::Probing => format!(
                "Redis at {} timed out recently; failing fast while one call probes it \
                 (circuit breaker)",
                self.url
            ),
        })
    }

    /// The pool's rules around one command, on a connection place the call holds.
    fn run_on_slot<T>(
        &self,
        command: &impl Fn(&mut RedisConnection) -> redis::RedisResult<T>,
    ) -> Result<T, Failure> {
        let pooled = self.idle.lock().pop();
        let reused = pooled.is_some();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => self.connect()?,
        };
        match command(&mut connection) {
            Ok(value) => {
                self.release(connection);
                Ok(value)
            }
            Err(error) if is_error_reply(&error) && !self.target.abandons(&error) => {
                self.release(connection);
                Err(self.failure(error))
            }
            Err(error) => {
                drop(connection);
                self.idle.lock().clear();
                // A connection that sat in the pool may have been closed by a server restart (or
                // point at a master that failed over): one retry on a new connection (every
                // command here may be repeated; see the type's docs). A timeout is not retried:
                // the caller has already waited once.
                if is_timeout(&error) || !self.target.retries_on_fresh(reused, &error) {
                    return Err(self.failure(error));
                }
                let mut fresh = self.connect()?;
                match command(&mut fresh) {
                    Ok(value) => {
                        self.release(fresh);
                        Ok(value)
                    }
                    Err(error) => {
                        if is_error_reply(&error) && !self.target.abandons(&error) {
                            self.release(fresh);
                        }
                        Err(self.failure(error))
                    }
                }
            }
        }
    }

    /// A command's error, mapped, with what it says about the server.
    fn failure(&self, error: RedisError) -> Failure {
        let outcome = self.target.breaker_outcome(Outcome::of(&error));
        Failure {
            error: map_redis_error(&self.url, &self.options, error),
            outcome,
        }
    }

    /// Waits (at most `pool_timeout`) until fewer than `max_connections` are in use, and takes
    /// one place.
    fn acquire_slot(&self) -> Result<Slot<'_>, CacheError> {
        let mut busy = self.busy.lock();
        if *busy >= self.options.max_connections {
            let deadline = std::time::Instant::now() + self.options.pool_timeout;
            while *busy >= self.options.max_connections {
                if self.freed.wait_until(&mut busy, deadline).timed_out()
                    && *busy >= self.options.max_connections
                {
                    return Err(CacheError::Unavailable(format!(
                        "all {} connections to Redis at {} stayed busy for {:?}",
                        self.options.max_connections, self.url, self.options.pool_timeout
                    )));
                }
            }
        }
        *busy += 1;
        Ok(Slot { backend: self })
    }

    /// Opens a connection to wherever the target says, within its timeouts.
    fn connect(&self) -> Result<RedisConnection, Failure> {
        match &self.target {
            Target::Server { client, db } => self
                .connect_server(client, *db, &self.url)
                .map(RedisConnection::Server),
            Target::Cluster(cluster) => cluster
                .connect(&self.options)
                .map(|connection| RedisConnection::Cluster(Box::new(connection)))
                .map_err(|error| Failure {
                    outcome: self.target.breaker_outcome(Outcome::of(&error)),
                    error: if is_error_reply(&error)
                        || error.kind() == redis::ErrorKind::AuthenticationFailed
                    {
                        map_redis_error(&self.url, &self.options, error)
                    } else {
                        CacheError::Unavailable(format!(
                            "cannot connect to the Redis Cluster at {}: {error}",
                            self.url
                        ))
                    },
                }),
            Target::Sentinel(sentinel) => {
                let master = sentinel
                    .resolve_master(&self.options)
                    .map_err(|reason| Failure {
                        error: CacheError::Unavailable(format!(
                            "no Sentinel at {} named a reachable master: {reason}",
                            self.url
                        )),
                        outcome: Outcome::Failed,
                    })?;
                let mut connection = self.connect_server(&master.client, master.db, &self.url)?;
                match crate::redis_sentinel::is_master(&mut connection) {
                    Ok(true) => Ok(RedisConnection::Server(connection)),
                    Ok(false) => Err(Failure {
                        error: CacheError::Unavailable(format!(
                            "the Sentinels at {} name a server that is not a master (a \
                             failover is under way)",
                            self.url
                        )),
                        outcome: Outcome::Failed,
                    }),
                    Err(error) => Err(self.failure(error)),
                }
            }
        }
    }

    /// Opens a connection to one server within the connect timeout (TCP, TLS, `AUTH`,
    /// `SELECT`), and sets the command timeouts on it. `url` names it in messages.
    fn connect_server(&self, client: &Client, db: i64, url: &str) -> Result<Connection, Failure> {
        let started = Instant::now();
        let timed_out = || Failure {
            error: CacheError::Unavailable(format!(
                "cannot connect to Redis at {url} within {:?}",
                self.options.connect_timeout
            )),
            outcome: Outcome::TimedOut,
        };
        let mut connection = client
            .get_connection_with_timeout(self.options.connect_timeout)
            .map_err(|error| {
                if is_timeout(&error) {
                    return timed_out();
                }
                let outcome = Outcome::of(&error);
                let error = if is_error_reply(&error)
                    || error.kind() == redis::ErrorKind::AuthenticationFailed
                {
                    map_redis_error(url, &self.options, error)
                } else {
                    CacheError::Unavailable(format!("cannot connect to Redis at {url}: {error}"))
                };
                Failure { error, outcome }
            })?;
        if db != 0 {
            let left = self
                .options
                .connect_timeout
                .checked_sub(started.elapsed())
                .filter(|left| !left.is_zero())
                .ok_or_else(timed_out)?;
            connection
                .set_read_timeout(Some(left))
                .and_then(|()| connection.set_write_timeout(Some(left)))
                .and_then(|()| redis::cmd("SELECT").arg(db).query::<()>(&mut connection))
                .map_err(|error| {
                    if is_timeout(&error) {
                        timed_out()
                    } else {
                        self.failure(error)
                    }
                })?;
        }
        let timeout = Some(self.options.socket_timeout);
        connection
            .set_read_timeout(timeout)
            .and_then(|()| connection.set_write_timeout(timeout))
            .map_err(|error| self.failure(error))?;
        Ok(connection)
    }

    /// Puts a healthy connection back for reuse.
    fn release(&self, connection: RedisConnection) {
        if connection.is_open() {
            self.idle.lock().push(connection);
        }
    }

    /// Runs `op` the blocking way: its request on a pooled connection, its reply read as
    /// [`Request::read`] reads it (the non-blocking path reads it the same way).
    fn perform(&self, op: Op<'_>) -> Result<CacheReply, CacheError> {
        let request = Request::of(op);
        self.run(|con| request.query(con))
    }

    /// The ticket-free part of [`CacheBackend::start`] and `resume`: writes what is left of
    /// the call's command, reads what the server sent, and finishes the call once its reply
    /// is whole.
    fn proceed(&self, ready: &ReadyPool, mut call: InFlight) -> CacheStep {
        if call.sent < call.out.len() {
            match call.socket.write_some(&call.out[call.sent..]) {
                Ok(written) => call.sent += written,
                Err(error) => return self.lost(ready, call, error),
            }
            if call.sent < call.out.len() {
                return self.park(call, false);
            }
            // The whole command just went out: its reply cannot be back yet, so wait for it
            // instead of spending a read that finds nothing.
            return self.park(call, true);
        }
        let closed = match call.socket.read_available(&mut call.input) {
            Ok(state) => state == ReadState::Closed,
            Err(error) => return self.lost(ready, call, error),
        };
        let value = match parse_reply(&call.input) {
            Ok(Some(value)) => value,
            Ok(None) if closed => {
                return self.lost(ready, call, io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            Ok(None) => return self.park(call, true),
            Err(error) => {
                // Not RESP: the connection is out of step (or not Redis); never reused.
                ready.discard(call.socket);
                return self.finish(call.probe, Err(self.failure(error)));
            }
        };
        if let Value::ServerError(error) = &value
            && error.kind() == Some(redis::ServerErrorKind::NoScript)
            && !closed
            && let Some(fallback) = call.fallback.take()
        {
            // The script is not cached on the server yet: EVAL it on the same connection, as
            // the blocking path does.
            call.out = fallback;
            call.sent = 0;
            call.input.clear();
            return self.proceed(ready, call);
        }
        let result = value
            .extract_error()
            .and_then(|value| call.reading.read(value));
        let in_step = match &result {
            Ok(_) => true,
            Err(error) => is_error_reply(error),
        };
        if in_step && !closed {
            ready.give_back(call.socket);
        } else {
            ready.discard(call.socket);
        }
        self.finish(call.probe, result.map_err(|error| self.failure(error)))
    }

    /// Ends a call whose connection failed with `error`: drops it and the idle ones (as the
    /// blocking path does). A connection closed before any byte of the reply (a server restart
    /// since it was pooled) gives the call back to the blocking path, which retries it once on
    /// a new connection as it retries its own pooled ones.
    fn lost(&self, ready: &ReadyPool, call: InFlight, error: io::Error) -> CacheStep {
        ready.discard(call.socket);
        ready.discard_idle();
        let error = RedisError::from(error);
        if call.input.is_empty() && !is_timeout(&error) && error.is_connection_dropped() {
            self.breaker.abandon(call.probe);
            return CacheStep::Blocking;
        }
        self.finish(call.probe, Err(self.failure(error)))
    }

    /// Settles the breaker with how the call went and answers it.
    fn finish(&self, probe: bool, result: Result<CacheReply, Failure>) -> CacheStep {
        let outcome = match &result {
            Ok(_) => Outcome::Answered,
            Err(failure) => failure.outcome,
        };
        self.breaker.record(probe, outcome, Instant::now());
        CacheStep::Done(result.map_err(|failure| failure.error))
    }

    /// Keeps `call` until its socket is ready to read (`readable`) or write.
    fn park(&self, call: InFlight, readable: bool) -> CacheStep {
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let fd = call.socket.fd();
        self.in_flight.lock().insert(ticket, call);
        CacheStep::Wait(CacheWait {
            fd,
            readable,
            timeout_ms: u64::try_from(self.options.socket_timeout.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            ticket,
        })
    }
}

/// One [`CacheBackend`] operation, borrowed: what [`Request::of`] turns into Redis commands.
#[derive(Debug, Clone, Copy)]
enum Op<'a> {
    Get(&'a str),
    GetWithTtl(&'a str),
    Contains(&'a str),
    Add(&'a str, &'a [u8], Duration),
    SetIfPresent(&'a str, &'a [u8], Duration),
    Set(&'a str, &'a [u8], Duration),
    ReplaceIfPrefixed(&'a str, &'a [u8], &'a [u8], Duration),
    Delete(&'a str),
}

impl<'a> From<&'a CacheOp> for Op<'a> {
    fn from(op: &'a CacheOp) -> Self {
        match op {
            CacheOp::Get(key) => Self::Get(key),
            CacheOp::GetWithTtl(key) => Self::GetWithTtl(key),
            CacheOp::Contains(key) => Self::Contains(key),
            CacheOp::Add(key, value, ttl) => Self::Add(key, value, *ttl),
            CacheOp::SetIfPresent(key, value, ttl) => Self::SetIfPresent(key, value, *ttl),
            CacheOp::Set(key, value, ttl) => Self::Set(key, value, *ttl),
            CacheOp::ReplaceIfPrefixed(key, prefix, value, ttl) => {
                Self::ReplaceIfPrefixed(key, prefix, value, *ttl)
            }
            CacheOp::Delete(key) => Self::Delete(key),
        }
    }
}

/// The Redis command of one operation, the command to send instead when the server answers
/// `NOSCRIPT`, and how to read the reply: the one description both paths send and read.
#[derive(Debug)]
struct Request {
    command: redis::Cmd,
    fallback: Option<redis::Cmd>,
    reading: Reading,
}

impl Request {
    /// See [`RedisBackend`] for the command of each operation.
    fn of(op: Op<'_>) -> Self {
        let plain = |command: redis::Cmd, reading| Self {
            command,
            fallback: None,
            reading,
        };
        let del = |key: &str| {
            let mut command = redis::cmd("DEL");
            command.arg(key);
            command
        };
        match op {
            Op::Get(key) => plain(redis::cmd("GET").arg(key).clone(), Reading::Value),
            Op::GetWithTtl(key) => plain(
                redis::cmd("EVAL")
                    .arg(GET_WITH_TTL_SCRIPT)
                    .arg(1)
                    .arg(key)
                    .clone(),
                Reading::ValueWithTtl,
            ),
            Op::Contains(key) => plain(redis::cmd("EXISTS").arg(key).clone(), Reading::Positive),
            // Stored and expired at once: it "succeeds" exactly when the key is free.
            Op::Add(key, _, ttl) if ttl.is_zero() => {
                plain(redis::cmd("EXISTS").arg(key).clone(), Reading::Zero)
            }
            Op::Add(key, value, ttl) => plain(set(key, value, ttl, Some("NX")), Reading::NotNil),
            Op::SetIfPresent(key, _, ttl) if ttl.is_zero() => plain(del(key), Reading::Positive),
            Op::SetIfPresent(key, value, ttl) => {
                plain(set(key, value, ttl, Some("XX")), Reading::NotNil)
            }
            Op::Set(key, _, ttl) if ttl.is_zero() => plain(del(key), Reading::Deleted),
            Op::Set(key, value, ttl) => plain(set(key, value, ttl, None), Reading::Stored),
            Op::ReplaceIfPrefixed(key, prefix, value, ttl) => {
                let millis = if ttl.is_zero() { 0 } else { ttl_millis(ttl) };
                let invoke = |command: &str, script: &str| {
                    redis::cmd(command)
                        .arg(script)
                        .arg(1)
                        .arg(key)
                        .arg(prefix)
                        .arg(value)
                        .arg(millis)
                        .clone()
                };
                Self {
                    command: invoke("EVALSHA", COMPARE_AND_SET_SHA1),
                    fallback: Some(invoke("EVAL", COMPARE_AND_SET_SCRIPT)),
                    reading: Reading::CompareAndSet,
                }
            }
            Op::Delete(key) => plain(del(key), Reading::Positive),
        }
    }

    /// Sends the request on a blocking connection and reads its reply (the fallback on
    /// `NOSCRIPT`).
    fn query(&self, con: &mut RedisConnection) -> redis::RedisResult<CacheReply> {
        let value = match self.command.query::<Value>(con) {
            Err(error)
                if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
            {
                match &self.fallback {
                    Some(fallback) => fallback.query::<Value>(con)?,
                    None => return Err(error),
                }
            }
            other => other?,
        };
        self.reading.read(value)
    }
}

/// `SET key value PX ttl [condition]`.
fn set(key: &str, value: &[u8], ttl: Duration, condition: Option<&str>) -> redis::Cmd {
    let mut command = redis::cmd("SET");
    command.arg(key).arg(value).arg("PX").arg(ttl_millis(ttl));
    if let Some(condition) = condition {
        command.arg(condition);
    }
    command
}

/// How a reply (already free of error replies) reads as a [`CacheReply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// A bulk string or nil: `get`.
    Value,
    /// `[value or nil, PTTL]`: `get_with_ttl`.
    ValueWithTtl,
    /// An integer, `true` when positive (`EXISTS`, `DEL`).
    Positive,
    /// An integer, `true` when zero (`add` with a zero TTL: the key is free).
    Zero,
    /// `true` unless nil (`SET … NX`/`XX`).
    NotNil,
    /// Anything: `set` stored.
    Stored,
    /// An integer: `set` with a zero TTL deleted.
    Deleted,
    /// The compare-and-set script's 1, 0 or current value.
    CompareAndSet,
}

impl Reading {
    fn read(self, reply: Value) -> redis::RedisResult<CacheReply> {
        let count = |reply| redis::from_redis_value::<i64>(reply);
        Ok(match self {
            Self::Value => CacheReply::Value(redis::from_redis_value(reply)?),
            Self::ValueWithTtl => {
                let (value, pttl): (Option<Vec<u8>>, i64) = redis::from_redis_value(reply)?;
                // PTTL: -1 no expiry (-2, no key, only comes with no value).
                let ttl = u64::try_from(pttl).ok().map(Duration::from_millis);
                CacheReply::ValueWithTtl(value.map(|value| (value, ttl)))
            }
            Self::Positive => CacheReply::Flag(count(reply)? > 0),
            Self::Zero => CacheReply::Flag(count(reply)? <= 0),
            Self::NotNil => CacheReply::Flag(reply != Value::Nil),
            Self::Stored => CacheReply::Stored,
            Self::Deleted => {
                count(reply)?;
                CacheReply::Stored
            }
            Self::CompareAndSet => CacheReply::CompareAndSet(match reply {
                Value::Int(1) => CompareAndSet::Replaced,
                Value::Int(0) => CompareAndSet::Missing,
                Value::BulkString(current) => CompareAndSet::Mismatch(current),
                other => {
                    return Err(RedisError::from((
                        redis::ErrorKind::UnexpectedReturnType,
                        "unexpected reply to the compare-and-set script",
                        reply_kind(&other).to_owned(),
                    )));
                }
            }),
        })
    }
}

/// An operation started without blocking, waiting for its socket.
struct InFlight {
    socket: Socket,
    /// The packed command being sent, and how much of it is sent.
    out: Vec<u8>,
    sent: usize,
    /// The reply read so far.
    input: Vec<u8>,
    /// The packed `EVAL` to send on `NOSCRIPT`, until it is sent.
    fallback: Option<Vec<u8>>,
    reading: Reading,
    /// Whether the breaker let the call through as its probe.
    probe: bool,
}

/// A client for one server's `url`, and the database the URL selects (`SELECT`ed by the
/// backend itself within the connect timeout).
///
/// redis-rs pipelines its handshake (AUTH or HELLO, SELECT, two CLIENT SETINFO) and waits out
/// the read timeout once per reply, so a hung server cost up to 4 × the connect timeout. The
/// client's handshake is kept to the one AUTH/HELLO, without the informational SETINFO.
pub(crate) fn server_client(url: &str) -> Result<(Client, i64), String> {
    if url.starts_with("rediss://") {
        // redis's rustls needs a process-wide crypto provider; ring is the one built in.
        // An error only means one is already installed, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let client = Client::open(url).map_err(|error| error.to_string())?;
    let info = client.get_connection_info().clone();
    let db = info.redis_settings().db();
    let handshake = info
        .redis_settings()
        .clone()
        .set_skip_set_lib_name()
        .set_db(0);
    let client =
        Client::open(info.set_redis_settings(handshake)).map_err(|error| error.to_string())?;
    Ok((client, db))
}

/// Where a [`RedisBackend`]'s connections go.
enum Target {
    /// One server (`redis://`, `rediss://`, `unix://`).
    Server {
        client: Client,
        /// The database the URL selects; `SELECT`ed by `connect_server` itself.
        db: i64,
    },
    /// A Redis Cluster: each pooled connection is a cluster connection (one socket per node).
    Cluster(ClusterTarget),
    /// The master the Sentinels name, asked again for every new connection.
    Sentinel(SentinelTarget),
}

impl Target {
    /// Whether an error reply means the connection points at the wrong server, so it is
    /// dropped (with the idle ones) and the call retried once on a new connection: `READONLY`
    /// from a master the Sentinels have demoted. (A cluster connection follows `READONLY` and
    /// `MOVED` itself.)
    fn abandons(&self, error: &RedisError) -> bool {
        matches!(self, Self::Sentinel(_)) && error.code() == Some("READONLY")
    }

    /// Whether a call that failed on its connection (not a timeout) is retried once on a new
    /// one. One server: only a pooled connection the server closed (a restart). A cluster: any
    /// failure on a pooled connection, since its slot map may predate a failover (a new
    /// connection reads the map again). Sentinel: a pooled connection that was closed, or a
    /// demoted master (`READONLY`); the new connection asks the Sentinels again.
    fn retries_on_fresh(&self, reused: bool, error: &RedisError) -> bool {
        match self {
            Self::Server { .. } => reused && error.is_connection_dropped(),
            Self::Cluster(_) => reused && !is_error_reply(error),
            Self::Sentinel(_) => (reused && error.is_connection_dropped()) || self.abandons(error),
        }
    }

    /// What an outcome tells the circuit breaker. On a cluster a timeout is one node's (the
    /// others keep serving their slots), so it does not open the breaker for every slot: each
    /// call stays bounded by its own timeouts.
    fn breaker_outcome(&self, outcome: Outcome) -> Outcome {
        match (self, outcome) {
            (Self::Cluster(_), Outcome::TimedOut) => Outcome::Failed,
            _ => outcome,
        }
    }
}

/// One pooled connection: to one server, or to a whole cluster (one socket per node, routed
/// by hash slot). [`RedisBackend::with_connection`] hands it out; any `redis` command runs on it.
pub enum RedisConnection {
    /// A connection to one server (also the Sentinels' master).
    Server(Connection),
    /// A cluster connection: commands go to the node serving their key's slot.
    Cluster(Box<ClusterConnection>),
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<Value> {
        match self {
            Self::Server(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<Value>> {
        match self {
            Self::Server(connection) => connection.req_packed_commands(cmd, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(cmd, offset, count),
        }
    }

    fn req_command(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<Value> {
        match self {
            Self::Server(connection) => connection.req_command(cmd),
            Self::Cluster(connection) => connection.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Server(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }

    fn supports_pipelining(&self) -> bool {
        match self {
            Self::Server(connection) => connection.supports_pipelining(),
            Self::Cluster(connection) => connection.supports_pipelining(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Self::Server(connection) => connection.check_connection(),
            Self::Cluster(connection) => connection.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Self::Server(connection) => connection.is_open(),
            Self::Cluster(connection) => connection.is_open(),
        }
    }
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Server(_) => "RedisConnection::Server",
            Self::Cluster(_) => "RedisConnection::Cluster",
        })
    }
}

/// A failed call: the error for the caller, and what it tells the breaker.
struct Failure {
    error: CacheError,
    outcome: Outcome,
}

/// What one call learned about the server, for the circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The server replied (a value or an error reply): it is alive.
    Answered,
    /// Connecting or the command ran out of time: the server may be hung.
    TimedOut,
    /// Any other failure (refused, reset): cheap, says nothing about a hang.
    Failed,
    /// The call never reached the server.
    Skipped,
}

impl Outcome {
    fn of(error: &RedisError) -> Self {
        if is_error_reply(error) || error.kind() == redis::ErrorKind::AuthenticationFailed {
            Self::Answered
        } else if is_timeout(error) {
            Self::TimedOut
        } else {
            Self::Failed
        }
    }
}

/// The circuit breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BreakerState {
    /// Calls go through.
    Closed,
    /// A call timed out: calls fail fast until `until`.
    Open { until: Instant },
    /// The cool-down passed and one call is probing the server; the others fail fast.
    Probing,
}

/// Why the breaker refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Open, for this much longer.
    CoolingDown(Duration),
    /// Another call is probing the server.
    Probing,
}

/// Fails calls fast after a timeout, for a cool-down, then lets one probe through (see
/// [`RedisBackend`]).
struct Breaker {
    cooldown: Duration,
    state: Mutex<BreakerState>,
}

impl Breaker {
    fn new(cooldown: Duration) -> Self {
        Self {
            cooldown,
            state: Mutex::new(BreakerState::Closed),
        }
    }

    /// Lets a call through (as the probe if the cool-down just ended), or refuses it.
    fn admit(&self, now: Instant) -> Result<Ticket<'_>, Refusal> {
        let mut state = self.state.lock();
        let probe = match *state {
            BreakerState::Closed => false,
            BreakerState::Open { until } if now >= until => {
                *state = BreakerState::Probing;
                true
            }
            BreakerState::Open { until } => return Err(Refusal::CoolingDown(until - now)),
            BreakerState::Probing => return Err(Refusal::Probing),
        };
        Ok(Ticket {
            breaker: self,
            probe,
            settled: false,
        })
    }

    fn is_open(&self) -> bool {
        *self.state.lock() != BreakerState::Closed
    }

    /// The refusal a call would get now (for a call that waited while the breaker opened).
    fn refusal(&self, now: Instant) -> Refusal {
        match *self.state.lock() {
            BreakerState::Open { until } => {
                Refusal::CoolingDown(until.saturating_duration_since(now))
            }
            BreakerState::Closed | BreakerState::Probing => Refusal::Probing,
        }
    }

    /// Gives up a call that ends without telling anything about the server (cancelled, or
    /// handed to the blocking path): a probe gives its turn to the next call at once.
    fn abandon(&self, probe: bool) {
        let mut state = self.state.lock();
        if probe && *state == BreakerState::Probing {
            *state = BreakerState::Open {
                until: Instant::now(),
            };
        }
    }

    fn record(&self, probe: bool, outcome: Outcome, now: Instant) {
        let mut state = self.state.lock();
        let open = BreakerState::Open {
            until: now + self.cooldown,
        };
        match (outcome, probe) {
            // Any call's timeout opens it (or restarts the cool-down).
            (Outcome::TimedOut, _) => *state = open,
            // Only the probe's answer closes it: an ordinary call that got its reply may have
            // been sent before the server hung.
            (Outcome::Answered, true) => *state = BreakerState::Closed,
            // A probe that failed otherwise (refused: the server is not back) keeps it open.
            (Outcome::Failed | Outcome::Skipped, true) => *state = open,
            (Outcome::Answered | Outcome::Failed | Outcome::Skipped, false) => {}
        }
    }
}

/// A call the breaker let through; reports how it went (a probe that unwinds without
/// reporting counts as failed, so the breaker never stays stuck probing).
struct Ticket<'a> {
    breaker: &'a Breaker,
    probe: bool,
    settled: bool,
}

impl Ticket<'_> {
    fn is_probe(&self) -> bool {
        self.probe
    }

    /// Whether this is the probe, for a call that settles later by itself (a call that does
    /// not block records its outcome, or abandons it, when it ends).
    fn detach(mut self) -> bool {
        self.settled = true;
        self.probe
    }

    fn settle(mut self, outcome: Outcome, now: Instant) {
        self.settled = true;
        self.breaker.record(self.probe, outcome, now);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker
                .record(self.probe, Outcome::Failed, Instant::now());
        }
    }
}

/// A place among the `max_connections`, given back when dropped (whatever happened).
struct Slot<'a> {
    backend: &'a RedisBackend,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.backend.busy.lock() -= 1;
        self.backend.freed.notify_one();
    }
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("url", &self.url)
            .field("options", &self.options)
            .field("breaker", &*self.breaker.state.lock())
            .finish_non_exhaustive()
    }
}

/// The error for a reply of another kind than the operation's (a bug, never a panic).
fn mismatched(reply: &CacheReply) -> CacheError {
    CacheError::Backend(format!(
        "internal error: an operation was answered as a {}",
        reply.kind()
    ))
}

impl CacheBackend for RedisBackend {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        match self.perform(Op::Get(key))? {
            CacheReply::Value(value) => Ok(value),
            other => Err(mismatched(&other)),
        }
    }

    fn contains(&self, key: &str) -> Result<bool, CacheError> {
        match self.perform(Op::Contains(key))? {
            CacheReply::Flag(found) => Ok(found),
            other => Err(mismatched(&other)),
        }
    }

    fn add(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        match self.perform(Op::Add(key, value, ttl))? {
            CacheReply::Flag(added) => Ok(added),
            other => Err(mismatched(&other)),
        }
    }

    fn set_if_present(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        match self.perform(Op::SetIfPresent(key, value, ttl))? {
            CacheReply::Flag(replaced) => Ok(replaced),
            other => Err(mismatched(&other)),
        }
    }

    fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        match self.perform(Op::Set(key, value, ttl))? {
            CacheReply::Stored => Ok(()),
            other => Err(mismatched(&other)),
        }
    }

    fn replace_if_prefixed(
        &self,
        key: &str,
        expected_prefix: &[u8],
        value: &[u8],
        ttl: Duration,
    ) -> Result<CompareAndSet, CacheError> {
        match self.perform(Op::ReplaceIfPrefixed(key, expected_prefix, value, ttl))? {
            CacheReply::CompareAndSet(outcome) => Ok(outcome),
            other => Err(mismatched(&other)),
        }
    }

    fn delete(&self, key: &str) -> Result<bool, CacheError> {
        match self.perform(Op::Delete(key))? {
            CacheReply::Flag(found) => Ok(found),
            other => Err(mismatched(&other)),
        }
    }

    /// `GET` and `PTTL` in one script ([`GET_WITH_TTL_SCRIPT`]): one round trip and one reply
    /// (so one socket timeout at most, as every other call), and the TTL is the value's.
    fn get_with_ttl(&self, key: &str) -> Result<Option<ValueWithTtl>, CacheError> {
        match self.perform(Op::GetWithTtl(key))? {
            CacheReply::ValueWithTtl(entry) => Ok(entry),
            other => Err(mismatched(&other)),
        }
    }

    /// Django shares Redis: sessions are stored as Django's `RedisCache` stores them.
    fn stores_django_values(&self) -> bool {
        true
    }

    /// `SHARED_BETWEEN_PROCESSES`: every process pointed at the server sees the same sessions.
    /// Not `PERSISTENT`: that depends on the server's RDB/AOF configuration.
    fn capabilities(&self) -> Capabilities {
        Capabilities::SHARED_BETWEEN_PROCESSES
    }

    fn execute(&self, op: CacheOp) -> Result<CacheReply, CacheError> {
        self.perform(Op::from(&op))
    }

    /// One server over TCP or a Unix socket, without TLS (not a cluster, not Sentinel).
    fn readiness_calls(&self) -> bool {
        self.ready.is_some()
    }

    /// Sends the operation's command on an idle non-blocking connection and waits for its
    /// reply; `Blocking` when none is idle (the blocking path then opens one, up to
    /// `max_connections`), an error at once when the breaker is open.
    fn start(&self, op: CacheOp) -> CacheStep {
        let Some(ready) = &self.ready else {
            return CacheStep::Blocking;
        };
        let Some(socket) = ready.take() else {
            return CacheStep::Blocking;
        };
        let probe = match self.breaker.admit(Instant::now()) {
            Ok(ticket) => ticket.detach(),
            Err(refusal) => {
                ready.give_back(socket);
                return CacheStep::Done(Err(self.refused(refusal)));
            }
        };
        let request = Request::of(Op::from(&op));
        let call = InFlight {
            socket,
            out: request.command.get_packed_command(),
            sent: 0,
            input: Vec::new(),
            fallback: request.fallback.map(|command| command.get_packed_command()),
            reading: request.reading,
            probe,
        };
        self.proceed(ready, call)
    }

    /// A timeout ends the call as a blocking timeout does: `Unavailable`, the breaker opened,
    /// the connection (and the idle ones) dropped.
    fn resume(&self, ticket: u64, timed_out: bool) -> CacheStep {
        let call = self.in_flight.lock().remove(&ticket);
        let (Some(call), Some(ready)) = (call, &self.ready) else {
            return CacheStep::Done(Err(CacheError::Backend(format!(
                "resume of an unknown Redis operation (ticket {ticket})"
            ))));
        };
        if timed_out {
            ready.discard(call.socket);
            ready.discard_idle();
            let error = RedisError::from(io::Error::from(io::ErrorKind::TimedOut));
            return self.finish(call.probe, Err(self.failure(error)));
        }
        self.proceed(ready, call)
    }

    fn cancel(&self, ticket: u64) {
        let call = self.in_flight.lock().remove(&ticket);
        if let (Some(call), Some(ready)) = (call, &self.ready) {
            // A reply may be on its way: the connection is out of step.
            ready.discard(call.socket);
            self.breaker.abandon(call.probe);
        }
    }
}

/// `ttl` in whole milliseconds for `PX`: rounded up (an entry never expires early), at least 1,
/// at most [`MAX_TTL_MILLIS`].
pub fn ttl_millis(ttl: Duration) -> u64 {
    let micros = ttl.as_micros();
    let millis = micros.div_ceil(1000).max(1);
    u64::try_from(millis)
        .unwrap_or(u64::MAX)
        .min(MAX_TTL_MILLIS)
}

/// The kind of an unexpected reply, for a message that shows no value.
fn reply_kind(reply: &Value) -> &'static str {
    match reply {
        Value::Nil => "nil",
        Value::Int(_) => "integer",
        Value::BulkString(_) | Value::SimpleString(_) | Value::VerbatimString { .. } => "string",
        Value::Okay => "OK",
        Value::Array(_) | Value::Set(_) | Value::Map(_) => "collection",
        _ => "reply",
    }
}

/// Whether `error` is an error reply from the server: the connection is still in step and can
/// be reused.
fn is_error_reply(error: &RedisError) -> bool {
    matches!(
        error.kind(),
        redis::ErrorKind::Server(_) | redis::ErrorKind::Extension
    )
}

fn is_timeout(error: &RedisError) -> bool {
    error.is_timeout()
}

/// The error replies that mean "the server cannot take this now", not "the command is wrong":
/// each code with what it means, for the message.
pub const UNAVAILABLE_REPLIES: &[(&str, &str)] = &[
    (
        "OOM",
        "is out of memory (maxmemory reached under a noeviction policy)",
    ),
    (
        "MISCONF",
        "refuses writes because its last snapshot to disk failed",
    ),
    ("READONLY", "is a read-only replica"),
    ("LOADING", "is loading its dataset"),
    ("MASTERDOWN", "lost its link to the master"),
    ("BUSY", "is busy running a script"),
    ("TRYAGAIN", "asks to try again"),
    ("CLUSTERDOWN", "reports the cluster down"),
];

/// The one place a `redis` error becomes a [`CacheError`].
///
/// Unavailable (retrying later may work): connection refused, lost or timed out, and the
/// replies in [`UNAVAILABLE_REPLIES`]. Backend (the command or configuration is wrong): every
/// other error reply (`WRONGPASS`, `NOAUTH`, `WRONGTYPE`, …), bad responses, bad client
/// configuration.
pub fn map_redis_error(url: &str, options: &RedisOptions, error: RedisError) -> CacheError {
    if let Some(code) = error.code()
        && is_error_reply(&error)
    {
        return match UNAVAILABLE_REPLIES.iter().find(|(c, _)| *c == code) {
            Some((_, meaning)) => {
                CacheError::Unavailable(format!("Redis at {url} {meaning}: {error}"))
            }
            None => CacheError::Backend(format!("Redis at {url} refused the command: {error}")),
        };
    }
    if is_timeout(&error) {
        return CacheError::Unavailable(format!(
            "Redis at {url} did not answer within {:?} (socket timeout) or {:?} (connect timeout)",
            options.socket_timeout, options.connect_timeout
        ));
    }
    match error.kind() {
        redis::ErrorKind::Io => {
            CacheError::Unavailable(format!("connection to Redis at {url} failed: {error}"))
        }
        redis::ErrorKind::AuthenticationFailed => {
            CacheError::Backend(format!("Redis at {url} refused the credentials: {error}"))
        }
        _ => CacheError::Backend(format!("Redis at {url}: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    const OPTIONS: RedisOptions = RedisOptions {
        connect_timeout: Duration::from_millis(500),
        socket_timeout: Duration::from_millis(500),
        max_connections: 2,
        pool_timeout: Duration::from_millis(500),
    };

    /// A loopback port nothing listens on (bound, then released).
    fn closed_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    const COOLDOWN: Duration = Duration::from_secs(10);

    #[test]
    fn breaker_opens_on_a_timeout_and_fails_fast_until_the_cooldown_ends() {
        let breaker = Breaker::new(COOLDOWN);
        let t0 = Instant::now();
        breaker.admit(t0).unwrap().settle(Outcome::TimedOut, t0);
        assert!(breaker.is_open());
        let refusal = breaker.admit(t0 + Duration::from_secs(4)).err();
        assert_eq!(refusal, Some(Refusal::CoolingDown(Duration::from_secs(6))));
    }

    #[test]
    fn breaker_lets_one_probe_through_after_the_cooldown_and_closes_on_its_answer() {
        let breaker = Breaker::new(COOLDOWN);
        let t0 = Instant::now();
        breaker.admit(t0).unwrap().settle(Outcome::TimedOut, t0);
        let later = t0 + COOLDOWN;
        let probe = breaker.admit(later).unwrap();
        assert!(probe.is_probe());
        assert_eq!(
            breaker.admit(later).err(),
            Some(Refusal::Probing),
            "only one probe at a time"
        );
        probe.settle(Outcome::Answered, later);
        assert!(!breaker.is_open());
        assert!(!breaker.admit(later).unwrap().is_probe());
    }

    #[test]
    fn a_failed_probe_reopens_for_another_cooldown() {
        for failure in [Outcome::TimedOut, Outcome::Failed] {
            let breaker = Breaker::new(COOLDOWN);
            let t0 = Instant::now();
            breaker.admit(t0).unwrap().settle(Outcome::TimedOut, t0);
            let t1 = t0 + COOLDOWN;
            breaker.admit(t1).unwrap().settle(failure, t1);
            assert_eq!(
                breaker.admit(t1 + COOLDOWN / 2).err(),
                Some(Refusal::CoolingDown(COOLDOWN / 2)),
                "{failure:?}"
            );
        }
    }

    #[test]
    fn a_probe_dropped_without_an_outcome_does_not_leave_the_breaker_probing() {
        let breaker = Breaker::new(Duration::ZERO);
        let t0 = Instant::now();
        breaker.admit(t0).unwrap().settle(Outcome::TimedOut, t0);
        drop(breaker.admit(Instant::now()).unwrap());
        // Reopened with a zero cool-down: the next call is a probe again, not refused forever.
        assert!(breaker.admit(Instant::now()).unwrap().is_probe());
    }

    #[test]
    fn ordinary_failures_and_late_answers_do_not_move_the_breaker() {
        let breaker = Breaker::new(COOLDOWN);
        let t0 = Instant::now();
        breaker.admit(t0).unwrap().settle(Outcome::Failed, t0);
        assert!(
            !breaker.is_open(),
            "a refused connection is cheap: no breaker"
        );
        let early = breaker.admit(t0).unwrap();
        breaker.admit(t0).unwrap().settle(Outcome::TimedOut, t0);
        early.settle(Outcome::Answered, t0);
        assert!(
            breaker.is_open(),
            "an answer to a call sent before the hang does not close it"
        );
    }

    /// On a listener that accepts and never answers: the first `call` pays the timeout, the
    /// next is refused by the breaker without waiting.
    fn assert_times_out_then_fails_fast(call: impl Fn(&RedisBackend) -> Result<(), CacheError>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _keep = std::thread::spawn(move || {
            let held: Vec<_> = listener.incoming().take(4).collect();
            std::thread::sleep(Duration::from_secs(30));
            drop(held);
        });
        let backend = RedisBackend::open(&format!("redis://127.0.0.1:{port}/0"), OPTIONS)
            .unwrap()
            .with_breaker_cooldown(Duration::from_secs(60));
        let first = call(&backend).unwrap_err().to_string();
        assert!(
            first.contains("within") && !first.contains("circuit breaker"),
            "{first}"
        );
        assert!(backend.breaker_open());
        let second = call(&backend).unwrap_err().to_string();
        assert!(second.contains("circuit breaker"), "{second}");
    }

    #[test]
    fn a_timed_out_server_makes_the_next_call_fail_fast() {
        assert_times_out_then_fails_fast(|backend| backend.get("k").map(drop));
    }

    #[test]
    fn a_compare_and_set_on_a_hung_server_is_bounded_and_opens_the_breaker() {
        assert_times_out_then_fails_fast(|backend| {
            backend
                .replace_if_prefixed("k", b"p", b"v", Duration::from_secs(3600))
                .map(drop)
        });
    }

    #[test]
    fn connecting_to_a_silent_server_waits_one_connect_timeout_not_one_per_handshake_reply() {
        // With a password and a database, redis-rs's own handshake would pipeline AUTH, SELECT
        // and two CLIENT SETINFO and wait the timeout once per reply (4 × 500 ms). The bound
        // of 3 × the timeout is generous for a loaded machine and still catches that.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _keep = std::thread::spawn(move || {
            let held: Vec<_> = listener.incoming().take(2).collect();
            std::thread::sleep(Duration::from_secs(30));
            drop(held);
        });
        let url = format!("redis://:pw@127.0.0.1:{port}/3");
        let backend = RedisBackend::open(&url, OPTIONS).unwrap();
        let started = Instant::now();
        let error = backend.ping().unwrap_err().to_string();
        let took = started.elapsed();
        assert!(error.contains("cannot connect to Redis"), "{error}");
        assert!(took < OPTIONS.connect_timeout * 3, "took {took:?}");
    }

    #[test]
    fn ttl_is_rounded_up_to_whole_milliseconds() {
        assert_eq!(ttl_millis(Duration::from_micros(1)), 1);
        assert_eq!(ttl_millis(Duration::from_micros(1000)), 1);
        assert_eq!(ttl_millis(Duration::from_micros(1001)), 2);
        assert_eq!(ttl_millis(Duration::from_secs(1_209_600)), 1_209_600_000);
    }

    #[test]
    fn ttl_is_capped_so_redis_accepts_it() {
        assert_eq!(ttl_millis(Duration::MAX), MAX_TTL_MILLIS);
    }

    #[test]
    fn redis_is_shared_between_processes_but_not_claimed_persistent() {
        let backend = RedisBackend::open("redis://127.0.0.1:6379", OPTIONS).unwrap();
        assert_eq!(
            backend.capabilities(),
            Capabilities::SHARED_BETWEEN_PROCESSES
        );
    }

    #[test]
    fn calls_that_do_not_block_are_offered_on_one_plain_server_only() {
        for (url, offered) in [
            ("redis://127.0.0.1:6379/0", true),
            ("redis://:pw@127.0.0.1:6379/3", true),
            ("unix:///tmp/redis.sock?db=1", true),
            ("rediss://127.0.0.1:6379/0", false),
            ("redis://127.0.0.1:6379/0?protocol=resp3", false),
        ] {
            let backend = RedisBackend::open(url, OPTIONS).unwrap();
            assert_eq!(backend.readiness_calls(), offered, "{url}");
            if !offered {
                assert!(matches!(
                    backend.start(CacheOp::Get("k".into())),
                    CacheStep::Blocking
                ));
            }
        }
    }

    #[test]
    fn opening_does_not_connect() {
        let backend =
            RedisBackend::open(&format!("redis://127.0.0.1:{}/0", closed_port()), OPTIONS)
                .expect("a valid URL opens without a server");
        assert_eq!(backend.idle_connections(), 0);
    }

    #[test]
    fn a_bad_url_is_refused_without_showing_the_password() {
        let error = RedisBackend::open("redis://:hunter2@host:notaport/0", OPTIONS).unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(RedisBackend::open("http://host", OPTIONS).is_err());
    }

    #[test]
    fn zero_max_connections_is_refused() {
        let options = RedisOptions {
            max_connections: 0,
            ..OPTIONS
        };
        assert!(RedisBackend::open("redis://127.0.0.1:6379", options).is_err());
    }

    #[test]
    fn unreachable_server_gives_unavailable_on_every_operation() {
        let url = format!("redis://:hunter2@127.0.0.1:{}/0", closed_port());
        let backend = RedisBackend::open(&url, OPTIONS).unwrap();
        let hour = Duration::from_secs(3600);
        let results = [
            backend.get("k").map(drop),
            backend.contains("k").map(drop),
            backend.add("k", b"v", hour).map(drop),
            backend.set_if_present("k", b"v", hour).map(drop),
            backend.set("k", b"v", hour),
            backend.replace_if_prefixed("k", b"v", b"w", hour).map(drop),
            backend.delete("k").map(drop),
            backend.ping(),
        ];
        for result in results {
            match result {
                Err(CacheError::Unavailable(message)) => {
                    assert!(message.contains("cannot connect to Redis at"), "{message}");
                    assert!(!message.contains("hunter2"), "{message}");
                }
                other => panic!("expected Unavailable, got {other:?}"),
            }
        }
        assert_eq!(backend.idle_connections(), 0);
    }

    #[test]
    fn unavailable_replies_map_to_unavailable_with_their_meaning() {
        for (code, meaning) in UNAVAILABLE_REPLIES {
            let error = redis::make_extension_error(code.to_string(), Some("detail".into()));
            match map_redis_error("redis://h", &OPTIONS, error) {
                CacheError::Unavailable(message) => {
                    assert!(message.contains(meaning), "{code}: {message}");
                    assert!(message.contains("redis://h"), "{message}");
                }
                other => panic!("{code}: expected Unavailable, got {other:?}"),
            }
        }
    }

    #[test]
    fn other_error_replies_map_to_backend_errors() {
        for code in ["WRONGTYPE", "NOAUTH", "ERR"] {
            let error = redis::make_extension_error(code.to_string(), Some("detail".into()));
            assert!(
                matches!(
                    map_redis_error("redis://h", &OPTIONS, error),
                    CacheError::Backend(_)
                ),
                "{code}"
            );
        }
    }

    #[test]
    fn io_errors_and_timeouts_map_to_unavailable() {
        let timeout = RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        ));
        match map_redis_error("redis://h", &OPTIONS, timeout) {
            CacheError::Unavailable(message) => {
                assert!(message.contains("did not answer within"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        let reset = RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        ));
        assert!(matches!(
            map_redis_error("redis://h", &OPTIONS, reset),
            CacheError::Unavailable(_)
        ));
    }
}
