//! Redis Cluster connections for [`RedisBackend`](crate::RedisBackend), through the redis
//! crate's synchronous cluster client.
//!
//! - **Slots.** A pooled connection is a `ClusterConnection`: it reads the slot map (`CLUSTER
//!   SLOTS`) from the first seed node that answers, keeps one socket per node, and sends each
//!   command to the master serving its key's hash slot. Every command sessionkit sends names one
//!   key, and the compare-and-set script is called with that one key (`EVALSHA sha 1 key …`), so
//!   each runs on one node and no command crosses slots.
//! - **Redirections.** `MOVED` (the slot moved: the map is read again and the command resent)
//!   and `ASK` (the slot is migrating: `ASKING` and the command on the target) are followed by
//!   the crate, within [`CLUSTER_RETRIES`] retries.
//! - **Failover.** When a master dies its replica is promoted by the cluster (after
//!   `cluster-node-timeout`). Until then, calls for its slots fail as `Unavailable` (refused
//!   connections, fast) while calls for every other slot keep working. A connection that failed
//!   is dropped with the idle ones, and a pooled connection that fails is retried once on a new
//!   one, which reads the slot map again: once the replica is promoted, the backend finds it
//!   without a restart. `READONLY` from a demoted master makes the crate read the map again.
//! - **Bounded waits.** Connect and command timeouts apply to every node; a command is tried at
//!   most [`CLUSTER_RETRIES`]` + 1` times. A timeout on one node does not open the backend's
//!   circuit breaker (the other nodes keep serving their slots): calls routed to a hung node
//!   each wait out their own timeout.

use redis::{
    RedisResult,
    cluster::{ClusterClient, ClusterClientBuilder, ClusterConnection},
    cluster_read_routing::RandomReplicaStrategy,
};

use crate::{redis_backend::RedisOptions, redis_topology::ClusterLocation};

/// How many times the cluster client retries one command (a `MOVED` or `ASK` redirection, a
/// `TRYAGAIN` during resharding, a `READONLY` after a failover, a refused node). One retry
/// covers one redirection; more would multiply the wait on a hung node.
pub const CLUSTER_RETRIES: u32 = 1;
/// The shortest wait before a retry that waits (`TRYAGAIN`, `CLUSTERDOWN`), in milliseconds.
const MIN_RETRY_WAIT_MS: u64 = 10;
/// The longest wait before a retry that waits, in milliseconds.
const MAX_RETRY_WAIT_MS: u64 = 100;

/// `OPTIONS` of a cluster location beyond the common Redis ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClusterOptions {
    /// `OPTIONS["read_from_replicas"]` (default `false`, as redis-py's `RedisCluster`): reads
    /// (`GET`, `EXISTS`) go to a replica of the slot's master (`READONLY` connections). A load
    /// right after a save may then miss it on a lagging replica.
    pub read_from_replicas: bool,
}

/// A cluster's client: the seed nodes and how to connect to each node.
pub(crate) struct ClusterTarget {
    client: ClusterClient,
}

impl ClusterTarget {
    /// A client for the cluster at `location`. Does not connect.
    pub(crate) fn open(
        location: &ClusterLocation,
        options: &RedisOptions,
        cluster: ClusterOptions,
    ) -> Result<Self, String> {
        if location
            .seeds()
            .iter()
            .any(|seed| seed.starts_with("rediss://"))
        {
            // redis's rustls needs a process-wide crypto provider; ring is the one built in.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let mut builder = ClusterClientBuilder::new(location.seeds().iter().map(String::as_str))
            .connection_timeout(options.connect_timeout)
            .response_timeout(options.socket_timeout)
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(MIN_RETRY_WAIT_MS)
            .max_retry_wait(MAX_RETRY_WAIT_MS);
        if cluster.read_from_replicas {
            builder = builder.read_routing_strategy(RandomReplicaStrategy);
        }
        let client = builder.build().map_err(|error| error.to_string())?;
        Ok(Self { client })
    }

    /// A new cluster connection: reads the slot map from the first seed that answers and
    /// connects to the nodes it names, with the command timeouts set on every socket.
    pub(crate) fn connect(&self, options: &RedisOptions) -> RedisResult<ClusterConnection> {
        let connection = self.client.get_connection()?;
        connection.set_write_timeout(Some(options.socket_timeout))?;
        Ok(connection)
    }
}
