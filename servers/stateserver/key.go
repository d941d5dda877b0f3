package stateserver

import (
	"strings"

	"github.com/aspstate/aspstate/protocol"
)

// appendKey appends protocol.Key(target) to dst: the item key the service
// derives from a request target (one "/" dropped from a leading "//", then
// URL-decoded; PROTOCOL.md b.3). The client's form (%xx escapes, "+")
// is decoded here without allocating; a target with a %uXXXX escape is
// handed to protocol.Key itself. FuzzAppendKey pins the equivalence.
func appendKey(dst []byte, target string) []byte {
	start := len(dst)
	t := target
	if strings.HasPrefix(t, "//") {
		t = t[1:]
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c == '+':
			dst = append(dst, ' ')
		case c == '%' && i+2 < len(t):
			if t[i+1] == 'u' || t[i+1] == 'U' {
				return append(dst[:start], protocol.Key(target)...)
			}
			hi, ok1 := unhex(t[i+1])
			lo, ok2 := unhex(t[i+2])
			if ok1 && ok2 {
				dst = append(dst, hi<<4|lo)
				i += 2
			} else {
				dst = append(dst, c)
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
