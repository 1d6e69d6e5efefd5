//go:build linux

package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	runtimemetrics "runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/metrics"
	"github.com/injector-dev/injector/internal/testutil"
)

// deadline only keeps a broken test from hanging; nothing asserts that
// anything is fast. It is generous: the machine may be busy.
const deadline = testutil.Patience

// fakeRefresher answers call n (1-based) with step(n) and records when
// each call was made.
type fakeRefresher struct {
	step func(n int) (Changes, error)

	mu    sync.Mutex
	times []time.Time
}

func (f *fakeRefresher) Refresh(ctx context.Context) (Changes, error) {
	f.mu.Lock()
	f.times = append(f.times, time.Now())
	n := len(f.times)
	f.mu.Unlock()
	return f.step(n)
}

func (f *fakeRefresher) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.times)
}

func (f *fakeRefresher) callTime(n int) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.times[n-1]
}

// steady returns the same unchanged result after a first one that is
// "changed", as a real pipeline does.
func steady(env ...string) func(int) (Changes, error) {
	return func(n int) (Changes, error) {
		return Changes{Env: env, EnvChanged: n == 1}, nil
	}
}

// trapChild records its start (with $VALUE) and the signals it gets in
// the file $1; it exits 3 on SIGTERM. "start-$VALUE" is written once its
// traps are set: a signal sent before that would kill it (or be lost), so
// a test sends none until it sees that line (see startedAs).
func trapChild(log string) []string {
	return []string{"/bin/sh", "-c", `f=$1
trap 'echo HUP >> "$f"' HUP
trap 'echo USR1 >> "$f"' USR1
trap 'echo TERM >> "$f"; exit 3' TERM
echo "start-$VALUE" >> "$f"
while :; do sleep 0.02; done`, "sh", log}
}

func lines(path string) string {
	data, _ := os.ReadFile(path)
	return strings.Join(strings.Fields(string(data)), " ")
}

// startedAs reports whether the log's lines begin with want: the child
// has set its traps and may be signalled.
func startedAs(path, want string) bool {
	return strings.HasPrefix(lines(path)+" ", want+" ")
}

// latch returns a function that reports true exactly once: the first
// time it is called with cond true. A fake refresher uses it to report a
// change once the child is ready for what the change triggers.
func latch() func(cond bool) bool {
	fired := false
	return func(cond bool) bool {
		if fired || !cond {
			return false
		}
		fired = true
		return true
	}
}

func waitLines(t *testing.T, path, want string) {
	t.Helper()
	testutil.WaitFor(t, deadline, fmt.Sprintf("%q in %s", want, filepath.Base(path)), func() bool { return lines(path) == want })
}

// daemonRun is a Run in the background.
type daemonRun struct {
	cancel context.CancelFunc
	sigs   chan os.Signal
	done   chan struct{}
	code   int
	err    error
	log    *testutil.SyncBuffer
}

// start runs the daemon with test defaults: a short interval, tiny
// backoff, injected signals.
func start(t *testing.T, cfg Config, r Refresher, m *metrics.Metrics) *daemonRun {
	t.Helper()
	return startWith(t, cfg, r, m, false)
}

// startWith is start; with realSignals the daemon installs its own
// signal handling instead of reading dr.sigs.
func startWith(t *testing.T, cfg Config, r Refresher, m *metrics.Metrics, realSignals bool) *daemonRun {
	t.Helper()
	if cfg.Interval == 0 {
		cfg.Interval = 5 * time.Millisecond
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase = time.Millisecond
	}
	if cfg.KillTimeout == 0 {
		cfg.KillTimeout = 30 * time.Second // only a broken child waits for it
	}
	dr := &daemonRun{sigs: make(chan os.Signal, 4), done: make(chan struct{}), log: &testutil.SyncBuffer{}}
	if !realSignals {
		cfg.Signals = dr.sigs
	}
	if cfg.Stdin == nil {
		cfg.Stdin = strings.NewReader("")
	}
	if cfg.Stdout == nil {
		cfg.Stdout = dr.log
	}
	if cfg.Stderr == nil {
		cfg.Stderr = dr.log
	}
	ctx, cancel := context.WithCancel(context.Background())
	dr.cancel = cancel
	go func() {
		defer close(dr.done)
		dr.code, dr.err = Run(ctx, cfg, r, m, zerolog.New(dr.log))
	}()
	t.Cleanup(func() {
		cancel()
		dr.wait(t)
	})
	return dr
}

func (dr *daemonRun) wait(t *testing.T) (int, error) {
	t.Helper()
	select {
	case <-dr.done:
		return dr.code, dr.err
	case <-time.After(deadline):
		t.Fatal("Run did not return")
		return 0, nil
	}
}

// stop cancels the daemon and returns its exit code.
func (dr *daemonRun) stop(t *testing.T) int {
	t.Helper()
	dr.cancel()
	code, err := dr.wait(t)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return code
}

func TestParseAction(t *testing.T) {
	tests := []struct {
		in      string
		want    Action
		wantErr bool
	}{
		{"none", Action{Kind: None}, false},
		{"restart", Action{Kind: Restart}, false},
		{"signal:SIGHUP", Action{Kind: Signal, Signal: syscall.SIGHUP}, false},
		{"signal:hup", Action{Kind: Signal, Signal: syscall.SIGHUP}, false},
		{"signal:USR1", Action{Kind: Signal, Signal: syscall.SIGUSR1}, false},
		{"signal:10", Action{Kind: Signal, Signal: syscall.SIGUSR1}, false},
		{"signal:SIGHUP:nginx", Action{Kind: Signal, Signal: syscall.SIGHUP, Process: "nginx"}, false},
		{"signal:SIGHUP:", Action{}, true},
		{"signal:SIGHUP:/usr/sbin/nginx", Action{}, true},
		{"signal::nginx", Action{}, true},
		{"command:nginx -s reload", Action{Kind: Command, Command: "nginx -s reload"}, false},
		{"command:a:b", Action{Kind: Command, Command: "a:b"}, false},
		{"signal:SIGNOPE", Action{}, true},
		{"signal:0", Action{}, true},
		{"signal:", Action{}, true},
		{"command:", Action{}, true},
		{"command:  ", Action{}, true},
		{"restart:now", Action{}, true},
		{"reload", Action{}, true},
		{"", Action{}, true},
	}
	for _, tt := range tests {
		got, err := ParseAction(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseAction(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && !strings.Contains("signal:hup signal:10 signal:USR1", tt.in) && got.String() != tt.in {
			t.Errorf("ParseAction(%q).String() = %q", tt.in, got.String())
		}
	}
}

func TestNothingFiresWhenUnchanged(t *testing.T) {
	log := filepath.Join(t.TempDir(), "child")
	r := &fakeRefresher{step: steady("VALUE=one")}
	dr := start(t, Config{
		Command:         trapChild(log),
		DefaultOnChange: Action{Kind: Signal, Signal: syscall.SIGHUP},
		OnEnvChange:     Action{Kind: Restart},
	}, r, nil)
	waitLines(t, log, "start-one")
	testutil.WaitFor(t, deadline, "ten refreshes", func() bool { return r.calls() >= 10 })
	if code := dr.stop(t); code != 3 {
		t.Errorf("exit code %d, want the child's 3", code)
	}
	if got := lines(log); got != "start-one TERM" {
		t.Errorf("child saw %q; nothing should fire when nothing changed", got)
	}
}

func TestSignalActions(t *testing.T) {
	log := filepath.Join(t.TempDir(), "child")
	usr1, hup := latch(), latch()
	r := &fakeRefresher{step: func(n int) (Changes, error) {
		c := Changes{Env: []string{"VALUE=one"}, EnvChanged: n == 1}
		switch {
		case n > 1 && usr1(lines(log) == "start-one"):
			c.Files = []string{"/etc/app/tls.pem"} // per-destination: USR1
		case hup(lines(log) == "start-one USR1"):
			// Only once USR1 is recorded: sh runs pending traps in
			// signal-number order, which would swap the two.
			c.Files = []string{"/etc/app/a.conf", "/etc/app/b.conf"} // default HUP, once
		}
		return c, nil
	}}
	dr := start(t, Config{
		Command:         trapChild(log),
		OnChange:        map[string]Action{"/etc/app/tls.pem": {Kind: Signal, Signal: syscall.SIGUSR1}},
		DefaultOnChange: Action{Kind: Signal, Signal: syscall.SIGHUP},
		OnEnvChange:     Action{Kind: Restart},
	}, r, nil)
	waitLines(t, log, "start-one USR1 HUP")
	testutil.WaitFor(t, deadline, "more refreshes", func() bool { return r.calls() >= 10 })
	dr.stop(t)
	if got := lines(log); got != "start-one USR1 HUP TERM" {
		t.Errorf("child saw %q", got)
	}
}

// TestSignalProcessByName: without a child (render, a Kubernetes sidecar),
// a signal action names the program to signal, found in /proc as pidof
// finds it; other processes, even running the same shell, get nothing.
func TestSignalProcessByName(t *testing.T) {
	dir := t.TempDir()
	name := fmt.Sprintf("injector-test-app-%d", os.Getpid())
	startNamed := func(argv0, log string) {
		argv := trapChild(log)
		cmd := &exec.Cmd{Path: argv[0], Args: append([]string{argv0}, argv[1:]...)}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		waitLines(t, log, "start-")
	}
	target, other := filepath.Join(dir, "target"), filepath.Join(dir, "other")
	startNamed("/opt/app/"+name, target)
	startNamed(name+"-not", other)

	r := &fakeRefresher{step: func(n int) (Changes, error) {
		c := Changes{}
		if n == 3 {
			c.Files = []string{"/etc/app/app.env"}
		}
		return c, nil
	}}
	dr := start(t, Config{
		OnChange: map[string]Action{"/etc/app/app.env": {Kind: Signal, Signal: syscall.SIGHUP, Process: name}},
	}, r, nil)
	waitLines(t, target, "start- HUP")
	testutil.WaitFor(t, deadline, "more refreshes", func() bool { return r.calls() >= 10 })
	if code := dr.stop(t); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if got := lines(target); got != "start- HUP" {
		t.Errorf("%s saw %q, want one HUP", name, got)
	}
	if got := lines(other); got != "start-" {
		t.Errorf("a process of another name saw %q", got)
	}
	if !strings.Contains(dr.log.String(), `"message":"signalled processes"`) {
		t.Errorf("log: %s", dr.log)
	}
}

// A name no process has is logged, not fatal: the app may be restarting.
func TestSignalProcessMissing(t *testing.T) {
	r := &fakeRefresher{step: func(n int) (Changes, error) {
		return Changes{Files: []string{"/etc/app/app.env"}}, nil
	}}
	dr := start(t, Config{
		DefaultOnChange: Action{Kind: Signal, Signal: syscall.SIGHUP, Process: "injector-test-no-such-program"},
	}, r, nil)
	testutil.WaitFor(t, deadline, "a warning", func() bool { return strings.Contains(dr.log.String(), "no process of that name") })
	if code := dr.stop(t); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

// TestActionsForFilesReplacedBeforeAFailure: when a refresh fails after
// some files were already replaced (a rename failed midway), those files'
// actions still run: the application must reload what it now reads.
func TestActionsForFilesReplacedBeforeAFailure(t *testing.T) {
	log := filepath.Join(t.TempDir(), "child")
	fail := latch()
	var failedAt atomic.Int64
	r := &fakeRefresher{step: func(n int) (Changes, error) {
		if n > 1 && fail(startedAs(log, "start-one")) {
			failedAt.Store(int64(n))
			return Changes{Files: []string{"/etc/app/a.conf"}}, errors.New("render /etc/app/b.conf: rename: device busy")
		}
		return Changes{Env: []string{"VALUE=one"}, EnvChanged: n == 1}, nil
	}}
	dr := start(t, Config{Command: trapChild(log), DefaultOnChange: Action{Kind: Signal, Signal: syscall.SIGHUP}}, r, nil)
	waitLines(t, log, "start-one HUP")
	testutil.WaitFor(t, deadline, "more refreshes", func() bool { return int64(r.calls()) >= failedAt.Load()+3 })
	dr.stop(t)
	if got := lines(log); got != "start-one HUP TERM" {
		t.Errorf("child saw %q", got)
	}
}

func TestRestartActions(t *testing.T) {
	log := filepath.Join(t.TempDir(), "child")
	m := metrics.New("test")
	toTwo, files := latch(), latch()
	two := false
	r := &fakeRefresher{step: func(n int) (Changes, error) {
		switch {
		case n == 1:
			return Changes{Env: []string{"VALUE=one"}, EnvChanged: true}, nil
		case toTwo(startedAs(log, "start-one")):
			two = true
			return Changes{Env: []string{"VALUE=two"}, EnvChanged: true}, nil
		case files(startedAs(log, "start-one TERM start-two")):
			// Two files wanting a restart, and a signal: one restart.
			return Changes{Env: []string{"VALUE=two"}, Files: []string{"a", "b", "c"}}, nil
		case two:
			return Changes{Env: []string{"VALUE=two"}}, nil
		}
		return Changes{Env: []string{"VALUE=one"}}, nil
	}}
	dr := start(t, Config{
		Command:     trapChild(log),
		OnChange:    map[string]Action{"a": {Kind: Restart}, "b": {Kind: Restart}, "c": {Kind: Signal, Signal: syscall.SIGUSR1}},
		OnEnvChange: Action{Kind: Restart},
	}, r, m)
	waitLines(t, log, "start-one TERM start-two TERM start-two")
	n := r.calls()
	testutil.WaitFor(t, deadline, "more refreshes", func() bool { return r.calls() >= n+3 })
	dr.stop(t)
	if got := lines(log); got != "start-one TERM start-two TERM start-two TERM" {
		t.Errorf("child saw %q", got)
	}
	if got := gather(t, m, "injector_child_restarts_total"); got != 2 {
		t.Errorf("injector_child_restarts_total = %v, want 2", got)
	}
}

// gather returns the value of an unlabelled counter or gauge.
func gather(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			mm := f.GetMetric()[0]
			if mm.Counter != nil {
				return mm.Counter.GetValue()
			}
			return mm.Gauge.GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func TestCommandActions(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	r := &fakeRefresher{step: func(n int) (Changes, error) {
		c := Changes{Env: []string{"VALUE=v" + fmt.Sprint(n), "OUT=" + out}}
		switch n {
		case 2:
			c.Files = []string{"slow"}
		case 3:
			c.Files = []string{"x", "y"} // same command twice: runs once
		}
		return c, nil
	}}
	cmd := Action{Kind: Command, Command: `echo "reload $VALUE" >> "$OUT"`}
	dr := start(t, Config{
		// Long enough for sh to start and write "slow" on a loaded
		// machine (100ms was not); only the timeout ends its sleep.
		CommandTimeout: 2 * time.Second,
		OnChange: map[string]Action{
			"slow": {Kind: Command, Command: `echo slow >> "$OUT"; sleep 60; echo "not killed" >> "$OUT"`},
			"x":    cmd, "y": cmd,
		},
	}, r, nil)
	waitLines(t, out, "slow reload v3")
	testutil.WaitFor(t, deadline, "more refreshes", func() bool { return r.calls() >= 6 })
	if code := dr.stop(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if got := lines(out); got != "slow reload v3" {
		t.Errorf("commands wrote %q", got)
	}
	if !strings.Contains(dr.log.String(), "timed out") {
		t.Errorf("timeout not logged:\n%s", dr.log)
	}
}

// TestRefreshFailure: failures keep the child and the last good state,
// honour a Retry-After shorter than the interval, and a later success
// carries on as normal.
func TestRefreshFailure(t *testing.T) {
	log := filepath.Join(t.TempDir(), "child")
	const interval, retryAfter = 300 * time.Millisecond, 100 * time.Millisecond
	m := metrics.New("test")
	changed := latch()
	r := &fakeRefresher{step: func(n int) (Changes, error) {
		switch n {
		case 1:
			return Changes{Env: []string{"VALUE=one"}, EnvChanged: true}, nil
		case 2:
			return Changes{}, errors.New("passwork: connection refused")
		case 3:
			return Changes{}, fmt.Errorf("passwork: resolve: %w", &fetch.StatusError{Provider: "passwork", Status: 429, RetryAfter: retryAfter})
		case 4:
			return Changes{}, errors.New("passwork: connection refused")
		}
		if changed(startedAs(log, "start-one")) {
			return Changes{Env: []string{"VALUE=one"}, Files: []string{"app.conf"}}, nil
		}
		return Changes{Env: []string{"VALUE=one"}}, nil
	}}
	dr := start(t, Config{
		Interval:        interval,
		Command:         trapChild(log),
		DefaultOnChange: Action{Kind: Signal, Signal: syscall.SIGHUP},
		OnEnvChange:     Action{Kind: Restart},
		Templates:       []string{"app.conf"},
	}, r, m)
	waitLines(t, log, "start-one HUP")
	n := r.calls()
	testutil.WaitFor(t, deadline, "more refreshes", func() bool { return r.calls() >= n+2 })
	if wait := r.callTime(4).Sub(r.callTime(3)); wait < retryAfter {
		t.Errorf("retried %s after a 429 with Retry-After %s", wait, retryAfter)
	}
	dr.stop(t)
	if got := lines(log); got != "start-one HUP TERM" {
		t.Errorf("child saw %q", got)
	}
	if strings.Count(dr.log.String(), "refresh failed") != 3 {
		t.Errorf("want 3 failures logged:\n%s", dr.log)
	}
}

func TestWaitForSecrets(t *testing.T) {
	failing := func(upTo int) *fakeRefresher {
		return &fakeRefresher{step: func(n int) (Changes, error) {
			if n <= upTo {
				return Changes{}, errors.New("passbolt: 503")
			}
			return Changes{}, nil
		}}
	}
	t.Run("retries then succeeds", func(t *testing.T) {
		r := failing(3)
		dr := start(t, Config{Once: true, WaitForSecrets: deadline}, r, nil)
		if code, err := dr.wait(t); code != 0 || err != nil {
			t.Fatalf("Run = %d, %v", code, err)
		}
		if r.calls() != 4 {
			t.Errorf("%d calls, want 4", r.calls())
		}
	})
	t.Run("fail fast", func(t *testing.T) {
		r := failing(1)
		dr := start(t, Config{Once: true}, r, nil)
		code, err := dr.wait(t)
		if code != 1 || err == nil || !strings.Contains(err.Error(), "passbolt: 503") {
			t.Fatalf("Run = %d, %v; want 1 and the refresh error", code, err)
		}
		if r.calls() != 1 {
			t.Errorf("%d calls, want 1", r.calls())
		}
	})
	t.Run("gives up", func(t *testing.T) {
		r := failing(1 << 30)
		dr := start(t, Config{Once: true, WaitForSecrets: 50 * time.Millisecond}, r, nil)
		code, err := dr.wait(t)
		if code != 1 || err == nil {
			t.Fatalf("Run = %d, %v; want failure", code, err)
		}
		if r.calls() < 2 {
			t.Errorf("%d calls, want retries", r.calls())
		}
	})
	t.Run("SIGTERM while waiting", func(t *testing.T) {
		r := failing(1 << 30)
		dr := start(t, Config{Once: true, WaitForSecrets: time.Hour, RetryBase: time.Hour}, r, nil)
		testutil.WaitFor(t, deadline, "first attempt", func() bool { return r.calls() == 1 })
		dr.sigs <- syscall.SIGTERM
		if code, err := dr.wait(t); code != 1 || err == nil {
			t.Fatalf("Run = %d, %v; want failure", code, err)
		}
	})
}

func TestMaxStale(t *testing.T) {
	m := metrics.New("test")
	var mu sync.Mutex
	healthy := true
	r := &fakeRefresher{step: func(n int) (Changes, error) {
		mu.Lock()
		defer mu.Unlock()
		if !healthy {
			return Changes{}, errors.New("passwork: down")
		}
		return Changes{}, nil
	}}
	setHealthy := func(v bool) { mu.Lock(); healthy = v; mu.Unlock() }
	start(t, Config{MaxStale: 100 * time.Millisecond, Templates: []string{"app.conf"}}, r, m)

	testutil.WaitFor(t, deadline, "ready", func() bool { ok, _ := m.Ready(); return ok })
	setHealthy(false)
	testutil.WaitFor(t, deadline, "stale", func() bool { _, why := m.Ready(); return strings.HasPrefix(why, "stale") })
	setHealthy(true)
	testutil.WaitFor(t, deadline, "ready again", func() bool { ok, _ := m.Ready(); return ok })
}

func TestSIGHUP(t *testing.T) {
	t.Run("refreshes", func(t *testing.T) {
		log := filepath.Join(t.TempDir(), "child")
		r := &fakeRefresher{step: steady("VALUE=one")}
		dr := start(t, Config{Interval: time.Hour, Command: trapChild(log)}, r, nil)
		waitLines(t, log, "start-one")
		dr.sigs <- syscall.SIGHUP
		testutil.WaitFor(t, deadline, "refresh on SIGHUP", func() bool { return r.calls() == 2 })
		dr.sigs <- syscall.SIGHUP
		testutil.WaitFor(t, deadline, "refresh on SIGHUP", func() bool { return r.calls() == 3 })
		dr.stop(t)
		if got := lines(log); got != "start-one TERM" {
			t.Errorf("child saw %q; SIGHUP must not be forwarded", got)
		}
	})
	t.Run("forwarded", func(t *testing.T) {
		log := filepath.Join(t.TempDir(), "child")
		r := &fakeRefresher{step: steady("VALUE=one")}
		dr := start(t, Config{Interval: time.Hour, Command: trapChild(log), ForwardHUP: true}, r, nil)
		waitLines(t, log, "start-one")
		dr.sigs <- syscall.SIGHUP
		waitLines(t, log, "start-one HUP")
		dr.stop(t)
		if r.calls() != 1 {
			t.Errorf("%d refreshes; a forwarded SIGHUP must not refresh", r.calls())
		}
	})
}

func TestSignalForwarding(t *testing.T) {
	log := filepath.Join(t.TempDir(), "child")
	r := &fakeRefresher{step: steady("VALUE=one")}
	dr := start(t, Config{Interval: time.Hour, Command: trapChild(log)}, r, nil)
	waitLines(t, log, "start-one")
	dr.sigs <- syscall.SIGUSR1
	waitLines(t, log, "start-one USR1")
	dr.sigs <- syscall.SIGTERM
	if code, err := dr.wait(t); code != 3 || err != nil {
		t.Errorf("Run = %d, %v; want the child's 3", code, err)
	}
	if got := lines(log); got != "start-one USR1 TERM" {
		t.Errorf("child saw %q", got)
	}
}

func TestChildExit(t *testing.T) {
	t.Run("exit when child exits", func(t *testing.T) {
		r := &fakeRefresher{step: steady()}
		dr := start(t, Config{ExitWhenChildExits: true, Command: []string{"/bin/sh", "-c", "exit 7"}}, r, nil)
		if code, err := dr.wait(t); code != 7 || err != nil {
			t.Errorf("Run = %d, %v; want 7", code, err)
		}
	})
	t.Run("keep refreshing", func(t *testing.T) {
		r := &fakeRefresher{step: steady()}
		dr := start(t, Config{Command: []string{"/bin/sh", "-c", "exit 7"}}, r, nil)
		testutil.WaitFor(t, deadline, "child exit logged", func() bool { return strings.Contains(dr.log.String(), "still refreshing") })
		n := r.calls()
		testutil.WaitFor(t, deadline, "refreshes after the child exited", func() bool { return r.calls() > n+3 })
		if code := dr.stop(t); code != 0 {
			t.Errorf("exit code %d, want 0", code)
		}
	})
	t.Run("SIGTERM without child", func(t *testing.T) {
		r := &fakeRefresher{step: steady()}
		dr := start(t, Config{}, r, nil)
		testutil.WaitFor(t, deadline, "a refresh", func() bool { return r.calls() >= 2 })
		dr.sigs <- syscall.SIGTERM
		if code, err := dr.wait(t); code != 0 || err != nil {
			t.Errorf("Run = %d, %v; want 0", code, err)
		}
	})
}

// TestMaskAndNoLeaks: the child's output is masked, including a value that
// only appears after a refresh, and no secret reaches the daemon's log.
func TestMaskAndNoLeaks(t *testing.T) {
	const canary1, canary2 = "CANARY-one-s3cret", "CANARY-two-s3cret"
	dir := t.TempDir()
	trigger := filepath.Join(dir, "trigger")
	var out testutil.SyncBuffer
	// The second value (and the restart it causes) comes only once the
	// child has printed the first: a restart before that would stop it
	// before it ever printed.
	fail, rotate := latch(), latch()
	rotated := false
	r := &fakeRefresher{step: func(n int) (Changes, error) {
		printed := strings.Contains(out.String(), "pw=")
		switch {
		case n > 1 && fail(printed):
			return Changes{}, errors.New("passwork: resolve \"prod/db\": denied")
		case rotate(printed && n > 2):
			rotated = true
			return Changes{Env: []string{"PW=" + canary2, "T=" + trigger}, EnvChanged: true, Secrets: []string{canary2}, Files: []string{"f"}}, nil
		case rotated:
			return Changes{Env: []string{"PW=" + canary2, "T=" + trigger}, Secrets: []string{canary2}, Files: []string{"f"}}, nil
		}
		return Changes{Env: []string{"PW=" + canary1, "T=" + trigger}, EnvChanged: n == 1, Secrets: []string{canary1}}, nil
	}}
	dr := start(t, Config{
		Mask:        true,
		Stdout:      &out,
		Command:     []string{"/bin/sh", "-c", `echo "pw=$PW"; while [ ! -e "$T" ]; do sleep 0.01; done; echo "again=$PW"; exit 0`},
		OnEnvChange: Action{Kind: Restart},
		OnChange:    map[string]Action{"f": {Kind: Command, Command: `echo "cmd=$PW"; exit 1`}},
	}, r, nil)
	testutil.WaitFor(t, deadline, "restart", func() bool { return strings.Count(out.String(), "pw=") == 2 })
	os.WriteFile(trigger, nil, 0o600)
	testutil.WaitFor(t, deadline, "second output", func() bool { return strings.Contains(out.String(), "again=") })
	dr.stop(t)
	got := out.String()
	for _, want := range []string{"pw=********", "cmd=********", "again=********"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, s := range []string{canary1, canary2} {
		if strings.Contains(got, s) {
			t.Errorf("output leaks %s:\n%s", s, got)
		}
		if strings.Contains(dr.log.String(), s) {
			t.Errorf("log leaks %s:\n%s", s, dr.log)
		}
	}
}

func TestReapWithChild(t *testing.T) {
	r := &fakeRefresher{step: steady()}
	dr := start(t, Config{Reap: true, ExitWhenChildExits: true,
		Command: []string{"/bin/sh", "-c", "(sleep 0.05) & exit 4"}}, r, nil)
	if code, err := dr.wait(t); code != 4 || err != nil {
		t.Errorf("Run = %d, %v; want 4", code, err)
	}
}

// TestNoActionsWhileStopping: a refresh that completes after SIGTERM was
// forwarded must not restart the child, and Run exits with its code.
func TestNoActionsWhileStopping(t *testing.T) {
	dir := t.TempDir()
	log, exit := filepath.Join(dir, "child"), filepath.Join(dir, "exit")
	r := &fakeRefresher{step: func(n int) (Changes, error) {
		if n == 1 {
			return Changes{Env: []string{"VALUE=a"}, EnvChanged: true}, nil
		}
		// Finish only once the child has got the SIGTERM, with a change
		// that would restart it.
		for !strings.Contains(lines(log), "TERM") {
			time.Sleep(5 * time.Millisecond)
		}
		return Changes{Env: []string{"VALUE=b"}, EnvChanged: true}, nil
	}}
	dr := start(t, Config{
		// A child that takes its time to shut down: it exits once told to.
		Command: []string{"/bin/sh", "-c", `f=$1
trap 'echo TERM >> "$f"' TERM
echo "start-$VALUE" >> "$f"
while [ ! -e "$2" ]; do sleep 0.01; done
exit 3`, "sh", log, exit},
		OnEnvChange: Action{Kind: Restart},
	}, r, nil)
	waitLines(t, log, "start-a")
	testutil.WaitFor(t, deadline, "a refresh in flight", func() bool { return r.calls() >= 2 })
	dr.sigs <- syscall.SIGTERM
	testutil.WaitFor(t, deadline, "the refresh result ignored", func() bool {
		return strings.Contains(dr.log.String(), "ignoring the refresh result")
	})
	if err := os.WriteFile(exit, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, err := dr.wait(t); code != 3 || err != nil {
		t.Errorf("Run = %d, %v; want the child's 3", code, err)
	}
	if got := lines(log); got != "start-a TERM" {
		t.Errorf("child saw %q; nothing may act after SIGTERM", got)
	}
	if n := r.calls(); n != 2 {
		t.Errorf("%d refreshes; none may start after SIGTERM", n)
	}
}

// TestKillTimeoutAfterForwardedSignal: a child that ignores a forwarded
// SIGTERM is killed after KillTimeout, and Run reports 128+SIGKILL.
func TestKillTimeoutAfterForwardedSignal(t *testing.T) {
	log := filepath.Join(t.TempDir(), "child")
	r := &fakeRefresher{step: steady("VALUE=one")}
	dr := start(t, Config{
		Interval:    time.Hour,
		KillTimeout: 20 * time.Millisecond,
		Command: []string{"/bin/sh", "-c", `f=$1
trap 'echo TERM >> "$f"' TERM
echo "start-$VALUE" >> "$f"
while :; do sleep 0.01; done`, "sh", log},
	}, r, nil)
	waitLines(t, log, "start-one")
	dr.sigs <- syscall.SIGTERM
	if code, err := dr.wait(t); code != 128+int(syscall.SIGKILL) || err != nil {
		t.Errorf("Run = %d, %v; want 137", code, err)
	}
	if !strings.Contains(dr.log.String(), "SIGKILL") {
		t.Errorf("escalation not logged:\n%s", dr.log)
	}
}

// TestFailedRestartNotCounted: injector_child_restarts_total counts only
// restarts that started a new process.
func TestFailedRestartNotCounted(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "app")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\necho start >> \"$1\"\ntrap 'exit 3' TERM\nwhile :; do sleep 0.01; done\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "child")
	m := metrics.New("test")
	r := &fakeRefresher{step: func(n int) (Changes, error) {
		if n == 1 {
			return Changes{EnvChanged: true}, nil
		}
		return Changes{EnvChanged: n == 2, Env: []string{"N=2"}}, nil
	}}
	// The program disappears before the restart: the new run cannot start.
	dr := start(t, Config{Interval: time.Hour, Command: []string{prog, log}, OnEnvChange: Action{Kind: Restart}}, r, m)
	waitLines(t, log, "start")
	if err := os.Remove(prog); err != nil {
		t.Fatal(err)
	}
	dr.sigs <- syscall.SIGHUP
	testutil.WaitFor(t, deadline, "restart failure logged", func() bool { return strings.Contains(dr.log.String(), "restart failed") })
	if got := gather(t, m, "injector_child_restarts_total"); got != 0 {
		t.Errorf("injector_child_restarts_total = %v after a failed restart, want 0", got)
	}
	dr.stop(t)
}

// TestStopDuringCommand: a SIGTERM is handled while an on-change command
// runs: the child is stopped and the command killed, without waiting for
// the command's timeout.
func TestStopDuringCommand(t *testing.T) {
	dir := t.TempDir()
	log, out := filepath.Join(dir, "child"), filepath.Join(dir, "out")
	command := latch()
	r := &fakeRefresher{step: func(n int) (Changes, error) {
		c := Changes{Env: []string{"VALUE=one", "OUT=" + out}, EnvChanged: n == 1}
		if n > 1 && command(startedAs(log, "start-one")) {
			c.Files = []string{"f"}
		}
		return c, nil
	}}
	dr := start(t, Config{
		Command:         trapChild(log),
		CommandTimeout:  time.Hour,
		DefaultOnChange: Action{Kind: Command, Command: `echo started >> "$OUT"; sleep 3600`},
	}, r, nil)
	waitLines(t, out, "started")
	dr.sigs <- syscall.SIGTERM
	if code, err := dr.wait(t); code != 3 || err != nil {
		t.Errorf("Run = %d, %v; want the child's 3", code, err)
	}
	if got := lines(log); got != "start-one TERM" {
		t.Errorf("child saw %q", got)
	}
}

// TestStopDuringRestart: a SIGTERM that arrives while a restart waits for
// the old run to exit is forwarded at once, and no new run is started.
func TestStopDuringRestart(t *testing.T) {
	dir := t.TempDir()
	log, exit := filepath.Join(dir, "child"), filepath.Join(dir, "exit")
	// The restart comes only once the child has set its trap: sent
	// before, its SIGTERM would simply kill it.
	restart := latch()
	restarted := false
	r := &fakeRefresher{step: func(n int) (Changes, error) {
		if n > 1 && restart(startedAs(log, "start-a")) {
			restarted = true
			return Changes{Env: []string{"VALUE=b"}, EnvChanged: true}, nil
		}
		if restarted {
			return Changes{Env: []string{"VALUE=b"}}, nil
		}
		return Changes{Env: []string{"VALUE=a"}, EnvChanged: n == 1}, nil
	}}
	dr := start(t, Config{
		Command: []string{"/bin/sh", "-c", `f=$1
trap 'echo TERM >> "$f"' TERM
echo "start-$VALUE" >> "$f"
while [ ! -e "$2" ]; do sleep 0.01; done
exit 3`, "sh", log, exit},
		OnEnvChange: Action{Kind: Restart},
	}, r, nil)
	waitLines(t, log, "start-a TERM") // the restart's SIGTERM
	dr.sigs <- syscall.SIGTERM
	waitLines(t, log, "start-a TERM TERM") // forwarded while restarting
	if err := os.WriteFile(exit, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, err := dr.wait(t); code != 3 || err != nil {
		t.Errorf("Run = %d, %v; want the old run's 3", code, err)
	}
	if got := lines(log); got != "start-a TERM TERM" {
		t.Errorf("child saw %q; no new run may start after SIGTERM", got)
	}
}

// TestIntervalSplay: each wait is the interval plus a uniform random
// 0..Splay, so a fleet started together spreads its refreshes over the
// splay (docs/scaling.md); without a splay every wait is the interval.
func TestIntervalSplay(t *testing.T) {
	const interval, splay, draws = 10 * time.Second, time.Second, 2000
	d := &daemon{cfg: Config{Interval: interval, Splay: splay}}
	var deciles [10]int
	var sum time.Duration
	for range draws {
		w := d.interval()
		if w < interval || w > interval+splay {
			t.Fatalf("wait %v outside [%v, %v]", w, interval, interval+splay)
		}
		deciles[min(int((w-interval)*10/splay), 9)]++
		sum += w - interval
	}
	// Uniform: every tenth of the splay is drawn (each holds ~200; an empty
	// one has probability 0.9^2000), and the mean extra is about Splay/2.
	for i, n := range deciles {
		if n < draws/20 {
			t.Errorf("tenth %d of the splay drawn %d times in %d: %v", i, n, draws, deciles)
		}
	}
	if mean := sum / draws; mean < 4*splay/10 || mean > 6*splay/10 {
		t.Errorf("mean extra wait %v, want about %v", mean, splay/2)
	}

	d.cfg.Splay = 0
	for range 100 {
		if w := d.interval(); w != interval {
			t.Fatalf("no splay: wait %v, want %v", w, interval)
		}
	}
}

// TestIdleDaemonReturnsMemory: after the first render and after every
// refresh, with 30 s or more until the next one, the daemon collects and
// returns freed memory to the kernel (a forced GC cycle) instead of idling
// on the refresh's garbage.
func TestIdleDaemonReturnsMemory(t *testing.T) {
	forced := func() uint64 {
		s := []runtimemetrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
		runtimemetrics.Read(s)
		return s[0].Value.Uint64()
	}
	r := &fakeRefresher{step: steady("VALUE=one")}
	start0 := forced()
	dr := start(t, Config{Interval: time.Hour, Templates: []string{"app.conf"}}, r, nil)
	testutil.WaitFor(t, deadline, "first render", func() bool { return r.calls() == 1 })
	testutil.WaitFor(t, deadline, "a forced collection after the first render", func() bool { return forced() > start0 })
	before := forced()
	dr.sigs <- syscall.SIGHUP
	testutil.WaitFor(t, deadline, "refresh on SIGHUP", func() bool { return r.calls() == 2 })
	testutil.WaitFor(t, deadline, "a forced collection after the refresh", func() bool { return forced() > before })
	dr.stop(t)
}
