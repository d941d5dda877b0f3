package loadgen

import (
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aspstate/aspstate/scenarios"
)

func TestParseSourceAddrs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"127.0.0.2-127.0.0.4", []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}},
		{"127.0.0.0/30", []string{"127.0.0.1", "127.0.0.2"}},
		{"127.0.0.8/31", []string{"127.0.0.8", "127.0.0.9"}},
		{"127.0.0.5", []string{"127.0.0.5"}},
		{"127.0.0.5, 127.0.0.7-127.0.0.8", []string{"127.0.0.5", "127.0.0.7", "127.0.0.8"}},
		{"::1", []string{"::1"}},
		{"fd00::1-fd00::2", []string{"fd00::1", "fd00::2"}},
	} {
		got, err := ParseSourceAddrs(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		var s []string
		for _, a := range got {
			s = append(s, a.String())
		}
		if !slices.Equal(s, c.want) {
			t.Errorf("%q: got %v, want %v", c.in, s, c.want)
		}
	}
	if got, err := ParseSourceAddrs("10.0.0.0/8"); err != nil || len(got) != MaxSourceAddrs || got[0].String() != "10.0.0.1" {
		t.Errorf("10.0.0.0/8: %d addresses from %v, %v; want the first %d hosts", len(got), got[:1], err, MaxSourceAddrs)
	}
	for _, bad := range []string{"", "127.0.0.9-127.0.0.2", "127.0.0.1-::1", "x", "127.0.0.0/33", "127.0.0.1,,127.0.0.2"} {
		if _, err := ParseSourceAddrs(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestSourceAddrsValidate(t *testing.T) {
	t.Parallel()
	sc, err := scenarios.Lookup("ecommerce-peak") // four web servers
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := ParseSourceAddrs("127.0.0.2-127.0.0.4")
	cfg := Config{Scenario: sc, Targets: addrTargets("127.0.0.1:1"), SourceAddrs: addrs}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "3 given for the 4 web servers") {
		t.Fatalf("3 addresses for 4 web servers: %v", err)
	}
	cfg.SourceAddrs = append(addrs, addrs[0])
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "appears twice") {
		t.Fatalf("a repeated address: %v", err)
	}
	cfg.SourceAddrs, _ = ParseSourceAddrs("127.0.0.2-127.0.0.5")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// Shard 2/2 runs the farm's web servers 2 and 4 (0-based 1 and 3).
	cfg.Shard = Shard{Index: 2, Count: 2}
	if a, b := cfg.webSource(0), cfg.webSource(1); a.String() != "127.0.0.3" || b.String() != "127.0.0.5" {
		t.Fatalf("shard 2/2: web servers from %s and %s, want 127.0.0.3 and 127.0.0.5", a, b)
	}
}

// peerRecorder forwards connections to upstream and records the address
// each one came from.
type peerRecorder struct {
	ln    net.Listener
	mu    sync.Mutex
	peers map[netip.Addr]int
}

func newPeerRecorder(t *testing.T, upstream string) *peerRecorder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &peerRecorder{ln: ln, peers: map[netip.Addr]int{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ap := netip.MustParseAddrPort(c.RemoteAddr().String())
			p.mu.Lock()
			p.peers[ap.Addr()]++
			p.mu.Unlock()
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *peerRecorder) addrs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s []string
	for a := range p.peers {
		s = append(s, a.String())
	}
	slices.Sort(s)
	return s
}

func TestSourceAddrsBindEachWebServer(t *testing.T) {
	sc, err := scenarios.Lookup("small-intranet") // two web servers, sticky
	if err != nil {
		t.Fatal(err)
	}
	tg, _ := startServer(t, time.Minute)
	for _, c := range []struct {
		flag string
		want []string
	}{
		{"127.0.0.2-127.0.0.9", []string{"127.0.0.2", "127.0.0.3"}},
		{"", []string{"127.0.0.1"}}, // without the flag nothing changes
	} {
		rec := newPeerRecorder(t, tg.Addr())
		cfg := Config{Scenario: sc, Targets: addrTargets(rec.ln.Addr().String()), Duration: 1500 * time.Millisecond, Drain: 3 * time.Second}
		if c.flag != "" {
			cfg.SourceAddrs, _ = ParseSourceAddrs(c.flag)
		}
		run := runFor(t, cfg)
		if got := rec.addrs(); !slices.Equal(got, c.want) {
			t.Errorf("--source-addrs %q: connections came from %v, want %v", c.flag, got, c.want)
		}
		if run.Rate.Completed == 0 || run.Correctness.Total != 0 {
			t.Errorf("--source-addrs %q: %d pages, %d violations", c.flag, run.Rate.Completed, run.Correctness.Total)
		}
		if c.flag != "" && run.Config.Options["source_addrs"] != "127.0.0.2,127.0.0.3" {
			t.Errorf("result options: source_addrs %q", run.Config.Options["source_addrs"])
		}
	}
}
