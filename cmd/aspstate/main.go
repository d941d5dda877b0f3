// Command aspstate is a load-testing and conformance harness for the ASP.NET
// State Server protocol ([MS-ASP]): a reference state server, a conformance
// suite, and a web-farm load generator in one binary.
//
// Usage:
//
//	aspstate <command> [flags]
//
// Run "aspstate --help" for the list of commands; cli.go builds the command tree.
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
