# Thin wrapper over CMake (in the manner of DuckDB's top-level Makefile).
BUILD_DIR ?= build
CONFIG ?= config/all-in-one.yaml
JOBS ?= $(shell nproc)

.PHONY: all setup build run test clean bench soak soak-e2e test-asan fuzz

all: build

setup:
	@./scripts/setup.sh

# setup first, then configure (once), then build.
build: setup
	@[ -f $(BUILD_DIR)/build.ninja ] || cmake -S . -B $(BUILD_DIR) -G Ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/bytefreezer run --config $(CONFIG)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

# The fault-injection suite's long form (docs/reliability.md): 2 minutes of load per scenario.
soak: build
	cd $(BUILD_DIR) && BF_FAULT_SECONDS=120 ctest --output-on-failure -L fault --timeout 3600
	$(MAKE) soak-e2e

# Issue 6's soak: 30 minutes at 100,000 events/s through `bytefreezer run`, sampled each minute.
soak-e2e: build
	cmake --build $(BUILD_DIR) --target proxy_loadgen
	bench/e2e_throughput.sh 180000000 100000 60

# Every test against an ASan + UBSan build (in build-asan/; DuckDB itself is not instrumented).
test-asan: setup
	@[ -f build-asan/build.ninja ] || cmake -S . -B build-asan -G Ninja -DBF_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 1800

# libFuzzer over the decoders (tests/fuzz), FUZZ_SECONDS each, in build-fuzz/ with
# clang; a failing input is kept in build-fuzz/tests/fuzz/artifacts/ (add it to
# tests/fuzz/regressions/<target>/ with the fix). `make test` runs them briefly too.
FUZZ_SECONDS ?= 60
fuzz:
	@[ -f build-fuzz/build.ninja ] || CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DBF_FUZZ_ONLY=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build-fuzz -j $(JOBS) --target fuzz_all
	tests/fuzz/run.sh build-fuzz/tests/fuzz tests/fuzz $(FUZZ_SECONDS)

# Bench-only peers (rsyslog) are installed by `setup.sh --bench`; `make test` needs none.
bench: build
	@./scripts/setup.sh --bench
	cmake --build $(BUILD_DIR) --target benchmarks
	$(BUILD_DIR)/bench/bench_pipeline
	$(BUILD_DIR)/bench/bench_query_latency
	cd $(BUILD_DIR) && ./bench/bench_receiver
	$(BUILD_DIR)/bench/bench_packer_vs_duckdb
	bench/e2e_throughput.sh
	bench/proxy_vs_rsyslog.sh
	bench/proxy_vs_rsyslog_udp.sh
	$(BUILD_DIR)/bench/bench_flow_decode
	bench/proxy_flow_rss.sh

clean:
	rm -rf $(BUILD_DIR)
