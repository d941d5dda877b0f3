package results

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// v1Fixture is a version 1 result.json (the regress baseline, its outcome
// options set to values a test can tell apart), as a JSON object.
func v1Fixture(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/result.v1.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc["schema"] != SchemaV1 {
		t.Fatalf("fixture schema %v, want %s", doc["schema"], SchemaV1)
	}
	return doc
}

// v1Options returns the fixture's config.options.
func v1Options(doc map[string]any) map[string]any {
	return doc["config"].(map[string]any)["options"].(map[string]any)
}

// decodeDoc encodes doc and decodes it with Unmarshal.
func decodeDoc(t *testing.T, doc map[string]any) (*Run, error) {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return Unmarshal(b)
}

// TestUnmarshalSchemaV1 reads a version 1 result: its outcome options
// become the typed fields, its scenario object the typed scenario, and it
// encodes again as a valid result of this version.
func TestUnmarshalSchemaV1(t *testing.T) {
	t.Parallel()
	doc := v1Fixture(t)
	v1 := map[string]any{}
	if b, err := os.ReadFile("schema/result.v1.json"); err != nil || json.Unmarshal(b, &v1) != nil {
		t.Fatalf("schema/result.v1.json: %v", err)
	}
	var plain any
	b, _ := json.Marshal(doc)
	_ = json.Unmarshal(b, &plain)
	if errs := validate(v1, v1, plain, "$"); len(errs) > 0 {
		t.Fatalf("the fixture is not a version 1 result:\n%s", strings.Join(errs, "\n"))
	}
	r, err := decodeDoc(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.Correctness.SkippedChecks != 7 || r.Locks.LostWritesAfterLockBreak != 2 || r.Config.Shard != "2/3" {
		t.Errorf("skipped checks %d, lost writes %d, shard %q; want 7, 2, 2/3",
			r.Correctness.SkippedChecks, r.Locks.LostWritesAfterLockBreak, r.Config.Shard)
	}
	if r.Seeding == nil || r.Seeding.Sessions != 300 || r.Seeding.Detail != "300 sessions written in 41ms" {
		t.Errorf("seeding %+v", r.Seeding)
	}
	if r.Merged != nil {
		t.Errorf("an unmerged run has merged %+v", r.Merged)
	}
	for _, k := range []string{"skipped_checks", "lost_writes_after_lock_break", "shard", "steady_sessions", "steady_seeding"} {
		if _, ok := r.Config.Options[k]; ok {
			t.Errorf("option %s is still an option", k)
		}
	}
	if r.Config.Options["seed"] != "1" || r.Config.Options["start"] != "steady" {
		t.Errorf("settings lost: %v", r.Config.Options)
	}
	sc := r.Config.Scenario
	if sc == nil || sc.Name != "regress" || sc.Farm.WebServers != 2 || sc.Rate.PagesPerSecond != 100 || sc.Client.NetworkTimeout.D() != 10*time.Second {
		t.Fatalf("scenario %+v", sc)
	}
	if err := sc.Validate(); err != nil {
		t.Errorf("the scenario read back does not validate: %v", err)
	}
	js, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var again any
	_ = json.Unmarshal(js, &again)
	if v2 := readSchema(t); len(validate(v2, v2, again, "$")) > 0 {
		t.Fatalf("the converted result breaks the %s schema:\n%s", Schema, strings.Join(validate(v2, v2, again, "$"), "\n"))
	}
}

// TestUnmarshalSchemaV1Merged reads a version 1 merge: its merged_*
// options become Merged.
func TestUnmarshalSchemaV1Merged(t *testing.T) {
	t.Parallel()
	doc := v1Fixture(t)
	o := v1Options(doc)
	delete(o, "shard")
	o["merged_results"], o["merged_shards"], o["merged_start_skew"] = "3", "1/3,2/3,3/3", "4.2ms"
	r, err := decodeDoc(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	m := r.Merged
	if m == nil || m.Results != 3 || strings.Join(m.Shards, ",") != "1/3,2/3,3/3" || m.StartSkew != Duration(4200*time.Microsecond) {
		t.Fatalf("merged %+v", m)
	}
	if r.Config.Shard != "" {
		t.Errorf("a merge has shard %q", r.Config.Shard)
	}
}

// TestUnmarshalSchemaV1PageSourceError: a replay's page source error, an
// option in version 1, is the run's failure.
func TestUnmarshalSchemaV1PageSourceError(t *testing.T) {
	t.Parallel()
	doc := v1Fixture(t)
	v1Options(doc)["page_source_error"] = "app 9 outside the farm"
	r, err := decodeDoc(t, doc)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Config.Options["page_source_error"]; ok || r.Failure != "the page source stopped: app 9 outside the farm" {
		t.Errorf("failure %q, options %v", r.Failure, r.Config.Options)
	}
}

// TestUnmarshalSchemaV1RejectsBadOutcomes: an outcome option that does not
// parse is an error naming it, not a zero.
func TestUnmarshalSchemaV1RejectsBadOutcomes(t *testing.T) {
	t.Parallel()
	for key, bad := range map[string]string{"skipped_checks": "many", "steady_sessions": "-x", "merged_start_skew": "soon"} {
		doc := v1Fixture(t)
		o := v1Options(doc)
		o[key] = bad
		if key == "merged_start_skew" {
			o["merged_results"] = "2"
		}
		if _, err := decodeDoc(t, doc); err == nil || !strings.Contains(err.Error(), "config.options."+key) {
			t.Errorf("%s=%q: err = %v, want one naming the option", key, bad, err)
		}
	}
}
