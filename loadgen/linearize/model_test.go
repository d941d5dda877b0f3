package linearize

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/aspstate/aspstate/protocol"
)

const key = "%2fLM%2fW3SVC%2f1%2fROOT(x)%2fs1"

var (
	empty = BodyOf([]byte{20, 0, 0, 0, 0, 0, 0xFF}, "empty")
	v1    = BodyOf([]byte("one"), "v1")
	v2    = BodyOf([]byte("two"), "v2")
)

// history builds hand-written histories.
type history struct{ ops []porcupine.Operation }

func (h *history) add(client int, call, ret int64, in Input, out Output) *history {
	in.Key = key
	in.Call = call
	out.Return = ret
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret})
	return h
}

// Inputs as loadgen sends them.
func create() Input {
	return Input{Op: protocol.OpSet, Body: empty, Timeout: 20, HasTimeout: true, Flags: 1, HasCookie: true}
}
func set(b Body, cookie int32) Input {
	return Input{Op: protocol.OpSet, Body: b, Timeout: 20, HasTimeout: true, Cookie: cookie, HasCookie: true}
}
func acquire() Input { return Input{Op: protocol.OpGetExclusive} }
func get() Input     { return Input{Op: protocol.OpGet} }
func head() Input    { return Input{Op: protocol.OpResetTimeout} }
func release(c int32) Input {
	return Input{Op: protocol.OpReleaseExclusive, Cookie: c, HasCookie: true}
}
func remove(c int32) Input       { return Input{Op: protocol.OpRemove, Cookie: c, HasCookie: true} }
func status(code int) Output     { return Output{Status: code} }
func locked(cookie int32) Output { return Output{Status: 423, Cookie: cookie, HasCookie: true} }
func lost() Output               { return Output{Indeterminate: true, Err: "timeout"} }
func read(b Body) Output {
	return Output{Status: 200, Timeout: 20, HasTimeout: true, Body: b, HasBody: true}
}
func acquired(cookie int32, b Body, flags int32) Output {
	o := read(b)
	o.Cookie, o.HasCookie, o.ActionFlags = cookie, true, flags
	return o
}

func check(t *testing.T, cfg Config, h *history) porcupine.CheckResult {
	t.Helper()
	return porcupine.CheckOperationsTimeout(NewModel(cfg), h.ops, 10*time.Second)
}

func TestModelHistories(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		h    *history
		want porcupine.CheckResult
	}{
		{"sequential page flow", Config{}, new(history).
			add(0, 0, 1, acquire(), status(404)).
			add(0, 2, 3, create(), status(200)).
			add(0, 4, 5, acquire(), acquired(2, empty, 1)).
			add(0, 6, 7, set(v1, 2), status(200)).
			add(0, 8, 9, acquire(), acquired(3, v1, 0)).
			add(0, 10, 11, release(3), status(200)).
			add(0, 12, 13, get(), read(v1)).
			add(0, 14, 15, head(), status(200)).
			add(0, 16, 17, acquire(), acquired(4, v1, 0)).
			add(0, 18, 19, remove(4), status(200)).
			add(0, 20, 21, get(), status(404)), porcupine.Ok},
		{"two acquires granted without a release", Config{}, new(history).
			add(0, 0, 1, create(), status(200)).
			add(1, 10, 20, acquire(), acquired(2, empty, 1)).
			add(2, 30, 40, acquire(), acquired(3, empty, 0)), porcupine.Illegal},
		{"second acquire overlaps the release", Config{}, new(history).
			add(0, 0, 1, create(), status(200)).
			add(1, 10, 20, acquire(), acquired(2, empty, 1)).
			add(1, 25, 60, release(2), status(200)).
			add(2, 30, 40, acquire(), acquired(3, empty, 0)), porcupine.Ok},
		{"waiter sees the holder's cookie", Config{}, new(history).
			add(0, 0, 1, create(), status(200)).
			add(1, 10, 20, acquire(), acquired(2, empty, 1)).
			add(2, 30, 40, acquire(), locked(2)).
			add(2, 41, 42, get(), locked(2)).
			add(1, 50, 60, set(v1, 2), status(200)).
			add(2, 70, 80, acquire(), acquired(3, v1, 0)), porcupine.Ok},
		{"423 with another cookie than the holder's", Config{}, new(history).
			add(0, 0, 1, create(), status(200)).
			add(1, 10, 20, acquire(), acquired(2, empty, 1)).
			add(2, 30, 40, acquire(), locked(3)), porcupine.Illegal},
		{"first cookie is 1", Config{}, new(history).
			add(0, 0, 1, create(), status(200)).
			add(1, 10, 20, acquire(), acquired(1, empty, 1)), porcupine.Illegal},
		{"cookie does not increment", Config{}, new(history).
			add(0, 0, 1, create(), status(200)).
			add(1, 10, 20, acquire(), acquired(2, empty, 1)).
			add(1, 21, 22, release(2), status(200)).
			add(1, 30, 40, acquire(), acquired(2, empty, 0)), porcupine.Illegal},
		{"PUT with a wrong cookie on a locked item answered 200", Config{}, new(history).
			add(0, 0, 1, create(), status(200)).
			add(1, 10, 20, acquire(), acquired(2, empty, 1)).
			add(2, 30, 40, set(v2, 7), status(200)), porcupine.Illegal},
		{"PUT with a wrong cookie on a locked item answered 423", Config{}, new(history).
			add(0, 0, 1, create(), status(200)).
			add(1, 10, 20, acquire(), acquired(2, empty, 1)).
			add(2, 30, 40, set(v2, 7), locked(2)).
			add(1, 50, 60, get(), locked(2)), porcupine.Ok},
		{"stale holder's PUT lands on an unlocked item (c.2 #7)", Config{}, new(history).
			add(0, 0, 1, create(), status(200)).
			add(1, 10, 20, acquire(), acquired(2, empty, 1)).
			add(2, 30, 40, release(2), status(200)). // forced break
			add(1, 50, 60, set(v1, 2), status(200)).
			add(2, 70, 80, get(), read(v1)), porcupine.Ok},
		{"release with a wrong cookie answered 200", Config{}, new(history).
			add(0, 0, 1, create(), status(200)).
			add(1, 10, 20, acquire(), acquired(2, empty, 1)).
			add(2, 30, 40, release(9), status(200)), porcupine.Illegal},
		{"release of an unlocked item is a no-op 200", Config{}, new(history).
			add(0, 0, 1, create(), status(200)).
			add(1, 10, 20, release(9), Output{Status: 200, ActionFlags: 1}).
			add(1, 30, 40, acquire(), acquired(2, empty, 0)), porcupine.Ok},
		{"DELETE with a wrong cookie on a locked item answered 200", Config{}, new(history).
			add(0, 0, 1, create(), status(200)).
			add(1, 10, 20, acquire(), acquired(2, empty, 1)).
			add(2, 30, 40, remove(5), status(200)), porcupine.Illegal},
		{"DELETE of an unlocked item ignores the cookie", Config{}, new(history).
			add(0, 0, 1, create(), status(200)).
			add(2, 30, 40, remove(5), status(200)).
			add(2, 50, 60, get(), status(404)), porcupine.Ok},
		{"create on an existing locked item is a no-op", Config{}, new(history).
			add(0, 0, 1, set(v1, 0), status(200)).
			add(1, 10, 20, acquire(), acquired(2, v1, 0)).
			add(2, 30, 40, create(), status(200)).
			add(1, 50, 60, set(v2, 2), status(200)).
			add(2, 70, 80, get(), read(v2)), porcupine.Ok},
		{"read of an overwritten version", Config{}, new(history).
			add(0, 0, 1, set(v1, 0), status(200)).
			add(0, 10, 20, set(v2, 0), status(200)).
			add(1, 30, 40, get(), read(v1)), porcupine.Illegal},
		{"read concurrent with the write", Config{}, new(history).
			add(0, 0, 1, set(v1, 0), status(200)).
			add(0, 10, 20, set(v2, 0), status(200)).
			add(1, 5, 15, get(), read(v1)), porcupine.Ok},
		{"ActionFlags on two replies", Config{}, new(history).
			add(0, 0, 1, create(), status(200)).
			add(1, 10, 20, get(), Output{Status: 200, Timeout: 20, HasTimeout: true, Body: empty, HasBody: true, ActionFlags: 1}).
			add(1, 30, 40, acquire(), acquired(2, empty, 1)), porcupine.Illegal},
		{"ActionFlags missing after an uninitialized create", Config{}, new(history).
			add(0, 0, 1, create(), status(200)).
			add(1, 10, 20, acquire(), acquired(2, empty, 0)), porcupine.Illegal},
		{"timed-out acquire took the lock", Config{}, new(history).
			add(0, 0, 1, create(), status(200)).
			add(1, 10, Infinity, acquire(), lost()).
			add(2, 30, 40, acquire(), locked(2)), porcupine.Ok},
		{"timed-out acquire never arrived", Config{}, new(history).
			add(0, 0, 1, create(), status(200)).
			add(1, 10, Infinity, acquire(), lost()).
			add(2, 30, 40, acquire(), acquired(2, empty, 1)), porcupine.Ok},
		{"a timed-out operation does not excuse a double grant", Config{}, new(history).
			add(0, 0, 1, create(), status(200)).
			add(1, 10, Infinity, release(2), lost()).
			add(2, 20, 25, acquire(), acquired(2, empty, 1)).
			add(3, 30, 40, acquire(), acquired(3, empty, 0)).
			add(3, 50, 60, acquire(), acquired(4, empty, 0)), porcupine.Illegal},
		{"timeout change resets the counter to the PUT's cookie (c.2 #8)", Config{}, new(history).
			add(0, 0, 1, set(v1, 0), status(200)).
			add(0, 2, 3, acquire(), acquired(2, v1, 0)).
			add(0, 4, 5, Input{Op: protocol.OpSet, Body: v2, Timeout: 7, HasTimeout: true, Cookie: 2, HasCookie: true}, status(200)).
			add(0, 6, 7, acquire(), Output{Status: 200, Timeout: 7, HasTimeout: true, Body: v2, HasBody: true, Cookie: 3, HasCookie: true}).
			add(0, 8, 9, release(3), status(200)).
			add(0, 10, 11, Input{Op: protocol.OpSet, Body: v1, Timeout: 9, HasTimeout: true}, status(200)).
			add(0, 12, 13, acquire(), Output{Status: 200, Timeout: 9, HasTimeout: true, Body: v1, HasBody: true, Cookie: 0, HasCookie: true}),
			porcupine.Ok},
		{"GET reports another timeout than configured", Config{}, new(history).
			add(0, 0, 1, set(v1, 0), status(200)).
			add(0, 2, 3, get(), Output{Status: 200, Timeout: 19, HasTimeout: true, Body: v1, HasBody: true}), porcupine.Illegal},
		{"404 before the timeout ran out", Config{Minute: time.Second}, new(history).
			add(0, 0, int64(time.Millisecond), set(v1, 0), status(200)).
			add(0, int64(10*time.Second), int64(10*time.Second+1), get(), status(404)), porcupine.Illegal},
		{"404 after the timeout ran out", Config{Minute: time.Second}, new(history).
			add(0, 0, int64(time.Millisecond), set(v1, 0), status(200)).
			add(0, int64(21*time.Second), int64(21*time.Second+1), get(), status(404)), porcupine.Ok},
		{"a GET slides the expiry", Config{Minute: time.Second}, new(history).
			add(0, 0, int64(time.Millisecond), set(v1, 0), status(200)).
			add(0, int64(15*time.Second), int64(15*time.Second+1), get(), read(v1)).
			add(0, int64(21*time.Second), int64(21*time.Second+1), get(), status(404)), porcupine.Illegal},
		{"without a minute items never expire", Config{}, new(history).
			add(0, 0, 1, set(v1, 0), status(200)).
			add(0, int64(time.Hour), int64(time.Hour+1), get(), status(404)), porcupine.Illegal},
		{"state lost in a restart window", Config{LostState: []Window{{From: 100, To: 200}}}, new(history).
			add(0, 0, 1, set(v1, 0), status(200)).
			add(0, 50, 60, get(), read(v1)).
			add(0, 300, 310, get(), status(404)), porcupine.Ok},
		{"state lost before the restart window", Config{LostState: []Window{{From: 100, To: 200}}}, new(history).
			add(0, 0, 1, set(v1, 0), status(200)).
			add(0, 50, 60, get(), status(404)), porcupine.Illegal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := check(t, c.cfg, c.h); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestCheckReportsAndVisualises(t *testing.T) {
	good := new(history).
		add(0, 0, 1, create(), status(200)).
		add(1, 10, 20, acquire(), acquired(2, empty, 1)).
		add(1, 25, 60, release(2), status(200)).
		add(2, 30, 40, acquire(), acquired(3, empty, 0)).
		add(3, 31, Infinity, get(), lost())
	bad := new(history).
		add(0, 0, 1, create(), status(200)).
		add(1, 10, 20, acquire(), acquired(2, empty, 1)).
		add(2, 30, 40, acquire(), acquired(3, empty, 0))
	var ops []porcupine.Operation
	ops = append(ops, good.ops...)
	for _, op := range bad.ops {
		in := op.Input.(Input)
		in.Key = "other"
		op.Input = in
		ops = append(ops, op)
	}
	path := t.TempDir() + "/lin/first.html"
	res, err := Check(context.Background(), ops, Options{VisualizationPath: path})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sessions != 2 || res.Operations != 8 || res.Indeterminate != 1 || res.Illegal != 1 || res.Unknown != 0 {
		t.Fatalf("result %+v", res)
	}
	if len(res.Failing) != 1 || res.Failing[0] != "other" {
		t.Fatalf("failing %v", res.Failing)
	}
	if len(res.Examples) != 1 || !strings.Contains(res.Examples[0], "acquire → 200 cookie 3") {
		t.Fatalf("examples %q", res.Examples)
	}
	b, err := os.ReadFile(res.Visualization)
	if err != nil || !strings.Contains(string(b), "acquire") {
		t.Fatalf("visualisation %s: %v", res.Visualization, err)
	}

	res, err = Check(context.Background(), good.ops, Options{VisualizationPath: t.TempDir() + "/none.html"})
	if err != nil || res.Illegal != 0 || res.Visualization != "" {
		t.Fatalf("good history: %+v, %v", res, err)
	}
	if _, err := Check(context.Background(), []porcupine.Operation{{Input: 1, Output: 2}}, Options{}); err == nil {
		t.Fatal("foreign input types accepted")
	}
}

// twins is a history with n timed-out acquires of one session, two of which
// took the lock (each broken later by a release with the cookie the 423
// showed), and a final acquire answered finalCookie.
func twins(n int, finalCookie int32) *history {
	h := new(history).add(0, 0, 1, create(), status(200))
	for i := 0; i < n; i++ {
		h.add(10+i, int64(10+i), Infinity, acquire(), lost())
	}
	return h.add(1, 100, 101, get(), locked(2)).
		add(1, 102, 103, release(2), status(200)).
		add(1, 104, 105, get(), locked(3)).
		add(1, 106, 107, release(3), status(200)).
		add(1, 108, 109, acquire(), acquired(finalCookie, empty, 0)).
		add(1, 110, 111, get(), locked(finalCookie))
}

func TestCheckOrdersIndeterminateTwins(t *testing.T) {
	for _, c := range []struct {
		cookie int32
		want   int
	}{{4, 0}, {5, 1}} {
		start := time.Now()
		res, err := Check(context.Background(), twins(14, c.cookie).ops, Options{SessionTimeout: 20 * time.Second})
		if err != nil || res.Illegal != c.want || res.Unknown != 0 || res.Indeterminate != 14 {
			t.Fatalf("final cookie %d: %+v, %v; want %d illegal", c.cookie, res, err, c.want)
		}
		t.Logf("final cookie %d: %d illegal, checked in %s", c.cookie, res.Illegal, time.Since(start).Round(time.Millisecond))
	}
	// Ranks are given in call order to twins only.
	h := twins(3, 4)
	h.add(99, 50, Infinity, release(2), lost())
	ops := renumberClients(h.ops)
	groupTwins(ops)
	var ranks []int
	for _, op := range ops {
		in := op.Input.(Input)
		if in.Op == protocol.OpGetExclusive && op.Return == Infinity {
			if in.Group != 1 {
				t.Fatalf("acquire twin in group %d", in.Group)
			}
			ranks = append(ranks, in.Rank)
		} else if in.Group != 0 {
			t.Fatalf("%s grouped", DescribeOperation(in, op.Output.(Output)))
		}
	}
	if len(ranks) != 3 || ranks[0] != 0 || ranks[1] != 1 || ranks[2] != 2 {
		t.Fatalf("ranks %v", ranks)
	}
}

func TestCheckTracksExpiryOnlyWhereObservable(t *testing.T) {
	s := int64(time.Second)
	for _, c := range []struct {
		at   int64
		want int
	}{{10 * s, 1}, {21 * s, 0}} {
		h := new(history).
			add(0, 0, 1, set(v1, 0), status(200)).
			add(0, c.at, c.at+1, get(), status(404))
		res, err := Check(context.Background(), h.ops, Options{Config: Config{Minute: time.Second}})
		if err != nil || res.Illegal != c.want {
			t.Fatalf("404 at %s: %+v, %v; want %d illegal", time.Duration(c.at), res, err, c.want)
		}
	}
	ops := new(history).add(0, 0, 1, set(v1, 0), status(200)).add(0, 5*s, 5*s+1, get(), read(v1)).ops
	if (Config{Minute: time.Second}).expiryObservable(ops) {
		t.Fatal("a 5 s history of a 20-minute item (1 s minute) tracks expiry")
	}
	if !(Config{Minute: time.Millisecond * 100}).expiryObservable(ops) {
		t.Fatal("a 5 s history of a 20-minute item (100 ms minute) does not track expiry")
	}
}
