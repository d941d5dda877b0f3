package compare

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/internal/junit"
)

// TestOutputs checks the Markdown and JUnit forms of a comparison that has
// a regression and a broken threshold.
func TestOutputs(t *testing.T) {
	t.Parallel()
	th, err := ParseThreshold("p99 < 1ns")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Compare(side("base", synthetic(1, 0)), side("slow", synthetic(1, 2*time.Millisecond)), DefaultOptions(), []Threshold{th})
	if err != nil {
		t.Fatal(err)
	}
	var md, ju bytes.Buffer
	if err := res.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"❌", "**regression**", "| `p99 < 1ns` | **FAIL** |", "<details>"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if err := res.JUnit(&ju); err != nil {
		t.Fatal(err)
	}
	var suites junit.Suites
	if err := xml.Unmarshal(ju.Bytes(), &suites); err != nil {
		t.Fatalf("junit is not XML: %v\n%s", err, ju.String())
	}
	if len(suites.Suites) != 2 || suites.Suites[0].Failures != res.Count(Regression) || suites.Suites[1].Failures != 1 ||
		suites.Suites[0].Tests != len(res.Rows) || res.Count(Regression) == 0 {
		t.Errorf("junit suites: %+v", suites.Suites)
	}
}
