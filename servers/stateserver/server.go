// Package stateserver is the aspstate reference ASP.NET State Server: an
// in-memory session store that speaks [MS-ASP] over TCP exactly as
// Microsoft's aspnet_state service does (PROTOCOL.md c.1–c.5 and d), with
// locks, sliding expiry on a scalable time base, listener policy
// (loopback/remote/CIDR), limits, counters like the Windows service and a
// Prometheus endpoint.
package stateserver

import (
	"context"
	"errors"
	"net"
)

// Server is a running (or ready to run) reference state server.
type Server struct {
	cfg Config
}

// New validates cfg and returns a Server that has not started yet.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg.withDefaults()}, nil
}

// Start binds cfg.Listen (and MetricsListen) and serves in the background.
func (s *Server) Start() error { return errors.New("stateserver: not implemented yet") }

// Serve accepts connections on ln until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error { return errors.New("stateserver: not implemented yet") }

// Addr returns the bound address once Start or Serve began.
func (s *Server) Addr() string { return "" }

// Shutdown stops accepting, lets in-flight requests finish and closes connections.
func (s *Server) Shutdown(ctx context.Context) error { return nil }

// Close closes the listeners and every connection at once.
func (s *Server) Close() error { return nil }

// Pause holds every request unanswered until Resume.
func (s *Server) Pause() {}

// Resume answers held requests and lets new ones through.
func (s *Server) Resume() {}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats { return Stats{} }

// Stats is a snapshot of the server's counters.
type Stats struct {
	SessionsActive     int64          // items in the store (expired ones count until scavenged, like the Windows counter)
	SessionsTotal      int64          // items created (PUT on an absent key)
	SessionsAbandoned  int64          // items removed by DELETE
	SessionsTimedOut   int64          // items removed by expiry
	ConnectionsActive  int64          // open connections
	ConnectionsTotal   int64          // accepted connections (refused ones excluded)
	ConnectionsRefused int64          // connections closed at once: remote peer not allowed or MaxConns reached
	Malformed          int64          // requests answered 400 and closed because their bytes were malformed
	Requests           []RequestCount // by op and status, sorted by op then status; zero counts omitted
}

// RequestCount is the number of replies of one status to one kind of request.
type RequestCount struct {
	Op     string // protocol.Op name (get, get-exclusive, release, set, remove, reset-timeout) or "unknown"
	Status int
	Count  int64
}
