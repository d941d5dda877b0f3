package loadgen

import (
	"errors"
	"fmt"
	"time"

	"github.com/aspstate/aspstate/protocol"
	"github.com/aspstate/aspstate/scenarios"
)

// PageSource is the seam between where an open run's pages come from and
// the engine that runs them: the scenario's schedule is one source (the
// planner), a recorded farm (aspstate load --trace) another. Either way
// every page is run by the one emulated ASP.NET client (pageRunner): lock
// cookies come from live replies, a 423 is polled, old locks are broken and
// a 404 starts the create dance.
type PageSource interface {
	// Next returns the next page, in the order of At; false at the end.
	Next() (SourcePage, bool)
}

// SourcePage is one page a PageSource asks for.
type SourcePage struct {
	// At is the page's start, from the run's start.
	At time.Duration
	// Session names the page's session within the source: pages with one
	// Session are one session (one fresh session id in the run).
	Session string
	// App indexes Scenario.Farm.Apps; Web the farm's web servers;
	// Partition the scenario's partitions.
	App, Web, Partition int
	Kind                scenarios.PageKind
	// Exec is how long the page holds its lock (writable pages).
	Exec time.Duration
	// Size is the session's body size after a modify page (or the size a
	// seeded session is written with).
	Size int
}

// slotSource gives the open model its slots: the planner, or a PageSource
// through sourcePlanner.
type slotSource interface {
	next() (slot, bool)
}

// sourcePlanner turns a PageSource's pages into slots, giving each source
// session a fresh session of the run.
type sourcePlanner struct {
	src      PageSource
	pl       *planner // for fresh session ids and the apps' target prefixes
	sessions map[string]*session
	sizes    map[string]int
	err      error // a page outside the farm ended the source
}

func newSourcePlanner(src PageSource, pl *planner) *sourcePlanner {
	return &sourcePlanner{src: src, pl: pl, sessions: map[string]*session{}, sizes: map[string]int{}}
}

// session returns the run's session for a source session, creating it.
func (s *sourcePlanner) session(p SourcePage) *session {
	if ss := s.sessions[p.Session]; ss != nil {
		return ss
	}
	id, err := protocol.NewSessionID(s.pl.idRand)
	if err != nil {
		panic("loadgen: ChaCha8 cannot fail: " + err.Error())
	}
	ss := s.pl.st.newSession(id, s.pl.appPfx[p.App]+protocol.URLEncode(id), p.Partition)
	ss.app = p.App
	s.sessions[p.Session] = ss
	return ss
}

// slot makes the slot of one source page. A modify page's size is the
// session's first size or its growth since the last one.
func (s *sourcePlanner) slot(p SourcePage) slot {
	sl := slot{at: p.At, sess: s.session(p), kind: p.Kind, webServer: p.Web, exec: p.Exec}
	last, seen := s.sizes[p.Session]
	if p.Size > 0 {
		sl.size = p.Size
		if seen {
			sl.growth = p.Size - last
		}
		s.sizes[p.Session] = p.Size
	} else if seen {
		sl.size = last
	}
	return sl
}

func (s *sourcePlanner) next() (slot, bool) {
	p, ok := s.src.Next()
	if !ok {
		return slot{}, false
	}
	f := s.pl.sc.Farm
	if p.App < 0 || p.App >= len(s.pl.appPfx) || p.Web < 0 || p.Web >= f.WebServers || p.Partition < 0 || p.Partition >= f.Partitions {
		// A source outside the farm ends the plan rather than run a page
		// that is not the recorded one.
		s.err = fmt.Errorf("page of session %q: app %d, web server %d or partition %d outside the farm", p.Session, p.App, p.Web, p.Partition)
		return slot{}, false
	}
	return s.slot(p), true
}

// seeds returns one seed slot per session that existed before the source
// began, written with its recorded size, as a steady start seeds.
func (s *sourcePlanner) seeds(existing []SourcePage) []slot {
	out := make([]slot, 0, len(existing))
	for _, p := range existing {
		sl := s.slot(p)
		sl.kind, sl.exec = scenarios.PageModify, 0
		out = append(out, sl)
	}
	return out
}

// validateSource checks the source's pages against the farm.
func (c *Config) validateSource() []error {
	if c.Pages == nil {
		if len(c.Seeds) > 0 {
			return []error{errors.New("seeds without a page source")}
		}
		return nil
	}
	var errs []error
	if c.ClosedLoop {
		errs = append(errs, errors.New("a page source runs the open model; drop closed-loop"))
	}
	if c.Scenario != nil {
		f := c.Scenario.Farm
		for _, p := range c.Seeds {
			if p.App < 0 || p.App >= len(f.Apps) || p.Web < 0 || p.Web >= f.WebServers || p.Partition < 0 || p.Partition >= f.Partitions {
				errs = append(errs, fmt.Errorf("seed of session %q: app %d, web server %d or partition %d outside the farm", p.Session, p.App, p.Web, p.Partition))
				break
			}
		}
	}
	return errs
}
