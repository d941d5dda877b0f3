package stateserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/aspstate/aspstate/protocol"
)

// DefaultListen is the address the server binds when Config.Listen is empty:
// loopback only, like the Windows service with AllowRemoteConnection=0,
// on the service's port (127.0.0.1:42424).
var DefaultListen = net.JoinHostPort("127.0.0.1", strconv.Itoa(protocol.DefaultPort))

// Bounds checked by Validate.
const (
	// MaxItemBytesLimit is the largest MaxItemBytes: the ASP.NET client holds
	// a body in one Int32-sized buffer.
	MaxItemBytesLimit = 1<<31 - 1
	// MinMinute and MaxMinute bound the time scale. The upper bound keeps
	// MaxTimeout protocol minutes within an int64 of nanoseconds.
	MinMinute = time.Millisecond
	MaxMinute = time.Hour
)

// FsyncPolicy says when the append-only log of a persistent server (Config.DataDir)
// is forced to disk.
type FsyncPolicy string

// Fsync policies.
const (
	// FsyncAlways sends a reply only after the log records it depends on are
	// on disk (fsync), so every acknowledged write survives a crash or power
	// loss. Concurrent writers share one fsync (group commit).
	FsyncAlways FsyncPolicy = "always"
	// FsyncInterval writes records to the operating system at once and
	// fsyncs every FsyncInterval: a process crash (kill -9) loses nothing
	// already written; a power loss can lose the last interval.
	FsyncInterval FsyncPolicy = "interval"
	// FsyncNever leaves flushing to the operating system (a process crash
	// loses at most the records not yet handed to it).
	FsyncNever FsyncPolicy = "never"
)

// Persistence and connection defaults.
const (
	DefaultFsyncInterval    = 200 * time.Millisecond
	DefaultSnapshotLogBytes = 64 << 20
	// MinSnapshotLogBytes is the smallest SnapshotLogBytes Validate accepts.
	MinSnapshotLogBytes = 4 << 10
	DefaultIdleTimeout  = 2 * time.Minute
	// DefaultRequestTimeout bounds how long one request may take to arrive
	// once its first byte has (a slowloris client is closed after it).
	DefaultRequestTimeout = 30 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
)

// Config configures a Server. Zero fields take the defaults of DefaultConfig
// (Listen, Version, MaxItemBytes, MaxHeaderBytes, Minute, and with DataDir:
// Fsync, FsyncInterval, SnapshotLogBytes); zero MaxConns, IdleTimeout,
// RequestTimeout, WriteTimeout, MetricsListen and DataDir mean
// "no limit" / "off". DefaultConfig sets the three timeouts.
type Config struct {
	Listen         string        // default "127.0.0.1:42424"
	AllowRemote    bool          // accept non-loopback peers (like AllowRemoteConnection=1)
	AllowCIDRs     []string      // with AllowRemote: only these peers (empty = any); loopback is always accepted
	Version        string        // X-AspNet-Version value, default protocol.DefaultVersion "4.0.30319"
	OmitVersion    bool          // send no X-AspNet-Version (reproduces KB 2836759)
	MaxItemBytes   int64         // largest body accepted
	MaxHeaderBytes int           // largest request head
	MaxConns       int           // concurrent connections; past it new ones are closed at once
	IdleTimeout    time.Duration // close a connection idle this long (real time)
	Minute         time.Duration // how long one protocol minute lasts (time scale), default time.Minute
	MetricsListen  string        // "" = no metrics endpoint; else Prometheus text at http://ADDR/metrics

	// RequestTimeout closes a connection whose request (head and body) has
	// not fully arrived this long after its first byte (real time): the
	// defence against slowloris clients, which IdleTimeout alone misses.
	RequestTimeout time.Duration
	// WriteTimeout closes a connection whose reply cannot be written within
	// this long (a client that never reads).
	WriteTimeout time.Duration

	// DataDir, when set, makes sessions survive restarts and crashes: a
	// snapshot plus an append-only log of mutations in this directory
	// (created if missing; one server per directory). New recovers from it.
	DataDir string
	// Fsync is the log's fsync policy (default FsyncInterval).
	Fsync FsyncPolicy
	// FsyncInterval is the fsync period of FsyncInterval (default 200ms).
	FsyncInterval time.Duration
	// SnapshotLogBytes starts a snapshot (and a fresh log) once the log has
	// grown by this much and by at least the size of the last snapshot
	// (default 64 MiB).
	SnapshotLogBytes int64

	fs walFS // the log's file system; nil = the operating system's (tests inject failures)
}

// DefaultConfig returns the configuration of a stock server: loopback on port
// 42424, .NET 4 version header, 20 MiB items, real-time minutes, idle
// connections closed after 2 minutes (the ASP.NET client drops pooled
// sockets after 5–10 s), 30 s to receive a request once it has begun and to
// write a reply; no persistence.
func DefaultConfig() Config {
	return Config{
		Listen:         DefaultListen,
		Version:        protocol.DefaultVersion,
		MaxItemBytes:   protocol.DefaultMaxBody,
		MaxHeaderBytes: protocol.DefaultMaxHeaderBytes,
		Minute:         time.Minute,
		IdleTimeout:    DefaultIdleTimeout,
		RequestTimeout: DefaultRequestTimeout,
		WriteTimeout:   DefaultWriteTimeout,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	if c.Version == "" {
		c.Version = d.Version
	}
	if c.MaxItemBytes == 0 {
		c.MaxItemBytes = d.MaxItemBytes
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if c.Minute == 0 {
		c.Minute = d.Minute
	}
	if c.DataDir != "" {
		if c.Fsync == "" {
			c.Fsync = FsyncInterval
		}
		if c.FsyncInterval == 0 {
			c.FsyncInterval = DefaultFsyncInterval
		}
		if c.SnapshotLogBytes == 0 {
			c.SnapshotLogBytes = DefaultSnapshotLogBytes
		}
	}
	return c
}

// Validate reports every problem with c at once (errors.Join). Zero fields
// that take defaults are not problems.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := checkListen(c.Listen); err != nil {
		bad("Listen %q %v; use e.g. 127.0.0.1:42424", c.Listen, err)
	}
	if err := checkListen(c.MetricsListen); err != nil {
		bad("MetricsListen %q %v; use e.g. 127.0.0.1:9424", c.MetricsListen, err)
	}
	if len(c.AllowCIDRs) > 0 && !c.AllowRemote {
		bad("AllowCIDRs is set but AllowRemote is false; set AllowRemote to accept those peers")
	}
	for _, s := range c.AllowCIDRs {
		if _, err := parseCIDR(s); err != nil {
			bad("AllowCIDRs entry %q is not a CIDR prefix or IP address; use e.g. 10.0.0.0/8", s)
		}
	}
	if strings.ContainsAny(c.Version, "\r\n") {
		bad("Version %q contains a line break; use e.g. %s", c.Version, protocol.DefaultVersion)
	}
	if c.MaxItemBytes < 0 || c.MaxItemBytes > MaxItemBytesLimit {
		bad("MaxItemBytes %d is out of range; use 1..%d (0 = default %d)", c.MaxItemBytes, MaxItemBytesLimit, protocol.DefaultMaxBody)
	}
	if c.MaxHeaderBytes < 0 {
		bad("MaxHeaderBytes %d is negative; use a positive size (0 = default %d)", c.MaxHeaderBytes, protocol.DefaultMaxHeaderBytes)
	} else if c.MaxHeaderBytes > 0 && c.MaxHeaderBytes < 64 {
		bad("MaxHeaderBytes %d is too small for any request; use at least 64", c.MaxHeaderBytes)
	}
	if c.MaxConns < 0 {
		bad("MaxConns %d is negative; use 0 for no limit or a positive count", c.MaxConns)
	}
	if c.IdleTimeout < 0 {
		bad("IdleTimeout %v is negative; use 0 for none or a positive duration", c.IdleTimeout)
	}
	if c.RequestTimeout < 0 {
		bad("RequestTimeout %v is negative; use 0 for none or a positive duration such as 30s", c.RequestTimeout)
	}
	if c.WriteTimeout < 0 {
		bad("WriteTimeout %v is negative; use 0 for none or a positive duration such as 30s", c.WriteTimeout)
	}
	switch c.Fsync {
	case "", FsyncAlways, FsyncInterval, FsyncNever:
	default:
		bad("Fsync %q is not a policy; use always, interval or never", string(c.Fsync))
	}
	if c.FsyncInterval < 0 {
		bad("FsyncInterval %v is negative; use a positive duration such as 200ms (0 = default)", c.FsyncInterval)
	}
	if c.SnapshotLogBytes < 0 || c.SnapshotLogBytes > 0 && c.SnapshotLogBytes < MinSnapshotLogBytes {
		bad("SnapshotLogBytes %d is out of range; use at least %d (0 = default %d)", c.SnapshotLogBytes, MinSnapshotLogBytes, DefaultSnapshotLogBytes)
	}
	if c.DataDir == "" {
		for _, f := range []struct {
			name string
			set  bool
		}{{"Fsync", c.Fsync != ""}, {"FsyncInterval", c.FsyncInterval != 0}, {"SnapshotLogBytes", c.SnapshotLogBytes != 0}} {
			if f.set {
				bad("%s needs DataDir; set DataDir to make sessions persistent", f.name)
			}
		}
	}
	if c.Minute != 0 && (c.Minute < MinMinute || c.Minute > MaxMinute) {
		bad("Minute %v is out of range; use %v..%v (0 = default 1m)", c.Minute, MinMinute, MaxMinute)
	}
	return errors.Join(errs...)
}

// checkListen checks a listen address: empty (the default or off), or
// HOST:PORT with a port from 0 to 65535 (0 picks a free one).
func checkListen(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("is not HOST:PORT (%v)", err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n > 65535 {
		return fmt.Errorf("has port %q, not a number from 0 to 65535", port)
	}
	return nil
}

// parseCIDR accepts "10.0.0.0/8" or a bare address ("10.1.2.3" = /32).
func parseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
