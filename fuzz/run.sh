#!/usr/bin/env bash
# Runs every fuzz target for N minutes each (default 2), one after another, seeded with the
# committed corpus fuzz/corpus/<target>/. New interesting inputs go to fuzz/artifacts/<target>/
# corpus/ (not committed; copy a small one into fuzz/corpus/ to keep it), crashes to
# fuzz/artifacts/<target>/ (add each, minimised, to fuzz/corpus/ with its fix).
#
#   bash fuzz/run.sh [minutes-per-target] [target ...]
#
# FUZZ_SANITIZER picks cargo-fuzz's sanitizer (default address; `none` builds faster and still
# catches panics). Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Prints one line per
# target with executions and crashes; exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-2}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
fi
status=0
summary=()
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target/corpus"
  log="fuzz/artifacts/$target/last-run.log"
  echo "==> $target for $minutes minute(s)"
  if cargo +nightly fuzz run --fuzz-dir fuzz --sanitizer "${FUZZ_SANITIZER:-address}" "$target" "fuzz/artifacts/$target/corpus" "fuzz/corpus/$target" -- \
      -max_total_time=$((minutes * 60)) -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 >"$log" 2>&1; then
    crashed=0
  else
    crashed=1
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
  line="$target: ${runs:-?} executions, $crashed crash(es)"
  if [ "$crashed" = 1 ]; then
    line="$line (see $log)"
  fi
  summary+=("$line")
done
printf '\n%s\n' "${summary[@]}"
exit "$status"
