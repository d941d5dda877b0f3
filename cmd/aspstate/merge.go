package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/aspstate/aspstate/results"
)

// runMerge implements `aspstate merge`.
func runMerge(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("merge", "[--out DIR] RESULT_DIR...",
		"Combine the result directories of load generators that ran together (the shards of\n"+
			"`aspstate load --shard I/N`) into one result: counters add up and every histogram,\n"+
			"totals and each interval, is an HdrHistogram merge, so percentiles are exact.\n"+
			"Exit 0 ok, 1 correctness violations or a failed shard, 2 usage or unreadable input.", stderr)
	out := fs.String("out", "", "merged result directory (default results/runs/<scenario>-merged-<timestamp>)")
	if done, code := parseFlags(fs, args, true); done {
		return code
	}
	dirs := fs.Args()
	if len(dirs) == 0 {
		return usageError(stderr, "merge", "give the result directories to merge (one per shard)")
	}
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
	dir := *out
	if dir == "" {
		dir = filepath.Join("results", "runs", m.Config.ScenarioName+"-merged-"+time.Now().Format("20060102-150405"))
	}
	if err := results.Write(dir, m); err != nil {
		fmt.Fprintf(stderr, "aspstate merge: writing %s: %v\n", dir, err)
		return 1
	}
	results.Summary(stdout, m)
	fmt.Fprintf(stdout, "\nmerged %d results (start skew %s): %s\n", len(runs), m.Config.Options["merged_start_skew"], dir)
	switch {
	case m.Correctness.Total > 0:
		fmt.Fprintf(stderr, "aspstate merge: %d correctness violations\n", m.Correctness.Total)
		return 1
	case m.Failure != "":
		return 1
	}
	return 0
}
