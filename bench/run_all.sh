#!/usr/bin/env bash
# Run the core Ruang benchmarks in turn (about 10 minutes on 2 cores; name others to run
# them). Each one starts its own server in a temporary folder, prints its summary line here
# and writes its JSON result to bench/out/<name>.json (git-ignored).
# Usage: bench/run_all.sh [name ...]
set -uo pipefail
cd "$(dirname "$0")/.."
RUANG=${RUANG:-.venv/bin/ruang}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(latency s2s cpu listeners isolation stage failover)
{
  echo "nproc: $(nproc)"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "uptime: $(uptime)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
} > "$OUT/machine.txt"
: > "$OUT/summary.txt"
status=0
for name in "${names[@]}"; do
  echo "== $RUANG bench $name --out $OUT/$name.json" >&2
  if "$RUANG" bench "$name" --out "$OUT/$name.json" > "$OUT/$name.log" 2> "$OUT/$name.err"; then
    tail -n 1 "$OUT/$name.log" | tee -a "$OUT/summary.txt"
  else
    echo "$name: FAILED (see $OUT/$name.err)" | tee -a "$OUT/summary.txt"
    status=1
  fi
done
exit $status
