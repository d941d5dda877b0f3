package protocol

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The captures are byte-exact exchanges with Microsoft's service (see
// testdata/captures/README.md); they pin the codec from outside.

const (
	capAppID     = "/LM/W3SVC/2/ROOT"
	capSessionID = "bpr4mimb2vjnvtn2jc4yp3uo"
	capTarget    = "%2fLM%2fW3SVC%2f2%2fROOT(oXvpnxcuEWqKAgOETha32JavYZ6eCqrpTN5%2fHxWS854%3d)%2fbpr4mimb2vjnvtn2jc4yp3uo"
)

func capture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "captures", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGoldenRequestsRoundTrip(t *testing.T) {
	for _, name := range []string{"net4-get-acquire.request", "net4-put-release.request"} {
		t.Run(name, func(t *testing.T) {
			raw := capture(t, name)
			req, err := ParseRequest(raw, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if req.Target != capTarget {
				t.Errorf("target = %q, want %q", req.Target, capTarget)
			}
			if got := req.Bytes(); !bytes.Equal(got, raw) {
				t.Errorf("parse then write changed the bytes:\n got %q\nwant %q", got, raw)
			}
		})
	}
}

func TestGoldenResponsesRoundTrip(t *testing.T) {
	for _, name := range []string{"net4-get-acquire.response", "net4-put-release.response", "net2-put.response"} {
		t.Run(name, func(t *testing.T) {
			raw := capture(t, name)
			resp, err := ParseResponse(raw, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Proto != "" || resp.Status != 200 || resp.Reason != "OK" {
				t.Errorf("status line = %q %d %q", resp.Proto, resp.Status, resp.Reason)
			}
			if got := resp.Bytes(); !bytes.Equal(got, raw) {
				t.Errorf("parse then write changed the bytes:\n got %q\nwant %q", got, raw)
			}
		})
	}
}

// The client builders emit exactly what the real .NET 4 client sent.
func TestGoldenClientRequests(t *testing.T) {
	target := Target(capAppID, capSessionID)
	if target != capTarget {
		t.Fatalf("Target = %q, want %q", target, capTarget)
	}
	acquire := NewGetExclusiveRequest("localhost", target).Bytes()
	if want := capture(t, "net4-get-acquire.request"); !bytes.Equal(acquire, want) {
		t.Errorf("GetExclusive request:\n got %q\nwant %q", acquire, want)
	}
	put := capture(t, "net4-put-release.request")
	body := put[bytes.Index(put, []byte("\r\n\r\n"))+4:]
	got := NewSetRequest("localhost", target, body, SetParams{Timeout: 20, LockCookie: 2}).Bytes()
	if !bytes.Equal(got, put) {
		t.Errorf("Set request:\n got %q\nwant %q", got, put)
	}
}

// The server-side writers produce the captured replies from their parts.
func TestGoldenServerReplies(t *testing.T) {
	get := capture(t, "net4-get-acquire.response")
	body := get[bytes.Index(get, []byte("\r\n\r\n"))+4:]
	var b []byte
	b = AppendStatusLine(b, 200, "")
	b = AppendHeader(b, HeaderVersion, DefaultVersion)
	b = AppendHeaderInt(b, HeaderLockCookie, 2)
	b = AppendHeaderInt(b, HeaderTimeout, 20)
	b = AppendHeader(b, HeaderCacheControl, CacheControlPrivate)
	b = AppendBodyEnd(b, body)
	if !bytes.Equal(b, get) {
		t.Errorf("acquire reply:\n got %q\nwant %q", b, get)
	}
	put := capture(t, "net4-put-release.response")
	b = AppendStatusLine(b[:0], 200, "")
	b = AppendHeader(b, HeaderVersion, DefaultVersion)
	b = AppendHeader(b, HeaderCacheControl, CacheControlPrivate)
	b = AppendBodyEnd(b, nil)
	if !bytes.Equal(b, put) {
		t.Errorf("put reply:\n got %q\nwant %q", b, put)
	}
}

func TestGoldenReplyFields(t *testing.T) {
	resp, err := ParseResponse(capture(t, "net4-get-acquire.response"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReply(resp)
	if err != nil {
		t.Fatal(err)
	}
	if !r.HasCookie || r.LockCookie != 2 || !r.HasTimeout || r.Timeout != 20 || len(r.Body) != 30 ||
		r.Version != "4.0.30319" || r.VersionMajor() != 4 || r.ActionFlags != 0 {
		t.Errorf("reply = %+v", r)
	}
	want := []string{"X-AspNet-Version", "LockCookie", "Timeout", "Cache-Control", "Content-Length"}
	if got := resp.Header.Names(); !equalStrings(got, want) {
		t.Errorf("header order = %v, want %v", got, want)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
