package scenarios

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed builtin/*.yaml
var builtinFS embed.FS

// builtinNames is the explicit list of builtin scenarios, sorted; each has
// the file builtin/<name>.yaml.
var builtinNames = []string{
	"ajax-heavy",
	"ecommerce-peak",
	"large-sessions",
	"read-mostly-portal",
	"recycle-storm",
	"small-intranet",
}

// Builtin lists the builtin scenarios, sorted by name.
func Builtin() []Info {
	out := make([]Info, 0, len(builtinNames))
	for _, name := range builtinNames {
		info := Info{Name: name}
		if s, err := Lookup(name); err != nil {
			info.Description = "(broken builtin: " + firstLine(err.Error()) + ")"
		} else {
			info.Description = s.Description
		}
		out = append(out, info)
	}
	return out
}

// Lookup returns a fresh copy of the builtin scenario called name, with
// defaults applied and validated. An unknown name is an error that lists the
// builtins.
func Lookup(name string) (*Scenario, error) {
	if !slices.Contains(builtinNames, name) {
		return nil, fmt.Errorf("unknown scenario %q; builtin scenarios are: %s", name, strings.Join(builtinNames, ", "))
	}
	file := "builtin/" + name + ".yaml"
	data, err := builtinFS.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("builtin scenario %q: %w", name, err)
	}
	return Parse(data, file)
}

// Load returns the scenario named by nameOrPath: a builtin name (see
// Builtin), or else the path of a YAML file. An argument that is neither
// is an error that lists the builtins.
func Load(nameOrPath string) (*Scenario, error) {
	if slices.Contains(builtinNames, nameOrPath) {
		return Lookup(nameOrPath)
	}
	data, err := os.ReadFile(nameOrPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !strings.ContainsAny(nameOrPath, `/\.`) {
			return nil, fmt.Errorf("unknown scenario %q: not a builtin (builtin scenarios are: %s) and no such file",
				nameOrPath, strings.Join(builtinNames, ", "))
		}
		return nil, fmt.Errorf("scenario file: %w", err)
	}
	return Parse(data, nameOrPath)
}

// Parse decodes a scenario from YAML, strictly (unknown fields are errors),
// applies defaults and validates it. filename is used in messages only.
// Every problem found is reported at once (errors.Join of *FieldError), each
// with the file, the line when known, the field path and how to fix it.
func Parse(data []byte, filename string) (*Scenario, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", filename, err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: empty scenario; at least name and description are required", filename)
	}
	idx := &index{file: filename, lines: map[string]int{}, values: map[string]string{}}
	idx.walk(root.Content[0], reflect.TypeFor[Scenario](), "")

	var s Scenario
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, fmt.Errorf("%s: %w", filename, err)
		}
		for _, msg := range te.Errors {
			idx.addYAMLError(msg)
		}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		idx.add(extra.Line, "", "a scenario file holds one YAML document; remove the \"---\" and what follows")
	}
	// Validate even when reading found problems, so that every problem is
	// reported at once; a field that could not be read keeps its zero value
	// (then its default), so later messages about a path already reported,
	// or about a field under it, are dropped.
	reported := idx.reportedPaths()
	idx.explicitZeros(&s, reported)
	s.ApplyDefaults()
	if err := s.Validate(); err != nil {
		var fe *FieldError
		for _, e := range unjoin(err) {
			if !errors.As(e, &fe) {
				idx.errs = append(idx.errs, e)
				continue
			}
			if overlaps(fe.Path, reported) {
				continue
			}
			idx.errs = append(idx.errs, &FieldError{File: filename, Line: idx.lineOf(fe.Path), Path: fe.Path, Msg: fe.Msg})
		}
	}
	if len(idx.errs) > 0 {
		return nil, idx.join()
	}
	return &s, nil
}

// Marshal returns s as YAML that Parse reads back into an equal scenario
// (for embedding the exact scenario into a result file).
func (s *Scenario) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// FieldError is one problem in a scenario: where it is and how to fix it.
type FieldError struct {
	// File is the scenario file name ("" when validating a Go value).
	File string
	// Line is the 1-based line of the field in File (0 when unknown).
	Line int
	// Path is the field path, e.g. "users.think_time.mean" or "faults[1].at"
	// ("" for the document as a whole).
	Path string
	// Msg says what is wrong and how to fix it.
	Msg string
}

// Error formats the problem as "file:line: path: msg", omitting what is
// unknown.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// index maps field paths of one YAML document to lines and collects the
// problems found while reading it.
type index struct {
	file   string
	lines  map[string]int    // path -> line of its key
	values map[string]string // path -> text of its scalar value
	errs   []error
}

var (
	typeDist     = reflect.TypeFor[Dist]()
	typeDuration = reflect.TypeFor[Duration]()
	typeMix      = reflect.TypeFor[Mix]()
)

// walk records the line of every field under node and reports keys that do
// not name a field of t, with the list of the fields that do.
func (x *index) walk(node *yaml.Node, t reflect.Type, path string) {
	for node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	switch {
	case t == typeDuration:
		return
	case t == typeDist:
		if node.Kind == yaml.MappingNode {
			x.walkKeys(node, path, distKeys, nil)
		}
		x.checkUnits(node, path)
		return
	case t == typeMix:
		if node.Kind == yaml.MappingNode {
			x.walkKeys(node, path, pageKindNames(), func(k string) string {
				return fmt.Sprintf("unknown page kind %q; use one of %s", k, strings.Join(pageKindNames(), ", "))
			})
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if node.Kind != yaml.MappingNode {
			return // the decoder reports the type mismatch
		}
		fields := map[string]reflect.Type{}
		var names []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f.Type
			names = append(names, name)
		}
		x.walkKeys(node, path, names, nil)
		for i := 0; i+1 < len(node.Content); i += 2 {
			if ft, ok := fields[node.Content[i].Value]; ok {
				p := join(path, node.Content[i].Value)
				if v := node.Content[i+1]; v.Kind == yaml.ScalarNode {
					x.values[p] = v.Value
				}
				x.walk(node.Content[i+1], ft, p)
			}
		}
	case reflect.Slice:
		if node.Kind != yaml.SequenceNode {
			return
		}
		for i, item := range node.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			x.lines[p] = item.Line
			x.walk(item, t.Elem(), p)
		}
	}
}

// distUnits gives the quantity each distribution of the schema measures.
var distUnits = map[string]unit{
	"users.pages_per_session":   unitNumber,
	"users.think_time":          unitDuration,
	"pages.exec_time":           unitDuration,
	"pages.burst.size":          unitNumber,
	"session.size":              unitBytes,
	"session.growth_per_modify": unitBytes,
}

// checkUnits reports distribution parameters written with the wrong kind of
// unit (a duration for a size, a size for a time, a unit on a count).
func (x *index) checkUnits(node *yaml.Node, path string) {
	want, ok := distUnits[path]
	if !ok {
		return
	}
	check := func(v *yaml.Node, p string) {
		if v.Kind != yaml.ScalarNode {
			return
		}
		_, got, err := parseQuantity(v.Value)
		if err != nil || got == unitNumber || got == want {
			return
		}
		switch want {
		case unitDuration:
			x.add(v.Line, p, fmt.Sprintf("%q is a size, but this is a time; write a duration such as \"2s\" or \"150ms\"", v.Value))
		case unitBytes:
			x.add(v.Line, p, fmt.Sprintf("%q is a duration, but this is a size in bytes; write e.g. 4096 or \"4KiB\"", v.Value))
		default:
			x.add(v.Line, p, fmt.Sprintf("%q has a unit, but this is a count; write a plain number such as 8", v.Value))
		}
	}
	if node.Kind == yaml.ScalarNode {
		check(node, path)
		return
	}
	if node.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(node.Content); i += 2 {
			if k := node.Content[i].Value; k != "dist" {
				check(node.Content[i+1], join(path, k))
			}
		}
	}
}

// walkKeys records the lines of the keys of a mapping node and reports the
// keys that are not in known.
func (x *index) walkKeys(node *yaml.Node, path string, known []string, unknownMsg func(string) string) {
	for i := 0; i+1 < len(node.Content); i += 2 {
		k := node.Content[i]
		if k.Value == "<<" {
			continue // merge key; the decoder resolves it
		}
		p := join(path, k.Value)
		x.lines[p] = k.Line
		if !slices.Contains(known, k.Value) {
			msg := fmt.Sprintf("unknown field %q; known fields here: %s", k.Value, strings.Join(known, ", "))
			if unknownMsg != nil {
				msg = unknownMsg(k.Value)
			}
			x.add(k.Line, p, msg)
		}
	}
}

// yamlLineRE matches the "line N: message" form of yaml.v3 type errors.
var yamlLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// addYAMLError records one yaml.v3 type error, attaching the path of the
// field on that line. Unknown-field errors are skipped: walk already
// reported them with their path and the list of known fields.
func (x *index) addYAMLError(msg string) {
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		x.add(0, "", msg)
		return
	}
	if strings.Contains(m[2], " not found in ") {
		return
	}
	line, _ := strconv.Atoi(m[1])
	// yaml.v3 gives no column; on a line holding several fields (a flow
	// mapping) the value quoted in the message picks the field.
	if q := yamlValueRE.FindStringSubmatch(m[2]); q != nil {
		var match []string
		for p, l := range x.lines {
			if l == line && x.values[p] == q[1] {
				match = append(match, p)
			}
		}
		if len(match) == 1 {
			x.add(line, match[0], m[2])
			return
		}
	}
	x.add(line, x.pathAtLine(line), m[2])
}

// yamlValueRE finds the value quoted in a yaml.v3 "cannot unmarshal" message.
var yamlValueRE = regexp.MustCompile("cannot unmarshal !!\\w+ `([^`]*)`")

// add records a problem.
func (x *index) add(line int, path, msg string) {
	x.errs = append(x.errs, &FieldError{File: x.file, Line: line, Path: path, Msg: msg})
}

// pathAtLine returns the deepest recorded path whose key is on line.
func (x *index) pathAtLine(line int) string {
	best := ""
	for p, l := range x.lines {
		if l == line && (len(p) > len(best) || (len(p) == len(best) && p < best)) {
			best = p
		}
	}
	return best
}

// lineOf returns the line of path, or of its nearest recorded ancestor.
func (x *index) lineOf(path string) int {
	for p := path; p != ""; p = parent(p) {
		if l, ok := x.lines[p]; ok {
			return l
		}
	}
	return 0
}

// reportedPaths returns the paths of the problems found so far.
func (x *index) reportedPaths() []string {
	var out []string
	for _, e := range x.errs {
		var fe *FieldError
		if errors.As(e, &fe) {
			out = append(out, fe.Path)
		}
	}
	return out
}

// overlaps reports whether path equals or lies under one of paths. The
// document path "" overlaps nothing.
func overlaps(path string, paths []string) bool {
	for _, p := range paths {
		if p != "" && path != "" && strings.HasPrefix(path, p) &&
			(len(path) == len(p) || path[len(p)] == '.' || path[len(p)] == '[') {
			return true
		}
	}
	return false
}

// has reports whether path was written in the document.
func (x *index) has(path string) bool { _, ok := x.lines[path]; return ok }

// join returns the errors sorted by line (then path).
func (x *index) join() error {
	slices.SortStableFunc(x.errs, func(a, b error) int {
		var fa, fb *FieldError
		if !errors.As(a, &fa) || !errors.As(b, &fb) {
			return 0
		}
		if fa.Line != fb.Line {
			return fa.Line - fb.Line
		}
		return strings.Compare(fa.Path, fb.Path)
	})
	return errors.Join(x.errs...)
}

// explicitZeros reports fields written as zero in YAML where zero is not
// allowed; in Go, zero means "use the default" for them.
func (x *index) explicitZeros(s *Scenario, reported []string) {
	checks := []struct {
		path string
		zero bool
		hint string
	}{
		{"duration", s.Duration == 0, `must be > 0 (e.g. "30s"); omit it for the default`},
		{"farm.web_servers", s.Farm.WebServers == 0, "must be >= 1; omit it for the default 1"},
		{"farm.partitions", s.Farm.Partitions == 0, "must be >= 1; omit it for the default 1"},
		{"client.session_timeout", s.Client.SessionTimeout == 0, "must be 1..525600 minutes; omit it for the default 20"},
		{"client.execution_timeout", s.Client.ExecutionTimeout == 0, `must be > 0 (e.g. "110s"); omit it for the default`},
		{"client.lock_poll_interval", s.Client.LockPollInterval == 0, `must be > 0 (e.g. "500ms"); omit it for the default`},
		{"client.state_network_timeout", s.Client.NetworkTimeout == 0, `must be > 0 (e.g. "10s"); omit it for the default`},
		{"client.connection_idle_timeout", s.Client.IdleTimeout == 0, `must be > 0 (e.g. "5s"); omit it for the default`},
		{"session.max_bytes", s.Session.MaxBytes == 0, "must be > 0 (e.g. 1048576); omit it for the default"},
		{"rate.pages_per_second", s.Rate.PagesPerSecond == 0 && s.Rate.Shape != ShapeRamp && s.Rate.Shape != ShapeSteps,
			"must be > 0 (e.g. 200)"},
		{"rate.over", s.Rate.Over == 0, `must be > 0 (e.g. "20s"); omit it to ramp over the whole run`},
	}
	for _, c := range checks {
		if c.zero && x.has(c.path) && !overlaps(c.path, reported) {
			x.add(x.lines[c.path], c.path, c.hint)
		}
	}
}

// join appends a key to a path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// parent strips the last element of a path ("a.b[2]" -> "a.b", "a.b" -> "a").
func parent(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

// unjoin flattens an errors.Join tree.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

// firstLine returns s up to its first newline.
func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
