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
	// Pages counts the replayable pages (those whose kind the capture
	// shows), streamed from a temporary schedule (see replay_schedule.go);
	// Unfinished counts the pages left out because the capture does not
	// show what they did.
	Pages      int
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

	web   map[netip.Addr]int
	part  map[netip.AddrPort]int
	app   map[string]int
	appOf []int // first-seen app index → index in Apps
	kinds map[scenarios.PageKind]int
	sched *schedule
}

// Close removes the replay's temporary schedule.
func (r *Replay) Close() error { return r.sched.close() }

// ErrNoReplayablePage is returned when a capture holds no page whose kind
// it shows.
var ErrNoReplayablePage = errors.New("no page to replay: the capture shows no page from its start to its end (capture longer, or while the web servers serve pages)")

// LoadReplay reads the captures in paths and rebuilds their pages for a
// replay. The pages are streamed to a temporary schedule (a few dozen bytes
// a page; bodies are never kept), which Close removes.
func LoadReplay(ctx context.Context, paths []string, opt Options) (*Replay, error) {
	r := &Replay{web: map[netip.Addr]int{}, part: map[netip.AddrPort]int{}, app: map[string]int{}, kinds: map[scenarios.PageKind]int{}}
	for _, p := range paths {
		sum, err := fileSHA256(p)
		if err != nil {
			return nil, &FileError{Path: p, Err: err, Hint: "check the file name"}
		}
		r.Files, r.Sums = append(r.Files, filepath.Base(p)), append(r.Sums, sum)
	}
	sched, err := newSchedule()
	if err != nil {
		return nil, fmt.Errorf("the replay's schedule: %w", err)
	}
	r.sched = sched
	fitter := NewFitter(FitOptions{Name: "replay", Source: strings.Join(r.Files, ", ")})
	var apps []string
	seenApp := map[string]int{}
	// A session's first page (in start order) and whether it found the
	// session there before the capture.
	type first struct {
		start int64
		page  *Page // set when it existed before the capture
	}
	firsts := map[uint64]first{}
	var clock time.Time
	var last time.Time
	b := NewPageBuilder(func(p *Page) error {
		if err := fitter.Add(p); err != nil {
			return err
		}
		if p.Kind == "" {
			r.Unfinished++
			return nil
		}
		emit := clock
		if p.End.After(emit) {
			emit = p.End
		}
		x := rec{start: p.Start.UnixNano(), end: p.End.UnixNano(), emit: emit.UnixNano(), exec: int64(p.Exec),
			sess: sessHash(p.Session), kind: kindCode(p.Kind)}
		if p.Kind == scenarios.PageModify {
			x.size = int32(p.BodySize)
		}
		if _, ok := r.web[p.Web]; !ok {
			r.web[p.Web] = len(r.Webs)
			r.Webs = append(r.Webs, p.Web)
		}
		if _, ok := r.part[p.Partition]; !ok {
			r.part[p.Partition] = len(r.Partitions)
			r.Partitions = append(r.Partitions, p.Partition)
		}
		if _, ok := seenApp[p.Session.App]; !ok {
			seenApp[p.Session.App] = len(apps)
			apps = append(apps, p.Session.App)
		}
		x.app, x.web, x.part = uint16(seenApp[p.Session.App]), uint16(r.web[p.Web]), uint16(r.part[p.Partition])
		if f, ok := firsts[x.sess]; !ok || x.start < f.start {
			f = first{start: x.start}
			if p.Existed && !p.Created {
				f.page = p
			}
			firsts[x.sess] = f
		}
		if r.Pages == 0 || p.Start.Before(r.First) {
			r.First = p.Start
		}
		if p.Start.After(last) {
			last = p.Start
		}
		r.Pages++
		r.kinds[p.Kind]++
		return r.sched.add(&x)
	})
	st, err := Read(ctx, paths, opt, func(ex *Exchange) error {
		if ex.ReplyEnd.After(clock) {
			clock = ex.ReplyEnd
		}
		return b.Add(ex)
	})
	r.Stats = st
	if err == nil {
		err = b.Flush()
	}
	if err == nil {
		err = r.sched.w.Flush()
	}
	if err == nil && r.Pages == 0 {
		err = ErrNoReplayablePage
	}
	if err == nil {
		r.Fit, err = fitter.Fit()
	}
	if err != nil {
		_ = r.Close()
		return r, err
	}
	r.Span = last.Sub(r.First)
	for _, a := range r.Fit.Scenario.Farm.Apps {
		r.app[a.ID] = len(r.Apps)
		r.Apps = append(r.Apps, a.ID)
	}
	for _, a := range apps {
		if _, ok := r.app[a]; !ok {
			r.app[a] = len(r.Apps)
			r.Apps = append(r.Apps, a)
		}
		r.appOf = append(r.appOf, r.app[a])
	}
	for _, f := range firsts {
		if f.page != nil {
			r.Existing = append(r.Existing, f.page)
		}
	}
	sort.Slice(r.Existing, func(i, j int) bool { return r.Existing[i].Start.Before(r.Existing[j].Start) })
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
	for k, n := range r.kinds {
		m[k] = n
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
	return r.farm(r.Length(o)+time.Second, r.Pages*o.Copies)
}

// farm is the replay's scenario for a schedule of pages pages over d.
func (r *Replay) farm(d time.Duration, pages int) (*scenarios.Scenario, error) {
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
	sc.Duration = scenarios.Duration(d)
	rate := float64(pages) / max(d.Seconds(), 1e-3)
	sc.Rate = scenarios.Rate{Shape: scenarios.ShapeConstant, PagesPerSecond: rate}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("the replay's farm: %w", err)
	}
	return &sc, nil
}

// Period is the capture's length as a loop: its span plus one mean gap
// between pages, so a capture played back to back keeps its mean rate
// (len(Pages) / Period). A capture of one instant counts as one second.
func (r *Replay) Period() time.Duration {
	if r.Span <= 0 || r.Pages < 2 {
		return time.Second
	}
	return r.Span + r.Span/time.Duration(r.Pages-1)
}

// RecordedRate is the capture's mean page rate, pages/s.
func (r *Replay) RecordedRate() float64 {
	return float64(r.Pages) / r.Period().Seconds()
}

// Multiple is the capture as times × today's traffic for a fixed length (a
// step of aspstate plan --trace): Lanes = ⌊times⌋ (at least 1) copies at
// Speed = times / Lanes, each looping over the capture (every loop with its
// own sessions), lane c entering the loop c/Lanes of a period in, so the
// lanes are spread over the capture rather than in step, and the rate is
// times × the recorded rate from the start. The sessions that existed before
// the capture are seeded for lane 0's first loop; the other lanes start
// inside the capture, where a session's first page finds no session and
// creates it, as a 404 does.
type Multiple struct {
	Times  float64
	Lanes  int
	Speed  float64
	Length time.Duration
	r      *Replay
}

// Multiple returns the replay at times × today's traffic for length.
func (r *Replay) Multiple(times float64, length time.Duration) (*Multiple, error) {
	if !(times > 0) || math.IsInf(times, 0) {
		return nil, fmt.Errorf("%g × today's traffic: want a positive multiple", times)
	}
	if length <= 0 {
		return nil, fmt.Errorf("replay length %s: want a positive duration", length)
	}
	lanes := max(1, int(math.Floor(times)))
	return &Multiple{Times: times, Lanes: lanes, Speed: times / float64(lanes), Length: length, r: r}, nil
}

// streams are the lanes' loops that start before the length.
func (m *Multiple) streams() []stream {
	period := time.Duration(float64(m.r.Period()) / m.Speed)
	loops := int(m.Length/period) + 2
	var out []stream
	for c := 0; c < m.Lanes; c++ {
		phase := time.Duration(c) * period / time.Duration(m.Lanes)
		for j := 0; j < loops; j++ {
			out = append(out, stream{id: strconv.Itoa(c) + "." + strconv.Itoa(j), shift: time.Duration(j)*period - phase, end: m.Length})
		}
	}
	return out
}

// Source returns the multiple's pages as a load source and its seeds.
func (m *Multiple) Source() (loadgen.PageSource, []loadgen.SourcePage) {
	st := m.streams()
	return &replaySource{r: m.r, speed: m.Speed, streams: st}, m.r.seeds(st[0])
}

// Offered returns the page rate the multiple offers from from to its end,
// as the pages it expects to complete there: pages that start before the
// end and are due to end (Replay.due) within [from, end).
// That is how a step's achieved rate is counted (pages completed in the
// measured window), so a capture whose pages come in bursts is judged
// against what its own schedule completes in the window.
func (m *Multiple) Offered(from time.Duration) float64 {
	n := m.count(func(at, end time.Duration) bool { return end >= from && end < m.Length })
	return float64(n) / max(m.Length-from, time.Millisecond).Seconds()
}

// count counts the pages of the multiple's schedule (those that start in
// [0, Length)) for which keep holds, given their start and end.
func (m *Multiple) count(keep func(at, end time.Duration) bool) int {
	n := 0
	streams := m.streams()
	m.r.sched.each(func(x *rec) {
		for _, st := range streams {
			at := m.r.recAt(x, m.Speed, st.shift)
			if at >= 0 && at < m.Length && keep(at, m.r.due(x, m.Speed, st.shift)) {
				n++
			}
		}
	})
	return n
}

// Scenario returns the multiple's farm (see Replay.Scenario).
func (m *Multiple) Scenario() (*scenarios.Scenario, error) {
	return m.r.farm(m.Length, m.count(func(_, _ time.Duration) bool { return true }))
}

// Options describe the multiple for the result's config.
func (m *Multiple) Options(minute time.Duration) map[string]string {
	opts := m.r.Options(ReplayOptions{Speed: m.Speed, Copies: m.Lanes}, minute)
	opts["replay_times"] = strconv.FormatFloat(m.Times, 'g', -1, 64)
	opts["replay_lanes"] = strconv.Itoa(m.Lanes)
	delete(opts, "replay_copies")
	delete(opts, "copy_spread")
	return opts
}

// Options describe the replay for the result's config; minute is the
// target's protocol minute (0 = 1m), which says whether the client's timers
// follow the speed.
func (r *Replay) Options(o ReplayOptions, minute time.Duration) map[string]string {
	return map[string]string{
		"trace_files":     strings.Join(r.Files, ","),
		"trace_sha256":    strings.Join(r.Sums, ","),
		"trace_span":      r.Span.String(),
		"trace_exchanges": strconv.Itoa(r.Stats.Exchanges),
		"trace_pages":     strconv.Itoa(r.Pages),
		"trace_seeded":    strconv.Itoa(len(r.Existing)),
		"replay_speed":    strconv.FormatFloat(o.Speed, 'g', -1, 64),
		"replay_copies":   strconv.Itoa(o.Copies),
		"copy_spread":     o.Spread.String(),
		"replay_timers":   ReplayTimers(o.Speed, minute),
	}
}

// ReplayTimers says whether the client's session timeouts and lock-poll
// interval follow a replay's speed. The emulated client scales its timers
// by the target's protocol minute (loadgen.Config.Minute): when that minute
// is one minute / speed (within 1 %), the target's clock and the client's
// timers run speed times faster, as the replayed pages do; otherwise the
// timers are not scaled by the speed.
func ReplayTimers(speed float64, minute time.Duration) string {
	if minute == 0 {
		minute = time.Minute
	}
	want := float64(time.Minute) / speed
	switch {
	case math.Abs(float64(minute)-want) <= 0.01*want:
		if speed == 1 {
			return "real: speed 1, protocol minute " + minute.String()
		}
		return fmt.Sprintf("scaled: protocol minute %s = 1m / speed %g, so session timeouts and the lock-poll interval run %g times faster", minute, speed, speed)
	case minute == time.Minute:
		return fmt.Sprintf("real: session timeouts and the lock-poll interval are not scaled by --speed (give --minute %s to scale them)", time.Duration(want).Round(time.Millisecond))
	}
	return fmt.Sprintf("not scaled by --speed: protocol minute %s scales session timeouts and the lock-poll interval by %.3g, the speed is %g (give --minute %s to follow it)",
		minute, float64(time.Minute)/float64(minute), speed, time.Duration(want).Round(time.Millisecond))
}

// replaySource is the replay as a loadgen.PageSource: its streams' pages
// merged in time order.
type replaySource struct {
	r       *Replay
	speed   float64
	streams []stream
}

// stream is one pass over the capture's pages: a page starts at its
// recorded offset divided by the speed, plus shift; its sessions are named
// apart from every other stream's by id. Pages that would start before 0
// or at or after end (when end > 0) are left out.
type stream struct {
	id    string
	shift time.Duration
	end   time.Duration
	pages *ordered // opened at the first Next
	done  bool
}

// Source returns the replay's pages as a load source, and the seeds of the
// sessions that existed before the capture (one per copy).
func (r *Replay) Source(o ReplayOptions) (loadgen.PageSource, []loadgen.SourcePage, error) {
	if err := o.valid(); err != nil {
		return nil, nil, err
	}
	s := &replaySource{r: r, speed: o.Speed}
	var seeds []loadgen.SourcePage
	for c := 0; c < o.Copies; c++ {
		st := stream{id: strconv.Itoa(c), shift: time.Duration(c) * o.Spread}
		s.streams = append(s.streams, st)
		seeds = append(seeds, r.seeds(st)...)
	}
	return s, seeds, nil
}

// seeds are a stream's seeds: the sessions that existed before the capture,
// written with their recorded sizes.
func (r *Replay) seeds(st stream) []loadgen.SourcePage {
	var seeds []loadgen.SourcePage
	for _, p := range r.Existing {
		seeds = append(seeds, loadgen.SourcePage{
			Session: st.id + "/" + strconv.FormatUint(sessHash(p.Session), 36),
			App:     r.app[p.Session.App], Web: r.web[p.Web], Partition: r.part[p.Partition],
			Kind: p.Kind, Size: max(p.ReadSize, 1),
		})
	}
	return seeds
}

func (r *Replay) page(x *rec, st *stream, speed float64) loadgen.SourcePage {
	return loadgen.SourcePage{
		At:      r.recAt(x, speed, st.shift),
		Session: st.id + "/" + strconv.FormatUint(x.sess, 36),
		App:     r.appOf[x.app], Web: int(x.web), Partition: int(x.part),
		Kind: x.pageKind(), Exec: time.Duration(float64(x.exec) / speed), Size: int(x.size),
	}
}

// head returns the stream's next page in its window, skipping those before
// 0; false at its end.
func (s *replaySource) head(st *stream) (*rec, time.Duration, bool) {
	if st.done {
		return nil, 0, false
	}
	if st.pages == nil {
		st.pages = s.r.sched.ordered()
	}
	for {
		x, ok := st.pages.peek()
		if !ok {
			st.done, st.pages = true, nil
			return nil, 0, false
		}
		t := s.r.recAt(x, s.speed, st.shift)
		switch {
		case t < 0:
			st.pages.pop()
		case st.end > 0 && t >= st.end:
			st.done, st.pages = true, nil
			return nil, 0, false
		default:
			return x, t, true
		}
	}
}

// Next returns the earliest next page of any stream.
func (s *replaySource) Next() (loadgen.SourcePage, bool) {
	best := -1
	var at time.Duration
	for c := range s.streams {
		st := &s.streams[c]
		// A stream that starts later than the best so far is not opened yet.
		if best >= 0 && st.pages == nil && !st.done && st.shift >= at {
			continue
		}
		if _, t, ok := s.head(st); ok && (best < 0 || t < at) {
			best, at = c, t
		}
	}
	if best < 0 {
		return loadgen.SourcePage{}, false
	}
	st := &s.streams[best]
	x, _, _ := s.head(st)
	p := s.r.page(x, st, s.speed)
	st.pages.pop()
	return p, true
}

// IntervalRate is one interval of a replay's run: the pages its schedule
// expects to complete in it and the pages the run completed.
type IntervalRate struct {
	// End is the interval's end, from the run's start.
	End                 time.Duration
	Scheduled, Achieved int64
	// Leaving is the scheduled pages expected to end within the slack
	// before End, Entering those expected within the slack before the
	// interval's start: a replay that runs a page a little slower than
	// the recording moves it into the next interval.
	Leaving, Entering int64
}

// Within reports whether the interval achieved its scheduled pages within
// tol (a fraction, or one page when that is more), once the pages at its
// edges (Leaving, Entering) may have moved to the next interval.
func (iv IntervalRate) Within(tol float64) bool {
	lo, hi := float64(iv.Scheduled-iv.Leaving), float64(iv.Scheduled+iv.Entering)
	a := float64(iv.Achieved)
	return a >= lo-max(tol*lo, 1) && a <= hi+max(tol*hi, 1)
}

func (iv IntervalRate) String() string {
	return fmt.Sprintf("%s: %d/%d (%d leaving, %d entering)", iv.End, iv.Achieved, iv.Scheduled, iv.Leaving, iv.Entering)
}

// Rates compares a replay's run with its schedule interval by interval:
// achieved[i] is the pages the run completed in interval i (of length
// interval), against the pages due to complete in it (Replay.due); slack is
// how much later a page may complete on a slower machine (see
// IntervalRate.Leaving).
func (r *Replay) Rates(o ReplayOptions, interval, slack time.Duration, achieved []int64) []IntervalRate {
	out := make([]IntervalRate, len(achieved))
	for i, n := range achieved {
		out[i] = IntervalRate{End: time.Duration(i+1) * interval, Achieved: n}
	}
	r.sched.each(func(x *rec) {
		for c := 0; c < o.Copies; c++ {
			end := r.due(x, o.Speed, time.Duration(c)*o.Spread)
			k := int(end / interval)
			for k+1 >= len(out) {
				out = append(out, IntervalRate{End: time.Duration(len(out)+1) * interval})
			}
			out[k].Scheduled++
			if end >= out[k].End-slack {
				out[k].Leaving++
				out[k+1].Entering++
			}
		}
	})
	for len(out) > len(achieved) && out[len(out)-1] == (IntervalRate{End: out[len(out)-1].End}) {
		out = out[:len(out)-1]
	}
	return out
}

// due is when a page of a stream at speed, shifted by shift, is expected to
// complete: its replayed start plus its recorded execution time at the
// speed plus the rest of its recorded length (state-server calls and lock
// waits), which the speed does not shorten.
func (r *Replay) due(x *rec, speed float64, shift time.Duration) time.Duration {
	return r.recAt(x, speed, shift) + time.Duration(float64(x.exec)/speed) + time.Duration(x.end-x.start-x.exec)
}
