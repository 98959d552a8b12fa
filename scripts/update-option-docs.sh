#!/bin/sh
# Regenerates the option tables of docs/proxy.md (<!-- options: TYPE --> blocks) from
# the sources' option tables; unit_proxy's OptionDocs test fails while they differ.
set -e
cd "$(dirname "$0")/.."
BIN=${BIN:-build/bytefreezer}
"$BIN" plugins --update-docs docs/proxy.md
