#!/usr/bin/env bash
# Flow sources under load (issue 7, docs/performance.md "Flow sources under load"): for
# each KIND, RATE flow records/s for SECONDS from one exporter on loopback
# (build/bench/proxy_loadgen flow; IPFIX / NetFlow v9 send their template first), into
# `bytefreezer proxy` with one flow source (sflow for sflow, ipfix for ipfix and
# netflow9: that source reads every NetFlow version) -> batch -> zstd -> fsync'ed spool
# (the receiver URL is a closed port, so batches stay in the spool). Reports per kind:
# records sent, decoded (bf_proxy_events_total) and spooled, the kernel's drops
# (bf_udp_kernel_drops_total), decode errors (bf_flow_errors_total), decoded records/s
# over the run, the proxy's CPU µs per record and its peak RSS (VmHWM).
#   bench/proxy_flow_rss.sh [SECONDS] [RATE] [KINDS]   (default 10, 200000, "sflow ipfix")
# EXPORTERS=n sends from n sockets (n exporters, templates each); WORKERS=n gives the
# source n receive threads (SO_REUSEPORT; the kernel spreads exporters over them). Needs `make build`
# and the proxy_loadgen target (`cmake --build build --target proxy_loadgen`).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}
RATE=${2:-200000}
KINDS=${3:-sflow ipfix}
EXPORTERS=${EXPORTERS:-1}
WORKERS=${WORKERS:-1}
RCVBUF=${RCVBUF:-8388608}
BIN=$PWD/build/bytefreezer
GEN=$PWD/build/bench/proxy_loadgen
for f in "$BIN" "$GEN"; do
  [ -x "$f" ] || { echo "proxy_flow_rss: $f missing (make build; cmake --build build --target proxy_loadgen)" >&2; exit 1; }
done
. bench/lib.sh  # free_port, now, wait_port, wait_udp, cpu_seconds, stop_daemon

DIR=$(mktemp -d)
PID=""
trap 'stop_daemon; rm -rf "$DIR"' EXIT
metric() { curl -s "http://127.0.0.1:$ADMIN/metrics" | awk -v m="$1" -v l="${2:-}" '$1 ~ "^"m"(\\{|$)" && index($1, l) {s += $2} END {printf "%d\n", s}'; }

# One kind: prints "<sent> <decoded> <spooled> <kernel drops> <errors> <seconds> <CPU s> <peak RSS kB>".
run_kind() {
  local kind=$1 type=$2 port dead n gen t0 t1 last=-1 count changed
  port=$(free_port); ADMIN=$(free_port); dead=$(free_port)
  n=$((RATE * SECONDS_EACH))
  rm -rf "$DIR/spool"
  cat > "$DIR/proxy.yaml" <<YAML
log: {level: warn}
admin: {listen: "127.0.0.1:$ADMIN"}
proxy:
  receiver: {url: "http://127.0.0.1:$dead", ingest_key: bench-ingest-key-0123456789, retry_backoff: 10s, retry_backoff_max: 60s}
  batch: {max_age: 100ms}
  spool: {dir: $DIR/spool, max_bytes: 64GiB}
  sources: [{type: $type, listen: "127.0.0.1:$port", tenant: t, dataset: $kind, receive_buffer: $RCVBUF, workers: $WORKERS}]
YAML
  "$BIN" proxy --config "$DIR/proxy.yaml" > "$DIR/proxy.log" 2>&1 &
  PID=$!
  wait_port "$ADMIN" && wait_udp "$port" || { cat "$DIR/proxy.log" >&2; exit 1; }
  t0=$(now)
  "$GEN" flow "$kind" "$port" "$n" "$RATE" "$EXPORTERS" > "$DIR/gen.out" &
  gen=$!
  # Until the generator is done and the decoded count has not moved for 2 s.
  changed=$(now)
  while true; do
    count=$(metric bf_proxy_events_total)
    if [ "$count" != "$last" ]; then last=$count; changed=$(now); t1=$changed; fi
    if ! kill -0 "$gen" 2>/dev/null && awk -v a="$changed" -v b="$(now)" 'BEGIN {exit !(b - a > 2.0)}'; then break; fi
    kill -0 "$PID" 2>/dev/null || { echo "proxy exited" >&2; cat "$DIR/proxy.log" >&2; exit 1; }
    sleep 0.1
  done
  wait "$gen"
  sleep 1.2  # kernel drops are read from /proc/net/udp once the socket is quiet for a second
  local sent
  sent=$(awk '{print $4}' "$DIR/gen.out" | tr -d '(')
  echo "$sent $count $(metric bf_proxy_events_spooled_total) $(metric bf_udp_kernel_drops_total) $(metric bf_flow_errors_total)" \
       "$(awk -v a="$t0" -v b="${t1:-$t0}" 'BEGIN {printf "%.2f", b - a}') $(cpu_seconds "$PID") $(awk '/VmHWM/ {print $2}' "/proc/$PID/status")"
  stop_daemon
}

echo "flow sources under load: $RATE records/s for $SECONDS_EACH s per kind, $EXPORTERS exporter(s), $WORKERS worker(s), SO_RCVBUF asked: $RCVBUF; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-9s %10s %10s %10s %8s %7s %12s %12s %9s\n" kind sent decoded spooled drops errors "decoded/s" "CPU-us/rec" "peak RSS"
for kind in $KINDS; do
  case $kind in
    sflow) type=sflow ;;
    ipfix | netflow9) type=ipfix ;;
    *) echo "proxy_flow_rss: KINDS are sflow, ipfix, netflow9" >&2; exit 2 ;;
  esac
  read -r sent got spooled drops errors secs cpu rss <<< "$(run_kind "$kind" "$type")"
  printf "%-9s %10s %10s %10s %8s %7s %12s %12s %6s MB\n" "$kind" "$sent" "$got" "$spooled" "$drops" "$errors" \
    "$(awk -v n="$got" -v s="$secs" 'BEGIN {printf "%.0f", n / (s > 0 ? s : 1)}')" \
    "$(awk -v c="$cpu" -v n="$got" 'BEGIN {printf "%.2f", c * 1e6 / (n > 0 ? n : 1)}')" "$((rss / 1024))"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
