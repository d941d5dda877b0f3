package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/results/compare"
)

// compareList is a repeatable string flag of the compare command.
type compareList []string

func (s *compareList) String() string { return strings.Join(*s, " ") }
func (s *compareList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// runCompare implements `aspstate compare BASE NEW`.
func runCompare(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("compare", "[flags] BASE NEW   |   --base DIR… --new DIR… [flags]",
		"Compare load results: per page type and operation, the change of p50, p90, p99, p99.9, max,\n"+
			"throughput and error rate from BASE to NEW, with a noise-aware verdict (Mann–Whitney U over\n"+
			"per-interval values, like benchstat): regression, improvement or no change. BASE and NEW are\n"+
			"result directories or quoted globs ('runs/base-*'); several runs per side are pooled.\n"+
			"Thresholds: 'page-state p99 < 50ms', 'op p99 < 10ms', 'op:get p99.9 < 2ms', 'errors < 0.1%',\n"+
			"'page-state:modify p99 <= +10%' (page-state: the pages' time in state-server calls and lock waits).\n"+
			"BASE and NEW must have run the same workload (scenario content, model, offered rate or population,\n"+
			"duration); a difference is refused with exit 2 unless --allow-different names it. A change is a\n"+
			"regression only when significant and at least the metric's minimum effect (--min-effect); open-model\n"+
			"throughput is judged against the offered rate.\n"+
			"Exit 0 pass, 1 a regression or a broken threshold, 2 usage, unreadable results or different workloads.", stderr)
	var bases, news, thresholds compareList
	fs.Var(&bases, "base", "BASE result directory or glob (repeat for several runs)")
	fs.Var(&news, "new", "NEW result directory or glob (repeat for several runs)")
	fs.Var(&thresholds, "threshold", "a limit, such as 'page-state p99 < 50ms' or 'page-state:modify p99 <= +10%' (repeatable)")
	format := fs.String("format", "text", "output: text or markdown (for a pull-request comment)")
	junit := fs.String("junit", "", "also write JUnit XML to this file, for CI")
	alpha := fs.Float64("alpha", compare.DefaultOptions().Alpha, "significance level of the tests")
	minEffect := fs.String("min-effect", "", "smallest change called a regression or improvement, per metric: [METRIC=]REL[+ABS],…\n"+
		"(e.g. 'p99=30%+2ms,throughput=5%'; '5%' alone: any 5% change of any metric); default "+compare.DefaultOptions().EffectsText())
	var allow compareList
	fs.Var(&allow, "allow-different", "compare runs whose workloads differ in these fields: "+strings.Join(compare.WorkloadFields, ", ")+" or all (comma-separated, repeatable)")
	correction := fs.String("correction", compare.CorrectionBH,
		"p-value correction for the many metrics tested: bh (Benjamini–Hochberg) or none (each metric alone, as benchstat)")
	pos, done, code := parseInterspersed(fs, args)
	if done {
		return code
	}
	if *format != "text" && *format != "markdown" && *format != "md" {
		return usageError(stderr, "compare", "--format %q: want text or markdown", *format)
	}
	switch {
	case len(bases) == 0 && len(news) == 0:
		if len(pos) != 2 {
			return usageError(stderr, "compare",
				"want BASE and NEW (two result directories or quoted globs), got %d arguments; for several runs per side use --base DIR --new DIR", len(pos))
		}
		bases, news = compareList{pos[0]}, compareList{pos[1]}
	case len(pos) > 0:
		return usageError(stderr, "compare", "give the runs either as BASE NEW or with --base/--new, not both (stray %q)", pos[0])
	case len(bases) == 0 || len(news) == 0:
		return usageError(stderr, "compare", "--base and --new are both needed")
	}
	opts := compare.DefaultOptions()
	opts.Alpha = *alpha
	me, err := compare.ParseMinEffects(*minEffect)
	if err != nil {
		return usageError(stderr, "compare", "--min-effect: %v", err)
	}
	opts.MinEffects = me
	if opts.AllowDifferent, err = compare.ParseAllowDifferent(strings.Join(allow, ",")); err != nil {
		return usageError(stderr, "compare", "--allow-different: %v", err)
	}
	opts.Correction = *correction
	if err := opts.Validate(); err != nil {
		return usageError(stderr, "compare", "%v", err)
	}
	var ths []compare.Threshold
	for _, t := range thresholds {
		th, err := compare.ParseThreshold(t)
		if err != nil {
			return usageError(stderr, "compare", "%v", err)
		}
		ths = append(ths, th)
	}
	base, err := loadSide("BASE", bases)
	if err != nil {
		fmt.Fprintf(stderr, "aspstate compare: %v\n", err)
		return 2
	}
	nw, err := loadSide("NEW", news)
	if err != nil {
		fmt.Fprintf(stderr, "aspstate compare: %v\n", err)
		return 2
	}
	if err := ctx.Err(); err != nil {
		return 1
	}
	res, err := compare.Compare(base, nw, opts, ths)
	if err != nil {
		fmt.Fprintf(stderr, "aspstate compare: %v\n", err)
		return 2
	}
	if *format == "text" {
		err = res.Text(stdout)
	} else {
		err = res.Markdown(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "aspstate compare: %v\n", err)
		return 1
	}
	if *junit != "" {
		if err := writeJUnit(*junit, res); err != nil {
			fmt.Fprintf(stderr, "aspstate compare: --junit: %v\n", err)
			return 1
		}
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
