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
	"strconv"
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
	raw, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	// Through encoding/json's map handling, so the keys of the structs
	// whose fields are not in sorted order (the scenario's) come out
	// sorted too; json.Number keeps every number as written.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Unmarshal decodes result.json bytes of this or an older schema version
// (converted to this one) and checks the version.
func Unmarshal(b []byte) (*Run, error) {
	var probe struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("not a result file: %w", err)
	}
	if probe.Schema != Schema && probe.Schema != SchemaV1 {
		return nil, fmt.Errorf("result schema is %q; this aspstate reads %q and %q", probe.Schema, Schema, SchemaV1)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	r := new(Run)
	if err := dec.Decode(r); err != nil {
		return nil, fmt.Errorf("result file: %w", err)
	}
	if probe.Schema == SchemaV1 {
		if err := fromV1(r); err != nil {
			return nil, fmt.Errorf("result file (%s): %w", SchemaV1, err)
		}
	}
	return r, nil
}

// fromV1 moves the outcomes a version 1 result kept in Config.Options into
// their fields, and marks r as this version.
func fromV1(r *Run) error {
	o := r.Config.Options
	var errs []error
	// take removes key from the options and parses it with parse.
	take := func(key string, parse func(string) error) {
		if v, ok := o[key]; ok {
			delete(o, key)
			if err := parse(v); err != nil {
				errs = append(errs, fmt.Errorf("config.options.%s %q: %w", key, v, err))
			}
		}
	}
	count := func(dst *int64) func(string) error {
		return func(v string) (err error) { *dst, err = strconv.ParseInt(v, 10, 64); return err }
	}
	take("skipped_checks", count(&r.Correctness.SkippedChecks))
	take("lost_writes_after_lock_break", count(&r.Locks.LostWritesAfterLockBreak))
	take("shard", func(v string) error { r.Config.Shard = v; return nil })
	take("page_source_error", func(v string) error {
		if r.Failure == "" {
			r.Failure = "the page source stopped: " + v
		}
		return nil
	})
	if _, ok := o["steady_sessions"]; ok {
		r.Seeding = &Seeding{}
		take("steady_sessions", count(&r.Seeding.Sessions))
		take("steady_seeding", func(v string) error { r.Seeding.Detail = v; return nil })
	}
	if _, ok := o["merged_results"]; ok {
		r.Merged = &Merged{}
		take("merged_results", func(v string) (err error) { r.Merged.Results, err = strconv.Atoi(v); return err })
		take("merged_shards", func(v string) error { r.Merged.Shards = strings.Split(v, ","); return nil })
		take("merged_start_skew", func(v string) error {
			d, err := time.ParseDuration(v)
			r.Merged.StartSkew = Duration(d)
			return err
		})
	}
	r.Schema = Schema
	return errors.Join(errs...)
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
