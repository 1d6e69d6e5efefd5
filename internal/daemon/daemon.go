//go:build unix

// Package daemon is injector's refresh loop: render once, start the child,
// then re-render every interval and tell the child (or run a command) when
// something it uses changed. It knows nothing about templates; the CLI
// plugs them in as a Refresher. docs/daemon.md describes the behaviour.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime/debug"
	"slices"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/mask"
	"github.com/injector-dev/injector/internal/metrics"
	"github.com/injector-dev/injector/internal/supervise"
)

// Refresher is implemented by the CLI: one full resolve+render cycle that
// writes changed files atomically (all or nothing) and reports what
// changed. When it fails it must leave the previous output in place, and
// its error must not contain secret values (it is logged). The one
// exception is a rename that fails after others succeeded: the files
// already replaced are reported in Changes.Files with the error, and
// their actions still run, since the application must pick them up.
type Refresher interface {
	Refresh(ctx context.Context) (Changes, error)
}

// Changes is the outcome of one successful Refresh.
type Changes struct {
	Files      []string // destinations whose content changed (matched against Config.OnChange keys)
	Env        []string // the child's full environment
	EnvChanged bool     // Env differs from the previous Refresh
	Secrets    []string // every resolved value, for --mask
}

// EnvTemplate is the template name under which Config.Templates may list
// the environment templates; it counts as changed when Changes.EnvChanged.
const EnvTemplate = "$env"

// Config is the daemon's behaviour, straight from the CLI flags. Zero
// durations mean "off" unless a default is given.
type Config struct {
	Interval       time.Duration // time between refreshes; required unless Once
	Splay          time.Duration // random extra 0..Splay added to each interval
	MaxStale       time.Duration // readiness fails after this long without a successful refresh; 0 = never
	WaitForSecrets time.Duration // at startup, retry failed refreshes for this long; 0 = fail fast
	KillTimeout    time.Duration // SIGTERM→SIGKILL grace for restart and stop (default 10s)
	CommandTimeout time.Duration // limit for command: actions (default 30s)

	OnChange        map[string]Action // per destination
	DefaultOnChange Action            // for destinations not in OnChange
	OnEnvChange     Action            // when Changes.EnvChanged (the CLI's default is restart)

	ExitWhenChildExits bool     // return the child's exit code when it exits
	Once               bool     // return 0 after the first successful refresh
	Command            []string // the child; empty for a sidecar that only renders
	Mask               bool     // mask secret values in the child's (and commands') output

	// Templates names every template, for injector_renders_total and
	// readiness: file destinations, plus EnvTemplate if there are env
	// templates.
	Templates []string

	Stdin          io.Reader // default os.Stdin
	Stdout, Stderr io.Writer // default os.Stdout, os.Stderr

	// Forward lists the signals passed on to the child (default
	// DefaultForward). SIGHUP is not forwarded but forces a refresh,
	// unless ForwardHUP.
	Forward    []os.Signal
	ForwardHUP bool
	// ProcessGroup starts the child in its own process group and signals
	// the group (see package supervise for when to choose it).
	ProcessGroup bool
	// Reap reaps orphaned grandchildren; set it when running as PID 1.
	// When not PID 1 it also makes this process a child subreaper.
	Reap bool

	// RetryBase is the first backoff step after a failed refresh (default
	// 1s); it doubles per failure up to Interval (StartupRetryLimit at
	// startup).
	RetryBase time.Duration
	// ProgressEvery is how often a refresh that is still running is
	// logged (default 5s), so that an unresponsive server shows.
	ProgressEvery time.Duration
	// Signals replaces the process's signal delivery, for tests: when set,
	// no signal handler is installed and these are handled instead.
	Signals <-chan os.Signal
	// Interrupted, when already closed once Run has installed its own
	// signal handling, means a terminating signal arrived before that (the
	// CLI passes the Done channel of its signal context): Run gives up at
	// once instead of losing it.
	Interrupted <-chan struct{}
}

// StartupRetryLimit caps the backoff between attempts of the first
// refresh (--wait-for-secrets), and so how long a server's Retry-After can
// delay one at startup.
const StartupRetryLimit = 30 * time.Second

// DefaultForward is the default of Config.Forward.
func DefaultForward() []os.Signal {
	return []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}
}

// daemon is the state of one Run.
type daemon struct {
	cfg     Config
	r       Refresher
	m       *metrics.Metrics
	log     zerolog.Logger
	reaper  *supervise.Reaper
	stdout  io.Writer
	stderr  io.Writer
	masks   []*mask.Writer
	env     []string
	child   *supervise.Child
	exited  <-chan struct{} // the child's; nil without a child
	failing int             // consecutive failed refreshes
}

// Run renders, starts the child and keeps refreshing until ctx is done,
// a terminating signal arrives or (with ExitWhenChildExits) the child
// exits. It returns the exit code for the process: the child's, 0 when
// stopped without a child or in Once mode, 1 with a non-nil error when
// the first refresh fails.
func Run(ctx context.Context, cfg Config, r Refresher, m *metrics.Metrics, log zerolog.Logger) (int, error) {
	cfg.setDefaults()
	if !cfg.Once && cfg.Interval <= 0 {
		return 2, errors.New("daemon: interval must be positive")
	}
	d := &daemon{cfg: cfg, r: r, m: m, log: log, stdout: cfg.Stdout, stderr: cfg.Stderr}
	m.SetTemplates(cfg.Templates)
	m.SetMaxStale(cfg.MaxStale)

	sigs := cfg.Signals
	if sigs == nil {
		nctx, stop := context.WithCancel(ctx)
		defer stop()
		sigs = supervise.Notify(nctx, d.handled()...)
	}
	select {
	case <-cfg.Interrupted:
		return 1, errors.New("stopped by a signal before the first refresh")
	default:
	}
	// The child and on-change commands start with default signal
	// actions, whatever this process inherited.
	supervise.ResetIgnoredSignals()
	if cfg.Reap {
		reaper, err := supervise.NewReaper(os.Getpid() != 1)
		if err != nil {
			return 1, err
		}
		defer reaper.Close()
		d.reaper = reaper
	}

	changes, stopped, err := d.initial(ctx, sigs)
	if err != nil {
		return 1, err
	}
	if cfg.Once || stopped {
		return 0, nil
	}
	if cfg.Mask {
		for _, w := range []*io.Writer{&d.stdout, &d.stderr} {
			mw := mask.NewWriter(*w, changes.Secrets, mask.Replacement)
			d.masks = append(d.masks, mw)
			*w = mw
		}
		defer d.flush()
	}
	d.env = childEnv(changes.Env)
	if len(cfg.Command) > 0 {
		child, err := supervise.Start(context.WithoutCancel(ctx), supervise.Spec{
			Path: cfg.Command[0], Args: cfg.Command[1:], Env: d.env,
			Stdin: cfg.Stdin, Stdout: d.stdout, Stderr: d.stderr,
			KillTimeout: cfg.KillTimeout, ProcessGroup: cfg.ProcessGroup, Reaper: d.reaper,
		})
		if err != nil {
			return 1, err
		}
		d.child, d.exited = child, child.Exited()
	}
	return d.loop(ctx, sigs)
}

func (c *Config) setDefaults() {
	if c.KillTimeout <= 0 {
		c.KillTimeout = supervise.DefaultKillTimeout
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 30 * time.Second
	}
	if c.RetryBase <= 0 {
		c.RetryBase = time.Second
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 5 * time.Second
	}
	if c.Forward == nil {
		c.Forward = DefaultForward()
	}
	if c.Stdin == nil {
		c.Stdin = os.Stdin
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
}

// handled lists the signals Run listens for.
func (d *daemon) handled() []os.Signal {
	sigs := []os.Signal{syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT}
	for _, s := range d.cfg.Forward {
		if !slices.Contains(sigs, s) {
			sigs = append(sigs, s)
		}
	}
	return sigs
}

func terminating(sig os.Signal) bool {
	return sig == syscall.SIGTERM || sig == syscall.SIGINT || sig == syscall.SIGQUIT
}

// initial runs the first refresh: fail fast, or retry with backoff for up
// to WaitForSecrets. Each attempt runs in the background, so a
// terminating signal ends it (and Run) at once, whatever it is waiting
// for.
//
// stopped reports a terminating signal that arrived while a first refresh
// was completing anyway: its output is in place, and Run stops there
// (exit 0, no child started) as it would right after the first render.
func (d *daemon) initial(ctx context.Context, sigs <-chan os.Signal) (changes Changes, stopped bool, err error) {
	giveUp := time.Now().Add(d.cfg.WaitForSecrets)
	for attempt := 1; ; attempt++ {
		res, stoppedBy, hup := d.firstAttempt(ctx, sigs)
		if stoppedBy != nil && res.err != nil {
			return Changes{}, false, fmt.Errorf("first refresh: stopped by %s", signalName(stoppedBy))
		}
		if res.err == nil {
			d.succeeded(res.changes)
			d.logRendered("first render", res)
			if stoppedBy != nil {
				d.log.Info().Str("signal", signalName(stoppedBy)).Msg("stopping after the first render")
			}
			return res.changes, stoppedBy != nil, nil
		}
		d.failed()
		left := time.Until(giveUp)
		if ctx.Err() != nil || d.cfg.WaitForSecrets <= 0 || left <= 0 {
			return Changes{}, false, fmt.Errorf("first refresh: %w", res.err)
		}
		if hup {
			d.log.Info().Int("attempt", attempt).Msg("SIGHUP during the attempt: retrying now")
			continue
		}
		wait, asked := d.retryDelay(res.err, attempt, StartupRetryLimit)
		wait = min(wait, left)
		ev := d.log.Warn().Err(res.err).Int("attempt", attempt).Str("retry_in", wait.String()).
			Str("retry_setting", "--wait-for-secrets").Str("gives_up_in", left.Round(time.Second).String())
		if asked > 0 {
			ev = ev.Str("server_retry_after", asked.String()).Str("capped_at", StartupRetryLimit.String())
		}
		ev.Msg("waiting for secrets")
		t := time.NewTimer(wait)
	wait:
		for {
			select {
			case <-t.C:
				break wait
			case <-ctx.Done():
				t.Stop()
				return Changes{}, false, fmt.Errorf("first refresh: %w", res.err)
			case sig := <-sigs:
				if terminating(sig) {
					t.Stop()
					return Changes{}, false, fmt.Errorf("first refresh: stopped by %s while waiting for secrets: %w", signalName(sig), res.err)
				}
				if sig == syscall.SIGHUP {
					t.Stop()
					break wait // retry now
				}
			}
		}
	}
}

// firstAttempt runs one attempt of the first refresh and waits for it,
// logging progress. A terminating signal cancels it: it returns the
// signal once the refresh has returned (or KillTimeout has passed), with
// the refresh's result if it completed all the same. hup reports a
// SIGHUP during the attempt, which asks for a retry without waiting.
func (d *daemon) firstAttempt(ctx context.Context, sigs <-chan os.Signal) (res refreshed, stoppedBy os.Signal, hup bool) {
	j := d.startRefresh(ctx)
	defer j.stop()
	for {
		select {
		case res := <-j.done:
			return res, nil, hup
		case <-j.progress.C:
			d.logProgress("first refresh", j)
		case <-ctx.Done():
			d.settle(j)
			return refreshed{err: ctx.Err()}, nil, false
		case sig := <-sigs:
			switch {
			case terminating(sig):
				d.log.Info().Str("signal", signalName(sig)).Msg("stopping: cancelling the first refresh")
				res, ok := d.settle(j)
				if !ok {
					res.err = errors.New("abandoned")
				}
				return res, sig, false
			case sig == syscall.SIGHUP:
				hup = true
			}
			// Other signals have no child to go to yet.
		}
	}
}

// job is one refresh running in the background.
type job struct {
	done     chan refreshed
	cancel   context.CancelFunc
	start    time.Time
	progress *time.Ticker
}

// startRefresh starts a refresh with its own context, so that it can be
// cancelled alone.
func (d *daemon) startRefresh(ctx context.Context) *job {
	rctx, cancel := context.WithCancel(ctx)
	j := &job{done: make(chan refreshed, 1), cancel: cancel, start: time.Now(), progress: time.NewTicker(d.cfg.ProgressEvery)}
	go func() {
		c, err := d.r.Refresh(rctx)
		j.done <- refreshed{changes: c, err: err, took: time.Since(j.start)}
	}()
	return j
}

func (j *job) stop() {
	j.cancel()
	j.progress.Stop()
}

// settle cancels a refresh and waits for it to return, so that it cannot
// write files after Run has returned. A refresh that does not heed the
// cancellation (a key derivation running) is given up on after
// KillTimeout: stopping must not wait for it.
func (d *daemon) settle(j *job) (res refreshed, ok bool) {
	j.stop()
	t := time.NewTimer(d.cfg.KillTimeout)
	defer t.Stop()
	select {
	case res := <-j.done:
		return res, true
	case <-t.C:
		d.log.Warn().Str("kill_timeout", d.cfg.KillTimeout.String()).Msg("the cancelled refresh has not returned within the kill timeout; stopping without it")
		return refreshed{}, false
	}
}

func (d *daemon) logProgress(what string, j *job) {
	d.log.Info().Str("elapsed", time.Since(j.start).Round(time.Second).String()).Msg(what + " still running (waiting for the password manager)")
}

// logRendered logs a successful refresh: what changed, counts and the
// duration, never a value.
func (d *daemon) logRendered(msg string, res refreshed) {
	d.log.Info().Strs("changed", nonNil(res.changes.Files)).Bool("env_changed", res.changes.EnvChanged).
		Int("templates", len(d.cfg.Templates)).Int("secrets", len(res.changes.Secrets)).
		Str("took", res.took.Round(time.Millisecond).String()).Msg(msg)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// retryDelay is the wait before retrying a failed refresh: exponential
// backoff with jitter up to limit. A server's Retry-After lengthens it,
// but never beyond limit: a server must not park the daemon (a year's
// Retry-After would leave /readyz stale long after the server recovered).
// asked is the server's request when it was capped, else 0.
func (d *daemon) retryDelay(err error, attempt int, limit time.Duration) (wait, asked time.Duration) {
	// A failed refresh is retried sooner than the next interval, never
	// later: start at RetryBase or the limit, whichever is shorter.
	base := min(d.cfg.RetryBase, limit)
	wait = fetch.Backoff(base, limit, attempt)
	var se *fetch.StatusError
	if errors.As(err, &se) && se.RetryAfter > wait {
		if se.RetryAfter > limit {
			return limit, se.RetryAfter
		}
		wait = se.RetryAfter
	}
	return wait, 0
}

// idleRelease is the shortest wait before the next refresh after which
// the daemon returns freed memory to the kernel. Releasing costs about
// 12 ms of CPU per refresh at 100 secrets (mostly the kernel's: pages
// returned, then faulted in again by the next refresh), under 0.05% of a
// core from 30 s up; shorter intervals keep their heap.
const idleRelease = 30 * time.Second

// releaseMemory collects and returns freed memory to the kernel when the
// daemon is about to sleep for wait: a sidecar sleeps most of its life,
// and would otherwise keep the last refresh's garbage resident (about
// 2.7 MiB of private memory at 100 secrets, docs/performance.md). It runs
// off the loop, so a signal is never delayed by the collection.
func releaseMemory(wait time.Duration) {
	if wait >= idleRelease {
		go debug.FreeOSMemory()
	}
}

func (d *daemon) interval() time.Duration {
	if d.cfg.Splay <= 0 {
		return d.cfg.Interval
	}
	return d.cfg.Interval + rand.N(d.cfg.Splay+1)
}

type refreshed struct {
	changes Changes
	err     error
	took    time.Duration
}

func (d *daemon) loop(ctx context.Context, sigs <-chan os.Signal) (int, error) {
	first := d.interval()
	releaseMemory(first) // the first render's garbage: key derivation, unwrapping
	timer := time.NewTimer(first)
	defer timer.Stop()

	// Refreshes run in the background so signals and the child's exit are
	// handled while a slow provider is retried.
	var pending *job
	defer func() {
		if pending != nil {
			d.settle(pending) // never return while a refresh may still write files
		}
	}()
	// Actions run in the background too, one plan at a time, so a stop
	// is not delayed by a restart's grace period or a slow command. The
	// next refresh is scheduled when the plan is done.
	actx, cancelActs := context.WithCancel(ctx)
	var acting chan struct{}
	var afterActing time.Duration // the delay to schedule then
	refreshAfterActing := false   // SIGHUP arrived meanwhile
	defer func() {
		cancelActs()
		if acting != nil {
			<-acting
		}
	}()

	stopping := false // a terminating signal reached the child; exit with it
	var kill <-chan time.Time
	refresh := func() {
		if stopping {
			return
		}
		if acting != nil {
			refreshAfterActing = true
			return
		}
		if pending != nil {
			return
		}
		pending = d.startRefresh(ctx)
	}

	for {
		var done <-chan refreshed
		var progress <-chan time.Time
		if pending != nil {
			done, progress = pending.done, pending.progress.C
		}
		select {
		case <-ctx.Done():
			return d.stop(), nil

		case <-timer.C:
			refresh()

		case <-progress:
			d.logProgress("refresh", pending)

		case res := <-done:
			pending.stop()
			pending = nil
			if stopping {
				// Acting now would restart or signal a child that is
				// shutting down, and a restart would outlive the stop.
				d.log.Info().Msg("stopping: ignoring the refresh result")
				continue
			}
			wait, p := d.apply(res)
			releaseMemory(wait)
			if p.empty() {
				timer.Reset(wait)
				continue
			}
			acting, afterActing = make(chan struct{}), wait
			go func(done chan<- struct{}, child *supervise.Child, env []string) {
				defer close(done)
				d.run(ctx, actx, child, env, p)
			}(acting, d.child, d.env)

		case <-acting:
			acting = nil
			if stopping {
				continue
			}
			if refreshAfterActing {
				refreshAfterActing = false
				refresh()
			} else {
				timer.Reset(afterActing)
			}

		case <-kill:
			d.log.Warn().Str("kill_timeout", d.cfg.KillTimeout.String()).Msg("child still running after the kill timeout: sending SIGKILL")
			d.child.Signal(syscall.SIGKILL)
			kill = nil

		case <-d.exited:
			code := d.child.Wait()
			if d.cfg.ExitWhenChildExits || stopping {
				d.log.Info().Int("exit_code", code).Msg("child exited")
				return code, nil
			}
			d.log.Warn().Int("exit_code", code).Msg("child exited; still refreshing")
			d.child, d.exited = nil, nil

		case sig := <-sigs:
			switch {
			case sig == syscall.SIGHUP && !d.cfg.ForwardHUP:
				d.log.Info().Msg("SIGHUP: refreshing now")
				timer.Stop()
				refresh()
			case terminating(sig) && d.child == nil:
				d.log.Info().Str("signal", signalName(sig)).Msg("stopping")
				return 0, nil // the deferred settle cancels a refresh in flight
			case terminating(sig):
				if !stopping {
					d.log.Info().Str("signal", signalName(sig)).Msg("stopping: passing the signal to the child")
					stopping = true
					timer.Stop()
					if pending != nil {
						pending.cancel() // a refresh in flight is moot now
					}
					cancelActs()           // so is a command: kill it
					d.child.StopRestarts() // and a restart must not start a new run
				}
				if !slices.Contains(d.cfg.Forward, sig) {
					go d.child.Stop() // escalates to SIGKILL itself
					break
				}
				d.child.Signal(sig)
				if kill == nil {
					// Like Stop: a child that ignores the signal is killed
					// once the grace period is over. Counted from the
					// first terminating signal; later ones do not extend it.
					kill = time.After(d.cfg.KillTimeout)
				}
			case d.child != nil && (slices.Contains(d.cfg.Forward, sig) || sig == syscall.SIGHUP):
				d.child.Signal(sig)
			}
		}
	}
}

// apply records a refresh result and returns the delay until the next
// refresh and the actions to carry out.
func (d *daemon) apply(res refreshed) (time.Duration, plan) {
	if res.err != nil {
		d.failed()
		wait, asked := d.retryDelay(res.err, d.failing, d.cfg.Interval)
		ev := d.log.Error().Err(res.err).Int("attempt", d.failing).Str("retry_in", wait.String()).
			Str("retry_setting", "--interval").Strs("replaced", res.changes.Files)
		if asked > 0 {
			ev = ev.Str("server_retry_after", asked.String()).Str("capped_at", wait.String())
		}
		ev.Msg("refresh failed; keeping the last good output")
		return wait, d.fileActions(res.changes.Files)
	}
	c := res.changes
	d.succeeded(c)
	d.logRendered("refreshed", res)
	for _, mw := range d.masks {
		mw.Update(c.Secrets) // before a restart, so the new values are masked from the start
	}
	d.env = childEnv(c.Env)

	p := d.fileActions(c.Files)
	if c.EnvChanged {
		p.add(d.cfg.OnEnvChange)
	}
	return d.interval(), p
}

// fileActions is the plan for changed destinations: each one's
// --on-change action, or the default.
func (d *daemon) fileActions(files []string) plan {
	var p plan
	for _, f := range files {
		a, ok := d.cfg.OnChange[f]
		if !ok {
			a = d.cfg.DefaultOnChange
		}
		p.add(a)
	}
	return p
}

func (d *daemon) succeeded(c Changes) {
	d.failing = 0
	for _, t := range d.cfg.Templates {
		result := metrics.ResultUnchanged
		if slices.Contains(c.Files, t) || t == EnvTemplate && c.EnvChanged {
			result = metrics.ResultChanged
		}
		d.m.Rendered(t, result)
	}
	d.m.Succeeded(time.Now(), len(c.Secrets))
}

func (d *daemon) failed() {
	d.failing++
	for _, t := range d.cfg.Templates {
		d.m.Rendered(t, metrics.ResultError)
	}
}

// run carries out a plan on child (nil without one) with env: a restart
// makes signals moot (the new process reads everything afresh); commands
// run after, one at a time. It runs beside the loop, so it uses only its
// arguments and what never changes after Run started. Cancelling ctx
// kills the old child at once during a restart (as when Run's context is
// done); cancelling cmdCtx kills a running command and skips the rest.
func (d *daemon) run(ctx, cmdCtx context.Context, child *supervise.Child, env []string, p plan) {
	var toChild, toProcesses []Action
	for _, a := range p.signals {
		if a.Process != "" {
			toProcesses = append(toProcesses, a)
		} else {
			toChild = append(toChild, a)
		}
	}
	switch {
	case child == nil && (p.restart || len(toChild) > 0):
		d.log.Debug().Msg("no child to signal or restart")
	case p.restart:
		d.log.Info().Msg("restarting child")
		if err := child.Restart(ctx, env); err != nil {
			d.log.Error().Err(err).Msg("restart failed")
		} else {
			d.m.ChildRestarted()
		}
	default:
		for _, a := range toChild {
			d.log.Info().Str("signal", signalName(a.Signal)).Msg("signalling child")
			if err := child.Signal(a.Signal); err != nil {
				d.log.Warn().Err(err).Str("signal", signalName(a.Signal)).Msg("signal failed")
			}
		}
	}
	// Processes outside injector's tree are told even when the child
	// restarts: the restart does not reach them.
	for _, a := range toProcesses {
		pids, err := signalProcesses(a.Process, a.Signal)
		l := d.log.With().Str("signal", signalName(a.Signal)).Str("process", a.Process).Ints("pids", pids).Logger()
		switch {
		case err != nil:
			l.Warn().Err(err).Msg("signalling processes failed")
		case len(pids) == 0:
			l.Warn().Msg("no process of that name to signal (a Kubernetes Pod needs shareProcessNamespace: true)")
		default:
			l.Info().Msg("signalled processes")
		}
	}
	for _, c := range p.commands {
		if cmdCtx.Err() != nil {
			return
		}
		d.command(cmdCtx, env, c)
	}
}

// command runs one command: action with sh -c, in its own process group
// so a timeout kills everything it started. It gets the child's
// environment, never injector's own (which holds provider credentials).
func (d *daemon) command(ctx context.Context, env []string, command string) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = d.stdout, d.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	d.log.Info().Str("command", command).Msg("running on-change command")
	if err := d.reaper.Run(cmd); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("timed out after %s: %w", d.cfg.CommandTimeout, err)
		}
		d.log.Error().Err(err).Str("command", command).Msg("on-change command failed")
	}
}

// stop stops the child, if any, and returns its exit code.
func (d *daemon) stop() int {
	if d.child == nil {
		return 0
	}
	return d.child.Stop()
}

func (d *daemon) flush() {
	for _, mw := range d.masks {
		mw.Flush()
	}
}

// childEnv never returns nil: a nil Env would make exec pass on
// injector's own environment, credentials included.
func childEnv(env []string) []string {
	if env == nil {
		return []string{}
	}
	return env
}
