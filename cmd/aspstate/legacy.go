package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Helpers for commands still written with the standard flag package, plugged
// into the tree with legacy(): they parse their own arguments. Port such a
// command to pflag (see load.go) and these go once nothing uses them.

// newFlagSet returns a flag set that reports errors instead of exiting, with
// a usage text naming the command. synopsis is the line after "Usage:".
func newFlagSet(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("aspstate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: aspstate %s %s\n\n%s\n\nFlags:\n", name, synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, flags and positional arguments in any order; the
// positional ones are left in fs.Args(). It returns done=true with the exit
// code when the command should stop: 0 after -h, 2 after a bad flag or a
// stray argument (when allowArgs is false).
func parseFlags(fs *flag.FlagSet, args []string, allowArgs bool) (done bool, code int) {
	pos, done, code := parseInterspersed(fs, args)
	if done {
		return done, code
	}
	if !allowArgs && len(pos) > 0 {
		return true, usageError(fs.Output(), fs.Name()[len("aspstate "):], "unexpected argument %q", pos[0])
	}
	// Leave the positional arguments in fs.Args(), in order, as fs.Parse
	// would have without interspersed flags.
	_ = fs.Parse(append([]string{"--"}, pos...)) // "--" then words: nothing to fail on
	return false, 0
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments (`aspstate report a b --out x`), and returns the
// positional arguments in order. "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) (positional []string, done bool, code int) {
	usage := fs.Usage
	fs.Usage = func() {} // an error is one line (the flag package prints it), not the flag list
	defer func() { fs.Usage = usage }()
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage()
				return nil, true, 0
			}
			fmt.Fprintf(fs.Output(), "see '%s --help'\n", fs.Name())
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

// command returns an entry point that runs the subcommand name through the
// whole command tree, with the signature the commands had before cobra (and
// that tests call).
func command(name string) func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		return dispatch(ctx, append([]string{name}, args...), stdout, stderr)
	}
}

// Entry points of the commands, by name.
var (
	runServe   = command("serve")
	runConform = command("conform")
	runLoad    = command("load")
	runReport  = command("report")
	runPlan    = command("plan")
	runCompare = command("compare")
	runMerge   = command("merge")
)
