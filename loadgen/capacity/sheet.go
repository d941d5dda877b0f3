package capacity

import (
	"fmt"
	"math"
	"time"

	"github.com/aspstate/aspstate/scenarios"
)

// DefaultOverheadBytes is the reference server's memory per stored session
// beyond its body: TestMemory1M measured 1332 bytes of RSS per 1 KiB session
// with 1M sessions (README, "Figures measured"), so 1332 - 1024 = 308.
const DefaultOverheadBytes = 308

// Sheet is a capacity answer in the farm's terms, for one page rate.
type Sheet struct {
	// Rate is the farm-wide page rate the sheet is for (pages/s).
	Rate float64 `json:"rate"`
	// Times is Rate as a multiple of the recorded traffic (plan --trace;
	// 0 otherwise).
	Times float64 `json:"times,omitempty"`
	// WebServers and PagesPerWebServer: the page rate each web server serves.
	WebServers        int     `json:"web_servers"`
	PagesPerWebServer float64 `json:"pages_per_web_server"`
	// RequestsPerSecond is the state-server requests per second measured at
	// Rate, and RequestsPerPage its ratio to pages.
	RequestsPerSecond float64 `json:"requests_per_s"`
	RequestsPerPage   float64 `json:"requests_per_page"`
	// Partitions is the state-server partitions: the targets given.
	Partitions int `json:"partitions"`
	// ThinkTime is the mean time between two pages of a user; ConcurrentUsers
	// = Rate × ThinkTime (Little's law).
	ThinkTime       time.Duration `json:"think_time_ns"`
	ConcurrentUsers float64       `json:"concurrent_users"`
	// PagesPerSession and SessionsPerSecond: new sessions per second.
	PagesPerSession   float64 `json:"pages_per_session"`
	SessionsPerSecond float64 `json:"sessions_per_s"`
	// SessionLife is the mean active life of a session, first page to last;
	// SessionsActive = SessionsPerSecond × SessionLife.
	SessionLife    time.Duration `json:"session_life_ns"`
	SessionsActive float64       `json:"sessions_active"`
	// SessionTimeout is the sliding expiry after the last request; a session
	// stays in the store that long after its user leaves (unless abandoned).
	SessionTimeout  time.Duration `json:"session_timeout_ns"`
	AbandonFraction float64       `json:"abandon_fraction"`
	// SessionsHeld is the sessions in the store in the steady state:
	// SessionsPerSecond × (SessionLife + (1 - AbandonFraction) × SessionTimeout).
	SessionsHeld float64 `json:"sessions_held"`
	// BytesPerSession is the mean session body (from the scenario's size
	// distribution and growth) and OverheadBytes the server's own cost per
	// session; MemoryBytes = SessionsHeld × (BytesPerSession + OverheadBytes).
	BytesPerSession float64 `json:"bytes_per_session"`
	OverheadBytes   float64 `json:"overhead_bytes"`
	MemoryBytes     float64 `json:"memory_bytes"`
	// BodyBytes is SessionsHeld × BytesPerSession: the session bodies alone.
	BodyBytes float64 `json:"body_bytes"`
	// Memory is what is known of the target's memory per session; when it
	// is not Known, MemoryBytes and OverheadBytes are 0.
	Memory Memory `json:"memory"`
	// Observed is what the server's counters said during the step at Rate.
	Observed *ServerSample `json:"observed,omitempty"`
	// Assumptions lists every assumption the figures rest on.
	Assumptions []string `json:"assumptions"`
}

// Memory is what the plan knows of the target's memory per stored session.
type Memory struct {
	// Known reports that OverheadBytes is the target's own figure.
	Known bool `json:"known"`
	// OverheadBytes is the server's memory per stored session beyond its
	// body (when Known).
	OverheadBytes float64 `json:"overhead_bytes"`
	// Source says where the figure comes from, or why there is none.
	Source string `json:"source"`
	// Reference marks the reference server: its Go-heap advice applies.
	Reference bool `json:"reference"`
	// PerSession, when > 0, is a measured total per session (body
	// included): NewSheet derives OverheadBytes from it.
	PerSession float64 `json:"per_session,omitempty"`
}

// ReferenceMemory is the reference server's figure (TestMemory1M).
func ReferenceMemory(how string) Memory {
	return Memory{Known: true, OverheadBytes: DefaultOverheadBytes, Reference: true,
		Source: fmt.Sprintf("the reference server (%s): 1332 B RSS per 1 KiB session with 1M sessions, TestMemory1M", how)}
}

// GivenMemory is a figure the user gave (aspstate plan --overhead).
func GivenMemory(overhead float64) Memory {
	return Memory{Known: true, OverheadBytes: overhead, Source: "given with --overhead"}
}

// TargetMemory decides what the plan knows of the target's memory: the
// reference server's figure when the answer step's counters came from it,
// a figure measured from the target's resident memory across the step when
// its metrics expose one and enough sessions were added to tell, else
// unknown, saying why.
func TargetMemory(at StepResult) Memory {
	o := at.Server
	switch {
	case o == nil:
		return Memory{Source: "unknown for this target (no metrics: give --target-metrics URL of its Prometheus endpoint)"}
	case o.Reference:
		return ReferenceMemory(o.Source)
	case o.ResidentAfter > 0 && o.SessionsCreated >= 1000:
		per := float64(o.ResidentAfter-o.ResidentBefore) / float64(o.SessionsCreated)
		if per > 0 {
			return Memory{Known: true, PerSession: per, Source: fmt.Sprintf(
				"measured from %s: resident memory grew %s while %d sessions were created in the step at the answer (rough: other allocations count too)",
				o.Source, mib(float64(o.ResidentAfter-o.ResidentBefore)), o.SessionsCreated)}
		}
	}
	return Memory{Source: fmt.Sprintf("unknown for this target (%s gives no resident memory that grew with the step's sessions)", o.Source)}
}

// NewSheet computes the capacity sheet for the step at the answer rate of a
// plan of base (the scenario as given; see StepScenario for what a step
// changes), against partitions targets, with what is known of the target's
// memory (TargetMemory; mem.Known false: memory is unknown for this target).
func NewSheet(base *scenarios.Scenario, at StepResult, mem Memory, partitions int) Sheet {
	sc := base.Clone()
	sc.Users.Population = 0
	sc.Rate = scenarios.Rate{Shape: scenarios.ShapeConstant, PagesPerSecond: at.Rate}
	sc.ApplyDefaults()
	r := at.Rate
	s := Sheet{Rate: r, Times: at.Times, WebServers: sc.Farm.WebServers, Partitions: max(1, partitions), OverheadBytes: mem.OverheadBytes,
		RequestsPerSecond: at.RequestsPerSecond, Observed: at.Server, Memory: mem}
	s.PagesPerWebServer = r / float64(max(1, s.WebServers))
	if at.Achieved > 0 {
		s.RequestsPerPage = at.RequestsPerSecond / at.Achieved
	}
	s.ThinkTime = sc.Users.ThinkTime.MeanDuration()
	s.ConcurrentUsers = r * s.ThinkTime.Seconds()
	s.PagesPerSession = sc.Users.MeanPages()
	s.SessionsPerSecond = sc.SessionsPerSecondAt(0)
	s.SessionLife = sc.MeanSessionLife()
	s.SessionsActive = s.SessionsPerSecond * s.SessionLife.Seconds()
	s.SessionTimeout = time.Duration(sc.Client.SessionTimeout) * time.Minute
	s.AbandonFraction = sc.Users.AbandonFraction
	s.SessionsHeld = s.SessionsPerSecond * (s.SessionLife.Seconds() + (1-s.AbandonFraction)*s.SessionTimeout.Seconds())

	size := sc.Session.Size.Mean()
	modifies := s.PagesPerSession * sc.Pages.Mix.Fraction(scenarios.PageModify)
	growth := sc.Session.GrowthPerModify.Mean()
	grown := size
	if growth > 0 && modifies > 1 {
		// Mean of the body over the session's life: it grows linearly from
		// size to size + (modifies-1) × growth, capped.
		grown = math.Min(size+(modifies-1)*growth/2, float64(sc.Session.MaxBytes))
	}
	s.BytesPerSession = grown
	s.BodyBytes = s.SessionsHeld * s.BytesPerSession
	if mem.PerSession > 0 {
		s.OverheadBytes = max(0, mem.PerSession-s.BytesPerSession)
		s.Memory.OverheadBytes = s.OverheadBytes
	}
	if mem.Known {
		s.MemoryBytes = s.SessionsHeld * (s.BytesPerSession + s.OverheadBytes)
	}

	a := func(format string, args ...any) { s.Assumptions = append(s.Assumptions, fmt.Sprintf(format, args...)) }
	switch {
	case at.Times > 0:
		a("the rate is the highest multiple of the recorded traffic that met every objective in the search: the capture's sessions, pages, kinds, sizes and execution times replayed as copies (each with its own sessions, spread over the capture's loop) and faster, %s today's traffic; measured on this machine with the load generator beside the target", times(at.Times))
		a("a step replayed the capture from its start: the sessions that existed before it were seeded, unmeasured; the copies that enter mid-capture create the sessions their first pages find missing, as a 404 does")
		a("users, sessions and sizes below are modelled from the scenario fitted to the capture (aspstate trace fit)")
	default:
		a("the rate is the highest offered page rate that met every objective in the search (open model, constant rate%s), measured on this machine with the load generator beside the target", poissonNote(base))
	}
	switch {
	case at.Times > 0:
	case at.SteadyStart:
		a("the step started from the steady state: the %.0f sessions a farm at this rate holds mid-life (rate × mean think time) were written before its schedule, one PUT each, unmeasured; a cold farm (empty store, after a restart) carries less while every page creates its session (aspstate plan --steady-start=false measures that)", s.ConcurrentUsers)
	default:
		a("every step started from an empty store: for the first think times most pages created their sessions (more requests per page), so the rate is a cold farm's, below a running farm's")
	}
	if base.Users.Population > 0 {
		a("scenario %s uses a population of %d users; the plan ran it as open arrivals with the same users (think time, pages per session) so the rate could be set", base.Name, base.Users.Population)
	}
	if len(base.Faults) > 0 {
		a("the scenario's %d faults were left out: the plan measures the steady state", len(base.Faults))
	}
	a("pages per web server = rate / %s, spread evenly (the scenario's %s load balancing)", plural(s.WebServers, "web server"), sc.Farm.LoadBalancing)
	a("concurrent users = rate × mean think time %s (Little's law; in the scenario a user's pages start one think time apart, so each user offers 1/think pages/s)", s.ThinkTime.Round(time.Millisecond))
	a("sessions start at rate / %.2f mean pages per session; a session is active for %s (pages-1 think times plus one page's execution)", s.PagesPerSession, s.SessionLife.Round(time.Millisecond))
	a("after its last page a session stays in the store for the session timeout, %s (real minutes, whatever time scale the test used)%s", s.SessionTimeout, abandonNote(s.AbandonFraction))
	if growth > 0 {
		a("bytes per session = mean first body %.0f B growing by %.0f B per modify page over %.1f modify pages, averaged over the session's life, capped at %d B", size, growth, modifies, sc.Session.MaxBytes)
	} else {
		a("bytes per session = the mean of the scenario's session size distribution, %.0f B", size)
	}
	if mem.Known {
		a("server overhead %.0f B per stored session: %s", s.OverheadBytes, mem.Source)
	} else {
		a("the server's own memory per session is %s; the sheet gives the session bodies alone", mem.Source)
	}
	a("%s: the scenario's sessions spread over the targets given", plural(s.Partitions, "partition"))
	if at.Server != nil {
		a("the server's counters (%s) give session counts, not bytes, so memory is modelled from sizes; the %s step created %d sessions and left %d in the store (a short step is not the steady state, and a server that runs on between steps still holds the sessions of earlier ones)",
			at.Server.Source, at.Window.Round(time.Second), at.Server.SessionsCreated, at.Server.SessionsInStore)
	} else {
		a("the target exposes no counters the plan can read (give --metrics for aspstate serve --metrics), so sessions and memory are modelled from the scenario")
	}
	if mem.Reference {
		a("memory counts session state only: add the runtime's headroom (the reference server's Go heap may grow to about twice the live data under churn without a memory limit)")
	}
	return s
}

func poissonNote(sc *scenarios.Scenario) string {
	if sc.Rate.Poisson {
		return ", Poisson arrivals"
	}
	return ", evenly spaced arrivals"
}

func abandonNote(f float64) string {
	if f > 0 {
		return fmt.Sprintf("; the %.0f%% of sessions that are abandoned leave at once", f*100)
	}
	return ""
}
