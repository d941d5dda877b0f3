package scenarios

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Limits checked by Validate.
const (
	// MaxSessionTimeout is the largest session timeout in minutes (one year),
	// the client's and the server's upper bound.
	MaxSessionTimeout = 525600
	// MaxPagesPerSecond bounds every rate, as a guard against typos.
	MaxPagesPerSecond = 1_000_000
	// MaxDescriptionLen bounds Description so that listings stay one line.
	MaxDescriptionLen = 100
)

// nameRE is the syntax of scenario names.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// validator collects problems with their field paths.
type validator struct{ errs []error }

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Validate checks s (normally after ApplyDefaults) and returns every problem
// at once, joined with errors.Join; each is a *FieldError naming the field
// path and how to fix it.
func (s *Scenario) Validate() error {
	v := &validator{}
	switch {
	case s.Name == "":
		v.add("name", `required: a short id such as "my-farm"`)
	case !nameRE.MatchString(s.Name):
		v.add("name", "%q: use lower-case letters, digits and hyphens, starting with a letter or digit", s.Name)
	}
	switch {
	case strings.TrimSpace(s.Description) == "":
		v.add("description", "required: one line saying what the scenario models")
	case strings.ContainsAny(s.Description, "\r\n"):
		v.add("description", "must be one line; put longer text in doc")
	case len([]rune(s.Description)) > MaxDescriptionLen:
		v.add("description", "is %d characters; keep it to %d and put the rest in doc", len([]rune(s.Description)), MaxDescriptionLen)
	}
	if s.Duration <= 0 {
		v.add("duration", `must be > 0 (e.g. "30s")`)
	} else if s.Duration.D() > 24*time.Hour {
		v.add("duration", "%v is longer than 24h; shorten it", s.Duration)
	}
	v.farm(&s.Farm)
	v.users(s)
	v.pages(&s.Pages)
	v.session(&s.Session)
	v.client(&s.Client)
	v.rate(s)
	v.faults(s)
	return errors.Join(v.errs...)
}

func (v *validator) farm(f *Farm) {
	if f.WebServers < 1 || f.WebServers > 1000 {
		v.add("farm.web_servers", "%d: must be 1..1000", f.WebServers)
	}
	if f.Partitions < 1 || f.Partitions > 1000 {
		v.add("farm.partitions", "%d: must be 1..1000", f.Partitions)
	}
	switch f.LoadBalancing {
	case LBSticky, LBRoundRobin, LBRandom:
	default:
		v.add("farm.load_balancing", "unknown mode %q; use sticky, round-robin or random", f.LoadBalancing)
	}
	if len(f.Apps) == 0 {
		v.add("farm.apps", `needs at least one app, e.g. [{id: "/LM/W3SVC/1/ROOT"}]`)
	}
	seen := map[string]bool{}
	sum := 0.0
	for i, a := range f.Apps {
		p := fmt.Sprintf("farm.apps[%d]", i)
		switch {
		case a.ID == "":
			v.add(p+".id", `required, e.g. "/LM/W3SVC/1/ROOT"`)
		case strings.IndexFunc(a.ID, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII }) >= 0:
			v.add(p+".id", "%q: use printable ASCII without spaces, e.g. \"/LM/W3SVC/1/ROOT\"", a.ID)
		case seen[strings.ToLower(a.ID)]:
			v.add(p+".id", "%q is listed twice (ids are case-insensitive); merge the entries", a.ID)
		}
		seen[strings.ToLower(a.ID)] = true
		if !(a.Weight >= 0) || math.IsInf(a.Weight, 0) {
			v.add(p+".weight", "%v: must be a finite number >= 0", a.Weight)
		} else {
			sum += a.Weight
		}
	}
	if len(f.Apps) > 0 && sum <= 0 {
		v.add("farm.apps", "the weights sum to 0; give at least one app a weight > 0")
	}
}

func (v *validator) users(s *Scenario) {
	u := &s.Users
	if u.Population < 0 || u.Population > 1_000_000 {
		v.add("users.population", "%d: must be 0 (open arrivals from rate) or 1..1000000 concurrent users", u.Population)
	}
	v.dist("users.pages_per_session", u.PagesPerSession, unitNumber)
	v.dist("users.think_time", u.ThinkTime, unitDuration)
	if u.Population > 0 && u.ThinkTime.Mean() <= 0 {
		v.add("users.think_time", "mean must be > 0 with users.population (the page rate is population / mean think time)")
	}
	if !(u.AbandonFraction >= 0 && u.AbandonFraction <= 1) {
		v.add("users.abandon_fraction", "%v: must be 0..1 (the rest of the sessions expire)", u.AbandonFraction)
	}
}

func (v *validator) pages(p *Pages) {
	v.mix("pages.mix", p.Mix, true)
	v.dist("pages.exec_time", p.ExecTime, unitDuration)
	if !(p.Burst.Probability >= 0 && p.Burst.Probability <= 1) {
		v.add("pages.burst.probability", "%v: must be 0..1", p.Burst.Probability)
	}
	v.dist("pages.burst.size", p.Burst.Size, unitNumber)
	if p.Burst.Mix != nil {
		v.mix("pages.burst.mix", p.Burst.Mix, true)
	}
}

func (v *validator) mix(path string, m Mix, required bool) {
	if m == nil {
		if required {
			v.add(path, "required: weights per page kind, e.g. {modify: 1, read-only: 1}")
		}
		return
	}
	sum := 0.0
	for _, k := range slices.Sorted(func(yield func(PageKind) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}) {
		w := m[k]
		if !slices.Contains(pageKindNames(), string(k)) {
			v.add(path+"."+string(k), "unknown page kind %q; use one of %s", k, strings.Join(pageKindNames(), ", "))
			continue
		}
		if !(w >= 0) || math.IsInf(w, 0) {
			v.add(path+"."+string(k), "%v: weight must be a finite number >= 0", w)
			continue
		}
		sum += w
	}
	if sum <= 0 {
		v.add(path, "the weights sum to 0; give at least one page kind a weight > 0 (e.g. modify: 1)")
	}
}

func (v *validator) session(d *SessionData) {
	v.dist("session.size", d.Size, unitBytes)
	v.dist("session.growth_per_modify", d.GrowthPerModify, unitBytes)
	if d.MaxBytes < 1 || d.MaxBytes > math.MaxInt32 {
		v.add("session.max_bytes", "%d: must be 1..%d (the client sends one Int32-length body)", d.MaxBytes, math.MaxInt32)
	}
	if d.Size.Kind != "" && d.MaxBytes > 0 {
		lo := d.Size.Min
		if d.Size.Kind == DistConstant {
			lo = d.Size.Value
		}
		if lo > float64(d.MaxBytes) {
			v.add("session.size", "the smallest size %.0f is above session.max_bytes %d; lower it or raise max_bytes", lo, d.MaxBytes)
		}
	}
}

func (v *validator) client(c *Client) {
	if c.SessionTimeout < 1 || c.SessionTimeout > MaxSessionTimeout {
		v.add("client.session_timeout", "%d: must be 1..%d minutes (e.g. 20)", c.SessionTimeout, MaxSessionTimeout)
	}
	positive := func(path string, d Duration, example string) {
		if d <= 0 {
			v.add(path, "%v: must be > 0 (e.g. %q)", d, example)
		}
	}
	positive("client.execution_timeout", c.ExecutionTimeout, "110s")
	positive("client.lock_poll_interval", c.LockPollInterval, "500ms")
	positive("client.state_network_timeout", c.NetworkTimeout, "10s")
	positive("client.connection_idle_timeout", c.IdleTimeout, "5s")
	if c.RequestQueueLimitPerSession < -1 {
		v.add("client.request_queue_limit_per_session", "%d: must be at least 1, or -1 for no limit (e.g. 50)", c.RequestQueueLimitPerSession)
	}
}

func (v *validator) rate(s *Scenario) {
	r := &s.Rate
	if s.Users.Population > 0 {
		if r.Shape != "" || r.PagesPerSecond != 0 || r.From != 0 || r.To != 0 || r.Over != 0 || len(r.Steps) > 0 || r.Poisson {
			v.add("rate", "not used with users.population (the page rate is population / mean think time); remove rate or set population to 0")
		}
		return
	}
	checkRate := func(path string, x float64, mustBePositive bool) {
		switch {
		case math.IsNaN(x) || x < 0 || (mustBePositive && x == 0):
			v.add(path, "%v: must be > 0 pages per second (e.g. 200)", x)
		case x > MaxPagesPerSecond:
			v.add(path, "%v: must be <= %d pages per second", x, MaxPagesPerSecond)
		}
	}
	unused := func(path string, set bool, shape Shape) {
		if set {
			v.add(path, "not used by shape %s; remove it", shape)
		}
	}
	switch r.Shape {
	case ShapeConstant:
		checkRate("rate.pages_per_second", r.PagesPerSecond, true)
		unused("rate.from", r.From != 0, r.Shape)
		unused("rate.to", r.To != 0, r.Shape)
		unused("rate.over", r.Over != 0, r.Shape)
		unused("rate.steps", len(r.Steps) > 0, r.Shape)
	case ShapeRamp:
		checkRate("rate.from", r.From, false)
		checkRate("rate.to", r.To, false)
		if r.From == 0 && r.To == 0 {
			v.add("rate.to", "a ramp from 0 to 0 sends nothing; set to > 0 (e.g. 500)")
		}
		if r.Over <= 0 {
			v.add("rate.over", `must be > 0 (e.g. "20s"); omit it to ramp over the whole run`)
		}
		unused("rate.pages_per_second", r.PagesPerSecond != 0, r.Shape)
		unused("rate.steps", len(r.Steps) > 0, r.Shape)
	case ShapeSteps:
		if len(r.Steps) == 0 {
			v.add("rate.steps", `needs at least one step, e.g. [{pages_per_second: 100, duration: "10s"}]`)
		}
		any := false
		for i, st := range r.Steps {
			p := fmt.Sprintf("rate.steps[%d]", i)
			checkRate(p+".pages_per_second", st.PagesPerSecond, false)
			any = any || st.PagesPerSecond > 0
			if st.Duration <= 0 {
				v.add(p+".duration", `must be > 0 (e.g. "10s")`)
			}
		}
		if len(r.Steps) > 0 && !any {
			v.add("rate.steps", "every step has rate 0; give at least one step pages_per_second > 0")
		}
		unused("rate.pages_per_second", r.PagesPerSecond != 0, r.Shape)
		unused("rate.from", r.From != 0, r.Shape)
		unused("rate.to", r.To != 0, r.Shape)
		unused("rate.over", r.Over != 0, r.Shape)
	case "":
		v.add("rate.shape", "required unless users.population is set: constant, ramp or steps")
	default:
		v.add("rate.shape", "unknown shape %q; use constant, ramp or steps (and poisson: true for Poisson arrivals)", r.Shape)
	}
}

func (v *validator) faults(s *Scenario) {
	for i, f := range s.Faults {
		p := fmt.Sprintf("faults[%d]", i)
		if f.At < 0 {
			v.add(p+".at", `%v: must be >= 0 (an offset from the start, e.g. "10s")`, f.At)
		} else if s.Duration > 0 && f.At >= s.Duration {
			v.add(p+".at", "%v is not before the end of the run (duration %v); use an offset below it", f.At, s.Duration)
		}
		if f.Duration < 0 {
			v.add(p+".duration", "%v: must be >= 0", f.Duration)
		}
		needsDuration, noDuration := false, false
		switch f.Kind {
		case FaultRestart, FaultKill:
		case FaultPause, FaultLatency, FaultBlackhole:
			needsDuration = true
		case FaultResetConnections, FaultRecycle:
			noDuration = true
		case "":
			v.add(p+".kind", "required: one of %s", strings.Join(faultKindNames(), ", "))
		default:
			v.add(p+".kind", "unknown fault kind %q; use one of %s", f.Kind, strings.Join(faultKindNames(), ", "))
		}
		switch {
		case needsDuration && f.Duration <= 0:
			v.add(p+".duration", `required for %s: how long it lasts, > 0 (e.g. "5s")`, f.Kind)
		case noDuration && f.Duration != 0:
			v.add(p+".duration", "%s is instantaneous; remove duration", f.Kind)
		case f.At >= 0 && f.At < s.Duration && f.At+f.Duration > s.Duration:
			v.add(p+".duration", "the fault ends at %v, after the run (duration %v); shorten it or start it earlier",
				(f.At + f.Duration).D(), s.Duration)
		}
		pp := p + ".params"
		if f.Kind == FaultLatency {
			if f.Params.Delay <= 0 {
				v.add(pp+".delay", `required for latency: the added delay, > 0 (e.g. "50ms")`)
			}
			if f.Params.Jitter < 0 || f.Params.Jitter > f.Params.Delay {
				v.add(pp+".jitter", "%v: must be 0..delay (%v)", f.Params.Jitter, f.Params.Delay)
			}
		} else {
			if f.Params.Delay != 0 {
				v.add(pp+".delay", "only used by latency; remove it")
			}
			if f.Params.Jitter != 0 {
				v.add(pp+".jitter", "only used by latency; remove it")
			}
		}
		if f.Kind == FaultRecycle {
			if f.Params.Partition != 0 {
				v.add(pp+".partition", "not used by recycle (it hits a web server); use web_server")
			}
			if f.Params.WebServer < 1 || f.Params.WebServer > s.Farm.WebServers {
				v.add(pp+".web_server", "%d: must be 1..farm.web_servers (%d)", f.Params.WebServer, s.Farm.WebServers)
			}
		} else {
			if f.Params.WebServer != 0 {
				v.add(pp+".web_server", "only used by recycle; remove it")
			}
			if f.Params.Partition < 0 || f.Params.Partition > s.Farm.Partitions {
				v.add(pp+".partition", "%d: must be 0 (every partition) or 1..farm.partitions (%d)", f.Params.Partition, s.Farm.Partitions)
			}
		}
	}
}

// dist checks a distribution of a non-negative quantity measured in u.
func (v *validator) dist(path string, d Dist, u unit) {
	// ex formats an example value in the distribution's unit; x is a
	// typical count, multiplied into seconds or KiB for the other units.
	ex := func(x float64) string {
		switch u {
		case unitDuration:
			return fmt.Sprintf("%q", seconds(x).String())
		case unitBytes:
			return fmt.Sprintf("%q", fmt.Sprintf("%gKiB", x))
		}
		return fmt.Sprintf("%g", x)
	}
	params := []struct {
		name string
		x    float64
	}{{"value", d.Value}, {"min", d.Min}, {"max", d.Max}, {"mean", d.Avg}, {"stddev", d.StdDev}}
	for _, p := range params {
		if !(p.x >= 0) || math.IsInf(p.x, 0) {
			v.add(path+"."+p.name, "%v: must be a finite number >= 0", p.x)
			return
		}
	}
	unused := func(names ...string) {
		for _, p := range params {
			if slices.Contains(names, p.name) && p.x != 0 {
				v.add(path+"."+p.name, "not used by %s; remove it", d.Kind)
			}
		}
	}
	clamps := func() {
		if d.Max != 0 && d.Max < d.Min {
			v.add(path+".max", "must be >= min (%s) or 0 for no upper clamp", ex(d.Min))
		}
	}
	switch d.Kind {
	case DistConstant:
		unused("min", "max", "mean", "stddev")
	case DistUniform:
		unused("value", "mean", "stddev")
		if d.Max <= d.Min {
			v.add(path+".max", "must be > min for uniform (e.g. min: %s, max: %s)", ex(1), ex(5))
		}
	case DistExponential:
		unused("value", "stddev")
		if d.Avg <= 0 {
			v.add(path+".mean", "required for exponential, must be > 0 (e.g. %s)", ex(5))
		}
		clamps()
	case DistLognormal:
		unused("value")
		if d.Avg <= 0 {
			v.add(path+".mean", "required for lognormal, must be > 0 (e.g. %s)", ex(4))
		}
		if d.StdDev <= 0 {
			v.add(path+".stddev", "required for lognormal, must be > 0 (e.g. %s)", ex(2))
		}
		clamps()
	case "":
		v.add(path+".dist", "required: constant, uniform, exponential or lognormal")
	default:
		v.add(path+".dist", "unknown distribution %q; use constant, uniform, exponential or lognormal", d.Kind)
	}
}

// pageKindNames lists the page kinds in documentation order.
func pageKindNames() []string {
	return []string{string(PageModify), string(PageReadUnchanged), string(PageReadOnly), string(PageSessionless), string(PageAbandon)}
}

// faultKindNames lists the fault kinds in documentation order.
func faultKindNames() []string {
	return []string{string(FaultRestart), string(FaultKill), string(FaultPause), string(FaultLatency),
		string(FaultResetConnections), string(FaultBlackhole), string(FaultRecycle)}
}
