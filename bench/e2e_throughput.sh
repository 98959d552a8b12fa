#!/usr/bin/env bash
# End-to-end throughput of `bytefreezer run` (issue 6, figure 1): N RFC 5424 lines of
# about 200 bytes over TCP, paced at RATE events/s by bench/proxy_loadgen, into the
# whole pipeline in one process. Reports whether the proxy kept pace, the lag from the
# last event sent to all N queryable in Parquet, and the process's peak RSS; every
# SAMPLE seconds a line with the queryable count, the rate since the last sample and
# the current RSS, so a soak shows whether throughput and memory stay flat. At the end
# also the process's CPU per event (user + system, all threads) in total and per stage
# (thread names bf-*; bench/cpu_per_event.py), which means something on a shared
# machine where events/s do not.
#   bench/e2e_throughput.sh [N] [RATE] [SAMPLE]
#       defaults: 12000000 events at 200000/s (60 s), a sample every 10 s
#   soak:  bench/e2e_throughput.sh 180000000 100000 60     (30 minutes; `make soak-e2e`)
# Needs `make build` and the benchmarks target (build/bench/proxy_loadgen).
# Env: BIN (another build's bytefreezer, for A/B in one session), PACKER_EXTRA (more
# packer keys as YAML flow items, e.g. 'threads: 1, max_part_bytes: 64MiB'), PACKER_FLUSH_AGE
# (packer.flush.age; 0s by default here so the lag figure is the pipeline's, not the wait),
# PERF_DATA (a file: `perf record --call-graph dwarf` on the process from the start of
# the load to all queryable; it inflates the CPU figures, so profile in a separate run),
# KEEP_LOG (a file: the process's log, at level LOG_LEVEL (warn), is copied there at the end),
# KEEP_STORE (a directory: the run's object store is moved there at the end, to look at the lake).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-12000000}
RATE=${2:-200000}
SAMPLE=${3:-10}
BIN=${BIN:-$PWD/build/bytefreezer}
GEN=${GEN:-$PWD/build/bench/proxy_loadgen}
[ -x "$GEN" ] || cmake --build build --target proxy_loadgen >/dev/null
DIR=$(mktemp -d)
trap 'kill $PID $GENPID 2>/dev/null || true; wait 2>/dev/null || true; [ -z "${KEEP_LOG:-}" ] || cp "$DIR/log" "$KEEP_LOG"; [ -z "${KEEP_STORE:-}" ] || mv "$DIR/store" "$KEEP_STORE"; rm -rf "$DIR"' EXIT
GENPID=

. bench/lib.sh  # free_port, now
SYSLOG=$(free_port); RECV=$(free_port); ADMIN=$(free_port); QUERY=$(free_port); CONTROL=$(free_port)
cat > "$DIR/bf.yaml" <<YAML
log: {level: ${LOG_LEVEL:-warn}}
admin: {listen: "127.0.0.1:$ADMIN"}
storage: {type: local, path: $DIR/store}
accounts:
  - id: bench
    tenants:
      - id: t
        ingest_keys: ["bench-ingest-key-0123456789"]
        datasets: [{id: syslog}]
proxy:
  receiver: {url: "http://127.0.0.1:$RECV", ingest_key: bench-ingest-key-0123456789}
  spool: {dir: $DIR/proxy-spool}
  sources: [{type: syslog_tcp, listen: "127.0.0.1:$SYSLOG", tenant: t, dataset: syslog}]
receiver: {listen: "127.0.0.1:$RECV", spool: {dir: $DIR/receiver-spool}}
piper: {interval: ${PIPER_INTERVAL:-1s}}
packer: {interval: ${PACKER_INTERVAL:-5s}, max_batches_per_part: ${PACKER_BATCHES:-1000}, flush: {age: ${PACKER_FLUSH_AGE:-0s}}${PACKER_EXTRA:+, $PACKER_EXTRA}}
query: {listen: "127.0.0.1:$QUERY", temp_dir: $DIR/query-tmp}
# Everything in the run's directory on free ports: runs side by side never share state.
control: {listen: "127.0.0.1:$CONTROL", db: $DIR/control.db}
leases: {path: $DIR/leases.db}
YAML
"$BIN" run --config "$DIR/bf.yaml" > "$DIR/log" 2>&1 &
PID=$!
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$SYSLOG) 2>/dev/null && break; sleep 0.1; done

rss_kb() { awk '/VmRSS/ {print $2}' /proc/$PID/status; }
queryable() {
  "$BIN" query --config "$DIR/bf.yaml" --dataset t/syslog --format json "SELECT count(*) AS n FROM events" 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["n"])' 2>/dev/null || echo 0
}

python3 bench/cpu_per_event.py snapshot $PID "$DIR/cpu0"
PERFPID=
if [ -n "${PERF_DATA:-}" ]; then
  perf record -q --call-graph dwarf,16384 -F ${PERF_FREQ:-99} -p $PID -o "$PERF_DATA" 2>"$DIR/perf.err" &
  PERFPID=$!
fi
START=$(now)
( "$GEN" send "$SYSLOG" "$N" 200 1 "$RATE" > "$DIR/gen.out"; now > "$DIR/sent_at" ) &
GENPID=$!
printf "%8s %12s %12s %9s\n" "t (s)" queryable "events/s" "RSS MiB"
LAST_T=$START; LAST_N=0; NEXT=$(python3 -c "print($START + $SAMPLE)")
while [ ! -f "$DIR/sent_at" ]; do
  sleep 0.5
  T=$(now)
  python3 -c "import sys; sys.exit(0 if $T >= $NEXT else 1)" || continue
  C=$(queryable)
  python3 -c "import sys; t,lt,c,lc,r=map(float,sys.argv[1:]); print(f'{t-$START:8.0f} {int(c):12d} {(c-lc)/(t-lt):12,.0f} {r/1024:9.0f}')" \
    "$T" "$LAST_T" "$C" "$LAST_N" "$(rss_kb)"
  LAST_T=$T; LAST_N=$C; NEXT=$(python3 -c "print($T + $SAMPLE)")
done
SENT=$(cat "$DIR/sent_at")
# The last event is sent: poll fast for the lag.
while [ "$(queryable)" -lt "$N" ]; do sleep 0.25; done
DONE=$(now)
CPU_REPORT=$(python3 bench/cpu_per_event.py report $PID "$DIR/cpu0" "$N")
if [ -n "$PERFPID" ]; then kill -INT $PERFPID; wait $PERFPID || true; fi
PEAK=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
cat "$DIR/gen.out"
python3 - "$N" "$RATE" "$START" "$SENT" "$DONE" "$PEAK" <<'PY'
import sys
n, rate = int(sys.argv[1]), int(sys.argv[2])
start, sent, done, peak = *map(float, sys.argv[3:6]), int(sys.argv[6])
print(f"events: {n} offered at {rate:,}/s; all written to the proxy after {sent - start:.1f} s"
      f" ({n / (sent - start):,.0f} events/s; the generator reports its own time above)")
print(f"lag from the last event sent to all queryable: {done - sent:.1f} s")
print(f"end to end: {n / (done - start):,.0f} events/s")
print(f"peak RSS of bytefreezer run: {peak / 1024:.0f} MiB")
PY
# Compaction (packer.compaction; its interval is 10m unless PACKER_EXTRA sets it) ran
# during the load when this shows merges.
curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '/^bf_packer_(compactions|compacted_parts|compaction_spliced|compaction_sort_passes)_total/ {k = $1; sub(/\{.*/, "", k); s[k] += $2}
  END {printf "compaction during the run: %d merges of %d parts (%d spliced, %d sorts)\n", s["bf_packer_compactions_total"] + 0,
       s["bf_packer_compacted_parts_total"] + 0, s["bf_packer_compaction_spliced_total"] + 0, s["bf_packer_compaction_sort_passes_total"] + 0}' || true
find "$DIR/store" -name '*.parquet' -printf '%s\n' | awk -v n="$N" '{b += $1; f++}
  END {printf "lake: %d Parquet files, %.1f MB (%.1f bytes/event)\n", f, b / 1e6, b / n}'
echo "$CPU_REPORT"
