#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given -fuzztime each (default 10000x).
#
# Give a count of inputs (10000x), not a duration: with a duration, Go 1.26's fuzz coordinator can
# fail a target with a bare "context deadline exceeded" when its deadline races a busy worker
# (golang/go#75804, fixed in Go 1.27); seen here on FuzzWalk in a CI run on a loaded machine.
set -euo pipefail
cd "$(dirname "$0")/.."
time=${1:-10000x}
found=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    found=1
    echo "fuzz $pkg $target for $time"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$time" "$pkg"
  done
done
[ "$found" = 1 ] || echo "no fuzz targets yet"
