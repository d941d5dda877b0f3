package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/aspstate/aspstate/trace"
)

// runRecord implements `aspstate record`.
func runRecord(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("record", "--upstream HOST:PORT --out FILE.pcapng [--listen ADDR]",
		"A recording proxy for farms where capturing on the state server's host is not possible\n"+
			"(e.g. loopback on Windows): point the web servers' stateConnectionString at --listen; every\n"+
			"byte is forwarded unchanged to --upstream and both directions are written to --out as pcapng\n"+
			"(each client's real address and port, the time each chunk arrived), which aspstate trace\n"+
			"inspect reads. Ctrl-C flushes and closes the file. Listens on loopback only unless\n"+
			"--allow-remote is given; prints \"listening on ADDR\" once the port is bound.", stderr)
	listen := fs.String("listen", "127.0.0.1:42424", "TCP `ADDR`ess to listen on (HOST:PORT; port 0 picks a free one)")
	upstream := fs.String("upstream", "", "the state server to forward to (`HOST:PORT`)")
	out := fs.String("out", "", "the pcapng `FILE` to write")
	allowRemote := fs.Bool("allow-remote", false, "listen on a non-loopback address (the web servers on other hosts connect to it)")
	if done, code := parseFlags(fs, args, false); done {
		return code
	}
	switch {
	case *upstream == "":
		return usageError(stderr, "record", "--upstream HOST:PORT is required (the state server to forward to)")
	case *out == "":
		return usageError(stderr, "record", "--out FILE.pcapng is required")
	}
	if _, _, err := net.SplitHostPort(*upstream); err != nil {
		return usageError(stderr, "record", "--upstream %q: want HOST:PORT", *upstream)
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return usageError(stderr, "record", "--listen %q: want HOST:PORT", *listen)
	}
	if ip, err := netip.ParseAddr(host); !*allowRemote && host != "localhost" && (err != nil || !ip.Unmap().IsLoopback()) {
		return usageError(stderr, "record", "--listen %s is not a loopback address; add --allow-remote to accept web servers on other hosts", *listen)
	}
	rec, err := trace.NewRecorder(*listen, *upstream, *out)
	if err != nil {
		fmt.Fprintf(stderr, "aspstate record: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "listening on %s, forwarding to %s, recording to %s\n", rec.Addr(), *upstream, *out)
	if err := rec.Serve(ctx); err != nil {
		fmt.Fprintf(stderr, "aspstate record: writing %s: %v\n", *out, err)
		return 1
	}
	fmt.Fprintf(stdout, "recorded to %s (aspstate trace inspect %s)\n", *out, *out)
	return 0
}

// newRecordCmd is `aspstate record`, plugged in with legacy() (its own flag
// set), with its examples.
func newRecordCmd() *cobra.Command {
	c := legacy("record", "a recording proxy: forward to a state server and write the traffic as pcapng", runRecord)
	c.Example = `  # web servers point at 127.0.0.1:42425; the state service listens on 42424; Ctrl-C ends the recording
  aspstate record --listen 127.0.0.1:42425 --upstream 127.0.0.1:42424 --out farm.pcapng`
	return c
}
