package trace

import (
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// packetSink takes finished packets: a pcapgo.Writer or pcapgo.NgWriter.
type packetSink interface {
	WritePacket(ci gopacket.CaptureInfo, data []byte) error
}

// tcpConn is one synthesized TCP connection: its two ends and the next
// sequence number each side sends.
type tcpConn struct {
	client, server netip.AddrPort
	cseq, sseq     uint32
}

// newTCPConn returns a connection between client and server with initial
// sequence numbers derived from the ports (any value is valid TCP).
func newTCPConn(client, server netip.AddrPort) *tcpConn {
	return &tcpConn{client: client, server: server,
		cseq: uint32(client.Port())<<16 | 0x1000, sseq: uint32(server.Port())<<16 | 0x2000}
}

// tcpFlags are the flags of one synthesized segment.
type tcpFlags struct{ SYN, ACK, FIN, RST, PSH bool }

// packetWriter synthesizes Ethernet, IP and TCP headers around payloads and
// writes the packets to a sink, so that readers of the capture (trace.Read,
// tcpdump, Wireshark) see ordinary TCP connections.
type packetWriter struct {
	sink packetSink
	buf  gopacket.SerializeBuffer
	// mss is the largest payload of one segment; send splits longer ones.
	mss int
}

func newPacketWriter(sink packetSink) *packetWriter {
	return &packetWriter{sink: sink, buf: gopacket.NewSerializeBuffer(), mss: 65000}
}

var (
	macClient = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	macServer = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

// segment writes one TCP segment with the given sequence number; ack is the
// other side's next sequence number.
func (w *packetWriter) segment(c *tcpConn, fromClient bool, ts time.Time, seq uint32, f tcpFlags, payload []byte) error {
	src, dst := c.client, c.server
	ack := c.sseq
	smac, dmac := macClient, macServer
	if !fromClient {
		src, dst = dst, src
		ack = c.cseq
		smac, dmac = dmac, smac
	}
	eth := &layers.Ethernet{SrcMAC: smac, DstMAC: dmac}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()),
		Seq: seq, Window: 65535, SYN: f.SYN, ACK: f.ACK, FIN: f.FIN, RST: f.RST, PSH: f.PSH}
	if f.ACK {
		tcp.Ack = ack
	}
	var ip gopacket.SerializableLayer
	if src.Addr().Is4() {
		eth.EthernetType = layers.EthernetTypeIPv4
		ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment,
			SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
		tcp.SetNetworkLayerForChecksum(ip4)
		ip = ip4
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
			SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
		tcp.SetNetworkLayerForChecksum(ip6)
		ip = ip6
	}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(w.buf, opts, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
		return err
	}
	data := w.buf.Bytes()
	return w.sink.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(data), Length: len(data)}, data)
}

// handshake writes SYN, SYN-ACK and ACK.
func (w *packetWriter) handshake(c *tcpConn, ts time.Time) error {
	if err := w.segment(c, true, ts, c.cseq, tcpFlags{SYN: true}, nil); err != nil {
		return err
	}
	c.cseq++
	if err := w.segment(c, false, ts, c.sseq, tcpFlags{SYN: true, ACK: true}, nil); err != nil {
		return err
	}
	c.sseq++
	return w.segment(c, true, ts, c.cseq, tcpFlags{ACK: true}, nil)
}

// send writes payload from one side in segments of at most mss bytes and
// advances that side's sequence number.
func (w *packetWriter) send(c *tcpConn, fromClient bool, ts time.Time, payload []byte) error {
	for len(payload) > 0 {
		n := min(len(payload), w.mss)
		seq := &c.sseq
		if fromClient {
			seq = &c.cseq
		}
		if err := w.segment(c, fromClient, ts, *seq, tcpFlags{ACK: true, PSH: n == len(payload)}, payload[:n]); err != nil {
			return err
		}
		*seq += uint32(n)
		payload = payload[n:]
	}
	return nil
}

// fin writes a FIN from one side and the other side's ACK of it.
func (w *packetWriter) fin(c *tcpConn, fromClient bool, ts time.Time) error {
	seq := &c.sseq
	if fromClient {
		seq = &c.cseq
	}
	if err := w.segment(c, fromClient, ts, *seq, tcpFlags{FIN: true, ACK: true}, nil); err != nil {
		return err
	}
	*seq++
	other := c.cseq
	if fromClient {
		other = c.sseq
	}
	return w.segment(c, !fromClient, ts, other, tcpFlags{ACK: true}, nil)
}

// newNgWriter starts a pcapng file with one Ethernet interface, naming app
// as the writing application (and no host details, so equal input gives
// equal bytes on every machine).
func newNgWriter(w io.Writer, app string) (*pcapgo.NgWriter, error) {
	intf := pcapgo.NgInterface{Name: "aspstate", LinkType: layers.LinkTypeEthernet, TimestampResolution: 9}
	return pcapgo.NewNgWriterInterface(w, intf, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: app}})
}
