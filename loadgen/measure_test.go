package loadgen

import (
	"math"
	"testing"
	"time"

	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
)

// headOnly is a scenario of sessionless pages only: one HEAD per page, so
// every page is a single, cheap request.
func headOnly(rate float64, d time.Duration) *scenarios.Scenario {
	sc := &scenarios.Scenario{Name: "head-only", Description: "HEAD pages at a fixed rate",
		Duration: scenarios.Duration(d),
		Pages:    scenarios.Pages{Mix: scenarios.Mix{scenarios.PageSessionless: 1}},
		Rate:     scenarios.Rate{Shape: scenarios.ShapeConstant, PagesPerSecond: rate}}
	sc.ApplyDefaults()
	return sc
}

// TestRateAccuracy shows the open model keeps its rate: at 500 pages/s (a
// modest rate, far below what loadgen and the reference server saturate at)
// every slot of the schedule runs and the achieved rate is within 1% of the
// intended one, or, when the machine is too busy to start the slots on time,
// the run says so: late slots are counted, or the window is longer.
func TestRateAccuracy(t *testing.T) {
	tg, _ := startServer(t, 0)
	sc := headOnly(500, 3*time.Second)
	run := runFor(t, Config{Scenario: sc, Targets: []target.Target{tg}})
	r := run.Rate
	if r.Scheduled != 1500 || r.Completed != 1500 || r.Dropped != 0 {
		t.Fatalf("scheduled %d, completed %d, dropped %d; want 1500, 1500, 0", r.Scheduled, r.Completed, r.Dropped)
	}
	if r.Intended != 500 {
		t.Fatalf("intended %.2f/s, want the schedule's 500/s", r.Intended)
	}
	if want := float64(r.Completed) / time.Duration(r.Window).Seconds(); r.Achieved != want {
		t.Fatalf("achieved %.2f/s, want completed/window = %.2f/s", r.Achieved, want)
	}
	// Off by 1% or more only when slots started late or the last pages
	// ended after the schedule (the window outgrew the duration).
	if dev := math.Abs(r.Achieved-r.Intended) / r.Intended; dev >= 0.01 && r.Late == 0 && time.Duration(r.Window) <= sc.Duration.D() {
		t.Fatalf("achieved %.2f/s vs intended %.2f/s: %.2f%% off with no late slot and a %s window", r.Achieved, r.Intended, 100*dev, time.Duration(r.Window))
	}
	t.Logf("intended %.2f/s achieved %.2f/s over %s; late %d, max lateness %s",
		r.Intended, r.Achieved, time.Duration(r.Window), r.Late, time.Duration(r.MaxLateness))
}

// TestCoordinatedOmissionCorrected pauses the server for one second in the
// middle of a fixed-rate run with two workers (as wrk2 runs with few
// connections). The slots that fell in the pause waited up to a second from
// their intended start: the corrected p99.9 shows it. From the actual send
// only the two requests caught in flight waited, so the uncorrected p99.9
// does not.
func TestCoordinatedOmissionCorrected(t *testing.T) {
	tg, srv := startServer(t, 0)
	sc := headOnly(1000, 5*time.Second)
	paused := make(chan struct{})
	cfg := Config{Scenario: sc, Targets: []target.Target{tg}, Workers: 2}
	cfg.Progress = func(p Progress) {
		// At the end of the second interval, pause the server for 1s.
		if p.Elapsed >= 2*time.Second && p.Elapsed < 3*time.Second {
			select {
			case <-paused:
			default:
				close(paused)
				srv.Pause()
				time.AfterFunc(time.Second, srv.Resume)
			}
		}
	}
	run := runFor(t, cfg)
	select {
	case <-paused:
	default:
		t.Fatal("the server was never paused")
	}
	page := run.Pages[string(scenarios.PageSessionless)]
	if page == nil || page.Count < 4900 {
		t.Fatalf("too few pages: %+v", run.Rate)
	}
	corr, uncorr := time.Duration(page.Corrected.P999), time.Duration(page.Uncorrected.P999)
	t.Logf("p99.9 corrected %s, uncorrected %s; late slots %d, no worker %d", corr, uncorr, run.Rate.Late, run.Rate.NoWorker)
	if corr < 500*time.Millisecond {
		t.Fatalf("corrected p99.9 %s does not reflect the 1s pause", corr)
	}
	if uncorr >= 500*time.Millisecond {
		t.Fatalf("uncorrected p99.9 %s reflects the pause; the test setup is wrong", uncorr)
	}
	// The pause did hit the requests in flight: the uncorrected max shows it,
	// only too rarely to move a percentile.
	if max := time.Duration(page.Uncorrected.Max); max < 500*time.Millisecond {
		t.Fatalf("uncorrected max %s: no request was caught by the pause", max)
	}
	if run.Rate.Late < 500 {
		t.Fatalf("only %d late slots during a 1s pause at 1000/s", run.Rate.Late)
	}
}

// TestClosedLoopSaturation measures the closed-loop saturation throughput
// and checks it is labelled as such.
func TestClosedLoopSaturation(t *testing.T) {
	tg, _ := startServer(t, 0)
	sc := headOnly(1, time.Second)
	run := runFor(t, Config{Scenario: sc, Targets: []target.Target{tg}, ClosedLoop: true, Connections: 4, Duration: time.Second})
	if run.Config.Mode != "closed-loop-saturation" || run.Config.Rate != 0 || run.Rate.Intended != 0 {
		t.Fatalf("closed loop must not report an intended rate: %+v %+v", run.Config.Mode, run.Rate)
	}
	if run.Rate.Achieved < 100 {
		t.Fatalf("saturation throughput %.0f/s is implausibly low", run.Rate.Achieved)
	}
	t.Logf("closed-loop saturation (4 users, HEAD pages, -race): %.0f pages/s", run.Rate.Achieved)
	// The generator's own CPU over the run is recorded (the server runs in
	// this process too, so it is the sum of both here).
	if g := run.Generator; g == nil || g.CPUUser+g.CPUSystem <= 0 || time.Duration(g.Wall) < time.Second || time.Duration(g.Wall) > time.Minute {
		t.Fatalf("generator CPU not recorded: %+v", g)
	}
}
