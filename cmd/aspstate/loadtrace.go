package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/aspstate/aspstate/loadgen"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/trace"
)

// traceLoadFlags are the flags of aspstate load that replay a capture.
type traceLoadFlags struct {
	files  []string
	speed  float64
	copies int
	spread time.Duration
	port   int
}

func addTraceLoadFlags(fs *pflag.FlagSet) *traceLoadFlags {
	f := &traceLoadFlags{}
	fs.StringArrayVar(&f.files, "trace", nil, "replay this capture (pcap, pcapng; repeatable) instead of a scenario's schedule: every recorded page\n"+
		"becomes a page of the emulated client at its recorded offset, kind, execution time, size, web server and partition")
	fs.Float64Var(&f.speed, "speed", 1, "with --trace: replay this many times faster than recorded; session timeouts and the lock-poll interval\n"+
		"follow it when the protocol minute does (--minute = 1m / speed, inproc target), else they stay real (the result's replay_timers says which)")
	fs.IntVar(&f.copies, "copies", 1, "with --trace: replay this many copies of the capture, each with its own sessions")
	fs.DurationVar(&f.spread, "copy-spread", 0, "with --trace: start copy i this much later than copy i-1")
	fs.IntVar(&f.port, "trace-port", 42424, "with --trace: the state server's TCP port in the capture")
	return f
}

// set reports whether any replay flag was given.
func (f *traceLoadFlags) set() bool { return len(f.files) > 0 }

// check refuses replay flags without --trace and bad values, as usage errors.
func (f *traceLoadFlags) check(fs *pflag.FlagSet) error {
	if !f.set() {
		var stray []string
		fs.Visit(func(fl *pflag.Flag) {
			switch fl.Name {
			case "speed", "copies", "copy-spread", "trace-port":
				stray = append(stray, "--"+fl.Name)
			}
		})
		if len(stray) > 0 {
			return fmt.Errorf("%s apply only with --trace FILE", strings.Join(stray, ", "))
		}
		return nil
	}
	o := trace.ReplayOptions{Speed: f.speed, Copies: f.copies, Spread: f.spread}
	if _, _, err := (&trace.Replay{}).Source(o); err != nil {
		return err
	}
	if f.port < 1 || f.port > 65535 {
		return fmt.Errorf("--trace-port %d: want a port from 1 to 65535", f.port)
	}
	return nil
}

// readReplay reads the captures for command cmd (load, plan). code is the
// exit code of a failure (2 unreadable file, 1 nothing to replay).
func readReplay(ctx context.Context, cmd string, files []string, port int, stderr io.Writer) (*trace.Replay, int) {
	r, err := trace.LoadReplay(ctx, files, trace.Options{Port: uint16(port)})
	var fe *trace.FileError
	switch {
	case errors.As(err, &fe):
		fmt.Fprintf(stderr, "aspstate %s: %v\n", cmd, err)
		return nil, 2
	case errors.Is(err, trace.ErrNoReplayablePage) && r.Stats.Exchanges == 0:
		fmt.Fprintf(stderr, "aspstate %s: %s: %s\n", cmd, strings.Join(files, ", "), noExchangeReason(r.Stats, uint16(port)))
		return nil, 1
	case err != nil:
		fmt.Fprintf(stderr, "aspstate %s: %s: %v\n", cmd, strings.Join(files, ", "), err)
		return nil, 1
	}
	return r, 0
}

// replay reads the captures and returns the scenario (the farm) and the
// config fields that make the run a replay. code is the exit code of a
// failure (2 unreadable file, 1 nothing to replay).
func (f *traceLoadFlags) replay(ctx context.Context, stderr io.Writer) (*scenarios.Scenario, func(*loadgen.Config), int) {
	o := trace.ReplayOptions{Speed: f.speed, Copies: f.copies, Spread: f.spread}
	r, code := readReplay(ctx, "load", f.files, f.port, stderr)
	if code != 0 {
		return nil, nil, code
	}
	sc, err := r.Scenario(o)
	if err != nil {
		fmt.Fprintf(stderr, "aspstate load: %v\n", err)
		return nil, nil, 1
	}
	src, seeds, err := r.Source(o)
	if err != nil {
		fmt.Fprintf(stderr, "aspstate load: %v\n", err)
		return nil, nil, 2
	}
	fmt.Fprintf(stderr, "replay: %d pages of %s (span %s, %d exchanges, %d unfinished pages left out), %d sessions seeded per copy, speed %g, %d copies\n",
		r.Pages, strings.Join(r.Files, ", "), r.Span.Round(time.Millisecond), r.Stats.Exchanges, r.Unfinished, len(r.Existing), f.speed, f.copies)
	return sc, func(c *loadgen.Config) {
		c.Pages, c.Seeds, c.SourceOptions = src, seeds, r.Options(o, c.Minute)
	}, 0
}
