#!/usr/bin/env bash
# A CLI command against the local PostgreSQL over TLS (BENCHMARKS.md, "PostgreSQL
# connections"): `vexil flags list` with sslmode=require and with sslmode=disable,
# next to `psql -c 'select 1'` with sslmode=require, run alternately, wall time per
# run from spawn to exit; prints the median and the range of each in milliseconds.
#
#   cargo build --release -p vexil-cli && bash xtask/pg_connect_bench.sh [VEXIL] [RUNS]
#
# VEXIL defaults to target/release/vexil (under $CARGO_TARGET_DIR if set), RUNS to 20.
# Uses the database vexil_connect_bench on the local PostgreSQL (dropped first), and
# the example flags file. The server must have TLS on (Debian's default).
set -euo pipefail
cd "$(dirname "$0")/.."
vexil=${1:-${CARGO_TARGET_DIR:-$PWD/target}/release/vexil}
runs=${2:-20}
psql -X -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS vexil_connect_bench" \
    -c "CREATE DATABASE vexil_connect_bench"
base=postgres://postgres@127.0.0.1:5432/vexil_connect_bench
export VEXIL_FLAGS=$PWD/examples/feature_flags.yaml
DATABASE_URL=$base "$vexil" migrate >/dev/null

micros() {
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }
    end=$(date +%s%N)
    echo $(((end - start) / 1000))
}
# The median and range of microsecond figures, as milliseconds.
summary() {
    sort -n | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "median %.1f ms (%.1f-%.1f, %d runs)\n", m / 1000, v[1] / 1000, v[NR] / 1000, NR }'
}

tls=() plain=() psql_tls=()
for _ in $(seq "$runs"); do
    tls+=("$(DATABASE_URL="$base?sslmode=require" micros "$vexil" flags list)")
    plain+=("$(DATABASE_URL="$base?sslmode=disable" micros "$vexil" flags list)")
    psql_tls+=("$(micros psql -X -q "$base?sslmode=require" -c 'select 1')")
done
echo "vexil flags list, sslmode=require: $(printf '%s\n' "${tls[@]}" | summary)"
echo "vexil flags list, sslmode=disable: $(printf '%s\n' "${plain[@]}" | summary)"
echo "psql -c 'select 1', sslmode=require: $(printf '%s\n' "${psql_tls[@]}" | summary)"
