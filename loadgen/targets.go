package loadgen

import (
	"fmt"
	"runtime"

	"github.com/aspstate/aspstate/scenarios"
	"github.com/aspstate/aspstate/servers/target"
)

// faultCapabilities are the target capabilities the process faults need;
// the network faults need none (the fault proxy carries them out).
var faultCapabilities = map[scenarios.FaultKind]struct {
	verb string
	has  func(target.Target) bool
}{
	scenarios.FaultPause: {"paused", func(t target.Target) bool { _, ok := t.(target.Pauser); return ok }},
	scenarios.FaultRestart: {"restarted", func(t target.Target) bool {
		_, ok := t.(target.Restarter)
		return ok
	}},
	scenarios.FaultKill: {"killed or restarted", func(t target.Target) bool { // a kill falls back to a restart
		_, k := t.(target.Killer)
		_, r := t.(target.Restarter)
		return k || r
	}},
}

// anyProcessControl reports whether some target can be paused or
// restarted: without one, the process faults are skipped (and recorded so).
func anyProcessControl(ts []target.Target) bool {
	for _, t := range ts {
		_, p := t.(target.Pauser)
		_, r := t.(target.Restarter)
		if p || r {
			return true
		}
	}
	return false
}

// CheckFaultCapabilities refuses, before the run, a fault of the timeline
// that hits a target without the capability it needs, which would otherwise
// fail in the middle of the run. Where no target can take a process fault
// at all (tcp:// targets only) the faults are skipped at run time and
// recorded so: nothing is refused. Config.Validate calls it.
func CheckFaultCapabilities(faults []scenarios.Fault, ts []target.Target) error {
	if !anyProcessControl(ts) {
		return nil
	}
	for _, f := range faults {
		need, ok := faultCapabilities[f.Kind]
		if !ok {
			continue
		}
		for _, i := range FaultTargets(f, len(ts)) {
			if need.has(ts[i]) {
				continue
			}
			info := ts[i].Info()
			why := info.Kind + " targets cannot be " + need.verb
			if info.Kind == target.KindExec && f.Kind == scenarios.FaultPause && runtime.GOOS == "windows" {
				why = "Windows has no SIGSTOP to pause a local process"
			}
			return fmt.Errorf("fault %s@%s hits target %d (%s), which cannot be %s here: %s; "+
				"drop the fault, give it a partition that can (partition=N), or use an inproc or docker target",
				f.Kind, f.At, i+1, info.Spec, need.verb, why)
		}
	}
	return nil
}
