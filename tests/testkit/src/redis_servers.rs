//! Redis beyond one server for tests: the shared cluster and Sentinel set `.ci/run` starts (their
//! URLs from the environment), and private ones a test may kill — `redis-server` processes on
//! free loopback ports in a temporary directory, killed when dropped. Admin commands go through
//! `redis-cli`, so this crate needs no Redis client. The shared servers (6379, 7100–7105,
//! 7200–7201, 7300–7302) are never touched here.

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::server_url;

/// The shared Redis Cluster's URL for tests that need one (unset = those tests skip).
pub const REDIS_CLUSTER_URL_ENV: &str = "SESSIONKIT_TEST_REDIS_CLUSTER_URL";

/// The shared Sentinel set's URL for tests that need one (unset = those tests skip).
pub const REDIS_SENTINEL_URL_ENV: &str = "SESSIONKIT_TEST_REDIS_SENTINEL_URL";

/// The cluster URL from `$SESSIONKIT_TEST_REDIS_CLUSTER_URL`, or `None` after printing
/// `skipped: ... not set`.
pub fn redis_cluster_url() -> Option<String> {
    server_url(REDIS_CLUSTER_URL_ENV, "Redis Cluster")
}

/// The Sentinel URL from `$SESSIONKIT_TEST_REDIS_SENTINEL_URL`, or `None` after printing
/// `skipped: ... not set`.
pub fn redis_sentinel_url() -> Option<String> {
    server_url(REDIS_SENTINEL_URL_ENV, "Redis Sentinel")
}

/// Whether `redis-server` and `redis-cli` can be run; prints why not when they cannot.
pub fn redis_tools_installed() -> bool {
    let runs = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if runs("redis-server") && runs("redis-cli") {
        true
    } else {
        println!("skipped: redis-server or redis-cli is not installed (apt-get install redis)");
        false
    }
}

/// Runs `redis-cli -p port args…` and returns its output (stdout), or the failure as text.
///
/// # Errors
///
/// When `redis-cli` cannot run or exits unsuccessfully.
pub fn redis_cli(port: u16, args: &[&str]) -> Result<String, String> {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .map_err(|error| format!("redis-cli does not run: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "redis-cli -p {port} {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `field:value` of an `INFO`/`CLUSTER INFO` reply.
pub fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines().find_map(|line| {
        line.trim()
            .strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::to_owned)
    })
}

/// Polls `check` every 50 ms until it gives `true`, for at most `limit`.
///
/// # Panics
///
/// With `what` when `limit` passes first.
pub fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "gave up after {limit:?}: {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback port that was free a moment ago, whose cluster bus port (+10000) was free too.
fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("a free loopback port");
        if port <= 55_535 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// One private `redis-server` (or Sentinel) process, killed when dropped.
#[derive(Debug)]
pub struct RedisProcess {
    child: Option<Child>,
    port: u16,
}

impl RedisProcess {
    /// Starts `redis-server` on `port` in `dir` with `args` (and no persistence), and waits
    /// until it answers `PING`.
    ///
    /// # Panics
    ///
    /// When it does not start within 20 s.
    pub fn start(port: u16, dir: &Path, args: &[&str]) -> Self {
        let child = Command::new("redis-server")
            .args(args)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let process = Self {
            child: Some(child),
            port,
        };
        wait_until(
            Duration::from_secs(20),
            &format!("redis-server on port {port} answers PING"),
            || redis_cli(port, &["ping"]).is_ok_and(|out| out.contains("PONG")),
        );
        process
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether it is running (not killed by [`kill`](Self::kill)).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private Redis Cluster: `masters` masters with one replica each, on free ports, with a
/// short `cluster-node-timeout` (1 s) so a failover takes seconds, and
/// `cluster-require-full-coverage no` so the other slots keep serving meanwhile.
#[derive(Debug)]
pub struct PrivateCluster {
    nodes: Vec<RedisProcess>,
    // Dropped after the nodes (fields drop in order).
    dir: tempfile::TempDir,
}

impl PrivateCluster {
    /// Starts the nodes, creates the cluster (`redis-cli --cluster create … --cluster-replicas
    /// 1`) and waits until every node reports `cluster_state:ok`. `None` (after printing why)
    /// without `redis-server`.
    ///
    /// # Panics
    ///
    /// When the cluster does not form within 60 s.
    pub fn start(masters: usize) -> Option<Self> {
        if !redis_tools_installed() {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("sessionkit-cluster-")
            .tempdir()
            .expect("a temporary directory");
        let nodes: Vec<RedisProcess> = (0..masters * 2)
            .map(|_| {
                let port = free_port();
                let node_dir = dir.path().join(port.to_string());
                std::fs::create_dir_all(&node_dir).expect("a node directory");
                RedisProcess::start(
                    port,
                    &node_dir,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-node-timeout",
                        "1000",
                        "--cluster-require-full-coverage",
                        "no",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ],
                )
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(addresses.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "1", "--cluster-yes"]);
        redis_cli(nodes[0].port(), &create).expect("the cluster is created");
        let cluster = Self { nodes, dir };
        cluster.wait_healthy(Duration::from_secs(60));
        Some(cluster)
    }

    /// `redis+cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// The ports of the running nodes.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|node| node.is_running())
            .map(RedisProcess::port)
            .collect()
    }

    /// The port of the master serving `slot`, asked of a running node (`CLUSTER SLOTS` through
    /// `CLUSTER NODES`).
    ///
    /// # Panics
    ///
    /// When no running node answers or no master serves the slot.
    pub fn master_of_slot(&self, slot: u16) -> u16 {
        let nodes = self.cluster_nodes();
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let serves = fields[8..].iter().any(|range| {
                let (start, end) = range.split_once('-').unwrap_or((range, range));
                match (start.parse::<u16>(), end.parse::<u16>()) {
                    (Ok(start), Ok(end)) => (start..=end).contains(&slot),
                    _ => false,
                }
            });
            if serves {
                return port_of(fields[1]);
            }
        }
        panic!("no master serves slot {slot}:\n{nodes}");
    }

    /// `CLUSTER NODES` as a running node sees it.
    ///
    /// # Panics
    ///
    /// When no running node answers.
    pub fn cluster_nodes(&self) -> String {
        self.ports()
            .into_iter()
            .find_map(|port| redis_cli(port, &["cluster", "nodes"]).ok())
            .expect("a running node answers CLUSTER NODES")
    }

    /// Kills the node on `port` (SIGKILL).
    ///
    /// # Panics
    ///
    /// When no node of this cluster listens there.
    pub fn kill(&mut self, port: u16) {
        self.nodes
            .iter_mut()
            .find(|node| node.port() == port)
            .expect("a node of this cluster")
            .kill();
    }

    /// Waits until every master's replica has acknowledged all of its master's writes, so a
    /// failover loses nothing written before.
    ///
    /// # Panics
    ///
    /// When the replicas do not catch up within 20 s.
    pub fn wait_replicated(&self) {
        for port in self.ports() {
            wait_replicated(port);
        }
    }

    /// Waits until every running node reports `cluster_state:ok` and no slot is unserved.
    ///
    /// # Panics
    ///
    /// When that does not happen within `limit`.
    pub fn wait_healthy(&self, limit: Duration) {
        wait_until(limit, "every node reports cluster_state:ok", || {
            self.ports().into_iter().all(|port| {
                redis_cli(port, &["cluster", "info"]).is_ok_and(|info| {
                    info_field(&info, "cluster_state").as_deref() == Some("ok")
                        && info_field(&info, "cluster_slots_ok").as_deref() == Some("16384")
                })
            })
        });
    }

    /// The directory holding the nodes' data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The port of a `CLUSTER NODES` address (`127.0.0.1:7000@17000`).
fn port_of(address: &str) -> u16 {
    address
        .split('@')
        .next()
        .and_then(|host_port| host_port.rsplit(':').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("'{address}' has no port"))
}

/// Waits until the master on `port` (if it is one) sees each replica at its own offset.
fn wait_replicated(port: u16) {
    wait_until(
        Duration::from_secs(20),
        &format!("the replicas of {port} catch up"),
        || {
            let Ok(info) = redis_cli(port, &["info", "replication"]) else {
                return false;
            };
            if info_field(&info, "role").as_deref() != Some("master") {
                return true;
            }
            let Some(offset) = info_field(&info, "master_repl_offset") else {
                return false;
            };
            let replicas: usize = info_field(&info, "connected_slaves")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            (0..replicas).all(|index| {
                info_field(&info, &format!("slave{index}"))
                    .is_some_and(|line| line.contains(&format!("offset={offset},")))
            })
        },
    );
}

/// A private Sentinel set: a master, one replica, and three Sentinels watching the service
/// [`PrivateSentinel::SERVICE`] (quorum 2, `down-after-milliseconds` 1000), on free ports.
#[derive(Debug)]
pub struct PrivateSentinel {
    master: RedisProcess,
    replica: RedisProcess,
    sentinels: Vec<RedisProcess>,
    dir: tempfile::TempDir,
}

impl PrivateSentinel {
    /// The service name the Sentinels monitor.
    pub const SERVICE: &'static str = "sktest";

    /// Starts the master, its replica and three Sentinels, and waits until the Sentinels name
    /// the master and see its replica. `None` (after printing why) without `redis-server`.
    ///
    /// # Panics
    ///
    /// When the set does not come up within 30 s.
    pub fn start() -> Option<Self> {
        if !redis_tools_installed() {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("sessionkit-sentinel-")
            .tempdir()
            .expect("a temporary directory");
        let data = ["--save", "", "--appendonly", "no"];
        let master = RedisProcess::start(free_port(), dir.path(), &data);
        let master_port = master.port().to_string();
        let mut replica_args = data.to_vec();
        replica_args.extend(["--replicaof", "127.0.0.1", &master_port]);
        let replica_dir = dir.path().join("replica");
        std::fs::create_dir_all(&replica_dir).expect("a replica directory");
        let replica = RedisProcess::start(free_port(), &replica_dir, &replica_args);
        let sentinels = (0..3)
            .map(|index| {
                let config = dir.path().join(format!("sentinel-{index}.conf"));
                std::fs::write(
                    &config,
                    format!(
                        "sentinel monitor {service} 127.0.0.1 {master_port} 2\n\
                         sentinel down-after-milliseconds {service} 1000\n\
                         sentinel failover-timeout {service} 5000\n\
                         sentinel parallel-syncs {service} 1\n",
                        service = Self::SERVICE
                    ),
                )
                .expect("the Sentinel configuration is written");
                let config = config.to_string_lossy().into_owned();
                RedisProcess::start(free_port(), dir.path(), &[&config, "--sentinel"])
            })
            .collect();
        let set = Self {
            master,
            replica,
            sentinels,
            dir,
        };
        wait_until(
            Duration::from_secs(30),
            "the Sentinels see the master and its replica",
            || {
                set.sentinels.iter().all(|sentinel| {
                    redis_cli(
                        sentinel.port(),
                        &["sentinel", "master", PrivateSentinel::SERVICE],
                    )
                    .is_ok_and(|out| {
                        let lines: Vec<&str> = out.lines().collect();
                        lines
                            .windows(2)
                            .any(|pair| pair[0] == "num-slaves" && pair[1] == "1")
                            && lines
                                .windows(2)
                                .any(|pair| pair[0] == "num-other-sentinels" && pair[1] == "2")
                    })
                })
            },
        );
        Some(set)
    }

    /// `redis+sentinel://<the three Sentinels>/<SERVICE>/<db>`.
    pub fn url(&self, db: u32) -> String {
        let sentinels: Vec<String> = self
            .sentinels
            .iter()
            .map(|sentinel| format!("127.0.0.1:{}", sentinel.port()))
            .collect();
        format!(
            "redis+sentinel://{}/{}/{db}",
            sentinels.join(","),
            Self::SERVICE
        )
    }

    /// The master's port as the Sentinels started with it.
    pub fn master_port(&self) -> u16 {
        self.master.port()
    }

    /// The replica's port (the master after a failover).
    pub fn replica_port(&self) -> u16 {
        self.replica.port()
    }

    /// The master's port as the first running Sentinel names it now.
    pub fn named_master_port(&self) -> Option<u16> {
        let out = redis_cli(
            self.sentinels[0].port(),
            &["sentinel", "get-master-addr-by-name", Self::SERVICE],
        )
        .ok()?;
        out.lines().nth(1)?.trim().parse().ok()
    }

    /// Waits until the replica has every write of the master.
    pub fn wait_replicated(&self) {
        wait_replicated(self.master.port());
    }

    /// Kills the master (SIGKILL).
    pub fn kill_master(&mut self) {
        self.master.kill();
    }

    /// The directory holding the servers' data and the Sentinels' configuration.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
