package main

//go:generate go run . docs ../../docs/cli.md

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// newDocsCmd is the hidden command that writes docs/cli.md from the command
// tree (go generate ./cmd/aspstate, or make docs); a test fails when the
// file is stale.
func newDocsCmd() *cobra.Command {
	return &cobra.Command{
		Use: "docs FILE", Short: "write the command-line reference (Markdown) to FILE", Hidden: true,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var b strings.Builder
			writeCLIDocs(&b, c.Root())
			return os.WriteFile(args[0], []byte(b.String()), 0o644)
		},
	}
}

// writeCLIDocs writes the reference of every visible command of root.
func writeCLIDocs(w io.Writer, root *cobra.Command) {
	root.InitDefaultCompletionCmd() // cobra adds it when a command line runs
	fmt.Fprintf(w, "# aspstate command line\n\n<!-- generated from the command tree by `make docs` (go generate ./cmd/aspstate); do not edit -->\n\n")
	fmt.Fprintf(w, "%s\n\nExit status of every command: 0 success, 1 failure (a failed rule, a regression, a run that failed), 2 usage or target error.\n\n", root.Long)
	for _, c := range root.Commands() {
		if c.Hidden || c.Name() == "help" {
			continue
		}
		fmt.Fprintf(w, "- [`aspstate %s`](#aspstate-%s): %s\n", c.Name(), c.Name(), c.Short)
	}
	for _, c := range root.Commands() {
		if c.Hidden || c.Name() == "help" {
			continue
		}
		writeCommandDocs(w, c)
	}
}

// writeCommandDocs writes one command and its subcommands.
func writeCommandDocs(w io.Writer, c *cobra.Command) {
	fmt.Fprintf(w, "\n## %s\n\n", c.CommandPath())
	if c.Long != "" {
		fmt.Fprintf(w, "%s\n\n", c.Long)
	} else {
		fmt.Fprintf(w, "%s\n\n", c.Short)
	}
	fmt.Fprintf(w, "```\n%s\n```\n", c.UseLine())
	if c.Example != "" {
		fmt.Fprintf(w, "\nExamples:\n\n```sh\n%s\n```\n", c.Example)
	}
	if f := c.NonInheritedFlags().FlagUsages(); f != "" {
		fmt.Fprintf(w, "\nFlags:\n\n```\n%s```\n", f)
	}
	for _, sub := range c.Commands() {
		if !sub.Hidden && sub.Name() != "help" && c.Name() != "completion" {
			writeCommandDocs(w, sub)
		}
	}
}
