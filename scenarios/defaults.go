package scenarios

import "time"

// Defaults of the optional fields (README.md lists them with their units).
const (
	// DefaultDuration is the default run length (unless Rate is steps).
	DefaultDuration = 30 * time.Second
	// DefaultAppID is the application id of the default single app.
	DefaultAppID = "/LM/W3SVC/1/ROOT"
	// DefaultPagesPerSecond is the default constant page rate of the farm.
	DefaultPagesPerSecond = 200
	// DefaultSessionTimeout is the default session timeout in minutes.
	DefaultSessionTimeout = 20
	// DefaultExecutionTimeout is ASP.NET's default executionTimeout.
	DefaultExecutionTimeout = 110 * time.Second
	// DefaultLockPollInterval is ASP.NET's LOCKED_ITEM_POLLING_INTERVAL.
	DefaultLockPollInterval = 500 * time.Millisecond
	// DefaultNetworkTimeout is ASP.NET's default stateNetworkTimeout.
	DefaultNetworkTimeout = 10 * time.Second
	// DefaultIdleTimeout is the period of ASP.NET's connection-pool timer.
	DefaultIdleTimeout = 5 * time.Second
	// DefaultRequestQueueLimitPerSession is aspnet:RequestQueueLimitPerSession
	// for applications targeting .NET 4.6.3 or later (the value of
	// protocol/aspnetclient.DefaultRequestQueueLimitPerSession).
	DefaultRequestQueueLimitPerSession = 50
	// DefaultMaxSessionBytes caps session growth.
	DefaultMaxSessionBytes = 1 << 20
)

// Default distributions and mixes; functions so that callers get copies.

// DefaultPagesPerSession is exponential with mean 8, clamped to [1, 100].
func DefaultPagesPerSession() Dist {
	return Dist{Kind: DistExponential, Avg: 8, Min: 1, Max: 100}
}

// DefaultThinkTime is exponential with mean 2s, clamped to at most 20s.
func DefaultThinkTime() Dist { return Dist{Kind: DistExponential, Avg: 2, Max: 20} }

// DefaultExecTime is lognormal with mean 20ms and stddev 20ms, at most 1s.
func DefaultExecTime() Dist {
	return Dist{Kind: DistLognormal, Avg: 0.020, StdDev: 0.020, Max: 1}
}

// DefaultSessionSize is lognormal with mean 4KiB and stddev 4KiB, clamped
// to [64B, 256KiB].
func DefaultSessionSize() Dist {
	return Dist{Kind: DistLognormal, Avg: 4096, StdDev: 4096, Min: 64, Max: 256 << 10}
}

// DefaultBurstSize is uniform 2..6 parallel requests.
func DefaultBurstSize() Dist { return Dist{Kind: DistUniform, Min: 2, Max: 6} }

// DefaultMix is {modify: 3, read-unchanged: 4, read-only: 2, sessionless: 1}.
func DefaultMix() Mix {
	return Mix{PageModify: 3, PageReadUnchanged: 4, PageReadOnly: 2, PageSessionless: 1}
}

// DefaultScenario returns a valid scenario made only of defaults: one web
// server hosting one app, 200 pages/s for 30s.
func DefaultScenario() *Scenario {
	s := &Scenario{
		Name:        "default",
		Description: "Defaults only: one web server, one app, 200 pages/s for 30s",
	}
	s.ApplyDefaults()
	return s
}

// ApplyDefaults fills every zero optional field with its default (see the
// field docs and README.md). It is idempotent and does not touch fields that
// are already set, so invalid values stay for Validate to report.
func (s *Scenario) ApplyDefaults() {
	if s.Rate.Shape == "" && s.Users.Population <= 0 {
		s.Rate.Shape = ShapeConstant
	}
	if s.Rate.Shape == ShapeConstant && s.Rate.PagesPerSecond == 0 {
		s.Rate.PagesPerSecond = DefaultPagesPerSecond
	}
	if s.Duration == 0 {
		s.Duration = Duration(DefaultDuration)
		if s.Rate.Shape == ShapeSteps && len(s.Rate.Steps) > 0 {
			var total Duration
			for _, st := range s.Rate.Steps {
				total += st.Duration
			}
			if total > 0 {
				s.Duration = total
			}
		}
	}
	if s.Rate.Shape == ShapeRamp && s.Rate.Over == 0 {
		s.Rate.Over = s.Duration
	}

	f := &s.Farm
	if f.WebServers == 0 {
		f.WebServers = 1
	}
	if f.Apps == nil {
		f.Apps = []App{{ID: DefaultAppID, Weight: 1}}
	}
	if f.LoadBalancing == "" {
		f.LoadBalancing = LBSticky
	}
	if f.Partitions == 0 {
		f.Partitions = 1
	}

	u := &s.Users
	if u.PagesPerSession.IsZero() {
		u.PagesPerSession = DefaultPagesPerSession()
	}
	if u.ThinkTime.IsZero() {
		u.ThinkTime = DefaultThinkTime()
	}

	p := &s.Pages
	if p.Mix == nil {
		p.Mix = DefaultMix()
	}
	if p.ExecTime.IsZero() {
		p.ExecTime = DefaultExecTime()
	}
	if p.Burst.Size.IsZero() {
		p.Burst.Size = DefaultBurstSize()
	}

	d := &s.Session
	if d.Size.IsZero() {
		d.Size = DefaultSessionSize()
	}
	if d.GrowthPerModify.IsZero() {
		d.GrowthPerModify = Dist{Kind: DistConstant, Value: 0}
	}
	if d.MaxBytes == 0 {
		d.MaxBytes = DefaultMaxSessionBytes
	}

	c := &s.Client
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.ExecutionTimeout == 0 {
		c.ExecutionTimeout = Duration(DefaultExecutionTimeout)
	}
	if c.LockPollInterval == 0 {
		c.LockPollInterval = Duration(DefaultLockPollInterval)
	}
	if c.NetworkTimeout == 0 {
		c.NetworkTimeout = Duration(DefaultNetworkTimeout)
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = Duration(DefaultIdleTimeout)
	}
	if c.RequestQueueLimitPerSession == 0 {
		c.RequestQueueLimitPerSession = DefaultRequestQueueLimitPerSession
	}

	for i := range s.Faults {
		if s.Faults[i].Kind == FaultRecycle && s.Faults[i].Params.WebServer == 0 {
			s.Faults[i].Params.WebServer = 1
		}
	}
}
