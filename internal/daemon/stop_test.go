//go:build linux

package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/testutil"
)

// hangingRefresher blocks every Refresh until its context is cancelled
// (a server that accepts and never answers), or, with ignoreCancel, until
// release is closed (a key derivation that cannot be interrupted).
type hangingRefresher struct {
	ignoreCancel bool
	release      chan struct{}
	calls        atomic.Int64
	cancelled    atomic.Int64
}

func newHanging(ignoreCancel bool) *hangingRefresher {
	return &hangingRefresher{ignoreCancel: ignoreCancel, release: make(chan struct{})}
}

func (h *hangingRefresher) Refresh(ctx context.Context) (Changes, error) {
	h.calls.Add(1)
	if h.ignoreCancel {
		<-h.release
		return Changes{}, nil
	}
	select {
	case <-ctx.Done():
		h.cancelled.Add(1)
		return Changes{}, ctx.Err()
	case <-h.release:
		return Changes{}, nil
	}
}

// TestStopDuringFirstRefresh: SIGTERM ends Run while the first refresh
// waits for a server that never answers (--wait-for-secrets does not
// matter): the refresh is cancelled, nothing waits for it to time out.
func TestStopDuringFirstRefresh(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(signalName(sig), func(t *testing.T) {
			h := newHanging(false)
			dr := start(t, Config{Interval: time.Hour, WaitForSecrets: time.Hour, KillTimeout: time.Hour, Command: []string{"/bin/true"}}, h, nil)
			testutil.WaitFor(t, deadline, "the first refresh", func() bool { return h.calls.Load() == 1 })
			dr.sigs <- sig
			code, err := dr.wait(t)
			if code != 1 || err == nil || !strings.Contains(err.Error(), "stopped by "+signalName(sig)) {
				t.Errorf("Run = %d, %v; want 1 and an error naming %s", code, err, signalName(sig))
			}
			if h.cancelled.Load() != 1 {
				t.Error("the refresh in flight was not cancelled")
			}
		})
	}
}

// TestStopWhileTheFirstRefreshCompletes: a SIGTERM that arrives while the
// first refresh is completing anyway (it had written the files) stops Run
// after it, with 0 as after any render, and the child is never started.
func TestStopWhileTheFirstRefreshCompletes(t *testing.T) {
	h := newHanging(true)
	log := filepath.Join(t.TempDir(), "child")
	dr := start(t, Config{Interval: time.Hour, KillTimeout: time.Hour, Command: trapChild(log)}, h, nil)
	testutil.WaitFor(t, deadline, "the first refresh", func() bool { return h.calls.Load() == 1 })
	dr.sigs <- syscall.SIGTERM
	testutil.WaitFor(t, deadline, "the stop to begin", func() bool { return strings.Contains(dr.log.String(), "cancelling the first refresh") })
	close(h.release)
	if code, err := dr.wait(t); code != 0 || err != nil {
		t.Errorf("Run = %d, %v; want 0", code, err)
	}
	if _, err := os.Stat(log); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the child was started after the SIGTERM (%v)", err)
	}
}

// TestStopDoesNotWaitForAStuckRefresh: a refresh that does not heed
// cancellation delays a stop by KillTimeout at most, at startup and later.
func TestStopDoesNotWaitForAStuckRefresh(t *testing.T) {
	t.Run("first refresh", func(t *testing.T) {
		h := newHanging(true)
		defer close(h.release)
		dr := start(t, Config{Interval: time.Hour, KillTimeout: 50 * time.Millisecond}, h, nil)
		testutil.WaitFor(t, deadline, "the first refresh", func() bool { return h.calls.Load() == 1 })
		dr.sigs <- syscall.SIGTERM
		if code, err := dr.wait(t); code != 1 || err == nil {
			t.Errorf("Run = %d, %v; want 1 and an error", code, err)
		}
		if !strings.Contains(dr.log.String(), "has not returned within the kill timeout") {
			t.Errorf("giving up on the refresh not logged:\n%s", dr.log)
		}
	})
	t.Run("later refresh", func(t *testing.T) {
		var calls atomic.Int64
		release := make(chan struct{})
		defer close(release)
		r := &fakeRefresher{step: func(n int) (Changes, error) {
			calls.Store(int64(n))
			if n > 1 {
				<-release
			}
			return Changes{}, nil
		}}
		dr := start(t, Config{KillTimeout: 50 * time.Millisecond}, r, nil)
		testutil.WaitFor(t, deadline, "a second refresh", func() bool { return calls.Load() == 2 })
		dr.sigs <- syscall.SIGTERM
		if code, err := dr.wait(t); code != 0 || err != nil {
			t.Errorf("Run = %d, %v; want 0", code, err)
		}
	})
}

// TestStoppedBeforeRun: a terminating signal that arrived before Run
// installed its handling (Interrupted closed) is not lost.
func TestStoppedBeforeRun(t *testing.T) {
	interrupted := make(chan struct{})
	close(interrupted)
	r := &fakeRefresher{step: steady()}
	dr := start(t, Config{Interval: time.Hour, Interrupted: interrupted}, r, nil)
	if code, err := dr.wait(t); code != 1 || err == nil {
		t.Errorf("Run = %d, %v; want 1 and an error", code, err)
	}
	if r.calls() != 0 {
		t.Errorf("%d refreshes after the signal", r.calls())
	}
}

// TestSignalsAreNeverDropped sends the test process itself twelve SIGHUPs
// and then a SIGTERM while the first refresh is busy. Each signal is
// delivered on its own (a probe channel sees it before the next is sent),
// so a single buffered channel would fill up with SIGHUPs and lose the
// SIGTERM. The SIGTERM must end Run.
func TestSignalsAreNeverDropped(t *testing.T) {
	h := newHanging(true)
	dr := startWith(t, Config{Interval: time.Hour, KillTimeout: time.Hour}, h, nil, true)
	// Run installs its handlers before the first refresh starts.
	testutil.WaitFor(t, deadline, "the first refresh", func() bool { return h.calls.Load() == 1 })

	probe := make(chan os.Signal, 1)
	signal.Notify(probe, syscall.SIGHUP, syscall.SIGTERM)
	defer signal.Stop(probe)
	send := func(sig syscall.Signal) {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), sig); err != nil {
			t.Fatal(err)
		}
		select {
		case <-probe:
		case <-time.After(deadline):
			t.Fatalf("%s never delivered", signalName(sig))
		}
	}
	for range 12 {
		send(syscall.SIGHUP)
	}
	send(syscall.SIGTERM)
	close(h.release) // the refresh completes; the SIGTERM may still be on its way
	// Stopped during the first refresh (1, naming the signal) or right
	// after it (0: no child): either way, not lost.
	code, err := dr.wait(t)
	if !(code == 1 && err != nil && strings.Contains(err.Error(), "stopped by SIGTERM") || code == 0 && err == nil) {
		t.Errorf("Run = %d, %v; want it stopped by the SIGTERM", code, err)
	}
}

// TestServerCannotParkTheDaemon: a Retry-After of a year is capped at the
// interval (and logged), so the daemon comes back when the server does.
func TestServerCannotParkTheDaemon(t *testing.T) {
	const year = 365 * 24 * time.Hour
	parked := &fetch.StatusError{Provider: "passwork", Method: "GET", Path: "/api/v1/vaults", Status: 503, RetryAfter: year}
	t.Run("refresh", func(t *testing.T) {
		r := &fakeRefresher{step: func(n int) (Changes, error) {
			if n == 2 {
				return Changes{}, parked
			}
			return Changes{}, nil
		}}
		dr := start(t, Config{Interval: 20 * time.Millisecond}, r, nil)
		testutil.WaitFor(t, deadline, "refreshes after the 503", func() bool { return r.calls() >= 4 })
		line := logLine(t, dr.log.String(), "refresh failed; keeping the last good output")
		if line["server_retry_after"] != year.String() || line["retry_in"] != "20ms" || line["retry_setting"] != "--interval" {
			t.Errorf("the cap is not logged as such: %v", line)
		}
	})
	t.Run("startup", func(t *testing.T) {
		r := &fakeRefresher{step: func(n int) (Changes, error) {
			if n == 1 {
				return Changes{}, parked
			}
			return Changes{}, nil
		}}
		dr := start(t, Config{Once: true, WaitForSecrets: time.Hour}, r, nil)
		testutil.WaitFor(t, deadline, "the retry logged", func() bool { return strings.Contains(dr.log.String(), "waiting for secrets") })
		line := logLine(t, dr.log.String(), "waiting for secrets")
		if line["server_retry_after"] != year.String() || line["retry_in"] != StartupRetryLimit.String() || line["retry_setting"] != "--wait-for-secrets" {
			t.Errorf("the cap is not logged as such: %v", line)
		}
		dr.sigs <- syscall.SIGHUP // retry now rather than in 30s
		if code, err := dr.wait(t); code != 0 || err != nil {
			t.Errorf("Run = %d, %v", code, err)
		}
	})
}

// logLine returns the first JSON log line with the message msg.
func logLine(t *testing.T, log, msg string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(log, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["message"] == msg {
			return m
		}
	}
	t.Fatalf("no log line %q in:\n%s", msg, log)
	return nil
}

// TestOperatorLogs: what an operator sees in daemon mode. A refresh that
// hangs shows progress; the first render and every refresh are logged at
// info with what changed, counts and the duration; a failure names the
// attempt, the delay with its unit and the setting behind it; no value
// ever appears.
func TestOperatorLogs(t *testing.T) {
	const secret = "CANARY-log-s3cret"
	release := make(chan struct{})
	r := &fakeRefresher{step: func(n int) (Changes, error) {
		switch n {
		case 1:
			<-release
			return Changes{Files: []string{"/etc/app/db.conf"}, Env: []string{"PW=" + secret}, EnvChanged: true, Secrets: []string{secret}}, nil
		case 2:
			return Changes{}, errors.New("passwork: GET /api/v1/vaults: HTTP 500")
		}
		return Changes{Env: []string{"PW=" + secret}, Secrets: []string{secret}}, nil
	}}
	dr := start(t, Config{Interval: 20 * time.Millisecond, ProgressEvery: 10 * time.Millisecond, Templates: []string{"/etc/app/db.conf", EnvTemplate}}, r, nil)
	testutil.WaitFor(t, deadline, "progress while the first refresh hangs", func() bool {
		return strings.Contains(dr.log.String(), "first refresh still running")
	})
	close(release)
	testutil.WaitFor(t, deadline, "a refresh after the failure", func() bool { return strings.Contains(dr.log.String(), `"message":"refreshed"`) })
	dr.stop(t)
	log := dr.log.String()

	first := logLine(t, log, "first render")
	if first["level"] != "info" || first["secrets"] != 1.0 || first["templates"] != 2.0 || first["env_changed"] != true ||
		strings.Join(strs(first["changed"]), ",") != "/etc/app/db.conf" || first["took"] == nil {
		t.Errorf("first render logged as %v", first)
	}
	failed := logLine(t, log, "refresh failed; keeping the last good output")
	if failed["attempt"] != 1.0 || failed["retry_setting"] != "--interval" {
		t.Errorf("failure logged as %v", failed)
	}
	if d, err := time.ParseDuration(failed["retry_in"].(string)); err != nil || d <= 0 {
		t.Errorf("retry_in %v is not a duration with its unit", failed["retry_in"])
	}
	refreshed := logLine(t, log, "refreshed")
	if refreshed["level"] != "info" || refreshed["secrets"] != 1.0 || refreshed["took"] == nil {
		t.Errorf("refresh logged as %v", refreshed)
	}
	if strings.Contains(log, secret) {
		t.Errorf("log leaks a value:\n%s", log)
	}
}

func strs(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			out = append(out, x.(string))
		}
	}
	return out
}
