package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passagent/passagenttest"
	"github.com/injector-dev/injector/internal/fetch/passwork/passworktest"
	"github.com/injector-dev/injector/internal/testutil"
)

// daemonProc is an injector process running in the background.
type daemonProc struct {
	cmd            *exec.Cmd
	stdout, stderr *testutil.SyncBuffer
	done           chan struct{}
	code           int
}

func startInjector(t *testing.T, env []string, args ...string) *daemonProc {
	t.Helper()
	p := &daemonProc{stdout: &testutil.SyncBuffer{}, stderr: &testutil.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append([]string{"INJECTOR_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "INJECTOR_LOG_FORMAT=json"}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.code = 128 + int(ws.Signal())
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("injector stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *daemonProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(testutil.Patience):
		t.Fatal("injector did not exit")
		return -1
	}
}

// eventually polls cond until it holds; processes get a generous limit.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, testutil.Patience, what, cond)
}

func fileIs(path, want string) func() bool {
	return func() bool {
		b, err := os.ReadFile(path)
		return err == nil && string(b) == want
	}
}

// metricsAddr finds the address injector logged for --listen 127.0.0.1:0.
func (p *daemonProc) metricsAddr(t *testing.T) string {
	t.Helper()
	var addr string
	eventually(t, "the metrics listener", func() bool {
		for _, line := range strings.Split(p.stderr.String(), "\n") {
			var rec struct{ Addr, Message string }
			if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Message, "serving /metrics") {
				addr = rec.Addr
				return true
			}
		}
		return false
	})
	return addr
}

func scrape(t *testing.T, addr string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	raw.ReadFrom(resp.Body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(raw.Bytes()))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return raw.String(), fams
}

// counter sums a metric family's values whose labels include want.
func counter(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	f, ok := fams[name]
	if !ok {
		return 0
	}
next:
	for _, m := range f.Metric {
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		}
	}
	return sum
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func updatePassword(t *testing.T, srv *passworktest.Server, path, pw string) {
	t.Helper()
	if err := srv.Update(fetchtest.Entry{Path: path, Fields: map[string]string{"password": pw, "login": "app"}, Custom: map[string]string{"port": "tcp/5432"}}); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonRefreshesKeepsLastGoodAndServesMetrics runs a sidecar: it must
// pick up a changed secret, keep the last good file while the server fails,
// report all of it in /metrics and /readyz, and stop cleanly on SIGTERM.
func TestDaemonRefreshesKeepsLastGoodAndServesMetrics(t *testing.T) {
	t.Parallel()
	srv, env := passworkEnv(t)
	dir := t.TempDir()
	src := writeFile(t, filepath.Join(dir, "db.tpl"), `pw=<< passwork "prod/db/postgres" >>`)
	dst := filepath.Join(dir, "db.conf")
	p := startInjector(t, env, "render", "--interval", "50ms", "--min-interval", "0", "--max-stale", "1h", "--listen", "127.0.0.1:0", "-t", src+":"+dst)

	eventually(t, "first render", fileIs(dst, "pw=pg-"+canary))
	addr := p.metricsAddr(t)
	eventually(t, "readiness", func() bool { return status(t, "http://"+addr+"/readyz") == http.StatusOK })
	if code := status(t, "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}

	updatePassword(t, srv, "prod/db/postgres", "rotated-"+canary)
	eventually(t, "the rotated secret", fileIs(dst, "pw=rotated-"+canary))

	// The server breaks: the file keeps its last good content and the
	// process keeps running and counting failures.
	srv.AddFault(passworktest.Fault{Path: "/api/v1/", Status: http.StatusInternalServerError}) // until cleared
	eventually(t, "failed refreshes in /metrics", func() bool {
		_, fams := scrape(t, addr)
		return counter(fams, "injector_renders_total", map[string]string{"result": "error"}) >= 2
	})
	if b, _ := os.ReadFile(dst); string(b) != "pw=rotated-"+canary {
		t.Errorf("file changed to %q while the server failed", b)
	}
	raw, fams := scrape(t, addr)
	if counter(fams, "injector_renders_total", map[string]string{"template": dst, "result": "changed"}) != 2 {
		t.Errorf("renders_total{result=changed} != 2 (first render and rotation):\n%s", raw)
	}
	if counter(fams, "injector_fetch_requests_total", map[string]string{"provider": "passwork", "status": "500"}) == 0 {
		t.Errorf("no 500s counted in injector_fetch_requests_total")
	}
	if counter(fams, "injector_last_success_timestamp_seconds", nil) == 0 {
		t.Errorf("last success timestamp missing")
	}
	if strings.Contains(raw, canary) || strings.Contains(p.stderr.String(), canary) {
		t.Error("a secret leaked into /metrics or the log")
	}

	srv.ClearFaults()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}

// TestDaemonSignalsAndForwards runs an application under injector: a
// changed file sends it SIGHUP, SIGTERM to injector reaches it, and its
// exit code comes back.
func TestDaemonSignalsAndForwards(t *testing.T) {
	t.Parallel()
	srv, env := passworkEnv(t)
	dir := t.TempDir()
	src := writeFile(t, filepath.Join(dir, "db.tpl"), `<< passwork "prod/db/postgres" >>`)
	dst := filepath.Join(dir, "db.conf")
	log := filepath.Join(dir, "signals.log")
	app := fmt.Sprintf(`trap 'echo HUP >> %[1]s' HUP; trap 'echo TERM >> %[1]s; exit 42' TERM; echo started >> %[1]s; while :; do sleep 0.02; done`, log)
	p := startInjector(t, env, "run", "--interval", "50ms", "--min-interval", "0", "--on-change", "signal:SIGHUP", "-t", src+":"+dst, "--", "sh", "-c", app)

	eventually(t, "the app to start", fileIs(log, "started\n"))
	updatePassword(t, srv, "prod/db/postgres", "v2")
	eventually(t, "SIGHUP after the change", fileIs(log, "started\nHUP\n"))
	if b, _ := os.ReadFile(dst); string(b) != "v2" {
		t.Errorf("file = %q", b)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 42 {
		t.Errorf("exit %d, want the app's 42", code)
	}
	if b, _ := os.ReadFile(log); string(b) != "started\nHUP\nTERM\n" {
		t.Errorf("app saw %q", b)
	}
}

// TestDaemonRestartsOnEnvChange: the app reads secrets from its
// environment, so a change restarts it with the new value.
func TestDaemonRestartsOnEnvChange(t *testing.T) {
	t.Parallel()
	srv, env := passworkEnv(t)
	log := filepath.Join(t.TempDir(), "starts.log")
	app := fmt.Sprintf(`echo "$DB_PASSWORD" >> %s; exec sleep 60`, log)
	p := startInjector(t, env, "run", "--interval", "50ms", "--min-interval", "0", "--kill-timeout", "2s",
		"--env", `DB_PASSWORD=<< passwork "prod/db/postgres" >>`, "--", "sh", "-c", app)
	eventually(t, "first start", fileIs(log, "pg-"+canary+"\n"))
	updatePassword(t, srv, "prod/db/postgres", "v2")
	eventually(t, "restart with the new value", fileIs(log, "pg-"+canary+"\nv2\n"))
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 128+int(syscall.SIGTERM) {
		t.Errorf("exit %d, want %d (sleep killed by the forwarded SIGTERM)", code, 128+int(syscall.SIGTERM))
	}
}

func TestRunMasksOutput(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t)
	stdout, stderr, code := injector(t, env, "run", "--mask", "--env", `PW=<< passwork "prod/db/postgres" >>`,
		"--", "sh", "-c", `echo "pw=$PW"; echo "again $PW" >&2; exit 3`)
	if code != 3 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stdout != "pw=********\n" || strings.Contains(stderr, canary) || !strings.Contains(stderr, "again ********") {
		t.Errorf("stdout %q stderr %q", stdout, stderr)
	}
}

func TestRenderWaitForSecrets(t *testing.T) {
	t.Parallel()
	srv, env := passworkEnv(t)
	srv.AddFault(passworktest.Fault{Path: "/api/v1/", Status: http.StatusInternalServerError, Times: 3})
	dir := t.TempDir()
	src := writeFile(t, filepath.Join(dir, "a.tpl"), `<< passwork "prod/db/postgres" "login" >>`)
	dst := filepath.Join(dir, "a")
	_, stderr, code := injector(t, env, "render", "--wait-for-secrets", "30s", "-t", src+":"+dst)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(dst); string(b) != "app" {
		t.Errorf("rendered %q", b)
	}
	if !strings.Contains(stderr, "waiting for secrets") {
		t.Errorf("no retry logged: %s", stderr)
	}
}

func TestOnChangeNamesUnknownDestination(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := writeFile(t, filepath.Join(dir, "a.tpl"), "x")
	_, stderr, code := injector(t, nil, "render", "--interval", "1m", "-t", src+":"+filepath.Join(dir, "a"), "--on-change", "/etc/other=restart")
	if code != exitUsage || !strings.Contains(stderr, `"/etc/other" is not the destination of any -t template`) {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

// A shared password manager is not polled faster than --min-interval (30s
// unless lowered): the daemon refuses to start, before any request.
func TestIntervalBelowMinimum(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := writeFile(t, filepath.Join(dir, "a.tpl"), "x")
	dst := filepath.Join(dir, "a")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--interval", "1ms"}, "--interval 1ms is below --min-interval 30s"},
		{[]string{"--interval", "5m", "--min-interval", "10m"}, "--interval 5m0s is below --min-interval 10m0s"},
	} {
		_, stderr, code := injector(t, nil, append([]string{"render", "-t", src + ":" + dst}, tt.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d with %q", tt.args, code, stderr, exitUsage, tt.want)
		}
		if _, err := os.Stat(dst); !os.IsNotExist(err) {
			t.Errorf("%q: rendered %s anyway (%v)", tt.args, dst, err)
		}
	}
}

// TestPID1ReapsZombies runs injector as PID 1 of a new PID namespace, the
// way a container runtime does, with an app that leaves an orphan behind.
func TestPID1ReapsZombies(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare (util-linux) is needed to run injector as PID 1: %v", err)
	}
	// The app's child starts a short sleep in the background and exits, so
	// the sleep is re-parented to PID 1 and becomes a zombie when it ends
	// unless PID 1 reaps it. The app then counts zombies and exits 3.
	app := `sh -c 'sleep 0.1 &'; sleep 0.5; z=0; for f in /proc/[0-9]*/stat; do read -r l < "$f" 2>/dev/null || continue; case "$l" in *") Z "*) z=$((z+1));; esac; done; echo "pid1=$(cat /proc/1/comm) zombies=$z"; exit 3`
	cmd := exec.Command("unshare", "--fork", "--pid", "--mount-proc", os.Args[0], "run", "--", "sh", "-c", app)
	cmd.Env = []string{"INJECTOR_TEST_MAIN=1", "PATH=" + os.Getenv("PATH")}
	out, err := cmd.Output()
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatalf("unshare: %v (%s)", err, out)
	}
	if ee.ExitCode() != 3 {
		t.Fatalf("exit %d, want the app's 3; stderr: %s", ee.ExitCode(), ee.Stderr)
	}
	if got := strings.TrimSpace(string(out)); !strings.HasSuffix(got, "zombies=0") || strings.Contains(got, "pid1=sh") {
		t.Errorf("app reported %q: injector must be PID 1 and leave no zombie", got)
	}
}

// TestOneShotRunListenReportsReady: `run --listen` without --interval
// renders once, then supervises the command; /readyz must say so.
func TestOneShotRunListenReportsReady(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t)
	stop := filepath.Join(t.TempDir(), "stop")
	p := startInjector(t, env, "run", "--listen", "127.0.0.1:0", "--env", `PW=<< passwork "prod/db/postgres" >>`,
		"--", "sh", "-c", fmt.Sprintf(`while [ ! -e %s ]; do sleep 0.02; done`, stop))
	addr := p.metricsAddr(t)
	eventually(t, "readiness", func() bool { return status(t, "http://"+addr+"/readyz") == http.StatusOK })
	os.WriteFile(stop, nil, 0o600)
	if code := p.wait(t); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestDaemonRereadsRotatedCredentialFile: a credential given as NAME_FILE
// is read again each refresh, so a rotated Kubernetes Secret takes effect
// without restarting the sidecar.
func TestDaemonRereadsRotatedCredentialFile(t *testing.T) {
	t.Parallel()
	srv := passagentServer(t, passagenttest.Options{}, fetchtest.Entry{Path: "db", Fields: map[string]string{"password": "pw-" + canary}})
	c := srv.Config()
	dir := t.TempDir()
	tokenFile := writeFile(t, filepath.Join(dir, "token"), "expired-token")
	src := writeFile(t, filepath.Join(dir, "a.tpl"), `<< passagent "db" >>`)
	dst := filepath.Join(dir, "a")
	p := startInjector(t, []string{"PASSAGENT_URL=" + c.URL, "PASSAGENT_TOKEN_FILE=" + tokenFile, "PASSAGENT_MASTER_PASSWORD=" + c.MasterPassword},
		"render", "--interval", "50ms", "--min-interval", "0", "--wait-for-secrets", "1m", "-t", src+":"+dst)
	eventually(t, "a failed first refresh", func() bool { return strings.Contains(p.stderr.String(), "token expired or invalid") })
	// The Secret is rotated: the file now holds a valid token.
	writeFile(t, tokenFile, c.Token+"\n")
	eventually(t, "the render with the new token", fileIs(dst, "pw-"+canary))
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Errorf("exit %d", code)
	}
	if strings.Contains(p.stderr.String(), c.Token) || strings.Contains(p.stderr.String(), canary) {
		t.Error("log leaks the token or a secret")
	}
}
