#!/usr/bin/env bash
# Make the benchmark's logs with a real PostgreSQL 15 (pgbench plus commit-time FK failures), by
# calling the shared generator, then the 2x and 5x files for the scaling figures.
# Usage (as root): bench/make_logs.sh [TARGET_MB] [OUTDIR]
set -euo pipefail
TARGET_MB=${1:-1024}
OUT=${2:-/tmp/logdiag-bench}
GENERATOR=$(cd "$(dirname "$0")/../.." && pwd)/shared/bench/make_big_logs.sh
[ -x "$GENERATOR" ] || { echo "missing $GENERATOR (shared/ must sit next to the repository)" >&2; exit 2; }
BASE="$OUT/work" bash "$GENERATOR" "$TARGET_MB" statement
LOGS="$OUT/work/logs-statement"
# Scaling: the same real log repeated (each copy is a valid log; session ids repeat, so the
# kept sessions grow with the copies, as they would with more traffic).
for n in 2 5; do
  mkdir -p "$OUT/x$n"
  for f in postgresql.csv postgresql.json postgresql.log; do
    for _ in $(seq "$n"); do cat "$LOGS/$f"; done > "$OUT/x$n/$f"
  done
done
echo "logs in $LOGS, $OUT/x2, $OUT/x5"
