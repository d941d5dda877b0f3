package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// File names inside a result directory.
const (
	ResultFile      = "result.json"
	SummaryFile     = "summary.txt"
	CorrectedLog    = "corrected.hlog"
	UncorrectedLog  = "uncorrected.hlog"
	resultFileMode  = 0o644
	resultDirectory = 0o755
)

// Marshal returns the deterministic JSON encoding of r: keys sorted, two-space
// indent, a final newline. Equal runs give equal bytes.
func Marshal(r *Run) ([]byte, error) {
	c := *r
	c.Start = c.Start.UTC()
	c.End = c.End.UTC()
	if c.Config.Scenario != nil {
		// Re-encode through encoding/json's map handling so nested keys are
		// sorted too, whatever produced the value.
		norm, err := normalize(c.Config.Scenario)
		if err != nil {
			return nil, fmt.Errorf("config.scenario: %w", err)
		}
		c.Config.Scenario = norm
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ScenarioObject converts any JSON-encodable value (a scenario struct) into
// the map stored in Config.Scenario, keeping integers exact.
func ScenarioObject(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("scenario does not encode as a JSON object: %w", err)
	}
	return m, nil
}

func normalize(m map[string]any) (map[string]any, error) { return ScenarioObject(m) }

// Unmarshal decodes result.json bytes and checks the schema version.
func Unmarshal(b []byte) (*Run, error) {
	var probe struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("not a result file: %w", err)
	}
	if probe.Schema != Schema {
		return nil, fmt.Errorf("result schema is %q; this aspstate reads %q", probe.Schema, Schema)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	r := new(Run)
	if err := dec.Decode(r); err != nil {
		return nil, fmt.Errorf("result file: %w", err)
	}
	return r, nil
}

// Write creates dir (and its parents) and writes result.json, the two .hlog
// files and summary.txt for r.
func Write(dir string, r *Run) error {
	if err := os.MkdirAll(dir, resultDirectory); err != nil {
		return fmt.Errorf("result directory: %w", err)
	}
	js, err := Marshal(r)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	files := []struct {
		name string
		data func() ([]byte, error)
	}{
		{ResultFile, func() ([]byte, error) { return js, nil }},
		{CorrectedLog, func() ([]byte, error) { return encodeLog(r, true) }},
		{UncorrectedLog, func() ([]byte, error) { return encodeLog(r, false) }},
		{SummaryFile, func() ([]byte, error) {
			var b bytes.Buffer
			Summary(&b, r)
			return b.Bytes(), nil
		}},
	}
	for _, f := range files {
		data, err := f.data()
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), data, resultFileMode); err != nil {
			return err
		}
	}
	return nil
}

// Read reads a result directory written by Write: result.json and, when
// present, the .hlog files into Run.Logs.
func Read(dir string) (*Run, error) {
	b, err := os.ReadFile(filepath.Join(dir, ResultFile))
	if err != nil {
		return nil, err
	}
	r, err := Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ResultFile), err)
	}
	for _, corrected := range []bool{true, false} {
		name := UncorrectedLog
		if corrected {
			name = CorrectedLog
		}
		f, err := os.Open(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		entries, err := ReadLog(f, corrected)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
		}
		r.Logs = append(r.Logs, entries...)
	}
	return r, nil
}

// encodeLog writes the entries of one kind as an HdrHistogram interval log,
// timestamps relative to the run start, in time then tag order.
func encodeLog(r *Run, corrected bool) ([]byte, error) {
	var entries []LogEntry
	for _, e := range r.Logs {
		if e.Corrected == corrected && e.Histogram != "" {
			entries = append(entries, e)
		}
	}
	sort.SliceStable(entries, func(i, j int) bool {
		if !entries[i].Start.Equal(entries[j].Start) {
			return entries[i].Start.Before(entries[j].Start)
		}
		return entries[i].Tag < entries[j].Tag
	})
	var b bytes.Buffer
	w := hdrhistogram.NewHistogramLogWriter(&b)
	base := r.Start.UnixMilli()
	kind := "uncorrected (from the actual send)"
	if corrected {
		kind = "corrected (from the intended start)"
	}
	if err := w.OutputLogFormatVersion(); err != nil {
		return nil, err
	}
	if err := w.OutputComment(fmt.Sprintf("[aspstate %s latency in nanoseconds; interval max in milliseconds]", kind)); err != nil {
		return nil, err
	}
	if err := w.OutputStartTime(base); err != nil {
		return nil, err
	}
	if err := w.OutputBaseTime(base); err != nil {
		return nil, err
	}
	w.SetBaseTime(base)
	if err := w.OutputLegend(); err != nil {
		return nil, err
	}
	for _, e := range entries {
		if strings.ContainsAny(e.Tag, ", \r\n") {
			return nil, fmt.Errorf("log tag %q has a comma, space or line break", e.Tag)
		}
		h, err := e.Decode()
		if err != nil {
			return nil, err
		}
		h.SetTag(e.Tag)
		h.SetStartTimeMs(e.Start.UnixMilli())
		h.SetEndTimeMs(e.End.UnixMilli())
		if err := w.OutputIntervalHistogram(h); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// ReadLog reads an HdrHistogram interval log written by Write.
func ReadLog(rd io.Reader, corrected bool) ([]LogEntry, error) {
	lr := hdrhistogram.NewHistogramLogReader(rd)
	var out []LogEntry
	for {
		h, err := lr.NextIntervalHistogram()
		if err != nil {
			return nil, err
		}
		if h == nil {
			return out, nil
		}
		e, err := NewLogEntry(corrected, h.Tag(), time.UnixMilli(h.StartTimeMs()).UTC(), time.UnixMilli(h.EndTimeMs()).UTC(), h)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
}
