#!/bin/sh
# Runs every libFuzzer target (fuzz_<name>) in BIN_DIR: first each input under
# regressions/<name>/ once (crashes found before, kept as regression tests), then
# SECONDS of fuzzing from corpus/<name>/. Non-zero exit on any crash; the input that
# crashed is kept in $ARTIFACTS (default BIN_DIR/artifacts) — add it to
# regressions/<name>/ with the fix. `make test` runs this with a few seconds per target
# (ctest fuzz_smoke), `make fuzz` with FUZZ_SECONDS.
#   tests/fuzz/run.sh BIN_DIR SRC_DIR(tests/fuzz) [SECONDS]
set -eu
bin=$1
src=$2
seconds=${3:-5}
artifacts=${ARTIFACTS:-$bin/artifacts}
mkdir -p "$artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
found=0
for exe in "$bin"/fuzz_*; do
  [ -x "$exe" ] || continue
  found=1
  name=${exe##*/fuzz_}
  rm -f "$artifacts/$name-"*
  log="$work/$name.log"
  fail() {
    tail -n 40 "$log" >&2
    echo "fuzz_$name: $1; the failing input is kept in $artifacts/" >&2
    exit 1
  }
  if [ -d "$src/regressions/$name" ] && [ -n "$(ls -A "$src/regressions/$name")" ]; then
    echo "== $name: $(ls "$src/regressions/$name" | wc -l) regression inputs"
    "$exe" -artifact_prefix="$artifacts/$name-" "$src/regressions/$name"/* >"$log" 2>&1 || fail "a regression input fails"
  fi
  echo "== $name: fuzzing ${seconds}s"
  mkdir -p "$work/$name"
  seeds=""
  [ -d "$src/corpus/$name" ] && seeds="$src/corpus/$name"
  # -print_final_stats: the log shows how many inputs ran.
  "$exe" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 -artifact_prefix="$artifacts/$name-" \
    "$work/$name" $seeds >"$log" 2>&1 || fail "crashed"
  grep -E "^stat::(number_of_executed_units|new_units_added)" "$log" || true
done
[ "$found" = 1 ] || { echo "no fuzz_* targets in $bin" >&2; exit 1; }
