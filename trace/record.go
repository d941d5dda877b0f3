package trace

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
)

// Recorder is a recording proxy for users who cannot capture on the state
// server's host: it accepts the web servers' connections, forwards every
// byte unchanged to the upstream state server, and writes both directions
// to a pcapng file as ordinary TCP packets (synthesized Ethernet, IP and TCP
// headers with consistent sequence numbers), with each client's real
// address and port and the time each chunk reached the proxy. Read (and
// tcpdump, Wireshark) read the file like any capture.
type Recorder struct {
	ln       net.Listener
	upstream string
	f        *os.File

	mu     sync.Mutex // guards the writer, the file and every tcpConn
	ng     *pcapgo.NgWriter
	pw     *packetWriter
	err    error // the first write error; recording stops, forwarding goes on
	active map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// NewRecorder listens on listen and creates out; Serve then proxies to
// upstream (HOST:PORT).
func NewRecorder(listen, upstream, out string) (*Recorder, error) {
	if _, _, err := net.SplitHostPort(upstream); err != nil {
		return nil, fmt.Errorf("upstream %q: want HOST:PORT", upstream)
	}
	f, err := os.Create(out)
	if err != nil {
		return nil, err
	}
	ng, err := newNgWriter(f, "aspstate record (proxy to "+upstream+")")
	if err == nil {
		err = ng.Flush()
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", out, err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		f.Close()
		return nil, err
	}
	pw := newPacketWriter(ng)
	pw.mss = 32 << 10
	return &Recorder{ln: ln, upstream: upstream, f: f, ng: ng, pw: pw, active: map[net.Conn]struct{}{}}, nil
}

// Addr is the address the proxy listens on.
func (r *Recorder) Addr() net.Addr { return r.ln.Addr() }

// Serve proxies connections until ctx is done, then closes every
// connection, flushes and closes the file. It returns the first error
// writing the file (forwarding never stops because of one).
func (r *Recorder) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { r.ln.Close() })
	defer stop()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
			}
			break
		}
		r.wg.Add(1)
		go r.proxy(ctx, c)
	}
	r.mu.Lock()
	for c := range r.active {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.ng.Flush(); err != nil && r.err == nil {
		r.err = err
	}
	if err := r.f.Close(); err != nil && r.err == nil {
		r.err = err
	}
	return r.err
}

// Close stops the listener (Serve then returns); for tests and callers
// without a context.
func (r *Recorder) Close() error { return r.ln.Close() }

func (r *Recorder) track(c net.Conn, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.active[c] = struct{}{}
	} else {
		delete(r.active, c)
	}
}

// write records under the lock; a failed write stops the recording.
func (r *Recorder) write(f func() error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return
	}
	if err := f(); err != nil {
		r.err = err
		return
	}
	r.err = r.ng.Flush()
}

// proxy forwards one client connection to the upstream and records it.
func (r *Recorder) proxy(ctx context.Context, client net.Conn) {
	defer r.wg.Done()
	defer client.Close()
	r.track(client, true)
	defer r.track(client, false)
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", r.upstream)
	if err != nil {
		return // the client sees its connection closed, as with a down server
	}
	defer up.Close()
	r.track(up, true)
	defer r.track(up, false)
	tc := newTCPConn(addrPortOf(client.RemoteAddr()), addrPortOf(up.RemoteAddr()))
	r.write(func() error { return r.pw.handshake(tc, time.Now()) })

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.pump(tc, true, client, up) }()
	go func() { defer wg.Done(); r.pump(tc, false, up, client) }()
	wg.Wait()
}

// pump copies one direction, recording each chunk before it is forwarded
// (so that a reply can never be written to the file before its request).
func (r *Recorder) pump(tc *tcpConn, fromClient bool, src, dst net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			r.write(func() error { return r.pw.send(tc, fromClient, time.Now(), chunk) })
			if _, werr := dst.Write(chunk); werr != nil {
				src.Close()
				break
			}
		}
		if err != nil {
			break
		}
	}
	r.write(func() error { return r.pw.fin(tc, fromClient, time.Now()) })
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
}

// addrPortOf returns a TCP address as a netip.AddrPort.
func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	if t, ok := a.(*net.TCPAddr); ok {
		ap = t.AddrPort()
	} else {
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
