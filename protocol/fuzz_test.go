package protocol

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func addCaptureSeeds(f *testing.F, suffix string) {
	files, _ := filepath.Glob(filepath.Join("testdata", "captures", "*"+suffix))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzReadRequest: parsing never panics, and parse → write → parse agrees.
func FuzzReadRequest(f *testing.F) {
	addCaptureSeeds(f, ".request")
	for _, s := range []string{
		"GET a HTTP/1.1\r\nExclusive: release\r\nLockCookie:2\r\n\r\n",
		"HEAD /x HTTP/1.1\n\n",
		"PUT a HTTP/1.1\r\nContent-Length: 3\r\ncontent-length:3\r\n\r\nabc",
		"DELETE a HTTP/1.0\r\nLockCookie:-1\r\n\r\n",
		"POST a HTTP/1.1\r\n\r\n",
		"PUT a HTTP/1.1\r\nContent-Length: 4294967296\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxBody: 1 << 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseRequest(data, lim)
		if err != nil {
			if !IsProtocolError(err) {
				t.Fatalf("non-protocol error %T: %v", err, err)
			}
			return
		}
		out := req.Bytes()
		again, err := ParseRequest(out, lim)
		if err != nil {
			t.Fatalf("rewritten request does not parse: %v\n%q", err, out)
		}
		if again.Method != req.Method || again.Target != req.Target || again.Proto != req.Proto ||
			!bytes.Equal(again.Body, req.Body) || len(again.Header) != len(req.Header) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", req, again)
		}
		for i := range req.Header {
			if again.Header[i] != req.Header[i] && !equalFold(req.Header[i].Name, HeaderContentLength) {
				t.Fatalf("field %d changed: %+v → %+v", i, req.Header[i], again.Header[i])
			}
		}
		if !bytes.Equal(again.Bytes(), out) {
			t.Fatalf("writing is not stable")
		}
	})
}

// FuzzReadResponse: parsing never panics, and parse → write → parse agrees.
func FuzzReadResponse(f *testing.F) {
	addCaptureSeeds(f, ".response")
	for _, s := range []string{
		"423 Locked\r\nX-AspNet-Version: 4.0.30319\r\nLockDate: 638000000000000000\r\nLockAge: 3\r\nLockCookie: 2\r\nCache-Control: private\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
		"200\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxBody: 1 << 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := ParseResponse(data, lim)
		if err != nil {
			if !IsProtocolError(err) {
				t.Fatalf("non-protocol error %T: %v", err, err)
			}
			return
		}
		_, _ = NewReply(resp)
		out := resp.Bytes()
		again, err := ParseResponse(out, lim)
		if err != nil {
			t.Fatalf("rewritten response does not parse: %v\n%q", err, out)
		}
		if again.Status != resp.Status || !bytes.Equal(again.Body, resp.Body) {
			t.Fatalf("round trip changed the response:\n%+v\n%+v", resp, again)
		}
		if !bytes.Equal(again.Bytes(), out) {
			t.Fatalf("writing is not stable")
		}
	})
}

// FuzzURLDecode: decoding never panics, AppendKey agrees with Key, and
// encoding always decodes back.
func FuzzURLDecode(f *testing.F) {
	f.Add("%2fLM%2fW3SVC%2f2%2fROOT(oXvpnxcuEWqKAgOETha32JavYZ6eCqrpTN5%2fHxWS854%3d)%2fbpr4mimb2vjnvtn2jc4yp3uo")
	f.Add("%u0041%ud83d%ude00+%zz%")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(AppendKey([]byte("p"), s)), "p"+Key(s); got != want {
			t.Fatalf("AppendKey(%q) = %q, want %q", s, got, want)
		}
		if got := URLDecode(URLEncode(s)); got != s {
			t.Fatalf("URLDecode(URLEncode(%q)) = %q", s, got)
		}
	})
}
