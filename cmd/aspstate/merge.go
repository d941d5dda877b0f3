package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/aspstate/aspstate/results"
)

// mergeOptions are the flags of aspstate merge.
type mergeOptions struct {
	out       string
	overwrite bool
}

func newMergeCmd() *cobra.Command {
	o := &mergeOptions{}
	c := &cobra.Command{
		Use:   "merge RESULT_DIR... [--out DIR]",
		Short: "combine the results of load shards into one (lossless histogram merge)",
		Long: "Combine the result directories of load generators that ran together (the shards of\n" +
			"`aspstate load --shard I/N`) into one result: counters add up and every histogram,\n" +
			"totals and each interval, is an HdrHistogram merge, so percentiles are exact.\n" +
			"Exit 0 ok, 1 correctness violations or a failed shard, 2 usage or unreadable input.",
		Example: `  # two shards of one farm (on two machines at once, give both the same --start-at), merged
  aspstate load --scenario ajax-heavy --duration 3s --shard 1/2 --out runs/shard-1
  aspstate load --scenario ajax-heavy --duration 3s --shard 2/2 --out runs/shard-2
  aspstate merge runs/shard-1 runs/shard-2 --out runs/merged`,
		Args: needArgs("give the result directories to merge (one per shard)"),
	}
	c.RunE = action(o.run)
	fs := commandFlags(c)
	fs.StringVar(&o.out, "out", "", "merged result directory, new or empty (default results/runs/<scenario>-merged-<timestamp>)")
	fs.BoolVar(&o.overwrite, "overwrite", false, "replace the result already in --out")
	return c
}

// run implements aspstate merge.
func (o *mergeOptions) run(ctx context.Context, c *cobra.Command, dirs []string) int {
	stdout, stderr := c.OutOrStdout(), c.ErrOrStderr()
	var runs []*results.Run
	for _, d := range dirs {
		r, err := results.Read(d)
		if err != nil {
			fmt.Fprintf(stderr, "aspstate merge: %s: %v\n", d, err)
			return 2
		}
		runs = append(runs, r)
	}
	m, err := results.Merge(runs)
	if err != nil {
		fmt.Fprintf(stderr, "aspstate merge: %v\n", err)
		return 2
	}
	dir, err := resultDir(o.out, m.Config.ScenarioName+"-merged", o.overwrite)
	if err != nil {
		return usageError(stderr, "merge", "%v", err)
	}
	if err := results.Write(dir, m); err != nil {
		fmt.Fprintf(stderr, "aspstate merge: writing %s: %v\n", dir, err)
		return 1
	}
	results.Summary(stdout, m)
	fmt.Fprintf(stdout, "\nmerged %d results (start skew %s): %s\n", len(runs), time.Duration(m.Merged.StartSkew), dir)
	switch {
	case m.Correctness.Total > 0:
		fmt.Fprintf(stderr, "aspstate merge: %d correctness violations\n", m.Correctness.Total)
		return 1
	case m.Failure != "":
		return 1
	}
	return 0
}
