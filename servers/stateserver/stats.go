package stateserver

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
)

// Stats is a snapshot of the server's counters. The session counters follow
// the Windows service's "ASP.NET" performance counters (PROTOCOL.md,
// Operations facts); replacements caused by a PUT that changes the timeout
// are not counted.
type Stats struct {
	SessionsActive     int64          // State Server Sessions Active: items in the store (expired ones count until scavenged)
	SessionsTotal      int64          // State Server Sessions Total: items created (PUT on an absent key)
	SessionsAbandoned  int64          // State Server Sessions Abandoned: items removed by DELETE
	SessionsTimedOut   int64          // State Server Sessions Timed Out: items removed by expiry
	ConnectionsActive  int64          // open connections
	ConnectionsTotal   int64          // accepted connections (refused ones excluded)
	ConnectionsRefused int64          // closed at once: remote peer not allowed, or MaxConns reached
	Held               int64          // requests read but held unanswered by Pause
	Malformed          int64          // requests answered 400 and closed because their bytes were malformed (also in Requests as op "unknown")
	Requests           []RequestCount // by op and status, in protocol.Ops order then status; zero counts omitted
}

// RequestCount is the number of replies of one status to one kind of request.
type RequestCount struct {
	Op     string // protocol.Op name (get, get-exclusive, release, set, remove, reset-timeout) or "unknown"
	Status int
	Count  int64
}

// RequestsTotal returns the number of requests answered.
func (st Stats) RequestsTotal() int64 {
	var n int64
	for _, r := range st.Requests {
		n += r.Count
	}
	return n
}

// RequestCount returns how many requests of op (a protocol.Op name or
// "unknown") were answered with status.
func (st Stats) RequestCount(op string, status int) int64 {
	for _, r := range st.Requests {
		if r.Op == op && r.Status == status {
			return r.Count
		}
	}
	return 0
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	var st Stats
	st.SessionsActive, st.SessionsTotal, st.SessionsAbandoned, st.SessionsTimedOut = s.store.sessionCounts()
	st.ConnectionsActive = s.connsActive.Load()
	st.ConnectionsTotal = s.connsTotal.Load()
	st.ConnectionsRefused = s.connsRefused.Load()
	st.Held = s.held.Load()
	var sum counts
	s.mu.Lock()
	s.retired.addTo(&sum)
	for c := range s.conns {
		c.n.addTo(&sum)
	}
	s.mu.Unlock()
	st.Malformed = sum.malformed.Load()
	for op := 1; op <= numOps; op++ {
		o := op % numOps // unknown (0) last
		for i, code := range countedStatuses {
			if n := sum.req[o][i].Load(); n != 0 {
				st.Requests = append(st.Requests, RequestCount{Op: opName(o), Status: code, Count: n})
			}
		}
	}
	return st
}

// metricsHandler serves GET /metrics in the Prometheus text format.
func (s *Server) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(s.Stats().AppendPrometheus(nil))
	})
	return mux
}

// AppendPrometheus appends the counters in the Prometheus text exposition
// format (version 0.0.4), metric names prefixed "aspstate_".
func (st Stats) AppendPrometheus(b []byte) []byte {
	buf := bytes.NewBuffer(b)
	metric := func(name, typ, help string, v int64) {
		fmt.Fprintf(buf, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, typ, name, v)
	}
	metric("aspstate_sessions_active", "gauge", "Session items in the store (State Server Sessions Active).", st.SessionsActive)
	metric("aspstate_sessions_total", "counter", "Session items created (State Server Sessions Total).", st.SessionsTotal)
	metric("aspstate_sessions_abandoned_total", "counter", "Session items removed by DELETE (State Server Sessions Abandoned).", st.SessionsAbandoned)
	metric("aspstate_sessions_timed_out_total", "counter", "Session items removed by expiry (State Server Sessions Timed Out).", st.SessionsTimedOut)
	metric("aspstate_connections_active", "gauge", "Open client connections.", st.ConnectionsActive)
	metric("aspstate_connections_total", "counter", "Accepted client connections.", st.ConnectionsTotal)
	metric("aspstate_connections_refused_total", "counter", "Connections closed at once (peer not allowed or MaxConns reached).", st.ConnectionsRefused)
	metric("aspstate_requests_held", "gauge", "Requests read but held unanswered by Pause.", st.Held)
	metric("aspstate_malformed_requests_total", "counter", "Requests answered 400 and closed because their bytes were malformed.", st.Malformed)
	buf.WriteString("# HELP aspstate_requests_total Requests answered, by protocol operation and status.\n# TYPE aspstate_requests_total counter\n")
	for _, r := range st.Requests {
		fmt.Fprintf(buf, "aspstate_requests_total{op=%q,status=\"%s\"} %d\n", r.Op, strconv.Itoa(r.Status), r.Count)
	}
	return buf.Bytes()
}
