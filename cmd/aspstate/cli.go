package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aspstate/aspstate/servers/target"
)

// The command tree is cobra over pflag (as kubectl, gh and hugo use): GNU
// --flags, flags and arguments in any order, "did you mean", completion.
// This file holds the tree, the exit-code plumbing and the flag error
// messages; each command's flags live in its own file.

// newRoot builds the command tree, in the order help lists the commands.
func newRoot() *cobra.Command {
	keepCommandOrder.Do(func() { cobra.EnableCommandSorting = false }) // a cobra global: set once
	root := &cobra.Command{
		Use:   "aspstate",
		Short: "load-testing and conformance harness for the ASP.NET State Server protocol",
		Long: "aspstate: load-testing and conformance harness for the ASP.NET State Server protocol ([MS-ASP]).\n" +
			"A reference state server, a conformance suite and a web-farm load generator in one binary.\n\n" +
			"Environment: " + cpuProfileEnv + "=FILE writes a CPU profile of the command (go tool pprof FILE).",
		Example: `  aspstate conform --target tcp://127.0.0.1:42424 --label-filter '!timing'
  aspstate load --scenario ajax-heavy --duration 3s --out runs/first`,
		Version:       versionString(),
		Args:          unknownCommand,
		RunE:          func(c *cobra.Command, _ []string) error { c.SetOut(c.ErrOrStderr()); _ = c.Help(); return exitCode(2) },
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SuggestionsMinimumDistance = 2
	root.SetVersionTemplate("aspstate {{.Version}}\n")
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(
		newServeCmd(), newConformCmd(), newLoadCmd(), newReportCmd(), newPlanCmd(),
		newCompareCmd(), newMergeCmd(), newTraceCmd(),
		// Commands not yet ported to pflag plug in with legacy(), one line each.
		newRecordCmd(),
		newImageCmd(), newVersionCmd(), newDocsCmd(),
	)
	return root
}

// keepCommandOrder turns off cobra's alphabetical listing of commands, once
// (tests build trees concurrently).
var keepCommandOrder sync.Once

// dispatch runs the command line args (without the program name) and returns
// the process exit code: 0 success, 1 failure, 2 usage or target error.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	c, err := root.ExecuteContextC(ctx)
	return exitStatus(c, err, stderr)
}

// exitCode carries a command's exit status through cobra.
type exitCode int

func (e exitCode) Error() string { return "exit status " + strconv.Itoa(int(e)) }

// usageProblem is a usage error found by the command tree (a flag, an
// argument); the command's own checks print theirs with usageError.
type usageProblem struct{ msg string }

func (u *usageProblem) Error() string { return u.msg }

// exitStatus maps what cobra returned to an exit code, printing a usage
// problem as one line and a pointer to the help, never the flag list.
func exitStatus(c *cobra.Command, err error, stderr io.Writer) int {
	var code exitCode
	var up *usageProblem
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	case errors.As(err, &up):
		path := "aspstate"
		if c != nil {
			path = c.CommandPath()
		}
		fmt.Fprintf(stderr, "%s: %s\nsee '%s --help'\n", path, up.msg, path)
		return 2
	}
	fmt.Fprintf(stderr, "aspstate: %v\n", err)
	return 1
}

// usageError prints a usage problem of the command cmd ("load", "trace
// fit") and returns exit code 2.
func usageError(stderr io.Writer, cmd string, format string, args ...any) int {
	fmt.Fprintf(stderr, "aspstate %s: %s\nsee 'aspstate %s --help'\n", cmd, fmt.Sprintf(format, args...), cmd)
	return 2
}

// action adapts a command body that returns an exit code to cobra.
func action(run func(ctx context.Context, c *cobra.Command, args []string) int) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		if code := run(c.Context(), c, args); code != 0 {
			return exitCode(code)
		}
		return nil
	}
}

// legacy plugs in a command written as run(ctx, args, stdout, stderr) with
// the standard flag package (newFlagSet, parseFlags): cobra leaves its
// arguments alone and its help is the command's own -h.
func legacy(name, short string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) int) *cobra.Command {
	c := &cobra.Command{
		Use: name, Short: short, DisableFlagParsing: true,
		RunE: func(c *cobra.Command, args []string) error {
			if wantsHelp(args) {
				return c.Help()
			}
			if code := run(c.Context(), args, c.OutOrStdout(), c.ErrOrStderr()); code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
	c.SetHelpFunc(func(c *cobra.Command, _ []string) {
		run(context.Background(), []string{"-h"}, c.OutOrStdout(), c.OutOrStdout())
		if c.Example != "" {
			fmt.Fprintf(c.OutOrStdout(), "\nExamples:\n%s\n", c.Example)
		}
	})
	return c
}

// wantsHelp reports whether a legacy command's arguments ask for its help
// (before any "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// noArgs refuses positional arguments.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageProblem{fmt.Sprintf("unexpected argument %q (this command takes only flags)", args[0])}
	}
	return nil
}

// needArgs requires at least one positional argument; msg says which.
func needArgs(msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) == 0 {
			return &usageProblem{msg}
		}
		return nil
	}
}

// unknownCommand is the root's argument check: a word that is no command.
func unknownCommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return &usageProblem{msg}
}

// flagError turns pflag's errors into one line naming the flag, the value and
// the expected form.
func flagError(c *cobra.Command, err error) error {
	var notExist *pflag.NotExistError
	var invalid *pflag.InvalidValueError
	var required *pflag.ValueRequiredError
	switch {
	case errors.As(err, &notExist):
		name := "--" + notExist.GetSpecifiedName()
		if notExist.GetSpecifiedName() == "" {
			name = "-" + notExist.GetSpecifiedShortnames()
		}
		msg := "unknown flag " + name
		if s := suggestFlag(c, strings.TrimLeft(name, "-")); s != "" {
			msg += fmt.Sprintf("; did you mean --%s?", s)
		}
		return &usageProblem{msg}
	case errors.As(err, &invalid):
		f := invalid.GetFlag()
		return &usageProblem{fmt.Sprintf("--%s: %s", f.Name, invalidValue(f, invalid.GetValue(), errors.Unwrap(invalid)))}
	case errors.As(err, &required):
		f := required.GetFlag()
		return &usageProblem{fmt.Sprintf("--%s needs a value (%s)", f.Name, expectedForm(f.Value.Type()))}
	}
	return &usageProblem{err.Error()}
}

// invalidValue says why value is not valid for f: the expected form for the
// standard types, the flag type's own words for the project's types.
func invalidValue(f *pflag.Flag, value string, cause error) string {
	if form := expectedForm(f.Value.Type()); form != "" {
		return fmt.Sprintf("%q is not %s", value, form)
	}
	if cause != nil {
		return cause.Error()
	}
	return fmt.Sprintf("%q is not valid", value)
}

// expectedForm describes the values of a standard pflag type.
func expectedForm(typ string) string {
	switch typ {
	case "duration":
		return "a duration (e.g. 30s, 2m)"
	case "int", "int64", "uint64", "uint":
		return "a whole number (e.g. 16)"
	case "float64":
		return "a number (e.g. 2.5)"
	case "bool":
		return "true or false"
	}
	return ""
}

// suggestFlag returns the visible flag of c whose name is closest to name,
// or "" when none is close.
func suggestFlag(c *cobra.Command, name string) string {
	best, bestD := "", 3
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		d := levenshtein(name, f.Name)
		if strings.HasPrefix(f.Name, name) && len(name) >= 3 {
			d = 1
		}
		if d < bestD {
			best, bestD = f.Name, d
		}
	})
	return best
}

// levenshtein is the edit distance between a and b.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// fieldName is a Go field name in a library's validation message.
var fieldName = regexp.MustCompile(`\b[A-Z][A-Za-z]*\b`)

// fieldErrors rewrites the error of a library's Validate (one problem a
// line, each naming Config fields) to name the flags that set those fields.
func fieldErrors(err error, fields map[string]string) error {
	if err == nil {
		return nil
	}
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = fieldName.ReplaceAllStringFunc(l, func(w string) string {
			if f, ok := fields[w]; ok {
				return "--" + f
			}
			return w
		})
	}
	return errors.New(strings.Join(lines, "\n  "))
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

// versionString is the version and revision for people.
func versionString() string {
	v, rev := buildVersion()
	if rev == "" {
		rev = "unknown"
	}
	return fmt.Sprintf("%s (revision %s)", v, rev)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use: "version", Short: "print the aspstate version", Args: noArgs,
		Example: "  aspstate version",
		RunE: func(c *cobra.Command, _ []string) error {
			fmt.Fprintf(c.OutOrStdout(), "aspstate %s\n", versionString())
			return nil
		},
	}
}

// commandFlags prepares the flag set of a command: listed in the order they
// are defined (the important ones first).
func commandFlags(c *cobra.Command) *pflag.FlagSet {
	fs := c.Flags()
	fs.SortFlags = false
	return fs
}

// containerFlags are the options of docker: targets, shared by conform, load
// and plan.
type containerFlags struct {
	port    int
	env     []string
	cmd     string
	waitLog string
}

// addContainerFlags registers --target-port, --target-env, --target-cmd and
// --target-wait-log on fs.
func addContainerFlags(fs *pflag.FlagSet) *containerFlags {
	c := &containerFlags{}
	fs.IntVar(&c.port, "target-port", 0, "docker targets: the server's port inside the container (default 42424)")
	fs.StringArrayVar(&c.env, "target-env", nil, "docker targets: KEY=VALUE in the container's environment (repeatable)")
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
