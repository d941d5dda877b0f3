package junit

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
)

// TestWriteRoundTrips: what Write produces is an XML document with the
// header that decodes back to the same counts, cases and messages, and
// leaves optional attributes out when they are empty.
func TestWriteRoundTrips(t *testing.T) {
	t.Parallel()
	doc := Suites{Name: "all", Tests: 2, Failures: 1, Suites: []Suite{{
		Name: "s", Tests: 2, Failures: 1, Properties: []Property{{Name: "seed", Value: "7"}},
		Cases: []Case{
			{Name: "ok", Classname: "c", Time: "0.500"},
			{Name: "bad <one>", Classname: "c", Failure: &Message{Message: "broke", Type: "rule", Text: "a & b"}},
		},
	}}}
	var b bytes.Buffer
	if err := Write(&b, doc); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.HasPrefix(out, xml.Header) || !strings.HasSuffix(out, "</testsuites>\n") {
		t.Fatalf("not a complete document:\n%s", out)
	}
	for _, absent := range []string{"timestamp=", `type=""`, "<error", "<skipped", "system-out"} {
		if strings.Contains(out, absent) {
			t.Errorf("an empty optional part is written (%s):\n%s", absent, out)
		}
	}
	var got Suites
	if err := xml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("not XML: %v\n%s", err, out)
	}
	s := got.Suites[0]
	if got.Tests != 2 || got.Failures != 1 || s.Properties[0].Value != "7" || s.Cases[1].Name != "bad <one>" ||
		s.Cases[1].Failure == nil || s.Cases[1].Failure.Text != "a & b" || s.Cases[0].Failure != nil {
		t.Errorf("decoded %+v", got)
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteReportsWriteErrors(t *testing.T) {
	t.Parallel()
	if err := Write(failWriter{}, Suites{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Write to a failing writer: %v", err)
	}
}
