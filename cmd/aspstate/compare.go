package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/results/compare"
)

// compareOptions are the flags of aspstate compare.
type compareOptions struct {
	bases, news, thresholds, allow       []string
	format, junit, minEffect, correction string
	alpha                                float64
}

func newCompareCmd() *cobra.Command {
	o := &compareOptions{}
	c := &cobra.Command{
		Use:   "compare BASE NEW [flags]   |   compare --base DIR... --new DIR... [flags]",
		Short: "compare result directories with a noise-aware verdict and thresholds",
		Long: "Compare load results: per page type and operation, the change of p50, p90, p99, p99.9, max,\n" +
			"throughput and error rate from BASE to NEW, with a noise-aware verdict (Mann–Whitney U over\n" +
			"per-interval values, like benchstat): regression, improvement or no change. BASE and NEW are\n" +
			"result directories or quoted globs ('runs/base-*'); several runs per side are pooled.\n" +
			"Thresholds: 'page-state p99 < 50ms', 'op p99 < 10ms', 'op:get p99.9 < 2ms', 'errors < 0.1%',\n" +
			"'page-state:modify p99 <= +10%' (page-state: the pages' time in state-server calls and lock waits).\n" +
			"BASE and NEW must have run the same workload (scenario content, model, offered rate or population,\n" +
			"duration); a difference is refused with exit 2 unless --allow-different names it. A change is a\n" +
			"regression only when significant and at least the metric's minimum effect (--min-effect); open-model\n" +
			"throughput is judged against the offered rate.\n" +
			"Exit 0 pass, 1 a regression or a broken threshold, 2 usage, unreadable results or different workloads.",
		Example: `  # two runs: a verdict per page type and operation
  aspstate compare runs/base runs/restart
  # a CI gate: absolute and relative limits, Markdown for a pull request, JUnit for the CI
  aspstate compare runs/base runs/restart --threshold 'page-state p99 < 1s' --threshold 'errors < 1%' --format markdown --junit compare.xml`,
	}
	c.RunE = action(o.run)
	fs := commandFlags(c)
	fs.StringArrayVar(&o.bases, "base", nil, "BASE result directory or glob (repeat for several runs)")
	fs.StringArrayVar(&o.news, "new", nil, "NEW result directory or glob (repeat for several runs)")
	fs.StringArrayVar(&o.thresholds, "threshold", nil, "a limit, such as 'page-state p99 < 50ms' or 'page-state:modify p99 <= +10%' (repeatable)")
	fs.StringVar(&o.format, "format", "text", "output: text or markdown (for a pull-request comment)")
	fs.StringVar(&o.junit, "junit", "", "also write JUnit XML to this file, for CI")
	fs.Float64Var(&o.alpha, "alpha", compare.DefaultOptions().Alpha, "significance level of the tests")
	fs.StringVar(&o.minEffect, "min-effect", "", "smallest change called a regression or improvement, per metric: [METRIC=]REL[+ABS],…\n"+
		"(e.g. 'p99=30%+2ms,throughput=5%'; '5%' alone: any 5% change of any metric); default "+compare.DefaultOptions().EffectsText())
	fs.StringArrayVar(&o.allow, "allow-different", nil, "compare runs whose workloads differ in these fields: "+strings.Join(compare.WorkloadFields, ", ")+" or all (comma-separated, repeatable)")
	fs.StringVar(&o.correction, "correction", compare.CorrectionBH,
		"p-value correction for the many metrics tested: bh (Benjamini–Hochberg) or none (each metric alone, as benchstat)")
	return c
}

// sides returns the BASE and NEW runs given as arguments or flags.
func (o *compareOptions) sides(pos []string) (bases, news []string, err error) {
	switch {
	case len(o.bases) == 0 && len(o.news) == 0:
		if len(pos) != 2 {
			return nil, nil, fmt.Errorf("want BASE and NEW (two result directories or quoted globs), got %d arguments; for several runs per side use --base DIR --new DIR", len(pos))
		}
		return pos[:1], pos[1:], nil
	case len(pos) > 0:
		return nil, nil, fmt.Errorf("give the runs either as BASE NEW or with --base/--new, not both (stray %q)", pos[0])
	case len(o.bases) == 0 || len(o.news) == 0:
		return nil, nil, errors.New("--base and --new are both needed")
	}
	return o.bases, o.news, nil
}

// options checks the flags and returns the comparison's settings.
func (o *compareOptions) options() (compare.Options, []compare.Threshold, error) {
	opts := compare.DefaultOptions()
	if o.format != "text" && o.format != "markdown" && o.format != "md" {
		return opts, nil, fmt.Errorf("--format %q: want text or markdown", o.format)
	}
	me, err := compare.ParseMinEffects(o.minEffect)
	if err != nil {
		return opts, nil, fmt.Errorf("--min-effect: %v", err)
	}
	if opts.AllowDifferent, err = compare.ParseAllowDifferent(strings.Join(o.allow, ",")); err != nil {
		return opts, nil, fmt.Errorf("--allow-different: %v", err)
	}
	opts.Alpha, opts.MinEffects, opts.Correction = o.alpha, me, o.correction
	if err := opts.Validate(); err != nil {
		return opts, nil, fieldErrors(err, map[string]string{"Alpha": "alpha", "MinEffects": "min-effect", "Correction": "correction"})
	}
	var ths []compare.Threshold
	for _, t := range o.thresholds {
		th, err := compare.ParseThreshold(t)
		if err != nil {
			return opts, nil, fmt.Errorf("--threshold: %v", err)
		}
		ths = append(ths, th)
	}
	return opts, ths, nil
}

// run implements aspstate compare.
func (o *compareOptions) run(ctx context.Context, c *cobra.Command, pos []string) int {
	stdout, stderr := c.OutOrStdout(), c.ErrOrStderr()
	bases, news, err := o.sides(pos)
	if err != nil {
		return usageError(stderr, "compare", "%v", err)
	}
	opts, ths, err := o.options()
	if err != nil {
		return usageError(stderr, "compare", "%v", err)
	}
	base, err := loadSide("BASE", bases)
	if err == nil {
		var nw compare.Side
		if nw, err = loadSide("NEW", news); err == nil && ctx.Err() == nil {
			var res *compare.Result
			if res, err = compare.Compare(base, nw, opts, ths); err == nil {
				return o.print(res, stdout, stderr)
			}
		}
	}
	if ctx.Err() != nil {
		return 1
	}
	fmt.Fprintf(stderr, "aspstate compare: %v\n", err)
	return 2
}

// print writes the comparison and the JUnit file; it returns the exit code.
func (o *compareOptions) print(res *compare.Result, stdout, stderr io.Writer) int {
	var err error
	if o.format == "text" {
		err = res.Text(stdout)
	} else {
		err = res.Markdown(stdout)
	}
	if err == nil && o.junit != "" {
		if err = writeJUnit(o.junit, res); err != nil {
			err = fmt.Errorf("--junit: %v", err)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "aspstate compare: %v\n", err)
		return 1
	}
	if !res.Pass() {
		return 1
	}
	return 0
}

func writeJUnit(path string, res *compare.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := res.JUnit(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadSide expands globs and reads every result directory of one side,
// reporting each directory that is missing or unreadable.
func loadSide(side string, patterns []string) (compare.Side, error) {
	var s compare.Side
	var dirs []string
	for _, p := range patterns {
		if strings.ContainsAny(p, "*?[") {
			m, err := filepath.Glob(p)
			if err != nil {
				return s, fmt.Errorf("%s: bad glob %q: %v", side, p, err)
			}
			if len(m) == 0 {
				return s, fmt.Errorf("%s: glob %q matches no result directory", side, p)
			}
			dirs = append(dirs, m...)
			continue
		}
		dirs = append(dirs, p)
	}
	var problems []string
	for _, d := range dirs {
		st, err := os.Stat(d)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", d, err))
			continue
		}
		if !st.IsDir() {
			problems = append(problems, fmt.Sprintf("%s is not a directory (give the directory holding %s)", d, results.ResultFile))
			continue
		}
		r, err := results.Read(d)
		if err == nil {
			err = r.Validate()
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", d, err))
			continue
		}
		s.Runs = append(s.Runs, r)
		s.Names = append(s.Names, d)
	}
	if len(problems) > 0 {
		return s, fmt.Errorf("%s: %s", side, strings.Join(problems, "; "))
	}
	return s, nil
}
