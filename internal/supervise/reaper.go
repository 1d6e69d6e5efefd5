//go:build linux

package supervise

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reaper reaps orphaned descendants re-parented to this process, which
// happens when it is PID 1 in a container or a child subreaper.
//
// The classic trap is a reaper that calls wait4(-1) and so steals the exit
// status of a child someone else is waiting for. This one never does: it
// looks at which child exited with waitid(WNOWAIT), which leaves the
// zombie in place, and reaps it only if it was not started through the
// Reaper. Children started through it (Child via Spec.Reaper, and Run) are
// left to their own exec.Cmd.Wait. So while a Reaper is active, every
// child process of injector must be started through it.
type Reaper struct {
	mu      sync.Mutex
	owned   map[int]bool  // children whose status belongs to their exec.Cmd
	changed chan struct{} // closed and replaced when a child leaves owned

	subreaper bool
	sigchld   chan os.Signal
	stop      chan struct{}
	done      chan struct{}
	reaped    atomic.Int64
}

// NewReaper starts reaping. With subreaper it also marks this process a
// child subreaper (prctl PR_SET_CHILD_SUBREAPER), so orphans are
// re-parented here even when it is not PID 1. Close stops it.
func NewReaper(subreaper bool) (*Reaper, error) {
	r := &Reaper{
		owned:     map[int]bool{},
		changed:   make(chan struct{}),
		subreaper: subreaper,
		sigchld:   make(chan os.Signal, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if subreaper {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return nil, fmt.Errorf("supervise: become subreaper: %w", err)
		}
	}
	// A pending SIGCHLD is enough: each wake-up reaps everything waiting.
	signal.Notify(r.sigchld, syscall.SIGCHLD)
	go r.loop()
	return r, nil
}

// Close stops reaping and, if NewReaper made this process a subreaper,
// undoes that.
func (r *Reaper) Close() error {
	close(r.stop)
	<-r.done
	signal.Stop(r.sigchld)
	if r.subreaper {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0); err != nil {
			return fmt.Errorf("supervise: stop being subreaper: %w", err)
		}
	}
	return nil
}

// Reaped returns how many orphans have been reaped.
func (r *Reaper) Reaped() int { return int(r.reaped.Load()) }

// Run runs cmd to completion (Start, then Wait) so that the reaper leaves
// its status to cmd.Wait. A nil Reaper just runs cmd.
func (r *Reaper) Run(cmd *exec.Cmd) error {
	release, err := r.start(cmd)
	if err != nil {
		return err
	}
	defer release()
	return cmd.Wait()
}

// start starts cmd and marks its pid as owned; release must be called once
// cmd.Wait has returned. Starting under the lock means the reaper cannot
// see the new pid before it is marked.
func (r *Reaper) start(cmd *exec.Cmd) (release func(), err error) {
	if r == nil {
		return func() {}, cmd.Start()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	r.owned[pid] = true
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.owned, pid)
		close(r.changed)
		r.changed = make(chan struct{})
	}, nil
}

func (r *Reaper) loop() {
	defer close(r.done)
	for {
		r.reapAll()
		select {
		case <-r.stop:
			return
		case <-r.sigchld:
		}
	}
}

// reapAll reaps every exited child that is not owned, until none is left
// or the only one left is owned (its owner will collect it).
func (r *Reaper) reapAll() {
	for {
		pid, err := exitedChild()
		if err != nil || pid == 0 {
			return // ECHILD: no children at all; 0: none has exited
		}
		r.mu.Lock()
		if r.owned[pid] {
			// Its exec.Cmd.Wait is about to collect it; wait for that
			// rather than spin on the same zombie.
			changed := r.changed
			r.mu.Unlock()
			select {
			case <-changed:
				continue
			case <-r.stop:
				return
			}
		}
		var ws unix.WaitStatus
		_, err = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		r.mu.Unlock()
		if err == nil {
			r.reaped.Add(1)
		}
	}
}

// exitedChild returns the pid of a child that has exited, without reaping
// it, or 0 if none has.
func exitedChild() (int, error) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		return siginfoPid(&info), nil
	}
}

// siginfoPid reads si_pid, which x/sys/unix does not expose. In the Linux
// ABI the union holding it follows three int32 fields (signo, errno,
// code), aligned to a pointer: offset 16 on 64-bit, 12 on 32-bit.
func siginfoPid(info *unix.Siginfo) int {
	const ptr = unsafe.Sizeof(uintptr(0))
	const off = (12 + ptr - 1) &^ (ptr - 1)
	return int(*(*int32)(unsafe.Add(unsafe.Pointer(info), off)))
}
