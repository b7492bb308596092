#!/usr/bin/env bash
# Requests per second over loopback HTTP (keep-alive), sessionkit next to tower-sessions 0.14 and
# next to a route without sessions, driven by wrk in the same run. Reproduces the HTTP table of
# BENCHMARKS.md ("Issue 11: measured before the write-path changes").
#
# Servers (both axum 0.8 on a tokio multi-thread runtime with the default worker count, bound to
# 127.0.0.1 on a free port, killed at exit):
#   sessionkit:     host/http/benches/http_server.rs — SessionLayer over the `cache` engine in
#                   process (locmem), `signed_cookies`, `cache` on Redis (fresh KEY_PREFIX) and
#                   `db` on a fresh SQLite file (WAL, synchronous=FULL); metrics recorder on.
#   tower-sessions: bench/peers `serve` — SessionManagerLayer over MemoryStore, RedisStore (fred,
#                   a pool of 6) and SqliteStore (sqlx, WAL, synchronous=FULL). No cookie store:
#                   the signed_cookies rows have no peer.
# Each server has /none (no session layer), /<store>/read (reads one value) and /<store>/write
# (writes one value, a new one each request). Every request is a returning visitor: curl gets a
# session cookie from /<store>/write first, then wrk sends it with each request.
#
# For each store × request × connection count, ROUNDS rounds each run no-session, sessionkit and
# tower-sessions for DURATION seconds in turn (the order rotates per round); the table gives the
# medians of successful requests/s. All connections send the same visitor's cookie, so writes
# race on one session: a failed response (a 500 from a save that gave up, say) is taken out of
# the rate and counted in the last column, summed over the rounds. wrk uses 2 threads. Load matters (2 cores shared with wrk itself): note `uptime`.
#
# Redis: $SESSIONKIT_TEST_REDIS_URL, else redis://127.0.0.1:6379 (nothing is flushed).
# $STORES (e.g. "redis sqlite") limits the run to those of locmem, signed_cookies, redis, sqlite.
# $SESSIONKIT_BENCH_CONCURRENT_WRITES=overwrite runs sessionkit with SESSION_CONCURRENT_WRITES =
# "overwrite" (last writer wins, as Django and tower-sessions) instead of the default "merge".
# Usage: scripts/http-bench.sh [ROUNDS] [DURATION_SECONDS] [CONNECTIONS...]
#        (defaults: 3 rounds, 3 s, connections 2 and 16; needs wrk and curl)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
DURATION=${2:-3}
shift $(( $# > 2 ? 2 : $# ))
CONNECTIONS=("${@:-2 16}")
read -r -a CONNECTIONS <<<"${CONNECTIONS[*]}"
for tool in wrk curl; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done
TARGET=${CARGO_TARGET_DIR:-$PWD/target}

echo "building servers (release profile)..." >&2
ours=$(cargo bench -p sessionkit-http --bench http_server --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*http_server[^"]*\)".*/\1/p' | tail -1)
CARGO_TARGET_DIR="$TARGET/peers" cargo build --release --manifest-path bench/peers/Cargo.toml >&2
peer="$TARGET/peers/release/sessionkit-bench-peers"
[ -x "$ours" ] && [ -x "$peer" ] || { echo "server binaries not found" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Starts a server (its command line after the name); prints its port once it is ready.
start() {
  local name=$1
  shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  for _ in $(seq 600); do
    if grep -q '^ready ' "$work/$name.out"; then
      sed -n 's/^ready \([0-9]*\)$/\1/p' "$work/$name.out"
      return
    fi
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not start:" >&2
  cat "$work/$name.err" >&2
  exit 1
}
# start runs in this shell (not a subshell), so its pid lands in `pids`.
start ours "$ours" 0 >"$work/ours.port"
start peer "$peer" serve 0 >"$work/peer.port"
ours_port=$(cat "$work/ours.port")
peer_port=$(cat "$work/peer.port")

# The `name=value` of the session cookie a write to URL sets.
session_cookie() {
  local cookie
  cookie=$(curl -sS -D - -o /dev/null "$1" | tr -d '\r' \
    | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -1)
  [ -n "$cookie" ] || { echo "no session cookie from $1" >&2; exit 1; }
  # The returning visitor's request must succeed with it.
  curl -sSf -o /dev/null -H "Cookie: $cookie" "$1" || { echo "$1 fails with its cookie" >&2; exit 1; }
  echo "$cookie"
}

# "<successful requests/s> <failed responses>" of one wrk run: URL, connections, cookie (may be
# empty). wrk counts failed (non-2xx) responses as requests; they are taken out of the rate and
# reported, and their first one is kept in $work/failed.<port> for the report.
rate() {
  local url=$1 connections=$2 cookie=$3 out total failed per_s
  local args=(-t 2 -c "$connections" -d "${DURATION}s")
  if [ -n "$cookie" ]; then args+=(-H "Cookie: $cookie"); fi
  out=$(wrk "${args[@]}" "$url")
  if grep -q 'Socket errors' <<<"$out"; then
    echo "warning, $url: $(grep 'Socket errors' <<<"$out")" >&2
  fi
  total=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$out")
  failed=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\)/\1/p' <<<"$out")
  per_s=$(sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p' <<<"$out")
  [ -n "$total" ] && [ -n "$per_s" ] || { echo "no figures from wrk on $url:" >&2; echo "$out" >&2; exit 1; }
  awk -v r="$per_s" -v t="$total" -v f="${failed:-0}" 'BEGIN { printf "%.1f %d\n", t ? r * (t - f) / t : 0, f }'
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
fmt() { awk -v n="$1" 'BEGIN { if (n == "") print "–"; else printf "%.0f", n }'; }
share() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "") print "–"; else printf "%.0f %%", 100 * a / b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "") print "–"; else printf "%.2f", a / b }'; }

echo "uptime at start: $(uptime)"
echo "sessionkit SESSION_CONCURRENT_WRITES: ${SESSIONKIT_BENCH_CONCURRENT_WRITES:-merge (default)}"
echo "wrk: 2 threads, keep-alive; $ROUNDS rounds × ${DURATION} s per server, medians; $(nproc) cores"
echo
echo "| store (sessionkit / tower-sessions) | request | connections | sessionkit req/s | tower-sessions req/s | no-session req/s | sessionkit / no-session | sessionkit / tower-sessions | failed responses (sk / peer / none) |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
# our store, the peer's store (empty: none), the row label
stores=(
  "locmem|memory|cache locmem / MemoryStore"
  "signed_cookies||signed_cookies / –"
  "redis|redis|cache on Redis / RedisStore (fred)"
  "sqlite|sqlite|db on SQLite / SqliteStore (sqlx)"
)
for row in "${stores[@]}"; do
  IFS='|' read -r store peer_store label <<<"$row"
  if [ -n "${STORES:-}" ] && ! grep -qw -- "$store" <<<"$STORES"; then continue; fi
  ours_cookie=$(session_cookie "http://127.0.0.1:$ours_port/$store/write")
  peer_cookie=""
  if [ -n "$peer_store" ]; then
    peer_cookie=$(session_cookie "http://127.0.0.1:$peer_port/$peer_store/write")
  fi
  for request in read write; do
    for connections in "${CONNECTIONS[@]}"; do
      none="" sk="" pr="" none_f=0 sk_f=0 pr_f=0
      for round in $(seq "$ROUNDS"); do
        # Rotate who goes first, so a drift in load does not favour one server.
        order=(none ours peer)
        case $((round % 3)) in
          2) order=(ours peer none) ;;
          0) order=(peer none ours) ;;
        esac
        for who in "${order[@]}"; do
          r="" f=0
          case $who in
            none) read -r r f < <(rate "http://127.0.0.1:$ours_port/none" "$connections" "")
                  none+=" $r"; none_f=$((none_f + f)) ;;
            ours) read -r r f < <(rate "http://127.0.0.1:$ours_port/$store/$request" "$connections" "$ours_cookie")
                  sk+=" $r"; sk_f=$((sk_f + f)) ;;
            peer)
              if [ -n "$peer_store" ]; then
                read -r r f < <(rate "http://127.0.0.1:$peer_port/$peer_store/$request" "$connections" "$peer_cookie")
                pr+=" $r"; pr_f=$((pr_f + f))
              fi
              ;;
          esac
          if [ "$who" != peer ] || [ -n "$peer_store" ]; then
            [ -n "$r" ] || { echo "a wrk run failed" >&2; exit 1; }
          fi
        done
      done
      m_none=$(median <<<"$none")
      m_sk=$(median <<<"$sk")
      m_pr=""
      if [ -n "$pr" ]; then m_pr=$(median <<<"$pr"); else pr_f="–"; fi
      echo "| $label | $request | $connections | $(fmt "$m_sk") | $(fmt "$m_pr") | $(fmt "$m_none") | $(share "$m_sk" "$m_none") | $(ratio "$m_sk" "$m_pr") | $sk_f / $pr_f / $none_f |"
    done
  done
done
echo
echo "uptime at end: $(uptime)"
