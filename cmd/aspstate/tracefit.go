package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/trace"
)

// fitCapture rebuilds the pages of the capture files, fits a scenario to
// them (o.Source is set to the files' names) and returns it with its YAML
// and what was read; a non-zero code is the exit code of a failure, said on
// stderr.
func fitCapture(ctx context.Context, files []string, opt trace.Options, o trace.FitOptions, stderr io.Writer) (*trace.Fit, []byte, trace.Stats, int) {
	var bases []string
	for _, f := range files {
		bases = append(bases, filepath.Base(f))
	}
	o.Source = strings.Join(bases, ", ")
	fitter := trace.NewFitter(o)
	b := trace.NewPageBuilder(fitter.Add)
	st, code := readCapture(ctx, "trace fit", files, opt, b.Add, stderr)
	if code != 0 {
		return nil, nil, st, code
	}
	if err := b.Flush(); err != nil {
		fmt.Fprintf(stderr, "aspstate trace fit: %v\n", err)
		return nil, nil, st, 1
	}
	fit, err := fitter.Fit()
	if errors.Is(err, trace.ErrNoPages) {
		err = fmt.Errorf("%s: %w", strings.Join(files, ", "), err)
	}
	var y []byte
	if err == nil {
		y, err = fit.YAML()
	}
	if err != nil {
		fmt.Fprintf(stderr, "aspstate trace fit: %v\n", err)
		return nil, nil, st, 1
	}
	return fit, y, st, 0
}

// runTraceFit implements `aspstate trace fit`.
func runTraceFit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("trace fit", "[flags] FILE... [--out farm.yaml]",
		"Rebuild the ASP.NET client's pages from captures of state-server traffic and fit a scenario to\n"+
			"them: web servers, apps and weights, load balancing, partitions, pages per session, think time,\n"+
			"abandon fraction, page mix, execution time, bursts, session size and growth, session timeout,\n"+
			"lock poll interval and the page rate (constant, steps, or a population of users). Each fitted field\n"+
			"carries a comment with its statistic and sample count; aspstate load --scenario FILE runs the\n"+
			"result.\n"+
			"Exit 0 ok, 1 no page in the capture, 2 usage or an unreadable file.", stderr)
	cf := addCaptureFlags(fs)
	out := fs.String("out", "", "write the scenario to this `FILE` (default: standard output)")
	name := fs.String("name", "", "scenario name (default: the --out file's name, or \"fitted\")")
	interval := fs.Duration("interval", time.Second, "bin of the per-interval page rate that decides constant or steps")
	window := fs.Duration("burst-window", 100*time.Millisecond, "pages of one session starting this close together are one AJAX fan-out")
	if done, code := parseFlags(fs, flagsFirst(fs, args), true); done {
		return code
	}
	files := fs.Args()
	if len(files) == 0 {
		return usageError(stderr, "trace fit", "give the capture files to read (e.g. farm.pcap)")
	}
	opt, err := cf.options()
	if err != nil {
		return usageError(stderr, "trace fit", "%v", err)
	}
	if *interval <= 0 || *window <= 0 {
		return usageError(stderr, "trace fit", "--interval and --burst-window must be positive")
	}
	n := *name
	if n != "" && scenarioName(n) != n {
		return usageError(stderr, "trace fit", "--name %q: use lower-case letters, digits and hyphens, starting with a letter or digit (e.g. %q)", n, scenarioName(n))
	}
	if n == "" && *out != "" {
		n = scenarioName(strings.TrimSuffix(filepath.Base(*out), filepath.Ext(*out)))
	}
	fit, y, st, code := fitCapture(ctx, files, opt, trace.FitOptions{Name: n, Interval: *interval, BurstWindow: *window}, stderr)
	if code != 0 {
		return code
	}
	if *out == "" {
		_, err = stdout.Write(y)
	} else {
		err = os.WriteFile(*out, y, 0o644)
	}
	if err != nil {
		fmt.Fprintf(stderr, "aspstate trace fit: writing the scenario: %v\n", err)
		return 1
	}
	if *out != "" {
		sc := fit.Scenario
		fmt.Fprintf(stdout, "%d exchanges (%s skipped) -> %s\n", st.Exchanges, st.Skipped, strings.Join(fit.Notes, "; "))
		model := string(sc.Rate.Shape)
		if sc.Users.Population > 0 {
			model = fmt.Sprintf("population of %d users", sc.Users.Population)
		}
		fmt.Fprintf(stdout, "wrote %s: %d web servers, %d apps, %s, %d partitions, %.1f pages/s (%s), %.1f pages/session\n",
			*out, sc.Farm.WebServers, len(sc.Farm.Apps), sc.Farm.LoadBalancing, sc.Farm.Partitions, meanRate(sc), model, sc.Users.MeanPages())
		fmt.Fprintf(stdout, "run it: aspstate load --scenario %s\n", *out)
	}
	return 0
}

// meanRate is a scenario's mean page rate over its duration.
func meanRate(sc *scenarios.Scenario) float64 {
	return sc.ExpectedPages() / sc.Duration.D().Seconds()
}

// scenarioName turns s into a scenario name: lower-case letters, digits
// and hyphens, starting with a letter or digit ("" when nothing is left).
func scenarioName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0:
			b.WriteByte('-')
		}
	}
	return b.String()
}

// flagsFirst moves the flags of args before the file names, so that
// `trace fit FILE… --out farm.yaml` reads as the standard flag package
// wants it (it stops at the first non-flag). "--" ends the flags.
func flagsFirst(fs *flag.FlagSet, args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(append(flags, "--"), append(rest, args[i+1:]...)...)
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			f := fs.Lookup(name)
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); f != nil && !(ok && b.IsBoolFlag()) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			rest = append(rest, a)
		}
	}
	return append(append(flags, "--"), rest...)
}
