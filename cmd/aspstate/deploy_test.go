package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
	"go.yaml.in/yaml/v3"
)

// deployDocs decodes every YAML document of the files matching glob.
func deployDocs(t *testing.T, glob string) []map[string]any {
	t.Helper()
	files, _ := filepath.Glob(glob)
	if len(files) == 0 {
		t.Fatalf("no files match %s", glob)
	}
	var docs []map[string]any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var d map[string]any
			err := dec.Decode(&d)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			docs = append(docs, d)
		}
	}
	return docs
}

func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			s, _ := v.([]any)
			if k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// checkLoadArgs parses the arguments of `aspstate load` in a deploy file
// as the command would, after the substitutions the platform makes, and
// returns the flag values.
func checkLoadArgs(t *testing.T, where string, args []string, subst map[string]string) map[string]string {
	t.Helper()
	for i, a := range args {
		for k, v := range subst {
			a = strings.ReplaceAll(a, k, v)
		}
		args[i] = a
	}
	if args[0] != "load" {
		t.Fatalf("%s: %v is not a load command", where, args)
	}
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	vals := map[string]*string{}
	for _, name := range []string{"scenario", "target", "shard", "start-at", "out"} {
		vals[name] = fs.String(name, "", "")
	}
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		t.Fatalf("%s: %v: %v", where, args, err)
	}
	out := map[string]string{}
	for k, v := range vals {
		out[k] = *v
	}
	sc, err := scenarios.Load(out["scenario"])
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	shard, err := parseShardFlag(out["shard"])
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if sc.Farm.WebServers < shard.Count {
		t.Errorf("%s: %d shards of %d web servers", where, shard.Count, sc.Farm.WebServers)
	}
	if _, err := parseStartAt(out["start-at"], time.Now()); err != nil {
		t.Errorf("%s: %v", where, err)
	}
	if _, err := target.Parse(out["target"]); err != nil {
		t.Errorf("%s: %v", where, err)
	}
	out["shard-count"] = shard.String()
	return out
}

func TestDeployK8s(t *testing.T) {
	var services []string
	var job, merge map[string]any
	for _, d := range deployDocs(t, "../../deploy/k8s/*.yaml") {
		switch {
		case d["kind"] == "Service":
			services = append(services, at(d, "metadata", "name").(string))
		case d["kind"] == "Job" && at(d, "spec", "completionMode") == "Indexed":
			job = d
		case d["kind"] == "Job":
			merge = d
		}
	}
	if job == nil || merge == nil || len(services) == 0 {
		t.Fatalf("want a Service, an Indexed Job and a merge Job; services %v", services)
	}
	n := at(job, "spec", "completions").(int)
	if p := at(job, "spec", "parallelism"); p != n {
		t.Errorf("parallelism %v, completions %d: every shard must run at once", p, n)
	}
	ctr := at(job, "spec", "template", "spec", "containers", 0)
	var outs []string
	for k := 0; k < n; k++ {
		t.Setenv("JOB_COMPLETION_INDEX", strconv.Itoa(k))
		v := checkLoadArgs(t, "load-job.yaml", strs(at(ctr, "args")), map[string]string{
			"$(START_AT)": time.Now().Add(time.Minute).UTC().Format(time.RFC3339), "$(JOB_COMPLETION_INDEX)": strconv.Itoa(k)})
		if want := strconv.Itoa(k+1) + "/" + strconv.Itoa(n); v["shard-count"] != want {
			t.Errorf("pod %d runs shard %s, want %s", k, v["shard-count"], want)
		}
		tg, _ := target.Parse(v["target"])
		if host, _, _ := strings.Cut(tg.Addr, ":"); !slices.Contains(services, host) {
			t.Errorf("target %s is not one of the Services %v", v["target"], services)
		}
		outs = append(outs, v["out"])
	}
	margs := strs(at(merge, "spec", "template", "spec", "containers", 0, "args"))
	if margs[0] != "merge" || !slices.Equal(margs[len(margs)-n:], outs) {
		t.Errorf("merge args %v do not read the shards' directories %v", margs, outs)
	}
}

func TestDeployCompose(t *testing.T) {
	docs := deployDocs(t, "../../deploy/compose/compose.yaml")
	svcs := docs[0]["services"].(map[string]any)
	var names []string
	for k := range svcs {
		names = append(names, k)
	}
	sort.Strings(names)
	var outs []string
	var shards []string
	for _, name := range names {
		cmd := strs(at(svcs[name], "command"))
		if cmd[0] != "load" {
			continue
		}
		v := checkLoadArgs(t, name, cmd, map[string]string{
			"${START_AT:?set START_AT to one time a little ahead}": time.Now().Add(time.Minute).UTC().Format(time.RFC3339)})
		tg, _ := target.Parse(v["target"])
		if host, _, _ := strings.Cut(tg.Addr, ":"); svcs[host] == nil {
			t.Errorf("%s: target %s is not a service", name, v["target"])
		}
		outs = append(outs, v["out"])
		shards = append(shards, v["shard-count"])
	}
	if !slices.Equal(shards, []string{"1/3", "2/3", "3/3"}) {
		t.Errorf("shards %v", shards)
	}
	margs := strs(at(svcs["merge"], "command"))
	if margs[0] != "merge" || !slices.Equal(margs[len(margs)-len(outs):], outs) {
		t.Errorf("merge command %v does not read %v", margs, outs)
	}
}
