package compare

import (
	"math"
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
		{"slower", Row{Metric: P99, Q: 0.001, Delta: 0.5, dir: 1}, Regression},
		{"faster", Row{Metric: P99, Q: 0.001, Delta: -0.5, dir: -1}, Improvement},
		{"noise", Row{Metric: P99, Q: 0.2, Delta: 0.5, dir: 1}, NoChange},
		{"tiny", Row{Metric: P99, Q: 0.001, Delta: 0.01, dir: 1}, NoChange},
		{"disagree", Row{Metric: P99, Q: 0.001, Delta: 0.5, dir: -1}, NoChange},
		{"less throughput", Row{Metric: Throughput, Q: 0.001, Delta: -0.5, dir: -1}, Regression},
		{"more errors", Row{Metric: Errors, Q: 0.001, Delta: math.Inf(1), dir: 0.01}, Regression},
		{"untested", Row{Metric: P99, Q: math.NaN(), Delta: 3}, NoChange},
	} {
		row := tc.row
		row.Verdict = NoChange
		decide(&row, o)
		if row.Verdict != tc.want {
			t.Errorf("%s: verdict %q (%s), want %q", tc.name, row.Verdict, row.Note, tc.want)
		}
	}
}
