package trace

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// summary is an exchange without its times: what every capture of one run
// must agree on.
func summary(s seen) string {
	status := 0
	if s.ex.Reply != nil {
		status = s.ex.Reply.Status
	}
	return fmt.Sprintf("%v #%d %s %d %x", s.ex.Conn, s.ex.Seq, s.ex.Op(), status, s.req)
}

// liveCaptures are one run of aspstate load against aspstate serve captured
// three ways at once (scripts/capture-testdata.sh).
var liveCaptures = []struct {
	file string
	link string
}{
	{"farm-lo.pcap", "Ethernet (tcpdump -i lo)"},
	{"farm-lo.pcapng", "pcapng (dumpcap -i lo)"},
	{"farm-any.pcap", "Linux cooked SLL2 (tcpdump -i any)"},
}

// TestReadLiveCaptures: the same traffic read from the pcap, the pcapng and
// the `-i any` capture gives the same exchanges, none skipped.
func TestReadLiveCaptures(t *testing.T) {
	t.Parallel()
	var want []string
	for _, c := range liveCaptures {
		got, st, err := collect(t, Options{}, filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if len(got) < 100 || st.Skipped.Any() || st.Connections < 2 {
			t.Errorf("%s (%s): %d exchanges on %d connections, %s", c.file, c.link, len(got), st.Connections, st.Skipped)
		}
		var sums []string
		for _, s := range got {
			sums = append(sums, summary(s))
		}
		if want == nil {
			want = sums
			continue
		}
		if len(sums) != len(want) {
			t.Fatalf("%s: %d exchanges, %s gave %d", c.file, len(sums), liveCaptures[0].file, len(want))
		}
		for i := range sums {
			if sums[i] != want[i] {
				t.Fatalf("%s: exchange %d differs:\n%s\n%s", c.file, i, sums[i], want[i])
			}
		}
	}
}

// relink rewrites farm-lo.pcap with another link layer in front of each IP
// packet (Ethernet's 14 bytes replaced by hdr).
func relink(t *testing.T, lt layers.LinkType, hdr []byte) string {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(262144, lt); err != nil {
		t.Fatal(err)
	}
	eachFarmPacket(t, func(_ int, data []byte, ci gopacket.CaptureInfo) {
		p := append(append([]byte{}, hdr...), data[14:]...)
		ci.CaptureLength, ci.Length = len(p), len(p)
		if err := w.WritePacket(ci, p); err != nil {
			t.Fatal(err)
		}
	})
	return writeFile(t, "relinked.pcap", buf.Bytes())
}

// eachFarmPacket calls fn with every packet of farm-lo.pcap (Ethernet).
func eachFarmPacket(t *testing.T, fn func(i int, data []byte, ci gopacket.CaptureInfo)) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "farm-lo.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			return
		}
		fn(i, data, ci)
	}
}

// TestReadRawAndLoopbackLinkTypes: raw IP (some VPNs and tunnels), BSD
// loopback (null, loop) and VLAN-tagged Ethernet captures of the same
// traffic give the same exchanges.
func TestReadRawAndLoopbackLinkTypes(t *testing.T) {
	t.Parallel()
	base, _, err := collect(t, Options{}, filepath.Join("testdata", "farm-lo.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	null := make([]byte, 4)
	binary.LittleEndian.PutUint32(null, 2) // AF_INET, host byte order
	for _, tc := range []struct {
		name string
		lt   layers.LinkType
		hdr  []byte
	}{
		{"raw", layers.LinkTypeRaw, nil},
		{"ipv4", layers.LinkTypeIPv4, nil},
		{"null", layers.LinkTypeNull, null},
		{"loop", layers.LinkTypeLoop, []byte{0, 0, 0, 2}},
		{"vlan", layers.LinkTypeEthernet, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0x00, 0x2a, 0x08, 0x00}},
	} {
		got, st, err := collect(t, Options{}, relink(t, tc.lt, tc.hdr))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(got) != len(base) || st.Skipped.Any() {
			t.Errorf("%s: %d exchanges, want %d; %s", tc.name, len(got), len(base), st.Skipped)
		}
	}
}

// split writes the packets of farm-lo.pcap into two files, choosing each
// packet's file by which(index, packet).
func split(t *testing.T, which func(i int, data []byte) int) []string {
	t.Helper()
	var bufs [2]bytes.Buffer
	var ws [2]*pcapgo.Writer
	for i := range ws {
		ws[i] = pcapgo.NewWriterNanos(&bufs[i])
		if err := ws[i].WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
			t.Fatal(err)
		}
	}
	eachFarmPacket(t, func(i int, data []byte, ci gopacket.CaptureInfo) {
		if err := ws[which(i, data)].WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	})
	return []string{writeFile(t, "a.pcap", bufs[0].Bytes()), writeFile(t, "b.pcap", bufs[1].Bytes())}
}

// TestReadSeveralFilesAreOneCapture: rotated files (split in time) and
// per-connection files (as from several capture points) read together give
// the exchanges of the whole capture.
func TestReadSeveralFilesAreOneCapture(t *testing.T) {
	t.Parallel()
	base, _, err := collect(t, Options{}, filepath.Join("testdata", "farm-lo.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, s := range base {
		want[summary(s)] = true
	}
	for name, files := range map[string][]string{
		"rotated":        split(t, func(i int, _ []byte) int { return min(1, i/300) }),
		"per connection": split(t, func(_ int, d []byte) int { return int(d[14+20+1]+d[14+20+3]) & 1 }),
	} {
		got, st, err := collect(t, Options{}, files[1], files[0])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(base) || st.Files != 2 || st.Skipped.Any() {
			t.Errorf("%s: %d exchanges, want %d; %s", name, len(got), len(base), st.Skipped)
		}
		for _, s := range got {
			if !want[summary(s)] {
				t.Errorf("%s: unexpected exchange %s", name, summary(s))
			}
		}
	}
}
