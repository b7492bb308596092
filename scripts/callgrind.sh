#!/usr/bin/env bash
# Instructions per request, sessionkit next to tower-sessions, counted by valgrind's callgrind
# (load-independent, so it can run on a busy machine). Reproduces the tables in BENCHMARKS.md
# ("Instructions per request", "Issue 11: measured before the write-path changes").
#
# Each case runs a driver twice under callgrind, with 0 and with N counted requests after the
# same warm-up; (Ir(N) - Ir(0)) / N is the cost of one request, where Ir counts from the
# driver's start_counting() marker (called after the warm-up) to the end of the run. All threads
# are counted (the blocking pool, fred's and sqlx's tasks and threads); the kernel's side of
# Redis and SQLite I/O is not, on either side. Drivers:
#   sessionkit:     host/http/benches/callgrind.rs — engine plugins loaded as SESSION_ENGINE
#                   would: `cache` in process (locmem), `cache` on Redis (fresh KEY_PREFIX),
#                   `db` on a fresh SQLite file (WAL, synchronous=FULL), and `signed_cookies`
#                   (no peer: tower-sessions has no cookie store); a Prometheus recorder
#                   installed, so the host's metrics are counted.
#   tower-sessions: bench/peers (tower-sessions 0.14: MemoryStore; tower-sessions-redis-store
#                   0.16 on fred; tower-sessions-sqlx-store 0.15 on a fresh SQLite file, WAL,
#                   synchronous=FULL; its own workspace, so the main workspace never builds it).
#
# Redis: $SESSIONKIT_TEST_REDIS_URL, else redis://127.0.0.1:6379 (nothing is flushed: our keys
# carry a fresh prefix, the peer's are random session ids; both expire after an hour).
#
# Usage: scripts/callgrind.sh [N]        (default N=2000; needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
TARGET=${CARGO_TARGET_DIR:-$PWD/target}

echo "building drivers (release profile; the engine plugins are the bench's dev-dependencies)..." >&2
ours=$(cargo bench -p sessionkit-http --bench callgrind --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*callgrind[^"]*\)".*/\1/p' | tail -1)
CARGO_TARGET_DIR="$TARGET/peers" cargo build --release --manifest-path bench/peers/Cargo.toml >&2
peer="$TARGET/peers/release/sessionkit-bench-peers"
[ -x "$ours" ] && [ -x "$peer" ] || { echo "driver binaries not found" >&2; exit 1; }
# read_memo_miss reads a different session per request: the same N + 20 in both runs.
export CALLGRIND_SESSIONS=$((N + 20))

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Instructions of one driver run from its start_counting() marker to its end (all threads):
# callgrind dumps and zeroes its counts on entry to the marker, so start-up work whose count
# varies between runs (quanta's clock calibration, connection set-up) is left out.
instructions() {
  local out
  rm -f "$work"/cg.out*
  out=$(valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
    --dump-before='*start_counting*' "$@" 2>&1) || { echo "failed: $*" >&2; tail -20 <<<"$out" >&2; exit 1; }
  [ -f "$work/cg.out.1" ] || { echo "no start_counting() marker in: $*" >&2; exit 1; }
  sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$work/cg.out" | grep . \
    || { echo "no instruction count from: $*" >&2; exit 1; }
}
# Instructions per request of one case.
per_request() {
  local base counted
  base=$(instructions "$@" 0)
  counted=$(instructions "$@" "$N")
  echo $(( (counted - base) / N ))
}
kilo() { awk -v n="$1" 'BEGIN { printf "%.1f k", n / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "N=$N requests per case; valgrind $(valgrind --version)"
echo
echo "| request | sessionkit (metrics on) | tower-sessions 0.14 | ratio |"
echo "| --- | ---: | ---: | ---: |"
# case, its row label, the peer's case
rows=(
  "no_session|no session|no_session"
  "read|in-process read (cache locmem / MemoryStore)|read"
  "write|in-process write|write"
  "write_reference|in-process write_reference (5-key, 213 B)|write_reference"
  "redis_read|Redis read (cache / RedisStore, fred)|redis_read"
  "redis_write|Redis write|redis_write"
  "sqlite_read|SQLite read (db / SqliteStore, sqlx; WAL, FULL)|sqlite_read"
  "sqlite_write|SQLite write|sqlite_write"
  "signed_cookies_read|signed cookies read (no tower-sessions store)|"
  "signed_cookies_write|signed cookies write|"
)
for row in "${rows[@]}"; do
  IFS='|' read -r case label peer_case <<<"$row"
  a=$(per_request "$ours" "$case")
  if [ -z "$peer_case" ]; then
    echo "| $label | $(kilo "$a") | – | – |"
    continue
  fi
  b=$(per_request "$peer" "$peer_case")
  echo "| $label | $(kilo "$a") | $(kilo "$b") | $(ratio "$a" "$b") |"
  [ "$case" = read ] && peer_read=$b
  [ "$case" = no_session ] && peer_base=$b
done
echo
echo "| read that misses the decode memo, and the codec on the 213-byte reference session | sessionkit | vs tower-sessions' read request | vs its read above no-session |"
echo "| --- | ---: | ---: | ---: |"
for case in read_memo_miss codec_encode codec_decode; do
  a=$(per_request "$ours" "$case")
  echo "| $case | $(kilo "$a") | $(ratio "$a" "$peer_read") | $(ratio "$a" $((peer_read - peer_base))) |"
done
