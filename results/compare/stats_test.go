package compare

import (
	"math"
	"strings"
	"testing"
)

func TestMannWhitneyU(t *testing.T) {
	seq := func(from, to float64) []float64 {
		var v []float64
		for x := from; x <= to; x++ {
			v = append(v, x)
		}
		return v
	}
	for _, tc := range []struct {
		name  string
		x, y  []float64
		wantU float64
		wantP float64
	}{
		// Exact distribution, no ties (R: wilcox.test(1:3, 4:6) gives W = 0, p = 0.1).
		{"exact 3+3 separated", seq(1, 3), seq(4, 6), 0, 0.1},
		// 2 / C(10, 5) on each side: 2/252.
		{"exact 5+5 separated", seq(1, 5), seq(6, 10), 0, 2.0 / 252},
		{"exact 5+5 reversed", seq(6, 10), seq(1, 5), 25, 2.0 / 252},
		// Interleaved: U = 1+2+3 = 6... x = {1,3,5}, y = {2,4,6}: pairs x>y = 0+1+2 = 3, p = 0.7.
		{"exact interleaved", []float64{1, 3, 5}, []float64{2, 4, 6}, 3, 0.7},
		// Ties: normal approximation with tie and continuity corrections
		// (R: wilcox.test(c(1,2,2,3), c(2,3,4,5), exact=FALSE) p = 0.1367).
		{"ties normal", []float64{1, 2, 2, 3}, []float64{2, 3, 4, 5}, 2.5, 0.13665824773814753},
		{"all equal", []float64{4, 4, 4}, []float64{4, 4}, 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, p, err := MannWhitneyU(tc.x, tc.y)
			if err != nil {
				t.Fatal(err)
			}
			if u != tc.wantU || math.Abs(p-tc.wantP) > 1e-9 {
				t.Errorf("U, p = %v, %v; want %v, %v", u, p, tc.wantU, tc.wantP)
			}
		})
	}
	if _, _, err := MannWhitneyU(nil, []float64{1}); err == nil {
		t.Error("empty sample: want an error")
	}
	if _, _, err := MannWhitneyU([]float64{math.NaN()}, []float64{1}); err == nil {
		t.Error("NaN: want an error")
	}
}

func TestMannWhitneyExactMatchesNormalForLargeSamples(t *testing.T) {
	// Above exactLimit the normal approximation is used; just below it the
	// exact test. For the same shift both must agree closely.
	var x, y []float64
	for i := range 25 {
		x = append(x, float64(2*i))
		y = append(y, float64(2*i+7))
	}
	_, exact, _ := MannWhitneyU(x, y)
	x = append(x, 100.5)
	y = append(y, 107.5)
	_, approx, _ := MannWhitneyU(x, y)
	if exact <= 0 || approx <= 0 || math.Abs(math.Log(exact/approx)) > 0.5 {
		t.Errorf("exact p %v and approximate p %v for similar samples differ too much", exact, approx)
	}
}

func TestUDistributionSumsToBinomial(t *testing.T) {
	d := uDistribution(4, 6)
	total := 0.0
	for _, c := range d {
		total += c
	}
	if total != 210 || len(d) != 25 || d[0] != 1 || d[24] != 1 {
		t.Errorf("U distribution of 4+6: total %v (want C(10,4)=210), len %d, ends %v %v", total, len(d), d[0], d[24])
	}
}

func TestTwoProportionZ(t *testing.T) {
	if p := twoProportionZ(0, 1000, 0, 1000); p != 1 {
		t.Errorf("0 vs 0 errors: p = %v, want 1", p)
	}
	// 10/1000 vs 30/1000: pooled 0.02, se = sqrt(.02*.98*.002) = 0.00626, z = 3.194, p = 0.0014.
	if p := twoProportionZ(10, 1000, 30, 1000); math.Abs(p-0.0014) > 1e-4 {
		t.Errorf("1%% vs 3%%: p = %v, want about 0.0014", p)
	}
	if p := twoProportionZ(1, 0, 1, 10); !math.IsNaN(p) {
		t.Errorf("no trials: p = %v, want NaN", p)
	}
}

func TestBenjaminiHochberg(t *testing.T) {
	rows := []Row{{P: 0.01}, {P: 0.04}, {P: 0.03}, {P: math.NaN()}, {P: 0.5}}
	adjust(rows, CorrectionBH)
	// m = 4 tested: sorted 0.01, 0.03, 0.04, 0.5 → 0.04, 0.0533, 0.0533, 0.5.
	want := []float64{0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, math.NaN(), 0.5}
	for i, w := range want {
		got := rows[i].Q
		if math.IsNaN(w) != math.IsNaN(got) || (!math.IsNaN(w) && math.Abs(got-w) > 1e-12) {
			t.Errorf("row %d: q = %v, want %v", i, got, w)
		}
	}
	adjust(rows, CorrectionNone)
	if rows[1].Q != 0.04 {
		t.Errorf("no correction: q = %v, want p", rows[1].Q)
	}
}

func TestDecide(t *testing.T) {
	o := DefaultOptions()
	for _, tc := range []struct {
		name string
		row  Row
		want Verdict
	}{
		{"slower", Row{Metric: P90, Base: 10e6, New: 16e6, Q: 0.001, Delta: 0.6, dir: 1}, Regression},
		{"faster", Row{Metric: P90, Base: 16e6, New: 8e6, Q: 0.001, Delta: -0.5, dir: -1}, Improvement},
		{"noise", Row{Metric: P90, Base: 10e6, New: 16e6, Q: 0.2, Delta: 0.6, dir: 1}, NoChange},
		{"tiny", Row{Metric: P90, Base: 10e6, New: 10.1e6, Q: 0.001, Delta: 0.01, dir: 1}, NoChange},
		{"p90 +10% is within the minimum effect", Row{Metric: P90, Base: 20e6, New: 22e6, Q: 0.001, Delta: 0.1, dir: 1}, NoChange},
		{"p50 +30% is not", Row{Metric: P50, Base: 20e6, New: 26e6, Q: 0.001, Delta: 0.3, dir: 1}, Regression},
		{"p99 is reported, not judged", Row{Metric: P99, Base: 20e6, New: 200e6, Q: 0.001, Delta: 9, dir: 1}, NoChange},
		{"large but sub-millisecond", Row{Metric: P90, Base: 0.2e6, New: 0.8e6, Q: 0.001, Delta: 3, dir: 1}, NoChange},
		{"what the busy machine explains", Row{Metric: P90, Base: 10e6, New: 30e6, Q: 0.001, Delta: 2, dir: 1, Machine: 40e6}, NoChange},
		{"beyond what the machine explains", Row{Metric: P90, Base: 10e6, New: 60e6, Q: 0.001, Delta: 5, dir: 1, Machine: 40e6}, Regression},
		{"disagree", Row{Metric: P90, Base: 10e6, New: 16e6, Q: 0.001, Delta: 0.6, dir: -1}, NoChange},
		{"less throughput", Row{Metric: Throughput, Base: 100, New: 50, Q: 0.001, Delta: -0.5, dir: -1}, Regression},
		{"more errors", Row{Metric: Errors, Base: 0, New: 0.01, Q: 0.001, Delta: math.Inf(1), dir: 0.01}, Regression},
		{"one more error in 10000", Row{Metric: Errors, Base: 0, New: 0.0001, Q: 0.001, Delta: math.Inf(1), dir: 0.0001}, NoChange},
		{"untested", Row{Metric: P90, Base: 10e6, New: 40e6, Q: math.NaN(), Delta: 3}, NoChange},
	} {
		row := tc.row
		row.Verdict = NoChange
		decide(&row, o)
		if row.Verdict != tc.want {
			t.Errorf("%s: verdict %q (%s), want %q", tc.name, row.Verdict, row.Note, tc.want)
		}
	}
}

func TestParseMinEffects(t *testing.T) {
	t.Parallel()
	e, err := ParseMinEffects("")
	if err != nil || e[P99] != DefaultEffects[P99] {
		t.Fatalf("default: %v %v", e, err)
	}
	e, err = ParseMinEffects("5%")
	if err != nil || e[P99] != (Effect{Rel: 0.05}) || e[Errors] != (Effect{Rel: 0.05}) {
		t.Fatalf("5%%: %v %v", e, err)
	}
	e, err = ParseMinEffects("p99=30%+2ms, throughput=5%, errors=0+0.5%")
	if err != nil {
		t.Fatal(err)
	}
	if e[P99] != (Effect{Rel: 0.3, Abs: 2e6}) || e[Throughput] != (Effect{Rel: 0.05}) || e[Errors] != (Effect{Abs: 0.005}) || e[P50] != DefaultEffects[P50] {
		t.Errorf("list: %v", e)
	}
	for _, bad := range []string{"p98=5%", "5%+1ms", "p99=x", "p99=5%+fast"} {
		if _, err := ParseMinEffects(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: want an error naming it, got %v", bad, err)
		}
	}
}
