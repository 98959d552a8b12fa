#!/usr/bin/env bash
# Proxy vs rsyslog over UDP (issue 7, docs/performance.md "UDP syslog: loss by rate"):
# at each RATE, RATE x SECONDS RFC 5424 datagrams of about 200 bytes, paced, from one
# sender on loopback (build/bench/proxy_loadgen udp), into
#   - `bytefreezer proxy` with one syslog_udp source (parse -> event -> batch -> zstd ->
#     fsync'ed spool; the receiver URL is a closed port, so batches stay in the spool),
#     counted by bf_proxy_events_spooled_total;
#   - Debian's rsyslogd (imudp -> omfile) from a temp config, counted in its file's lines.
# Both ask for the same socket receive buffer (RCVBUF, default 32 MiB). Without
# CAP_NET_ADMIN the kernel caps the request at net.core.rmem_max (often 4 MiB or less);
# run as root, the script raises net.core.rmem_max to RCVBUF for the run and restores
# it on exit (RMEM_MAX=keep leaves it alone), and prints what the proxy was granted
# (bf_udp_receive_buffer_bytes). A daemon has kept up at a rate when it counted every
# datagram; the output gives what each lost (and, for the proxy, what the kernel says
# it dropped) and the highest rate each kept up with.
#   bench/proxy_vs_rsyslog_udp.sh [SECONDS] [RATES...]   (default 30, 150000 250000 350000 500000)
# Environment: RCVBUF (bytes); RMEM_MAX (raise or keep); BIN (the proxy, default build/bytefreezer); BASE_BIN, a second proxy
# build (e.g. main's) run at each rate right after BIN, as a same-run baseline; FSYNC
# (the proxy's spool.fsync, `always` by default, or `interval`); LEVEL (the proxy's
# compression_level, default 1; -1..-7 are zstd's fastest); PRIORITY (BIN's source
# receive_priority: normal, the default, high or realtime; BASE_BIN keeps its default);
# SENDERS (sockets the generator sends from, each its own source port; default 1);
# WORKERS (BIN's syslog_udp workers: SO_REUSEPORT sockets, default 1); NICE (run BIN under
# `nice -n NICE`, e.g. -10, the whole proxy; default none); RSYSLOG=0 skips rsyslog.
# Needs `make build`, the `benchmarks` target and `scripts/setup.sh --bench` (rsyslog).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-30}
shift || true
RATES=${*:-150000 250000 350000 500000}
SIZE=${SIZE:-200}
RCVBUF=${RCVBUF:-33554432}
RMEM_MAX=${RMEM_MAX:-raise}
BIN=${BIN:-$PWD/build/bytefreezer}
BASE_BIN=${BASE_BIN:-}
FSYNC=${FSYNC:-always}
LEVEL=${LEVEL:-1}
RSYSLOG=${RSYSLOG:-1}
PRIORITY=${PRIORITY:-normal}
SENDERS=${SENDERS:-1}
WORKERS=${WORKERS:-1}
NICE=${NICE:-}
GEN=$PWD/build/bench/proxy_loadgen
RSYSLOGD=$(command -v rsyslogd || echo /usr/sbin/rsyslogd)
for f in "$BIN" "$GEN" $BASE_BIN; do
  [ -x "$f" ] || { echo "proxy_vs_rsyslog_udp: $f missing (make build; cmake --build build --target benchmarks)" >&2; exit 1; }
done
[ "$RSYSLOG" = 0 ] || [ -x "$RSYSLOGD" ] || { echo "proxy_vs_rsyslog_udp: rsyslogd missing (scripts/setup.sh --bench)" >&2; exit 1; }
. bench/lib.sh  # free_port, now, wait_port, wait_udp, cpu_seconds, stop_daemon

DIR=$(mktemp -d)
PID=""
RMEM_SAVED=""
restore_rmem() { if [ -n "$RMEM_SAVED" ]; then sysctl -qw net.core.rmem_max="$RMEM_SAVED" || true; fi; }
trap 'stop_daemon; restore_rmem; rm -rf "$DIR"' EXIT
# The kernel caps SO_RCVBUF at net.core.rmem_max unless the daemon has CAP_NET_ADMIN
# (SO_RCVBUFFORCE); raising it for the run gives both daemons what they ask for either way.
if [ "$RMEM_MAX" = raise ] && [ "$(id -u)" = 0 ]; then
  cur=$(sysctl -n net.core.rmem_max)
  if [ "$cur" -lt "$RCVBUF" ] && sysctl -qw net.core.rmem_max="$RCVBUF"; then RMEM_SAVED=$cur; fi
fi
# Calls `$1` (prints a count) until it reaches $2, or has not changed for 2 s once the
# generator ($3) has finished; prints the last count.
settle() {
  local count last=-1 changed
  changed=$(now)
  while true; do
    count=$($1)
    [ "$count" -ge "$2" ] && break
    if [ "$count" != "$last" ]; then last=$count; changed=$(now); fi
    if ! kill -0 "$3" 2>/dev/null && awk -v a="$changed" -v b="$(now)" 'BEGIN {exit !(b - a > 2.0)}'; then break; fi
    kill -0 "$PID" 2>/dev/null || { echo "daemon exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "$count"
}

metric() { curl -s "http://127.0.0.1:$ADMIN/metrics" | awk -v m="$1" '$1 ~ "^"m"(\\{|$)" {s += $2} END {printf "%d\n", s}'; }
proxy_count() { metric bf_proxy_events_spooled_total; }
# One rate for the proxy binary $3: prints "<received> <kernel drops> <ring drops> <CPU s> <peak RSS kB>".
run_proxy() {
  local rate=$1 n=$2 bin=$3 port dead extra=""
  port=$(free_port); ADMIN=$(free_port); dead=$(free_port)
  [ "$bin" = "$BIN" ] && [ "$PRIORITY" != normal ] && extra=", receive_priority: $PRIORITY"
  [ "$bin" = "$BIN" ] && [ "$WORKERS" != 1 ] && extra+=", workers: $WORKERS"
  rm -rf "$DIR/proxy-spool"
  cat > "$DIR/proxy.yaml" <<YAML
log: {level: warn}
admin: {listen: "127.0.0.1:$ADMIN"}
proxy:
  receiver: {url: "http://127.0.0.1:$dead", ingest_key: bench-ingest-key-0123456789, retry_backoff: 10s, retry_backoff_max: 60s}
  batch: {max_age: 100ms}
  compression_level: $LEVEL
  spool: {dir: $DIR/proxy-spool, max_bytes: 64GiB, fsync: $FSYNC}
  sources: [{type: syslog_udp, listen: "127.0.0.1:$port", tenant: t, dataset: syslog, receive_buffer: $RCVBUF$extra}]
YAML
  local run=("$bin")
  [ "$bin" = "$BIN" ] && [ -n "$NICE" ] && run=(nice -n "$NICE" "$bin")
  "${run[@]}" proxy --config "$DIR/proxy.yaml" > "$DIR/proxy.log" 2>&1 &
  PID=$!
  wait_port "$ADMIN" && wait_udp "$port" || { cat "$DIR/proxy.log" >&2; exit 1; }
  "$GEN" udp "$port" "$n" "$SIZE" "$rate" "$SENDERS" > "$DIR/gen.out" &
  local gen=$! got
  got=$(settle proxy_count "$n" "$gen")
  wait "$gen"
  sleep 1.2  # the kernel drop count is read from /proc/net/udp once the socket is quiet for a second
  metric bf_udp_receive_buffer_bytes > "$DIR/granted"
  echo "$got $(metric bf_udp_kernel_drops_total) $(metric bf_udp_ring_drops_total) $(cpu_seconds "$PID") $(awk '/VmHWM/ {print $2}' "/proc/$PID/status")"
  stop_daemon
}

rsyslog_count() { if [ -f "$DIR/rsyslog-out.log" ]; then wc -l < "$DIR/rsyslog-out.log"; else echo 0; fi; }
# One rate for rsyslogd: prints "<received> - <CPU s> <peak RSS kB>".
run_rsyslog() {
  local rate=$1 n=$2 port
  port=$(free_port)
  rm -rf "$DIR/rs-work" "$DIR/rsyslog-out.log"; mkdir -p "$DIR/rs-work"
  cat > "$DIR/rsyslog.conf" <<CONF
global(workDirectory="$DIR/rs-work")
module(load="imudp")
input(type="imudp" port="$port" address="127.0.0.1" rcvbufSize="$RCVBUF")
action(type="omfile" file="$DIR/rsyslog-out.log")
CONF
  "$RSYSLOGD" -n -f "$DIR/rsyslog.conf" -i "$DIR/rsyslog.pid" > "$DIR/rsyslog.log" 2>&1 &
  PID=$!
  wait_udp "$port" || { cat "$DIR/rsyslog.log" >&2; exit 1; }
  "$GEN" udp "$port" "$n" "$SIZE" "$rate" "$SENDERS" > "$DIR/gen.out" &
  local gen=$! got
  got=$(settle rsyslog_count "$n" "$gen")
  wait "$gen"
  echo "$got - $(cpu_seconds "$PID") $(awk '/VmHWM/ {print $2}' "/proc/$PID/status")"
  stop_daemon
}

echo "proxy vs rsyslog over UDP: $SIZE-byte datagrams for $SECONDS_EACH s per rate, $SENDERS sender socket(s), SO_RCVBUF asked: $RCVBUF" \
  "(net.core.rmem_max $(sysctl -n net.core.rmem_max)${RMEM_SAVED:+, raised from $RMEM_SAVED for the run})," \
  "spool.fsync: $FSYNC, compression_level: $LEVEL, receive_priority: $PRIORITY, workers: $WORKERS${NICE:+, nice $NICE}, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "proxy: $BIN${BASE_BIN:+; base: $BASE_BIN}"
# lost (kernel drops / ring drops), CPU-us per message stored, peak RSS
fmt() {
  local n=$1 got=$2 kdrops=$3 rdrops=$4 cpu=$5 rss=$6
  echo "$((n - got)) ($kdrops/$rdrops), $(awk -v c="$cpu" -v n="$got" 'BEGIN {printf "%.2f", c * 1e6 / (n > 0 ? n : 1)}'), $((rss / 1024)) MB"
}
printf "%9s  %-40s" "rate/s" "proxy: lost (kernel/ring), us/msg, RSS"
[ -n "$BASE_BIN" ] && printf "  %-40s" "base: lost (kernel/ring), us/msg, RSS"
[ "$RSYSLOG" = 0 ] || printf "  %-34s" "rsyslog: lost, us/msg, RSS"
echo
best_proxy=0; best_base=0; best_rsyslog=0
for rate in $RATES; do
  n=$((rate * SECONDS_EACH))
  read -r p_got p_k p_r p_cpu p_rss <<< "$(run_proxy "$rate" "$n" "$BIN")"
  [ "$p_got" -ge "$n" ] && [ "$rate" -gt "$best_proxy" ] && best_proxy=$rate
  line=$(printf "%9s  %-40s" "$rate" "$(fmt "$n" "$p_got" "$p_k" "$p_r" "$p_cpu" "$p_rss")")
  if [ -n "$BASE_BIN" ]; then
    read -r b_got b_k b_r b_cpu b_rss <<< "$(run_proxy "$rate" "$n" "$BASE_BIN")"
    [ "$b_got" -ge "$n" ] && [ "$rate" -gt "$best_base" ] && best_base=$rate
    line+=$(printf "  %-40s" "$(fmt "$n" "$b_got" "$b_k" "$b_r" "$b_cpu" "$b_rss")")
  fi
  if [ "$RSYSLOG" != 0 ]; then
    read -r r_got _ r_cpu r_rss <<< "$(run_rsyslog "$rate" "$n")"
    [ "$r_got" -ge "$n" ] && [ "$rate" -gt "$best_rsyslog" ] && best_rsyslog=$rate
    line+=$(printf "  %-34s" "$((n - r_got)), $(awk -v c="$r_cpu" -v n="$r_got" 'BEGIN {printf "%.2f", c * 1e6 / (n > 0 ? n : 1)}'), $((r_rss / 1024)) MB")
  fi
  echo "$line"
done
echo "receive buffer the proxy was granted: $(( $(cat "$DIR/granted" 2>/dev/null || echo 0) / 2 )) bytes (bf_udp_receive_buffer_bytes / 2)"
echo "load average at the end: $(cut -d" " -f1-3 /proc/loadavg)"
echo "highest rate with no loss (0: lost at every rate tried): proxy ${best_proxy}/s${BASE_BIN:+, base ${best_base}/s}$([ "$RSYSLOG" = 0 ] || echo ", rsyslog ${best_rsyslog}/s")"
