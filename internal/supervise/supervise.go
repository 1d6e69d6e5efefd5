//go:build unix

// Package supervise runs a child process on behalf of injector: it passes
// signals on, restarts the child with a new environment, stops it with a
// grace period, and reports its exit status the way a shell does (the
// code, or 128+N when killed by signal N).
//
// # Process groups
//
// tini puts the child in its own process group and (with -g) signals the
// whole group; dumb-init by default starts the child in a new session and
// signals the group. Signalling the group reaches the real application
// behind a `sh -c` wrapper and takes grandchildren down on stop. The price
// is on an interactive terminal: a child outside the foreground group
// gets SIGTTIN when it reads the terminal. So Spec.ProcessGroup is a
// choice: the CLI should set it when stdin is not a terminal (containers,
// systemd) and leave it off on a terminal, where Ctrl-C already reaches
// the child directly (and forwarding SIGINT would deliver it twice).
//
// # Reaping
//
// When injector is PID 1 (or a subreaper), orphaned grandchildren are
// re-parented to it and must be reaped, or they stay zombies. See Reaper.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultKillTimeout is the grace period between SIGTERM and SIGKILL.
const DefaultKillTimeout = 10 * time.Second

// ErrStopped is returned by Restart once the child has been stopped or has
// exited for good.
var ErrStopped = errors.New("supervise: child has exited")

// DefaultSignals returns the signals a supervisor forwards: termination,
// reload and the user signals. SIGHUP is in the list; a daemon that uses
// SIGHUP itself (to force a refresh) leaves it out.
func DefaultSignals() []os.Signal {
	return []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT}
}

// Spec describes the child to run.
type Spec struct {
	Path string   // program; looked up in PATH when it has no slash
	Args []string // arguments after the program name
	Env  []string // the complete environment
	Dir  string

	Stdin          io.Reader
	Stdout, Stderr io.Writer

	// KillTimeout is how long Stop and Restart wait after SIGTERM before
	// SIGKILL (default DefaultKillTimeout).
	KillTimeout time.Duration
	// ProcessGroup starts the child in a new process group and delivers
	// every signal to the whole group. See the package documentation.
	ProcessGroup bool
	// Reaper, when set, is the process-wide reaper the child must be
	// registered with so it leaves the child's status to us.
	Reaper *Reaper
}

// Child is a supervised child. It survives restarts: Wait and Exited
// report only an exit that was not caused by Restart.
type Child struct {
	spec Spec

	opMu sync.Mutex // serialises Restart and Stop

	mu       sync.Mutex
	cond     *sync.Cond // signalled when a restart finishes
	cur      *proc
	stopping bool

	exited chan struct{}
	code   int
}

// proc is one run of the child's program.
type proc struct {
	cmd       *exec.Cmd
	done      chan struct{} // closed once the process is reaped
	code      int
	replacing bool // a Restart is stopping this process
}

// Start starts the child. Cancelling ctx stops it as Stop does. The child
// begins with the default action for every signal (see
// ResetIgnoredSignals).
func Start(ctx context.Context, spec Spec) (*Child, error) {
	ResetIgnoredSignals()
	if spec.KillTimeout <= 0 {
		spec.KillTimeout = DefaultKillTimeout
	}
	c := &Child{spec: spec, exited: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	p, err := c.spawn(spec.Env)
	if err != nil {
		return nil, err
	}
	c.cur = p
	go c.watch()
	go func() {
		select {
		case <-ctx.Done():
			c.Stop()
		case <-c.exited:
		}
	}()
	return c, nil
}

func (c *Child) spawn(env []string) (*proc, error) {
	cmd := exec.Command(c.spec.Path, c.spec.Args...)
	cmd.Env = env
	cmd.Dir = c.spec.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.spec.Stdin, c.spec.Stdout, c.spec.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: c.spec.ProcessGroup}
	// A grandchild that outlives the child while holding its stdout must
	// not keep us waiting for the output to end.
	cmd.WaitDelay = time.Second
	p := &proc{cmd: cmd, done: make(chan struct{})}
	release, err := c.spec.Reaper.start(cmd)
	if err != nil {
		// exec's error names the program, never its arguments or
		// environment (which may hold secrets).
		return nil, fmt.Errorf("supervise: start: %w", err)
	}
	go func() {
		err := cmd.Wait()
		release()
		p.code = exitCode(cmd.ProcessState, err)
		close(p.done)
	}()
	return p, nil
}

// watch waits for the child to exit for good: an exit caused by Restart
// is followed by waiting for the replacement.
func (c *Child) watch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		p := c.cur
		c.mu.Unlock()
		<-p.done
		c.mu.Lock()
		for p.replacing {
			c.cond.Wait()
		}
		if c.cur == p {
			c.code = p.code
			close(c.exited)
			return
		}
	}
}

// Pid returns the process ID of the current run.
func (c *Child) Pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur.cmd.Process.Pid
}

// Signal sends sig to the child (to its process group with
// Spec.ProcessGroup). It returns os.ErrProcessDone if the child has exited.
func (c *Child) Signal(sig os.Signal) error {
	c.mu.Lock()
	p := c.cur
	c.mu.Unlock()
	return c.signal(p, sig)
}

func (c *Child) signal(p *proc, sig os.Signal) error {
	select {
	case <-p.done:
		return os.ErrProcessDone
	default:
	}
	if !c.spec.ProcessGroup {
		return p.cmd.Process.Signal(sig)
	}
	s, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("supervise: unsupported signal %v", sig)
	}
	if err := unix.Kill(-p.cmd.Process.Pid, s); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("supervise: signal %v: %w", sig, err)
	}
	return nil
}

// terminate sends SIGTERM, waits up to the kill timeout (or until ctx is
// done), then SIGKILLs, and waits until the process is reaped.
func (c *Child) terminate(ctx context.Context, p *proc) {
	if c.signal(p, syscall.SIGTERM) == nil {
		t := time.NewTimer(c.spec.KillTimeout)
		defer t.Stop()
		select {
		case <-p.done:
			return
		case <-t.C:
		case <-ctx.Done():
		}
		c.signal(p, syscall.SIGKILL)
	}
	<-p.done
}

// Restart stops the child (SIGTERM, then SIGKILL after the kill timeout or
// when ctx is done) and starts it again with env. If the new run cannot
// start, or StopRestarts or Stop was called meanwhile, the child counts as
// exited with the old run's status.
func (c *Child) Restart(ctx context.Context, env []string) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	old := c.cur
	select {
	case <-c.exited:
		c.mu.Unlock()
		return ErrStopped
	default:
	}
	if c.stopping {
		c.mu.Unlock()
		return ErrStopped
	}
	old.replacing = true
	c.mu.Unlock()

	c.terminate(ctx, old)

	// The check and the spawn are one step under mu, so a StopRestarts
	// followed by a Signal reaches the new run if one was started.
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := (*proc)(nil), ErrStopped
	if !c.stopping {
		p, err = c.spawn(env)
	}
	old.replacing = false
	if err == nil {
		c.cur = p
		c.spec.Env = env
	}
	c.cond.Broadcast()
	return err
}

// StopRestarts makes every later Restart return ErrStopped, and one in
// progress end without starting a new run (the child then counts as
// exited with the old run's status). Call it before sending a
// terminating signal with Signal.
func (c *Child) StopRestarts() {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
}

// Stop terminates the child (SIGTERM, SIGKILL after the kill timeout) and
// returns its exit code. Calling it again, or after the child exited, just
// returns the code. A Restart in progress does not start a new run.
func (c *Child) Stop() int {
	c.StopRestarts()
	c.opMu.Lock()
	c.mu.Lock()
	p := c.cur
	c.mu.Unlock()
	c.terminate(context.Background(), p)
	c.opMu.Unlock()
	return c.Wait()
}

// Wait waits for the child to exit for good and returns its exit code:
// the code it exited with, or 128+N when killed by signal N.
func (c *Child) Wait() int {
	<-c.exited
	return c.code
}

// Exited is closed when the child has exited for good.
func (c *Child) Exited() <-chan struct{} { return c.exited }

// Forward relays sigs received by this process to c until ctx is done or
// c exits. It returns once forwarding is set up; the relaying runs in the
// background. With no sigs, DefaultSignals are forwarded. A signal that
// arrives before Forward is called is not relayed: to cover the child's
// start, use Notify before Start and Relay after.
func Forward(ctx context.Context, c *Child, sigs ...os.Signal) {
	if len(sigs) == 0 {
		sigs = DefaultSignals()
	}
	ctx, cancel := context.WithCancel(ctx)
	Relay(ctx, c, Notify(ctx, sigs...))
	go func() { // stop receiving once the child is gone
		defer cancel()
		select {
		case <-c.Exited():
		case <-ctx.Done():
		}
	}()
}

// exitCode turns a wait result into a shell-style exit code.
func exitCode(ps *os.ProcessState, err error) int {
	if ps == nil {
		return 255 // not waited for: should not happen, but never report success
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
