package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
)

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

// parseFlags parses args. It returns done=true with the exit code when the
// command should stop: 0 after -h, 2 after a bad flag or stray argument.
func parseFlags(fs *flag.FlagSet, args []string, allowArgs bool) (done bool, code int) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, 0
		}
		return true, 2
	}
	if !allowArgs && fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q (flags go before it; see -h)\n", fs.Name(), fs.Arg(0))
		return true, 2
	}
	return false, 0
}

// usageError prints a usage problem and returns exit code 2.
func usageError(stderr io.Writer, cmd string, format string, args ...any) int {
	fmt.Fprintf(stderr, "aspstate %s: %s\n(run 'aspstate help %s' for the flags)\n", cmd, fmt.Sprintf(format, args...), cmd)
	return 2
}

// version and revision are set by the linker (see Makefile) or read from the
// build info.
var (
	version  = "dev"
	revision = ""
)

// buildVersion returns the harness version and VCS revision.
func buildVersion() (string, string) {
	rev := revision
	if rev == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					rev = s.Value
				}
			}
		}
	}
	return version, rev
}

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "", "Print the aspstate version and revision.", stderr)
	if done, code := parseFlags(fs, args, false); done {
		return code
	}
	v, rev := buildVersion()
	if rev == "" {
		rev = "unknown"
	}
	fmt.Fprintf(stdout, "aspstate %s (revision %s)\n", v, rev)
	return 0
}
