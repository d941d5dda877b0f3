package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aspstate/aspstate/servers/stateserver"
)

// serveShutdownGrace bounds how long a stopping server waits for in-flight
// requests before closing connections.
const serveShutdownGrace = 10 * time.Second

// serveOptions are the flags of aspstate serve beyond the fields they set
// directly in cfg.
type serveOptions struct {
	cfg                            stateserver.Config
	cidrs                          listFlag
	versionHeader                  versionHeaderFlag
	itemSize, headerSize, snapshot sizeFlag
	memLimit                       sizeFlag
	fsync                          string
	fsyncInterval                  time.Duration
}

func newServeCmd() *cobra.Command {
	def := stateserver.DefaultConfig()
	o := &serveOptions{cfg: def, versionHeader: versionHeaderFlag(def.Version), itemSize: sizeFlag(def.MaxItemBytes),
		headerSize: sizeFlag(def.MaxHeaderBytes), snapshot: sizeFlag(stateserver.DefaultSnapshotLogBytes),
		fsync: string(stateserver.FsyncInterval), fsyncInterval: stateserver.DefaultFsyncInterval}
	c := &cobra.Command{
		Use:   "serve",
		Short: "run the reference ASP.NET state server",
		Long: "Run the reference ASP.NET state server ([MS-ASP] over TCP, like aspnet_state.exe).\n" +
			"It listens on loopback only unless --allow-remote is given, and prints\n" +
			"\"listening on ADDR\" once the port is bound. It stops on SIGINT or SIGTERM.",
		Example: `  # on the default port, loopback only, real-time minutes
  aspstate serve --listen 127.0.0.1:42424
  # a 60 ms protocol minute (timeouts and lock ages run 1000x faster), Prometheus metrics
  aspstate serve --listen 127.0.0.1:0 --minute 60ms --metrics 127.0.0.1:0
  # sessions that survive restarts, each reply sent after its log record is on disk
  aspstate serve --listen 127.0.0.1:0 --data-dir state --fsync always`,
		Args: noArgs,
	}
	c.RunE = action(o.run)
	o.addFlags(commandFlags(c))
	return c
}

func (o *serveOptions) addFlags(fs *pflag.FlagSet) {
	cfg := &o.cfg
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "TCP `ADDR`ess to listen on (HOST:PORT; port 0 picks a free one)")
	fs.DurationVar(&cfg.Minute, "minute", cfg.Minute, "how long one protocol minute lasts (time scale for expiry and LockAge), e.g. 60ms")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "accept non-loopback peers (like AllowRemoteConnection=1); anyone who can connect can read and replace every session")
	fs.Var(&o.cidrs, "allow-cidr", "with --allow-remote, accept only peers in this `CIDR` (repeatable or comma-separated, e.g. 10.0.0.0/8)")
	fs.Var(&o.versionHeader, "version-header", "X-AspNet-Version value to send")
	fs.BoolVar(&cfg.OmitVersion, "no-version-header", false, "send no X-AspNet-Version header (reproduces KB 2836759: the first request of each app fails)")
	fs.Var(&o.itemSize, "max-item-size", "largest session body accepted, in `BYTES` (suffixes KiB, MiB, GiB)")
	fs.Var(&o.headerSize, "max-header-size", "largest request head accepted, in `BYTES` (suffixes KiB, MiB)")
	fs.IntVar(&cfg.MaxConns, "max-conns", 0, "most concurrent connections; past it new ones are closed at once (0 = no limit)")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "close a connection idle this long between requests, real time (0 = never)")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", cfg.RequestTimeout, "close a connection whose request has not fully arrived this long after its first byte (slowloris defence; 0 = never)")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout, "close a connection whose reply cannot be written within this long (a client that never reads; 0 = never)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "keep sessions in `DIR` (snapshot + append-only log) so they survive restarts and crashes; empty = memory only, like Microsoft's service")
	fs.StringVar(&o.fsync, "fsync", o.fsync, "with --data-dir, the `POLICY` for forcing the log to disk: always (a reply is sent only after its log record is on disk; concurrent writers share one fsync), interval (every --fsync-interval: a crash of the process loses nothing written, a power loss the last interval), never (left to the OS)")
	fs.DurationVar(&o.fsyncInterval, "fsync-interval", o.fsyncInterval, "with --fsync interval, how often the log is fsynced")
	fs.Var(&o.snapshot, "snapshot-after", "with --data-dir, write a snapshot and start a fresh log once the log has grown by this many `BYTES` (and by the size of the last snapshot)")
	fs.StringVar(&cfg.MetricsListen, "metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics (HOST:PORT; empty = off)")
	fs.Var(&o.memLimit, "memory-limit", "soft memory limit for the process in `BYTES`, e.g. 1400MiB (0 = Go default / GOMEMLIMIT); keeps 1M sessions × 1 KiB under 1.5 GiB RSS even under rewrite churn, at some GC cost")
}

// config fills the server's Config from the flags; the persistence fields
// only when given, so that Validate can say they need --data-dir.
func (o *serveOptions) config(fs *pflag.FlagSet) (stateserver.Config, error) {
	cfg := o.cfg
	cfg.AllowCIDRs = o.cidrs
	cfg.Version = string(o.versionHeader)
	cfg.MaxItemBytes = int64(o.itemSize)
	cfg.MaxHeaderBytes = int(o.headerSize)
	if cfg.DataDir != "" || fs.Changed("fsync") {
		cfg.Fsync = stateserver.FsyncPolicy(o.fsync)
	}
	if cfg.DataDir != "" || fs.Changed("fsync-interval") {
		cfg.FsyncInterval = o.fsyncInterval
	}
	if cfg.DataDir != "" || fs.Changed("snapshot-after") {
		cfg.SnapshotLogBytes = int64(o.snapshot)
	}
	return cfg, fieldErrors(cfg.Validate(), serveFields)
}

// serveFields maps stateserver.Config fields to the flags that set them.
var serveFields = map[string]string{
	"MetricsListen": "metrics", "Listen": "listen", "AllowRemote": "allow-remote", "AllowCIDRs": "allow-cidr",
	"OmitVersion": "no-version-header", "Version": "version-header", "MaxItemBytes": "max-item-size",
	"MaxHeaderBytes": "max-header-size", "MaxConns": "max-conns", "IdleTimeout": "idle-timeout",
	"RequestTimeout": "request-timeout", "WriteTimeout": "write-timeout", "FsyncInterval": "fsync-interval",
	"SnapshotLogBytes": "snapshot-after", "DataDir": "data-dir", "Fsync": "fsync", "Minute": "minute",
}

// run runs the reference state server until ctx ends (SIGINT/SIGTERM).
func (o *serveOptions) run(ctx context.Context, c *cobra.Command, _ []string) int {
	stdout, stderr := c.OutOrStdout(), c.ErrOrStderr()
	cfg, err := o.config(c.Flags())
	if err != nil {
		return usageError(stderr, "serve", "%v", err)
	}
	srv, err := stateserver.New(cfg)
	if err != nil { // the config is valid: recovery failed (a corrupt file, the directory in use)
		fmt.Fprintf(stderr, "aspstate serve: %v\n", err)
		return 1
	}
	if cfg.DataDir != "" {
		rec := srv.Recovery()
		fmt.Fprintf(stdout, "recovered %d sessions from %s in %v (%d expired while down, %d log records, %d torn bytes cut)\n",
			rec.Sessions, cfg.DataDir, rec.Duration.Round(time.Millisecond), rec.Expired, rec.LogRecords, rec.TornBytes)
	}
	warnExposure(stderr, cfg)
	stateserver.ApplyMemoryTuning(int64(o.memLimit))
	if err := srv.Start(); err != nil {
		srv.Close()
		fmt.Fprintf(stderr, "aspstate serve: %v\n", err)
		if errors.Is(err, syscall.EADDRINUSE) {
			fmt.Fprintln(stderr, "(another server holds that port; choose another with --listen)")
		}
		return 1
	}
	fmt.Fprintf(stdout, "listening on %s\n", srv.Addr())
	if m := srv.MetricsAddr(); m != "" {
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", m)
	}
	return serveUntilDone(ctx, srv, stderr)
}

// serveUntilDone waits for ctx to end, then stops srv gracefully.
func serveUntilDone(ctx context.Context, srv *stateserver.Server, stderr io.Writer) int {
	persistFailed := watchPersistence(ctx, srv, stderr)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), serveShutdownGrace)
	defer cancel()
	code := 0
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(stderr, "aspstate serve: in-flight requests did not finish within %v; connections closed\n", serveShutdownGrace)
		code = 1
	}
	if err := srv.PersistErr(); err != nil {
		if !persistFailed() {
			fmt.Fprintf(stderr, "aspstate serve: persistence failed: %v\n", err)
		}
		code = 1
	}
	return code
}

// watchPersistence reports on stderr, once, when the log of a persistent
// server fails while it runs; the returned func tells whether it did.
func watchPersistence(ctx context.Context, srv *stateserver.Server, stderr io.Writer) func() bool {
	var reported atomic.Bool
	if srv.Config().DataDir == "" {
		return reported.Load
	}
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if err := srv.PersistErr(); err != nil {
					reported.Store(true)
					how := "serving from memory only; sessions written from now on will not survive a restart"
					if srv.Config().Fsync == stateserver.FsyncAlways {
						how = "with --fsync always, requests that change sessions are no longer answered"
					}
					fmt.Fprintf(stderr, "aspstate serve: persistence failed: %v (%s)\n", err, how)
					return
				}
			}
		}
	}()
	return reported.Load
}

// warnExposure warns loudly when the server listens beyond loopback without
// an allow-list: the protocol has no authentication, and a crafted session
// body is a known remote-code-execution vector for ASP.NET (PROTOCOL.md S3).
func warnExposure(w io.Writer, cfg stateserver.Config) {
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil || len(cfg.AllowCIDRs) > 0 {
		return
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() || host == "localhost" {
		return
	}
	if cfg.AllowRemote {
		fmt.Fprintf(w, "WARNING: aspstate serve listens on %s and accepts ANY remote peer (--allow-remote without --allow-cidr).\n"+
			"WARNING: the state protocol has no authentication: anyone who can connect can read and replace every session.\n"+
			"WARNING: restrict peers with --allow-cidr, or listen on 127.0.0.1.\n", cfg.Listen)
		return
	}
	fmt.Fprintf(w, "WARNING: aspstate serve listens on %s, a non-loopback address, without an allow-list.\n"+
		"WARNING: remote peers will be refused (no --allow-remote); add --allow-remote --allow-cidr CIDR to admit them.\n", cfg.Listen)
}

// listFlag is a repeatable flag that also splits comma-separated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

// Type names the flag's values in the help.
func (l *listFlag) Type() string { return "cidr" }

func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err2 := netip.ParseAddr(p); err2 != nil {
				return fmt.Errorf("%q is not a CIDR prefix or IP address (use e.g. 10.0.0.0/8)", p)
			}
		}
		*l = append(*l, p)
	}
	return nil
}

// sizeFlag is a byte count with an optional binary suffix (KiB, MiB, GiB;
// also K, M, G and KB, MB, GB meaning the same powers of 1024).
type sizeFlag int64

func (s *sizeFlag) String() string { return strconv.FormatInt(int64(*s), 10) }

// Type names the flag's values in the help.
func (s *sizeFlag) Type() string { return "bytes" }

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

func parseSize(v string) (int64, error) {
	t := strings.TrimSpace(v)
	mult := int64(1)
	upper := strings.ToUpper(t)
	for _, suf := range []struct {
		s string
		m int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(upper, suf.s) {
			t, mult = strings.TrimSpace(t[:len(t)-len(suf.s)]), suf.m
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size in bytes (use e.g. 1048576, 64KiB or 20MiB)", v)
	}
	return n * mult, nil
}

// versionHeaderFlag is a string flag that must not be empty.
type versionHeaderFlag string

func (t *versionHeaderFlag) String() string { return string(*t) }

// Type names the flag's values in the help.
func (t *versionHeaderFlag) Type() string { return "string" }

func (t *versionHeaderFlag) Set(v string) error {
	if v == "" {
		return errors.New("empty; give a value (to send no header, use --no-version-header)")
	}
	*t = versionHeaderFlag(v)
	return nil
}
