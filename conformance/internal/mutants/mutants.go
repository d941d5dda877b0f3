package mutants

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aspstate/aspstate/protocol"
)

// Mutant is the reference server with one rule broken.
type Mutant struct {
	// Name identifies the mutant (lowercase, dashes).
	Name string
	// Breaks says what is broken, in one line.
	Breaks string
	// Catch lists the rules designed to catch the mutant: the suite must fail
	// each of them (others may fail too).
	Catch []string

	handle            func(x *ex) ([]byte, error) // nil = forward unchanged
	closeAfterReply   bool
	hangOnUnknownVerb bool
	crAtReadEnd       bool // answer 400 and close when a read ends with CR
	keepClosed        bool // never close a connection the client closed
}

// Identity is the control: a proxy that rewrites nothing. The suite must
// pass through it (only rules that need an in-process or restartable target
// are skipped).
func Identity() Mutant {
	return Mutant{Name: "identity", Breaks: "nothing (control: the proxy is transparent)"}
}

// All returns every mutant, in a fixed order.
func All() []Mutant {
	return []Mutant{
		{Name: "no-version-header", Breaks: "X-AspNet-Version is never sent (enableVersionHeader=false, KB 2836759)",
			Catch:  []string{"2.2.3.4-version-header", "2.2.3.4-first-request"},
			handle: replies(func(x *ex, r *protocol.Response) { r.Header = without(r.Header, protocol.HeaderVersion) })},
		{Name: "http-status-prefix", Breaks: `status lines start with "HTTP/1.1 " (the spec's examples)`,
			Catch: []string{"2.2.4-status-line"},
			handle: func(x *ex) ([]byte, error) {
				out, err := forward(x)
				if err != nil {
					return nil, err
				}
				return append([]byte("HTTP/1.1 "), out...), nil
			}},
		{Name: "lock-never-locks", Breaks: "an acquire answers 200 with a cookie but leaves the item unlocked",
			Catch: []string{"2.2.3.6-acquire-lowercase", "3.1.5.1-get-locked", "3.1.5.2-acquire-locked"},
			handle: func(x *ex) ([]byte, error) {
				out, err := forward(x)
				if err != nil || protocol.OpOf(x.req) != protocol.OpGetExclusive || x.resp.Status != 200 {
					return out, err
				}
				if c, ok := cookie(x.resp.Header); ok {
					if _, err := x.side(protocol.NewReleaseExclusiveRequest(protocol.DefaultHost, x.req.Target, c)); err != nil {
						return nil, err
					}
				}
				return out, nil
			}},
		{Name: "first-cookie-one", Breaks: "the first lock cookie is 1 (the spec's example) instead of 2",
			Catch: []string{"2.2.3.9-first-cookie", "3.1.5.3-new-ignores-cookie", "c.2-9-absent"},
			handle: func(x *ex) ([]byte, error) {
				if c, ok := cookie(x.req.Header); ok && c >= 0 {
					x.req.Header = set(x.req.Header, protocol.HeaderLockCookie, itoa(c+1))
				}
				return replies(func(x *ex, r *protocol.Response) {
					if c, ok := cookie(r.Header); ok {
						r.Header = set(r.Header, protocol.HeaderLockCookie, itoa(c-1))
					}
				})(x)
			}},
		{Name: "cookie-constant", Breaks: "every lock gets cookie 2: the cookie never increments",
			Catch: []string{"2.2.3.9-cookie-increments", "3.1.5.4-force-release"},
			handle: func(x *ex) ([]byte, error) {
				x.st.mu.Lock()
				real, known := x.st.cookies[x.key]
				x.st.mu.Unlock()
				if c, ok := cookie(x.req.Header); ok && c == 2 && known {
					x.req.Header = set(x.req.Header, protocol.HeaderLockCookie, itoa(real))
				}
				return replies(func(x *ex, r *protocol.Response) {
					if c, ok := cookie(r.Header); ok {
						x.st.mu.Lock()
						x.st.cookies[x.key] = c
						x.st.mu.Unlock()
						r.Header = set(r.Header, protocol.HeaderLockCookie, "2")
					}
				})(x)
			}},
		{Name: "error-body-404", Breaks: `404 replies carry a "Not Found" body`,
			Catch: []string{"2.2.4.3-get-missing", "2.2.5.2-no-error-bodies"},
			handle: replies(func(x *ex, r *protocol.Response) {
				if r.Status == 404 {
					r.Body = []byte("Not Found")
				}
			})},
		{Name: "no-keepalive", Breaks: "the connection is closed after every reply",
			Catch: []string{"2.1-keepalive"}, closeAfterReply: true},
		{Name: "no-sliding-get", Breaks: "only PUT and HEAD reset the expiry (the spec's literal reading); GETs do not",
			Catch:  []string{"3.1.5.3-get-extends", "3.1.5.1-423-extends"},
			handle: noSliding(protocol.OpResetTimeout)},
		{Name: "never-expires", Breaks: "items never expire",
			Catch:  []string{"3.1.5.3-expiry"},
			handle: neverExpires},
		{Name: "actionflags-zero", Breaks: `replies without the flag say "ActionFlags: 0"`,
			Catch: []string{"2.2.3.12-never-zero"},
			handle: replies(func(x *ex, r *protocol.Response) {
				if !r.Header.Has(protocol.HeaderActionFlags) && len(r.Header) > 0 {
					r.Header = append(r.Header[:1:1], append(protocol.Header{{Name: protocol.HeaderActionFlags, Value: "0"}}, r.Header[1:]...)...)
				}
			})},
		{Name: "actionflags-never", Breaks: "ActionFlags: 1 is never sent after an uninitialized create",
			Catch:  []string{"2.2.3.11-uninit-create", "c.1-2-actionflags-first-reply"},
			handle: replies(func(x *ex, r *protocol.Response) { r.Header = without(r.Header, protocol.HeaderActionFlags) })},
		{Name: "header-order-swapped", Breaks: "acquire replies put Timeout before LockCookie",
			Catch: []string{"2.2.4-header-order"},
			handle: replies(func(x *ex, r *protocol.Response) {
				i, j := index(r.Header, protocol.HeaderLockCookie), index(r.Header, protocol.HeaderTimeout)
				if i >= 0 && j >= 0 {
					r.Header[i], r.Header[j] = r.Header[j], r.Header[i]
				}
			})},
		{Name: "content-length-early", Breaks: "Content-Length comes before Cache-Control instead of last",
			Catch: []string{"2.2.4-header-order"},
			handle: func(x *ex) ([]byte, error) {
				if _, err := forward(x); err != nil {
					return nil, err
				}
				r := x.resp
				b := protocol.AppendStatusLine(nil, r.Status, r.Reason)
				for _, f := range r.Header {
					switch {
					case strings.EqualFold(f.Name, protocol.HeaderContentLength):
					case strings.EqualFold(f.Name, protocol.HeaderCacheControl):
						b = protocol.AppendHeaderInt(b, protocol.HeaderContentLength, int64(len(r.Body)))
						b = protocol.AppendField(b, f)
					default:
						b = protocol.AppendField(b, f)
					}
				}
				b = append(b, '\r', '\n')
				return append(b, r.Body...), nil
			}},
		{Name: "locked-no-lockage", Breaks: "423 replies have no LockAge",
			Catch: []string{"2.2.4.4-locked-headers", "2.2.3.10-lockage-grows"},
			handle: replies(func(x *ex, r *protocol.Response) {
				if r.Status == 423 {
					r.Header = without(r.Header, protocol.HeaderLockAge)
				}
			})},
		{Name: "release-ignores-cookie", Breaks: "a release unlocks whatever cookie it carries",
			Catch:  []string{"3.1.5.4-release-wrong", "c.1-5-release-mismatch"},
			handle: useHolderCookie(protocol.OpReleaseExclusive)},
		{Name: "delete-ignores-lock", Breaks: "DELETE removes a locked item whatever its cookie",
			Catch:  []string{"3.1.5.5-delete-wrong", "c.3-3-locked-mismatch"},
			handle: useHolderCookie(protocol.OpRemove)},
		{Name: "put-ignores-lock", Breaks: "PUT replaces a locked item whatever its cookie",
			Catch:  []string{"3.1.5.3-put-locked-nocookie", "3.1.5.3-put-locked-wrongcookie"},
			handle: useHolderCookie(protocol.OpSet)},
		{Name: "key-not-decoded", Breaks: "the request target is used as the key without URL-decoding",
			Catch: []string{"2.2.3.13-key-decoding", "2.2.5.1-leading-slash", "2.2.3.13-double-slash"},
			handle: func(x *ex) ([]byte, error) {
				x.req.Target = strings.NewReplacer("%", "%25", "+", "%2b").Replace(x.req.Target)
				return forward(x)
			}},
		{Name: "timeout-remaining", Breaks: "GET reports the whole minutes remaining instead of the configured Timeout",
			Catch:  []string{"2.2.3.5-timeout-echo"},
			handle: timeoutRemaining},
		{Name: "timeout-unbounded", Breaks: "Timeout above 525600 is accepted (capped) instead of refused with 400",
			Catch: []string{"2.2.3.5-timeout-max"},
			handle: func(x *ex) ([]byte, error) {
				if v, ok := x.req.Header.Get(protocol.HeaderTimeout); ok && x.req.Method == protocol.MethodPut {
					if n, ok := protocol.ParseInt32(v); ok && n > protocol.MaxTimeout {
						x.req.Header = set(x.req.Header, protocol.HeaderTimeout, itoa(protocol.MaxTimeout))
					}
				}
				return forward(x)
			}},
		{Name: "no-sliding-lock", Breaks: "acquires and releases do not slide the expiry (only PUT, HEAD and plain GETs do)",
			Catch:  []string{"3.1.5.2-acquire-release-extend"},
			handle: noSliding(protocol.OpResetTimeout, protocol.OpGet)},
		{Name: "version-in-key", Breaks: `a request line's version token other than HTTP/1.1 becomes part of the key ("k HTTP/1.0")`,
			Catch: []string{"2.2.5.1-version-token"},
			handle: func(x *ex) ([]byte, error) {
				if x.req.Proto != "HTTP/1.1" {
					x.req.Target += "%20" + strings.ReplaceAll(x.req.Proto, "/", "%2f")
				}
				return forward(x)
			}},
		{Name: "crlf-split-400", Breaks: "a read that ends between a line's CR and LF is taken for a malformed line: 400 and close",
			Catch: []string{"2.2.2.3-crlf-split"}, crAtReadEnd: true},
		{Name: "keeps-closed-connections", Breaks: "a connection the client closed is never closed by the server (CLOSE-WAIT until shutdown)",
			Catch: []string{"2.1-close-after-fin"}, keepClosed: true},
		{Name: "lenient-numbers", Breaks: `Timeout, ExtraFlags and LockCookie are parsed leniently ("abc" is 0, "-1" is 1, "2147483648" is 2147483647)`,
			Catch:  []string{"c.1-numbers", "c.2-numbers", "2.2.3.5-timeout-nonnumeric"},
			handle: lenientNumbers},
		{Name: "unknown-verb-hangs", Breaks: "a request with an unknown verb is neither answered nor closed: the connection hangs",
			Catch: []string{"robustness-unknown-verb", "c.5-1-unknown-verb", "3.1.5.1-badrequest-verb"}, hangOnUnknownVerb: true},
	}
}

// replies forwards the request and lets f edit the reply before it is written.
func replies(f func(x *ex, r *protocol.Response)) func(x *ex) ([]byte, error) {
	return func(x *ex) ([]byte, error) {
		if _, err := forward(x); err != nil {
			return nil, err
		}
		f(x, x.resp)
		return x.resp.Bytes(), nil
	}
}

// useHolderCookie rewrites op's LockCookie to the current holder's cookie
// (learned with a plain GET), so the request never meets a 423.
func useHolderCookie(op protocol.Op) func(x *ex) ([]byte, error) {
	return func(x *ex) ([]byte, error) {
		flags, _ := x.req.Header.Get(protocol.HeaderExtraFlags)
		if protocol.OpOf(x.req) == op && flags != "1" {
			r, err := x.side(protocol.NewGetRequest(protocol.DefaultHost, x.req.Target))
			if err != nil {
				return nil, err
			}
			if c, ok := cookie(r.Header); ok && r.Status == 423 {
				x.req.Header = set(x.req.Header, protocol.HeaderLockCookie, itoa(c))
			}
		}
		return forward(x)
	}
}

// noSliding returns a handler emulating a server that expires items a
// Timeout after the last PUT or request of one of the slides ops answered
// 200 or 423, whatever other requests happened in between.
func noSliding(slides ...protocol.Op) func(x *ex) ([]byte, error) {
	return func(x *ex) ([]byte, error) {
		op := protocol.OpOf(x.req)
		now := time.Now()
		x.st.mu.Lock()
		rec, known := x.st.items[x.key]
		expired := known && rec.timeout > 0 && now.After(rec.lastSet.Add(time.Duration(rec.timeout)*x.st.minute))
		if expired {
			delete(x.st.items, x.key)
		}
		x.st.mu.Unlock()
		if expired && op != protocol.OpSet {
			r, err := x.side(protocol.NewGetRequest(protocol.DefaultHost, x.req.Target))
			if err != nil {
				return nil, err
			}
			c, _ := cookie(r.Header)
			if _, err := x.side(protocol.NewRemoveRequest(protocol.DefaultHost, x.req.Target, c)); err != nil {
				return nil, err
			}
			nf := &protocol.Response{Status: 404, Header: protocol.Header{
				{Name: protocol.HeaderVersion, Value: protocol.DefaultVersion},
				{Name: protocol.HeaderCacheControl, Value: protocol.CacheControlPrivate}}}
			return nf.Bytes(), nil
		}
		out, err := forward(x)
		if err != nil {
			return nil, err
		}
		x.st.mu.Lock()
		defer x.st.mu.Unlock()
		switch st := x.resp.Status; {
		case op == protocol.OpSet && st == 200:
			rec := x.st.item(x.key)
			rec.timeout = requestTimeout(x.req)
			rec.lastSet = now
		case op == protocol.OpRemove && st == 200:
			delete(x.st.items, x.key)
		case slices.Contains(slides, op) && (st == 200 || st == 423):
			if rec, ok := x.st.items[x.key]; ok {
				rec.lastSet = now
			}
		}
		return out, nil
	}
}

// lenientNumbers rewrites Timeout, ExtraFlags and LockCookie values that are
// not Int32 values, or negative, the way a lenient parser reads them: the
// leading digits (sign dropped), 0 when there are none, clamped to Int32.
func lenientNumbers(x *ex) ([]byte, error) {
	for _, name := range []string{protocol.HeaderTimeout, protocol.HeaderExtraFlags, protocol.HeaderLockCookie} {
		v, ok := x.req.Header.Get(name)
		if !ok {
			continue
		}
		if n, ok := protocol.ParseInt32(v); ok && n >= 0 {
			continue
		}
		digits := strings.TrimLeft(v, "+- ")
		end := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
		if end >= 0 {
			digits = digits[:end]
		}
		n, err := strconv.ParseInt(digits, 10, 64)
		if err != nil && digits != "" {
			n = math.MaxInt32
		}
		x.req.Header = set(x.req.Header, name, itoa(int32(min(n, math.MaxInt32))))
	}
	return forward(x)
}

// neverExpires stores every item with Timeout 0 upstream and reports the
// Timeout the client asked for.
func neverExpires(x *ex) ([]byte, error) {
	if x.req.Method == protocol.MethodPut {
		if t := requestTimeout(x.req); t >= 0 {
			x.st.mu.Lock()
			x.st.item(x.key).timeout = t
			x.st.mu.Unlock()
			x.req.Header = set(x.req.Header, protocol.HeaderTimeout, "0")
		}
	}
	return replies(func(x *ex, r *protocol.Response) {
		if v, ok := r.Header.Get(protocol.HeaderTimeout); ok && v == "0" {
			x.st.mu.Lock()
			if rec, ok := x.st.items[x.key]; ok {
				r.Header = set(r.Header, protocol.HeaderTimeout, itoa(rec.timeout))
			}
			x.st.mu.Unlock()
		}
	})(x)
}

// timeoutRemaining reports floor(minutes until expiry) in GET replies, as
// a reimplementation that echoes the remaining time would.
func timeoutRemaining(x *ex) ([]byte, error) {
	now := time.Now()
	x.st.mu.Lock()
	var remaining int32 = -1
	if rec, ok := x.st.items[x.key]; ok && rec.timeout > 0 {
		left := rec.lastTouch.Add(time.Duration(rec.timeout) * x.st.minute).Sub(now)
		remaining = int32(left / x.st.minute)
	}
	x.st.mu.Unlock()
	out, err := replies(func(x *ex, r *protocol.Response) {
		if r.Header.Has(protocol.HeaderTimeout) && remaining >= 0 {
			r.Header = set(r.Header, protocol.HeaderTimeout, itoa(remaining))
		}
	})(x)
	if err != nil {
		return nil, err
	}
	x.st.mu.Lock()
	defer x.st.mu.Unlock()
	if x.req.Method == protocol.MethodPut && x.resp.Status == 200 {
		x.st.item(x.key).timeout = requestTimeout(x.req)
	}
	if rec, ok := x.st.items[x.key]; ok && x.resp.Status != 404 {
		rec.lastTouch = now
	}
	return out, nil
}

// requestTimeout returns a PUT's Timeout (20 when absent, -1 when invalid).
func requestTimeout(req *protocol.Request) int32 {
	v, ok := req.Header.Get(protocol.HeaderTimeout)
	if !ok {
		return protocol.DefaultTimeout
	}
	n, ok := protocol.ParseInt32(v)
	if !ok || n < 0 || n > protocol.MaxTimeout {
		return -1
	}
	return n
}

func cookie(h protocol.Header) (int32, bool) {
	v, ok := h.Get(protocol.HeaderLockCookie)
	if !ok {
		return 0, false
	}
	return protocol.ParseInt32(v)
}

func index(h protocol.Header, name string) int {
	for i, f := range h {
		if strings.EqualFold(f.Name, name) {
			return i
		}
	}
	return -1
}

func without(h protocol.Header, name string) protocol.Header {
	out := h[:0:0]
	for _, f := range h {
		if !strings.EqualFold(f.Name, name) {
			out = append(out, f)
		}
	}
	return out
}

// set replaces the value of name (keeping its position and spelling) or
// appends it in the client's spelling.
func set(h protocol.Header, name, value string) protocol.Header {
	if i := index(h, name); i >= 0 {
		h[i].Value = value
		return h
	}
	return append(h, protocol.Field{Name: name, Value: value, Tight: true})
}

func itoa(n int32) string { return strconv.FormatInt(int64(n), 10) }
