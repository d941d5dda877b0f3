#!/usr/bin/env bash
# `make run`: the main job on a fresh machine, start to finish, all local:
#   1. a real exchange with the reference server, byte for byte (the captured .NET 4 request)
#   2. conformance: every [MS-ASP] rule against the in-process reference server
#   3. a web-farm load run (e-commerce peak) against the in-process reference server
#   4. the report of that run
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./bin/aspstate
out=${DEMO_OUT:-results/runs/demo-$(date -u +%Y%m%d-%H%M%S)}
duration=${DEMO_DURATION:-20s}
mkdir -p "$out"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1/4 a real exchange: aspstate serve, then the captured .NET 4 PUT and GetExclusive"
log=$(mktemp)
$bin serve --listen 127.0.0.1:0 >"$log" 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q 'listening on' "$log" && break; sleep 0.05; done
addr=$(sed -n 's/.*listening on \(.*\)/\1/p' "$log" | head -1)
echo "server: $(head -1 "$log")"
exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}"
for f in net4-put-release net4-get-acquire; do
  echo "--> $f.request"
  sed -n '1,/^\r$/p' "protocol/testdata/captures/$f.request" | sed 's/\r$/\\r\\n/' | sed 's/^/    /'
  cat "protocol/testdata/captures/$f.request" >&3
  want=$(wc -c <"protocol/testdata/captures/$f.response")
  got=$(head -c "$want" <&3 | tee "$out/$f.reply" | wc -c)
  echo "<-- reply ($got bytes)"
  sed -n '1,/^\r$/p' "$out/$f.reply" | sed 's/\r$/\\r\\n/' | sed 's/^/    /'
  if cmp -s "$out/$f.reply" "protocol/testdata/captures/$f.response"; then
    echo "    byte-identical to the reply of Microsoft's service ($f.response)"
  else
    echo "    DIFFERS from the captured reply of Microsoft's service"; exit 1
  fi
done
exec 3>&-
kill $srv; wait $srv 2>/dev/null || true

step "2/4 conformance: every rule against the in-process reference server"
$bin conform --out "$out/conformance"

step "3/4 load: the ecommerce-peak web farm against the in-process reference server ($duration)"
$bin load --scenario ecommerce-peak --duration "$duration" --out "$out/load"

step "4/4 report"
$bin report --out "$out/report" "$out/load"
echo
echo "everything from this run: $out"
