#!/usr/bin/env bash
# Idempotent set-up for building, running and testing ByteFreezer on Debian 12.
# Checks before it installs; runs `apt-get update` only when a package is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

# --- `--bench`: the peers that `make bench` measures against (bench-only) ----
# rsyslog, bench/proxy_vs_rsyslog.sh's peer (the load generator is our own,
# bench/proxy_loadgen.cpp: Debian's syslog-ng-core, which ships `loggen`, conflicts
# with rsyslog, both being a system-log-daemon). Not needed by `make test`.
# Installed without starting its service: a policy-rc.d that forbids starts is put in
# place for the install when none exists, and a system rsyslogd that a package start
# script left running anyway is stopped (the benchmark starts its own rsyslogd from a
# temp config).
if [ "${1:-}" = "--bench" ]; then
  BENCH_PACKAGES=(rsyslog)
  missing=()
  for p in "${BENCH_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup --bench: installing Debian packages: ${missing[*]}"
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\n# bytefreezer setup --bench: no service starts during the install\nexit 101\n' \
        | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
      $SUDO chmod 755 /usr/sbin/policy-rc.d
      made_policy=1
    fi
    log=$(mktemp)
    rc=0
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        --no-install-recommends "${missing[@]}"; } >"$log" 2>&1 || rc=$?
    if [ -n "$made_policy" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
    if [ $rc != 0 ]; then
      cat "$log" >&2
      echo "setup --bench: apt-get failed" >&2
      exit 1
    fi
    rm -f "$log"
  fi
  # A system daemon from the packages (pid file in /run) must not stay running.
  for pidfile in /run/rsyslogd.pid; do
    if [ -f "$pidfile" ] && pid=$(cat "$pidfile") && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      echo "setup --bench: stopping the system daemon started by the install ($pidfile, pid $pid)"
      $SUDO kill "$pid" || true
    fi
  done
  for tool in rsyslogd; do
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ] && [ ! -x "/usr/bin/$tool" ]; then
      echo "setup --bench: $tool not found after install" >&2
      exit 1
    fi
  done
  echo "setup --bench: ok"
  exit 0
fi

# --- Debian packages (DESIGN.md §5) ---------------------------------------
APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git ca-certificates curl openssl
  libboost1.81-dev libboost-json1.81-dev libboost-system1.81-dev
  libcurl4-openssl-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev
  libzstd-dev zlib1g-dev libre2-dev libxxhash-dev libmaxminddb-dev librdkafka-dev libnats-dev
  libsqlite3-dev libpq-dev libssl-dev libsodium-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nats-server tzdata
  # tests/fixtures/postgres_cluster.sh: a throwaway cluster for the control store's
  # PostgreSQL tests (initdb + pg_ctl from the server package; its own main cluster is not used).
  postgresql
  # tests/unit/proxy/flow_wireshark_test.cpp: softflowd exports NetFlow v5/v9/IPFIX
  # from a generated pcap, tshark decodes the same datagrams for comparison.
  tshark softflowd
  # tests/fuzz: libFuzzer (-fsanitize=fuzzer) targets, run briefly by `make test`.
  clang
  # Enrichment steps' tests (docs/pipelines.md): MaxMind::DB::Writer builds MMDB
  # fixtures for geoip; dnsmasq-base (the binary without the system service) is the
  # DNS server the rdns tests start.
  libmaxmind-db-writer-perl dnsmasq-base
  # tests/e2e/ui_test.mjs drives the web UI in Debian's Chromium (playwright-core).
  chromium
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js/npm: the machine may carry its own build (e.g. NodeSource); Debian's npm
# conflicts with it, so install Debian's only when no npm is on PATH.
if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  log=$(mktemp)
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
           --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup: apt-get failed" >&2
    exit 1
  fi
  rm -f "$log"
  # The postgresql package starts its system cluster on install; nothing here uses it
  # (the tests start their own, tests/fixtures/postgres_cluster.sh).
  for pidfile in /run/postgresql/*-main.pid; do
    if [ -f "$pidfile" ] && pid=$(head -n 1 "$pidfile") && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      echo "setup: stopping the system PostgreSQL cluster started by the install ($pidfile, pid $pid)"
      $SUDO kill -INT "$pid" || true
    fi
  done
fi

# --- DuckDB 1.4.4 LTS from npm, pinned and integrity-checked --------------
# libduckdb.so: prebuilt, from @duckdb/node-bindings-linux-x64; headers: from the
# source tree inside the `duckdb` npm package.
DUCKDB_DIR=$ROOT/third_party/duckdb
LIB_PKG="@duckdb/node-bindings-linux-x64@1.4.4-r.4"
LIB_SHA512="jBTL/WvfwxLToFa/pVHfT6elMtltJGnc3wSuxZD9OfMltit9YUdVFS37vBFQzXMT1Z8OWjtSjMh+zPKxOwHLHA=="
SRC_PKG="duckdb@1.4.4"
SRC_SHA512="hEJJ5hyVF0VLj3dmOLpsWrQR0b3d4Ykqtygm6iUXjHJDDnSqg/USKxcb5qvNrOhFYPgktayU6dXCtgPqcmmpog=="

fetch_npm_tarball() { # pkg expected-sha512-base64 dest-dir
  local pkg=$1 sum=$2 dest=$3 tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
  local tgz
  tgz=$(ls "$tmp"/*.tgz)
  local got
  got=$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)
  if [ "$got" != "$sum" ]; then
    echo "setup: integrity check failed for $pkg (got sha512-$got)" >&2
    rm -rf "$tmp"; exit 1
  fi
  mkdir -p "$dest"
  tar -xzf "$tgz" -C "$dest"
  rm -rf "$tmp"
}

if [ ! -f "$DUCKDB_DIR/lib/libduckdb.so" ] || [ ! -f "$DUCKDB_DIR/include/duckdb.hpp" ] \
   || [ "$(cat "$DUCKDB_DIR/VERSION" 2>/dev/null)" != "$LIB_PKG $SRC_PKG" ]; then
  echo "setup: fetching DuckDB ($LIB_PKG, $SRC_PKG)"
  rm -rf "$DUCKDB_DIR"; mkdir -p "$DUCKDB_DIR/lib" "$DUCKDB_DIR/include"
  work=$(mktemp -d)
  fetch_npm_tarball "$LIB_PKG" "$LIB_SHA512" "$work/lib"
  fetch_npm_tarball "$SRC_PKG" "$SRC_SHA512" "$work/src"
  cp "$(find "$work/lib" -name 'libduckdb.so' | head -1)" "$DUCKDB_DIR/lib/"
  inc=$(dirname "$(find "$work/src" -path '*src/duckdb/src/include/duckdb.hpp' | head -1)")
  cp -r "$inc/." "$DUCKDB_DIR/include/"
  rm -rf "$work"
  echo "$LIB_PKG $SRC_PKG" > "$DUCKDB_DIR/VERSION"
fi

# --- npm test servers (committed package.json + lockfile) -----------------
if [ ! -d tests/servers/node_modules ] || [ tests/servers/package-lock.json -nt tests/servers/node_modules/.stamp ]; then
  echo "setup: installing npm test servers"
  (cd tests/servers && npm ci --silent --no-audit --no-fund && touch node_modules/.stamp)
fi
# --- the web UI's build (Vite) and browser-test packages (committed lockfile) --
if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.stamp ]; then
  echo "setup: installing the web UI's npm packages"
  (cd ui && npm ci --silent --no-audit --no-fund && touch node_modules/.stamp)
fi
echo "setup: ok"
