package loadgen

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
)

// fakeTarget is a target with the capabilities of a Windows exec target:
// restart and kill, no pause.
type fakeTarget struct{ spec string }

func (f fakeTarget) Addr() string { return "127.0.0.1:1" }
func (f fakeTarget) Info() target.Info {
	return target.Info{Spec: f.spec, Kind: target.KindExec, Addr: f.Addr()}
}
func (f fakeTarget) Close() error                      { return nil }
func (f fakeTarget) Restart(ctx context.Context) error { return nil }
func (f fakeTarget) Kill(ctx context.Context) error    { return nil }

// pausable adds Pause and Resume.
type pausable struct{ fakeTarget }

func (p pausable) Pause(ctx context.Context) error  { return nil }
func (p pausable) Resume(ctx context.Context) error { return nil }

// tcpLike has no capability at all.
type tcpLike struct{ fakeTarget }

func (tcpLike) Restart() {} // not a target.Restarter: wrong signature

func TestCheckFaultCapabilities(t *testing.T) {
	t.Parallel()
	pause := func(partition int) scenarios.Fault {
		return scenarios.Fault{At: scenarios.Duration(6 * time.Second), Kind: scenarios.FaultPause,
			Duration: scenarios.Duration(time.Second), Params: scenarios.FaultParams{Partition: partition}}
	}
	restart := scenarios.Fault{At: scenarios.Duration(time.Second), Kind: scenarios.FaultRestart}
	noPause := fakeTarget{spec: "exec:srv"}
	canPause := pausable{fakeTarget{spec: "inproc"}}
	bare := tcpLike{fakeTarget{spec: "tcp://127.0.0.1:1"}}

	for name, tc := range map[string]struct {
		faults  []scenarios.Fault
		targets []target.Target
		want    string // "" = allowed
	}{
		"pause on a target without Pauser":      {[]scenarios.Fault{restart, pause(0)}, []target.Target{noPause}, "fault pause@6s hits target 1 (exec:srv), which cannot be paused"},
		"pause on every partition, one lacks":   {[]scenarios.Fault{pause(0)}, []target.Target{canPause, noPause}, "hits target 2"},
		"pause on the partition that can":       {[]scenarios.Fault{pause(1)}, []target.Target{canPause, noPause}, ""},
		"restart where it can":                  {[]scenarios.Fault{restart}, []target.Target{noPause}, ""},
		"restart on a target without Restarter": {[]scenarios.Fault{restart}, []target.Target{canPause, bare}, "cannot be restarted"},
		"tcp only: skipped at run time as ever": {[]scenarios.Fault{pause(0), restart}, []target.Target{bare}, ""},
	} {
		err := CheckFaultCapabilities(tc.faults, tc.targets)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}
