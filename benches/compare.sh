#!/usr/bin/env bash
# Side-by-side benchmark: eddy vs VictoriaMetrics vs Prometheus on the same Flink-shaped
# remote_write workload and the same dashboard queries. See docs/benchmarks.md.
#
#   benches/compare.sh [--quick | --medium | --full] [--systems "eddy vm prom"] [--work DIR]
#                      [--stream] [--drop-data] [--prom-ref ingest|remote_read]
#                      [--end MS] [--bin-dir DIR]
#
# --quick   4 TMs x 15 min  (~8.8 k series, 0.5 M samples; seconds; CI smoke test)
# --medium  40 TMs x 2 h    (~88 k series, 42 M samples)
# --full    460 TMs x 6 h   (~1.0 M active series, 1.45 G samples; ~85 minutes on 2 cores;
#           implies --stream, --drop-data, --prom-ref remote_read and, unless --systems
#           says otherwise, --systems "eddy vm")
# --stream  do not keep a request file (it would be ~62 GB at full size): for each server,
#           gen writes the same requests (same seed, same end time) into a FIFO that send
#           reads, both on the client core. The server's CPU, RSS and bytes are unaffected;
#           its wall-clock ingest rate is capped by gen's (~1.7 M samples/s on one core),
#           so compare CPU-s per million samples, not samples/s.
# --drop-data  delete each server's data dir once it is measured (keeps the disk peak to
#           one server's data).
# --prom-ref remote_read  the reference results come from Prometheus evaluating the queries
#           over eddy's data through remote_read (Prometheus started empty while eddy still
#           runs), instead of from Prometheus ingesting the workload itself, which at full size
#           would take ~2.7 h of one core (6.8 CPU-s per million samples at --quick). That
#           checks eddy's PromQL against Prometheus's engine on the same samples; the storage
#           side is checked by the sizes that ingest Prometheus (--quick, --medium).
# --end MS  the workload's end time (default: now), to regenerate a run's exact data.
# --bin-dir DIR  take eddy, gen, send and queries from DIR instead of building them in release
#           (tests/compare_quick.rs runs --quick on the debug build as CI's smoke test).
# Ports: EDDY_PORT, VM_PORT, PROM_PORT (default 19201, 18428, 19090), all on 127.0.0.1.
#
# Each server runs alone, on a fresh data dir, on loopback, pinned to core 0 (taskset -c 0);
# the sender and query runner are pinned to core 1. The workload ends "now", because
# Prometheus and VictoriaMetrics only accept remote_write samples near their head.
set -euo pipefail

SIZE=quick
SYSTEMS="eddy vm prom"
WORK=""
STREAM=0 DROP_DATA=0 BIN="" PROM_REF=ingest END_ARG="" SYSTEMS_GIVEN=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) SIZE=quick ;;
    --medium) SIZE=medium ;;
    --full) SIZE=full; STREAM=1; DROP_DATA=1; PROM_REF=remote_read ;;
    --prom-ref) PROM_REF="$2"; shift ;;
    --end) END_ARG="$2"; shift ;;
    --stream) STREAM=1 ;;
    --drop-data) DROP_DATA=1 ;;
    --bin-dir) BIN="$(cd "$2" && pwd)"; shift ;;
    --systems) SYSTEMS="$2"; SYSTEMS_GIVEN=1; shift ;;
    --work) WORK="$2"; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ $SIZE = full ] && [ $SYSTEMS_GIVEN = 0 ]; then SYSTEMS="eddy vm"; fi
case "$PROM_REF" in
  ingest | remote_read) ;;
  *) echo "--prom-ref must be ingest or remote_read, not $PROM_REF" >&2; exit 2 ;;
esac
if [ $PROM_REF = remote_read ] && [[ " $SYSTEMS " != *" eddy "* ]]; then
  echo "--prom-ref remote_read reads eddy's data: --systems must include eddy" >&2; exit 2
fi
case "$SIZE" in
  quick) TMS=4; HOURS=0.25; RANGE=10m; REPEAT=3 ;;
  medium) TMS=40; HOURS=2; RANGE=1h; REPEAT=5 ;;
  full) TMS=460; HOURS=6; RANGE=1h; REPEAT=5 ;;
esac

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${WORK:-$(mktemp -d /tmp/eddy-compare.XXXXXX)}"
mkdir -p "$WORK"
EDDY_PORT=${EDDY_PORT:-19201} VM_PORT=${VM_PORT:-18428} PROM_PORT=${PROM_PORT:-19090}
SERVER_CPU=0 CLIENT_CPU=1
if [ "$(nproc)" -lt 2 ]; then CLIENT_CPU=0; fi
TCK=$(getconf CLK_TCK)
log() { echo "[compare $(date -u +%H:%M:%S)] $*" >&2; }

# --- tools -------------------------------------------------------------------------------
need_pkgs=()
command -v victoria-metrics >/dev/null || need_pkgs+=(victoria-metrics)
if [[ " $SYSTEMS " == *" prom "* ]] || [ $PROM_REF = remote_read ]; then
  command -v prometheus >/dev/null || need_pkgs+=(prometheus)
fi
if [ $STREAM = 1 ] && [ ! -x /usr/bin/time ]; then need_pkgs+=(time); fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" >&2
fi

# The reference Prometheus is Debian's current stable one (trixie: 2.53). Its rate()/increase()
# extrapolation next to a series' first sample is current Prometheus's (prometheus#13725, in
# 2.52), which eddy follows; bookworm's 2.42 still has the older rule, and the Flink data meets
# it at the step after every job restart (docs/promql-compatibility.md, (a3)). An older
# installed prometheus stays as it is: trixie's package is unpacked into a cache directory (no
# system change) and run from there. PROMETHEUS=path chooses another binary.
prom_version() { "$1" --version 2>&1 | sed -n '1s/^prometheus, version \([0-9]*\.[0-9]*\).*/\1/p'; }
prom_is_current() { # path: whether that Prometheus is 2.52 or newer
  local v; v=$(prom_version "$1")
  [ -n "$v" ] && awk -v v="$v" 'BEGIN { split(v, p, "."); exit !(p[1] > 2 || (p[1] == 2 && p[2] >= 52)) }'
}
fetch_current_prometheus() { # unpacks Debian trixie's prometheus package; prints the binary's path
  local dir="${XDG_CACHE_HOME:-$HOME/.cache}/eddy-bench/prometheus-trixie"
  if [ ! -x "$dir/root/usr/bin/prometheus" ]; then
    log "fetching Debian trixie's prometheus package into $dir"
    rm -rf "$dir"
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/root"
    echo "deb http://deb.debian.org/debian trixie main" > "$dir/sources.list"
    local apt_opts=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o Dir::Etc::sourceparts=-
      -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o APT::Sandbox::User=root)
    apt-get "${apt_opts[@]}" update >&2
    (cd "$dir" && apt-get "${apt_opts[@]}" download prometheus >&2)
    dpkg-deb -x "$dir"/prometheus_*.deb "$dir/root"
  fi
  echo "$dir/root/usr/bin/prometheus"
}
PROMETHEUS=${PROMETHEUS:-}
if [ -z "$PROMETHEUS" ] && { [[ " $SYSTEMS " == *" prom "* ]] || [ $PROM_REF = remote_read ]; }; then
  PROMETHEUS=$(command -v prometheus)
  if ! prom_is_current "$PROMETHEUS"; then PROMETHEUS=$(fetch_current_prometheus); fi
  prom_is_current "$PROMETHEUS" || { echo "no Prometheus 2.52 or newer at $PROMETHEUS" >&2; exit 1; }
  log "reference Prometheus: $PROMETHEUS ($("$PROMETHEUS" --version 2>&1 | head -1))"
fi

if [ -z "$BIN" ]; then
  log "building release binaries"
  (cd "$ROOT" && cargo build --release -q -p eddy -p eddy-benches --bins) >&2
  BIN="$ROOT/target/release"
fi

# --- workload ----------------------------------------------------------------------------
# One end time for every server, so the queries see the same data in the same windows.
END_ARG=${END_ARG:-$(date +%s%3N)}
GEN_ARGS=(--tms $TMS --hours $HOURS --end "$END_ARG")
REQ="$WORK/requests.bin"
meta() { sed -n "s/^$1=//p" "$REQ.meta"; }
if [ $STREAM = 0 ]; then
  log "generating workload: $TMS TMs x $HOURS h -> $REQ"
  taskset -c $CLIENT_CPU "$BIN/gen" --out "$REQ" "${GEN_ARGS[@]}" >&2
else
  rm -f "$REQ"; mkfifo "$REQ"
  log "streaming workload: $TMS TMs x $HOURS h, generated afresh for each server"
fi

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
status_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }
wait_idle() { # pid: until the process uses under 2 % of a core over a second (30 s at most),
  # so background work after ingest and flush (compaction, merges, memory release) does not
  # land in the query latencies of one system and not another
  local prev cur
  prev=$(cpu_ticks "$1")
  for _ in $(seq 1 30); do
    sleep 1
    cur=$(cpu_ticks "$1")
    [ $((cur - prev)) -le $((TCK / 50)) ] && return 0
    prev=$cur
  done
}
wait_http() { # url tries
  for _ in $(seq 1 "${2:-300}"); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.2
  done
  echo "timeout waiting for $1" >&2; return 1
}
dir_bytes() { du -sb "$1" | awk '{print $1}'; }
files_bytes() { # dir path-glob: bytes of the regular files under dir whose path matches
  find "$1" -type f -path "$2" -printf '%s\n' | awk '{s += $1} END {print s + 0}'
}

RESULTS="$WORK/results.tsv"
: > "$RESULTS"
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$RESULTS"; } # system key value

run_system() {
  local sys=$1 port data pid url flush_note
  data="$WORK/data-$sys"; rm -rf "$data"; mkdir -p "$data"
  case $sys in
    eddy)
      port=$EDDY_PORT
      taskset -c $SERVER_CPU "$BIN/eddy" --listen 127.0.0.1:$port --data-dir "$data" \
        > "$WORK/$sys.log" 2>&1 &
      pid=$!; wait_http "http://127.0.0.1:$port/-/ready" ;;
    vm)
      port=$VM_PORT
      taskset -c $SERVER_CPU victoria-metrics -storageDataPath "$data" \
        -httpListenAddr 127.0.0.1:$port -retentionPeriod 1y -search.disableCache \
        -search.latencyOffset 1s > "$WORK/$sys.log" 2>&1 &
      pid=$!; wait_http "http://127.0.0.1:$port/health" ;;
    prom)
      port=$PROM_PORT
      printf 'global:\n  scrape_interval: 15s\n' > "$WORK/prometheus.yml"
      taskset -c $SERVER_CPU "$PROMETHEUS" --config.file "$WORK/prometheus.yml" \
        --storage.tsdb.path "$data" --storage.tsdb.retention.time 1y \
        --web.listen-address 127.0.0.1:$port --web.enable-remote-write-receiver \
        --web.enable-admin-api > "$WORK/$sys.log" 2>&1 &
      pid=$!; wait_http "http://127.0.0.1:$port/-/ready" ;;
  esac
  url="http://127.0.0.1:$port"
  local c0 c1 out gen_pid="" t0 t1
  if [ $STREAM = 1 ]; then
    taskset -c $CLIENT_CPU /usr/bin/time -f '%e %U %S' -o "$WORK/gen-$sys.time" \
      "$BIN/gen" --out "$REQ" "${GEN_ARGS[@]}" 2> "$WORK/gen-$sys.log" &
    gen_pid=$!
  fi
  log "$sys: pid $pid, sending"
  c0=$(cpu_ticks $pid); t0=$(date +%s.%N)
  out=$(taskset -c $CLIENT_CPU "$BIN/send" --url "$url/api/v1/write" --file "$REQ" --connections 4)
  c1=$(cpu_ticks $pid); t1=$(date +%s.%N)
  if [ -n "$gen_pid" ]; then
    wait "$gen_pid"
    # gen's CPU over the ingest's wall time: near 1.0 means gen, not the server, set the pace.
    record $sys gen_busy "$(awk -v w="$(awk -v a=$t0 -v b=$t1 'BEGIN{print b-a}')" \
      '{printf "%.2f", ($2 + $3) / w}' "$WORK/gen-$sys.time")"
  fi
  SAMPLES=$(meta samples); ACTIVE=$(meta active_series); END_MS=$(meta end_ms)
  local acked errors rate
  acked=$(sed -n 's/.*acked=\([0-9]*\).*/\1/p' <<<"$out")
  errors=$(sed -n 's/.*failed_samples=\([0-9]*\).*/\1/p' <<<"$out")
  rate=$(sed -n 's/.*rate=\([0-9]*\).*/\1/p' <<<"$out")
  record $sys ingest_rate "$rate"
  record $sys rejected "$errors"
  record $sys cpu_s_per_m "$(awk -v t=$((c1 - c0)) -v k=$TCK -v n="$acked" 'BEGIN{printf "%.2f", (t/k)/(n/1e6)}')"
  record $sys rss_after_ingest_mb "$(( $(status_kb $pid VmRSS) / 1024 ))"
  local rss_kb; rss_kb=$(status_kb $pid VmRSS)
  record $sys rss_b_per_series "$(awk -v r=$rss_kb -v n=$ACTIVE 'BEGIN{printf "%.0f", r*1024/n}')"

  # Put everything in its compressed on-disk form, then measure.
  # The samples' share: each system's sample files; the rest (index, metadata) is its index.
  local disk samples
  case $sys in
    eddy)
      curl -sf -XPOST "$url/api/v1/admin/flush" > /dev/null
      # The head cut alone leaves the newest, unfinished compaction window in 2 h blocks;
      # the compact route merges it as force_merge does VictoriaMetrics' partition. Both sizes
      # are reported.
      record $sys b_per_sample_flush_only "$(awk -v d="$(dir_bytes "$data/blocks")" -v n="$acked" 'BEGIN{printf "%.3f", d/n}')"
      curl -sf -XPOST "$url/api/v1/admin/compact" > /dev/null
      disk=$(dir_bytes "$data/blocks")
      samples=$(files_bytes "$data/blocks" '*/chunks')
      flush_note="flush + compact API, size of blocks/ (samples: chunks files, index: index and meta.json; b_per_sample_flush_only: before the compact call)" ;;
    vm)
      curl -sf "$url/internal/force_flush" > /dev/null || true
      curl -sf "$url/internal/force_merge?partition_prefix=$(date -u +%Y_%m)" > /dev/null || true
      # force_merge runs in the background; wait until the data dir stops changing.
      local prev=-1 cur; cur=$(dir_bytes "$data")
      while [ "$cur" != "$prev" ]; do sleep 3; prev=$cur; cur=$(dir_bytes "$data"); done
      disk=$cur
      samples=$(dir_bytes "$data/data")
      flush_note="force_flush + force_merge, whole data dir (samples: data/, index: indexdb/ and the rest)" ;;
    prom)
      local snap
      snap=$(curl -sf -XPOST "$url/api/v1/admin/tsdb/snapshot" | sed -n 's/.*"name":"\([^"]*\)".*/\1/p')
      disk=$(dir_bytes "$data/snapshots/$snap")
      samples=$(files_bytes "$data/snapshots/$snap" '*/chunks/*')
      flush_note="TSDB snapshot incl. head (persisted blocks only, no WAL)" ;;
  esac
  record $sys disk_bytes "$disk"
  record $sys data_dir_bytes "$(dir_bytes "$data")"
  record $sys b_per_sample "$(awk -v d=$disk -v n="$acked" 'BEGIN{printf "%.3f", d/n}')"
  record $sys samples_b_per_sample "$(awk -v d=$samples -v n="$acked" 'BEGIN{printf "%.3f", d/n}')"
  record $sys index_b_per_sample "$(awk -v d=$((disk - samples)) -v n="$acked" 'BEGIN{printf "%.3f", d/n}')"
  record $sys disk_method "$flush_note"
  record $sys peak_rss_mb "$(( $(status_kb $pid VmHWM) / 1024 ))"

  wait_idle $pid
  log "$sys: queries"
  run_queries "$url" $sys $REPEAT
  if [ $sys = eddy ] && [ $PROM_REF = remote_read ]; then prom_reference_over "$url"; fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
  if [ $DROP_DATA = 1 ]; then rm -rf "$data"; fi
  log "$sys: done"
}

run_queries() { # url name repeat: the dashboard queries -> queries-<name>.tsv, results-<name>/
  taskset -c $CLIENT_CPU "$BIN/queries" --url "$1" --file "$ROOT/benches/flink-dashboard.queries" \
    --end "$END_MS" --range $RANGE --step 60s --repeat "$3" --dump "$WORK/results-$2" \
    > "$WORK/queries-$2.tsv"
}

prom_reference_over() { # eddy's url: Prometheus, empty, reads eddy through remote_read
  local dir="$WORK/data-prom-ref" pid
  rm -rf "$dir"; mkdir -p "$dir"
  printf 'global:\n  scrape_interval: 15s\nremote_read:\n  - url: %s/api/v1/read\n    read_recent: true\n' \
    "$1" > "$WORK/prometheus-ref.yml"
  taskset -c $SERVER_CPU "$PROMETHEUS" --config.file "$WORK/prometheus-ref.yml" \
    --storage.tsdb.path "$dir" --web.listen-address 127.0.0.1:$PROM_PORT \
    > "$WORK/prom-ref.log" 2>&1 &
  pid=$!
  wait_http "http://127.0.0.1:$PROM_PORT/-/ready"
  log "prom (reference over eddy's data through remote_read): queries"
  run_queries "http://127.0.0.1:$PROM_PORT" prom 1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}

# --- table -------------------------------------------------------------------------------
val() { awk -F'\t' -v s="$1" -v k="$2" '$1 == s && $2 == k {print $3}' "$RESULTS"; }
print_table() { # the systems run so far
  local SYSTEMS="$*"
  {
    echo "## $SIZE: $TMS TMs x $HOURS h, $ACTIVE active series, $SAMPLES samples ($(date -u +%FT%TZ))"
    echo
    printf '| metric |'; for s in $SYSTEMS; do printf ' %s |' "$s"; done; echo
    printf '|---|'; for _ in $SYSTEMS; do printf -- '---|'; done; echo
    local keys="ingest_rate rejected cpu_s_per_m rss_after_ingest_mb peak_rss_mb rss_b_per_series disk_bytes b_per_sample samples_b_per_sample index_b_per_sample b_per_sample_flush_only data_dir_bytes"
    [ $STREAM = 1 ] && keys="ingest_rate gen_busy ${keys#ingest_rate }"
    for k in $keys; do
      printf '| %s |' "$k"; for s in $SYSTEMS; do printf ' %s |' "$(val $s $k)"; done; echo
    done
    echo
    echo "Query median latency (ms) over $REPEAT runs, range $RANGE step 60s; '=' result hash equals Prometheus's."
    if [ $PROM_REF = remote_read ]; then
      echo "Prometheus's results: Prometheus $("$PROMETHEUS" --version 2>&1 | sed -n '1s/^prometheus, version \([^ ]*\).*/\1/p') evaluating each query over eddy's data through remote_read."
    fi
    echo
    printf '| query |'; for s in $SYSTEMS; do printf ' %s |' "$s"; done; echo
    printf '|---|'; for _ in $SYSTEMS; do printf -- '---|'; done; echo
    for q in $(awk -F'\t' 'NR > 1 {print $1}' "$WORK/queries-$(set -- $SYSTEMS; echo $1).tsv"); do
      ref=""
      [ -f "$WORK/queries-prom.tsv" ] && ref=$(awk -F'\t' -v q=$q '$1 == q {print $5}' "$WORK/queries-prom.tsv")
      printf '| %s |' "$q"
      for s in $SYSTEMS; do
        awk -F'\t' -v q=$q -v ref="$ref" '$1 == q {
          mark = ($5 == "-") ? " ERR" : (ref == "" ? "" : ($5 == ref ? " =" : " ≠"));
          printf " %s%s (%s series) |", $2, mark, $3 }' "$WORK/queries-$s.tsv"
      done
      echo
    done
    echo
    echo "Disk: $(for s in $SYSTEMS; do printf '%s: %s; ' $s "$(val $s disk_method)"; done)"
  } > "$WORK/results.md"
}

# After each server, so a long run that is stopped still leaves the table so far.
done_systems=""
for s in $SYSTEMS; do
  run_system "$s"
  done_systems="$done_systems $s"
  print_table $done_systems
done
cat "$WORK/results.md"
log "work dir: $WORK (requests, data dirs, logs, per-query results)"
