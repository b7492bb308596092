#!/usr/bin/env bash
# Instructions per request, sessionkit next to tower-sessions, counted by valgrind's callgrind
# (load-independent, so it can run on a busy machine). Reproduces the table in BENCHMARKS.md
# ("Instructions per request").
#
# Each case runs a driver twice under callgrind, with 0 and with N counted requests after the
# same warm-up; (Ir(N) - Ir(0)) / N is the cost of one request. Drivers:
#   sessionkit:     host/http/benches/callgrind.rs (the cache engine, in process)
#   tower-sessions: bench/peers (tower-sessions 0.14, MemoryStore; its own workspace, so the
#                   main workspace's tests never compile it)
#
# Usage: scripts/callgrind.sh [N]        (default N=2000; needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
TARGET=${CARGO_TARGET_DIR:-$PWD/target}

echo "building drivers (release profile)..." >&2
cargo build --release -p sessionkit-engine-cache >&2
ours=$(cargo bench -p sessionkit-http --bench callgrind --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*callgrind[^"]*\)".*/\1/p' | tail -1)
CARGO_TARGET_DIR="$TARGET/peers" cargo build --release --manifest-path bench/peers/Cargo.toml >&2
peer="$TARGET/peers/release/sessionkit-bench-peers"
[ -x "$ours" ] && [ -x "$peer" ] || { echo "driver binaries not found" >&2; exit 1; }

# Total instructions of one driver run.
instructions() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
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
echo "| request (in process, cache / MemoryStore) | sessionkit | tower-sessions 0.14 | ratio |"
echo "| --- | ---: | ---: | ---: |"
for case in no_session read write write_reference; do
  a=$(per_request "$ours" "$case")
  b=$(per_request "$peer" "$case")
  echo "| $case | $(kilo "$a") | $(kilo "$b") | $(ratio "$a" "$b") |"
  [ "$case" = read ] && peer_read=$b
  [ "$case" = no_session ] && peer_base=$b
done
echo
echo "| codec step on the 213-byte reference session | sessionkit | vs tower-sessions' read request | vs its read above no-session |"
echo "| --- | ---: | ---: | ---: |"
for case in codec_encode codec_decode; do
  a=$(per_request "$ours" "$case")
  echo "| $case | $(kilo "$a") | $(ratio "$a" "$peer_read") | $(ratio "$a" $((peer_read - peer_base))) |"
done
