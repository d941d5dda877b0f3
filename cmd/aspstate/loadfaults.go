package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aspstate/aspstate/loadgen"
	"github.com/aspstate/aspstate/scenarios"
)

// faultFlagSyntax is the one-line help of --fault.
const faultFlagSyntax = "KIND@AT[+DURATION][,delay=D][,jitter=D][,partition=P][,web_server=W], e.g. restart@10s, latency@5s+3s,delay=50ms,jitter=10ms, blackhole@8s+2s, reset-connections@4s, pause@6s+1s, recycle@7s,web_server=2"

// faultFlags is a repeatable --fault flag: faults added to the scenario's
// timeline.
type faultFlags []scenarios.Fault

func (f *faultFlags) String() string {
	parts := make([]string, len(*f))
	for i, x := range *f {
		parts[i] = fmt.Sprintf("%s@%s", x.Kind, x.At)
	}
	return strings.Join(parts, " ")
}

// Type names the flag's values in the help.
func (f *faultFlags) Type() string { return "fault" }

func (f *faultFlags) Set(v string) error {
	x, err := parseFault(v)
	if err != nil {
		return err
	}
	*f = append(*f, x)
	return nil
}

// parseFault parses one --fault value (faultFlagSyntax). The scenario's
// validation checks the combination (durations, params per kind).
func parseFault(v string) (scenarios.Fault, error) {
	fields := strings.Split(strings.TrimSpace(v), ",")
	head := fields[0]
	kind, when, ok := strings.Cut(head, "@")
	if !ok || kind == "" || when == "" {
		return scenarios.Fault{}, fmt.Errorf("fault %q: want %s", v, faultFlagSyntax)
	}
	f := scenarios.Fault{Kind: scenarios.FaultKind(kind)}
	at, length, hasLength := strings.Cut(when, "+")
	d, err := time.ParseDuration(at)
	if err != nil {
		return f, fmt.Errorf("fault %q: at %q is not a duration from the start (e.g. 10s)", v, at)
	}
	f.At = scenarios.Duration(d)
	if hasLength {
		if d, err = time.ParseDuration(length); err != nil {
			return f, fmt.Errorf("fault %q: duration %q is not a duration (e.g. 2s)", v, length)
		}
		f.Duration = scenarios.Duration(d)
	}
	for _, kv := range fields[1:] {
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			return f, fmt.Errorf("fault %q: parameter %q: want key=value", v, kv)
		}
		var err error
		switch k {
		case "delay", "jitter":
			var d time.Duration
			if d, err = time.ParseDuration(val); err == nil {
				if k == "delay" {
					f.Params.Delay = scenarios.Duration(d)
				} else {
					f.Params.Jitter = scenarios.Duration(d)
				}
			}
		case "partition":
			f.Params.Partition, err = strconv.Atoi(val)
		case "web_server":
			f.Params.WebServer, err = strconv.Atoi(val)
		default:
			return f, fmt.Errorf("fault %q: unknown parameter %q; use delay, jitter, partition or web_server", v, k)
		}
		if err != nil {
			return f, fmt.Errorf("fault %q: %s=%q is not valid", v, k, val)
		}
	}
	return f, nil
}

// parseShardFlag parses --shard: "I/N", or "auto/N" for the 0-based
// JOB_COMPLETION_INDEX of a Kubernetes Indexed Job plus one.
func parseShardFlag(v string) (loadgen.Shard, error) {
	if rest, ok := strings.CutPrefix(v, "auto/"); ok {
		idx := os.Getenv("JOB_COMPLETION_INDEX")
		n, err := strconv.Atoi(idx)
		if err != nil || n < 0 {
			return loadgen.Shard{}, fmt.Errorf("--shard %s: JOB_COMPLETION_INDEX is %q; auto/N needs the 0-based index of a Kubernetes Indexed Job (or give I/N)", v, idx)
		}
		v = strconv.Itoa(n+1) + "/" + rest
	}
	return loadgen.ParseShard(v)
}

// parseStartAt parses --start-at: an RFC 3339 time (2026-11-21T10:00:00Z),
// Unix seconds, or +DURATION from now.
func parseStartAt(v string, now time.Time) (time.Time, error) {
	if d, ok := strings.CutPrefix(v, "+"); ok {
		dd, err := time.ParseDuration(d)
		if err != nil || dd < 0 {
			return time.Time{}, fmt.Errorf("--start-at %q: want +DURATION from now, e.g. +30s", v)
		}
		return now.Add(dd), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 {
		return time.Unix(0, int64(secs*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("--start-at %q: want an RFC 3339 time (2026-11-21T10:00:00Z), Unix seconds, or +DURATION; give every shard the same value", v)
}
