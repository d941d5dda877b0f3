package target

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aspstate/aspstate/protocol"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"
)

// ReferenceImage is the image name docker:reference resolves to.
const ReferenceImage = "aspstate-reference"

// ContainerPort is the state server port inside a container unless
// Options.ContainerPort says otherwise.
const ContainerPort = protocol.DefaultPort

// Dockerfile is the recipe of the reference image: the static aspstate binary
// on an empty base (no base image can be pulled on the project's machines).
// deploy/Dockerfile carries the same text for people.
const Dockerfile = `FROM scratch
COPY aspstate /aspstate
EXPOSE 42424
USER 65534:65534
ENTRYPOINT ["/aspstate"]
CMD ["serve", "--listen", "0.0.0.0:42424", "--allow-remote"]
`

var dockerEnvOnce sync.Once

// prepareDockerEnv sets the testcontainers settings this harness needs before
// the first testcontainers call reads them: no Ryuk (its image cannot be
// pulled; containers are removed by Close and swept by CI), and, inside a
// container, mapped ports reached over loopback. Values already set win.
// Testcontainers' own log lines are dropped unless ASPSTATE_DOCKER_DEBUG is set.
func prepareDockerEnv() {
	dockerEnvOnce.Do(func() {
		if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
			_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
		}
		if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
			if _, err := os.Stat("/.dockerenv"); err == nil {
				_ = os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "localhost")
			}
		}
		// Its banner and progress lines would interleave with the harness's
		// own output; errors still come back as errors.
		if os.Getenv("ASPSTATE_DOCKER_DEBUG") == "" {
			tclog.SetDefault(tclog.NewNoopLogger())
		}
	})
}

// DockerAvailable reports whether a Docker engine answers, with the reason
// when it does not. Tests use it to skip with a clear message.
func DockerAvailable(ctx context.Context) error {
	prepareDockerEnv()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("no Docker client: %w", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("no Docker engine answers: %w", err)
	}
	return nil
}

// checkStatic returns an error unless path is a statically linked ELF file:
// a scratch image has no dynamic loader.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not a Linux executable: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; build it static with `make build` (CGO_ENABLED=0) or pass another binary", path)
		}
	}
	return nil
}

// BuildReferenceImage builds the reference server image from a static
// aspstate binary (empty = this executable) and returns its tag. The tag
// carries a hash of the binary, so an unchanged binary reuses the image
// already built; the image is also tagged ReferenceImage:latest.
func BuildReferenceImage(ctx context.Context, binary string, log io.Writer) (string, error) {
	prepareDockerEnv()
	if binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", err
		}
		binary = exe
	}
	if err := checkStatic(binary); err != nil {
		return "", err
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(bin)
	tag := ReferenceImage + ":" + hex.EncodeToString(sum[:6])
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return "", fmt.Errorf("docker: %w", err)
	}
	defer cli.Close()
	if _, err := cli.ImageInspect(ctx, tag); err == nil {
		return tag, nil
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(Dockerfile)}, {"aspstate", 0o755, bin}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{
		Tags: []string{tag, ReferenceImage + ":latest"}, Remove: true, ForceRemove: true,
		Labels: map[string]string{"org.aspstate.image": "reference"},
	})
	if err != nil {
		return "", fmt.Errorf("docker build: %w", err)
	}
	defer res.Body.Close()
	// The build streams JSON messages; an "error" field is a failed build.
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &msg) != nil {
			continue
		}
		if msg.Error != "" {
			return "", fmt.Errorf("docker build: %s", strings.TrimSpace(msg.Error))
		}
		if log != nil && msg.Stream != "" {
			fmt.Fprint(log, msg.Stream)
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("docker build: %w", err)
	}
	return tag, nil
}

// imagePresent returns an error unless image is in the local image store.
func imagePresent(ctx context.Context, image string) error {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	defer cli.Close()
	if _, err := cli.ImageInspect(ctx, image); err != nil {
		return fmt.Errorf("image %q is not present locally and aspstate never pulls images: build it (docker build) or load it (docker load) first, or use docker:reference", image)
	}
	return nil
}

// dockerTarget is a state server in a container.
type dockerTarget struct {
	spec  Spec
	image string
	port  string // "42424/tcp"

	mu   sync.Mutex
	ctr  *testcontainers.DockerContainer
	addr string
}

func startDocker(ctx context.Context, spec Spec, opts Options) (*dockerTarget, error) {
	prepareDockerEnv()
	if err := DockerAvailable(ctx); err != nil {
		return nil, fmt.Errorf("target %s: %w", spec, err)
	}
	image := spec.Image
	cmd := opts.Cmd
	if image == "reference" {
		tag, err := BuildReferenceImage(ctx, opts.Binary, opts.Log)
		if err != nil {
			return nil, fmt.Errorf("target %s: building the reference image: %w", spec, err)
		}
		image = tag
		if cmd == nil {
			cmd = []string{"serve", "--listen", fmt.Sprintf("0.0.0.0:%d", ContainerPort), "--allow-remote"}
			if opts.Minute > 0 {
				cmd = append(cmd, "--minute", opts.Minute.String())
			}
		}
	}
	// Nothing is ever pulled: no registry is reachable (or wanted) from the
	// machines this harness runs on, and testcontainers would try one for an
	// image that is not present.
	if err := imagePresent(ctx, image); err != nil {
		return nil, fmt.Errorf("target %s: %w", spec, err)
	}
	cport := opts.ContainerPort
	if cport == 0 {
		cport = ContainerPort
	}
	port := fmt.Sprintf("%d/tcp", cport)
	strategies := []wait.Strategy{wait.ForListeningPort(port).SkipInternalCheck()}
	waitLog := opts.WaitLog
	if waitLog == "" && spec.Image == "reference" {
		waitLog = "listening on"
	}
	if waitLog != "" {
		strategies = append([]wait.Strategy{wait.ForLog(waitLog)}, strategies...)
	}
	custom := []testcontainers.ContainerCustomizer{
		testcontainers.WithExposedPorts(port),
		testcontainers.WithWaitStrategyAndDeadline(opts.readyTimeout(), wait.ForAll(strategies...)),
		testcontainers.WithLabels(map[string]string{"org.aspstate.target": spec.String()}),
	}
	if len(cmd) > 0 {
		custom = append(custom, testcontainers.WithCmd(cmd...))
	}
	if len(opts.Env) > 0 {
		custom = append(custom, testcontainers.WithEnv(opts.Env))
	}
	if opts.Log != nil {
		custom = append(custom, testcontainers.WithLogConsumers(&logWriter{w: opts.Log}))
	}
	ctr, err := testcontainers.Run(ctx, image, custom...)
	t := &dockerTarget{spec: spec, image: image, port: port, ctr: ctr}
	if err != nil {
		// Registered before the error check: a container that started but
		// never became ready is removed too.
		if ctr != nil {
			_ = testcontainers.TerminateContainer(ctr)
		}
		return nil, fmt.Errorf("target %s: %w", spec, err)
	}
	if err := t.resolve(ctx); err != nil {
		_ = t.Close()
		return nil, err
	}
	return t, nil
}

// resolve finds the mapped host address and waits until it answers the protocol.
func (t *dockerTarget) resolve(ctx context.Context) error {
	t.mu.Lock()
	ctr := t.ctr
	t.mu.Unlock()
	addr, err := ctr.PortEndpoint(ctx, t.port, "")
	if err != nil {
		return fmt.Errorf("target %s: mapped port: %w", t.spec, err)
	}
	if err := WaitReady(ctx, addr, 30*time.Second); err != nil {
		return fmt.Errorf("target %s: %w", t.spec, err)
	}
	t.mu.Lock()
	t.addr = addr
	t.mu.Unlock()
	return nil
}

type logWriter struct{ w io.Writer }

func (l *logWriter) Accept(g testcontainers.Log) { _, _ = l.w.Write(g.Content) }

func (t *dockerTarget) Addr() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.addr
}

func (t *dockerTarget) Info() Info {
	return Info{Spec: t.spec.String(), Kind: KindDocker, Addr: t.Addr(), Description: "container from image " + t.image}
}

// Close removes the container (and its anonymous volumes).
func (t *dockerTarget) Close() error {
	t.mu.Lock()
	ctr := t.ctr
	t.ctr = nil
	t.mu.Unlock()
	if ctr == nil {
		return nil
	}
	return testcontainers.TerminateContainer(ctr)
}

// Restart stops and starts the container: sessions are lost and the mapped
// host port usually changes.
func (t *dockerTarget) Restart(ctx context.Context) error {
	t.mu.Lock()
	ctr := t.ctr
	t.mu.Unlock()
	if ctr == nil {
		return errors.New("target closed")
	}
	stop := 5 * time.Second
	if err := ctr.Stop(ctx, &stop); err != nil {
		return fmt.Errorf("target %s: stop: %w", t.spec, err)
	}
	if err := ctr.Start(ctx); err != nil {
		return fmt.Errorf("target %s: start: %w", t.spec, err)
	}
	return t.resolve(ctx)
}

// Kill kills the container (docker kill, SIGKILL) and starts it again.
func (t *dockerTarget) Kill(ctx context.Context) error {
	err := t.withClient(ctx, func(cli *testcontainers.DockerClient, id string) error {
		_, err := cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"})
		return err
	})
	if err != nil {
		return fmt.Errorf("target %s: kill: %w", t.spec, err)
	}
	t.mu.Lock()
	ctr := t.ctr
	t.mu.Unlock()
	if err := ctr.Start(ctx); err != nil {
		return fmt.Errorf("target %s: start: %w", t.spec, err)
	}
	return t.resolve(ctx)
}

// Pause freezes the container (docker pause): connections stay open, nothing is answered.
func (t *dockerTarget) Pause(ctx context.Context) error {
	return t.withClient(ctx, func(cli *testcontainers.DockerClient, id string) error {
		_, err := cli.ContainerPause(ctx, id, client.ContainerPauseOptions{})
		return err
	})
}

// Resume unfreezes a paused container.
func (t *dockerTarget) Resume(ctx context.Context) error {
	return t.withClient(ctx, func(cli *testcontainers.DockerClient, id string) error {
		_, err := cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
		return err
	})
}

func (t *dockerTarget) withClient(ctx context.Context, f func(*testcontainers.DockerClient, string) error) error {
	t.mu.Lock()
	ctr := t.ctr
	t.mu.Unlock()
	if ctr == nil {
		return errors.New("target closed")
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	return f(cli, ctr.GetContainerID())
}
