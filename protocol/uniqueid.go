package protocol

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"strings"
	"unicode/utf8"
)

// AppHash returns Base64(SHA-256(UTF-8(appID))), the 44-character hash the
// ASP.NET 4.x client puts after the application id (PROTOCOL.md b.3).
func AppHash(appID string) string {
	sum := sha256.Sum256([]byte(appID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// URIBase returns appID + "(" + AppHash(appID) + ")/", with a "/" put in
// front when appID does not start with one, as OutOfProcSessionStateStore
// builds it once per application.
func URIBase(appID string) string {
	base := appID + "(" + AppHash(appID) + ")/"
	if !strings.HasPrefix(appID, "/") {
		base = "/" + base
	}
	return base
}

// Target returns the request target the ASP.NET client sends for a session:
// UrlEncode(URIBase(appID) + sessionID), with no leading "/".
//
//	Target("/LM/W3SVC/2/ROOT", "bpr4mimb2vjnvtn2jc4yp3uo") ==
//	"%2fLM%2fW3SVC%2f2%2fROOT(oXvpnxcuEWqKAgOETha32JavYZ6eCqrpTN5%2fHxWS854%3d)%2fbpr4mimb2vjnvtn2jc4yp3uo"
func Target(appID, sessionID string) string {
	return URLEncode(URIBase(appID) + sessionID)
}

// TargetPrefix returns the encoded URIBase(appID); appending an encoded
// session id gives Target. Clients that build many targets for one
// application compute it once.
func TargetPrefix(appID string) string { return URLEncode(URIBase(appID)) }

func urlSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', '!', '*', '(', ')':
		return true
	}
	return false
}

const lowerHex = "0123456789abcdef"

// URLEncode encodes s like System.Web's HttpUtility.UrlEncode: UTF-8 bytes;
// letters, digits and - _ . ! * ( ) kept; space as "+"; everything else as
// %xx with lowercase hex.
func URLEncode(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !urlSafe(s[i]) && s[i] != ' ' {
			n++
		}
	}
	if n == 0 && !strings.Contains(s, " ") {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case urlSafe(c):
			b = append(b, c)
		case c == ' ':
			b = append(b, '+')
		default:
			b = append(b, '%', lowerHex[c>>4], lowerHex[c&15])
		}
	}
	return string(b)
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

// URLDecode decodes s like HttpUtility.UrlDecode: "+" is a space, %xx in
// either case is a byte, %uXXXX is a UTF-16 code unit, and a malformed escape
// is kept as it stands.
func URLDecode(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	return string(AppendURLDecode(make([]byte, 0, len(s)), s))
}

// AppendURLDecode appends URLDecode(s) to dst. It allocates nothing beyond
// dst's growth, so a server can decode every request's key into one buffer.
func AppendURLDecode(dst []byte, s string) []byte {
	pending := rune(-1) // a high surrogate from %uXXXX waiting for its pair
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			dst, pending = flushSurrogate(dst, pending), -1
			dst = append(dst, ' ')
		case c == '%' && i+5 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U'):
			var v rune
			ok := true
			for j := 2; j <= 5; j++ {
				h, good := unhex(s[i+j])
				if !good {
					ok = false
					break
				}
				v = v<<4 | rune(h)
			}
			if !ok {
				dst, pending = flushSurrogate(dst, pending), -1
				dst = append(dst, c)
				continue
			}
			i += 5
			switch {
			case v >= 0xD800 && v < 0xDC00:
				dst = flushSurrogate(dst, pending)
				pending = v
			case v >= 0xDC00 && v < 0xE000 && pending >= 0:
				dst = utf8.AppendRune(dst, 0x10000+(pending-0xD800)<<10+(v-0xDC00))
				pending = -1
			default:
				dst, pending = flushSurrogate(dst, pending), -1
				dst = utf8.AppendRune(dst, v)
			}
		case c == '%' && i+2 < len(s):
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			dst, pending = flushSurrogate(dst, pending), -1
			if ok1 && ok2 {
				dst = append(dst, hi<<4|lo)
				i += 2
			} else {
				dst = append(dst, c)
			}
		default:
			dst, pending = flushSurrogate(dst, pending), -1
			dst = append(dst, c)
		}
	}
	return flushSurrogate(dst, pending)
}

// flushSurrogate writes a lone high surrogate, if one is pending, as U+FFFD.
func flushSurrogate(dst []byte, pending rune) []byte {
	if pending >= 0 {
		dst = utf8.AppendRune(dst, utf8.RuneError)
	}
	return dst
}

// Key returns the item key the service derives from a raw request target
// (REF StateApplication.CreateKey): one "/" is dropped from a leading "//",
// then the target is URL-decoded. Keys compare ordinally, so "%2fa%2fb",
// "%2Fa%2Fb" and "/a/b" name one item while "ABC" and "abc" do not.
func Key(target string) string {
	if strings.HasPrefix(target, "//") {
		target = target[1:]
	}
	return URLDecode(target)
}

// AppendKey appends Key(target) to dst without allocating beyond dst's growth.
func AppendKey(dst []byte, target string) []byte {
	if strings.HasPrefix(target, "//") {
		target = target[1:]
	}
	return AppendURLDecode(dst, target)
}

// sessionAlphabet is the base32 alphabet of System.Web.SessionState.SessionId.
const sessionAlphabet = "abcdefghijklmnopqrstuvwxyz012345"

// NewSessionID returns a session id shaped like the ASP.NET default: 24
// characters from [a-z0-5] carrying 120 random bits read from rnd.
func NewSessionID(rnd io.Reader) (string, error) {
	var raw [15]byte
	if _, err := io.ReadFull(rnd, raw[:]); err != nil {
		return "", err
	}
	return EncodeSessionID(raw), nil
}

// EncodeSessionID encodes 15 bytes (120 bits) as a 24-character session id.
func EncodeSessionID(raw [15]byte) string {
	var out [24]byte
	for i := 0; i < 3; i++ {
		// 5 bytes → 8 characters, as SessionId.Encode does.
		v := uint64(raw[5*i])<<32 | uint64(raw[5*i+1])<<24 | uint64(raw[5*i+2])<<16 |
			uint64(raw[5*i+3])<<8 | uint64(raw[5*i+4])
		for j := 7; j >= 0; j-- {
			out[8*i+j] = sessionAlphabet[v&31]
			v >>= 5
		}
	}
	return string(out[:])
}
