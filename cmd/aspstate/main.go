// Command aspstate is a load-testing and conformance harness for the ASP.NET
// State Server protocol ([MS-ASP]): a reference state server, a conformance
// suite, and a web-farm load generator in one binary.
//
// Usage:
//
//	aspstate <command> [flags]
//
// Run "aspstate help" for the list of commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

// command is one subcommand. run gets the arguments after the command name and
// returns the process exit code: 0 success, 1 failure, 2 usage or target error.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands is the explicit registry of subcommands, in the order help lists them.
func commands() []command {
	return []command{
		{"serve", "run the reference ASP.NET state server", runServe},
		{"conform", "check a state server against every [MS-ASP] rule", runConform},
		{"load", "replay a web-farm scenario against a state server and record latency", runLoad},
		{"report", "draw result directories as HTML, PNG and Markdown", runReport},
		{"plan", "find the highest rate a state server sustains within SLOs, and a capacity sheet", runPlan},
		{"compare", "compare result directories with a noise-aware verdict and thresholds", runCompare},
		{"merge", "combine the results of load shards into one (lossless histogram merge)", runMerge},
		{"trace", "read captures of real state-server traffic: trace inspect FILE…", runTrace},
		{"record", "a recording proxy: forward to a state server and write the traffic as pcapng", runRecord},
		{"image", "build the reference server container image (FROM scratch)", runImage},
		{"version", "print the aspstate version", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startCPUProfile(os.Getenv(cpuProfileEnv), os.Stderr)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	stop()
	os.Exit(code)
}

// cpuProfileEnv names the environment variable that turns on a CPU profile of
// any command (go tool pprof FILE); make bench uses it to profile the load
// generator and the server.
const cpuProfileEnv = "ASPSTATE_CPUPROFILE"

// startCPUProfile writes a CPU profile to path until the returned func is
// called; an empty path does nothing, a bad one is reported and ignored.
func startCPUProfile(path string, stderr io.Writer) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "aspstate: %s=%s: %v (no profile written)\n", cpuProfileEnv, path, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// dispatch runs the subcommand named by args[0].
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			return dispatch(ctx, []string{args[1], "-h"}, stdout, stderr)
		}
		usage(stdout)
		return 0
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "aspstate: unknown command %q\n\n", name)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "aspstate: load-testing and conformance harness for the ASP.NET State Server protocol")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: aspstate <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-9s %s\n", "help", "show this list, or a command's flags: aspstate help COMMAND")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Environment: %s=FILE writes a CPU profile of the command (go tool pprof FILE).\n", cpuProfileEnv)
}
