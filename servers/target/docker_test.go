package target

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/internal/testbin"
	"github.com/aspstate/aspstate/protocol"
)

func needDocker(t *testing.T) {
	t.Helper()
	if err := DockerAvailable(context.Background()); err != nil {
		t.Skipf("skipping container test: %v (start a Docker engine to run it)", err)
	}
}

func TestCheckStaticRejectsDynamic(t *testing.T) {
	if err := checkStatic("/bin/sh"); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("checkStatic(/bin/sh) = %v", err)
	}
	if err := checkStatic("docker_test.go"); err == nil {
		t.Error("a text file passed as an executable")
	}
}

func TestDockerReferenceTarget(t *testing.T) {
	needDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := testbin.Static(t)
	spec, err := Parse("docker:reference")
	if err != nil {
		t.Fatal(err)
	}
	tg, err := Start(ctx, spec, Options{Binary: bin, Minute: time.Second})
	if tg != nil {
		t.Cleanup(func() { _ = tg.Close() })
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tg.Addr(), "localhost:") && !strings.HasPrefix(tg.Addr(), "127.0.0.1:") {
		t.Errorf("Addr = %q, want a loopback mapping", tg.Addr())
	}
	c, err := protocol.Dial(ctx, tg.Addr(), protocol.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := c.Set(ctx, "k", []byte("v"), protocol.SetParams{Timeout: 20}); err != nil || r.Status != 200 || r.Version != protocol.DefaultVersion {
		t.Fatalf("set: %+v %v", r, err)
	}
	if r, err := c.GetExclusive(ctx, "k"); err != nil || r.Status != 200 || r.LockCookie != 2 {
		t.Fatalf("acquire: %+v %v", r, err)
	}
	c.Close()

	checkPauseResume(ctx, t, tg, 300*time.Millisecond)

	if err := tg.(Restarter).Restart(ctx); err != nil {
		t.Fatal(err)
	}
	c, err = protocol.Dial(ctx, tg.Addr(), protocol.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r, err := c.Get(ctx, "k"); err != nil || r.Status != 404 {
		t.Fatalf("after a container restart the session must be gone: %+v %v", r, err)
	}
	if r, err := c.Set(ctx, "k3", []byte("v"), protocol.SetParams{Timeout: 20}); err != nil || r.Status != 200 {
		t.Fatalf("set: %+v %v", r, err)
	}
	if err := tg.(Killer).Kill(ctx); err != nil {
		t.Fatal(err)
	}
	ck, err := protocol.Dial(ctx, tg.Addr(), protocol.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if r, err := ck.Get(ctx, "k3"); err != nil || r.Status != 404 {
		t.Fatalf("after docker kill the session must be gone: %+v %v", r, err)
	}

	// The same image under another name is accepted like any third-party image
	// that listens on 42424.
	tag, err := BuildReferenceImage(ctx, bin, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := "aspstate-thirdparty-test:1"
	if b, err := exec.Command("docker", "tag", tag, other).CombinedOutput(); err != nil {
		t.Fatalf("docker tag: %v %s", err, b)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", other).Run() })
	spec2, _ := Parse("docker:" + other)
	tg2, err := Start(ctx, spec2, Options{Cmd: []string{"serve", "--listen", "0.0.0.0:42424", "--allow-remote"}})
	if tg2 != nil {
		t.Cleanup(func() { _ = tg2.Close() })
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := Ping(ctx, tg2.Addr()); err != nil {
		t.Fatal(err)
	}
	id := tg2.(*dockerTarget).ctr.GetContainerID()
	if err := tg2.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("docker", "inspect", id).CombinedOutput(); err == nil {
		t.Errorf("container %s still exists after Close: %s", id, out)
	}
}

func TestDockerMissingImageFailsClearly(t *testing.T) {
	needDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	spec, _ := Parse("docker:aspstate-no-such-image:0")
	_, err := Start(ctx, spec, Options{ReadyTimeout: 10 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "aspstate-no-such-image") || !strings.Contains(err.Error(), "never pulls") {
		t.Errorf("err = %v, want one naming the image", err)
	}
}

// deploy/Dockerfile documents the image Start builds: the recipe lines must match.
func TestDeployDockerfileMatches(t *testing.T) {
	b, err := os.ReadFile("../../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var recipe []string
	for _, line := range strings.Split(string(b), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			recipe = append(recipe, line)
		}
	}
	if got, want := strings.Join(recipe, "\n")+"\n", Dockerfile; got != want {
		t.Errorf("deploy/Dockerfile recipe:\n%s\nwant (servers/target.Dockerfile):\n%s", got, want)
	}
}
