//go:build windows

package target

import (
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// procTree is an exec target's process and its descendants: on Windows, a
// Job Object the process is placed in before its first instruction runs, so
// every process it starts belongs to the job too. The job is created with
// KILL_ON_JOB_CLOSE: when its handle closes (the process has exited, or
// aspstate itself ends, even by a crash) the remaining descendants are killed.
//
// Windows has no SIGSTOP, so exec targets there are not Pausers.
type procTree struct {
	pid uint32

	mu  sync.Mutex
	job windows.Handle // 0 once released
}

// startTree starts cmd suspended in a new console process group, puts it in
// a new Job Object and lets it run.
func startTree(cmd *exec.Cmd) (*procTree, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("create job object: %w", err)
	}
	var limits windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION
	limits.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&limits)), uint32(unsafe.Sizeof(limits))); err != nil {
		_ = windows.CloseHandle(job)
		return nil, fmt.Errorf("set job object limits: %w", err)
	}
	// A new process group receives CTRL_BREAK (stop) without this process
	// receiving it too; suspended, it cannot start a child outside the job.
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: windows.CREATE_NEW_PROCESS_GROUP | windows.CREATE_SUSPENDED}
	if err := cmd.Start(); err != nil {
		_ = windows.CloseHandle(job)
		return nil, err
	}
	p := &procTree{pid: uint32(cmd.Process.Pid), job: job}
	if err := p.adopt(); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		p.release()
		return nil, err
	}
	return p, nil
}

// adopt assigns the suspended process to the job, then resumes its threads.
func (p *procTree) adopt() error {
	h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE, false, p.pid)
	if err != nil {
		return fmt.Errorf("open process %d: %w", p.pid, err)
	}
	err = windows.AssignProcessToJobObject(p.job, h)
	_ = windows.CloseHandle(h)
	if err != nil {
		return fmt.Errorf("assign process %d to its job object: %w", p.pid, err)
	}
	return resumeThreads(p.pid)
}

// resumeThreads resumes every thread of the process pid (a process created
// suspended has one).
func resumeThreads(pid uint32) error {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPTHREAD, 0)
	if err != nil {
		return fmt.Errorf("list threads: %w", err)
	}
	defer windows.CloseHandle(snap)
	resumed := 0
	te := windows.ThreadEntry32{Size: uint32(unsafe.Sizeof(windows.ThreadEntry32{}))}
	for err = windows.Thread32First(snap, &te); err == nil; err = windows.Thread32Next(snap, &te) {
		if te.OwnerProcessID != pid {
			continue
		}
		th, err := windows.OpenThread(windows.THREAD_SUSPEND_RESUME, false, te.ThreadID)
		if err != nil {
			return fmt.Errorf("open thread %d of process %d: %w", te.ThreadID, pid, err)
		}
		_, err = windows.ResumeThread(th)
		_ = windows.CloseHandle(th)
		if err != nil {
			return fmt.Errorf("resume thread %d of process %d: %w", te.ThreadID, pid, err)
		}
		resumed++
	}
	if !errors.Is(err, windows.ERROR_NO_MORE_FILES) {
		return fmt.Errorf("list threads: %w", err)
	}
	if resumed == 0 {
		return fmt.Errorf("process %d has no thread to resume", pid)
	}
	return nil
}

// kill terminates every process in the job.
func (p *procTree) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.job != 0 {
		_ = windows.TerminateJobObject(p.job, 1)
	}
}

// stop asks the process group to end with CTRL_BREAK (a Go program sees
// os.Interrupt). Without a console shared with the process (aspstate runs
// detached or as a service) there is no gentler way: the job is terminated.
func (p *procTree) stop() {
	if err := windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, p.pid); err != nil {
		p.kill()
	}
}

// release closes the job once the process has exited; KILL_ON_JOB_CLOSE ends
// any descendant still running.
func (p *procTree) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.job != 0 {
		_ = windows.CloseHandle(p.job)
		p.job = 0
	}
}
