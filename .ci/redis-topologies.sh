# Sourced by .ci/run (bash): starts, from the installed redis-server, a private Redis Cluster
# (3 masters with one replica each, ports 7100-7105) and a Sentinel setup (master 7200, replica
# 7201, Sentinels 7300-7302 watching service "sessionkit"), and exports
# SESSIONKIT_TEST_REDIS_CLUSTER_URL and SESSIONKIT_TEST_REDIS_SENTINEL_URL. Idempotent: servers
# that already answer are left alone. Data and logs live under $SESSIONKIT_REDIS_TOPOLOGY_DIR
# (default /tmp/sessionkit-redis-topologies). Tests never kill these servers: failover tests
# start their own on other ports.

topology_dir="${SESSIONKIT_REDIS_TOPOLOGY_DIR:-/tmp/sessionkit-redis-topologies}"
mkdir -p "$topology_dir"

redis_answers() { redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG; }

wait_for_redis() {
  for _ in $(seq 1 50); do redis_answers "$1" && return 0; sleep 0.2; done
  echo "redis-server on port $1 did not start (see $topology_dir/*$1*.log)" >&2
  return 1
}

# --- Redis Cluster: 7100-7105 ---
for port in 7100 7101 7102 7103 7104 7105; do
  if ! redis_answers "$port"; then
    mkdir -p "$topology_dir/cluster-$port"
    # cluster-require-full-coverage no: while a failed master's slots wait for their replica,
    # the other slots keep serving (the default stops the whole cluster).
    redis-server --port "$port" --bind 127.0.0.1 --daemonize yes \
      --cluster-enabled yes --cluster-config-file "nodes-$port.conf" \
      --cluster-node-timeout 2000 --cluster-require-full-coverage no \
      --save "" --appendonly no --dir "$topology_dir/cluster-$port" \
      --logfile "$topology_dir/cluster-$port.log"
    wait_for_redis "$port"
  fi
done
if redis-cli -p 7100 cluster info | grep -q '^cluster_slots_assigned:0'; then
  redis-cli --cluster create 127.0.0.1:7100 127.0.0.1:7101 127.0.0.1:7102 \
    127.0.0.1:7103 127.0.0.1:7104 127.0.0.1:7105 --cluster-replicas 1 --cluster-yes >/dev/null
fi
for _ in $(seq 1 100); do
  ok=yes
  for port in 7100 7101 7102 7103 7104 7105; do
    redis-cli -p "$port" cluster info | grep -q '^cluster_state:ok' || ok=no
  done
  [ "$ok" = yes ] && break
  sleep 0.2
done
redis-cli -p 7100 cluster info | grep '^cluster_state:ok'
export SESSIONKIT_TEST_REDIS_CLUSTER_URL="${SESSIONKIT_TEST_REDIS_CLUSTER_URL:-redis+cluster://127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102}"

# --- Sentinel: master 7200, replica 7201, Sentinels 7300-7302, service "sessionkit" ---
for port in 7200 7201; do
  if ! redis_answers "$port"; then
    mkdir -p "$topology_dir/sentinel-data-$port"
    replica_of=()
    [ "$port" = 7201 ] && replica_of=(--replicaof 127.0.0.1 7200)
    redis-server --port "$port" --bind 127.0.0.1 --daemonize yes "${replica_of[@]}" \
      --save "" --appendonly no --dir "$topology_dir/sentinel-data-$port" \
      --logfile "$topology_dir/sentinel-data-$port.log"
    wait_for_redis "$port"
  fi
done
for port in 7300 7301 7302; do
  if ! redis_answers "$port"; then
    # A Sentinel rewrites its configuration file, so each gets its own.
    cat >"$topology_dir/sentinel-$port.conf" <<EOF
port $port
bind 127.0.0.1
daemonize yes
dir $topology_dir
logfile $topology_dir/sentinel-$port.log
sentinel monitor sessionkit 127.0.0.1 7200 2
sentinel down-after-milliseconds sessionkit 2000
sentinel failover-timeout sessionkit 10000
sentinel parallel-syncs sessionkit 1
EOF
    redis-server "$topology_dir/sentinel-$port.conf" --sentinel
    wait_for_redis "$port"
  fi
done
for _ in $(seq 1 50); do
  redis-cli -p 7300 sentinel get-master-addr-by-name sessionkit 2>/dev/null | grep -q . && break
  sleep 0.2
done
redis-cli -p 7300 sentinel get-master-addr-by-name sessionkit
export SESSIONKIT_TEST_REDIS_SENTINEL_URL="${SESSIONKIT_TEST_REDIS_SENTINEL_URL:-redis+sentinel://127.0.0.1:7300,127.0.0.1:7301,127.0.0.1:7302/sessionkit/0}"
