package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/aspstate/aspstate/internal/testbin"
	"github.com/aspstate/aspstate/results"
	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
)

// k8sObjects are the typed objects of the manifests in deploy/k8s.
type k8sObjects struct {
	services    []corev1.Service
	deployments []appsv1.Deployment
	jobs        []batchv1.Job
	claims      []corev1.PersistentVolumeClaim
}

// decodeK8s decodes every document of deploy/k8s strictly into the
// k8s.io/api type of its kind: an unknown or misspelt field is an error.
func decodeK8s(t *testing.T) k8sObjects {
	t.Helper()
	files, _ := filepath.Glob("../../deploy/k8s/*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests in deploy/k8s")
	}
	var o k8sObjects
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(b), "\n---") {
			var head struct{ Kind string }
			if err := sigsyaml.Unmarshal([]byte(doc), &head); err != nil || head.Kind == "" {
				t.Fatalf("%s document %d: no kind (%v)", f, i, err)
			}
			var dst any
			switch head.Kind {
			case "Service":
				o.services = append(o.services, corev1.Service{})
				dst = &o.services[len(o.services)-1]
			case "Deployment":
				o.deployments = append(o.deployments, appsv1.Deployment{})
				dst = &o.deployments[len(o.deployments)-1]
			case "Job":
				o.jobs = append(o.jobs, batchv1.Job{})
				dst = &o.jobs[len(o.jobs)-1]
			case "PersistentVolumeClaim":
				o.claims = append(o.claims, corev1.PersistentVolumeClaim{})
				dst = &o.claims[len(o.claims)-1]
			default:
				t.Fatalf("%s document %d: kind %s has no decoder here", f, i, head.Kind)
			}
			if err := sigsyaml.UnmarshalStrict([]byte(doc), dst); err != nil {
				t.Fatalf("%s document %d (%s): %v", f, i, head.Kind, err)
			}
		}
	}
	return o
}

// parseWithTree parses a container's arguments with the real command tree,
// after the substitutions the platform makes, and returns the command with
// its flags set.
func parseWithTree(t *testing.T, where string, args []string, subst map[string]string) *cobra.Command {
	t.Helper()
	args = slices.Clone(args)
	for i, a := range args {
		for k, v := range subst {
			a = strings.ReplaceAll(a, k, v)
		}
		args[i] = a
	}
	c, rest, err := newRoot().Find(args)
	if err == nil {
		err = c.ParseFlags(rest)
	}
	if err == nil {
		err = c.ValidateArgs(c.Flags().Args())
	}
	if err != nil || c.Name() == "aspstate" {
		t.Fatalf("%s: %q does not parse: %v", where, args, err)
	}
	return c
}

// flagValue is the value of a string or string-array flag of c.
func flagValue(c *cobra.Command, name string) string {
	if v, err := c.Flags().GetStringArray(name); err == nil {
		return strings.Join(v, ",")
	}
	return c.Flags().Lookup(name).Value.String()
}

// checkLoadArgs checks the arguments of `aspstate load` in a deploy file and
// returns the flag values that matter.
func checkLoadArgs(t *testing.T, where string, args []string, subst map[string]string) map[string]string {
	t.Helper()
	c := parseWithTree(t, where, args, subst)
	if c.Name() != "load" {
		t.Fatalf("%s: %v is not a load command", where, args)
	}
	out := map[string]string{}
	for _, name := range []string{"scenario", "target", "shard", "start-at", "out", "duration", "wait-target"} {
		out[name] = flagValue(c, name)
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
	if out["wait-target"] == "0s" {
		t.Errorf("%s: no --wait-target: a shard that starts before the server fails at once", where)
	}
	out["shard-count"] = shard.String()
	return out
}

func TestDeployK8s(t *testing.T) {
	o := decodeK8s(t)
	var services []string
	for _, s := range o.services {
		services = append(services, s.Name)
	}
	var job, merge *batchv1.Job
	for i, j := range o.jobs {
		if j.Spec.CompletionMode != nil && *j.Spec.CompletionMode == batchv1.IndexedCompletion {
			job = &o.jobs[i]
		} else {
			merge = &o.jobs[i]
		}
	}
	if job == nil || merge == nil || len(services) == 0 || len(o.deployments) != 1 || len(o.claims) != 1 {
		t.Fatalf("want a Deployment, a Service, a claim, an Indexed Job and a merge Job; services %v", services)
	}
	for _, d := range o.deployments {
		parseWithTree(t, d.Name, d.Spec.Template.Spec.Containers[0].Args, nil)
	}
	n := int(*job.Spec.Completions)
	if p := job.Spec.Parallelism; p == nil || int(*p) != n {
		t.Errorf("parallelism %v, completions %d: every shard must run at once", p, n)
	}
	var outs []string
	for k := 0; k < n; k++ {
		t.Setenv("JOB_COMPLETION_INDEX", strconv.Itoa(k))
		v := checkLoadArgs(t, "load-job.yaml", job.Spec.Template.Spec.Containers[0].Args, map[string]string{
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
	margs := merge.Spec.Template.Spec.Containers[0].Args
	mc := parseWithTree(t, "merge-job.yaml", margs, nil)
	if mc.Name() != "merge" || !slices.Equal(mc.Flags().Args(), outs) {
		t.Errorf("merge args %v do not read the shards' directories %v", margs, outs)
	}
}

// composeFile is the Compose deployment.
const composeFile = "../../deploy/compose/compose.yaml"

// composeServices decodes the services of the Compose file.
func composeServices(t *testing.T) map[string]struct{ Command []string } {
	t.Helper()
	b, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct{ Command []string }
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Services
}

func TestDeployCompose(t *testing.T) {
	svcs := composeServices(t)
	var outs, shards []string
	for _, name := range []string{"load-1", "load-2", "load-3"} {
		v := checkLoadArgs(t, name, svcs[name].Command, map[string]string{
			"${START_AT:?set START_AT to one time a little ahead}": time.Now().Add(time.Minute).UTC().Format(time.RFC3339),
			"${DURATION:-0s}": "0s"})
		tg, _ := target.Parse(v["target"])
		if host, _, _ := strings.Cut(tg.Addr, ":"); host != "state" {
			t.Errorf("%s: target %s is not the state service", name, v["target"])
		}
		outs = append(outs, v["out"])
		shards = append(shards, v["shard-count"])
	}
	if !slices.Equal(shards, []string{"1/3", "2/3", "3/3"}) {
		t.Errorf("shards %v", shards)
	}
	parseWithTree(t, "state", svcs["state"].Command, nil)
	mc := parseWithTree(t, "merge", svcs["merge"].Command, nil)
	if mc.Name() != "merge" || !slices.Equal(mc.Flags().Args(), outs) {
		t.Errorf("merge command %v does not read %v", svcs["merge"].Command, outs)
	}
}

// TestComposeDeployment runs deploy/compose with docker-compose and the
// image built from this tree: the server, three shards and the merge; the
// merged result must hold the pages of the three shards. make compose-check
// runs it (ASPSTATE_COMPOSE=1).
func TestComposeDeployment(t *testing.T) {
	if os.Getenv("ASPSTATE_COMPOSE") == "" {
		t.Skip("make compose-check runs it (set ASPSTATE_COMPOSE=1)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	compose, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Fatal("docker-compose not found: apt-get install docker-compose (make compose-check does)")
	}
	if err := target.DockerAvailable(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := target.BuildReferenceImage(ctx, testbin.Static(t), nil); err != nil {
		t.Fatal(err)
	}
	project := fmt.Sprintf("aspstate-check-%d", os.Getpid())
	env := append(os.Environ(), "DURATION=5s", "START_AT="+time.Now().Add(15*time.Second).UTC().Format(time.RFC3339))
	run := func(ctx context.Context, args ...string) string {
		cmd := exec.CommandContext(ctx, compose, append([]string{"-f", composeFile, "-p", project}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	merger := project + "-merge"
	t.Cleanup(func() {
		_ = exec.Command("docker", "rm", "-f", merger).Run()
		cmd := exec.Command(compose, "-f", composeFile, "-p", project, "down", "-v", "--remove-orphans")
		cmd.Env = env
		_ = cmd.Run()
	})
	run(ctx, "up", "-d", "state", "load-1", "load-2", "load-3")
	ids := strings.Fields(run(ctx, "ps", "-q", "load-1", "load-2", "load-3"))
	codes, err := exec.CommandContext(ctx, "docker", append([]string{"wait"}, ids...)...).Output()
	if err != nil || strings.Join(strings.Fields(string(codes)), " ") != "0 0 0" {
		t.Fatalf("the shards exited %q (%v)\n%s", codes, err, run(ctx, "logs", "--no-color", "load-1", "load-2", "load-3"))
	}
	t.Logf("merge:\n%s", run(ctx, "run", "--name", merger, "merge"))
	dir := t.TempDir()
	if out, err := exec.CommandContext(ctx, "docker", "cp", merger+":/results", dir).CombinedOutput(); err != nil {
		t.Fatalf("docker cp: %v\n%s", err, out)
	}
	checkMergedShards(t, filepath.Join(dir, "results"))
}

// checkMergedShards checks that the merged result in dir/merged holds the
// pages of dir/shard-1…3: per page type, the counts add up.
func checkMergedShards(t *testing.T, dir string) {
	t.Helper()
	m, err := results.Read(filepath.Join(dir, "merged"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	var completed int64
	for i := 1; i <= 3; i++ {
		s, err := results.Read(filepath.Join(dir, fmt.Sprintf("shard-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if s.Rate.Completed == 0 {
			t.Errorf("shard %d completed no page", i)
		}
		completed += s.Rate.Completed
		for kind, st := range s.Pages {
			want[kind] += st.Count
		}
	}
	if m.Rate.Completed != completed {
		t.Errorf("merged %d completed pages, the shards %d", m.Rate.Completed, completed)
	}
	for kind, n := range want {
		if got := m.Pages[kind]; got == nil || got.Count != n {
			t.Errorf("page %s: merged %v, shards %d", kind, got, n)
		}
	}
	var sb bytes.Buffer
	results.Summary(&sb, m)
	t.Logf("merged result:\n%s", sb.String())
}
