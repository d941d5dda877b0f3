package target

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aspstate/aspstate/servers/stateserver"
)

// inProc is the reference server running in this process.
type inProc struct {
	spec Spec
	cfg  stateserver.Config

	mu  sync.Mutex
	srv *stateserver.Server
}

func startInProc(ctx context.Context, spec Spec, opts Options) (*inProc, error) {
	cfg := stateserver.DefaultConfig()
	if opts.Server != nil {
		cfg = *opts.Server
	} else {
		cfg.Listen = "127.0.0.1:0"
	}
	if opts.Minute > 0 {
		cfg.Minute = opts.Minute
	}
	srv, err := stateserver.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("target inproc: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("target inproc: %w", err)
	}
	spec.Kind = KindInProc
	return &inProc{spec: spec, cfg: cfg, srv: srv}, nil
}

func (t *inProc) Addr() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.srv.Addr()
}

func (t *inProc) Info() Info {
	desc := "aspstate reference server (in-process)"
	if t.cfg.Minute != time.Minute {
		desc += fmt.Sprintf(", one protocol minute = %v", t.cfg.Minute)
	}
	return Info{Spec: KindInProc, Kind: KindInProc, Addr: t.Addr(), Description: desc}
}

// Server returns the running reference server.
func (t *inProc) Server() *stateserver.Server {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.srv
}

func (t *inProc) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.srv.Shutdown(ctx); err != nil {
		return t.srv.Close()
	}
	return nil
}

// Restart stops the server gracefully (in-flight requests finish, for up to
// 2 s) and starts a fresh one, on the same address when it is free. Sessions
// are lost, as on Microsoft's service.
func (t *inProc) Restart(ctx context.Context) error {
	return t.restart(ctx, false)
}

// Kill stops the server at once (connections dropped mid-request) and starts
// a fresh one.
func (t *inProc) Kill(ctx context.Context) error {
	return t.restart(ctx, true)
}

func (t *inProc) restart(ctx context.Context, hard bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	addr := t.srv.Addr()
	if hard {
		_ = t.srv.Close()
	} else {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := t.srv.Shutdown(sctx); err != nil {
			_ = t.srv.Close()
		}
		cancel()
	}
	cfg := t.cfg
	cfg.Listen = addr
	srv, err := stateserver.New(cfg)
	if err != nil {
		return err
	}
	// The old listener's port may linger briefly; retry, then fall back to a new port.
	deadline := time.Now().Add(2 * time.Second)
	for {
		err = srv.Start()
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			cfg.Listen = "127.0.0.1:0"
			if srv, err = stateserver.New(cfg); err != nil {
				return err
			}
			if err = srv.Start(); err != nil {
				return fmt.Errorf("target inproc: restart: %w", err)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
		if srv, err = stateserver.New(cfg); err != nil {
			return err
		}
	}
	t.srv = srv
	return nil
}

// Pause holds every request unanswered until Resume.
func (t *inProc) Pause(ctx context.Context) error {
	t.Server().Pause()
	return nil
}

// Resume answers held requests again.
func (t *inProc) Resume(ctx context.Context) error {
	t.Server().Resume()
	return nil
}
