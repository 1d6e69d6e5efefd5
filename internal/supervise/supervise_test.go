//go:build linux

package supervise

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/injector-dev/injector/internal/testutil"
)

// deadline bounds every wait so a broken test fails instead of hanging;
// it is generous because the machine may be loaded.
const deadline = testutil.Patience

// trapScript records the signals it receives in the file $1, one per
// line, and exits 3 on SIGTERM. "ready" is written once the traps are set.
const trapScript = `f=$1
trap 'echo HUP >> "$f"' HUP
trap 'echo USR1 >> "$f"' USR1
trap 'echo USR2 >> "$f"' USR2
trap 'echo TERM >> "$f"; exit 3' TERM
echo ready >> "$f"
while :; do sleep 0.02; done`

func sh(script string, args ...string) Spec {
	return Spec{Path: "/bin/sh", Args: append([]string{"-c", script, "sh"}, args...)}
}

func fileLines(path string) []string {
	data, _ := os.ReadFile(path)
	return strings.Fields(string(data))
}

func waitLines(t *testing.T, path string, want ...string) {
	t.Helper()
	testutil.WaitFor(t, deadline, fmt.Sprintf("%s to hold %v", filepath.Base(path), want), func() bool {
		return strings.Join(fileLines(path), " ") == strings.Join(want, " ")
	})
}

func waitExit(t *testing.T, c *Child) int {
	t.Helper()
	select {
	case <-c.Exited():
		return c.Wait()
	case <-time.After(deadline):
		t.Fatal("child did not exit")
		return 0
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 7", 7},
		{"kill -KILL $$", 128 + 9},
		{"kill -TERM $$", 128 + 15},
		{"kill -USR1 $$", 128 + 10},
	}
	for _, tt := range tests {
		t.Run(tt.script, func(t *testing.T) {
			c, err := Start(context.Background(), sh(tt.script))
			if err != nil {
				t.Fatal(err)
			}
			if got := waitExit(t, c); got != tt.want {
				t.Errorf("exit code %d, want %d", got, tt.want)
			}
		})
	}
}

func TestStartError(t *testing.T) {
	_, err := Start(context.Background(), Spec{Path: "/nonexistent/program", Args: []string{"--password=CANARY"}})
	if err == nil {
		t.Fatal("started a nonexistent program")
	}
	if strings.Contains(err.Error(), "CANARY") {
		t.Errorf("error leaks arguments: %v", err)
	}
}

func TestOutputAndEnv(t *testing.T) {
	var out, errOut bytes.Buffer
	spec := sh(`echo "out $GREETING"; echo "err" >&2`)
	spec.Env = []string{"GREETING=hello"}
	spec.Stdout, spec.Stderr = &out, &errOut
	c, err := Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, c); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if out.String() != "out hello\n" || errOut.String() != "err\n" {
		t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
	}
}

func TestSignal(t *testing.T) {
	for _, group := range []bool{false, true} {
		t.Run(fmt.Sprintf("group=%v", group), func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "signals")
			spec := sh(trapScript, log)
			spec.ProcessGroup = group
			c, err := Start(context.Background(), spec)
			if err != nil {
				t.Fatal(err)
			}
			waitLines(t, log, "ready")
			for i, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2} {
				if err := c.Signal(sig); err != nil {
					t.Fatal(err)
				}
				want := append([]string{"ready"}, []string{"HUP", "USR1", "USR2"}[:i+1]...)
				waitLines(t, log, want...)
			}
			c.Signal(syscall.SIGTERM)
			if code := waitExit(t, c); code != 3 {
				t.Errorf("exit code %d, want 3 from the TERM trap", code)
			}
			if err := c.Signal(syscall.SIGHUP); !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("Signal after exit = %v, want os.ErrProcessDone", err)
			}
		})
	}
}

// TestForward sends signals to the test process itself: Forward has
// registered for them, so they are caught, not fatal, and relayed.
func TestForward(t *testing.T) {
	log := filepath.Join(t.TempDir(), "signals")
	c, err := Start(context.Background(), sh(trapScript, log))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	Forward(ctx, c, syscall.SIGUSR1, syscall.SIGHUP, syscall.SIGTERM)
	waitLines(t, log, "ready")

	syscall.Kill(os.Getpid(), syscall.SIGUSR1)
	waitLines(t, log, "ready", "USR1")
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLines(t, log, "ready", "USR1", "HUP")
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	if code := waitExit(t, c); code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	waitLines(t, log, "ready", "USR1", "HUP", "TERM")
}

func TestRestart(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	spec := sh(`echo "$$ $VALUE" >> "$1"; exec sleep 60`, out)
	spec.Env = []string{"VALUE=one"}
	c, err := Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, deadline, "first run", func() bool { return len(fileLines(out)) == 2 })
	pid1 := c.Pid()

	if err := c.Restart(context.Background(), []string{"VALUE=two"}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, deadline, "second run", func() bool { return len(fileLines(out)) == 4 })
	lines := fileLines(out)
	if lines[0] != strconv.Itoa(pid1) || lines[1] != "one" || lines[2] != strconv.Itoa(c.Pid()) || lines[3] != "two" {
		t.Errorf("runs recorded %v, first pid %d, now %d", lines, pid1, c.Pid())
	}
	if c.Pid() == pid1 {
		t.Error("pid did not change")
	}
	select {
	case <-c.Exited():
		t.Fatal("restart reported as exit")
	default:
	}
	if code := c.Stop(); code != 128+15 {
		t.Errorf("Stop = %d, want %d", code, 128+15)
	}
	if err := c.Restart(context.Background(), nil); !errors.Is(err, ErrStopped) {
		t.Errorf("Restart after Stop = %v, want ErrStopped", err)
	}
}

func TestRestartFailure(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := Start(context.Background(), Spec{Path: prog})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(prog)
	if err := c.Restart(context.Background(), nil); err == nil {
		t.Fatal("Restart of a removed program succeeded")
	}
	if code := waitExit(t, c); code != 128+15 {
		t.Errorf("exit %d, want the stopped run's %d", code, 128+15)
	}
}

// TestKillTimeout: a child that ignores SIGTERM is killed after the grace
// period.
func TestKillTimeout(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	spec := sh(`trap '' TERM; echo ready > "$1"; while :; do sleep 0.02; done`, ready)
	spec.KillTimeout = 50 * time.Millisecond
	c, err := Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	waitLines(t, ready, "ready")
	if code := c.Stop(); code != 128+9 {
		t.Errorf("Stop = %d, want %d (SIGKILL)", code, 128+9)
	}
}

func TestContextCancelStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c, err := Start(ctx, sh(`exec sleep 60`))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if code := waitExit(t, c); code != 128+15 {
		t.Errorf("exit %d, want %d", code, 128+15)
	}
}

// procState returns the state letter from /proc/<pid>/stat, or "" if the
// process is gone (reaped).
func procState(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return "?"
}

// TestReaper makes the test process a subreaper, runs a child that leaves
// an orphaned grandchild behind, and checks the grandchild is reaped (no
// zombie) while the child's own exit status still reaches Wait.
func TestReaper(t *testing.T) {
	r, err := NewReaper(true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	dir := t.TempDir()
	pidFile, release := filepath.Join(dir, "pid"), filepath.Join(dir, "release")
	// The grandchild waits for a file, so it surely outlives the child.
	spec := sh(`(while [ ! -e "$2" ]; do sleep 0.01; done; exit 4) & echo $! > "$1"; exit 5`, pidFile, release)
	spec.Reaper = r
	c, err := Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, c); code != 5 {
		t.Fatalf("child exit %d, want 5: the reaper must not steal it", code)
	}
	var orphan int
	testutil.WaitFor(t, deadline, "grandchild pid", func() bool {
		orphan, err = strconv.Atoi(strings.TrimSpace(string(must(os.ReadFile(pidFile)))))
		return err == nil
	})
	if st := procState(orphan); st == "" || st == "Z" {
		t.Fatalf("grandchild state %q before release, want running", st)
	}
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// The orphan leaves /proc the moment it is reaped, a little before the
	// reaper counts it: wait for both.
	testutil.WaitFor(t, deadline, "orphan to be reaped and counted", func() bool { return procState(orphan) == "" && r.Reaped() >= 1 })
}

// TestReaperDoesNotSteal runs many short children through the reaper at
// once; each must see its own exit status.
func TestReaperDoesNotSteal(t *testing.T) {
	r, err := NewReaper(true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := r.Run(exec.Command("/bin/sh", "-c", fmt.Sprintf("(exit 0) & exit %d", i)))
			var ee *exec.ExitError
			switch {
			case i == 0 && err != nil:
				t.Errorf("child 0: %v", err)
			case i > 0 && (!errors.As(err, &ee) || ee.ExitCode() != i):
				t.Errorf("child %d: got %v", i, err)
			}
		}()
	}
	wg.Wait()
}

func must[T any](v T, _ error) T { return v }

// TestChildrenStartWithDefaultSignals runs this test binary again with
// SIGHUP and SIGINT ignored, as nohup and a non-interactive shell's
// background job start it. The children it supervises must still begin
// with the default action for them: a shell cannot trap a signal that was
// ignored when it started, so forwarding and on-change signals would be
// lost on it.
func TestChildrenStartWithDefaultSignals(t *testing.T) {
	if os.Getenv("SUPERVISE_IGNORED_HELPER") == "1" {
		helperReportChildSignals(t)
		return
	}
	out := filepath.Join(t.TempDir(), "report")
	cmd := exec.Command("/bin/sh", "-c", `trap '' HUP INT; exec "$0" "$@"`, os.Args[0], "-test.run=^TestChildrenStartWithDefaultSignals$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SUPERVISE_IGNORED_HELPER=1", "SUPERVISE_REPORT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper: %v\n%s", err, b)
	}
	report := strings.Fields(string(must(os.ReadFile(out))))
	if len(report) != 3 {
		t.Fatalf("helper report %q", report)
	}
	if report[0] != "parent-ignores=true" {
		t.Fatalf("helper did not start with SIGHUP ignored (%s): the test proves nothing", report[0])
	}
	ign, err := strconv.ParseUint(report[1], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	if mask := uint64(1)<<(syscall.SIGHUP-1) | uint64(1)<<(syscall.SIGINT-1); ign&mask != 0 {
		t.Errorf("child started with SigIgn %s: SIGHUP or SIGINT still ignored", report[1])
	}
	if report[2] != "trapped=HUP" {
		t.Errorf("child's HUP trap: %s", report[2])
	}
}

// helperReportChildSignals runs in the re-executed test binary: it starts
// a child that reports its ignored-signal mask and then traps SIGHUP,
// signals it, and writes what it saw to $SUPERVISE_REPORT.
func helperReportChildSignals(t *testing.T) {
	parentIgn, err := sigIgn("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "child")
	c, err := Start(context.Background(), sh(`f=$1
trap 'echo trapped=HUP >> "$f"; exit 0' HUP
while read -r k v; do [ "$k" = SigIgn: ] && echo "$v" >> "$f"; done < /proc/$$/status
while :; do sleep 0.02; done`, log))
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, deadline, "the child's mask", func() bool { return len(fileLines(log)) == 1 })
	c.Signal(syscall.SIGHUP)
	select {
	case <-c.Exited():
	case <-time.After(deadline):
		c.Signal(syscall.SIGKILL) // the HUP was ignored
		c.Wait()
	}
	report := fmt.Sprintf("parent-ignores=%v %s", parentIgn&(1<<(syscall.SIGHUP-1)) != 0, strings.Join(fileLines(log), " "))
	if len(fileLines(log)) == 1 {
		report += " trapped=none"
	}
	if err := os.WriteFile(os.Getenv("SUPERVISE_REPORT"), []byte(report), 0o600); err != nil {
		t.Fatal(err)
	}
}

// sigIgn reads the SigIgn mask from a /proc/PID/status file.
func sigIgn(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("%s: no SigIgn line", path)
}
