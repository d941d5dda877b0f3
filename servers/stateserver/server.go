// Package stateserver is the aspstate reference ASP.NET State Server: an
// in-memory session store that speaks [MS-ASP] over TCP exactly as
// Microsoft's aspnet_state service does (PROTOCOL.md c.1–c.5 and d), with
// locks, sliding expiry on a scalable time base, listener policy
// (loopback/remote/CIDR), limits, counters like the Windows service and a
// Prometheus endpoint.
//
// Design for throughput on few cores: one goroutine per connection with a
// reused protocol.Reader, Request and reply buffer; one Write per reply
// (replies to pipelined requests are coalesced); a store split into 256
// mutex-guarded shards; expiry by 20-protocol-second buckets so no request
// and no scavenger pass ever walks all sessions.
//
// Persistence (Config.DataDir; off by default, as Microsoft's service loses
// every session on restart): each mutation — PUT, acquire, release, DELETE,
// and the GET that consumes the uninitialized bit — appends a CRC-framed
// record of the item's resulting state (body, timeout, absolute wall-clock
// expiry, lock, lock date, cookie counter, uninitialized bit) to a log while
// the shard lock is held; a flusher goroutine writes each batch with one
// write and, under FsyncAlways, one fsync shared by every waiting writer
// (group commit), and only then are their replies sent. Snapshots are
// taken without stopping the server (log rotated first, records replay
// idempotently) once the log outgrows SnapshotLogBytes and the last
// snapshot. New recovers: snapshot, then log segments, cutting a torn tail
// after a crash, dropping items that expired while the server was down.
//
// What a restart does to sliding windows: expiry slides on every lookup
// but only a slide that moves an item to another 20-protocol-second expiry
// bucket is logged (a small touch record no reply waits for), so after a
// restart an item expires at most one bucket earlier than it would have.
// Expiry and lock dates are wall-clock instants: downtime counts against
// the window, and a wall-clock step while down shifts them. Recovered items
// count in SessionsActive; the other session counters restart at zero, as
// the service's performance counters do.
//
// Without DataDir none of this is on the request path beyond a nil check:
// the request path allocates nothing and an item costs what it did.
//
// Connection defences: IdleTimeout between requests, RequestTimeout from a
// request's first byte to its last (slowloris), WriteTimeout per reply (a
// peer that never reads), MaxConns (closed at once, counted).
package stateserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aspstate/aspstate/protocol"
)

// Server is a running (or ready to run) reference state server. Its methods
// are safe for concurrent use.
type Server struct {
	cfg      Config
	store    *store
	base     time.Time // server clock origin (monotonic); wall time of LockDate
	prefixes []netip.Prefix
	limits   protocol.Limits
	verLine  []byte // "X-AspNet-Version: …\r\n", nil with OmitVersion

	paused atomic.Pointer[chan struct{}] // non-nil while paused; closed by Resume
	pauseM sync.Mutex

	mu        sync.Mutex
	ln        net.Listener
	addr      string
	started   bool // Serve has begun (one listener per Server)
	shutting  atomic.Bool
	closed    chan struct{} // closed by Close and by a finished Shutdown
	closeOnce sync.Once
	conns     map[*conn]struct{}
	connWG    sync.WaitGroup
	bgWG      sync.WaitGroup
	metrics   *http.Server
	metricsLn net.Listener
	retired   counts // request counts of closed connections

	connsActive       atomic.Int64
	connsTotal        atomic.Int64
	connsRefused      atomic.Int64
	connsIdleClosed   atomic.Int64 // closed by IdleTimeout
	connsSlowClosed   atomic.Int64 // closed by RequestTimeout (a request began but did not finish)
	connsWriteTimeout atomic.Int64 // closed by WriteTimeout
	held              atomic.Int64 // requests read and held by Pause

	wal      *wal // nil without DataDir
	walClose sync.Once
}

// New validates cfg and returns a Server that has not started yet. With
// DataDir it first recovers the sessions kept there (see RecoveryStats) and
// holds the directory until Close or Shutdown: call one of them even if the
// server never starts.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:    cfg,
		store:  newStore(cfg.Minute),
		base:   time.Now(),
		closed: make(chan struct{}),
		conns:  make(map[*conn]struct{}),
		limits: protocol.Limits{MaxBody: cfg.MaxItemBytes, MaxHeaderBytes: cfg.MaxHeaderBytes},
	}
	for _, c := range cfg.AllowCIDRs {
		p, _ := parseCIDR(c) // checked by Validate
		s.prefixes = append(s.prefixes, p)
	}
	if !cfg.OmitVersion {
		s.verLine = protocol.AppendHeader(nil, protocol.HeaderVersion, cfg.Version)
	}
	if cfg.DataDir != "" {
		w, err := openWAL(cfg, s.store, s.base, s.now)
		if err != nil {
			return nil, err
		}
		s.wal = w
		s.store.wal = w // only now: recovery itself is not logged
	}
	return s, nil
}

// Recovery reports what New recovered from DataDir (zero without one).
func (s *Server) Recovery() RecoveryStats {
	if s.wal == nil {
		return RecoveryStats{}
	}
	return s.wal.rec
}

// PersistErr returns the error that stopped the log, nil while it works or
// without DataDir. Under FsyncAlways the server then answers no request
// that depends on a mutation (the connection is closed instead); under the
// other policies it goes on serving from memory. After Close or Shutdown it
// also reports a failure to write or fsync the rest of the log.
func (s *Server) PersistErr() error {
	if s.wal == nil {
		return nil
	}
	if err := s.wal.failed(); err != errWALClosed {
		return err
	}
	return nil
}

// closeWAL writes and fsyncs what is left of the log and releases the data
// directory; called once no connection can append any more.
func (s *Server) closeWAL() {
	if s.wal != nil {
		s.walClose.Do(s.wal.close)
	}
}

// Config returns the configuration in effect (defaults filled in).
func (s *Server) Config() Config { return s.cfg }

// now reads the server clock: nanoseconds since New, monotonic.
func (s *Server) now() int64 { return int64(time.Since(s.base)) }

// ErrServerClosed is returned by Start and Serve on a Server that was shut
// down or closed, and by a second Start or Serve.
var ErrServerClosed = errors.New("stateserver: server closed or already serving")

// Start binds cfg.Listen (and MetricsListen) and serves in the background.
// Errors in binding are returned; Addr is valid once Start returns nil.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("stateserver: listen on %s: %w", s.cfg.Listen, err)
	}
	if err := s.begin(ln); err != nil {
		_ = ln.Close() // never served; the begin error is the one to report
		return err
	}
	s.bgWG.Add(1)
	go func() {
		defer s.bgWG.Done()
		s.acceptLoop(ln)
	}()
	return nil
}

// Serve accepts connections on ln until Shutdown or Close, then returns nil.
// It also starts the metrics endpoint when MetricsListen is set. ln is
// closed when Serve returns.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.begin(ln); err != nil {
		_ = ln.Close() // never served; the begin error is the one to report
		return err
	}
	return s.acceptLoop(ln)
}

// begin records ln, binds the metrics endpoint and starts the scavenger.
func (s *Server) begin(ln net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.shutting.Load() {
		return ErrServerClosed
	}
	if s.cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", s.cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("stateserver: metrics listen on %s: %w", s.cfg.MetricsListen, err)
		}
		s.metricsLn = mln
		s.metrics = &http.Server{Handler: s.metricsHandler(), ReadHeaderTimeout: 10 * time.Second}
		s.bgWG.Add(1)
		go func() {
			defer s.bgWG.Done()
			_ = s.metrics.Serve(policyListener{mln, s}) // http.ErrServerClosed at Close; metrics are not on the durability path
		}()
	}
	s.started = true
	s.ln = ln
	s.addr = ln.Addr().String()
	s.bgWG.Add(1)
	go func() {
		defer s.bgWG.Done()
		s.scavenger()
	}()
	return nil
}

// Addr returns the bound address once Start or Serve began ("" before).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// MetricsAddr returns the bound metrics address, or "" without one.
func (s *Server) MetricsAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.metricsLn == nil {
		return ""
	}
	return s.metricsLn.Addr().String()
}

// acceptLoop accepts until the listener is closed.
func (s *Server) acceptLoop(ln net.Listener) error {
	defer ln.Close() // usually closed already by Shutdown or Close
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors and the like: wait and retry, as net/http does.
				if backoff == 0 {
					backoff = 5 * time.Millisecond
				} else if backoff *= 2; backoff > time.Second {
					backoff = time.Second
				}
				select {
				case <-time.After(backoff):
				case <-s.closed:
					return nil
				}
				continue
			}
			return fmt.Errorf("stateserver: accept: %w", err)
		}
		backoff = 0
		if !s.allowed(nc.RemoteAddr()) {
			s.connsRefused.Add(1)
			_ = nc.Close() // refused before reading anything: nothing to lose
			continue
		}
		if max := s.cfg.MaxConns; max > 0 && s.connsActive.Load() >= int64(max) {
			s.connsRefused.Add(1)
			_ = nc.Close() // refused before reading anything: nothing to lose
			continue
		}
		c := s.newConn(nc)
		if c == nil { // shutting down
			_ = nc.Close() // nothing was read from it
			continue
		}
		go c.serve()
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// allowed applies the listener policy to a peer: loopback always; others
// only with AllowRemote, and then only inside AllowCIDRs when given. Peers
// without an IP address (pipes, Unix sockets) are local.
func (s *Server) allowed(a net.Addr) bool {
	var ip netip.Addr
	switch t := a.(type) {
	case *net.TCPAddr:
		ip = t.AddrPort().Addr()
	case *net.UDPAddr:
		ip = t.AddrPort().Addr()
	default:
		return true
	}
	return allowPeer(ip, s.cfg.AllowRemote, s.prefixes)
}

// policyListener applies the peer policy to the metrics endpoint too.
type policyListener struct {
	net.Listener
	s *Server
}

// Accept returns the next allowed connection, closing refused ones.
func (l policyListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.s.allowed(c.RemoteAddr()) {
			return c, err
		}
		_ = c.Close() // refused before reading anything
	}
}

// allowPeer is the listener policy on one peer address.
func allowPeer(ip netip.Addr, allowRemote bool, prefixes []netip.Prefix) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return true
	}
	if !allowRemote || !ip.IsValid() {
		return false
	}
	if len(prefixes) == 0 {
		return true
	}
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Shutdown stops accepting, lets requests already read finish and be
// answered, and closes connections as they go idle (a connection in the
// middle of sending a request is closed too). If ctx ends first, the
// remaining connections are closed at once and ctx's error is returned.
// Requests held by Pause stay held: Resume them or let ctx end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutting.Store(true)
	s.mu.Lock()
	if s.ln != nil {
		_ = s.ln.Close() // ends acceptLoop; nothing was written through it
	}
	if s.metrics != nil {
		_ = s.metrics.Close() // metrics are not on the durability path
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	// A connection blocked reading its next request is woken by a past read
	// deadline; it may re-arm its idle deadline between our poke and its
	// check of s.shutting, so poke until every connection is gone.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.pokeConns()
		select {
		case <-done:
			s.finish()
			return nil
		case <-ctx.Done():
			_ = s.Close() // always nil; a log failure shows in PersistErr
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (s *Server) pokeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := time.Unix(1, 0)
	for c := range s.conns {
		_ = c.nc.SetReadDeadline(past) // a closed connection is leaving anyway
	}
}

// finish stops the background goroutines and waits for them.
func (s *Server) finish() {
	s.closeOnce.Do(func() { close(s.closed) })
	s.bgWG.Wait()
	s.closeWAL()
}

// Close closes the listeners and every connection at once. Requests held
// by Pause are dropped unanswered.
func (s *Server) Close() error {
	s.shutting.Store(true)
	s.closeOnce.Do(func() { close(s.closed) })
	s.mu.Lock()
	if s.ln != nil {
		_ = s.ln.Close() // ends acceptLoop; nothing was written through it
	}
	if s.metrics != nil {
		_ = s.metrics.Close() // metrics are not on the durability path
	}
	for c := range s.conns {
		_ = c.nc.Close() // dropping unanswered requests is what Close does
	}
	s.mu.Unlock()
	s.connWG.Wait()
	s.bgWG.Wait()
	s.closeWAL()
	return nil
}

// Pause holds every request unanswered until Resume: requests are still
// read, connections stay open, no reply is written (fault injection and
// coordinated-omission tests).
func (s *Server) Pause() {
	s.pauseM.Lock()
	defer s.pauseM.Unlock()
	if s.paused.Load() == nil {
		ch := make(chan struct{})
		s.paused.Store(&ch)
	}
}

// Resume answers held requests and lets new ones through.
func (s *Server) Resume() {
	s.pauseM.Lock()
	defer s.pauseM.Unlock()
	if p := s.paused.Swap(nil); p != nil {
		close(*p)
	}
}

// scavenger removes expired items bucket by bucket until the server closes.
func (s *Server) scavenger() {
	every := time.Duration(s.store.width)
	if every < 5*time.Millisecond {
		every = 5 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
			s.store.scavenge(s.now())
		}
	}
}
