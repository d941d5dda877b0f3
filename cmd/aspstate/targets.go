package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/servers/target"
)

// parseTargets parses --target values (default inproc); --minute applies
// only to in-process targets.
func parseTargets(raw []string, minute time.Duration) ([]target.Spec, error) {
	if len(raw) == 0 {
		raw = []string{target.KindInProc}
	}
	var specs []target.Spec
	for _, t := range raw {
		spec, err := target.Parse(t)
		if err != nil {
			return nil, fmt.Errorf("--target: %v", err)
		}
		if minute != 0 && spec.Kind != target.KindInProc {
			return nil, fmt.Errorf("--minute applies only to inproc targets (target %s has its own clock)", spec)
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// readyTimeout is how long to wait for targets to answer: --wait-target
// when given; otherwise about a second for servers that should already run
// (a refused connection fails fast), the library's default for the ones the
// harness starts itself (processes, containers).
func readyTimeout(specs []target.Spec, wait time.Duration) time.Duration {
	if wait > 0 {
		return wait
	}
	for _, s := range specs {
		if s.Kind != target.KindTCP {
			return 0
		}
	}
	return time.Second
}

// startTargets starts (or reaches) every target; on an error it returns
// those already started, for the caller to close.
func startTargets(ctx context.Context, specs []target.Spec, opts target.Options, wait time.Duration) ([]target.Target, error) {
	opts.ReadyTimeout = readyTimeout(specs, wait)
	var started []target.Target
	for _, spec := range specs {
		t, err := target.Start(ctx, spec, opts)
		if err != nil {
			if spec.Kind == target.KindTCP && wait == 0 {
				err = fmt.Errorf("%v (is the server running? --wait-target 30s waits for one that is starting)", err)
			}
			return started, err
		}
		started = append(started, t)
	}
	return started, nil
}

func closeTargets(ts []target.Target) {
	for _, t := range ts {
		t.Close()
	}
}

// resultDir returns the directory a new result goes to: out, which must be
// new or empty unless overwrite (then a previous result in it is removed
// first, so no file of it stays beside the new one), or a new directory
// results/runs/<name>-<timestamp>.
func resultDir(out, name string, overwrite bool) (string, error) {
	if out == "" {
		base := filepath.Join("results", "runs", name+"-"+time.Now().Format("20060102-150405"))
		out = base
		for i := 2; exists(out); i++ {
			out = fmt.Sprintf("%s-%d", base, i)
		}
		return out, nil
	}
	entries, err := os.ReadDir(out)
	switch {
	case errors.Is(err, os.ErrNotExist) || err == nil && len(entries) == 0:
		return out, nil
	case err != nil:
		return "", fmt.Errorf("--out %s: %v", out, err)
	case !overwrite:
		return "", fmt.Errorf("--out %s is not empty; choose a new directory, or add --overwrite to replace the result in it", out)
	case !exists(filepath.Join(out, results.ResultFile)):
		return "", fmt.Errorf("--out %s holds no %s: not a result directory, so --overwrite will not empty it", out, results.ResultFile)
	}
	if err := os.RemoveAll(out); err != nil {
		return "", fmt.Errorf("--out %s: %v", out, err)
	}
	return out, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
