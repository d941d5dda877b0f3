package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/aspstate/aspstate/servers/target"
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

// containerFlags are the options of docker: targets, shared by conform, load
// and plan.
type containerFlags struct {
	port    int
	env     stringList
	cmd     string
	waitLog string
}

// addContainerFlags registers --target-port, --target-env, --target-cmd and
// --target-wait-log on fs.
func addContainerFlags(fs *flag.FlagSet) *containerFlags {
	c := &containerFlags{}
	fs.IntVar(&c.port, "target-port", 0, "docker targets: the server's port inside the container (default 42424)")
	fs.Var(&c.env, "target-env", "docker targets: KEY=VALUE in the container's environment (repeatable)")
	fs.StringVar(&c.cmd, "target-cmd", "", "docker targets: the container's command (arguments to the image's entrypoint), e.g. 'serve --listen 0.0.0.0:42424 --allow-remote'")
	fs.StringVar(&c.waitLog, "target-wait-log", "", "docker targets: also wait for a log line containing this text before starting")
	return c
}

// apply checks the flags and copies them into o.
func (c *containerFlags) apply(o *target.Options) error {
	if c.port < 0 || c.port > 65535 {
		return fmt.Errorf("--target-port %d: want a port from 1 to 65535", c.port)
	}
	o.ContainerPort = c.port
	for _, kv := range c.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("--target-env %q: want KEY=VALUE", kv)
		}
		if o.Env == nil {
			o.Env = map[string]string{}
		}
		o.Env[k] = v
	}
	if c.cmd != "" {
		argv, err := target.SplitCommand(c.cmd)
		if err != nil {
			return fmt.Errorf("--target-cmd: %v", err)
		}
		o.Cmd = argv
	}
	o.WaitLog = c.waitLog
	return nil
}

// args returns the flags as command-line arguments, to pass on to a child process.
func (c *containerFlags) args() []string {
	var out []string
	if c.port != 0 {
		out = append(out, "--target-port", strconv.Itoa(c.port))
	}
	for _, kv := range c.env {
		out = append(out, "--target-env", kv)
	}
	if c.cmd != "" {
		out = append(out, "--target-cmd", c.cmd)
	}
	if c.waitLog != "" {
		out = append(out, "--target-wait-log", c.waitLog)
	}
	return out
}

// generatorGC sets the collector for a load-generating command: its live
// heap is a few megabytes turned over tens of times a second, so the default
// GOGC=100 collects about 15 times a second at saturation; 400 collects a
// quarter as often for a few more megabytes. Not with an in-process target,
// whose store may be large (its heap would grow to five times the live
// data), nor when GOGC is set in the environment.
func generatorGC(specs []target.Spec) {
	if os.Getenv("GOGC") != "" {
		return
	}
	for _, s := range specs {
		if s.Kind == target.KindInProc {
			return
		}
	}
	debug.SetGCPercent(400)
}
