package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/trace"
)

// traceCommand is one `aspstate trace` subcommand, still written with the
// standard flag package and plugged into the tree with legacy().
type traceCommand struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// traceCommands is the registry of `aspstate trace` subcommands.
func traceCommands() []traceCommand {
	return []traceCommand{
		{"inspect", "show what a capture of state-server traffic holds (one screen, or one line per exchange)", runTraceInspect},
		{"fit", "fit a scenario (farm.yaml) to a capture: aspstate load --scenario farm.yaml runs it", runTraceFit},
		{"diff", "replay a capture against a server and compare every reply with the recorded one", runTraceDiff},
	}
}

// newTraceCmd is `aspstate trace`: its subcommands read captures (pcap,
// pcapng) of the traffic between web servers and the state service.
func newTraceCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "trace",
		Short: "read, fit and replay captures of real state-server traffic (inspect, fit, diff)",
		Long: "Read captures (pcap, pcapng) of the traffic between web servers and the state service:\n" +
			"inspect shows what a capture holds, fit writes a scenario of the farm, diff replays it against a\n" +
			"server and compares every reply. aspstate load --trace replays a capture as load.",
		Example: `  aspstate trace inspect farm.pcap
  aspstate trace fit farm.pcap --out farm.yaml
  aspstate trace diff farm.pcap --target tcp://127.0.0.1:42424`,
		Args: unknownCommand,
		RunE: func(c *cobra.Command, _ []string) error { c.SetOut(c.ErrOrStderr()); _ = c.Help(); return exitCode(2) },
	}
	for _, sub := range traceCommands() {
		c.AddCommand(legacy(sub.name, sub.summary, sub.run))
	}
	return c
}

// captureFlags are the flags every trace subcommand reading captures takes.
type captureFlags struct {
	port int
}

func addCaptureFlags(fs interface {
	IntVar(p *int, name string, value int, usage string)
}) *captureFlags {
	c := &captureFlags{}
	fs.IntVar(&c.port, "port", protocol.DefaultPort, "the state server's TCP `PORT` in the capture (the other side of each connection is a web server)")
	return c
}

// options checks the flags and returns the reader's options.
func (c *captureFlags) options() (trace.Options, error) {
	if c.port < 1 || c.port > 65535 {
		return trace.Options{}, fmt.Errorf("--port %d: want a port from 1 to 65535", c.port)
	}
	return trace.Options{Port: uint16(c.port)}, nil
}

// readCapture runs trace.Read and turns its failures into one-line messages:
// exit 2 for a file that cannot be read, 1 for a capture without a usable
// exchange, 0 when there were exchanges.
func readCapture(ctx context.Context, cmd string, files []string, opt trace.Options, fn func(*trace.Exchange) error, stderr io.Writer) (trace.Stats, int) {
	st, err := trace.Read(ctx, files, opt, fn)
	var fe *trace.FileError
	switch {
	case errors.As(err, &fe):
		fmt.Fprintf(stderr, "aspstate %s: %v\n", cmd, err)
		return st, 2
	case err != nil && ctx.Err() != nil:
		fmt.Fprintf(stderr, "aspstate %s: interrupted\n", cmd)
		return st, 1
	case err != nil:
		fmt.Fprintf(stderr, "aspstate %s: %v\n", cmd, err)
		return st, 2
	case st.Exchanges == 0:
		fmt.Fprintf(stderr, "aspstate %s: %s: %s\n", cmd, strings.Join(files, ", "), noExchangeReason(st, opt.Port))
		return st, 1
	}
	return st, 0
}

// noExchangeReason says why a capture that read held no usable exchange,
// and what to do.
func noExchangeReason(st trace.Stats, port uint16) string {
	switch {
	case st.Packets == 0:
		return "the capture holds no packets; capture again while the web servers use the state service"
	case st.PortPackets == 0:
		msg := fmt.Sprintf("no TCP traffic on port %d in %d packets", port, st.Packets)
		if busiest := busiestPorts(st.Ports); busiest != "" {
			msg += " (TCP ports seen: " + busiest + ")"
		}
		return msg + fmt.Sprintf("; give the state server's port with --port, or capture with the filter 'tcp port %d'", port)
	case st.Foreign.TLS > 0:
		return fmt.Sprintf("port %d carries TLS (%d connections), not the state service's plain-text protocol; give the state server's port with --port", port, st.Foreign.TLS)
	case st.Foreign.HTTP > 0:
		return fmt.Sprintf("port %d carries HTTP (replies begin \"HTTP/1.x\", which the state service never sends); give the state server's port with --port", port)
	case st.Skipped.Undecodable > 0 && st.Skipped.JoinedMidStream == 0 && st.Skipped.Gaps == 0:
		return fmt.Sprintf("port %d carries something other than [MS-ASP] (%d messages not decodable); give the state server's port with --port", port, st.Skipped.Undecodable)
	}
	return fmt.Sprintf("%d connections on port %d but no whole exchange (%s); capture longer, or from before the web servers connect",
		st.Connections, port, st.Skipped)
}

// busiestPorts lists the three ports with the most segments.
func busiestPorts(m map[uint16]int) string {
	type pc struct {
		port uint16
		n    int
	}
	var all []pc
	for p, n := range m {
		all = append(all, pc{p, n})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n || all[i].n == all[j].n && all[i].port < all[j].port })
	var parts []string
	for i := 0; i < len(all) && i < 3; i++ {
		parts = append(parts, fmt.Sprintf("%d ×%d", all[i].port, all[i].n))
	}
	return strings.Join(parts, ", ")
}

// runTraceInspect implements `aspstate trace inspect`.
func runTraceInspect(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("trace inspect", "[flags] FILE...",
		"Read captures (pcap or pcapng from tcpdump, dumpcap/Wireshark, pktmon etl2pcap or aspstate record;\n"+
			"several files are one capture, e.g. one per partition) and show on one screen: time span, web\n"+
			"servers, apps, partitions, sessions, exchanges by operation and status, pages (rebuilt as trace fit\n"+
			"does) and pages/s and exchanges/s over time,\n"+
			"423s and lock waits, body sizes, Timeout values and the real server's latency per operation.\n"+
			"Session keys and bodies are never printed unless asked (--show-keys prints keys; bodies never).\n"+
			"Exit 0 ok, 1 no usable exchange in the capture, 2 usage or an unreadable file.", stderr)
	cf := addCaptureFlags(fs)
	out := fs.String("out", "", "also write the capture as a result `DIR`ectory (result.json + .hlog) for aspstate report and compare")
	lines := fs.Bool("exchanges", false, "print one line per exchange (time, connection, op, key, status, sizes, latency) before the summary")
	asJSON := fs.Bool("json", false, "print one JSON object per exchange (JSON lines) instead of the summary")
	showKeys := fs.Bool("show-keys", false, "print session keys (they identify users' sessions) instead of pseudonyms s1, s2, …")
	if done, code := parseFlags(fs, args, true); done {
		return code
	}
	files := fs.Args()
	if len(files) == 0 {
		return usageError(stderr, "trace inspect", "give the capture files to read (e.g. farm.pcap)")
	}
	opt, err := cf.options()
	if err != nil {
		return usageError(stderr, "trace inspect", "%v", err)
	}
	in := trace.NewInspection()
	keys := &trace.Keys{Show: *showKeys}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	// Pages are rebuilt as trace fit does, for the pages per second.
	pb := trace.NewPageBuilder(func(p *trace.Page) error { in.AddPage(p); return nil })
	st, code := readCapture(ctx, "trace inspect", files, opt, func(e *trace.Exchange) error {
		in.Add(e)
		if err := pb.Add(e); err != nil {
			return err
		}
		switch {
		case *asJSON:
			return enc.Encode(trace.NewRecord(e, keys))
		case *lines:
			_, err := fmt.Fprintln(stdout, trace.NewRecord(e, keys))
			return err
		}
		return nil
	}, stderr)
	if code != 0 {
		return code
	}
	if err := pb.Flush(); err != nil {
		fmt.Fprintf(stderr, "aspstate trace inspect: %v\n", err)
		return 1
	}
	return writeInspection(in, st, files[0], *out, *asJSON, *lines, stdout, stderr)
}

// writeInspection prints the summary of an inspected capture (unless the
// exchanges went out as JSON lines) and writes it as a result directory when
// out is set.
func writeInspection(in *trace.Inspection, st trace.Stats, file, out string, asJSON, lines bool, stdout, stderr io.Writer) int {
	if !asJSON {
		if lines {
			fmt.Fprintln(stdout)
		}
		in.Write(stdout, st)
	}
	if out == "" {
		return 0
	}
	if err := writeCaptureResult(in, st, file, out); err != nil {
		fmt.Fprintf(stderr, "aspstate trace inspect: writing %s: %v\n", out, err)
		return 1
	}
	if !asJSON {
		fmt.Fprintf(stdout, "\nresult written to %s (aspstate report %s; aspstate compare %s LAB_RUN)\n", out, out, out)
	}
	return 0
}

// writeCaptureResult writes the inspection of a capture (first its first
// file) as a result directory.
func writeCaptureResult(in *trace.Inspection, st trace.Stats, first, dir string) error {
	v, rev := buildVersion()
	name := "capture-" + strings.TrimSuffix(filepath.Base(first), filepath.Ext(first))
	r, err := in.Run(st, name, results.Harness{Version: v, Revision: rev, Go: runtime.Version()})
	if err != nil {
		return err
	}
	return results.Write(dir, r)
}
