# Thin wrapper over CMake (in the manner of DuckDB's top-level Makefile).
BUILD_DIR ?= build
CONFIG ?= config/all-in-one.yaml
JOBS ?= $(shell nproc)

.PHONY: all setup build run test clean bench

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

bench: build
	cmake --build $(BUILD_DIR) --target benchmarks
	$(BUILD_DIR)/bench/bench_pipeline
	bench/e2e_throughput.sh

clean:
	rm -rf $(BUILD_DIR)
