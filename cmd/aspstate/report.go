package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/aspstate/aspstate/results/report"
)

// runReport implements `aspstate report DIR…`.
func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("report", "[flags] DIR…",
		"Draw one or several result directories (from aspstate load) as a self-contained report.html\n"+
			"with inline SVG charts, PNG files of the same charts and a Markdown summary (report.md).\n"+
			"Several runs overlay in every chart, one colour per run. Prints the path of report.html.\n"+
			"Exit 0 ok, 1 the report could not be written, 2 usage or unreadable results.", stderr)
	out := fs.String("out", "", "directory to write the report into (default: the first result directory)")
	format := fs.String("format", "html,png,md", "comma-separated formats: html, png, md")
	dirs, done, code := parseInterspersed(fs, args)
	if done {
		return code
	}
	f, err := report.ParseFormat(*format)
	if err != nil {
		return usageError(stderr, "report", "--format %q: %v", *format, err)
	}
	if len(dirs) == 0 {
		return usageError(stderr, "report", "give at least one result directory (written by aspstate load --out DIR)")
	}
	ins, err := report.Load(dirs)
	if err != nil {
		fmt.Fprintf(stderr, "aspstate report: %v\n", err)
		return 2
	}
	dir := *out
	if dir == "" {
		dir = dirs[0]
	}
	files, err := report.Write(ctx, dir, ins, f)
	if err != nil {
		fmt.Fprintf(stderr, "aspstate report: %v\n", err)
		return 1
	}
	for _, p := range files.PNGs {
		fmt.Fprintf(stdout, "chart: %s\n", p)
	}
	if files.Markdown != "" {
		fmt.Fprintf(stdout, "summary: %s\n", files.Markdown)
	}
	if files.HTML != "" {
		fmt.Fprintln(stdout, files.HTML)
	}
	return 0
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments (`aspstate report a b --out x`), and returns the
// positional arguments in order. "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) (positional []string, done bool, code int) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, true, 0
			}
			return nil, true, 2
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, false, 0
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), false, 0
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
