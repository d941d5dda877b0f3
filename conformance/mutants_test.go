package conformance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspstate/aspstate/conformance/internal/mutants"
	"github.com/aspstate/aspstate/servers/target"
)

// Environment of a mutant child process (the test binary re-executed).
const (
	mutantEnv = "ASPSTATE_CONFORMANCE_MUTANT"        // mutant name
	reportEnv = "ASPSTATE_CONFORMANCE_MUTANT_REPORT" // where the child writes its report
	onlyEnv   = "ASPSTATE_MUTANTS"                   // comma-separated mutants to run (default all)
)

// mutantParallel bounds the child processes running at once. They mostly
// wait on the protocol clock, so this is more than the core count.
const mutantParallel = 4

// proxyTarget is a mutant proxy in front of an in-process reference server.
type proxyTarget struct {
	name  string
	proxy *mutants.Proxy
	up    target.Target
}

func (p *proxyTarget) Addr() string { return p.proxy.Addr() }
func (p *proxyTarget) Info() target.Info {
	return target.Info{Spec: "mutant:" + p.name, Kind: "mutant", Addr: p.proxy.Addr(),
		Description: "reference server behind the " + p.name + " mutant proxy"}
}
func (p *proxyTarget) Close() error {
	p.proxy.Close()
	return p.up.Close()
}

func mutantByName(name string) (mutants.Mutant, bool) {
	if name == mutants.Identity().Name {
		return mutants.Identity(), true
	}
	for _, m := range mutants.All() {
		if m.Name == name {
			return m, true
		}
	}
	return mutants.Mutant{}, false
}

// TestMutantChild is the child side of TestMutants: it runs the suite once
// against one mutant and writes the report. It is skipped in a normal run.
func TestMutantChild(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		t.Skip("runs only as a child of TestMutants")
	}
	m, ok := mutantByName(name)
	if !ok {
		t.Fatalf("unknown mutant %q", name)
	}
	ctx := context.Background()
	cfg := InProcServerConfig(testMinute)
	cfg.IdleTimeout = 0 // the proxy holds upstream connections; keep them
	up, err := target.Start(ctx, target.Spec{Kind: target.KindInProc}, target.Options{Minute: testMinute, Server: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := mutants.Start(m, up.Addr(), testMinute)
	if err != nil {
		t.Fatal(err)
	}
	tgt := &proxyTarget{name: name, proxy: proxy, up: up}
	defer tgt.Close()
	rep, err := Run(ctx, Config{Target: tgt, Minute: testMinute})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(os.Getenv(reportEnv))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := NewMatrix(rep).WriteJSON(f); err != nil {
		t.Fatal(err)
	}
}

// mutantResult is what one child run found.
type mutantResult struct {
	m      mutants.Mutant
	failed []string
	rep    *RunReport
}

// TestMutants runs the suite against the transparent proxy (everything must
// pass) and against every mutant (each must fail, on at least the rules
// designed to catch it), each in a child process of this test binary.
func TestMutants(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("mutant child process")
	}
	if testing.Short() {
		t.Skip("mutation tests take about a minute; skipped with -short")
	}
	all := append([]mutants.Mutant{mutants.Identity()}, mutants.All()...)
	if only := os.Getenv(onlyEnv); only != "" {
		// While iterating on a mutant: ASPSTATE_MUTANTS=name,name (the
		// identity control always runs).
		all = slices.DeleteFunc(all, func(m mutants.Mutant) bool {
			return m.Name != mutants.Identity().Name && !slices.Contains(strings.Split(only, ","), m.Name)
		})
	}
	results := make([]mutantResult, len(all))
	sem := make(chan struct{}, mutantParallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var fatal []string
	for i, m := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res, err := runMutantProcess(m)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fatal = append(fatal, err.Error())
				return
			}
			results[i] = res
		}()
	}
	wg.Wait()
	if len(fatal) > 0 {
		t.Fatal(strings.Join(fatal, "\n"))
	}
	for _, res := range results {
		m := res.m
		t.Run(m.Name, func(t *testing.T) {
			t.Logf("%s: %d rules failed: %s", m.Name, len(res.failed), strings.Join(res.failed, " "))
			if m.Name == mutants.Identity().Name {
				for _, rr := range res.rep.Rules {
					if rr.Result == ResultFailed {
						t.Errorf("through the transparent proxy rule %s failed: %s", rr.ID, firstFailure(rr))
					}
				}
				return
			}
			if len(res.failed) == 0 {
				t.Fatalf("the suite passed against mutant %s (%s)", m.Name, m.Breaks)
			}
			for _, id := range m.Catch {
				if !slices.Contains(res.failed, id) {
					t.Errorf("rule %s did not catch mutant %s (%s); failed: %v", id, m.Name, m.Breaks, res.failed)
				}
			}
		})
	}
}

// runMutantProcess is runMutant without a *testing.T, for the worker pool.
func runMutantProcess(m mutants.Mutant) (mutantResult, error) {
	dir, err := os.MkdirTemp("", "aspstate-mutant-")
	if err != nil {
		return mutantResult{}, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "report.json")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMutantChild$", "-test.count=1", "-test.timeout=3m")
	cmd.Env = append(os.Environ(), mutantEnv+"="+m.Name, reportEnv+"="+out)
	output, err := cmd.CombinedOutput()
	if err != nil {
		return mutantResult{}, fmt.Errorf("child for mutant %s: %v\n%s", m.Name, err, output)
	}
	mx, err := ReadMatrix(out)
	if err != nil {
		return mutantResult{}, fmt.Errorf("mutant %s: %v\n%s", m.Name, err, output)
	}
	rep := mx.Reports[0]
	failed := rep.FailedRules()
	sort.Strings(failed)
	return mutantResult{m: m, failed: failed, rep: rep}, nil
}
