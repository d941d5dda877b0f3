package stateserver

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"time"
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
	ConnectionsIdle    int64          // closed by IdleTimeout (no request began)
	ConnectionsSlow    int64          // closed by RequestTimeout (a request began but did not arrive in time)
	ConnectionsStalled int64          // closed by WriteTimeout (the peer did not read its replies)
	Held               int64          // requests read but held unanswered by Pause
	Malformed          int64          // requests answered 400 and closed because their bytes were malformed (also in Requests as op "unknown")
	Requests           []RequestCount // by op and status, in protocol.Ops order then status; zero counts omitted

	Persist *PersistStats // nil without DataDir
}

// PersistStats are the counters of a persistent server (Config.DataDir).
type PersistStats struct {
	Fsync            FsyncPolicy
	LogBytes         int64         // log bytes written since start
	LogPending       int64         // appended but not yet written
	Fsyncs           int64         // fsyncs of log and snapshot files since start
	Snapshots        int64         // snapshots written since start
	SnapshotAge      time.Duration // since the last snapshot was written (this run or, from its file time, an earlier one); -1 = none
	SnapshotBytes    int64         // size of the last snapshot
	SnapshotItems    int64         // items in the last snapshot written by this run
	SnapshotTook     time.Duration // how long the last snapshot of this run took
	LogSinceSnapshot int64         // log bytes not covered by the last snapshot
	Recovery         RecoveryStats
	Error            string // the error that stopped the log, "" while it works
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
	st.ConnectionsIdle = s.connsIdleClosed.Load()
	st.ConnectionsSlow = s.connsSlowClosed.Load()
	st.ConnectionsStalled = s.connsWriteTimeout.Load()
	st.Held = s.held.Load()
	if w := s.wal; w != nil {
		w.mu.Lock()
		appended := w.appended
		w.mu.Unlock()
		p := &PersistStats{
			Fsync: w.policy, LogBytes: w.logBytes.Load(), LogPending: appended - w.written.Load(),
			Fsyncs: w.fsyncs.Load(), Snapshots: w.snapshots.Load(), SnapshotAge: -1,
			SnapshotBytes: w.lastSnapSize.Load(), SnapshotItems: w.lastSnapItems.Load(),
			SnapshotTook: time.Duration(w.lastSnapDur.Load()), LogSinceSnapshot: w.sinceSnap.Load(),
			Recovery: w.rec,
		}
		if at := w.lastSnapAt.Load(); at != 0 {
			p.SnapshotAge = time.Since(time.Unix(0, at))
		}
		if err := s.PersistErr(); err != nil {
			p.Error = err.Error()
		}
		st.Persist = p
	}
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
		_, _ = w.Write(s.Stats().AppendPrometheus(nil)) // a scraper that went away needs no answer
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
	metric("aspstate_connections_idle_closed_total", "counter", "Connections closed by the idle timeout.", st.ConnectionsIdle)
	metric("aspstate_connections_slow_closed_total", "counter", "Connections closed because a request did not arrive within the request timeout.", st.ConnectionsSlow)
	metric("aspstate_connections_write_timeout_total", "counter", "Connections closed because a reply could not be written within the write timeout.", st.ConnectionsStalled)
	metric("aspstate_requests_held", "gauge", "Requests read but held unanswered by Pause.", st.Held)
	metric("aspstate_malformed_requests_total", "counter", "Requests answered 400 and closed because their bytes were malformed.", st.Malformed)
	buf.WriteString("# HELP aspstate_requests_total Requests answered, by protocol operation and status.\n# TYPE aspstate_requests_total counter\n")
	for _, r := range st.Requests {
		fmt.Fprintf(buf, "aspstate_requests_total{op=%q,status=\"%s\"} %d\n", r.Op, strconv.Itoa(r.Status), r.Count)
	}
	if p := st.Persist; p != nil {
		metric("aspstate_persist_log_bytes_total", "counter", "Log bytes written since start.", p.LogBytes)
		metric("aspstate_persist_log_pending_bytes", "gauge", "Log bytes appended but not yet written.", p.LogPending)
		metric("aspstate_persist_log_since_snapshot_bytes", "gauge", "Log bytes not covered by the last snapshot.", p.LogSinceSnapshot)
		metric("aspstate_persist_fsyncs_total", "counter", "fsync calls on log and snapshot files since start.", p.Fsyncs)
		metric("aspstate_persist_snapshots_total", "counter", "Snapshots written since start.", p.Snapshots)
		metric("aspstate_persist_snapshot_bytes", "gauge", "Size of the last snapshot.", p.SnapshotBytes)
		fmt.Fprintf(buf, "# HELP aspstate_persist_snapshot_age_seconds Seconds since the last snapshot (-1 = none).\n# TYPE aspstate_persist_snapshot_age_seconds gauge\naspstate_persist_snapshot_age_seconds %g\n", snapAge(p.SnapshotAge))
		metric("aspstate_persist_recovered_sessions", "gauge", "Sessions recovered from the data directory at start.", p.Recovery.Sessions)
		failed := int64(0)
		if p.Error != "" {
			failed = 1
		}
		metric("aspstate_persist_failed", "gauge", "1 once the log has failed (see the server's error output).", failed)
	}
	return buf.Bytes()
}

func snapAge(d time.Duration) float64 {
	if d < 0 {
		return -1
	}
	return d.Seconds()
}
