package main

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passwork/passworktest"
)

// TestMain lets the test binary act as the injector binary: tests that need
// a real process (exec, signals, exit codes) run os.Args[0] with
// INJECTOR_TEST_MAIN=1.
func TestMain(m *testing.M) {
	if os.Getenv("INJECTOR_TEST_MAIN") == "1" {
		os.Exit(hardenThenRun(os.Args[1:]))
	}
	os.Exit(m.Run())
}

const canary = "CANARY-7f3a9c-never-log-me"

// passworkEnv starts a seeded Passwork emulator and returns the environment
// that points injector at it.
func passworkEnv(t *testing.T) (*passworktest.Server, []string) {
	t.Helper()
	srv := passworktest.NewServer()
	t.Cleanup(srv.Close)
	err := srv.Seed([]fetchtest.Entry{
		{Path: "prod/db/postgres", Fields: map[string]string{"password": "pg-" + canary, "login": "app"}, Custom: map[string]string{"port": "tcp/5432"}},
		{Path: "prod/api/stripe", Fields: map[string]string{"password": "sk-" + canary}},
		{Path: "staging/db/postgres", Fields: map[string]string{"password": "staging-pw"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Config()
	return srv, []string{
		"PASSWORK_URL=" + c.URL, "PASSWORK_API=" + c.API, "PASSWORK_TOKEN=" + c.Token,
		"PASSWORK_REFRESH_TOKEN=" + c.RefreshToken, "PASSWORK_MASTER_KEY=" + c.MasterKey,
	}
}

// injector runs the test binary as injector with env added to a minimal
// environment and returns stdout, stderr and the exit code.
func injector(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append([]string{"INJECTOR_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "INJECTOR_LOG_FORMAT=json"}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRenderWritesFiles(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t)
	dir := t.TempDir()
	src := writeFile(t, filepath.Join(dir, "db.tpl"), `user=<< passwork "prod/db/postgres" "login" >> port=<< passwork "prod/db/postgres" "port" >>`)
	dst := filepath.Join(dir, "out", "db.conf")
	_, stderr, code := injector(t, env, "render", "-t", src+":"+dst)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "user=app port=tcp/5432" {
		t.Errorf("rendered %q", b)
	}
	st, _ := os.Stat(dst)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 0600", st.Mode().Perm())
	}
	if strings.Contains(stderr, canary) {
		t.Errorf("log leaks a secret: %s", stderr)
	}
}

func TestRenderFailureKeepsExistingFiles(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t)
	dir := t.TempDir()
	good := writeFile(t, filepath.Join(dir, "good.tpl"), `<< passwork "prod/db/postgres" >>`)
	bad := writeFile(t, filepath.Join(dir, "bad.tpl"), "line one\npw=<< passwork \"prod/db/postgress\" \"password\" >>\nx=<< passwork \"prod/db/postgres\" \"nofield\" >>\n")
	goodDst := writeFile(t, filepath.Join(dir, "good.out"), "previous good output")
	badDst := filepath.Join(dir, "bad.out")

	_, stderr, code := injector(t, env, "render", "-t", good+":"+goodDst, "-t", bad+":"+badDst)
	if code != exitFailure {
		t.Fatalf("exit %d, want %d; stderr: %s", code, exitFailure, stderr)
	}
	if b, _ := os.ReadFile(goodDst); string(b) != "previous good output" {
		t.Errorf("existing file changed to %q after a failed render", b)
	}
	if _, err := os.Stat(badDst); !os.IsNotExist(err) {
		t.Errorf("partial output written: %v", err)
	}
	for _, want := range []string{
		bad + `:2:7: passwork: resolve passwork "prod/db/postgress" "password": entry "postgress" not found`,
		`"postgres"`, // what exists nearby
		bad + `:3:6: passwork: resolve passwork "prod/db/postgres" "nofield": field "nofield" not found`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not mention %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, canary) {
		t.Errorf("error leaks a secret: %s", stderr)
	}
}

func TestTemplateSyntaxErrorNamesPosition(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := writeFile(t, filepath.Join(dir, "broken.tpl"), "ok\nA=<< passwork \"x\" \n")
	_, stderr, code := injector(t, nil, "render", "-t", src+":"+filepath.Join(dir, "out"))
	if code != exitFailure {
		t.Fatalf("exit %d, want %d: %s", code, exitFailure, stderr)
	}
	if !strings.Contains(stderr, src+":2:3: unclosed action") {
		t.Errorf("stderr: %s", stderr)
	}
}

func TestRunPassesSecretsAndExitCode(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t)
	dir := t.TempDir()
	envFile := writeFile(t, filepath.Join(dir, "app.env"), "# app settings\nDB_USER=<< passwork \"prod/db/postgres\" \"login\" >>\n")
	env = append(env, `STRIPE=<< passwork "prod/api/stripe" >>`, "PLAIN=kept")
	stdout, stderr, code := injector(t, env, "run", "--env-file", envFile, "--env", "PORT=<< passwork \"prod/db/postgres\" \"port\" >>",
		"--", "sh", "-c", `echo "user=$DB_USER port=$PORT stripe=${#STRIPE} plain=$PLAIN token=${PASSWORK_TOKEN:-unset}"; exit 7`)
	if code != 7 {
		t.Fatalf("exit %d, want the child's 7; stderr: %s", code, stderr)
	}
	want := "user=app port=tcp/5432 stripe=29 plain=kept token=unset\n"
	if stdout != want {
		t.Errorf("child saw %q, want %q", stdout, want)
	}
}

func TestCheckListsEveryProblem(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t)
	dir := t.TempDir()
	a := writeFile(t, filepath.Join(dir, "a.tpl"), `<< passwork "nope/db/postgres" >>`)
	b := writeFile(t, filepath.Join(dir, "b.tpl"), `<< passwork "prod/db/postgres" "port" >> << passwork "prod/nope/x" >>`)
	stdout, stderr, code := injector(t, env, "check", "-t", a+":/dev/null", "-t", b+":/dev/null")
	if code != exitFailure {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	for _, want := range []string{a + `:1:4: passwork: resolve passwork "nope/db/postgres"`, `vault "nope" not found`, b + `:1:45: passwork: resolve passwork "prod/nope/x"`, `folder "nope" not found`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("check output lacks %q:\n%s", want, stderr)
		}
	}

	stdout, stderr, code = injector(t, env, "check", "-t", b[:len(b)-len("b.tpl")]+"a.tpl:/dev/null", "--env", `X=<< passwork "prod/db/postgres" >>`)
	if code != exitFailure || strings.Contains(stdout+stderr, canary) {
		t.Errorf("exit %d, output leaks or passes: %s %s", code, stdout, stderr)
	}
}

func TestCheckOKPrintsNoValues(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t)
	stdout, stderr, code := injector(t, env, "check", "--env", `X=<< passwork "prod/db/postgres" >><< passwork "prod/api/stripe" >>`)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stdout != "ok: 1 template, 2 references resolved\n" || strings.Contains(stdout+stderr, canary) {
		t.Errorf("stdout %q stderr %q", stdout, stderr)
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t)
	stdout, stderr, code := injector(t, env, "get", "passwork:prod/db/postgres", "--field", "login")
	if code != 0 || stdout != "app\n" {
		t.Errorf("get: exit %d stdout %q stderr %s", code, stdout, stderr)
	}
	_, stderr, code = injector(t, env, "get", "passwork:prod/db/missing")
	if code != exitFailure || !strings.Contains(stderr, `entry "missing" not found`) {
		t.Errorf("get missing: exit %d stderr %s", code, stderr)
	}
	_, stderr, code = injector(t, env, "get", "vault:prod/db")
	if code != exitUsage || !strings.Contains(stderr, `unknown provider "vault"`) {
		t.Errorf("get bad provider: exit %d stderr %s", code, stderr)
	}
}

func TestUnconfiguredProviderIsClear(t *testing.T) {
	t.Parallel()
	_, stderr, code := injector(t, nil, "check", "--env", `X=<< passbolt "a/b" >>`)
	if code != exitUsage || !strings.Contains(stderr, "passbolt: not configured: set [PASSBOLT_URL") {
		t.Errorf("exit %d stderr %s", code, stderr)
	}
}

func TestCredentialFromFile(t *testing.T) {
	t.Parallel()
	srv, env := passworkEnv(t)
	tokenFile := writeFile(t, filepath.Join(t.TempDir(), "token"), srv.Config().Token+"\n")
	var filtered []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PASSWORK_TOKEN=") {
			filtered = append(filtered, kv)
		}
	}
	stdout, stderr, code := injector(t, append(filtered, "PASSWORK_TOKEN_FILE="+tokenFile), "get", "passwork:prod/db/postgres", "--field", "login")
	if code != 0 || stdout != "app\n" {
		t.Errorf("exit %d stdout %q stderr %s", code, stdout, stderr)
	}
}

func TestRenderOwner(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t)
	dir := t.TempDir()
	src := writeFile(t, filepath.Join(dir, "a.tpl"), `<< passwork "prod/db/postgres" "login" >>`)
	dst := filepath.Join(dir, "a")
	_, stderr, code := injector(t, env, "render", "--owner", "4242:4343", "-t", src+":"+dst+":0440")
	if os.Geteuid() != 0 {
		// Only root may give files away: a clear error, and nothing written.
		if code != exitFailure || !strings.Contains(stderr, "operation not permitted") {
			t.Errorf("unprivileged --owner: exit %d: %s", code, stderr)
		}
		if _, err := os.Stat(dst); !os.IsNotExist(err) {
			t.Errorf("file written despite the failed chown")
		}
		return
	}
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	st, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if sys.Uid != 4242 || sys.Gid != 4343 || st.Mode().Perm() != 0o440 {
		t.Errorf("owner %d:%d mode %o, want 4242:4343 0440", sys.Uid, sys.Gid, st.Mode().Perm())
	}
}

func TestCheckReportsSyntaxAndResolutionProblemsTogether(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t)
	dir := t.TempDir()
	broken := writeFile(t, filepath.Join(dir, "broken.tpl"), "x=<< passwork \"a\"\n")
	missing := writeFile(t, filepath.Join(dir, "missing.tpl"), `<< passwork "prod/db/nope" >>`)
	_, stderr, code := injector(t, env, "check", "-t", broken+":/dev/null", "-t", missing+":/dev/null")
	if code != exitFailure {
		t.Errorf("exit %d, want %d", code, exitFailure)
	}
	for _, want := range []string{broken + ":1:3: unclosed action", missing + `:1:4: passwork: resolve passwork "prod/db/nope"`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("check output lacks %q:\n%s", want, stderr)
		}
	}
}

// TestSupervisedChildGetsNoCredentials: with --mask the command runs as a
// child; even when every inherited variable is injector's own, the child
// must not see them.
func TestSupervisedChildGetsNoCredentials(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t)
	cmd := exec.Command(os.Args[0], "run", "--mask", "--", "/usr/bin/env")
	cmd.Env = append([]string{"INJECTOR_TEST_MAIN=1"}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if strings.Contains(string(out), "PASSWORK_") || strings.Contains(string(out), "INJECTOR_") {
		t.Errorf("child environment holds injector's settings:\n%s", out)
	}
}

func TestRenderRejectsChildActionsWithoutChild(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := writeFile(t, filepath.Join(dir, "a.tpl"), "x")
	_, stderr, code := injector(t, nil, "render", "--interval", "1m", "-t", src+":"+filepath.Join(dir, "a"), "--on-change", "signal:SIGHUP")
	if code != exitUsage || !strings.Contains(stderr, "render runs no command to signal or restart") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

// The webhook moved to its own binary; the old subcommand says where.
func TestWebhookSubcommandPointsToItsBinary(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"webhook", "--image", "x"}, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "injector-webhook") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
	var help bytes.Buffer
	mainHelp(&help, commands())
	if strings.Contains(help.String(), "webhook") {
		t.Errorf("usage still lists the webhook:\n%s", help.String())
	}
}

// TestHTTPSProxy: requests to a provider go through HTTPS_PROXY, as the
// README says (the transport takes the proxy from the environment; NO_PROXY
// and loopback servers bypass it).
func TestHTTPSProxy(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var tunnels []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tunnels = append(tunnels, r.Method+" "+r.Host)
		mu.Unlock()
		http.Error(w, "no tunnels today", http.StatusForbidden)
	}))
	defer proxy.Close()
	env := []string{"HTTPS_PROXY=" + proxy.URL, "INJECTOR_RETRY_ATTEMPTS=1", "INJECTOR_HTTP_TIMEOUT=5s",
		"PASSWORK_URL=https://passwork.example.test", "PASSWORK_TOKEN=t", "PASSWORK_MASTER_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 64))}
	_, stderr, code := injector(t, env, "get", "passwork:prod/db/postgres")
	mu.Lock()
	defer mu.Unlock()
	if code != exitFailure || len(tunnels) == 0 || tunnels[0] != "CONNECT passwork.example.test:443" {
		t.Errorf("exit %d, proxy saw %q; stderr:\n%s", code, tunnels, stderr)
	}

	// NO_PROXY bypasses it.
	tunnels = nil
	mu.Unlock()
	_, stderr, _ = injector(t, append(env, "NO_PROXY=.example.test"), "get", "passwork:prod/db/postgres")
	mu.Lock()
	if len(tunnels) != 0 {
		t.Errorf("NO_PROXY ignored: proxy saw %q; stderr:\n%s", tunnels, stderr)
	}
}
