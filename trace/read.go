package trace

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/gopacket/gopacket/reassembly"

	"github.com/aspstate/aspstate/protocol"
)

// Options says how to read a capture.
type Options struct {
	// Port is the state server's TCP port: the side of each connection on
	// this port is the server. Zero means protocol.DefaultPort (42424).
	Port uint16
	// Limits bound the messages the codec accepts (zero fields take the
	// protocol's defaults). A message over a limit counts as undecodable.
	Limits protocol.Limits
}

func (o Options) port() uint16 {
	if o.Port == 0 {
		return protocol.DefaultPort
	}
	return o.Port
}

// Stats counts what Read saw.
type Stats struct {
	// Files is how many capture files were read; Bytes their total size.
	Files int
	Bytes int64
	// Packets counts every packet record; PortPackets the TCP segments to or
	// from the server port.
	Packets, PortPackets int
	// Connections counts the TCP connections on the port, Exchanges the
	// exchanges passed to fn (Unanswered ones included).
	Connections, Exchanges int
	// First and Last are the capture times of the first and last packet.
	First, Last time.Time
	// Ports counts TCP segments per port for the busiest ports other than the
	// server port (at most 1000 are tracked), so that "no traffic on the
	// port" can say which ports did carry traffic.
	Ports map[uint16]int
	// Foreign counts connections on the port whose bytes are another
	// protocol: TLS (a handshake record) or HTTP (a reply with an "HTTP/1.x"
	// status line, which the state service never sends).
	Foreign struct{ TLS, HTTP int }
	// Skipped counts what the capture could not give.
	Skipped Skipped
}

// FileError is a problem with one capture file: it is not a capture, it is
// cut short, or its link type is not one Read decodes. Path names the file,
// Hint says what to do.
type FileError struct {
	Path string
	// Packet is how many packets of the file were read before the problem.
	Packet int
	Err    error
	Hint   string
}

func (e *FileError) Error() string {
	s := e.Path + ": " + e.Err.Error()
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

func (e *FileError) Unwrap() error { return e.Err }

// Errors a FileError wraps, for errors.Is.
var (
	// ErrNotCapture: the file is neither pcap nor pcapng.
	ErrNotCapture = errors.New("not a pcap or pcapng capture")
	// ErrTruncated: the file ends inside a packet record.
	ErrTruncated = errors.New("the capture is truncated")
	// ErrLinkType: the file's link type is not one Read decodes.
	ErrLinkType = errors.New("unsupported link type")
)

// Gap handling: out-of-order data waits this long (capture time) for the
// missing bytes before the stream skips them; a connection silent this long
// is closed (a pooled connection that resumes later is picked up again as a
// join at a request line).
const (
	gapWait   = 2 * time.Second
	idleClose = 10 * time.Minute
	flushStep = time.Second
)

// Read streams the exchanges of the capture files (pcap or pcapng; several
// files are one capture, e.g. several partitions' or rotated files, merged by
// time) to fn as each exchange completes: in the capture-time order of their
// last reply packets (so roughly, not strictly, by RequestStart); exchanges
// without a whole reply come when their connection ends. Memory is bounded
// by the open connections, never by the file size.
//
// fn may keep the Exchange and its Request and Reply, but not their bodies:
// Read reuses the body memory and sets Request.Body and Reply.Body to nil
// once fn returns (session state holds personal data; nothing keeps it).
// An error from fn stops Read and is returned as is.
//
// Read relies on the ASP.NET client's one-request-at-a-time use of each
// connection: after a gap or a mid-stream join a reply is paired with the
// last request that ended before it began, and never guessed otherwise.
// A *FileError reports a file that cannot be read; Stats then holds the
// counts up to the problem.
func Read(ctx context.Context, paths []string, opt Options, fn func(*Exchange) error) (Stats, error) {
	r := newReader(opt, fn)
	defer r.closeFiles()
	if len(paths) == 0 {
		return r.stats, errors.New("no capture file given")
	}
	for _, p := range paths {
		if err := r.open(p); err != nil {
			return r.stats, err
		}
	}
	err := r.run(ctx)
	return r.stats, err
}

// reader is one Read: the open files, the decoder and the assembler.
type reader struct {
	opt   Options
	port  uint16
	fn    func(*Exchange) error
	stats Stats
	files []*source
	err   error // the first error from fn; stops the run

	eth    layers.Ethernet
	dot1q  layers.Dot1Q
	sll    layers.LinuxSLL
	sll2   layers.LinuxSLL2
	loop   layers.Loopback
	ip4    layers.IPv4
	ip6    layers.IPv6
	ip6ext layers.IPv6ExtensionSkipper
	tcp    layers.TCP
	pl     gopacket.Payload

	parsers map[layers.LinkType]*gopacket.DecodingLayerParser
	decoded []gopacket.LayerType

	reqDec, repDec *decoder

	pool      *reassembly.StreamPool
	asm       *reassembly.Assembler
	lastFlush time.Time
	// flushNow asks for a flush before the current packet is assembled
	// again; resubmitting is set while it is.
	flushNow, resubmitting bool
}

func newReader(opt Options, fn func(*Exchange) error) *reader {
	r := &reader{opt: opt, port: opt.port(), fn: fn, parsers: map[layers.LinkType]*gopacket.DecodingLayerParser{}}
	r.stats.Ports = map[uint16]int{}
	r.reqDec, r.repDec = newDecoder(opt.Limits, true), newDecoder(opt.Limits, false)
	r.pool = reassembly.NewStreamPool(&factory{r: r})
	r.asm = reassembly.NewAssembler(r.pool)
	// Bound the pages one connection may hold while waiting for missing
	// bytes: beyond them the oldest is pushed through as a gap.
	r.asm.MaxBufferedPagesPerConnection = 4096
	return r
}

// source is one open capture file and its next packet.
type source struct {
	path     string
	f        *os.File
	next     func() ([]byte, gopacket.CaptureInfo, error)
	linkType func(ci gopacket.CaptureInfo) layers.LinkType
	data     []byte
	ci       gopacket.CaptureInfo
	packets  int
	done     bool
}

const magicPcapng = 0x0a0d0d0a

// pcapMagic holds the pcap file magics, read little-endian: microsecond and
// nanosecond timestamps, either byte order.
var pcapMagic = map[uint32]bool{0xa1b2c3d4: true, 0xd4c3b2a1: true, 0xa1b23c4d: true, 0x4d3cb2a1: true}

// open opens one capture file and reads its header.
func (r *reader) open(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return &FileError{Path: path, Err: err, Hint: "check the file name"}
	}
	s := &source{path: path, f: f}
	r.files = append(r.files, s)
	if fi, err := f.Stat(); err == nil {
		if fi.IsDir() {
			return &FileError{Path: path, Err: errors.New("is a directory"), Hint: "give the capture files inside it"}
		}
		r.stats.Bytes += fi.Size()
	}
	r.stats.Files++
	br := bufio.NewReaderSize(f, 256<<10)
	head, err := br.Peek(4)
	if err != nil {
		if len(head) == 0 {
			return &FileError{Path: path, Err: errors.New("the file is empty"), Hint: "capture again; tcpdump -w writes the file as it captures"}
		}
		return &FileError{Path: path, Err: ErrNotCapture, Hint: "give a file written by tcpdump -w, dumpcap -w or pktmon etl2pcap"}
	}
	notCapture := func(err error) error {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return &FileError{Path: path, Err: ErrTruncated, Hint: "the file header is cut short; capture again"}
		}
		return &FileError{Path: path, Err: fmt.Errorf("%w: %v", ErrNotCapture, err), Hint: "give a file written by tcpdump -w, dumpcap -w or pktmon etl2pcap"}
	}
	magic := binary.LittleEndian.Uint32(head)
	switch {
	case magic == magicPcapng, pcapMagic[magic], head[0] == 0x1f && head[1] == 0x8b:
	default:
		return &FileError{Path: path, Err: ErrNotCapture, Hint: "give a file written by tcpdump -w, dumpcap -w or pktmon etl2pcap (pktmon's .etl files must be converted first)"}
	}
	if magic == magicPcapng {
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return notCapture(err)
		}
		s.next = ng.ZeroCopyReadPacketData
		s.linkType = func(ci gopacket.CaptureInfo) layers.LinkType {
			if len(ci.AncillaryData) > 0 {
				if lt, ok := ci.AncillaryData[0].(layers.LinkType); ok {
					return lt
				}
			}
			return ng.LinkType()
		}
	} else {
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return notCapture(err)
		}
		lt := pr.LinkType()
		if _, err := r.parser(lt); err != nil {
			return &FileError{Path: path, Err: err, Hint: linkHint}
		}
		s.next = pr.ZeroCopyReadPacketData
		s.linkType = func(gopacket.CaptureInfo) layers.LinkType { return lt }
	}
	return nil
}

const linkHint = "capture with tcpdump -i IFACE or -i any; Ethernet, raw IP, Linux cooked (SLL, SLL2) and loopback are read"

func (r *reader) closeFiles() {
	for _, s := range r.files {
		s.f.Close()
	}
}

// advance reads the next packet of s.
func (r *reader) advance(s *source) error {
	data, ci, err := s.next()
	if err == io.EOF {
		s.done = true
		return nil
	}
	if err != nil {
		s.done = true
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return &FileError{Path: s.path, Packet: s.packets, Err: ErrTruncated,
				Hint: fmt.Sprintf("it ends inside packet %d, as when a capture is cut off while being written; keep the whole packets with: editcap -r %s fixed.pcapng 1-%d", s.packets+1, s.path, s.packets)}
		}
		return &FileError{Path: s.path, Packet: s.packets, Err: fmt.Errorf("bad packet record after packet %d: %v", s.packets, err),
			Hint: "the file is damaged; capture again"}
	}
	s.packets++
	s.data, s.ci = data, ci
	return nil
}

// run merges the files' packets by capture time and feeds them to the
// assembler, then flushes what is left.
func (r *reader) run(ctx context.Context) error {
	for _, s := range r.files {
		if err := r.advance(s); err != nil {
			return err
		}
	}
	for n := 0; ; n++ {
		if n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var s *source
		for _, c := range r.files {
			if !c.done && (s == nil || c.ci.Timestamp.Before(s.ci.Timestamp)) {
				s = c
			}
		}
		if s == nil {
			break
		}
		if err := r.packet(s); err != nil {
			return err
		}
		if r.err != nil {
			return r.err
		}
		if err := r.advance(s); err != nil {
			r.finish()
			return err
		}
	}
	r.finish()
	return r.err
}

// finish pushes out everything the assembler still holds: the capture ended.
func (r *reader) finish() {
	r.asm.FlushAll()
}

// parser returns the layer parser for a link type.
func (r *reader) parser(lt layers.LinkType) (*gopacket.DecodingLayerParser, error) {
	if p, ok := r.parsers[lt]; ok {
		return p, nil
	}
	var first gopacket.LayerType
	switch lt {
	case layers.LinkTypeEthernet:
		first = layers.LayerTypeEthernet
	case layers.LinkTypeLinuxSLL:
		first = layers.LayerTypeLinuxSLL
	case layers.LinkTypeLinuxSLL2:
		first = layers.LayerTypeLinuxSLL2
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		first = layers.LayerTypeLoopback
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, 12, 14:
		// Raw IP (DLT_RAW is 12 or 14 on some systems): IPv4 or IPv6 by
		// the version nibble, chosen per packet.
		first = layers.LayerTypeIPv4
	case layers.LinkTypeIPv6:
		first = layers.LayerTypeIPv6
	default:
		return nil, fmt.Errorf("%w %d (%s)", ErrLinkType, int(lt), lt)
	}
	p := gopacket.NewDecodingLayerParser(first, &r.eth, &r.dot1q, &r.sll, &r.sll2, &r.loop, &r.ip4, &r.ip6, &r.ip6ext, &r.tcp, &r.pl)
	p.IgnoreUnsupported = true
	r.parsers[lt] = p
	return p, nil
}

// rawIP reports whether a link type carries bare IP packets.
func rawIP(lt layers.LinkType) bool {
	return lt == layers.LinkTypeRaw || lt == layers.LinkTypeIPv4 || lt == 12 || lt == 14
}

// asmContext hands a packet's capture info to the assembler.
type asmContext struct{ ci gopacket.CaptureInfo }

func (c *asmContext) GetCaptureInfo() gopacket.CaptureInfo { return c.ci }

// packet decodes one packet and, when it is TCP on the port, assembles it.
func (r *reader) packet(s *source) error {
	r.stats.Packets++
	ts := s.ci.Timestamp
	if r.stats.First.IsZero() || ts.Before(r.stats.First) {
		r.stats.First = ts
	}
	if ts.After(r.stats.Last) {
		r.stats.Last = ts
	}
	lt := s.linkType(s.ci)
	p, err := r.parser(lt)
	if err != nil {
		return &FileError{Path: s.path, Packet: s.packets, Err: err, Hint: linkHint}
	}
	data := s.data
	if rawIP(lt) && len(data) > 0 && data[0]>>4 == 6 {
		p, _ = r.parser(layers.LinkTypeIPv6)
	}
	r.decoded = r.decoded[:0]
	r.tcp.Payload = nil
	if err := p.DecodeLayers(data, &r.decoded); err != nil {
		return nil // not a packet we can read: not ours either
	}
	var netFlow gopacket.Flow
	haveIP, haveTCP := false, false
	for _, l := range r.decoded {
		switch l {
		case layers.LayerTypeIPv4:
			if r.ip4.Flags&layers.IPv4MoreFragments != 0 || r.ip4.FragOffset != 0 {
				return nil // fragments of TCP segments are not reassembled
			}
			netFlow, haveIP = r.ip4.NetworkFlow(), true
		case layers.LayerTypeIPv6:
			netFlow, haveIP = r.ip6.NetworkFlow(), true
		case layers.LayerTypeTCP:
			haveTCP = true
		}
	}
	if !haveIP || !haveTCP {
		return nil
	}
	t := &r.tcp
	if uint16(t.SrcPort) != r.port && uint16(t.DstPort) != r.port {
		r.countPort(uint16(t.SrcPort), uint16(t.DstPort))
		return nil
	}
	r.stats.PortPackets++
	if len(t.Payload) == 0 && !t.SYN && !t.FIN && !t.RST {
		// A bare ACK carries nothing to reassemble, and after a close it
		// would open a connection of its own.
		return nil
	}
	ctx := asmContext{ci: s.ci}
	r.asm.AssembleWithContext(netFlow, t, &ctx)
	if r.flushNow {
		// A stream's Accept found bytes the capture lost (see conn.Accept):
		// push what waits behind them through, then offer the packet again.
		r.flushNow = false
		r.resubmitting = true
		r.asm.FlushWithOptions(reassembly.FlushOptions{T: ts.Add(time.Nanosecond)})
		r.asm.AssembleWithContext(netFlow, t, &ctx)
		r.resubmitting = false
	}
	if ts.Sub(r.lastFlush) >= flushStep {
		if !r.lastFlush.IsZero() {
			r.asm.FlushWithOptions(reassembly.FlushOptions{T: ts.Add(-gapWait), TC: ts.Add(-idleClose)})
		}
		r.lastFlush = ts
	}
	return nil
}

// countPort remembers traffic on other ports, the lower port of a segment
// being the likely server side.
func (r *reader) countPort(a, b uint16) {
	p := min(a, b)
	if _, ok := r.stats.Ports[p]; ok || len(r.stats.Ports) < 1000 {
		r.stats.Ports[p]++
	}
}

// addrPort turns a flow endpoint pair into a netip.AddrPort.
func addrPort(ip []byte, port uint16) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), port)
}
