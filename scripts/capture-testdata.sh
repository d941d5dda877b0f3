#!/usr/bin/env bash
# Remakes the live captures in trace/testdata: `aspstate load` against
# `aspstate serve` on loopback, captured at once by tcpdump on lo (pcap,
# Ethernet), dumpcap on lo (pcapng) and tcpdump -i any (Linux cooked, SLL2).
# Needs root (or capture capabilities), tcpdump and dumpcap (apt-get install
# tcpdump tshark). Each file stays well under 1 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
out=trace/testdata
addr=${CAPTURE_ADDR:-127.0.0.77}   # a loopback address of its own, so other servers on 42424 do not mix in
filter="tcp port 42424 and host $addr"
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

go build -o "$tmp/aspstate" ./cmd/aspstate
"$tmp/aspstate" serve --listen "$addr:42424" >"$tmp/serve.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do grep -q "listening on" "$tmp/serve.log" && break; sleep 0.1; done

tcpdump -i lo --immediate-mode -U -w "$tmp/farm-lo.pcap" "$filter" 2>"$tmp/td-lo.log" & pids+=($!)
tcpdump -i any --immediate-mode -U -w "$tmp/farm-any.pcap" "$filter" 2>"$tmp/td-any.log" & pids+=($!)
dumpcap -q -i lo -w "$tmp/farm-lo.pcapng" -f "$filter" 2>"$tmp/dc.log" & pids+=($!)
for f in td-lo td-any; do
  for _ in $(seq 100); do grep -q "listening on" "$tmp/$f.log" && break; sleep 0.1; done
done
for _ in $(seq 100); do [ -s "$tmp/farm-lo.pcapng" ] && break; sleep 0.1; done
sleep 1 # dumpcap prints nothing when it starts; give it a moment after its file appears

"$tmp/aspstate" load --scenario small-intranet --target "tcp://$addr:42424" --duration 3s --seed 1 --out "$tmp/run" >/dev/null

sleep 1
for p in "${pids[@]:1}"; do kill -INT "$p"; done
for p in "${pids[@]:1}"; do wait "$p" || true; done
cp "$tmp/farm-lo.pcap" "$tmp/farm-any.pcap" "$tmp/farm-lo.pcapng" "$out/"
ls -l "$out"/farm-*
