package protocol

import (
	"bytes"
	"strings"
	"testing"
)

func TestAppHashVectors(t *testing.T) {
	// PROTOCOL.md b.3: the captured vector and two more from the same source.
	for appID, want := range map[string]string{
		"/LM/W3SVC/2/ROOT":      "oXvpnxcuEWqKAgOETha32JavYZ6eCqrpTN5/HxWS854=",
		"/LM/W3SVC/1/ROOT":      "cAHkmVhipCLv/QnONQmPsKL+q/AjnK/nYS9aV3Zlad8=",
		"/LM/W3SVC/DONATE/ROOT": "Q382tQy2MH/DtwC0WQWxEWXoa3ZAQAq6kSajzPcAmuk=",
	} {
		if got := AppHash(appID); got != want {
			t.Errorf("AppHash(%q) = %q, want %q", appID, got, want)
		}
	}
}

func TestTargetMatchesCapture(t *testing.T) {
	if got := Target(capAppID, capSessionID); got != capTarget {
		t.Errorf("Target = %q\nwant     %q", got, capTarget)
	}
	if got := TargetPrefix(capAppID) + URLEncode(capSessionID); got != capTarget {
		t.Errorf("TargetPrefix + id = %q", got)
	}
	if strings.HasPrefix(capTarget, "/") {
		t.Error("the client's target has no leading slash")
	}
}

func TestURIBaseAddsSlash(t *testing.T) {
	if got := URIBase("app"); got != "/app("+AppHash("app")+")/" {
		t.Errorf("URIBase(app) = %q", got)
	}
}

func TestURLEncode(t *testing.T) {
	for in, want := range map[string]string{
		"abcXYZ019-_.!*()": "abcXYZ019-_.!*()",
		"/a b+c=":          "%2fa+b%2bc%3d",
		"é":                "%c3%a9",
		"~'\"":             "%7e%27%22",
	} {
		if got := URLEncode(in); got != want {
			t.Errorf("URLEncode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKeyDecoding(t *testing.T) {
	same := [][]string{
		{"%2fa(x%3d)%2fs", "%2Fa(x%3D)%2Fs", "/a(x=)/s"}, // 2.2.3.13-key-decoding
		{"//a/s", "%2fa%2fs", "/a/s"},                    // 2.2.3.13-double-slash
		{"a+b", "a b", "a%20b"},                          // + is a space
		{"%u0041", "A", "%41"},                           // %uXXXX
		{"%ud83d%ude00", "\U0001F600", "%f0%9f%98%80"},   // surrogate pair
	}
	for _, group := range same {
		want := Key(group[0])
		for _, t2 := range group[1:] {
			if got := Key(t2); got != want {
				t.Errorf("Key(%q) = %q, Key(%q) = %q: want the same key", group[0], want, t2, got)
			}
		}
	}
	differ := [][2]string{
		{"ABC", "abc"},    // ordinal comparison
		{"/%2fa", "%2fa"}, // decodes to //a, not folded
		{"%2", "%"},       // malformed kept as is
	}
	for _, d := range differ {
		if Key(d[0]) == Key(d[1]) {
			t.Errorf("Key(%q) == Key(%q), want different keys", d[0], d[1])
		}
	}
	for in, want := range map[string]string{"%zz": "%zz", "%2": "%2", "%u12": "%u12", "a%": "a%"} {
		if got := Key(in); got != want {
			t.Errorf("Key(%q) = %q, want %q (malformed escapes kept)", in, got, want)
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	var all bytes.Buffer
	for i := 0; i < 128; i++ {
		all.WriteByte(byte(i))
	}
	s := all.String() + "é€\U0001F600"
	if got := URLDecode(URLEncode(s)); got != s {
		t.Errorf("round trip changed %q to %q", s, got)
	}
}

func TestNewSessionID(t *testing.T) {
	id, err := NewSessionID(bytes.NewReader(bytes.Repeat([]byte{0xff}, 15)))
	if err != nil {
		t.Fatal(err)
	}
	if id != strings.Repeat("5", 24) {
		t.Errorf("all-ones id = %q", id)
	}
	zero := EncodeSessionID([15]byte{})
	if zero != strings.Repeat("a", 24) {
		t.Errorf("zero id = %q", zero)
	}
	if _, err := NewSessionID(bytes.NewReader(nil)); err == nil {
		t.Error("short random source accepted")
	}
	for _, c := range EncodeSessionID([15]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}) {
		if !strings.ContainsRune(sessionAlphabet, c) {
			t.Errorf("character %q outside [a-z0-5]", c)
		}
	}
}

// AppendKey is Key into a caller's buffer, and allocates nothing once the
// buffer is large enough (the server decodes every request's key with it).
func TestAppendKey(t *testing.T) {
	for _, target := range []string{capTarget, "//a/b", "/%2fa", "a+b", "%", "%41", "%zz", "%u0041", "%ud83d%ude00", "%ud83d", "x%2", ""} {
		if got := string(AppendKey([]byte("p"), target)); got != "p"+Key(target) {
			t.Errorf("AppendKey(%q) = %q, want %q", target, got[1:], Key(target))
		}
	}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = AppendKey(buf[:0], capTarget) }); n != 0 {
		t.Errorf("%v allocations per key", n)
	}
}
