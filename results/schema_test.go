package results

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/scenarios"
)

var update = flag.Bool("update", false, "rewrite results/schema/result.v2.json from the Go types")

// schemaPath is the schema of this version (Schema); the files of older
// versions stay beside it, unchanged, for the results they describe.
const schemaPath = "schema/result.v2.json"

// schemaFor derives the JSON Schema of the Go type Run: one $defs entry per
// named struct, every non-omitempty field required, no extra properties.
func schemaFor() map[string]any {
	defs := map[string]any{}
	var typeSchema func(t reflect.Type) map[string]any
	typeSchema = func(t reflect.Type) map[string]any {
		switch t {
		case reflect.TypeOf(time.Time{}):
			return map[string]any{"type": "string", "format": "date-time"}
		case reflect.TypeOf(Duration(0)):
			return map[string]any{"type": "string", "description": "Go duration, e.g. 1m30s"}
		case reflect.TypeOf(scenarios.Scenario{}):
			return map[string]any{"type": []any{"object", "null"}, "description": "the scenario as run (package scenarios, its YAML keys)"}
		}
		switch t.Kind() {
		case reflect.Pointer:
			return typeSchema(t.Elem())
		case reflect.String:
			return map[string]any{"type": "string"}
		case reflect.Bool:
			return map[string]any{"type": "boolean"}
		case reflect.Int, reflect.Int32, reflect.Int64:
			return map[string]any{"type": "integer"}
		case reflect.Float64:
			return map[string]any{"type": "number"}
		case reflect.Slice:
			return map[string]any{"type": []any{"array", "null"}, "items": typeSchema(t.Elem())}
		case reflect.Map:
			if t.Elem().Kind() == reflect.Interface {
				return map[string]any{"type": []any{"object", "null"}}
			}
			return map[string]any{"type": []any{"object", "null"}, "additionalProperties": typeSchema(t.Elem())}
		case reflect.Struct:
			name := t.Name()
			if _, ok := defs[name]; !ok {
				defs[name] = nil // reserve against recursion
				props := map[string]any{}
				var required []any
				for i := 0; i < t.NumField(); i++ {
					f := t.Field(i)
					tag := f.Tag.Get("json")
					if tag == "-" || !f.IsExported() {
						continue
					}
					parts := strings.Split(tag, ",")
					jn := parts[0]
					if jn == "" {
						jn = f.Name
					}
					props[jn] = typeSchema(f.Type)
					if !strings.Contains(tag, ",omitempty") {
						required = append(required, jn)
					}
				}
				sort.Slice(required, func(i, j int) bool { return required[i].(string) < required[j].(string) })
				defs[name] = map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false}
			}
			return map[string]any{"$ref": "#/$defs/" + name}
		}
		panic(fmt.Sprintf("schemaFor: no rule for %s", t))
	}
	root := typeSchema(reflect.TypeOf(Run{}))
	s := map[string]any{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"$id":         "https://github.com/aspstate/aspstate/results/schema/result.v2.json",
		"title":       "aspstate load result (" + Schema + ")",
		"description": "result.json written by aspstate load; latencies in nanoseconds; see package results.",
		"$ref":        root["$ref"],
		"$defs":       defs,
	}
	return s
}

func TestSchemaMatchesGoType(t *testing.T) {
	want := schemaFor()
	if *update {
		b, err := json.MarshalIndent(want, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll("schema", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(schemaPath, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatalf("%v (run: go test ./results -run TestSchemaMatchesGoType -update)", err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", schemaPath, err)
	}
	wantJSON, _ := json.Marshal(want)
	var wantAny map[string]any
	_ = json.Unmarshal(wantJSON, &wantAny)
	if !reflect.DeepEqual(got, wantAny) {
		gj, _ := json.MarshalIndent(got["$defs"], "", " ")
		wj, _ := json.MarshalIndent(wantAny["$defs"], "", " ")
		t.Fatalf("%s does not match the Go type Run; regenerate with -update after checking the change.\nfile:\n%s\ngo:\n%s", schemaPath, gj, wj)
	}
}

func TestMarshalledRunValidatesAgainstSchema(t *testing.T) {
	schema := readSchema(t)
	for _, r := range []*Run{sampleRun(t), {Schema: Schema, Config: Config{Mode: ModeClosedLoop}}} {
		js, err := Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(js, &doc); err != nil {
			t.Fatal(err)
		}
		if errs := validate(schema, schema, doc, "$"); len(errs) > 0 {
			t.Fatalf("marshalled run breaks the schema:\n%s", strings.Join(errs, "\n"))
		}
	}
	// The validator itself must reject a wrong document, or the check above proves nothing.
	var bad any
	_ = json.Unmarshal([]byte(`{"schema": 3, "extra": true}`), &bad)
	if errs := validate(schema, schema, bad, "$"); len(errs) == 0 {
		t.Fatal("validator accepted a document with a numeric schema and an unknown field")
	}
}

// validate checks doc against the subset of JSON Schema the generated schema
// uses: $ref, type, properties, required, additionalProperties, items.
func validate(root, s map[string]any, doc any, path string) []string {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/$defs/")
		def, _ := root["$defs"].(map[string]any)[name].(map[string]any)
		if def == nil {
			return []string{path + ": unknown $ref " + ref}
		}
		return validate(root, def, doc, path)
	}
	var errs []string
	if ty, ok := s["type"]; ok {
		var types []string
		switch v := ty.(type) {
		case string:
			types = []string{v}
		case []any:
			for _, x := range v {
				types = append(types, x.(string))
			}
		}
		if !typeOK(types, doc) {
			return []string{fmt.Sprintf("%s: %T is not %v", path, doc, types)}
		}
	}
	switch d := doc.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		for _, r := range asSlice(s["required"]) {
			if _, ok := d[r.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: missing required %q", path, r))
			}
		}
		for k, v := range d {
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, validate(root, ps, v, path+"."+k)...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap && props != nil {
					errs = append(errs, fmt.Sprintf("%s: unexpected property %q", path, k))
				}
			case map[string]any:
				errs = append(errs, validate(root, ap, v, path+"."+k)...)
			}
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, v := range d {
				errs = append(errs, validate(root, items, v, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	return errs
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func typeOK(types []string, doc any) bool {
	for _, t := range types {
		switch t {
		case "object":
			if _, ok := doc.(map[string]any); ok {
				return true
			}
		case "array":
			if _, ok := doc.([]any); ok {
				return true
			}
		case "string":
			if _, ok := doc.(string); ok {
				return true
			}
		case "boolean":
			if _, ok := doc.(bool); ok {
				return true
			}
		case "number":
			if _, ok := doc.(float64); ok {
				return true
			}
		case "integer":
			if f, ok := doc.(float64); ok && f == float64(int64(f)) {
				return true
			}
		case "null":
			if doc == nil {
				return true
			}
		}
	}
	return false
}

func TestMarshalIsDeterministic(t *testing.T) {
	r := sampleRun(t)
	a, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		b, err := Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatal("two encodings of one run differ")
		}
	}
	// Keys of the scenario object come out sorted, though its fields are
	// not declared in that order.
	if i, j := bytes.Index(a, []byte(`"description"`)), bytes.Index(a, []byte(`"name"`)); i < 0 || j < 0 || i > j {
		t.Fatalf("scenario keys not sorted in:\n%s", a)
	}
}

// TestResultWithoutNewerFieldsStillDecodes: a result.json written before
// page_state was recorded (and without any other optional block) still
// matches the schema, reads back and validates.
func TestResultWithoutNewerFieldsStillDecodes(t *testing.T) {
	schema := readSchema(t)
	r := sampleRun(t)
	r.PageState = map[string]*Stats{"modify": r.Pages["modify"]}
	js, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc["page_state"]; !ok {
		t.Fatal("page_state was not written")
	}
	delete(doc, "page_state")
	if errs := validate(schema, schema, doc, "$"); len(errs) > 0 {
		t.Fatalf("an older result breaks the schema:\n%s", strings.Join(errs, "\n"))
	}
	old, _ := json.Marshal(doc)
	var back Run
	if err := json.Unmarshal(old, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Validate(); err != nil {
		t.Fatalf("an older result does not validate: %v", err)
	}
	if back.PageState != nil {
		t.Errorf("PageState of an older result: %v, want none", back.PageState)
	}
}

// readSchema reads the committed JSON Schema of result.json.
func readSchema(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	return schema
}
