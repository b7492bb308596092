//! Redis beyond one server, as a `LOCATION` names it: Django's list form (the first server takes
//! writes, the others serve reads), a Redis Cluster (`redis+cluster://`) and the master a set of
//! Sentinels name (`redis+sentinel://`). This module parses those locations and implements the
//! list form ([`RedisReplicas`]); [`crate::redis_cluster`] and [`crate::redis_sentinel`] connect
//! to the other two.

use std::{
    fmt,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use sessionkit_codec::redact_url;
use sessionkit_sdk::Capabilities;

use crate::{
    backend::{
        CacheBackend, CacheError, CacheOp, CacheReply, CacheStep, CompareAndSet, ValueWithTtl,
    },
    redis_backend::RedisBackend,
};

/// The scheme of a Redis Cluster location (seed nodes, plain TCP).
pub const CLUSTER_SCHEME: &str = "redis+cluster://";
/// The scheme of a Redis Cluster location over TLS.
pub const CLUSTER_TLS_SCHEME: &str = "rediss+cluster://";
/// The scheme of a Sentinel location.
pub const SENTINEL_SCHEME: &str = "redis+sentinel://";
/// The scheme of a Sentinel location whose master (and Sentinels) speak TLS.
pub const SENTINEL_TLS_SCHEME: &str = "rediss+sentinel://";

/// The port a host without one gets (Redis's default; Sentinels default to 26379).
const REDIS_PORT: u16 = 6379;
/// The port a Sentinel without one gets.
const SENTINEL_PORT: u16 = 26379;

/// Whether `location` is a cluster or Sentinel location (checked before Django's splitting of a
/// `;`/`,`-separated `LOCATION`, since these locations list their hosts with commas).
pub fn is_topology_location(location: &str) -> bool {
    [
        CLUSTER_SCHEME,
        CLUSTER_TLS_SCHEME,
        SENTINEL_SCHEME,
        SENTINEL_TLS_SCHEME,
    ]
    .iter()
    .any(|scheme| location.starts_with(scheme))
}

/// `OPTIONS` about where a Redis location's reads go, beside [`RedisOptions`](crate::RedisOptions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopologyOptions {
    /// `OPTIONS["read_from_replicas"]`: `None` keeps each form's default (the list form reads
    /// from the replicas, as Django's `RedisCache`; a cluster reads from masters, as redis-py's
    /// `RedisCluster`; Sentinel always uses the master).
    pub read_from_replicas: Option<bool>,
}

/// The parts of `scheme://[userinfo@]host[:port],host[:port][/path][?query]`.
struct Parsed<'a> {
    userinfo: Option<&'a str>,
    hosts: Vec<(String, u16)>,
    path: &'a str,
    query: Option<&'a str>,
}

/// Splits a multi-host location after its scheme. Messages never contain the userinfo.
fn parse_hosts(rest: &str, default_port: u16) -> Result<Parsed<'_>, String> {
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    // The userinfo ends at the last '@' before the path (a password may contain '/').
    let (userinfo, rest) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut hosts = Vec::new();
    for host in authority.split(',') {
        let host = host.trim();
        if host.is_empty() {
            return Err("a host in the list is empty".to_owned());
        }
        hosts.push(host_port(host, default_port)?);
    }
    Ok(Parsed {
        userinfo,
        hosts,
        path,
        query,
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn host_port(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("'{text}' has no closing ']'"))?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("'{text}' is not host:port")),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(format!("'{text}' has no host"));
    }
    let port = match port {
        None => default_port,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| format!("'{text}' has no valid port"))?,
    };
    Ok((host.to_owned(), port))
}

/// `host:port` as a URL authority (IPv6 in brackets).
pub(crate) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A Redis Cluster `LOCATION`:
/// `redis+cluster://[[user]:password@]host:port,host:port[/0][?query]` (`rediss+cluster://` for
/// TLS). The hosts are seed nodes: the client reads the slot map from the first that answers
/// and finds the rest of the cluster there. The credentials and query apply to every node.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterLocation {
    /// One `redis://` (or `rediss://`) URL per seed node, with the credentials.
    seeds: Vec<String>,
    /// The location as written, password masked, for messages.
    redacted: String,
}

impl ClusterLocation {
    /// Parses a cluster location.
    ///
    /// # Errors
    ///
    /// Why it is not one (never showing the password): no hosts, a bad port, a database other
    /// than 0 (a cluster has only database 0).
    pub fn parse(location: &str) -> Result<Self, String> {
        let (rest, scheme) = if let Some(rest) = location.strip_prefix(CLUSTER_SCHEME) {
            (rest, "redis")
        } else if let Some(rest) = location.strip_prefix(CLUSTER_TLS_SCHEME) {
            (rest, "rediss")
        } else {
            return Err(format!(
                "a cluster location begins with {CLUSTER_SCHEME} or {CLUSTER_TLS_SCHEME}"
            ));
        };
        let parsed = parse_hosts(rest, REDIS_PORT)?;
        match parsed.path.trim_end_matches('/') {
            "" | "0" => {}
            _ => {
                return Err(
                    "a Redis Cluster has only database 0 (the path must be empty or /0)".to_owned(),
                );
            }
        }
        let credentials = parsed
            .userinfo
            .map(|userinfo| format!("{userinfo}@"))
            .unwrap_or_default();
        let query = parsed
            .query
            .map(|query| format!("?{query}"))
            .unwrap_or_default();
        let seeds = parsed
            .hosts
            .iter()
            .map(|(host, port)| {
                format!(
                    "{scheme}://{credentials}{}/0{query}",
                    authority(host, *port)
                )
            })
            .collect();
        Ok(Self {
            seeds,
            redacted: redact_url(location),
        })
    }

    /// One `redis://` URL per seed node (with the credentials: keep out of messages).
    pub fn seeds(&self) -> &[String] {
        &self.seeds
    }

    /// The location with the password masked.
    pub fn redacted(&self) -> String {
        self.redacted.clone()
    }
}

impl fmt::Debug for ClusterLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ClusterLocation")
            .field(&self.redacted)
            .finish()
    }
}

/// A Sentinel `LOCATION`:
/// `redis+sentinel://[[user]:password@]host:port,host:port/service_name[/db][?query]`
/// (`rediss+sentinel://` when the master speaks TLS). The hosts are Sentinels (port 26379 when
/// not given); `service_name` is the master's name in their `sentinel monitor` lines. The
/// credentials, database and query are the master's (Sentinels are asked without credentials).
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelLocation {
    /// The Sentinels' addresses, in the order they are asked.
    sentinels: Vec<(String, u16)>,
    /// The master's name as the Sentinels know it.
    service: String,
    /// `redis` or `rediss`: how the master is reached.
    scheme: &'static str,
    /// `user:password` for the master, if any.
    userinfo: Option<String>,
    db: i64,
    query: Option<String>,
    redacted: String,
}

impl SentinelLocation {
    /// Parses a Sentinel location.
    ///
    /// # Errors
    ///
    /// Why it is not one (never showing the password): no Sentinels, a bad port, no service
    /// name, a database that is not a non-negative integer.
    pub fn parse(location: &str) -> Result<Self, String> {
        let (rest, scheme) = if let Some(rest) = location.strip_prefix(SENTINEL_SCHEME) {
            (rest, "redis")
        } else if let Some(rest) = location.strip_prefix(SENTINEL_TLS_SCHEME) {
            (rest, "rediss")
        } else {
            return Err(format!(
                "a Sentinel location begins with {SENTINEL_SCHEME} or {SENTINEL_TLS_SCHEME}"
            ));
        };
        let parsed = parse_hosts(rest, SENTINEL_PORT)?;
        let mut path = parsed.path.trim_end_matches('/').split('/');
        let service = path.next().unwrap_or_default();
        if service.is_empty() {
            return Err(
                "the service name is missing (redis+sentinel://host:port,host:port/service_name/db)"
                    .to_owned(),
            );
        }
        let db = match path.next() {
            None => 0,
            Some(db) => db
                .parse::<i64>()
                .ok()
                .filter(|db| *db >= 0)
                .ok_or_else(|| format!("the database '{db}' is not a non-negative integer"))?,
        };
        if path.next().is_some() {
            return Err("the path has more than service_name/db".to_owned());
        }
        Ok(Self {
            sentinels: parsed.hosts,
            service: service.to_owned(),
            scheme,
            userinfo: parsed.userinfo.map(str::to_owned),
            db,
            query: parsed.query.map(str::to_owned),
            redacted: redact_url(location),
        })
    }

    /// The Sentinels' `(host, port)`, in the order they are asked.
    pub fn sentinels(&self) -> &[(String, u16)] {
        &self.sentinels
    }

    /// The master's name as the Sentinels know it.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The database selected on the master.
    pub fn db(&self) -> i64 {
        self.db
    }

    /// The URL of the master at `host:port` (with the credentials: keep out of messages).
    pub fn master_url(&self, host: &str, port: u16) -> String {
        let credentials = self
            .userinfo
            .as_deref()
            .map(|userinfo| format!("{userinfo}@"))
            .unwrap_or_default();
        let query = self
            .query
            .as_deref()
            .map(|query| format!("?{query}"))
            .unwrap_or_default();
        format!(
            "{}://{credentials}{}/{}{query}",
            self.scheme,
            authority(host, port),
            self.db
        )
    }

    /// The URL of the Sentinel at `host:port` (no credentials: Sentinels are asked without).
    pub fn sentinel_url(&self, host: &str, port: u16) -> String {
        format!("{}://{}", self.scheme, authority(host, port))
    }

    /// The location with the password masked.
    pub fn redacted(&self) -> String {
        self.redacted.clone()
    }
}

impl fmt::Debug for SentinelLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SentinelLocation")
            .field(&self.redacted)
            .finish()
    }
}

/// Django's `LOCATION` list on Redis: the first server takes every write, reads (`get`,
/// `contains`) go to one of the others, picked in turn, as Django's `RedisCache` picks a random
/// one (`_get_connection_pool_index`).
///
/// A read from a replica may miss a write made on the primary a moment before (replication is
/// asynchronous): a session saved by one request and loaded by the next within the replica's
/// lag reads as the previous version, or as absent right after login. Django accepts this; set
/// `OPTIONS["read_from_replicas"] = False` to send reads to the primary too (every load then sees
/// the write before it; the replicas only stand by).
///
/// A read whose replica is unavailable (refused, timed out, its circuit breaker open) is made on
/// the primary instead, so a replica going down costs no failed loads. Conditional saves
/// (compare-and-set) run on the primary, which holds the value they compare.
pub struct RedisReplicas {
    primary: RedisBackend,
    replicas: Vec<RedisBackend>,
    read_from_replicas: bool,
    next: AtomicUsize,
}

impl RedisReplicas {
    /// The list form: `primary` takes the writes; `replicas` serve reads when
    /// `read_from_replicas` (Django's behaviour), else stand by.
    pub fn new(
        primary: RedisBackend,
        replicas: Vec<RedisBackend>,
        read_from_replicas: bool,
    ) -> Self {
        Self {
            primary,
            replicas,
            read_from_replicas,
            next: AtomicUsize::new(0),
        }
    }

    /// The server that takes writes.
    pub fn primary(&self) -> &RedisBackend {
        &self.primary
    }

    /// The servers that serve reads.
    pub fn replicas(&self) -> &[RedisBackend] {
        &self.replicas
    }

    /// Whether reads go to the replicas.
    pub fn reads_from_replicas(&self) -> bool {
        self.read_from_replicas && !self.replicas.is_empty()
    }

    /// Runs a read on the next replica, or on the primary when reads stay there or the replica
    /// is unavailable.
    fn read<T>(
        &self,
        read: impl Fn(&RedisBackend) -> Result<T, CacheError>,
    ) -> Result<T, CacheError> {
        if !self.reads_from_replicas() {
            return read(&self.primary);
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.replicas.len();
        match read(&self.replicas[index]) {
            Err(CacheError::Unavailable(_)) => read(&self.primary),
            other => other,
        }
    }
}

impl fmt::Debug for RedisReplicas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplicas")
            .field("primary", &self.primary.url())
            .field(
                "replicas",
                &self
                    .replicas
                    .iter()
                    .map(RedisBackend::url)
                    .collect::<Vec<_>>(),
            )
            .field("read_from_replicas", &self.read_from_replicas)
            .finish()
    }
}

#[deny(clippy::missing_trait_methods)]
impl CacheBackend for RedisReplicas {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.read(|server| server.get(key))
    }

    fn get_with_ttl(&self, key: &str) -> Result<Option<ValueWithTtl>, CacheError> {
        self.read(|server| server.get_with_ttl(key))
    }

    fn stores_django_values(&self) -> bool {
        self.primary.stores_django_values()
    }

    fn contains(&self, key: &str) -> Result<bool, CacheError> {
        self.read(|server| server.contains(key))
    }

    fn add(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        self.primary.add(key, value, ttl)
    }

    fn set_if_present(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        self.primary.set_if_present(key, value, ttl)
    }

    fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.primary.set(key, value, ttl)
    }

    fn replace_if_prefixed(
        &self,
        key: &str,
        expected_prefix: &[u8],
        value: &[u8],
        ttl: Duration,
    ) -> Result<CompareAndSet, CacheError> {
        self.primary
            .replace_if_prefixed(key, expected_prefix, value, ttl)
    }

    fn delete(&self, key: &str) -> Result<bool, CacheError> {
        self.primary.delete(key)
    }

    fn capabilities(&self) -> Capabilities {
        self.primary.capabilities()
    }

    /// Through the methods above, so reads go where `read_from_replicas` says.
    fn execute(&self, op: CacheOp) -> Result<CacheReply, CacheError> {
        op.run_on(self)
    }

    /// Not with replicas: calls that do not block are one server's (they run the blocking way).
    fn readiness_calls(&self) -> bool {
        false
    }

    fn start(&self, op: CacheOp) -> CacheStep {
        let _ = op;
        CacheStep::Blocking
    }

    fn resume(&self, ticket: u64, timed_out: bool) -> CacheStep {
        let _ = (ticket, timed_out);
        CacheStep::Done(Err(CacheError::Backend(
            "resume of a cache operation that was never started (replicas run blocking)".to_owned(),
        )))
    }

    fn cancel(&self, ticket: u64) {
        let _ = ticket;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_locations_give_one_seed_url_per_host() {
        let location =
            ClusterLocation::parse("redis+cluster://u:pw@10.0.0.1:7000, 10.0.0.2 ,[::1]:7002/0")
                .unwrap();
        assert_eq!(
            location.seeds(),
            [
                "redis://u:pw@10.0.0.1:7000/0",
                "redis://u:pw@10.0.0.2:6379/0",
                "redis://u:pw@[::1]:7002/0"
            ]
        );
        assert_eq!(
            location.redacted(),
            "redis+cluster://u:***@10.0.0.1:7000, 10.0.0.2 ,[::1]:7002/0"
        );
        let tls = ClusterLocation::parse("rediss+cluster://h:1?insecure=true").unwrap();
        assert_eq!(tls.seeds(), ["rediss://h:1/0?insecure=true"]);
    }

    #[test]
    fn bad_cluster_locations_are_refused_without_the_password() {
        for location in [
            "redis+cluster://:hunter2@h:1/3",
            "redis+cluster://:hunter2@h:1,,h:2",
            "redis+cluster://:hunter2@h:notaport",
            "redis+cluster://:hunter2@:7000",
            "redis://:hunter2@h:1",
        ] {
            let error = ClusterLocation::parse(location).unwrap_err();
            assert!(!error.contains("hunter2"), "{location}: {error}");
        }
    }

    #[test]
    fn sentinel_locations_name_the_sentinels_the_service_and_the_masters_database() {
        let location =
            SentinelLocation::parse("redis+sentinel://:pw@s1:26380,s2/mymaster/2").unwrap();
        assert_eq!(
            location.sentinels(),
            [("s1".to_owned(), 26380), ("s2".to_owned(), 26379)]
        );
        assert_eq!(location.service(), "mymaster");
        assert_eq!(location.db(), 2);
        assert_eq!(
            location.master_url("10.0.0.9", 6380),
            "redis://:pw@10.0.0.9:6380/2"
        );
        assert_eq!(location.sentinel_url("s1", 26380), "redis://s1:26380");
        assert_eq!(
            location.redacted(),
            "redis+sentinel://:***@s1:26380,s2/mymaster/2"
        );
        let no_db = SentinelLocation::parse("redis+sentinel://s1/svc").unwrap();
        assert_eq!(no_db.db(), 0);
    }

    #[test]
    fn bad_sentinel_locations_are_refused_without_the_password() {
        for location in [
            "redis+sentinel://:hunter2@s1:26379",
            "redis+sentinel://:hunter2@s1:26379/",
            "redis+sentinel://:hunter2@s1:26379/svc/-1",
            "redis+sentinel://:hunter2@s1:26379/svc/0/extra",
            "redis+sentinel://:hunter2@s1:x/svc",
        ] {
            let error = SentinelLocation::parse(location).unwrap_err();
            assert!(!error.contains("hunter2"), "{location}: {error}");
        }
    }

    #[test]
    fn topology_locations_are_recognised_by_scheme() {
        assert!(is_topology_location("redis+cluster://a:1,b:2"));
        assert!(is_topology_location("rediss+sentinel://a/svc"));
        assert!(!is_topology_location("redis://a:1"));
    }
}
