package stateserver

import (
	"testing"

	"github.com/aspstate/aspstate/protocol"
)

func FuzzAppendKey(f *testing.F) {
	for _, s := range []string{
		"%2fLM%2fW3SVC%2f2%2fROOT(oXvpnxcuEWqKAgOETha32JavYZ6eCqrpTN5%2fHxWS854%3d)%2fbpr4mimb2vjnvtn2jc4yp3uo",
		"//a/b", "/%2fa", "a+b", "%", "%4", "%41", "%zz", "%u0041", "%U00e9x", "%ud83d%ude00", "%ud83d", "%u00", "x%2", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		want := protocol.Key(target)
		if got := appendKey([]byte("prefix"), target); string(got) != "prefix"+want {
			t.Fatalf("appendKey(%q) = %q, protocol.Key = %q", target, got[6:], want)
		}
	})
}

func TestAppendKeyDoesNotAllocate(t *testing.T) {
	target := protocol.Target("/LM/W3SVC/1/ROOT", "bpr4mimb2vjnvtn2jc4yp3uo")
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = appendKey(buf[:0], target) }); n != 0 {
		t.Fatalf("%v allocations per key", n)
	}
}
