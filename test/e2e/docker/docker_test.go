// Package docker holds the end-to-end checks of the injector image on a real
// Docker engine: the image scripts/docker-images built from the real
// Dockerfile, used the way the README tells users to use it.
//
// The tests need an engine and the images; scripts/e2e-docker provides both
// and sets the variables below. Without them every test is skipped. They
// run in parallel (two at a time on two cores): the Compose test spends
// most of its time waiting for the sidecar's next refresh.
//
//	DOCKER_HOST           the engine (scripts/lib/dockerd.sh starts a private one)
//	DOCKER                the docker client (default: docker)
//	INJECTOR_E2E_IMAGE           the injector image, e.g. ghcr.io/injector-dev/injector:e2e
//	INJECTOR_E2E_BINARY          scripts/build-static's binary, built with the image's VERSION
//	INJECTOR_E2E_WEBHOOK_IMAGE   the injector-webhook image
//	INJECTOR_E2E_WEBHOOK_BINARY  scripts/build-static ./cmd/injector-webhook's binary
//	INJECTOR_E2E_BASE            the distroless/static base they were built on (the app images' base)
package docker

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/testutil"
	"github.com/injector-dev/injector/internal/testutil/devserve"
)

const repoRoot = "../../.."

// cmdTimeout bounds every docker command; generous for a busy 2-core machine.
const cmdTimeout = 3 * time.Minute

type env struct {
	client, image, base, binary string
	webhookImage, webhookBinary string
}

// engine returns the settings of the engine under test, or skips the test
// when scripts/e2e-docker did not set them.
func engine(t *testing.T) env {
	t.Helper()
	e := env{
		client: os.Getenv("DOCKER"),
		image:  os.Getenv("INJECTOR_E2E_IMAGE"),
		base:   os.Getenv("INJECTOR_E2E_BASE"),
		binary: os.Getenv("INJECTOR_E2E_BINARY"),

		webhookImage:  os.Getenv("INJECTOR_E2E_WEBHOOK_IMAGE"),
		webhookBinary: os.Getenv("INJECTOR_E2E_WEBHOOK_BINARY"),
	}
	if e.image == "" || e.base == "" || e.binary == "" || e.webhookImage == "" || e.webhookBinary == "" ||
		os.Getenv("DOCKER_HOST") == "" {
		t.Skip("needs a Docker engine and the injector image: run scripts/e2e-docker")
	}
	if e.client == "" {
		e.client = "docker"
	}
	return e
}

// result is what one docker command did.
type result struct {
	stdout, stderr string
	code           int
}

// docker runs the client and returns its output and exit code; only a
// failure to run it at all (or a timeout) ends the test.
func (e env) docker(t *testing.T, args ...string) result {
	t.Helper()
	return execute(t, exec.Command(e.client, args...), cmdTimeout)
}

// execute runs cmd for at most limit and returns its output and exit
// code; only a failure to run it at all (or a timeout) ends the test.
func execute(t *testing.T, cmd *exec.Cmd, limit time.Duration) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
		}
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s: timed out after %s\n%s", strings.Join(cmd.Args, " "), limit, stderr.String())
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// must runs the client and fails the test unless it exits 0.
func (e env) must(t *testing.T, args ...string) string {
	t.Helper()
	r := e.docker(t, args...)
	if r.code != 0 {
		t.Fatalf("docker %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// TestImageBinariesAreReproducible checks that the binary in each image is
// byte for byte the one scripts/build-static builds on the host: the
// Dockerfile adds nothing of its own to what is tested without an engine.
func TestImageBinariesAreReproducible(t *testing.T) {
	t.Parallel()
	e := engine(t)
	for _, tc := range []struct {
		image, binary, path string
		mode                int64 // permission bits
	}{
		// Execute-only: non-dumpable from exec on (see the Dockerfile).
		{e.image, e.binary, "/usr/local/bin/injector", 0o111},
		{e.webhookImage, e.webhookBinary, "/usr/local/bin/injector-webhook", 0o755},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			host, err := os.ReadFile(tc.binary)
			if err != nil {
				t.Fatal(err)
			}
			inImage, mode := e.copyOut(t, tc.image, tc.path)
			if !bytes.Equal(inImage, host) {
				t.Fatalf("the image's %s (%d bytes, sha256 %x) differs from scripts/build-static's (%d bytes, sha256 %x)",
					tc.path, len(inImage), sha256.Sum256(inImage), len(host), sha256.Sum256(host))
			}
			if mode&0o7777 != tc.mode {
				t.Errorf("%s mode %04o, want %04o", tc.path, mode&0o7777, tc.mode)
			}

			var cfg []struct {
				Config struct {
					User       string
					Entrypoint []string
				}
			}
			if err := json.Unmarshal([]byte(e.must(t, "image", "inspect", tc.image)), &cfg); err != nil || len(cfg) != 1 {
				t.Fatalf("docker image inspect: %v", err)
			}
			if cfg[0].Config.User != "65532:65532" {
				t.Errorf("image user = %q, want 65532:65532", cfg[0].Config.User)
			}
			if got := strings.Join(cfg[0].Config.Entrypoint, " "); got != tc.path {
				t.Errorf("image entrypoint = %q, want %s", got, tc.path)
			}
		})
	}
}

// copyOut returns the content and mode of one file of an image.
func (e env) copyOut(t *testing.T, image, path string) ([]byte, int64) {
	t.Helper()
	id := strings.TrimSpace(e.must(t, "create", image))
	defer e.docker(t, "rm", id)
	tr := tar.NewReader(strings.NewReader(e.must(t, "cp", id+":"+path, "-")))
	hdr, err := tr.Next()
	if err != nil {
		t.Fatalf("docker cp %s: %v", path, err)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	return data, hdr.Mode
}

// devServer is a running `injector dev --serve`: the embedded emulators,
// seeded from examples/dev/seed.json.
type devServer struct {
	settings map[string]string // PASSWORK_URL, PASSWORK_TOKEN, ...
	// credentials is the directory of settings files for containers,
	// printed with --listen off loopback ("" otherwise).
	credentials string
	stop        func()
}

var (
	devOnce sync.Once
	dev     *devServer
	devErr  error
)

// startDev starts `injector dev --serve` on loopback with the host-built
// binary (the image's, byte for byte) once for all tests; TestMain stops
// it.
func startDev(t *testing.T, e env) *devServer {
	t.Helper()
	devOnce.Do(func() { dev, devErr = runDev(e.binary) })
	if devErr != nil {
		t.Fatalf("injector dev --serve: %v", devErr)
	}
	return dev
}

// runDev starts `injector dev --serve ARGS` and returns once it printed
// what the user copies: the settings file and, with --listen, the
// directory for containers.
func runDev(binary string, args ...string) (*devServer, error) {
	srv, err := devserve.Start(binary, nil, args...)
	if err != nil {
		return nil, err
	}
	return &devServer{settings: srv.Settings, credentials: srv.Credentials, stop: srv.Stop}, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if dev != nil {
		dev.stop()
	}
	os.Exit(code)
}

// credential files the wrapper reads, and the variables naming them.
var credentialVars = []string{"PASSWORK_TOKEN", "PASSWORK_REFRESH_TOKEN", "PASSWORK_MASTER_KEY"}

// wrapper is an application image wrapped the way the Dockerfile's comment
// and the README say: injector copied in from its image, as the entry point,
// with the application as CMD.
type wrapper struct {
	env
	app      string            // image tag
	creds    string            // host directory mounted read-only at /run/secrets
	settings map[string]string // the dev server's settings
	secret   string            // prod/db/postgres's password from the seed
}

var (
	appOnce sync.Once
	appTag  string
	appErr  error
)

func newWrapper(t *testing.T) *wrapper {
	t.Helper()
	e := engine(t)
	appOnce.Do(func() { appTag, appErr = buildApp(e) })
	if appErr != nil {
		t.Fatal(appErr)
	}
	srv := startDev(t, e)

	// Credentials as files, readable by the image's user only, mounted
	// read-only; the container gets NAME_FILE variables pointing at them.
	dir := t.TempDir()
	creds := filepath.Join(dir, "creds")
	if err := os.Mkdir(creds, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, k := range credentialVars {
		f := filepath.Join(creds, strings.ToLower(k))
		if err := os.WriteFile(f, []byte(srv.settings[k]), 0o400); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(f, 65532, 65532); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(creds, 65532, 65532); err != nil {
		t.Fatal(err)
	}

	seed, err := fetchtest.LoadSeed(filepath.Join(repoRoot, "examples/dev/seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	w := &wrapper{env: e, app: appTag, creds: creds, settings: srv.settings}
	for _, en := range seed.Passwork {
		if en.Path == "prod/db/postgres" {
			w.secret = en.Fields["password"]
		}
	}
	if w.secret == "" {
		t.Fatal("seed.json has no prod/db/postgres password")
	}
	return w
}

// buildApp builds the wrapped application image: testapp, with injector
// copied in from the image under test.
func buildApp(e env) (string, error) {
	ctx, err := os.MkdirTemp("", "injector-e2e-app-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(ctx)
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(ctx, "app"), "./testapp")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build testapp: %v\n%s", err, out)
	}
	dockerfile := fmt.Sprintf(`FROM %s
COPY --from=%s /usr/local/bin/injector /usr/local/bin/injector
COPY app /app
ENTRYPOINT ["injector", "run", "--"]
CMD ["/app", "env"]
`, e.base, e.image)
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", err
	}
	tag := fmt.Sprintf("injector-e2e/app:%d", time.Now().UnixNano())
	out, err := exec.Command(e.client, "build", "-q", "-t", tag, ctx).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("docker build (app): %v\n%s", err, out)
	}
	return tag, nil
}

// runArgs are the `docker run` arguments of a wrapped app: host networking
// (the emulator listens on loopback), credentials as NAME_FILE on a
// read-only mount, the secret as an environment template, and the hardening
// the Compose example uses.
func (w *wrapper) runArgs(name string, extraEnv ...string) []string {
	args := []string{"--name", name, "--network", "host",
		"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"-v", w.creds + ":/run/secrets:ro",
		"-e", "PASSWORK_URL=" + w.settings["PASSWORK_URL"],
		"-e", `DB_PASSWORD=<< passwork "prod/db/postgres" >>`,
	}
	for _, k := range credentialVars {
		args = append(args, "-e", k+"_FILE=/run/secrets/"+strings.ToLower(k))
	}
	for _, kv := range extraEnv {
		args = append(args, "-e", kv)
	}
	return args
}

// container names a container for this test and removes it afterwards.
func (w *wrapper) container(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("injector-e2e-%d", time.Now().UnixNano())
	t.Cleanup(func() { w.docker(t, "rm", "-f", name) })
	return name
}

// leaks lists the secret and credential values found in s.
func (w *wrapper) leaks(s string, withSecret bool) []string {
	var found []string
	for _, k := range credentialVars {
		if v := w.settings[k]; v != "" && strings.Contains(s, v) {
			found = append(found, k)
		}
	}
	if withSecret && strings.Contains(s, w.secret) {
		found = append(found, "the secret DB_PASSWORD")
	}
	return found
}

// TestWrapperDeliversSecret runs the wrapped app as `docker run` users do.
func TestWrapperDeliversSecret(t *testing.T) {
	t.Parallel()
	w := newWrapper(t)
	name := w.container(t)
	r := w.docker(t, append(append([]string{"run"}, w.runArgs(name)...), w.app)...)
	if r.code != 0 {
		t.Fatalf("docker run: exit %d\n%s", r.code, r.stderr)
	}
	var rep struct {
		UID, GID        int
		Env             []string
		Proc1Environ    []string
		Proc1EnvironErr string
		Proc1Cmdline    []string
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("app output: %v\n%s\n%s", err, r.stdout, r.stderr)
	}

	if rep.UID != 65532 || rep.GID != 65532 {
		t.Errorf("app runs as %d:%d, want 65532:65532", rep.UID, rep.GID)
	}
	appEnv := map[string]string{}
	for _, kv := range rep.Env {
		k, v, _ := strings.Cut(kv, "=")
		appEnv[k] = v
		for _, prefix := range []string{"PASSWORK_", "PASSBOLT_", "PASSAGENT_", "INJECTOR_"} {
			if strings.HasPrefix(k, prefix) {
				t.Errorf("app sees injector's setting %s", k)
			}
		}
	}
	if appEnv["DB_PASSWORD"] != w.secret {
		t.Errorf("app's DB_PASSWORD has %d characters, want the seeded secret (%d)", len(appEnv["DB_PASSWORD"]), len(w.secret))
	}
	if l := w.leaks(strings.Join(rep.Env, "\n"), false); len(l) > 0 {
		t.Errorf("app's environment holds credentials: %v", l)
	}
	// injector is PID 1 and supervises the app. The app is the same user,
	// but injector is non-dumpable and the container has no
	// CAP_SYS_PTRACE: its environment is closed to the app.
	if len(rep.Proc1Cmdline) < 2 || !strings.HasSuffix(rep.Proc1Cmdline[0], "injector") || rep.Proc1Cmdline[1] != "run" {
		t.Errorf("PID 1 is not injector run: /proc/1/cmdline = %q", rep.Proc1Cmdline)
	}
	if !strings.Contains(rep.Proc1EnvironErr, "permission denied") {
		t.Errorf("the app read injector's /proc/1/environ (%q, error %q); injector must be non-dumpable", rep.Proc1Environ, rep.Proc1EnvironErr)
	}
	if l := w.leaks(strings.Join(append(rep.Proc1Environ, rep.Proc1Cmdline...), "\n"), true); len(l) > 0 {
		t.Errorf("injector's /proc/1 (environ, cmdline) holds %v", l)
	}
	if l := w.leaks(r.stderr, true); len(l) > 0 {
		t.Errorf("injector's log holds %v:\n%s", l, r.stderr)
	}

	// docker inspect escapes JSON; look at every string it holds, decoded.
	var inspect []any
	if err := json.Unmarshal([]byte(w.must(t, "inspect", name)), &inspect); err != nil {
		t.Fatal(err)
	}
	shown := strings.Join(jsonStrings(inspect, nil), "\n")
	if l := w.leaks(shown, true); len(l) > 0 {
		t.Errorf("docker inspect shows %v", l)
	}
	if !strings.Contains(shown, `DB_PASSWORD=<< passwork "prod/db/postgres" >>`) {
		t.Errorf("docker inspect does not show the DB_PASSWORD template:\n%s", shown)
	}
}

// jsonStrings appends every string in a decoded JSON value, keys included.
func jsonStrings(v any, out []string) []string {
	switch v := v.(type) {
	case string:
		out = append(out, v)
	case []any:
		for _, x := range v {
			out = jsonStrings(x, out)
		}
	case map[string]any:
		for k, x := range v {
			out = jsonStrings(x, append(out, k))
		}
	}
	return out
}

// TestWrapperExitCodes checks that the app's exit code is the container's,
// and that an unresolvable reference stops the app from starting.
func TestWrapperExitCodes(t *testing.T) {
	t.Parallel()
	w := newWrapper(t)
	for _, tc := range []struct {
		cmd  []string
		want int
	}{
		{[]string{"/app", "exit", "0"}, 0},
		{[]string{"/app", "exit", "3"}, 3},
		{[]string{"/app", "exit", "77"}, 77},
		{[]string{"/app", "raise"}, 128 + int(syscall.SIGTERM)}, // killed by its own SIGTERM
	} {
		t.Run(strings.Join(tc.cmd[1:], "-"), func(t *testing.T) {
			r := w.docker(t, append(append(append([]string{"run"}, w.runArgs(w.container(t))...), w.app), tc.cmd...)...)
			if r.code != tc.want {
				t.Errorf("docker run ... %s: exit %d, want %d\n%s", strings.Join(tc.cmd, " "), r.code, tc.want, r.stderr)
			}
		})
	}

	t.Run("unresolvable", func(t *testing.T) {
		r := w.docker(t, append(append([]string{"run"},
			w.runArgs(w.container(t), `API_KEY=<< passwork "prod/db/postgress" >>`)...), w.app)...)
		if r.code != 1 {
			t.Errorf("exit %d, want 1 (a secret could not be resolved)\n%s", r.code, r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("the app ran:\n%s", r.stdout)
		}
		if !strings.Contains(r.stderr, "postgress") {
			t.Errorf("the error does not name the reference:\n%s", r.stderr)
		}
		if l := w.leaks(r.stderr, true); len(l) > 0 {
			t.Errorf("the error holds %v", l)
		}
	})
}

// startDetached runs the wrapped app in the background and waits until it
// printed "ready" (its signal handler is installed).
func (w *wrapper) startDetached(t *testing.T, app ...string) string {
	t.Helper()
	name := w.container(t)
	w.must(t, append(append(append([]string{"run", "-d"}, w.runArgs(name)...), w.app), app...)...)
	w.waitLogs(t, name, "ready")
	return name
}

// waitLogs polls the container's output until it contains want.
func (w *wrapper) waitLogs(t *testing.T, name, want string) string {
	t.Helper()
	var out string
	defer func() {
		if t.Failed() {
			t.Logf("container %s output:\n%s", name, out)
		}
	}()
	testutil.WaitFor(t, 2*time.Minute, fmt.Sprintf("container %s to print %q", name, want), func() bool {
		out = w.docker(t, "logs", name).stdout
		return strings.Contains(out, want)
	})
	return out
}

func (w *wrapper) exitCode(t *testing.T, name string) int {
	t.Helper()
	out := strings.TrimSpace(w.must(t, "inspect", "-f", "{{.State.ExitCode}}", name))
	n, err := strconv.Atoi(out)
	if err != nil {
		t.Fatalf("exit code %q: %v", out, err)
	}
	return n
}

// TestWrapperStopDeliversSIGTERM: `docker stop` signals PID 1 (injector),
// which forwards SIGTERM to the app; the app's own exit code comes back.
func TestWrapperStopDeliversSIGTERM(t *testing.T) {
	t.Parallel()
	w := newWrapper(t)
	name := w.startDetached(t, "/app", "term", "42")
	// A long stop timeout: the exit code must come from the app's handler,
	// not from a SIGKILL.
	w.must(t, "stop", "-t", "120", name)
	if got := w.exitCode(t, name); got != 42 {
		t.Errorf("exit code after docker stop = %d, want the app's 42", got)
	}
	if out := w.waitLogs(t, name, "ready"); !strings.Contains(out, "got SIGTERM") {
		t.Errorf("the app did not get SIGTERM; its output:\n%s", out)
	}
}

// TestWrapperStopKillsAfterTimeout: an app that ignores SIGTERM is killed
// when docker stop's timeout runs out: exit 137, not before the timeout.
func TestWrapperStopKillsAfterTimeout(t *testing.T) {
	t.Parallel()
	w := newWrapper(t)
	name := w.startDetached(t, "/app", "ignore-term")
	const timeout = 3
	start := time.Now()
	w.must(t, "stop", "-t", strconv.Itoa(timeout), name)
	took := time.Since(start)
	if got := w.exitCode(t, name); got != 137 {
		t.Errorf("exit code = %d, want 137 (SIGKILL)", got)
	}
	if took < timeout*time.Second {
		t.Errorf("docker stop returned after %s, before its %ds timeout", took.Round(time.Millisecond), timeout)
	}
	if out := w.waitLogs(t, name, "ready"); !strings.Contains(out, "ignoring SIGTERM") {
		t.Errorf("the app never saw the SIGTERM it ignored; its output:\n%s", out)
	}
}
