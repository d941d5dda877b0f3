#!/usr/bin/env bash
# Runs every native Go fuzz target in the module for the given time each
# (default 2m). A finding fails the run and leaves its input under testdata/fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
time=${1:-2m}
status=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "== fuzz $pkg $target for $time"
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$time" "$pkg"; then
      echo "fuzz: $target in $pkg found a failing input"; status=1
    fi
  done
done
exit $status
