#!/usr/bin/env bash
# Proxy vs rsyslog (docs/performance.md, "Proxy vs rsyslog"): N syslog messages of
# about 200 bytes over TCP on loopback, from the same load generator
# (build/bench/proxy_loadgen), into
#   - `bytefreezer proxy` with one syslog_tcp source: parse -> event -> batch -> zstd ->
#     proxy spool (fsync'ed; the receiver URL points at a closed port, so batches stay
#     in the spool; spool.max_bytes is far above what the run writes, so the limit never
#     throttles it). Done when bf_proxy_events_spooled_total (admin /metrics) reaches N.
#   - Debian's rsyslogd (imtcp -> omfile), foreground, from a temp config with its own
#     work dir and pid file. Done when its output file has N lines.
# Alternating, ROUNDS rounds, each daemon started fresh per round. Timed from the
# generator's start until the last message is counted. Prints msgs/s of each, the
# ratio and peak RSS (VmHWM).
#   bench/proxy_vs_rsyslog.sh [N] [ROUNDS]   (default 2000000 3; needs `make build`,
#                                              the `benchmarks` target and
#                                              `scripts/setup.sh --bench` for rsyslog)
# Env: CONNECTIONS (generator connections, default 1), SIZE (bytes, default 200),
#      LEVEL (proxy.compression_level, default: the proxy's default),
#      PERF=1 (record the proxy's last round with `perf record -g` into $PERF_OUT,
#      default ./perf-proxy.data).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000000}
ROUNDS=${2:-3}
CONNECTIONS=${CONNECTIONS:-1}
SIZE=${SIZE:-200}
BIN=$PWD/build/bytefreezer
GEN=$PWD/build/bench/proxy_loadgen
RSYSLOGD=$(command -v rsyslogd || echo /usr/sbin/rsyslogd)
for f in "$BIN" "$GEN"; do
  [ -x "$f" ] || { echo "proxy_vs_rsyslog: $f missing (make build; cmake --build build --target benchmarks)" >&2; exit 1; }
done
[ -x "$RSYSLOGD" ] || { echo "proxy_vs_rsyslog: rsyslogd missing (scripts/setup.sh --bench)" >&2; exit 1; }

DIR=$(mktemp -d)
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$DIR"
}
trap cleanup EXIT

. bench/lib.sh  # free_port, now, wait_port, wait_udp, cpu_seconds, stop_daemon

# One round for the proxy: prints "<seconds> <peak RSS kB> <CPU seconds>".
run_proxy() {
  local round=$1 syslog admin dead
  syslog=$(free_port); admin=$(free_port); dead=$(free_port)
  rm -rf "$DIR/proxy-spool"
  cat > "$DIR/proxy.yaml" <<YAML
log: {level: warn}
admin: {listen: "127.0.0.1:$admin"}
proxy:
  receiver: {url: "http://127.0.0.1:$dead", ingest_key: bench-ingest-key-0123456789, retry_backoff: 10s, retry_backoff_max: 60s}
  batch: {max_age: 100ms}
${LEVEL:+  compression_level: $LEVEL}
  spool: {dir: $DIR/proxy-spool, max_bytes: 64GiB}
  sources: [{type: syslog_tcp, listen: "127.0.0.1:$syslog", tenant: t, dataset: syslog}]
YAML
  "$BIN" proxy --config "$DIR/proxy.yaml" > "$DIR/proxy.log" 2>&1 &
  PID=$!
  wait_port "$syslog" || { cat "$DIR/proxy.log" >&2; exit 1; }
  wait_port "$admin" || { cat "$DIR/proxy.log" >&2; exit 1; }
  local perf_pid=""
  if [ -n "${PERF:-}" ] && [ "$round" = "$ROUNDS" ]; then
    perf record -g -o "${PERF_OUT:-$PWD/perf-proxy.data}" -p "$PID" > "$DIR/perf.log" 2>&1 &
    perf_pid=$!
    sleep 1
  fi
  local start done count
  start=$(now)
  "$GEN" send "$syslog" "$N" "$SIZE" "$CONNECTIONS" > "$DIR/gen.out" &
  local gen=$!
  while true; do
    count=$(curl -s "http://127.0.0.1:$admin/metrics" | awk '/^bf_proxy_events_spooled_total/ {print $2}')
    [ "${count:-0}" -ge "$N" ] && break
    kill -0 "$PID" 2>/dev/null || { echo "proxy exited" >&2; cat "$DIR/proxy.log" >&2; exit 1; }
    sleep 0.05
  done
  done=$(now)
  wait "$gen"
  [ -n "$perf_pid" ] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
  local rss cpu
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
  cpu=$(cpu_seconds "$PID")
  stop_daemon
  echo "$(awk -v a="$start" -v b="$done" 'BEGIN {printf "%.3f", b - a}') $rss $cpu"
}

# One round for rsyslogd: prints "<seconds> <peak RSS kB> <CPU seconds>".
run_rsyslog() {
  local port out size last changed start done lines
  port=$(free_port)
  out=$DIR/rsyslog-out.log
  rm -rf "$DIR/rs-work" "$out"; mkdir -p "$DIR/rs-work"
  cat > "$DIR/rsyslog.conf" <<CONF
global(workDirectory="$DIR/rs-work")
module(load="imtcp")
input(type="imtcp" port="$port" address="127.0.0.1")
action(type="omfile" file="$out")
CONF
  "$RSYSLOGD" -n -f "$DIR/rsyslog.conf" -i "$DIR/rsyslog.pid" > "$DIR/rsyslog.log" 2>&1 &
  PID=$!
  wait_port "$port" || { cat "$DIR/rsyslog.log" >&2; exit 1; }
  start=$(now)
  "$GEN" send "$port" "$N" "$SIZE" "$CONNECTIONS" > "$DIR/gen.out" &
  local gen=$!
  # Cheap polling: the file's size until it has not grown for 1 s after the generator
  # finished; then its lines are counted once (again later if short).
  last=-1; changed=$(now)
  while true; do
    size=$(stat -c %s "$out" 2>/dev/null || echo 0)
    if [ "$size" != "$last" ]; then last=$size; changed=$(now); fi
    if ! kill -0 "$gen" 2>/dev/null && \
       awk -v a="$changed" -v b="$(now)" 'BEGIN {exit !(b - a > 1.0)}'; then
      lines=$(wc -l < "$out" 2>/dev/null || echo 0)
      [ "$lines" -ge "$N" ] && break
    fi
    kill -0 "$PID" 2>/dev/null || { echo "rsyslogd exited" >&2; cat "$DIR/rsyslog.log" >&2; exit 1; }
    sleep 0.05
  done
  done=$changed
  wait "$gen"
  local rss cpu
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
  cpu=$(cpu_seconds "$PID")
  stop_daemon
  rm -f "$out"
  echo "$(awk -v a="$start" -v b="$done" 'BEGIN {printf "%.3f", b - a}') $rss $cpu"
}

echo "proxy vs rsyslog: $N messages of $SIZE bytes over TCP (loopback), $CONNECTIONS connection(s), $ROUNDS rounds${LEVEL:+, proxy.compression_level $LEVEL}"
echo "(msgs/s: from the generator's start to the last message counted; CPU: user+system seconds of the daemon per message)"
results=()
for r in $(seq "$ROUNDS"); do
  run_proxy "$r" > "$DIR/round"; read -r ps prss pcpu < "$DIR/round"
  run_rsyslog > "$DIR/round"; read -r rs rrss rcpu < "$DIR/round"
  awk -v n="$N" -v r="$r" -v ps="$ps" -v rs="$rs" -v pr="$prss" -v rr="$rrss" -v pc="$pcpu" -v rc="$rcpu" 'BEGIN {
    printf "round %d: proxy %7.0f msgs/s (%.2f s, %.2f CPU-us/msg, peak RSS %.0f MB) | rsyslog %7.0f msgs/s (%.2f s, %.2f CPU-us/msg, peak RSS %.0f MB) | ratio %.2fx\n",
      r, n / ps, ps, pc * 1e6 / n, pr / 1024, n / rs, rs, rc * 1e6 / n, rr / 1024, rs / ps }'
  results+=("$ps $rs $prss $rrss $pcpu $rcpu")
done
printf '%s\n' "${results[@]}" | awk -v n="$N" '
  { p += n / $1; q += n / $2; if ($3 > pr) pr = $3; if ($4 > rr) rr = $4; pc += $5; rc += $6; k++ }
  END { printf "mean: proxy %.0f msgs/s, rsyslog %.0f msgs/s, ratio %.2fx; CPU per message proxy %.2f us, rsyslog %.2f us (rsyslog/proxy %.2fx); peak RSS proxy %.0f MB, rsyslog %.0f MB\n",
        p / k, q / k, p / q, pc * 1e6 / n / k, rc * 1e6 / n / k, rc / pc, pr / 1024, rr / 1024 }'
