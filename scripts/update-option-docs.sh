#!/bin/sh
# Regenerates the option tables (<!-- options: TYPE --> blocks) of docs/proxy.md from
# the sources' option tables, of docs/pipelines.md from the pipeline steps'
# declarations and of docs/connectors.md from the connector sinks' tables;
# unit_proxy's, unit_piper's and unit_connector's docs tests fail while they differ.
set -e
cd "$(dirname "$0")/.."
BIN=${BIN:-build/bytefreezer}
"$BIN" plugins --update-docs docs/proxy.md
"$BIN" plugins --update-docs docs/pipelines.md
"$BIN" plugins --update-docs docs/connectors.md
