package scenarios

import (
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBuiltinListMatchesEmbeddedFiles(t *testing.T) {
	files, err := fs.Glob(builtinFS, "builtin/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".yaml"))
	}
	slices.Sort(names)
	if !slices.Equal(names, builtinNames) {
		t.Fatalf("builtinNames = %v, embedded files = %v; keep the explicit list in step with builtin/", builtinNames, names)
	}
	if !slices.IsSorted(builtinNames) {
		t.Fatalf("builtinNames is not sorted: %v", builtinNames)
	}
	if len(builtinNames) < 6 {
		t.Fatalf("want at least 6 builtins, have %d", len(builtinNames))
	}
}

func TestBuiltinsLoadAndValidate(t *testing.T) {
	infos := Builtin()
	if len(infos) != len(builtinNames) {
		t.Fatalf("Builtin() returned %d entries, want %d", len(infos), len(builtinNames))
	}
	for _, info := range infos {
		t.Run(info.Name, func(t *testing.T) {
			s, err := Lookup(info.Name)
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if err := s.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if s.Name != info.Name {
				t.Errorf("name in file = %q, want the file name %q", s.Name, info.Name)
			}
			if info.Description != s.Description || strings.HasPrefix(info.Description, "(broken") {
				t.Errorf("Info.Description = %q, scenario description = %q", info.Description, s.Description)
			}
			if len(s.Doc) < 200 {
				t.Errorf("doc is %d characters; explain the farm and what it stresses", len(s.Doc))
			}
			// Modest defaults: this machine has 2 cores.
			if d := s.Duration.D(); d > time.Minute {
				t.Errorf("default duration %v is longer than a minute", d)
			}
			if peak := s.PeakPagesPerSecond(); peak < 10 || peak > 2000 {
				t.Errorf("peak page rate %.0f/s; keep builtins between 10 and 2000 pages/s", peak)
			}
			if rps := s.PeakPagesPerSecond() * s.RequestsPerPage(); rps > 2500 {
				t.Errorf("peak request rate %.0f/s (with bursts) is too high for a default run", rps)
			}
			// Sessions should mostly finish within a default run.
			if life := s.MeanSessionLife(); life > s.Duration.D() {
				t.Errorf("mean session life %v is longer than the run %v", life, s.Duration.D())
			}
		})
	}
}

func TestBuiltinsCoverTheFeatures(t *testing.T) {
	get := func(name string) *Scenario {
		t.Helper()
		s, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := get("ecommerce-peak"); s.Rate.Shape != ShapeRamp || !s.Rate.Poisson {
		t.Errorf("ecommerce-peak: want a Poisson ramp, have %+v", s.Rate)
	}
	if s := get("ajax-heavy"); s.Pages.Burst.Probability < 0.3 {
		t.Errorf("ajax-heavy: burst probability %v is not heavy", s.Pages.Burst.Probability)
	}
	if s := get("large-sessions"); s.Session.Size.Mean() < 64<<10 {
		t.Errorf("large-sessions: mean size %.0f is not large", s.Session.Size.Mean())
	}
	s := get("recycle-storm")
	recycles := 0
	for _, f := range s.Faults {
		if f.Kind == FaultRecycle {
			recycles++
		}
	}
	if recycles < 2 {
		t.Errorf("recycle-storm: %d recycle faults", recycles)
	}
	if s := get("read-mostly-portal"); s.Pages.Mix.Fraction(PageReadOnly)+s.Pages.Mix.Fraction(PageSessionless) < 0.6 {
		t.Errorf("read-mostly-portal: read-only+sessionless share %.2f", s.Pages.Mix.Fraction(PageReadOnly)+s.Pages.Mix.Fraction(PageSessionless))
	}
	if s := get("small-intranet"); s.Users.Population == 0 {
		t.Errorf("small-intranet: want the population model")
	}
}

func TestLookupUnknownListsBuiltins(t *testing.T) {
	_, err := Lookup("nope")
	if err == nil {
		t.Fatal("Lookup(nope) succeeded")
	}
	for _, n := range builtinNames {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not list builtin %q", err, n)
		}
	}
}

func TestLoad(t *testing.T) {
	s, err := Load("ecommerce-peak")
	if err != nil || s.Name != "ecommerce-peak" {
		t.Fatalf("Load(builtin) = %v, %v", s, err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "mine.yaml")
	if err := os.WriteFile(path, []byte("name: mine\ndescription: my farm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = Load(path)
	if err != nil || s.Name != "mine" {
		t.Fatalf("Load(file) = %v, %v", s, err)
	}
	_, err = Load("no-such-scenario")
	if err == nil || !strings.Contains(err.Error(), "small-intranet") {
		t.Errorf("Load(unknown name) error = %v; want it to list the builtins", err)
	}
	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing file) error = %v; want ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: bad\ndescription: d\nfarm:\n  web_server: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if err == nil || !strings.Contains(err.Error(), bad+":4: farm.web_server") {
		t.Errorf("Load(bad file) error = %v; want the file, line and field", err)
	}
}

func TestUnknownFieldNamesFieldAndLine(t *testing.T) {
	cases := []struct {
		yaml, want string
	}{
		{"name: a\ndescription: b\nspeed: 3\n", "s.yaml:3: speed: unknown field \"speed\"; known fields here: name, description"},
		{"name: a\ndescription: b\nusers:\n  think: 3s\n", "s.yaml:4: users.think: unknown field"},
		{"name: a\ndescription: b\nusers:\n  think_time: {dist: exponential, mean: 2s, median: 1s}\n", "s.yaml:4: users.think_time.median: unknown field \"median\""},
		{"name: a\ndescription: b\nfaults:\n  - at: 1s\n    kind: kill\n    sevrity: 3\n", "s.yaml:6: faults[0].sevrity: unknown field"},
		{"name: a\ndescription: b\nfaults:\n  - {at: 1s, kind: latency, duration: 1s, params: {delay: 5ms, spread: 1ms}}\n", "s.yaml:4: faults[0].params.spread: unknown field"},
		{"name: a\ndescription: b\nrate:\n  shape: steps\n  steps:\n    - {pages_per_second: 3, duration: 1s, ramp: true}\n", "s.yaml:6: rate.steps[0].ramp: unknown field"},
		{"name: a\ndescription: b\nsession:\n  sizes: 3\n", "s.yaml:4: session.sizes: unknown field"},
		{"name: a\ndescription: b\nfarm:\n  apps: [{id: /x, wieght: 2}]\n", "s.yaml:4: farm.apps[0].wieght: unknown field"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.yaml), "s.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q):\n got  %v\n want %q", c.yaml, err, c.want)
		}
	}
}

// base is a minimal valid scenario; bad inputs are appended to it.
const base = "name: t\ndescription: test\n"

func TestBadInputs(t *testing.T) {
	cases := []struct {
		name, yaml string
		path, msg  string // substrings expected in one FieldError
	}{
		{"negative rate", "rate: {shape: constant, pages_per_second: -5}", "rate.pages_per_second", "must be > 0"},
		{"zero rate", "rate: {shape: constant, pages_per_second: 0}", "rate.pages_per_second", "must be > 0"},
		{"huge rate", "rate: {shape: constant, pages_per_second: 1e9}", "rate.pages_per_second", "must be <="},
		{"mix weights sum to 0", "pages: {mix: {modify: 0, read-only: 0}}", "pages.mix", "sum to 0"},
		{"empty mix", "pages: {mix: {}}", "pages.mix", "sum to 0"},
		{"negative mix weight", "pages: {mix: {modify: -1, read-only: 2}}", "pages.mix.modify", ">= 0"},
		{"unknown page kind", "pages: {mix: {modify: 1, write: 2}}", "pages.mix.write", "unknown page kind"},
		{"app weights sum to 0", "farm: {apps: [{id: /a, weight: 0}, {id: /b, weight: 0}]}", "farm.apps", "sum to 0"},
		{"app without id", "farm: {apps: [{weight: 2}]}", "farm.apps[0].id", "required"},
		{"duplicate app", "farm: {apps: [{id: /LM/a}, {id: /lm/A}]}", "farm.apps[1].id", "twice"},
		{"think time missing mean", "users: {think_time: {dist: exponential}}", "users.think_time.mean", `e.g. "5s"`},
		{"lognormal missing stddev", "pages: {exec_time: {dist: lognormal, mean: 20ms}}", "pages.exec_time.stddev", "required for lognormal"},
		{"uniform max below min", "users: {think_time: {dist: uniform, min: 5s, max: 1s}}", "users.think_time.max", "must be > min"},
		{"constant with mean", "users: {think_time: {dist: constant, value: 1s, mean: 2s}}", "users.think_time.mean", "not used by constant"},
		{"clamp max below min", "users: {think_time: {dist: exponential, mean: 2s, min: 3s, max: 1s}}", "users.think_time.max", "must be >= min"},
		{"negative param", "session: {size: {dist: exponential, mean: -4}}", "session.size.mean", ">= 0"},
		{"unknown distribution", "users: {think_time: {dist: gamma, mean: 2s}}", "users.think_time.dist", "unknown distribution"},
		{"size for a time", "users: {think_time: {dist: constant, value: 4KiB}}", "users.think_time.value", "is a size"},
		{"time for a size", "session: {size: 2s}", "session.size", "is a duration"},
		{"unit on a count", "users: {pages_per_session: 3KiB}", "users.pages_per_session", "count"},
		{"garbage quantity", "users: {think_time: {dist: constant, value: soon}}", "users.think_time.value", "not a number"},
		{"timeout 0", "client: {session_timeout: 0}", "client.session_timeout", "1..525600"},
		{"timeout too big", "client: {session_timeout: 525601}", "client.session_timeout", "1..525600"},
		{"timeout negative", "client: {session_timeout: -3}", "client.session_timeout", "1..525600"},
		{"execution timeout without unit", "client: {execution_timeout: 110}", "client.execution_timeout", `"110s"`},
		{"execution timeout 0", "client: {execution_timeout: 0s}", "client.execution_timeout", "must be > 0"},
		{"negative poll interval", "client: {lock_poll_interval: -1s}", "client.lock_poll_interval", "must be > 0"},
		{"bad duration", "duration: soon", "duration", "not a duration"},
		{"zero duration", "duration: 0s", "duration", "must be > 0"},
		{"day-long duration", "duration: 48h", "duration", "24h"},
		{"unknown LB mode", "farm: {load_balancing: sticky-ish}", "farm.load_balancing", "sticky, round-robin or random"},
		{"zero web servers", "farm: {web_servers: 0}", "farm.web_servers", ">= 1"},
		{"negative partitions", "farm: {partitions: -2}", "farm.partitions", "1..1000"},
		{"web servers not a number", "farm: {web_servers: many}", "farm.web_servers", "cannot unmarshal"},
		{"type error in a flow mapping", "farm: {web_servers: 2, partitions: lots, load_balancing: sticky}", "farm.partitions", "cannot unmarshal"},
		{"lognormal count example", "users: {pages_per_session: {dist: lognormal, mean: 8}}", "users.pages_per_session.stddev", "(e.g. 2)"},
		{"lognormal size example", "session: {size: {dist: lognormal, stddev: 1KiB}}", "session.size.mean", `(e.g. "4KiB")`},
		{"abandon fraction above 1", "users: {abandon_fraction: 1.5}", "users.abandon_fraction", "0..1"},
		{"burst probability negative", "pages: {burst: {probability: -0.1}}", "pages.burst.probability", "0..1"},
		{"population with rate", "users: {population: 10}\nrate: {shape: constant, pages_per_second: 5}", "rate", "not used with users.population"},
		{"negative population", "users: {population: -1}", "users.population", "must be 0"},
		{"unknown shape", "rate: {shape: sine}", "rate.shape", "unknown shape"},
		{"ramp 0 to 0", "rate: {shape: ramp, from: 0, to: 0}", "rate.to", "sends nothing"},
		{"ramp with pages_per_second", "rate: {shape: ramp, from: 1, to: 5, pages_per_second: 3}", "rate.pages_per_second", "not used by shape ramp"},
		{"constant with steps", "rate: {shape: constant, pages_per_second: 3, steps: [{pages_per_second: 1, duration: 1s}]}", "rate.steps", "not used by shape constant"},
		{"no steps", "rate: {shape: steps}", "rate.steps", "at least one step"},
		{"step without duration", "rate: {shape: steps, steps: [{pages_per_second: 10}]}", "rate.steps[0].duration", "must be > 0"},
		{"all steps zero", "rate: {shape: steps, steps: [{pages_per_second: 0, duration: 5s}]}", "rate.steps", "every step has rate 0"},
		{"unknown fault kind", "faults: [{at: 1s, kind: explode}]", "faults[0].kind", "unknown fault kind"},
		{"missing fault kind", "faults: [{at: 1s}]", "faults[0].kind", "required"},
		{"fault at beyond duration", "duration: 10s\nfaults: [{at: 20s, kind: kill}]", "faults[0].at", "not before the end of the run"},
		{"fault at negative", "faults: [{at: -1s, kind: kill}]", "faults[0].at", ">= 0"},
		{"fault ends after run", "duration: 10s\nfaults: [{at: 8s, kind: pause, duration: 5s}]", "faults[0].duration", "after the run"},
		{"pause without duration", "faults: [{at: 1s, kind: pause}]", "faults[0].duration", "required for pause"},
		{"blackhole without duration", "faults: [{at: 1s, kind: blackhole}]", "faults[0].duration", "required for blackhole"},
		{"recycle with duration", "faults: [{at: 1s, kind: recycle, duration: 2s}]", "faults[0].duration", "instantaneous"},
		{"recycle of a missing server", "faults: [{at: 1s, kind: recycle, params: {web_server: 3}}]", "faults[1-9]?\\]?|faults[0].params.web_server", "1..farm.web_servers"},
		{"recycle with partition", "faults: [{at: 1s, kind: recycle, params: {partition: 1}}]", "faults[0].params.partition", "not used by recycle"},
		{"latency without delay", "faults: [{at: 1s, kind: latency, duration: 2s}]", "faults[0].params.delay", "required for latency"},
		{"jitter above delay", "faults: [{at: 1s, kind: latency, duration: 2s, params: {delay: 5ms, jitter: 10ms}}]", "faults[0].params.jitter", "0..delay"},
		{"delay on a kill", "faults: [{at: 1s, kind: kill, params: {delay: 5ms}}]", "faults[0].params.delay", "only used by latency"},
		{"partition out of range", "faults: [{at: 1s, kind: pause, duration: 1s, params: {partition: 2}}]", "faults[0].params.partition", "1..farm.partitions"},
		{"web server on a pause", "faults: [{at: 1s, kind: pause, duration: 1s, params: {web_server: 1}}]", "faults[0].params.web_server", "only used by recycle"},
		{"max bytes as duration", "session: {max_bytes: 3s}", "session.max_bytes", "is a duration"},
		{"max bytes fraction", "session: {max_bytes: 1.5}", "session.max_bytes", "whole number"},
		{"size above max bytes", "session: {size: 2MiB, max_bytes: 1MiB}", "session.size", "above session.max_bytes"},
		{"dist as a list", "users: {think_time: [1, 2]}", "users.think_time", "expected a distribution"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(base+c.yaml+"\n"), "bad.yaml")
			if err == nil {
				t.Fatalf("Parse accepted %q", c.yaml)
			}
			path := c.path
			if strings.Contains(path, "|") { // the recycle case: take the plain alternative
				path = path[strings.LastIndexByte(path, '|')+1:]
			}
			var found bool
			for _, e := range unjoin(err) {
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Errorf("error %v is not a *FieldError", e)
					continue
				}
				if fe.File != "bad.yaml" {
					t.Errorf("error %v: file %q", fe, fe.File)
				}
				if fe.Line < 3 {
					t.Errorf("error %v: line %d, want the line of the field (>= 3)", fe, fe.Line)
				}
				if fe.Path == path && strings.Contains(fe.Msg, c.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("want an error at %s containing %q; got:\n%v", path, c.msg, err)
			}
		})
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	src := base + `duration: 10s
farm:
  web_server: 2
  load_balancing: nowhere
users:
  think_time: {dist: exponential}
client:
  session_timeout: 0
  execution_timeout: 110
faults:
  - {at: 20s, kind: explode}
`
	_, err := Parse([]byte(src), "many.yaml")
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{
		"many.yaml:5: farm.web_server: unknown field",
		"many.yaml:6: farm.load_balancing: unknown mode",
		"many.yaml:8: users.think_time.mean: required for exponential",
		"many.yaml:10: client.session_timeout: must be 1..525600",
		"many.yaml:11: client.execution_timeout: duration \"110\" has no unit",
		"many.yaml:13: faults[0].at: 20s is not before the end of the run",
		"many.yaml:13: faults[0].kind: unknown fault kind",
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if i >= len(lines) || !strings.HasPrefix(lines[i], w) {
			t.Errorf("problem %d: want prefix %q; all:\n%v", i, w, err)
		}
	}
}

func TestSyntaxErrorsAndDocuments(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"name: [unclosed\n", "s.yaml: yaml:"},
		{"", "empty scenario"},
		{"name: a\ndescription: b\n---\nname: c\n", "one YAML document"},
		{"name: a\nname: b\ndescription: c\n", "already defined"},
		{"- a\n- b\n", "cannot unmarshal"},
	} {
		_, err := Parse([]byte(c.src), "s.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) error = %v; want %q", c.src, err, c.want)
		}
	}
}

func TestMinimalFileGetsDefaults(t *testing.T) {
	s, err := Parse([]byte("name: default\ndescription: "+strconv.Quote(DefaultScenario().Description)+"\n"), "min.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, DefaultScenario()) {
		t.Errorf("minimal file:\n%+v\nDefaultScenario:\n%+v", s, DefaultScenario())
	}
	d := DefaultScenario()
	checks := []struct {
		name      string
		got, want any
	}{
		{"duration", d.Duration.D(), 30 * time.Second},
		{"web servers", d.Farm.WebServers, 1},
		{"apps", d.Farm.Apps, []App{{ID: "/LM/W3SVC/1/ROOT", Weight: 1}}},
		{"lb", d.Farm.LoadBalancing, LBSticky},
		{"partitions", d.Farm.Partitions, 1},
		{"rate", d.Rate, Rate{Shape: ShapeConstant, PagesPerSecond: 200}},
		{"session timeout", d.Client.SessionTimeout, 20},
		{"execution timeout", d.Client.ExecutionTimeout.D(), 110 * time.Second},
		{"poll", d.Client.LockPollInterval.D(), 500 * time.Millisecond},
		{"network timeout", d.Client.NetworkTimeout.D(), 10 * time.Second},
		{"idle", d.Client.IdleTimeout.D(), 5 * time.Second},
		{"version check on", d.Client.DisableVersionCheck, false},
		{"max bytes", d.Session.MaxBytes, int64(1 << 20)},
		{"mix", d.Pages.Mix, Mix{PageModify: 3, PageReadUnchanged: 4, PageReadOnly: 2, PageSessionless: 1}},
		{"burst probability", d.Pages.Burst.Probability, 0.0},
		{"abandon", d.Users.AbandonFraction, 0.0},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("default %s = %v, want %v", c.name, c.got, c.want)
		}
	}
	again := d.Clone()
	again.ApplyDefaults()
	if !reflect.DeepEqual(again, d) {
		t.Error("ApplyDefaults is not idempotent")
	}
}

func TestRoundTrip(t *testing.T) {
	all := []*Scenario{DefaultScenario()}
	for _, info := range Builtin() {
		s, err := Lookup(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, s)
	}
	// Exercise every field at least once.
	extra := DefaultScenario()
	extra.Name = "everything"
	extra.Doc = "multi\nline: doc"
	extra.Client.DisableVersionCheck = true
	extra.Pages.Burst = Burst{Probability: 0.25, Size: Dist{Kind: DistConstant, Value: 3}, Mix: Mix{PageAbandon: 1, PageModify: 2}}
	extra.Rate = Rate{Shape: ShapeSteps, Steps: []Step{{PagesPerSecond: 10, Duration: Duration(3 * time.Second)}, {PagesPerSecond: 0.5, Duration: Duration(1500 * time.Millisecond)}}}
	extra.Duration = Duration(4500 * time.Millisecond)
	extra.Farm.Partitions = 3
	extra.Faults = []Fault{
		{At: Duration(time.Second), Kind: FaultLatency, Duration: Duration(time.Second), Params: FaultParams{Delay: Duration(5 * time.Millisecond), Jitter: Duration(time.Millisecond), Partition: 2}},
		{At: Duration(2 * time.Second), Kind: FaultRestart, Duration: Duration(500 * time.Millisecond)},
		{At: Duration(3 * time.Second), Kind: FaultRecycle, Params: FaultParams{WebServer: 1}},
	}
	extra.Users.Population = 0
	extra.Session.GrowthPerModify = Dist{Kind: DistUniform, Min: 0, Max: 100}
	if err := extra.Validate(); err != nil {
		t.Fatal(err)
	}
	all = append(all, extra)
	for _, s := range all {
		data, err := s.Marshal()
		if err != nil {
			t.Fatalf("%s: Marshal: %v", s.Name, err)
		}
		back, err := Parse(data, s.Name+".yaml")
		if err != nil {
			t.Fatalf("%s: Parse(Marshal): %v\n%s", s.Name, err, data)
		}
		if !reflect.DeepEqual(back, s) {
			t.Errorf("%s: round trip differs:\n%+v\n%+v\n%s", s.Name, s, back, data)
		}
		// JSON too, for result files written as JSON.
		js, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("%s: json.Marshal: %v", s.Name, err)
		}
		var fromJSON Scenario
		if err := json.Unmarshal(js, &fromJSON); err != nil {
			t.Fatalf("%s: json.Unmarshal: %v\n%s", s.Name, err, js)
		}
		if !reflect.DeepEqual(&fromJSON, s) {
			t.Errorf("%s: JSON round trip differs:\n%+v\n%+v\n%s", s.Name, s, &fromJSON, js)
		}
	}
}

func TestDurationYAML(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"500ms", 500 * time.Millisecond, ""},
		{"1m30s", 90 * time.Second, ""},
		{"0", 0, ""},
		{"2", 0, "no unit"},
		{"2 s", 0, "not a duration"},
		{"[1]", 0, "expected a duration"},
	} {
		s, err := Parse([]byte(base+"client: {execution_timeout: "+c.in+"}\n"), "d.yaml")
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
		case c.want == 0:
			if err == nil || !strings.Contains(err.Error(), "client.execution_timeout: must be > 0") {
				t.Errorf("%q: error %v, want the explicit-zero message", c.in, err)
			}
		case err != nil:
			t.Errorf("%q: %v", c.in, err)
		case s.Client.ExecutionTimeout.D() != c.want:
			t.Errorf("%q: got %v, want %v", c.in, s.Client.ExecutionTimeout, c.want)
		}
	}
}

func TestQuantities(t *testing.T) {
	for _, c := range []struct {
		in   string
		want float64
		u    unit
	}{
		{"12", 12, unitNumber}, {"1.5", 1.5, unitNumber}, {"250ms", 0.25, unitDuration}, {"2m", 120, unitDuration},
		{"4KiB", 4096, unitBytes}, {"1MiB", 1 << 20, unitBytes}, {"10KB", 10000, unitBytes}, {"512B", 512, unitBytes},
		{"1.5 KiB", 1536, unitBytes},
	} {
		got, u, err := parseQuantity(c.in)
		if err != nil || got != c.want || u != c.u {
			t.Errorf("parseQuantity(%q) = %v, %v, %v; want %v, %v", c.in, got, u, err, c.want, c.u)
		}
	}
	for _, bad := range []string{"", "abc", "NaN", "Inf", "4XiB", "KiB"} {
		if _, _, err := parseQuantity(bad); err == nil {
			t.Errorf("parseQuantity(%q) accepted", bad)
		}
	}
}

func TestDistScalarShorthand(t *testing.T) {
	s, err := Parse([]byte(base+"users: {think_time: 1500ms, pages_per_session: 4}\nsession: {size: 8KiB}\n"), "d.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Users.ThinkTime; got != (Dist{Kind: DistConstant, Value: 1.5}) {
		t.Errorf("think_time = %+v", got)
	}
	if got := s.Users.PagesPerSession; got != (Dist{Kind: DistConstant, Value: 4}) {
		t.Errorf("pages_per_session = %+v", got)
	}
	if got := s.Session.Size; got != (Dist{Kind: DistConstant, Value: 8192}) {
		t.Errorf("size = %+v", got)
	}
}

// TestDistributions samples each family with a fixed seed and checks the
// bounds and that the sample mean agrees with Mean within 4 standard errors.
func TestDistributions(t *testing.T) {
	const n = 200_000
	cases := []struct {
		name       string
		d          Dist
		lo, hi     float64 // bounds every sample must respect
		paramMean  float64 // the documented mean when unclamped (0: skip)
		paramStdev float64
	}{
		{"constant", Dist{Kind: DistConstant, Value: 3}, 3, 3, 3, 0},
		{"uniform", Dist{Kind: DistUniform, Min: 2, Max: 6}, 2, 6, 4, 0},
		{"exponential", Dist{Kind: DistExponential, Avg: 2}, 0, math.Inf(1), 2, 2},
		{"exponential clamped", Dist{Kind: DistExponential, Avg: 2, Min: 0.5, Max: 5}, 0.5, 5, 0, 0},
		{"exponential max only", DefaultThinkTime(), 0, 20, 0, 0},
		{"lognormal", Dist{Kind: DistLognormal, Avg: 4096, StdDev: 2048}, 0, math.Inf(1), 4096, 2048},
		{"lognormal clamped", DefaultSessionSize(), 64, 256 << 10, 0, 0},
		{"lognormal heavy clamp", Dist{Kind: DistLognormal, Avg: 0.08, StdDev: 0.3, Min: 0.01, Max: 0.2}, 0.01, 0.2, 0, 0},
		{"pages default", DefaultPagesPerSession(), 1, 100, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var sum, sumSq float64
			for range n {
				x := c.d.Sample(r)
				if x < c.lo || x > c.hi {
					t.Fatalf("sample %v outside [%v, %v]", x, c.lo, c.hi)
				}
				sum += x
				sumSq += x * x
			}
			mean := sum / n
			sd := math.Sqrt(max(0, sumSq/n-mean*mean))
			tol := 4*sd/math.Sqrt(n) + 1e-12
			if got := c.d.Mean(); math.Abs(mean-got) > tol {
				t.Errorf("sample mean %.6g, Mean() %.6g, tolerance %.3g", mean, got, tol)
			}
			if c.paramMean != 0 && math.Abs(c.d.Mean()-c.paramMean) > 1e-9*c.paramMean {
				t.Errorf("Mean() = %v, want the parameter %v", c.d.Mean(), c.paramMean)
			}
			if c.paramStdev != 0 && math.Abs(sd-c.paramStdev) > 0.05*c.paramStdev {
				t.Errorf("sample stddev %.4g, want about %.4g", sd, c.paramStdev)
			}
		})
	}
}

func TestSampleHelpers(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	d := Dist{Kind: DistUniform, Min: 0.1, Max: 0.2}
	for range 1000 {
		if got := d.SampleDuration(r); got < 100*time.Millisecond || got > 200*time.Millisecond {
			t.Fatalf("SampleDuration = %v", got)
		}
	}
	if got := d.MeanDuration(); got != 150*time.Millisecond {
		t.Errorf("MeanDuration = %v", got)
	}
	u := Users{PagesPerSession: Dist{Kind: DistExponential, Avg: 0.3}}
	b := Burst{Size: Dist{Kind: DistUniform, Min: 0, Max: 3}}
	for range 1000 {
		if p := u.SamplePages(r); p < 1 {
			t.Fatalf("SamplePages = %d", p)
		}
		if s := b.SampleSize(r); s < 2 || s > 3 {
			t.Fatalf("SampleSize = %d", s)
		}
	}
	if m := u.MeanPages(); m < 1 {
		t.Errorf("MeanPages = %v", m)
	}
}

func TestMixPick(t *testing.T) {
	m := Mix{PageModify: 3, PageReadOnly: 1, PageAbandon: 0}
	r := rand.New(rand.NewPCG(5, 6))
	counts := map[PageKind]int{}
	const n = 100_000
	for range n {
		counts[m.Pick(r)]++
	}
	if counts[PageAbandon] != 0 || len(counts) != 2 {
		t.Errorf("counts = %v", counts)
	}
	if f := float64(counts[PageModify]) / n; math.Abs(f-m.Fraction(PageModify)) > 0.01 {
		t.Errorf("modify share %.3f, want %.3f", f, m.Fraction(PageModify))
	}
	if got := m.Kinds(); !slices.Equal(got, []PageKind{PageModify, PageReadOnly}) {
		t.Errorf("Kinds = %v", got)
	}
	if (Mix{}).Pick(r) != "" {
		t.Error("empty mix picked something")
	}
	f := Farm{Apps: []App{{ID: "/a", Weight: 1}, {ID: "/b", Weight: 0}, {ID: "/c", Weight: 1}}}
	seen := map[string]int{}
	for range 10_000 {
		seen[f.PickApp(r).ID]++
	}
	if seen["/b"] != 0 || seen["/a"] < 4500 || seen["/c"] < 4500 {
		t.Errorf("PickApp counts = %v", seen)
	}
}

func TestRateShapes(t *testing.T) {
	sec := func(x float64) time.Duration { return time.Duration(x * float64(time.Second)) }
	ramp := DefaultScenario()
	ramp.Rate = Rate{Shape: ShapeRamp, From: 100, To: 300, Over: Duration(sec(10))}
	ramp.Duration = Duration(sec(20))
	for _, c := range []struct {
		t    float64
		want float64
	}{{-1, 0}, {0, 100}, {5, 200}, {10, 300}, {15, 300}} {
		if got := ramp.PagesPerSecondAt(sec(c.t)); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("ramp at %vs = %v, want %v", c.t, got, c.want)
		}
	}
	if got := ramp.ExpectedPages(); math.Abs(got-(2000+3000)) > 1e-6 {
		t.Errorf("ramp ExpectedPages = %v, want 5000", got)
	}
	if ramp.PeakPagesPerSecond() != 300 {
		t.Errorf("ramp peak = %v", ramp.PeakPagesPerSecond())
	}

	steps, err := Lookup("read-mostly-portal")
	if err != nil {
		t.Fatal(err)
	}
	if steps.Duration.D() != 30*time.Second {
		t.Errorf("steps duration defaulted to %v, want the 30s sum of the steps", steps.Duration)
	}
	for _, c := range []struct{ t, want float64 }{{0, 200}, {9.9, 200}, {10, 600}, {25, 300}, {40, 300}} {
		if got := steps.PagesPerSecondAt(sec(c.t)); got != c.want {
			t.Errorf("steps at %vs = %v, want %v", c.t, got, c.want)
		}
	}
	if got := steps.ExpectedPages(); got != 11000 {
		t.Errorf("steps ExpectedPages = %v, want 11000", got)
	}
	if got, want := steps.SessionsPerSecondAt(sec(12)), 600/steps.Users.MeanPages(); math.Abs(got-want) > 1e-9 {
		t.Errorf("SessionsPerSecondAt = %v, want %v", got, want)
	}

	pop, err := Lookup("small-intranet")
	if err != nil {
		t.Fatal(err)
	}
	want := float64(pop.Users.Population) / pop.Users.ThinkTime.Mean()
	if got := pop.PagesPerSecondAt(sec(3)); math.Abs(got-want) > 1e-9 {
		t.Errorf("population rate = %v, want %v", got, want)
	}
	if got := pop.ExpectedPages(); math.Abs(got-want*30) > 1e-6 {
		t.Errorf("population ExpectedPages = %v", got)
	}
	if pop.SessionsPerSecondAt(0) <= 0 {
		t.Error("population SessionsPerSecondAt is not positive")
	}

	aj, err := Lookup("ajax-heavy")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aj.RequestsPerPage(), 1+0.6*5.5; math.Abs(got-want) > 1e-9 {
		t.Errorf("RequestsPerPage = %v, want %v", got, want)
	}
}

func TestSortedFaultsAndClone(t *testing.T) {
	s := DefaultScenario()
	s.Faults = []Fault{
		{At: Duration(5 * time.Second), Kind: FaultKill},
		{At: Duration(time.Second), Kind: FaultPause, Duration: Duration(time.Second)},
		{At: Duration(5 * time.Second), Kind: FaultResetConnections},
	}
	got := s.SortedFaults()
	if got[0].Kind != FaultPause || got[1].Kind != FaultKill || got[2].Kind != FaultResetConnections {
		t.Errorf("SortedFaults = %+v", got)
	}
	if s.Faults[0].Kind != FaultKill {
		t.Error("SortedFaults changed the scenario")
	}
	c := s.Clone()
	c.Faults[0].Kind = FaultBlackhole
	c.Pages.Mix[PageModify] = 99
	c.Farm.Apps[0].ID = "/changed"
	if s.Faults[0].Kind != FaultKill || s.Pages.Mix[PageModify] != 3 || s.Farm.Apps[0].ID != DefaultAppID {
		t.Error("Clone shares memory with the original")
	}
}

func TestFieldErrorFormat(t *testing.T) {
	for _, c := range []struct {
		e    FieldError
		want string
	}{
		{FieldError{File: "a.yaml", Line: 3, Path: "x.y", Msg: "bad"}, "a.yaml:3: x.y: bad"},
		{FieldError{File: "a.yaml", Path: "x", Msg: "bad"}, "a.yaml: x: bad"},
		{FieldError{Path: "x", Msg: "bad"}, "x: bad"},
		{FieldError{Msg: "bad"}, "bad"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
}

func TestValidateGoValue(t *testing.T) {
	s := &Scenario{}
	err := s.Validate()
	if err == nil {
		t.Fatal("zero scenario validated")
	}
	// Without ApplyDefaults every required piece is reported, by path.
	for _, p := range []string{"name", "description", "duration", "farm.web_servers", "client.session_timeout", "pages.mix", "rate.shape"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(p) + `: `).MatchString(err.Error()) {
			t.Errorf("missing a problem for %s in:\n%v", p, err)
		}
	}
}

func TestSmallHelpers(t *testing.T) {
	p := Pages{Mix: Mix{PageModify: 1}}
	if got := p.BurstMix(); !reflect.DeepEqual(got, p.Mix) {
		t.Errorf("BurstMix without burst mix = %v", got)
	}
	p.Burst.Mix = Mix{PageReadOnly: 1}
	if got := p.BurstMix(); !reflect.DeepEqual(got, Mix{PageReadOnly: 1}) {
		t.Errorf("BurstMix = %v", got)
	}
	for _, c := range []struct {
		d    Dist
		want Dist
	}{
		{Dist{Kind: DistConstant, Value: 0.2}, Dist{Kind: DistConstant, Value: 1}},
		{Dist{Kind: DistUniform, Min: 0, Max: 0.5}, Dist{Kind: DistUniform, Min: 1, Max: 1}},
		{Dist{Kind: DistUniform, Min: 0, Max: 5}, Dist{Kind: DistUniform, Min: 1, Max: 5}},
		{Dist{Kind: DistExponential, Avg: 3, Min: 2}, Dist{Kind: DistExponential, Avg: 3, Min: 2}},
		{Dist{Kind: DistLognormal, Avg: 3, StdDev: 1}, Dist{Kind: DistLognormal, Avg: 3, StdDev: 1, Min: 1}},
	} {
		if got := c.d.AtLeast(1); got != c.want {
			t.Errorf("%+v.AtLeast(1) = %+v, want %+v", c.d, got, c.want)
		}
	}
	for path, want := range map[string]string{"a.b[2]": "a.b", "a.b": "a", "a": "", "faults[0]": "faults"} {
		if got := parent(path); got != want {
			t.Errorf("parent(%q) = %q, want %q", path, got, want)
		}
	}
	if got := seconds(1e300); got != time.Duration(math.MaxInt64) {
		t.Errorf("seconds(huge) = %v", got)
	}
	if got := seconds(-1); got != 0 {
		t.Errorf("seconds(-1) = %v", got)
	}
}

func TestDurationJSON(t *testing.T) {
	var d Duration
	for in, want := range map[string]time.Duration{`"1.5s"`: 1500 * time.Millisecond, `0`: 0, `"0"`: 0} {
		if err := json.Unmarshal([]byte(in), &d); err != nil || d.D() != want {
			t.Errorf("json %s -> %v, %v; want %v", in, d, err, want)
		}
	}
	for _, in := range []string{`5`, `"soon"`, `true`} {
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("json %s accepted", in)
		}
	}
}

func TestValidateMessages(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"name: My Farm\ndescription: d\n", "v.yaml:1: name: \"My Farm\": use lower-case"},
		{"description: d\n", "v.yaml: name: required"},
		{"name: a\ndescription: \"two\\nlines\"\n", "v.yaml:2: description: must be one line"},
		{"name: a\ndescription: " + strings.Repeat("x", 101) + "\n", "v.yaml:2: description: is 101 characters"},
		{"name: a\ndescription: d\nusers: {population: 5, think_time: 0s}\n", "v.yaml:3: users.think_time: mean must be > 0 with users.population"},
		{"name: a\ndescription: d\nfaults:\n  - kind: kill\n    at: 99s\n", "v.yaml:5: faults[0].at: 1m39s is not before the end"},
		// A missing field is reported at the line of its nearest parent.
		{"name: a\ndescription: d\nfaults:\n  - kind: pause\n    at: 1s\n", "v.yaml:4: faults[0].duration: required for pause"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.yaml), "v.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q):\n got  %v\n want %q", c.yaml, err, c.want)
		}
	}
}
