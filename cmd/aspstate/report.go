package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/aspstate/aspstate/results/report"
)

// reportOptions are the flags of aspstate report.
type reportOptions struct {
	out, format string
}

func newReportCmd() *cobra.Command {
	o := &reportOptions{}
	c := &cobra.Command{
		Use:   "report DIR... [flags]",
		Short: "draw result directories as HTML, PNG and Markdown",
		Long: "Draw one or several result directories (from aspstate load) as a self-contained report.html\n" +
			"with inline SVG charts, PNG files of the same charts and a Markdown summary (report.md), in\n" +
			"DIR/report/ of the first result directory unless --out says otherwise. Several runs overlay in\n" +
			"every chart, one colour per run. Prints the path of report.html.\n" +
			"Exit 0 ok, 1 the report could not be written, 2 usage or unreadable results.",
		Example: `  # one run: runs/base/report/report.html
  aspstate report runs/base
  # two runs overlaid, HTML only, into a directory of its own
  aspstate report runs/base runs/restart --out runs/base-vs-restart --format html`,
		Args: needArgs("give at least one result directory (written by aspstate load --out DIR)"),
	}
	c.RunE = action(o.run)
	fs := commandFlags(c)
	fs.StringVar(&o.out, "out", "", "directory to write the report into (default: DIR/report/ of the first result directory)")
	fs.StringVar(&o.format, "format", "html,png,md", "comma-separated formats: html, png, md")
	return c
}

// run implements aspstate report.
func (o *reportOptions) run(ctx context.Context, c *cobra.Command, dirs []string) int {
	stdout, stderr := c.OutOrStdout(), c.ErrOrStderr()
	f, err := report.ParseFormat(o.format)
	if err != nil {
		return usageError(stderr, "report", "--format %q: %v", o.format, err)
	}
	ins, err := report.Load(dirs)
	if err != nil {
		fmt.Fprintf(stderr, "aspstate report: %v\n", err)
		return 2
	}
	dir := o.out
	if dir == "" {
		dir = filepath.Join(dirs[0], "report")
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
