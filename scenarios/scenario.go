// Package scenarios owns web-farm load patterns as data: the Go types that
// describe a farm of ASP.NET web servers talking to an ASP.NET State Server,
// the users that visit it, the page mix they request, the rate shape of a run
// and a fault timeline; the strict YAML loader and validator for those types;
// and the builtin scenarios embedded from builtin/*.yaml.
//
// Units, once for all: the rate is in PAGES per second for the whole farm
// (every page view, whatever its kind, counts once; the parallel requests of
// an AJAX burst come on top, see Scenario.RequestsPerPage). New sessions are
// derived from it: in the open arrival model sessions start at
// rate / mean(pages per session). One page makes one or more state-server
// requests (PROTOCOL.md e.1: a writable page is an acquire plus a release or
// PUT, plus lock polls). Durations
// are time.Duration (YAML strings such as "500ms", "2s", "1m30s"); sizes are
// bytes (YAML numbers or strings such as "4KiB", "1MiB", "10KB"); the session
// timeout is whole minutes, as in web.config.
//
// Zero values mean "use the default" for every optional field (see
// ApplyDefaults and README.md for the list). In YAML, writing an explicit zero
// for a field that must be positive is an error rather than a silent default.
package scenarios

import "time"

// Scenario is one web-farm pattern: everything the load generator needs to
// emulate the ASP.NET session-state clients of a farm, except the target.
// Build one with Load, Lookup or Parse, or fill it in Go and call
// ApplyDefaults then Validate.
type Scenario struct {
	// Name is the scenario's identifier: lower-case letters, digits and
	// hyphens (e.g. "ecommerce-peak"). Required.
	Name string `yaml:"name" json:"name"`
	// Description is one line (no newline, at most 100 characters) shown by
	// `aspstate load --list`. Required.
	Description string `yaml:"description" json:"description"`
	// Doc is optional longer text: what farm the scenario models and what it
	// stresses.
	Doc string `yaml:"doc,omitempty" json:"doc,omitempty"`
	// Duration is the default length of a run (the CLI may override it).
	// Default 30s, or the sum of the step durations when Rate.Shape is steps.
	Duration Duration `yaml:"duration,omitempty" json:"duration,omitempty"`
	// Farm describes the web servers, applications, load balancing and
	// state-server partitions.
	Farm Farm `yaml:"farm,omitempty" json:"farm,omitempty"`
	// Users describes how sessions arrive, how long they last and how they end.
	Users Users `yaml:"users,omitempty" json:"users,omitempty"`
	// Pages describes the page mix, page execution time and AJAX bursts.
	Pages Pages `yaml:"pages,omitempty" json:"pages,omitempty"`
	// Session describes the size of the session state blob.
	Session SessionData `yaml:"session,omitempty" json:"session,omitempty"`
	// Client holds the ASP.NET session-state client settings (web.config
	// and machine-level values) that the emulated web servers use.
	Client Client `yaml:"client,omitempty" json:"client,omitempty"`
	// Rate is the shape of the page rate over the run (pages per second for
	// the whole farm). Must be left empty when Users.Population is set.
	Rate Rate `yaml:"rate,omitempty" json:"rate,omitempty"`
	// Faults is the fault timeline, applied during the run in At order.
	// Optional.
	Faults []Fault `yaml:"faults,omitempty" json:"faults,omitempty"`
}

// Farm describes the web tier: how many web servers, which applications they
// host, how the load balancer spreads requests, and how many state-server
// partitions the session ids are spread over.
type Farm struct {
	// WebServers is the number of emulated web servers (each has its own
	// connection pool and version-check state per partition). Default 1.
	WebServers int `yaml:"web_servers,omitempty" json:"web_servers,omitempty"`
	// Apps are the applications hosted on every web server; a new session
	// picks one by weight. Default: one app "/LM/W3SVC/1/ROOT" with weight 1.
	Apps []App `yaml:"apps,omitempty" json:"apps,omitempty"`
	// LoadBalancing is how page requests of one session are spread over the
	// web servers. Default sticky.
	LoadBalancing LoadBalancing `yaml:"load_balancing,omitempty" json:"load_balancing,omitempty"`
	// Partitions is the number of state-server partitions
	// (partitionResolverType); session ids are spread over them by hash and
	// the load generator maps partitions onto targets. Default 1.
	Partitions int `yaml:"partitions,omitempty" json:"partitions,omitempty"`
}

// App is one ASP.NET application: its metabase path, which becomes the
// application-id prefix of every session key, and its share of new sessions.
type App struct {
	// ID is the application id as IIS spells it, e.g. "/LM/W3SVC/1/ROOT".
	// Required, unique within the farm.
	ID string `yaml:"id" json:"id"`
	// Weight is the relative share of new sessions that use this app.
	// Must be >= 0; in YAML it defaults to 1 when omitted. The weights of
	// all apps must sum to more than 0.
	Weight float64 `yaml:"weight" json:"weight"`
}

// LoadBalancing names how a load balancer routes the pages of one session.
type LoadBalancing string

// The load-balancing modes.
const (
	// LBSticky sends every page of a session to the web server that served
	// its first page (server affinity).
	LBSticky LoadBalancing = "sticky"
	// LBRoundRobin sends successive pages (farm-wide) to successive servers.
	LBRoundRobin LoadBalancing = "round-robin"
	// LBRandom sends each page to a uniformly random server.
	LBRandom LoadBalancing = "random"
)

// Users describes the visitors: how sessions begin (open arrivals derived
// from the rate, or a fixed population), how many pages a session views, the
// think time between pages, and how sessions end.
type Users struct {
	// Population, when > 0, selects the population model: that many
	// concurrent users, each starting a new session as soon as the previous
	// one ends; pages (including the first page of the next session) are
	// scheduled ThinkTime apart from the intended start of the previous page
	// (never waiting for responses), so the page rate is
	// Population / mean(ThinkTime) and Rate must be left empty.
	// When 0 (default) sessions arrive openly at Rate / mean(PagesPerSession).
	Population int `yaml:"population,omitempty" json:"population,omitempty"`
	// PagesPerSession is the number of pages one session views; samples are
	// rounded to the nearest integer and at least 1 (see Users.SamplePages).
	// Default exponential with mean 8, clamped to [1, 100].
	PagesPerSession Dist `yaml:"pages_per_session,omitempty" json:"pages_per_session,omitempty"`
	// ThinkTime is the delay between the intended starts of two successive
	// pages of a session (seconds; YAML accepts "2s"). Default exponential
	// with mean 2s, clamped to max 20s.
	ThinkTime Dist `yaml:"think_time,omitempty" json:"think_time,omitempty"`
	// AbandonFraction is the fraction (0..1) of sessions whose last page calls
	// Session.Abandon (a DELETE); the others walk away and leave the session
	// to expire after Client.SessionTimeout. Default 0.
	AbandonFraction float64 `yaml:"abandon_fraction,omitempty" json:"abandon_fraction,omitempty"`
}

// Pages describes what each page does to the session and how long it holds
// the session lock.
type Pages struct {
	// Mix is the relative weight of each page kind. Default
	// {modify: 3, read-unchanged: 4, read-only: 2, sessionless: 1}.
	Mix Mix `yaml:"mix,omitempty" json:"mix,omitempty"`
	// ExecTime is the page execution time: how long a writable page holds the
	// session lock between its acquire and its release/PUT (seconds; YAML
	// accepts "20ms"). Default lognormal mean 20ms, stddev 20ms, max 1s.
	ExecTime Dist `yaml:"exec_time,omitempty" json:"exec_time,omitempty"`
	// Burst describes AJAX fan-out: concurrent requests of one session that
	// contend for its lock. Default: no bursts.
	Burst Burst `yaml:"burst,omitempty" json:"burst,omitempty"`
}

// Mix maps page kinds to relative weights (>= 0, summing to more than 0).
type Mix map[PageKind]float64

// PageKind names what a page does with session state, which decides the
// requests the emulated client sends (PROTOCOL.md e.1).
type PageKind string

// The page kinds.
const (
	// PageModify is a writable page that changes the session:
	// GET Exclusive:acquire, then PUT with the lock cookie.
	PageModify PageKind = "modify"
	// PageReadUnchanged is a writable page that leaves the session unchanged:
	// GET Exclusive:acquire, then GET Exclusive:release.
	PageReadUnchanged PageKind = "read-unchanged"
	// PageReadOnly is an EnableSessionState="ReadOnly" page: a plain GET.
	PageReadOnly PageKind = "read-only"
	// PageSessionless is a page without session state whose request carries
	// the session cookie: a HEAD (ResetTimeout).
	PageSessionless PageKind = "sessionless"
	// PageAbandon is a writable page that calls Session.Abandon:
	// GET Exclusive:acquire, then DELETE with the lock cookie. The user's next
	// page (if any) creates a new session with the same id.
	PageAbandon PageKind = "abandon"
)

// Burst describes AJAX fan-out: with Probability a page is followed at once
// by N parallel requests of the same session (N from Size), which contend for
// the session lock. Burst requests are extra requests on top of the page
// rate (Scenario.RequestsPerPage gives the multiplier).
type Burst struct {
	// Probability (0..1) that a page fans out. Default 0 (no bursts).
	Probability float64 `yaml:"probability,omitempty" json:"probability,omitempty"`
	// Size is the number of parallel requests in a burst; samples are rounded
	// and at least 2 (see Burst.SampleSize). Default uniform 2..6.
	Size Dist `yaml:"size,omitempty" json:"size,omitempty"`
	// Mix is the page-kind mix of burst requests. Default: Pages.Mix.
	Mix Mix `yaml:"mix,omitempty" json:"mix,omitempty"`
}

// SessionData describes the serialized session state blob sent in PUT bodies.
type SessionData struct {
	// Size is the size in bytes of a session's state the first time a page
	// modifies it (YAML accepts "4KiB"). Default lognormal mean 4KiB,
	// stddev 4KiB, min 64B, max 256KiB.
	Size Dist `yaml:"size,omitempty" json:"size,omitempty"`
	// GrowthPerModify is the number of bytes each later modify page adds.
	// Default: none (constant 0).
	GrowthPerModify Dist `yaml:"growth_per_modify,omitempty" json:"growth_per_modify,omitempty"`
	// MaxBytes caps the size a session can grow to (YAML accepts "8MiB").
	// Default 1MiB.
	MaxBytes int64 `yaml:"max_bytes,omitempty" json:"max_bytes,omitempty"`
}

// Client holds the ASP.NET session-state client settings (PROTOCOL.md e.2,
// e.3, e.4, e.6).
type Client struct {
	// SessionTimeout is <sessionState timeout> in whole minutes, 1..525600,
	// sent on every PUT. Default 20.
	SessionTimeout int `yaml:"session_timeout,omitempty" json:"session_timeout,omitempty"`
	// ExecutionTimeout is httpRuntime executionTimeout: a request polling a
	// locked session fails after this, and a lock older than this is broken.
	// Default 110s.
	ExecutionTimeout Duration `yaml:"execution_timeout,omitempty" json:"execution_timeout,omitempty"`
	// LockPollInterval is the delay between polls of a locked session
	// (SessionStateLockedItemPollInterval). Default 500ms.
	LockPollInterval Duration `yaml:"lock_poll_interval,omitempty" json:"lock_poll_interval,omitempty"`
	// NetworkTimeout is stateNetworkTimeout: the per-request send/receive
	// timeout. Default 10s.
	NetworkTimeout Duration `yaml:"state_network_timeout,omitempty" json:"state_network_timeout,omitempty"`
	// IdleTimeout is the connection-pool timer period: a pooled connection
	// idle for a whole period is closed. Default 5s.
	IdleTimeout Duration `yaml:"connection_idle_timeout,omitempty" json:"connection_idle_timeout,omitempty"`
	// DisableVersionCheck turns off the first-request X-AspNet-Version check
	// (PROTOCOL.md e.4) that the real client performs. Default false
	// (the check is on, as in ASP.NET).
	DisableVersionCheck bool `yaml:"disable_version_check,omitempty" json:"disable_version_check,omitempty"`
	// RequestQueueLimitPerSession is aspnet:RequestQueueLimitPerSession
	// (PROTOCOL.md e.2): at most this many requests of one session may be
	// in a web server's session state module at once (holding or waiting
	// for its lock); one more fails at once. Default 50, as for applications
	// targeting .NET 4.6.3 or later; -1 is unlimited (older applications).
	RequestQueueLimitPerSession int `yaml:"request_queue_limit_per_session,omitempty" json:"request_queue_limit_per_session,omitempty"`
}

// Rate is the shape of the farm-wide page rate over a run, in pages per
// second. Arrivals are scheduled in advance (open model).
type Rate struct {
	// Shape is constant, ramp or steps. Default constant (when
	// Users.Population is 0).
	Shape Shape `yaml:"shape,omitempty" json:"shape,omitempty"`
	// PagesPerSecond is the rate of the constant shape. Default 200.
	PagesPerSecond float64 `yaml:"pages_per_second,omitempty" json:"pages_per_second,omitempty"`
	// From is the ramp's starting rate (pages/s, >= 0).
	From float64 `yaml:"from,omitempty" json:"from,omitempty"`
	// To is the ramp's final rate (pages/s, >= 0), held after the ramp.
	To float64 `yaml:"to,omitempty" json:"to,omitempty"`
	// Over is the length of the ramp. Default: the whole run (Duration).
	Over Duration `yaml:"over,omitempty" json:"over,omitempty"`
	// Steps is the list of the steps shape; the last rate is held if the
	// run is longer than the sum of the steps.
	Steps []Step `yaml:"steps,omitempty" json:"steps,omitempty"`
	// Poisson selects exponential inter-arrival times (a Poisson process);
	// false (default) spaces arrivals evenly.
	Poisson bool `yaml:"poisson,omitempty" json:"poisson,omitempty"`
}

// Step is one level of the steps rate shape.
type Step struct {
	// PagesPerSecond is the rate during this step (>= 0).
	PagesPerSecond float64 `yaml:"pages_per_second" json:"pages_per_second"`
	// Duration is how long the step lasts (> 0).
	Duration Duration `yaml:"duration" json:"duration"`
}

// Shape names a rate shape.
type Shape string

// The rate shapes.
const (
	// ShapeConstant is a fixed rate (Rate.PagesPerSecond).
	ShapeConstant Shape = "constant"
	// ShapeRamp goes linearly from Rate.From to Rate.To over Rate.Over.
	ShapeRamp Shape = "ramp"
	// ShapeSteps follows Rate.Steps.
	ShapeSteps Shape = "steps"
)

// Fault is one event of the fault timeline.
type Fault struct {
	// At is the offset from the start of the run (>= 0, < Duration).
	At Duration `yaml:"at" json:"at"`
	// Kind is what happens.
	Kind FaultKind `yaml:"kind" json:"kind"`
	// Duration is how long the fault lasts: required (> 0) for pause,
	// latency and blackhole; the downtime between stop and start for restart
	// and kill (default 0: start again at once); must be 0 for
	// reset-connections and recycle.
	Duration Duration `yaml:"duration,omitempty" json:"duration,omitempty"`
	// Params are the kind-specific parameters.
	Params FaultParams `yaml:"params,omitempty" json:"params,omitempty"`
}

// FaultParams are the parameters of a fault; each kind uses a subset.
type FaultParams struct {
	// Delay is the added one-way latency (latency only, > 0).
	Delay Duration `yaml:"delay,omitempty" json:"delay,omitempty"`
	// Jitter is the +/- random variation of Delay (latency only, <= Delay).
	Jitter Duration `yaml:"jitter,omitempty" json:"jitter,omitempty"`
	// Partition is the 1-based state-server partition the fault hits; 0
	// (default) means every partition. Not used by recycle.
	Partition int `yaml:"partition,omitempty" json:"partition,omitempty"`
	// WebServer is the 1-based web server whose app pool recycles
	// (recycle only). Default 1.
	WebServer int `yaml:"web_server,omitempty" json:"web_server,omitempty"`
}

// FaultKind names a fault.
type FaultKind string

// The fault kinds.
const (
	// FaultRestart stops the state server gracefully and starts it again
	// (all sessions are lost).
	FaultRestart FaultKind = "restart"
	// FaultKill kills the state server process (SIGKILL) and starts it again.
	FaultKill FaultKind = "kill"
	// FaultPause freezes the state server (SIGSTOP/docker pause) for Duration.
	FaultPause FaultKind = "pause"
	// FaultLatency adds Params.Delay +/- Params.Jitter to traffic for Duration.
	FaultLatency FaultKind = "latency"
	// FaultResetConnections resets every open client connection (TCP RST).
	FaultResetConnections FaultKind = "reset-connections"
	// FaultBlackhole silently drops traffic for Duration.
	FaultBlackhole FaultKind = "blackhole"
	// FaultRecycle recycles one web server's app pool: its pooled connections
	// are dropped and its version-check state is reset (the next request per
	// partition checks X-AspNet-Version again).
	FaultRecycle FaultKind = "recycle"
)

// Info names a builtin scenario for listings.
type Info struct {
	// Name is the scenario name, as accepted by Lookup and Load.
	Name string
	// Description is the scenario's one-line description.
	Description string
}

// Duration is a time.Duration that reads and writes YAML as a Go duration
// string ("500ms", "2s", "1m30s"). A bare 0 is accepted; other bare numbers
// are rejected because their unit would be ambiguous.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// Dist is a probability distribution of a non-negative quantity: a count,
// a number of bytes, or a time in seconds. YAML form:
//
//	{dist: constant, value: 3}
//	{dist: uniform, min: 1s, max: 5s}
//	{dist: exponential, mean: 2s, min: 0s, max: 20s}
//	{dist: lognormal, mean: 4KiB, stddev: 8KiB, min: 64B, max: 1MiB}
//
// or a bare scalar meaning constant ("2s", 4096, "4KiB"). For exponential
// and lognormal, Min and Max clamp samples (a sample below Min becomes Min);
// Max 0 means no upper clamp. Avg (YAML "mean") and StdDev are those of the
// unclamped distribution; the method Mean reports the mean after clamping.
type Dist struct {
	// Kind is the distribution family. The zero Dist (Kind "") means "use
	// the field's default".
	Kind DistKind `yaml:"dist" json:"dist"`
	// Value is the constant's value (constant only).
	Value float64 `yaml:"value,omitempty" json:"value,omitempty"`
	// Min is the lower bound (uniform) or lower clamp (exponential,
	// lognormal).
	Min float64 `yaml:"min,omitempty" json:"min,omitempty"`
	// Max is the upper bound (uniform) or upper clamp (exponential,
	// lognormal; 0 = none).
	Max float64 `yaml:"max,omitempty" json:"max,omitempty"`
	// Avg is the mean of the unclamped distribution (exponential,
	// lognormal; > 0), written "mean" in YAML. (The method Mean reports the
	// mean after clamping.)
	Avg float64 `yaml:"mean,omitempty" json:"mean,omitempty"`
	// StdDev is the standard deviation of the unclamped lognormal (> 0).
	StdDev float64 `yaml:"stddev,omitempty" json:"stddev,omitempty"`
}

// DistKind names a distribution family.
type DistKind string

// The distribution families.
const (
	// DistConstant always yields Value.
	DistConstant DistKind = "constant"
	// DistUniform yields uniformly in [Min, Max].
	DistUniform DistKind = "uniform"
	// DistExponential yields exponentially with mean Mean, clamped.
	DistExponential DistKind = "exponential"
	// DistLognormal yields lognormally with mean Mean and standard deviation
	// StdDev, clamped.
	DistLognormal DistKind = "lognormal"
)
