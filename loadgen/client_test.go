package loadgen

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/servers/stateserver"
)

func TestVersionCheckQuirk(t *testing.T) {
	cfg := stateserver.DefaultConfig()
	cfg.OmitVersion = true // KB 2836759: no X-AspNet-Version
	tg := startCustom(t, cfg)
	pc := newPartClient(newPool(tg.Addr, time.Hour, nil), true, 10*time.Second)
	defer pc.pool.close()
	ctx := context.Background()
	head := func(ctx context.Context, c *protocol.Conn) (*protocol.Reply, error) { return c.ResetTimeout(ctx, "q") }
	bad := func(ctx context.Context, c *protocol.Conn) (*protocol.Reply, error) {
		return c.Set(ctx, "q", nil, protocol.SetParams{Timeout: -5}) // 400
	}
	kind := func(err error) string {
		var pe *pageError
		if errors.As(err, &pe) {
			return pe.kind
		}
		return ""
	}
	rec := &pageRecord{}
	// A 400 on the first request throws before the version is stored.
	if _, err := pc.call(ctx, rec, opIn(protocol.OpSet, "k"), time.Now(), bad); kind(err) != ErrBadRequest || pc.version.Load() != -1 {
		t.Fatalf("first request 400: %v, version %d; want bad-request and -1", err, pc.version.Load())
	}
	// The next request checks: no header → major 0 → Need_v2_State_Server.
	_, err := pc.call(ctx, rec, opIn(protocol.OpResetTimeout, "k"), time.Now(), head)
	if kind(err) != ErrNeedV2 || err.Error() != ErrNeedV2+": "+NeedV2Message {
		t.Fatalf("first checked request: %v, want %s", err, ErrNeedV2)
	}
	if pc.version.Load() != 0 {
		t.Fatalf("version %d after the check, want 0 stored", pc.version.Load())
	}
	// Later requests proceed: the check never runs again.
	for i := 0; i < 3; i++ {
		if _, err := pc.call(ctx, rec, opIn(protocol.OpResetTimeout, "k"), time.Now(), head); err != nil {
			t.Fatalf("request %d after the failed check: %v", i+2, err)
		}
	}
	// A recycle resets the state: the first request fails again.
	pc.reset()
	if _, err := pc.call(ctx, rec, opIn(protocol.OpResetTimeout, "k"), time.Now(), head); kind(err) != ErrNeedV2 {
		t.Fatalf("first request after a recycle: %v", err)
	}
	// A server with the header passes the check and stores the major.
	tg2, _ := startServer(t, 0)
	pc2 := newPartClient(newPool(tg2.Addr, time.Hour, nil), true, 10*time.Second)
	defer pc2.pool.close()
	if _, err := pc2.call(ctx, rec, opIn(protocol.OpResetTimeout, "k"), time.Now(), head); err != nil || pc2.version.Load() != 4 {
		t.Fatalf("reference server: %v, version %d; want ok and 4", err, pc2.version.Load())
	}
}
