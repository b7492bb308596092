//! The memcached backend: [`CacheBackend`] over one or several memcached servers with the
//! semantics of Django's `PyMemcacheCache` (pymemcache's `HashClient`), so Django and
//! sessionkit read and write the same entries on the same servers.

use std::{
    fmt,
    io::Cursor,
    net::{SocketAddr, ToSocketAddrs},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use memcache::exp::{Error as McError, MetaClient, MutationStatus, Router, ServerAddress};
use sessionkit_sdk::Capabilities;

use crate::backend::{CacheBackend, CacheError, CompareAndSet, ValueWithTtl};

/// Django's and pymemcache's default memcached port.
pub const DEFAULT_PORT: u16 = 11211;
/// Default time to open a connection to one server.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time one command may take, request written to reply read.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default number of connections in use at once per server (calls beyond wait, up to the
/// connect timeout).
pub const DEFAULT_MAX_POOL_SIZE: usize = 16;
/// memcached reads an expiry above this many seconds (30 days) as an absolute Unix time
/// (Django's `get_backend_timeout` switches at the same point).
pub const MAX_RELATIVE_TTL_SECS: u64 = 60 * 60 * 24 * 30;
/// The latest expiry memcached accepts: it parses an expiry as a signed 32-bit number, so an
/// absolute time past 2038-01-19 is refused. A record expiring later is kept until then (its
/// own `expire_date` still decides when it stops loading).
pub const MAX_EXPTIME: u32 = i32::MAX.unsigned_abs();
/// pymemcache's `FLAG_PICKLE`: the client flag its `pickle_serde` stores with a pickled value.
pub const FLAG_PICKLE: u32 = 1;
/// pymemcache's `FLAG_BYTES`: a value handed back as raw bytes.
pub const FLAG_BYTES: u32 = 0;
/// How many times [`MemcachedBackend::replace_if_prefixed`] re-reads after another writer
/// changed the entry between its read and its compare-and-set, before giving up.
pub const MAX_CAS_ATTEMPTS: usize = 8;

/// One memcached server of a location, as Django's `LOCATION` names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MemcachedServer {
    /// `host:port` (or a bare `host`, port 11211; `[v6]:port` for IPv6).
    Tcp {
        /// Host name or address, without IPv6 brackets.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// `unix:/path` or `/path`: a Unix socket. Parsed so the error can name it; the client
    /// crate's meta-protocol client is TCP only, so opening one is refused.
    Unix {
        /// The socket path.
        path: String,
    },
}

impl MemcachedServer {
    /// Parses one server the way pymemcache's `normalize_server_spec` does: `unix:/path` and
    /// `/path` are sockets, `host` alone takes port 11211, `host:port` splits at the last
    /// colon, `[v6]` and `[v6]:port` lose their brackets. Surrounding spaces are trimmed (Django
    /// splits `"a:1, b:2"` at the comma only).
    ///
    /// # Errors
    ///
    /// Why `spec` is not a server (empty, or a port that is not a number from 1 to 65535).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        if let Some(path) = spec.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("a unix: location needs a socket path".to_owned());
            }
            return Ok(Self::Unix {
                path: path.to_owned(),
            });
        }
        if spec.starts_with('/') {
            return Ok(Self::Unix {
                path: spec.to_owned(),
            });
        }
        let (host, port) = if !spec.contains(':') || spec.ends_with(']') {
            (spec, DEFAULT_PORT)
        } else {
            let (host, port) = spec.rsplit_once(':').unwrap_or((spec, ""));
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| format!("'{port}' is not a port number from 1 to 65535"))?;
            (host, port)
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err("the server has no host".to_owned());
        }
        Ok(Self::Tcp {
            host: host.to_owned(),
            port,
        })
    }

    /// The name pymemcache's `HashClient` gives this server in its hash ring
    /// (`"%s:%s" % (host, port)`, or the socket path): what keys are hashed against.
    pub fn node_name(&self) -> String {
        match self {
            Self::Tcp { host, port } => format!("{host}:{port}"),
            Self::Unix { path } => path.clone(),
        }
    }
}

impl fmt::Display for MemcachedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Self::Tcp { host, port } => write!(f, "{host}:{port}"),
            Self::Unix { path } => write!(f, "unix:{path}"),
        }
    }
}

/// How a memcached backend connects, from the alias's `OPTIONS` (pymemcache's names).
///
/// Every operation is bounded: a server that does not answer gives
/// [`CacheError::Unavailable`] after [`timeout`](Self::timeout), never a hang.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemcachedOptions {
    /// `OPTIONS["connect_timeout"]` (seconds): time to open a connection; also how long a call
    /// waits for a free connection when a server's pool is full.
    pub connect_timeout: Duration,
    /// `OPTIONS["timeout"]` (seconds): time one command may take on the wire.
    pub timeout: Duration,
    /// `OPTIONS["max_pool_size"]`: connections in use at once per server.
    pub max_pool_size: usize,
}

impl Default for MemcachedOptions {
    /// 2 s timeouts and 16 connections per server.
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_pool_size: DEFAULT_MAX_POOL_SIZE,
        }
    }
}

/// pymemcache's `murmur3_32` as its `RendezvousHash` calls it: MurmurHash3 (x86, 32 bit) over
/// the *characters* of a Python `str`, each taken as its low byte (`ord(c) & 0xFF`), with the
/// character count as the length. For ASCII text this is MurmurHash3 of the bytes.
pub fn pymemcache_murmur3_32(text: &str, seed: u32) -> u32 {
    // Truncation to the low byte is what pymemcache does with `ord(c) & 0xFF`.
    let bytes: Vec<u8> = text.chars().map(|c| (u32::from(c) & 0xFF) as u8).collect();
    // Reading from memory cannot fail; 0 would only be a (harmless) wrong server.
    murmur3::murmur3_32(&mut Cursor::new(bytes), seed).unwrap_or_default()
}

/// The index in `nodes` of the server pymemcache's `HashClient` (its default
/// `RendezvousHash`, seed 0) picks for `key`: the highest `murmur3_32(f"{node}-{key}")`, a tie
/// going to the greater node name. `None` for an empty list.
pub fn pymemcache_node(key: &str, nodes: &[String]) -> Option<usize> {
    let mut winner: Option<(usize, u32)> = None;
    for (index, node) in nodes.iter().enumerate() {
        let score = pymemcache_murmur3_32(&format!("{node}-{key}"), 0);
        winner = match winner {
            None => Some((index, score)),
            Some((_, best)) if score > best => Some((index, score)),
            Some((best_index, best)) if score == best && *node > nodes[best_index] => {
                Some((index, score))
            }
            keep => keep,
        };
    }
    winner.map(|(index, _)| index)
}

/// The memcache client's [`Router`] doing what pymemcache's `HashClient` does, over the node
/// names the servers are registered under ([`MemcachedServer::node_name`]).
#[derive(Debug, Clone, Copy, Default)]
struct PymemcacheRouter;

impl Router for PymemcacheRouter {
    fn route(&self, key: &[u8], servers: &[String]) -> usize {
        // Keys reaching the client come from `&str`, so this is lossless.
        let key = String::from_utf8_lossy(key);
        pymemcache_node(&key, servers).unwrap_or(0)
    }
}

/// A TCP server as the memcache client takes it: dialed at `host:port`, routed under
/// pymemcache's node name.
#[derive(Debug, Clone)]
struct Node {
    host: String,
    port: u16,
}

impl ToSocketAddrs for Node {
    type Iter = std::vec::IntoIter<SocketAddr>;

    fn to_socket_addrs(&self) -> std::io::Result<Self::Iter> {
        (self.host.as_str(), self.port).to_socket_addrs()
    }
}

impl ServerAddress for Node {
    fn identity(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Django's `PyMemcacheCache` as a [`CacheBackend`]: one or several memcached servers, keys
/// spread over them as pymemcache's `HashClient` spreads them.
///
/// - Spoken in memcached's meta protocol (memcached 1.6+) through the `memcache` crate's
///   meta client: `get` is `mg <key> v f`, `contains` is `mg <key>` without value or LRU bump,
///   `add` is `ms … ME` (add mode), `set_if_present` is `ms … MR` (replace mode), `set` is
///   `ms`, `delete` is `md`. A zero TTL is a `md` (or a `contains` for `add`), as the trait's
///   TTL rules say.
/// - TTLs are whole seconds rounded up; one above 30 days is sent as an absolute Unix time, as
///   Django's `get_backend_timeout` does ([`memcached_exptime`]).
/// - Values are stored with pymemcache's `pickle_serde` client flags: a value that is a pickle
///   (it begins with the `PROTO` opcode `0x80`, as every pickle of protocol 2 and later does)
///   gets `FLAG_PICKLE`, so Django's `PyMemcacheCache` unpickles it; anything else gets
///   `FLAG_BYTES`, which pymemcache hands back as raw bytes. Which format the store writes is
///   the store's business; the flag only labels it truthfully. Reads return the bytes whatever
///   the flags.
/// - `replace_if_prefixed` reads the value and its CAS token (`mg <key> v c`), compares, and
///   writes with `ms … C<cas>` (or `md … C<cas>` for a zero TTL): memcached refuses the write
///   if anything changed the entry in between. Then it reads again and decides anew, at most
///   [`MAX_CAS_ATTEMPTS`] times.
/// - Several servers: each key goes to the server pymemcache would pick ([`pymemcache_node`]).
///   pymemcache also drops a server it failed to reach from its ring for `dead_timeout`
///   seconds, moving its keys to the others; this backend does not (a key whose server is down
///   fails with [`CacheError::Unavailable`] until it is back), so the two never disagree
///   while every server is up.
/// - Connections are opened on first use (opening the backend resolves the host names but does
///   not connect), pooled per server (at most [`MemcachedOptions::max_pool_size`] in use), and
///   a pooled connection found dead before anything was written is replaced once.
/// - Failures: a refused or lost connection, a timeout, a full pool and memcached's
///   `SERVER_ERROR out of memory` are [`CacheError::Unavailable`]; other error replies are
///   [`CacheError::Backend`]. Messages name the server, never a key or a value.
pub struct MemcachedBackend {
    client: MetaClient,
    servers: Vec<MemcachedServer>,
    nodes: Vec<String>,
    options: MemcachedOptions,
}

impl fmt::Debug for MemcachedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemcachedBackend")
            .field("servers", &self.nodes)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl MemcachedBackend {
    /// A backend for `servers` (in `LOCATION` order). Resolves host names; does not connect.
    ///
    /// # Errors
    ///
    /// Why the servers cannot be used: none given, a Unix socket (the client is TCP only), a
    /// host name that does not resolve, or a zero pool size.
    pub fn open(servers: &[MemcachedServer], options: MemcachedOptions) -> Result<Self, String> {
        if servers.is_empty() {
            return Err("no memcached server given".to_owned());
        }
        if options.max_pool_size == 0 {
            return Err("max_pool_size must be at least 1".to_owned());
        }
        let mut nodes = Vec::with_capacity(servers.len());
        for server in servers {
            match server {
                MemcachedServer::Tcp { host, port } => nodes.push(Node {
                    host: host.clone(),
                    port: *port,
                }),
                MemcachedServer::Unix { .. } => {
                    return Err(format!(
                        "{server}: memcached over a Unix socket is not supported (the memcache crate's meta-protocol client is TCP only); use host:port"
                    ));
                }
            }
        }
        let client = MetaClient::builder()
            .router(PymemcacheRouter)
            .connect_timeout(Some(options.connect_timeout))
            .io_timeout(Some(options.timeout))
            .max_connections(Some(options.max_pool_size))
            .max_idle(options.max_pool_size)
            .connect_multiple(nodes)
            .map_err(|error| format!("cannot resolve the memcached servers: {error}"))?;
        Ok(Self {
            client,
            servers: servers.to_vec(),
            nodes: servers.iter().map(MemcachedServer::node_name).collect(),
            options,
        })
    }

    /// The servers, in `LOCATION` order.
    pub fn servers(&self) -> &[MemcachedServer] {
        &self.servers
    }

    /// The timeouts and pool size this backend uses.
    pub fn options(&self) -> MemcachedOptions {
        self.options
    }

    /// The server `key` lives on (pymemcache's choice).
    pub fn server_for(&self, key: &str) -> &MemcachedServer {
        let index = pymemcache_node(key, &self.nodes).unwrap_or(0);
        &self.servers[index.min(self.servers.len() - 1)]
    }

    /// Whether every server answers a no-op (`mn`) now: a start-up check, since opening does
    /// not connect.
    ///
    /// # Errors
    ///
    /// [`CacheError::Unavailable`] naming no key when a server cannot be reached.
    pub fn ping(&self) -> Result<(), CacheError> {
        self.client
            .noop()
            .map_err(|error| self.map_error("no-op", None, &error))
    }

    /// The value under `key` with its remaining lifetime (`None`: never expires), in one round
    /// trip (`mg <key> v f t`).
    ///
    /// # Errors
    ///
    /// As [`CacheBackend::get`].
    pub fn get_with_remaining_ttl(&self, key: &str) -> Result<Option<ValueWithTtl>, CacheError> {
        let result = self
            .client
            .get(key)
            .meta(memcache::exp::Meta::NONE.ttl())
            .send()
            .map_err(|error| self.map_error("get", Some(key), &error))?;
        if !result.hit() {
            return Ok(None);
        }
        let ttl = match result.item.ttl {
            Some(secs) if secs >= 0 => Some(Duration::from_secs(secs.unsigned_abs())),
            _ => None,
        };
        Ok(result.value.map(|value| (value, ttl)))
    }

    /// The value under `key` and its CAS token, or `None`.
    fn gets(&self, key: &str) -> Result<Option<(Vec<u8>, u64)>, CacheError> {
        let result = self
            .client
            .get(key)
            .meta(memcache::exp::Meta::NONE.cas())
            .send()
            .map_err(|error| self.map_error("gets", Some(key), &error))?;
        if !result.hit() {
            return Ok(None);
        }
        match (result.value, result.item.cas) {
            (Some(value), Some(cas)) => Ok(Some((value, cas))),
            _ => Err(CacheError::Backend(format!(
                "memcached {} answered a read without its value or CAS token",
                self.server_for(key)
            ))),
        }
    }

    /// `ms` in `mode`, with the client flag for `value` and a CAS condition if given.
    fn store(
        &self,
        operation: &str,
        key: &str,
        value: &[u8],
        ttl: Duration,
        mode: memcache::exp::SetMode,
        cas: Option<u64>,
    ) -> Result<MutationStatus, CacheError> {
        let mut request = self
            .client
            .set(key, value)
            .client_flags(client_flags(value))
            .ttl_raw(memcached_exptime(ttl, SystemTime::now()))
            .mode(mode);
        if let Some(cas) = cas {
            request = request.compare_cas(cas);
        }
        request
            .send()
            .map(|result| result.status)
            .map_err(|error| self.map_error(operation, Some(key), &error))
    }

    /// `md`, with a CAS condition if given.
    fn remove(&self, key: &str, cas: Option<u64>) -> Result<MutationStatus, CacheError> {
        let mut request = self.client.delete(key);
        if let Some(cas) = cas {
            request = request.compare_cas(cas);
        }
        request
            .send()
            .map(|result| result.status)
            .map_err(|error| self.map_error("delete", Some(key), &error))
    }

    /// The one mapping of a client error to a [`CacheError`]: names the operation and the
    /// server, never the key (the crate's own messages for timeouts carry it, so they are not
    /// copied) or a value.
    fn map_error(&self, operation: &str, key: Option<&str>, error: &McError) -> CacheError {
        let server = match key {
            Some(key) => self.server_for(key).to_string(),
            None => self
                .servers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        };
        map_error(operation, &server, error)
    }
}

/// [`MemcachedBackend::map_error`] without the backend, for tests.
fn map_error(operation: &str, server: &str, error: &McError) -> CacheError {
    match error {
        McError::Io(io) => CacheError::Unavailable(format!(
            "memcached {server} unreachable ({operation}): {io}"
        )),
        McError::Timeout { .. } => CacheError::Unavailable(format!(
            "memcached {server} did not answer in time ({operation})"
        )),
        McError::Ambiguous { source, .. } => match map_error(operation, server, source) {
            CacheError::Unavailable(message) => CacheError::Unavailable(format!(
                "{message}; the command was sent and may have been applied"
            )),
            other => other,
        },
        McError::Server(message) if message.contains("out of memory") => CacheError::Unavailable(
            format!("memcached {server} is out of memory ({operation}): {message}"),
        ),
        McError::Server(message) => CacheError::Backend(format!(
            "memcached {server} failed ({operation}): {message}"
        )),
        McError::Rejected(message) => CacheError::Backend(format!(
            "memcached {server} rejected the command ({operation}): {message}"
        )),
        McError::Usage(message) => CacheError::Backend(format!(
            "memcached command refused before sending ({operation}): {message}"
        )),
        // Protocol errors may quote a reply line (which can hold a value): not copied.
        McError::Protocol(_) => CacheError::Backend(format!(
            "memcached {server} sent a malformed reply ({operation})"
        )),
        _ => CacheError::Backend(format!("memcached {server} failed ({operation})")),
    }
}

/// The client flags pymemcache's `pickle_serde` would store `value` with: `FLAG_PICKLE` for a
/// pickle (protocol 2+ pickles begin with the `PROTO` opcode `0x80`), `FLAG_BYTES` otherwise.
pub fn client_flags(value: &[u8]) -> u32 {
    if value.first() == Some(&0x80) {
        FLAG_PICKLE
    } else {
        FLAG_BYTES
    }
}

/// The memcached expiry for a TTL, as Django's `get_backend_timeout` computes it: whole
/// seconds, rounded up here so an entry never expires early; above 30 days the absolute Unix
/// time `now + ttl`, at most [`MAX_EXPTIME`]. A zero TTL is never
/// sent (the backend deletes instead), so the result is at least 1.
pub fn memcached_exptime(ttl: Duration, now: SystemTime) -> u32 {
    let secs = ttl
        .as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0))
        .max(1);
    if secs <= MAX_RELATIVE_TTL_SECS {
        // At most 30 days: fits.
        return u32::try_from(secs).unwrap_or(u32::MAX);
    }
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs())
        .unwrap_or_default();
    u32::try_from(now.saturating_add(secs))
        .unwrap_or(MAX_EXPTIME)
        .min(MAX_EXPTIME)
}

impl CacheBackend for MemcachedBackend {
    fn get_with_ttl(&self, key: &str) -> Result<Option<ValueWithTtl>, CacheError> {
        self.get_with_remaining_ttl(key)
    }

    /// memcached is shared with Django's `PyMemcacheCache`: the store keeps Django's values.
    fn stores_django_values(&self) -> bool {
        true
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let result = self
            .client
            .get(key)
            .send()
            .map_err(|error| self.map_error("get", Some(key), &error))?;
        Ok(if result.hit() { result.value } else { None })
    }

    fn contains(&self, key: &str) -> Result<bool, CacheError> {
        let result = self
            .client
            .get(key)
            .without_value()
            .no_lru_bump()
            .send()
            .map_err(|error| self.map_error("contains", Some(key), &error))?;
        Ok(result.hit())
    }

    fn add(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        if ttl.is_zero() {
            return Ok(!self.contains(key)?);
        }
        let status = self.store("add", key, value, ttl, memcache::exp::SetMode::Add, None)?;
        Ok(status == MutationStatus::Applied)
    }

    fn set_if_present(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        if ttl.is_zero() {
            return self.delete(key);
        }
        let status = self.store(
            "replace",
            key,
            value,
            ttl,
            memcache::exp::SetMode::Replace,
            None,
        )?;
        Ok(status == MutationStatus::Applied)
    }

    fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        if ttl.is_zero() {
            return self.delete(key).map(drop);
        }
        match self.store("set", key, value, ttl, memcache::exp::SetMode::Set, None)? {
            MutationStatus::Applied => Ok(()),
            _ => Err(CacheError::Backend(format!(
                "memcached {} did not store the value (set)",
                self.server_for(key)
            ))),
        }
    }

    fn replace_if_prefixed(
        &self,
        key: &str,
        expected_prefix: &[u8],
        value: &[u8],
        ttl: Duration,
    ) -> Result<CompareAndSet, CacheError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some((current, cas)) = self.gets(key)? else {
                return Ok(CompareAndSet::Missing);
            };
            if !current.starts_with(expected_prefix) {
                return Ok(CompareAndSet::Mismatch(current));
            }
            let status = if ttl.is_zero() {
                self.remove(key, Some(cas))?
            } else {
                self.store(
                    "compare-and-set",
                    key,
                    value,
                    ttl,
                    memcache::exp::SetMode::Set,
                    Some(cas),
                )?
            };
            match status {
                MutationStatus::Applied => return Ok(CompareAndSet::Replaced),
                MutationStatus::NotFound => return Ok(CompareAndSet::Missing),
                // Another writer changed the entry since the read: read it again.
                _ => {}
            }
        }
        Err(CacheError::Unavailable(format!(
            "memcached {}: the compare-and-set lost to concurrent writers {MAX_CAS_ATTEMPTS} times",
            self.server_for(key)
        )))
    }

    fn delete(&self, key: &str) -> Result<bool, CacheError> {
        Ok(self.remove(key, None)? == MutationStatus::Applied)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::SHARED_BETWEEN_PROCESSES
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[test]
    fn servers_parse_like_pymemcache_normalize_server_spec() {
        let tcp = |host: &str, port| MemcachedServer::Tcp {
            host: host.into(),
            port,
        };
        for (spec, expected) in [
            ("127.0.0.1:11311", tcp("127.0.0.1", 11311)),
            ("cache.internal", tcp("cache.internal", 11211)),
            (" cache:1 ", tcp("cache", 1)),
            ("[::1]:11212", tcp("::1", 11212)),
            ("[::1]", tcp("::1", 11211)),
            (
                "unix:/run/memcached.sock",
                MemcachedServer::Unix {
                    path: "/run/memcached.sock".into(),
                },
            ),
            (
                "/run/memcached.sock",
                MemcachedServer::Unix {
                    path: "/run/memcached.sock".into(),
                },
            ),
        ] {
            assert_eq!(MemcachedServer::parse(spec).unwrap(), expected, "{spec}");
        }
        assert_eq!(tcp("::1", 11212).node_name(), "::1:11212");
        assert_eq!(tcp("::1", 11212).to_string(), "[::1]:11212");
        assert_eq!(tcp("h", 1).node_name(), "h:1");
        for bad in ["", "unix:", "host:port", "host:0", "host:70000", ":11211"] {
            assert!(MemcachedServer::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn murmur3_matches_known_vectors() {
        // Reference values of MurmurHash3_x86_32 (also what pymemcache's murmur3_32 gives).
        assert_eq!(pymemcache_murmur3_32("", 0), 0);
        assert_eq!(pymemcache_murmur3_32("", 1), 0x514E_28B7);
        assert_eq!(pymemcache_murmur3_32("hello", 0), 0x248B_FA47);
        assert_eq!(
            pymemcache_murmur3_32("The quick brown fox jumps over the lazy dog", 0),
            0x2E4F_F723
        );
    }

    #[test]
    fn non_ascii_characters_hash_by_their_low_byte_like_pymemcache() {
        // 'é' is U+00E9 and 'ǩ' is U+01E9: pymemcache keeps only their low byte, 0xE9.
        assert_eq!(
            pymemcache_murmur3_32("\u{e9}", 0),
            pymemcache_murmur3_32("\u{1e9}", 0)
        );
        assert_ne!(
            pymemcache_murmur3_32("\u{e9}", 0),
            pymemcache_murmur3_32("\u{e8}", 0)
        );
    }

    #[test]
    fn one_node_takes_every_key_and_none_takes_none() {
        assert_eq!(pymemcache_node("k", &["a:1".into()]), Some(0));
        assert_eq!(pymemcache_node("k", &[]), None);
    }

    #[test]
    fn exptime_rounds_up_and_turns_absolute_past_thirty_days() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(memcached_exptime(Duration::from_millis(1), now), 1);
        assert_eq!(memcached_exptime(Duration::from_millis(1500), now), 2);
        assert_eq!(memcached_exptime(Duration::from_secs(60), now), 60);
        assert_eq!(
            memcached_exptime(Duration::from_secs(MAX_RELATIVE_TTL_SECS), now),
            2_592_000
        );
        assert_eq!(
            memcached_exptime(Duration::from_secs(MAX_RELATIVE_TTL_SECS + 1), now),
            1_800_000_000 + 2_592_001
        );
        assert_eq!(
            memcached_exptime(Duration::from_secs(u64::MAX), now),
            2_147_483_647
        );
    }

    #[test]
    fn pickles_are_flagged_as_pymemcache_flags_them() {
        assert_eq!(client_flags(b"\x80\x05\x95"), FLAG_PICKLE);
        assert_eq!(client_flags(b"{\"session_key\":1}"), FLAG_BYTES);
        assert_eq!(client_flags(b""), FLAG_BYTES);
    }

    #[test]
    fn errors_map_to_unavailable_or_backend_without_the_key() {
        let key = b"secret-session-key".to_vec();
        let cases = [
            (
                McError::Io(io::Error::from(io::ErrorKind::ConnectionRefused)),
                true,
            ),
            (McError::Timeout { key: key.clone() }, true),
            (
                McError::Ambiguous {
                    key: key.clone(),
                    source: Box::new(McError::Timeout { key: key.clone() }),
                },
                true,
            ),
            (McError::Server("out of memory storing object".into()), true),
            (McError::Server("object too large for cache".into()), false),
            (McError::Rejected("bad data chunk".into()), false),
            (
                McError::Protocol("unexpected line VA 2 secret-session-key".into()),
                false,
            ),
        ];
        for (error, unavailable) in cases {
            let mapped = map_error("get", "127.0.0.1:11311", &error);
            assert_eq!(
                matches!(mapped, CacheError::Unavailable(_)),
                unavailable,
                "{error:?} → {mapped}"
            );
            let message = mapped.to_string();
            assert!(message.contains("127.0.0.1:11311"), "{message}");
            assert!(!message.contains("secret-session-key"), "{message}");
        }
    }

    #[test]
    fn unix_sockets_and_empty_lists_are_refused_at_open() {
        let error = MemcachedBackend::open(
            &[MemcachedServer::Unix {
                path: "/run/m.sock".into(),
            }],
            MemcachedOptions::default(),
        )
        .unwrap_err();
        assert!(
            error.contains("unix:/run/m.sock") && error.contains("TCP"),
            "{error}"
        );
        assert!(MemcachedBackend::open(&[], MemcachedOptions::default()).is_err());
    }
}
