package scenarios

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// UnmarshalYAML reads a Go duration string ("500ms", "2s", "1m30s") or a
// bare 0.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "expected a duration such as \"2s\"")
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return typeError(n, err.Error())
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// parseDuration accepts a Go duration string or a bare zero.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return 0, fmt.Errorf("duration %q has no unit; write e.g. \"%ss\" or \"%sms\"", s, s, s)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write e.g. \"500ms\", \"2s\" or \"1m30s\"", s)
	}
	return v, nil
}

// unit is what a Dist parameter measures, inferred from its YAML spelling.
type unit int

const (
	unitNumber   unit = iota // a bare number
	unitDuration             // a Go duration string, stored in seconds
	unitBytes                // a size with a byte suffix, stored in bytes
)

// sizeSuffixes maps byte-size suffixes to multipliers, longest first.
var sizeSuffixes = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"kB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

// parseQuantity reads a Dist parameter: a number, a duration (returned in
// seconds) or a byte size (returned in bytes).
func parseQuantity(s string) (float64, unit, error) {
	s = strings.TrimSpace(s)
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, 0, fmt.Errorf("%q is not a finite number", s)
		}
		return v, unitNumber, nil
	}
	for _, sf := range sizeSuffixes {
		if num, ok := strings.CutSuffix(s, sf.suffix); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				break
			}
			return v * sf.mult, unitBytes, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		return d.Seconds(), unitDuration, nil
	}
	return 0, 0, fmt.Errorf("%q is not a number, a duration (\"2s\") or a size (\"4KiB\")", s)
}

// distKeys are the keys of a Dist mapping, in documentation order.
var distKeys = []string{"dist", "value", "min", "max", "mean", "stddev"}

// UnmarshalYAML reads a Dist from a mapping ({dist: exponential, mean: 2s})
// or from a bare scalar meaning a constant ("2s", 4096, "4KiB"). Parameters
// accept numbers, durations (converted to seconds) and byte sizes.
func (d *Dist) UnmarshalYAML(n *yaml.Node) error {
	var out Dist
	switch n.Kind {
	case yaml.ScalarNode:
		v, _, err := parseQuantity(n.Value)
		if err != nil {
			return typeError(n, err.Error())
		}
		out = Dist{Kind: DistConstant, Value: v}
	case yaml.MappingNode:
		var problems []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "dist" {
				out.Kind = DistKind(v.Value)
				continue
			}
			var dst *float64
			switch k.Value {
			case "value":
				dst = &out.Value
			case "min":
				dst = &out.Min
			case "max":
				dst = &out.Max
			case "mean":
				dst = &out.Avg
			case "stddev":
				dst = &out.StdDev
			default:
				problems = append(problems, fmt.Sprintf("line %d: field %s not found in distribution (known fields: %s)",
					k.Line, k.Value, strings.Join(distKeys, ", ")))
				continue
			}
			if v.Kind != yaml.ScalarNode {
				problems = append(problems, fmt.Sprintf("line %d: expected a number, a duration or a size", v.Line))
				continue
			}
			x, _, err := parseQuantity(v.Value)
			if err != nil {
				problems = append(problems, fmt.Sprintf("line %d: %v", v.Line, err))
				continue
			}
			*dst = x
		}
		if len(problems) > 0 {
			return &yaml.TypeError{Errors: problems}
		}
	default:
		return typeError(n, "expected a distribution such as {dist: exponential, mean: 2s} or a constant")
	}
	*d = out
	return nil
}

// UnmarshalYAML reads an App; an omitted weight means 1.
func (a *App) UnmarshalYAML(unmarshal func(any) error) error {
	// The callback form keeps the decoder's KnownFields setting.
	type plain App
	p := plain{Weight: 1}
	if err := unmarshal(&p); err != nil {
		return err
	}
	*a = App(p)
	return nil
}

// typeError reports a problem with node n so that yaml.v3 collects it with
// the others (with its line) instead of aborting the decode.
func typeError(n *yaml.Node, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, msg)}}
}

// byteSize is an int64 number of bytes read from a number or a size string
// such as "256KiB".
type byteSize int64

// UnmarshalYAML reads a whole number of bytes, with an optional size suffix.
func (b *byteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, `expected a size such as 1048576 or "1MiB"`)
	}
	v, u, err := parseQuantity(n.Value)
	switch {
	case err != nil:
		return typeError(n, err.Error())
	case u == unitDuration:
		return typeError(n, fmt.Sprintf(`%q is a duration; write a size such as 1048576 or "1MiB"`, n.Value))
	case v != math.Trunc(v) || v > math.MaxInt64 || v < math.MinInt64:
		return typeError(n, fmt.Sprintf("%q is not a whole number of bytes", n.Value))
	}
	*b = byteSize(v)
	return nil
}

// UnmarshalYAML reads SessionData, accepting size strings for max_bytes.
func (d *SessionData) UnmarshalYAML(unmarshal func(any) error) error {
	// The callback form keeps the decoder's KnownFields setting.
	var raw struct {
		Size            Dist     `yaml:"size"`
		GrowthPerModify Dist     `yaml:"growth_per_modify"`
		MaxBytes        byteSize `yaml:"max_bytes"`
	}
	if err := unmarshal(&raw); err != nil {
		return err
	}
	*d = SessionData{Size: raw.Size, GrowthPerModify: raw.GrowthPerModify, MaxBytes: int64(raw.MaxBytes)}
	return nil
}

// MarshalJSON writes d as a Go duration string, like MarshalYAML.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a Go duration string or a bare 0.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n json.Number
		if json.Unmarshal(b, &n) != nil {
			return fmt.Errorf("expected a duration string such as \"2s\", got %s", b)
		}
		s = n.String()
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
