#!/bin/sh
# Regenerates the option tables (<!-- options: TYPE --> blocks) of docs/proxy.md from
# the sources' option tables and of docs/pipelines.md from the pipeline steps'
# declarations; unit_proxy's and unit_piper's docs tests fail while they differ.
set -e
cd "$(dirname "$0")/.."
BIN=${BIN:-build/bytefreezer}
"$BIN" plugins --update-docs docs/proxy.md
"$BIN" plugins --update-docs docs/pipelines.md
