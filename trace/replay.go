package trace

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aspstate/aspstate/loadgen"
	"github.com/aspstate/aspstate/scenarios"
)

// Replay is a capture's pages, rebuilt as PageBuilder rebuilds them, ready
// to be run as load by the emulated ASP.NET client (aspstate load --trace).
type Replay struct {
	// Files are the captures, Sums their SHA-256 (hex), in Files' order.
	Files, Sums []string
	// Pages are the replayable pages (those whose kind the capture shows),
	// in start order; Unfinished counts the pages left out because the
	// capture does not show what they did.
	Pages      []*Page
	Unfinished int
	// Existing are the first pages of the sessions that existed before the
	// capture began: those sessions are seeded before the replay.
	Existing []*Page
	// Webs, Partitions and Apps are the farm: page fields index them.
	Webs       []netip.Addr
	Partitions []netip.AddrPort
	Apps       []string
	// First is the capture's first page start; Span runs to the last
	// page's start.
	First time.Time
	Span  time.Duration
	// Stats is what the reader saw; Fit the scenario fitted to the pages
	// (its client timers and apps serve the replay).
	Stats Stats
	Fit   *Fit

	web  map[netip.Addr]int
	part map[netip.AddrPort]int
	app  map[string]int
}

// ErrNoReplayablePage is returned when a capture holds no page whose kind
// it shows.
var ErrNoReplayablePage = errors.New("no page to replay: the capture shows no page from its start to its end (capture longer, or while the web servers serve pages)")

// LoadReplay reads the captures in paths and rebuilds their pages for a
// replay. The pages are held in memory (a page is a few dozen bytes; bodies
// are never kept).
func LoadReplay(ctx context.Context, paths []string, opt Options) (*Replay, error) {
	r := &Replay{web: map[netip.Addr]int{}, part: map[netip.AddrPort]int{}, app: map[string]int{}}
	for _, p := range paths {
		sum, err := fileSHA256(p)
		if err != nil {
			return nil, &FileError{Path: p, Err: err, Hint: "check the file name"}
		}
		r.Files, r.Sums = append(r.Files, filepath.Base(p)), append(r.Sums, sum)
	}
	fitter := NewFitter(FitOptions{Name: "replay", Source: strings.Join(r.Files, ", ")})
	b := NewPageBuilder(func(p *Page) error {
		if err := fitter.Add(p); err != nil {
			return err
		}
		if p.Kind == "" {
			r.Unfinished++
			return nil
		}
		r.Pages = append(r.Pages, p)
		return nil
	})
	st, err := Read(ctx, paths, opt, b.Add)
	r.Stats = st
	if err != nil {
		return r, err
	}
	if err := b.Flush(); err != nil {
		return r, err
	}
	if len(r.Pages) == 0 {
		return r, ErrNoReplayablePage
	}
	if r.Fit, err = fitter.Fit(); err != nil {
		return r, err
	}
	sort.SliceStable(r.Pages, func(i, j int) bool { return r.Pages[i].Start.Before(r.Pages[j].Start) })
	r.First = r.Pages[0].Start
	r.Span = r.Pages[len(r.Pages)-1].Start.Sub(r.First)
	for _, a := range r.Fit.Scenario.Farm.Apps {
		r.app[a.ID] = len(r.Apps)
		r.Apps = append(r.Apps, a.ID)
	}
	seen := map[SessionKey]bool{}
	for _, p := range r.Pages {
		if _, ok := r.web[p.Web]; !ok {
			r.web[p.Web] = len(r.Webs)
			r.Webs = append(r.Webs, p.Web)
		}
		if _, ok := r.part[p.Partition]; !ok {
			r.part[p.Partition] = len(r.Partitions)
			r.Partitions = append(r.Partitions, p.Partition)
		}
		if _, ok := r.app[p.Session.App]; !ok {
			r.app[p.Session.App] = len(r.Apps)
			r.Apps = append(r.Apps, p.Session.App)
		}
		if !seen[p.Session] {
			seen[p.Session] = true
			if p.Existed && !p.Created {
				r.Existing = append(r.Existing, p)
			}
		}
	}
	return r, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Kinds counts the replayable pages by kind.
func (r *Replay) Kinds() map[scenarios.PageKind]int {
	m := map[scenarios.PageKind]int{}
	for _, p := range r.Pages {
		m[p.Kind]++
	}
	return m
}

// ReplayOptions shape a replay: Speed divides the recorded offsets (and
// execution times), Copies runs that many copies of the capture, each
// with its own sessions, copy i starting i × Spread later.
type ReplayOptions struct {
	Speed  float64
	Copies int
	Spread time.Duration
}

func (o ReplayOptions) valid() error {
	switch {
	case !(o.Speed > 0) || math.IsInf(o.Speed, 0):
		return fmt.Errorf("--speed %g: want a positive factor (1 = the recorded pace, 2 = twice as fast)", o.Speed)
	case o.Copies < 1:
		return fmt.Errorf("--copies %d: want at least 1 copy of the capture", o.Copies)
	case o.Spread < 0:
		return fmt.Errorf("--copy-spread %s: must not be negative", o.Spread)
	}
	return nil
}

// Length is how long the replay's schedule runs: the capture's span at the
// speed, plus the copies' offsets.
func (r *Replay) Length(o ReplayOptions) time.Duration {
	return time.Duration(float64(r.Span)/o.Speed) + time.Duration(o.Copies-1)*o.Spread
}

// Scenario returns the farm the replay runs on: the fitted scenario's client
// timers and apps, one web server per recorded client address, one
// partition per recorded server address, and a constant rate of the
// replay's mean page rate (which the result reports as intended).
func (r *Replay) Scenario(o ReplayOptions) (*scenarios.Scenario, error) {
	if err := o.valid(); err != nil {
		return nil, err
	}
	sc := *r.Fit.Scenario
	sc.Name = "replay"
	sc.Description = "replay of " + strings.Join(r.Files, ", ")
	sc.Farm.WebServers = len(r.Webs)
	sc.Farm.Partitions = len(r.Partitions)
	apps := append([]scenarios.App(nil), sc.Farm.Apps...)
	for _, id := range r.Apps[len(apps):] {
		apps = append(apps, scenarios.App{ID: id, Weight: 1})
	}
	sc.Farm.Apps = apps
	d := r.Length(o) + time.Second
	sc.Duration = scenarios.Duration(d)
	rate := float64(len(r.Pages)*o.Copies) / max(d.Seconds(), 1e-3)
	sc.Rate = scenarios.Rate{Shape: scenarios.ShapeConstant, PagesPerSecond: rate}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("the replay's farm: %w", err)
	}
	return &sc, nil
}

// Options describe the replay for the result's config.
func (r *Replay) Options(o ReplayOptions) map[string]string {
	return map[string]string{
		"trace_files":     strings.Join(r.Files, ","),
		"trace_sha256":    strings.Join(r.Sums, ","),
		"trace_span":      r.Span.String(),
		"trace_exchanges": strconv.Itoa(r.Stats.Exchanges),
		"trace_pages":     strconv.Itoa(len(r.Pages)),
		"trace_seeded":    strconv.Itoa(len(r.Existing)),
		"replay_speed":    strconv.FormatFloat(o.Speed, 'g', -1, 64),
		"replay_copies":   strconv.Itoa(o.Copies),
		"copy_spread":     o.Spread.String(),
		"replay_timers":   "real: session timeouts and the lock-poll interval are not scaled by --speed",
	}
}

// replaySource is the replay as a loadgen.PageSource: the copies' pages merged in
// time order.
type replaySource struct {
	r    *Replay
	o    ReplayOptions
	next []int // per copy, the index of its next page
}

// Source returns the replay's pages as a load source, and the seeds of the
// sessions that existed before the capture (one per copy).
func (r *Replay) Source(o ReplayOptions) (loadgen.PageSource, []loadgen.SourcePage, error) {
	if err := o.valid(); err != nil {
		return nil, nil, err
	}
	var seeds []loadgen.SourcePage
	for c := 0; c < o.Copies; c++ {
		for _, p := range r.Existing {
			sp := r.page(p, c, o)
			sp.At, sp.Size = 0, max(p.ReadSize, 1)
			seeds = append(seeds, sp)
		}
	}
	return &replaySource{r: r, o: o, next: make([]int, o.Copies)}, seeds, nil
}

func (r *Replay) page(p *Page, c int, o ReplayOptions) loadgen.SourcePage {
	size := 0
	if p.Kind == scenarios.PageModify {
		size = p.BodySize
	}
	return loadgen.SourcePage{
		At:      time.Duration(float64(p.Start.Sub(r.First))/o.Speed) + time.Duration(c)*o.Spread,
		Session: strconv.Itoa(c) + "/" + p.Session.String(),
		App:     r.app[p.Session.App], Web: r.web[p.Web], Partition: r.part[p.Partition],
		Kind: p.Kind, Exec: time.Duration(float64(p.Exec) / o.Speed), Size: size,
	}
}

// Next returns the earliest next page of any copy.
func (s *replaySource) Next() (loadgen.SourcePage, bool) {
	best := -1
	var at time.Duration
	for c, i := range s.next {
		if i >= len(s.r.Pages) {
			continue
		}
		t := time.Duration(float64(s.r.Pages[i].Start.Sub(s.r.First))/s.o.Speed) + time.Duration(c)*s.o.Spread
		if best < 0 || t < at {
			best, at = c, t
		}
	}
	if best < 0 {
		return loadgen.SourcePage{}, false
	}
	p := s.r.Pages[s.next[best]]
	s.next[best]++
	return s.r.page(p, best, s.o), true
}
