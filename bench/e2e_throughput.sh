#!/usr/bin/env bash
# End-to-end throughput of `bytefreezer run` on this machine: N RFC 5424 lines over
# TCP, timed from the first byte sent until every event is queryable in Parquet.
# Prints events/s and the process's peak RSS.
#   bench/e2e_throughput.sh [N]        (default 200000; needs `make build` first)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
BIN=$PWD/build/bytefreezer
DIR=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SYSLOG=$(free_port); RECV=$(free_port); ADMIN=$(free_port); QUERY=$(free_port)
cat > "$DIR/bf.yaml" <<YAML
log: {level: warn}
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
piper: {interval: ${PIPER_INTERVAL:-200ms}}
packer: {interval: ${PACKER_INTERVAL:-1s}, max_batches_per_part: 1000}
query: {listen: "127.0.0.1:$QUERY"}
YAML
"$BIN" run --config "$DIR/bf.yaml" > "$DIR/log" 2>&1 &
PID=$!
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$SYSLOG) 2>/dev/null && break; sleep 0.1; done

START=$(date +%s.%N)
python3 - "$SYSLOG" "$N" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
chunk = []
for i in range(n):
    chunk.append(f'<134>1 2026-11-25T10:{i // 60 % 60:02d}:{i % 60:02d}.123Z web01 nginx 4242 ACC [m@1 seq="{i}"] GET /index.html?id={i} 200 512\n')
    if len(chunk) == 5000:
        s.sendall("".join(chunk).encode()); chunk = []
s.sendall("".join(chunk).encode()); s.close()
PY
SENT=$(date +%s.%N)
[ -n "${SKIP_WAIT:-}" ] && { sleep 5; echo "RSS after ingest only: $(awk "/VmHWM/ {print \$2}" /proc/$PID/status) kB"; exit 0; }
while true; do
  COUNT=$("$BIN" query --config "$DIR/bf.yaml" --dataset t/syslog --format json "SELECT count(*) AS n FROM events" 2>/dev/null \
          | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["n"])' 2>/dev/null || echo 0)
  [ "$COUNT" -ge "$N" ] && break
  sleep 0.5
done
DONE=$(date +%s.%N)
RSS=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
python3 - "$N" "$START" "$SENT" "$DONE" "$RSS" <<'PY'
import sys
n, start, sent, done, rss = int(sys.argv[1]), *map(float, sys.argv[2:5]), int(sys.argv[5])
print(f"events: {n}")
print(f"accepted by the proxy in {sent - start:.2f} s ({n / (sent - start):,.0f} events/s)")
print(f"queryable in Parquet after {done - start:.2f} s ({n / (done - start):,.0f} events/s end to end)")
print(f"peak RSS of bytefreezer run: {rss / 1024:.0f} MiB")
PY
