#!/usr/bin/env bash
# End-to-end InfluxDB line protocol ingest, eddy vs VictoriaMetrics (Prometheus has no line
# protocol endpoint): the same Flink-shaped workload, written as Flink's InfluxdbReporter
# writes it (`gen --format influx`), replayed over HTTP to each server's `/write`. Prints
# acknowledged samples/s and server CPU-s per million samples. See docs/benchmarks.md.
#
#   benches/compare_influx.sh [--tms N] [--hours H] [--rounds R] [--work DIR]
#
# Defaults: 20 TMs x 0.5 h (~44 k series, 5.3 M samples, ~2.2 GB of request bodies); a
# request file of the same size already in the work dir is reused. As in
# compare.sh, each server runs alone on a fresh data dir on loopback, pinned to core 0, and
# the sender to core 1. With --rounds R (default 3) the two servers take turns R times, each on
# a fresh data dir, and the verdict uses each system's median: one replay takes seconds, and on
# a shared host one system's cost moves by a third between runs.
set -euo pipefail

TMS=20
HOURS=0.5
ROUNDS=3
WORK=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tms) TMS="$2"; shift ;;
    --hours) HOURS="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --work) WORK="$2"; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${WORK:-$(mktemp -d /tmp/eddy-influx.XXXXXX)}"
mkdir -p "$WORK"
EDDY_PORT=19211 VM_PORT=18438
SERVER_CPU=0 CLIENT_CPU=1
if [ "$(nproc)" -lt 2 ]; then CLIENT_CPU=0; fi
TCK=$(getconf CLK_TCK)
log() { echo "[influx $(date -u +%H:%M:%S)] $*" >&2; }

command -v victoria-metrics >/dev/null || {
  log "installing victoria-metrics"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends victoria-metrics >&2
}
log "building release binaries"
(cd "$ROOT" && cargo build --release -q -p eddy -p eddy-benches --bins) >&2
BIN="$ROOT/target/release"

REQ="$WORK/requests.lp"
if [ -f "$REQ.meta" ] && grep -qx "tms=$TMS" "$REQ.meta" && grep -qx "hours=$HOURS" "$REQ.meta"; then
  log "reusing $REQ ($TMS TMs x $HOURS h)"
else
  log "generating workload: $TMS TMs x $HOURS h -> $REQ"
  taskset -c $CLIENT_CPU "$BIN/gen" --out "$REQ" --tms "$TMS" --hours "$HOURS" --end now \
    --format influx >&2
fi
SAMPLES=$(sed -n 's/^samples=//p' "$REQ.meta")

wait_http() {
  for _ in $(seq 1 300); do curl -sf -o /dev/null "$1" && return 0; sleep 0.2; done
  echo "timeout waiting for $1" >&2; return 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

printf '| round | system | samples/s | server CPU-s per million samples | failed samples |\n' \
  > "$WORK/results.md"
printf '|---|---|---|---|---|\n' >> "$WORK/results.md"
: > "$WORK/rounds.tsv"
for round in $(seq 1 "$ROUNDS"); do
for sys in eddy vm; do
  data="$WORK/data-$sys"; rm -rf "$data"; mkdir -p "$data"
  case $sys in
    eddy)
      taskset -c $SERVER_CPU "$BIN/eddy" --listen 127.0.0.1:$EDDY_PORT --data-dir "$data" \
        > "$WORK/$sys.log" 2>&1 &
      pid=$!; url="http://127.0.0.1:$EDDY_PORT"; wait_http "$url/-/ready" ;;
    vm)
      taskset -c $SERVER_CPU victoria-metrics -storageDataPath "$data" \
        -httpListenAddr 127.0.0.1:$VM_PORT -retentionPeriod 1y > "$WORK/$sys.log" 2>&1 &
      pid=$!; url="http://127.0.0.1:$VM_PORT"; wait_http "$url/health" ;;
  esac
  log "round $round, $sys: pid $pid, sending $SAMPLES samples"
  c0=$(cpu_ticks $pid)
  out=$(taskset -c $CLIENT_CPU "$BIN/send" --url "$url/write?precision=ns" --file "$REQ" \
    --connections 4)
  c1=$(cpu_ticks $pid)
  kill $pid; wait $pid 2>/dev/null || true
  rm -rf "$data"
  acked=$(sed -n 's/.*acked=\([0-9]*\).*/\1/p' <<<"$out")
  rate=$(sed -n 's/.*rate=\([0-9]*\).*/\1/p' <<<"$out")
  failed=$(sed -n 's/.*failed_samples=\([0-9]*\).*/\1/p' <<<"$out")
  cpu=$(awk -v t=$((c1 - c0)) -v k=$TCK -v n="$acked" 'BEGIN{printf "%.3f", (t/k)/(n/1e6)}')
  printf '| %s | %s | %s | %s | %s |\n' "$round" "$sys" "$rate" "$cpu" "$failed" \
    >> "$WORK/results.md"
  printf '%s\t%s\t%s\n' "$sys" "$rate" "$cpu" >> "$WORK/rounds.tsv"
done
done
median() { # system column: the median of that column over the system's rounds
  awk -F'\t' -v s="$1" -v c="$2" '$1 == s {print $c}' "$WORK/rounds.tsv" | sort -g |
    awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
{
  printf '\n| median of %s rounds | samples/s | server CPU-s per million samples |\n' "$ROUNDS"
  printf '|---|---|---|\n'
  for sys in eddy vm; do
    printf '| %s | %.0f | %.3f |\n' "$sys" "$(median $sys 2)" "$(median $sys 3)"
  done
  awk -v e="$(median eddy 2)" -v v="$(median vm 2)" -v ec="$(median eddy 3)" \
    -v vc="$(median vm 3)" 'BEGIN {printf "\neddy/vm: %.2fx the samples/s, %.2fx the CPU per sample\n", e / v, ec / vc}'
} >> "$WORK/results.md"
cat "$WORK/results.md"
log "work dir: $WORK"
