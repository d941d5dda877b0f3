package trace

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile writes b to a temporary file and returns its path.
func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// pcapHeader is a pcap file header (microseconds, little-endian).
func pcapHeader(linkType uint32) []byte {
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 262144)
	binary.LittleEndian.PutUint32(h[20:], linkType)
	return h
}

func TestReadBadFiles(t *testing.T) {
	t.Parallel()
	whole, err := os.ReadFile(filepath.Join("testdata", "farm-lo.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string
		want error
		text string
	}{
		{"not a capture", writeFile(t, "notes.txt", []byte("GET / HTTP/1.1\r\n\r\n")), ErrNotCapture, "pktmon etl2pcap"},
		{"empty", writeFile(t, "empty.pcap", nil), nil, "empty"},
		{"truncated header", writeFile(t, "head.pcap", pcapHeader(1)[:10]), ErrTruncated, "header is cut short"},
		{"truncated packet", writeFile(t, "cut.pcap", whole[:len(whole)/2]), ErrTruncated, "editcap -r"},
		{"unknown link type", writeFile(t, "usb.pcap", pcapHeader(189)), ErrLinkType, "189"},
		{"missing", filepath.Join(t.TempDir(), "nope.pcap"), os.ErrNotExist, "nope.pcap"},
		{"directory", t.TempDir(), nil, "is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := collect(t, Options{}, tc.path)
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != tc.path {
				t.Fatalf("err = %v, want a FileError naming %s", err, tc.path)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %q, want one line containing %q", err, tc.text)
			}
		})
	}
}

// TestReadTruncatedKeepsWhatCameBefore: the exchanges before the cut are
// passed on, then the truncation is reported.
func TestReadTruncatedKeepsWhatCameBefore(t *testing.T) {
	t.Parallel()
	whole, err := os.ReadFile(filepath.Join("testdata", "farm-lo.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	got, st, err := collect(t, Options{}, writeFile(t, "cut.pcap", whole[:len(whole)/2]))
	if !errors.Is(err, ErrTruncated) || len(got) == 0 || st.Exchanges != len(got) {
		t.Fatalf("err %v, %d exchanges", err, len(got))
	}
}

func TestReadNoTrafficOnThePort(t *testing.T) {
	t.Parallel()
	got, st, err := collect(t, Options{Port: 80}, realServiceFile)
	if err != nil || len(got) != 0 || st.PortPackets != 0 || st.Packets == 0 || st.Ports[42424] == 0 {
		t.Fatalf("err %v, %d exchanges, stats %+v", err, len(got), st)
	}
}

func TestReadOtherProtocolsOnThePort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path      string
		http, tls int
	}{{httpFile, 2, 0}, {tlsFile, 0, 2}} {
		got, st, err := collect(t, Options{}, tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("%s: %d made-up exchanges, first %q", tc.path, len(got), got[0].req)
		}
		if st.Foreign.HTTP != tc.http || st.Foreign.TLS != tc.tls || st.Connections != 2 {
			t.Errorf("%s: stats %+v", tc.path, st)
		}
	}
}
