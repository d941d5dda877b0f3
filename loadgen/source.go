package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// MaxSourceAddrs is the most addresses a source-address list keeps (the
// most web servers a scenario may have); a longer range or prefix is cut.
const MaxSourceAddrs = 1000

// ParseSourceAddrs parses a list of local source addresses for the emulated
// web servers (Config.SourceAddrs): a range "127.0.0.2-127.0.0.9", a prefix
// "127.0.0.0/29" (its host addresses: without the network and broadcast
// addresses of an IPv4 prefix shorter than /31), a single address, or
// several of these separated by commas. At most MaxSourceAddrs are kept.
func ParseSourceAddrs(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	add := func(a netip.Addr) bool {
		if len(out) >= MaxSourceAddrs {
			return false
		}
		out = append(out, a)
		return true
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		switch {
		case part == "":
			return nil, fmt.Errorf("source addresses %q: empty item; want a range (127.0.0.2-127.0.0.9), a prefix (127.0.0.0/29) or an address", s)
		case strings.Contains(part, "/"):
			p, err := netip.ParsePrefix(part)
			if err != nil {
				return nil, fmt.Errorf("source addresses %q: %q is not a prefix such as 127.0.0.0/29", s, part)
			}
			p = p.Masked()
			a, last := p.Addr(), lastAddr(p)
			if p.Addr().Is4() && p.Bits() < 31 {
				a, last = a.Next(), last.Prev() // network and broadcast addresses
			}
			for ; a.IsValid() && a.Compare(last) <= 0 && add(a); a = a.Next() {
			}
		case strings.Contains(part, "-"):
			lo, hi, _ := strings.Cut(part, "-")
			a, err1 := netip.ParseAddr(strings.TrimSpace(lo))
			b, err2 := netip.ParseAddr(strings.TrimSpace(hi))
			if err1 != nil || err2 != nil || a.BitLen() != b.BitLen() || a.Compare(b) > 0 {
				return nil, fmt.Errorf("source addresses %q: %q is not a range FIRST-LAST of one family with FIRST <= LAST (e.g. 127.0.0.2-127.0.0.9)", s, part)
			}
			for ; a.IsValid() && a.Compare(b) <= 0 && add(a); a = a.Next() {
			}
		default:
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, fmt.Errorf("source addresses %q: %q is not an address, a range (127.0.0.2-127.0.0.9) or a prefix (127.0.0.0/29)", s, part)
			}
			add(a)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("source addresses %q: the prefix holds no host address; use a shorter prefix", s)
	}
	return out, nil
}

// lastAddr returns the highest address of the masked prefix p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// validateSourceAddrs checks c.SourceAddrs against the farm: one address
// per web server, none repeated, no Dial override beside them.
func (c *Config) validateSourceAddrs() []error {
	if len(c.SourceAddrs) == 0 {
		return nil
	}
	var errs []error
	seen := map[netip.Addr]bool{}
	for _, a := range c.SourceAddrs {
		if !a.IsValid() {
			errs = append(errs, fmt.Errorf("source address %v: not a valid address", a))
		} else if seen[a] {
			errs = append(errs, fmt.Errorf("source address %s appears twice: each web server needs its own", a))
		}
		seen[a] = true
	}
	if c.Scenario != nil && len(c.SourceAddrs) < c.Scenario.Farm.WebServers {
		errs = append(errs, fmt.Errorf("source addresses: %d given for the %d web servers of scenario %s; give at least %d (e.g. 127.0.0.2-127.0.0.%d)",
			len(c.SourceAddrs), c.Scenario.Farm.WebServers, c.Scenario.Name, c.Scenario.Farm.WebServers, 1+c.Scenario.Farm.WebServers))
	}
	if c.Dial != nil {
		errs = append(errs, fmt.Errorf("source addresses and a Dial override exclude each other"))
	}
	return errs
}

// webDial returns how web server w (this shard's numbering) dials: from its
// source address when Config.SourceAddrs is set, else c.Dial (nil: the
// pool's default). A shard's web server w is the farm's web server
// Index-1 + w×Count, and takes that server's address.
func (c *Config) webDial(w int) func(ctx context.Context, addr string) (net.Conn, error) {
	if len(c.SourceAddrs) == 0 {
		return c.Dial
	}
	g := c.farmWebServer(w)
	local := &net.TCPAddr{IP: c.webSource(w).AsSlice()}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: local}
		nc, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("web server %d from %s: %w", g+1, local.IP, err)
		}
		return nc, nil
	}
}

// farmWebServer returns the farm-wide index of this shard's web server w.
func (c *Config) farmWebServer(w int) int {
	if c.Shard.Count > 0 {
		return c.Shard.Index - 1 + w*c.Shard.Count
	}
	return w
}

// webSource returns the source address of this shard's web server w
// (Config.SourceAddrs must be set).
func (c *Config) webSource(w int) netip.Addr { return c.SourceAddrs[c.farmWebServer(w)] }
