package compare

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
)

// The workload fields compare checks before comparing two sides. Runs that
// differ in any of them measured different things: their latencies and
// throughputs say nothing about a change of the server.
const (
	// FieldScenario is the scenario's content (every setting but its name,
	// description, rate, duration and population, which have fields of
	// their own), compared key by key and summarised as a content hash.
	FieldScenario = "scenario"
	// FieldModel is the load model: open or closed loop.
	FieldModel = "model"
	// FieldRate is the offered rate of an open-model run and its shape.
	FieldRate = "rate"
	// FieldPopulation is the user population of a population scenario, or
	// the users (connections) of a closed loop.
	FieldPopulation = "population"
	// FieldDuration is the planned length of the schedule.
	FieldDuration = "duration"
	// FieldSpeed and FieldCopies are a replay's speed-up and the number of
	// copies of the captured farm it ran (reserved: read from the run's
	// options "speed" and "copies" when a replay records them).
	FieldSpeed  = "speed"
	FieldCopies = "copies"
)

// WorkloadFields lists every workload field, in the order differences are
// reported; "all" in Options.AllowDifferent allows them all.
var WorkloadFields = []string{FieldScenario, FieldModel, FieldRate, FieldPopulation, FieldDuration, FieldSpeed, FieldCopies}

// rateTolerance is how far two offered rates may differ and still count as
// the same (the intended rate is measured from the schedule).
const rateTolerance = 0.01

// scenarioOwnFields are scenario keys compared under another field, or not
// part of the workload.
var scenarioOwnFields = map[string]bool{"name": true, "description": true, "doc": true, "rate": true, "duration": true,
	"users.population": true}

// ownField reports whether scenario key k (flattened, "rate.shape") is
// compared under another field or not part of the workload.
func ownField(k string) bool {
	first, _, _ := strings.Cut(k, ".")
	return scenarioOwnFields[k] || scenarioOwnFields[first]
}

// Difference is one workload field on which two runs differ.
type Difference struct {
	Field string
	// Base and New are the two values as printed.
	Base, New string
}

// MismatchError is the error of a comparison of runs that did not run the
// same workload. Its message lists every differing field.
type MismatchError struct {
	Differences []Difference
}

func (e *MismatchError) Error() string {
	var b strings.Builder
	b.WriteString("BASE and NEW did not run the same workload, so their figures are not comparable:")
	for _, d := range e.Differences {
		fmt.Fprintf(&b, "\n  %s: base %s, new %s", d.Field, d.Base, d.New)
	}
	var fields []string
	for _, d := range e.Differences {
		if !slices.Contains(fields, d.Field) {
			fields = append(fields, d.Field)
		}
	}
	fmt.Fprintf(&b, "\nrun both with the same workload, or accept the difference with --allow-different %s", strings.Join(fields, ","))
	return b.String()
}

// Workload is what a run offered, as compare checks it.
type Workload struct {
	// ScenarioHash is the SHA-256 of the scenario content (the keys of
	// FieldScenario), 12 hex digits.
	ScenarioHash string
	Model        string
	// Rate is the intended mean rate (open model; 0 otherwise), Shape the
	// rate's shape.
	Rate  float64
	Shape string
	// Population is the users of a population scenario or of a closed loop.
	Population string
	Duration   time.Duration
	Speed      string
	Copies     string

	scenario map[string]string // flattened scenario content, key → JSON value
}

// WorkloadOf returns the workload of r.
func WorkloadOf(r *results.Run) Workload {
	c := r.Config
	w := Workload{Model: c.Mode, Shape: c.Shape, Duration: time.Duration(c.Duration),
		Speed: c.Options["speed"], Copies: c.Options["copies"], scenario: map[string]string{}}
	if c.Mode == results.ModeOpen {
		w.Rate = c.Rate
	}
	flatten("", scenarioObject(c.Scenario), w.scenario)
	if p, ok := w.scenario["users.population"]; ok && p != "0" {
		w.Population = p
	}
	if c.Mode == results.ModeClosedLoop {
		w.Population = c.Options["connections"] + " connections"
	}
	keys := make([]string, 0, len(w.scenario))
	for k := range w.scenario {
		if !ownField(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\n", k, w.scenario[k])
	}
	w.ScenarioHash = hex.EncodeToString(h.Sum(nil))[:12]
	return w
}

// scenarioObject is the scenario as a JSON object (numbers kept exact),
// nil without one.
func scenarioObject(sc *scenarios.Scenario) map[string]any {
	if sc == nil {
		return nil
	}
	b, err := json.Marshal(sc)
	if err != nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return nil
	}
	return m
}

// flatten writes the leaves of v under prefix as "a.b.c" → JSON value.
func flatten(prefix string, v any, out map[string]string) {
	if m, ok := v.(map[string]any); ok {
		for k, x := range m {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flatten(key, x, out)
		}
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprint(v))
	}
	out[prefix] = string(b)
}

// Differences lists the workload fields on which new differs from base.
// Scenario settings one side does not record (a harness older or newer than
// the other's, which did not know the setting) are not compared.
func (base Workload) Differences(new Workload) []Difference {
	var out []Difference
	add := func(field, b, n string) { out = append(out, Difference{Field: field, Base: b, New: n}) }
	var keys []string
	for k, bv := range base.scenario {
		if nv, ok := new.scenario[k]; ok && nv != bv && !ownField(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) > 0 {
		var bs, ns []string
		for _, k := range keys {
			bs = append(bs, k+"="+base.scenario[k])
			ns = append(ns, k+"="+new.scenario[k])
		}
		add(FieldScenario, fmt.Sprintf("%s (%s)", base.ScenarioHash, strings.Join(bs, ", ")),
			fmt.Sprintf("%s (%s)", new.ScenarioHash, strings.Join(ns, ", ")))
	}
	if base.Model != new.Model {
		add(FieldModel, base.Model, new.Model)
	}
	if base.Model == new.Model && base.Model == results.ModeOpen &&
		(base.Shape != new.Shape || math.Abs(base.Rate-new.Rate) > rateTolerance*math.Max(base.Rate, new.Rate)) {
		add(FieldRate, base.rateText(), new.rateText())
	}
	if base.Population != new.Population {
		add(FieldPopulation, orNone(base.Population), orNone(new.Population))
	}
	if base.Duration != new.Duration {
		add(FieldDuration, base.Duration.String(), new.Duration.String())
	}
	if base.Speed != new.Speed {
		add(FieldSpeed, orNone(base.Speed), orNone(new.Speed))
	}
	if base.Copies != new.Copies {
		add(FieldCopies, orNone(base.Copies), orNone(new.Copies))
	}
	return out
}

func (w Workload) rateText() string {
	if w.Rate == 0 {
		return w.Shape
	}
	return strconv.FormatFloat(w.Rate, 'f', 1, 64) + "/s " + w.Shape
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// checkWorkloads returns a MismatchError when a run of either side ran
// another workload than BASE's first run, leaving out the fields allowed.
func checkWorkloads(base, new Side, allow []string) error {
	ref := WorkloadOf(base.Runs[0])
	var diffs []Difference
	seen := map[Difference]bool{}
	for _, runs := range [][]*results.Run{base.Runs[1:], new.Runs} {
		for _, r := range runs {
			for _, d := range ref.Differences(WorkloadOf(r)) {
				if slices.Contains(allow, d.Field) || slices.Contains(allow, "all") || seen[d] {
					continue
				}
				seen[d] = true
				diffs = append(diffs, d)
			}
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	return &MismatchError{Differences: diffs}
}

// ParseAllowDifferent reads the --allow-different list: workload fields
// separated by commas, or "all".
func ParseAllowDifferent(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" {
			continue
		}
		if f != "all" && !slices.Contains(WorkloadFields, f) {
			return nil, fmt.Errorf("unknown workload field %q (want %s or all)", f, strings.Join(WorkloadFields, ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

// ParseMinEffects reads the --min-effect list onto the defaults: items
// separated by commas, each [METRIC=]REL[+ABS] with REL a percentage and ABS
// in the metric's unit (a duration for latency, a rate for throughput, a
// percentage for errors). An item without METRIC sets every metric's
// relative effect and clears their absolute ones ("5%": any change of 5%).
func ParseMinEffects(s string) (map[Metric]Effect, error) {
	out := maps.Clone(DefaultEffects)
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		metric, val, named := strings.Cut(item, "=")
		if !named {
			val = metric
		}
		rel, abs, hasAbs := strings.Cut(val, "+")
		relF, err := parsePct(rel)
		if err != nil {
			return nil, fmt.Errorf("minimum effect %q: %v", item, err)
		}
		if !named {
			if hasAbs {
				return nil, fmt.Errorf("minimum effect %q: an amount needs a metric, such as p99=50%%+5ms", item)
			}
			for _, m := range Metrics {
				out[m] = Effect{Rel: relF}
			}
			continue
		}
		m := Metric(strings.ToLower(strings.TrimSpace(metric)))
		if !slices.Contains(Metrics, m) {
			return nil, fmt.Errorf("minimum effect %q: unknown metric %q (want p50, p90, p99, p99.9, max, throughput or errors)", item, metric)
		}
		e := Effect{Rel: relF}
		if hasAbs {
			t, err := ParseThreshold(fmt.Sprintf("%s < %s", m, abs))
			if err != nil {
				return nil, fmt.Errorf("minimum effect %q: amount %q is not a %s value", item, abs, m)
			}
			e.Abs = t.Limit
		}
		out[m] = e
	}
	return out, nil
}

// parsePct reads "5%" or a fraction "0.05".
func parsePct(s string) (float64, error) {
	s = strings.TrimSpace(s)
	p, isPct := strings.CutSuffix(s, "%")
	f, err := strconv.ParseFloat(p, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%q is not a percentage such as 5%% or a fraction such as 0.05", s)
	}
	if isPct {
		f /= 100
	}
	return f, nil
}
