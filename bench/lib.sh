# Shell helpers the bench scripts share (sourced, not run).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
wait_port() { for _ in $(seq 200); do (echo -n > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
# CPU seconds (user + system, every thread) the process has used so far.
cpu_seconds() { awk -v tck="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / tck }' "/proc/$1/stat"; }
# Waits until a UDP socket is bound to 127.0.0.1:$1.
wait_udp() { for _ in $(seq 200); do ss -Hlun "sport = :$1" | grep -q . && return 0; sleep 0.05; done; return 1; }
# Stops the daemon whose pid is in $PID (if any) and waits for it.
stop_daemon() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; PID=""; }
