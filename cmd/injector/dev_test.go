package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/injector-dev/injector/examples"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
)

func TestDevRendersExamplesMasked(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	var stdout bytes.Buffer
	if err := cmdDev(context.Background(), &devOptions{}, &stdout); err != nil {
		t.Fatalf("dev: %v", err)
	}
	out := stdout.String()
	for _, want := range []string{"passwork  http://127.0.0.1:", "passbolt  http://127.0.0.1:", "passagent http://127.0.0.1:", "4 entries", "2 entries",
		"DB_PASSWORD=REDACTED", `"api_key": "REDACTED"`, "16 references resolved"} {
		if !strings.Contains(out, want) {
			t.Errorf("dev output lacks %q", want)
		}
	}
	f, _ := examples.FS.Open("dev/seed.json")
	seed, err := fetchtest.ParseSeed(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, entries := range [][]fetchtest.Entry{seed.Passwork, seed.Passbolt, seed.PassAgent} {
		for _, e := range entries {
			if pw := e.Fields["password"]; pw != "" && pw != "unused" && strings.Contains(out, pw) {
				t.Errorf("dev output shows the secret of %s", e.Path)
			}
		}
	}
	// The work directory is removed when dev exits.
	left, _ := filepath.Glob(filepath.Join(os.Getenv("TMPDIR"), "injector-dev-*"))
	if len(left) != 0 {
		t.Errorf("dev left %v behind", left)
	}
}

func TestDevShowSecrets(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	if err := cmdDev(context.Background(), &devOptions{show: true}, &stdout); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DB_PASSWORD=pg-Sup3r-s3cret!", "DB_URL=postgres://app:pg-Sup3r-s3cret%21@", "REDIS_URL=redis://default:r3dis-cache-pw@cache.internal:6379/2", "-----BEGIN CERTIFICATE-----"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestDevEnvFileWorks checks what `dev --serve` hands the user: sourcing
// its settings file points every command at the running emulators.
func TestDevEnvFileWorks(t *testing.T) {
	t.Parallel()
	env, emus, b := devEnv(t)
	if !strings.Contains(b, "PASSBOLT_PRIVATE_KEY_FILE=") {
		t.Errorf("multi-line key not moved to a _FILE setting:\n%s", b)
	}
	for ref, want := range map[string]string{
		"passwork:prod/db/postgres":         "pg-Sup3r-s3cret!\n",
		"passwork:staging/shared/postgres":  "pg-Sup3r-s3cret!\n", // by shortcut
		"passbolt:infra/ci/deploy-key":      "ghp_demoDeployToken0000\n",
		"passbolt:legacy/ldap/bind-account": "ld4p-bind-pw\n", // v4 resource, v4 folders
		"passagent:SMTP relay":              "smtp-relay-pw\n",
	} {
		stdout, stderr, code := injector(t, env, "get", ref)
		if code != 0 || stdout != want {
			t.Errorf("get %s: exit %d, %q, %s", ref, code, stdout, stderr)
		}
	}

	// examples/run.env resolves against the same sandbox.
	if stdout, stderr, code := injector(t, env, "check", "--env-file", "../../examples/run.env"); code != 0 || stdout != "ok: 2 templates, 2 references resolved\n" {
		t.Errorf("check examples/run.env: exit %d, %q, %s", code, stdout, stderr)
	}

	// The legacy Passwork API that --serve offers, as its note says.
	note := emus[0].serveNote
	_, settings, _ := strings.Cut(note, "\n  ")
	v4env := append([]string{}, env...)
	for _, kv := range strings.Fields(settings) {
		if k, _, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "PASSWORK_") {
			v4env = append(v4env, kv)
		}
	}
	if !strings.Contains(note, "/api/v4") || !strings.Contains(note, "PASSWORK_API_KEY=") {
		t.Fatalf("no v4 settings in the --serve note: %q", note)
	}
	if stdout, stderr, code := injector(t, v4env, "get", "passwork:prod/db/postgres"); code != 0 || stdout != "pg-Sup3r-s3cret!\n" {
		t.Errorf("v4 get: exit %d, %q, %s", code, stdout, stderr)
	}
}

// A render that fails leaves nothing behind: no work directory, no files.
func TestDevFailedRenderLeavesNothing(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dir := t.TempDir()
	seed, _ := fs.ReadFile(examples.FS, "dev/seed.json")
	writeFile(t, filepath.Join(mkdir(t, filepath.Join(dir, "dev")), "seed.json"), string(seed))
	writeFile(t, filepath.Join(mkdir(t, filepath.Join(dir, "templates")), "bad.tpl"), `<< passwork "prod/db/nope" >>`)
	var stdout bytes.Buffer
	err := cmdDev(context.Background(), &devOptions{examples: dir}, &stdout)
	if err == nil || !strings.Contains(err.Error(), `entry "nope" not found`) {
		t.Fatalf("err = %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "injector-dev-*")); len(left) != 0 {
		t.Errorf("a failed dev left %v behind", left)
	}
}

// With --out the files stay where dev says they are.
func TestDevOut(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	out := filepath.Join(t.TempDir(), "rendered")
	var stdout bytes.Buffer
	if err := cmdDev(context.Background(), &devOptions{out: out}, &stdout); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "Rendered 3 templates into "+out+":") {
		t.Errorf("output does not name %s:\n%s", out, stdout.String())
	}
	b, err := os.ReadFile(filepath.Join(out, "app.env"))
	if err != nil || !strings.Contains(string(b), "DB_PASSWORD=pg-Sup3r-s3cret!") {
		t.Errorf("app.env: %v %q", err, b)
	}
	// Without --out, no path is printed that would be gone after dev exits.
	stdout.Reset()
	if err := cmdDev(context.Background(), &devOptions{}, &stdout); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout.String(), os.Getenv("TMPDIR")) {
		t.Errorf("dev prints a temporary path it removes on exit:\n%s", stdout.String())
	}
}

// TestDevServeStepsWorkAsPrinted runs `dev --serve`, then runs the commands
// it prints exactly as printed, from another directory, in a shell with
// nothing but PATH, and checks that Ctrl-C leaves nothing behind.
func TestDevServeStepsWorkAsPrinted(t *testing.T) {
	t.Parallel()
	cmd, stdout, tmp := startDevServe(t)

	// Read until the note of the legacy API, the last thing printed.
	var printed strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		printed.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "PASSWORK_API_KEY=") {
			break
		}
	}
	_, steps, ok := strings.Cut(printed.String(), "In another shell (any directory):\n")
	if !ok {
		t.Fatalf("no next steps printed:\n%s", printed.String())
	}
	// The setup lines (settings, and the function that makes `injector`
	// this binary, which is not on PATH), then the commands.
	var setup, commands []string
	for _, l := range strings.Split(steps, "\n") {
		switch {
		case !strings.HasPrefix(l, "  "):
		case len(commands) == 0 && !strings.HasPrefix(l, "  injector ") && !strings.Contains(l, " injector "):
			setup = append(setup, strings.TrimSpace(l))
		default:
			commands = append(commands, strings.TrimSpace(l))
		}
	}
	if len(setup) != 2 || !strings.HasPrefix(setup[1], "injector() { ") || len(commands) != 4 {
		t.Fatalf("want the settings line, the injector function, three commands and the legacy API's; got %q, %q", setup, commands)
	}
	// Each command runs after the setup lines, as a user would paste them.
	// The test binary stands in for injector: INJECTOR_TEST_MAIN makes it
	// one.
	for i, want := range []string{"app\n", "ok: 1 template, 10 references resolved\n", "password has 16 characters\n", "pg-Sup3r-s3cret!\n"} {
		sh := exec.Command("sh", "-c", strings.Join(setup, "\n")+"\n"+commands[i])
		sh.Dir = t.TempDir()
		sh.Env = []string{"PATH=" + os.Getenv("PATH"), "INJECTOR_TEST_MAIN=1", "INJECTOR_LOG_LEVEL=warn"}
		out, err := sh.CombinedOutput()
		if err != nil || string(out) != want {
			t.Errorf("%s: %v, %q, want %q", commands[i], err, out, want)
		}
	}

	// Ctrl-C: dev stops and removes its work directory.
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Errorf("dev --serve after Ctrl-C: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "injector-dev-*")); len(left) != 0 {
		t.Errorf("dev --serve left %v behind", left)
	}
}

// dev --serve removes its work directory however it is stopped: Ctrl-C
// (above), SIGTERM, or SIGHUP when its terminal goes away.
func TestDevServeCleansUpOnSignals(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd, stdout, tmp := startDevServe(t)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() && !strings.Contains(sc.Text(), "Emulators are running") {
			}
			go io.Copy(io.Discard, stdout)
			if left, _ := filepath.Glob(filepath.Join(tmp, "injector-dev-*")); len(left) != 1 {
				t.Fatalf("no work directory while serving: %v", left)
			}
			cmd.Process.Signal(sig)
			if err := cmd.Wait(); err != nil {
				t.Errorf("dev --serve after %v: %v", sig, err)
			}
			if left, _ := filepath.Glob(filepath.Join(tmp, "injector-dev-*")); len(left) != 0 {
				t.Errorf("dev --serve left %v behind after %v", left, sig)
			}
		})
	}
}

// startDevServe starts `injector dev --serve [args]` with a TMPDIR of its
// own and returns it with its stdout and that directory.
func startDevServe(t *testing.T, args ...string) (*exec.Cmd, io.Reader, string) {
	t.Helper()
	tmp := t.TempDir()
	cmd := exec.Command(os.Args[0], append([]string{"dev", "--serve"}, args...)...)
	cmd.Env = []string{"INJECTOR_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "TMPDIR=" + tmp}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, stdout, tmp
}

func mkdir(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(path, 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

// devSettings reads what a running `dev --serve` printed up to a line
// containing last and returns it with the settings file's variables.
func devSettings(t *testing.T, stdout io.Reader, last string) (printed string, env []string) {
	t.Helper()
	var b strings.Builder
	file := ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
		if rest, ok := strings.CutPrefix(sc.Text(), "  set -a; . "); ok {
			file, _, _ = strings.Cut(rest, "; set +a")
		}
		if strings.Contains(sc.Text(), last) {
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	if file == "" {
		t.Fatalf("no settings file printed:\n%s", b.String())
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env = append(env, k+"="+strings.Trim(v, "'"))
	}
	return b.String(), env
}

// lookupEnv returns the value of k in env.
func lookupEnv(env []string, k string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, k+"="); ok {
			return v
		}
	}
	return ""
}

// testNetAddress returns an address of this machine in a TEST-NET range,
// or "" when it has none: the tests may reach only loopback and TEST-NET
// addresses.
func testNetAddress() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.To4() == nil {
			continue
		}
		for _, r := range []string{"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"} {
			if _, testNet, _ := net.ParseCIDR(r); testNet.Contains(n.IP) {
				return n.IP.String()
			}
		}
	}
	return ""
}

// TestDevServeTLS: dev --serve with --listen serves every emulator over
// HTTPS, and a client given the settings file (INJECTOR_CA_FILE included)
// resolves through it: on 127.0.0.1 with TLS forced, and on one of this
// machine's TEST-NET addresses, when it has one, where TLS is the default.
func TestDevServeTLS(t *testing.T) {
	t.Parallel()
	t.Run("loopback with --tls", func(t *testing.T) { testDevServeTLS(t, "127.0.0.1", "--tls") })
	if host := testNetAddress(); host != "" {
		t.Run("TEST-NET address", func(t *testing.T) { testDevServeTLS(t, host) })
	}
}

func testDevServeTLS(t *testing.T, host string, args ...string) {
	cmd, stdout, _ := startDevServe(t, append(args, "--listen", host)...)
	last := "PASSWORK_API_KEY="
	if host != "127.0.0.1" {
		last = "docker-compose"
	}
	printed, env := devSettings(t, stdout, last)

	ca := lookupEnv(env, "INJECTOR_CA_FILE")
	if ca == "" || !strings.Contains(printed, ca+" (INJECTOR_CA_FILE in the settings)") {
		t.Fatalf("no CA in the settings or the output:\n%s\n%q", printed, env)
	}
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(ca); err != nil || !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("CA file %s: %v", ca, err)
	}
	for _, k := range []string{"PASSWORK_URL", "PASSBOLT_URL", "PASSAGENT_URL"} {
		u := lookupEnv(env, k)
		hostPort, _, _ := strings.Cut(strings.TrimPrefix(u, "https://"), "/")
		if !strings.HasPrefix(u, "https://"+host+":") || !strings.Contains(printed, "https://"+hostPort+" ") {
			t.Errorf("%s = %q, want https://%s:PORT, printed", k, u, host)
			continue
		}
		// The certificate is for the address as the URL names it.
		conn, err := tls.Dial("tcp", hostPort, &tls.Config{RootCAs: pool})
		if err != nil {
			t.Errorf("%s: TLS with the CA: %v", k, err)
			continue
		}
		conn.Close()
	}
	for ref, want := range map[string]string{
		"passwork:prod/db/postgres":    "pg-Sup3r-s3cret!\n",
		"passbolt:infra/ci/deploy-key": "ghp_demoDeployToken0000\n",
		"passagent:SMTP relay":         "smtp-relay-pw\n",
	} {
		if out, stderr, code := injector(t, env, "get", ref); code != 0 || out != want {
			t.Errorf("get %s: exit %d, %q, %s", ref, code, out, stderr)
		}
	}
	// Without the CA, the server is not trusted.
	var noCA []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "INJECTOR_CA_FILE=") {
			noCA = append(noCA, kv)
		}
	}
	if out, stderr, code := injector(t, noCA, "get", "passwork:prod/db/postgres"); code != 1 || out != "" || !strings.Contains(stderr, "certificate") {
		t.Errorf("get without the CA: exit %d, %q, %s", code, out, stderr)
	}

	// Off loopback, the settings are also files for containers: one per
	// setting, readable by the container's user, and the CA.
	_, compose, ok := strings.Cut(printed, "\n  INJECTOR_CREDENTIALS=")
	if host == "127.0.0.1" {
		if ok {
			t.Errorf("files for containers offered on loopback:\n%s", printed)
		}
	} else {
		dir, _, _ := strings.Cut(compose, " docker-compose -f examples/docker-compose.yml up\n")
		if !ok || !strings.HasPrefix(dir, "/") {
			t.Fatalf("no Compose line printed:\n%s", printed)
		}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			if strings.HasSuffix(k, "_FILE") {
				k = strings.TrimSuffix(k, "_FILE")
				b, _ := os.ReadFile(v)
				v = string(b)
			}
			name := strings.ToLower(k)
			if k == "INJECTOR_CA" {
				name = "ca.pem"
			}
			fi, err := os.Stat(filepath.Join(dir, name))
			if b, _ := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != v || fi.Mode().Perm() != 0o444 {
				t.Errorf("%s/%s: %v, mode %v, content matches %s: %v", dir, name, err, fi.Mode(), k, string(b) == v)
			}
		}
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v", dir, err, fi.Mode())
		}
		if fi, err := os.Stat(filepath.Dir(dir)); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("dev's directory %s is open to others: %v %v", filepath.Dir(dir), err, fi.Mode())
		}
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Errorf("dev --serve after Ctrl-C: %v", err)
	}
}

// A fixed port gives the emulators that port and the next two.
func TestDevListenFixedPorts(t *testing.T) {
	t.Parallel()
	var n *devNetwork
	var port int
	for attempt := 0; n == nil; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port > 65000 {
			continue
		}
		l, err := parseDevListen(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), optBool{})
		if err != nil {
			t.Fatal(err)
		}
		if n, err = l.open(); err != nil && attempt == 20 {
			t.Fatalf("no three free ports after 20 attempts: %v", err)
		}
	}
	defer n.close()
	for i, ln := range n.listeners {
		if got := ln.Addr().(*net.TCPAddr).Port; got != port+i {
			t.Errorf("emulator %d listens on port %d, want %d", i, got, port+i)
		}
	}
	if n.ca != nil {
		t.Error("TLS on loopback without --tls")
	}
}

func TestDevListenParse(t *testing.T) {
	t.Parallel()
	on, off := optBool{v: true, set: true}, optBool{set: true}
	for _, tc := range []struct {
		addr     string
		tls      optBool
		host     string
		port     int
		wantTLS  bool
		errorHas string
	}{
		{"", optBool{}, "127.0.0.1", 0, false, ""},
		{"", on, "127.0.0.1", 0, true, ""},
		{"127.0.0.1", optBool{}, "127.0.0.1", 0, false, ""},
		{"localhost:8400", optBool{}, "localhost", 8400, false, ""},
		{"[::1]:0", optBool{}, "::1", 0, false, ""},
		{"::1", on, "::1", 0, true, ""},
		{"192.0.2.10", optBool{}, "192.0.2.10", 0, true, ""}, // off loopback: TLS by default
		{"192.0.2.10:8400", optBool{}, "192.0.2.10", 8400, true, ""},
		{"[2001:db8::1]", optBool{}, "2001:db8::1", 0, true, ""},
		{"devbox.example", optBool{}, "devbox.example", 0, true, ""},
		{"192.0.2.10", off, "", 0, false, "injector sends credentials over plain http to loopback only"},
		{"0.0.0.0", optBool{}, "", 0, false, "name one address of this machine"},
		{"[::]:8400", optBool{}, "", 0, false, "name one address of this machine"},
		{":8400", optBool{}, "", 0, false, "name the host"},
		{"192.0.2.10:http", optBool{}, "", 0, false, "the port must be a number"},
		{"192.0.2.10:65534", optBool{}, "", 0, false, "to 65533"},
		{"https://192.0.2.10", optBool{}, "", 0, false, "want HOST or HOST:PORT"},
	} {
		l, err := parseDevListen(tc.addr, tc.tls)
		switch {
		case tc.errorHas != "":
			if err == nil || !strings.Contains(err.Error(), tc.errorHas) {
				t.Errorf("--listen %q: err %v, want %q", tc.addr, err, tc.errorHas)
			}
		case err != nil:
			t.Errorf("--listen %q: %v", tc.addr, err)
		case l.host != tc.host || l.port != tc.port || l.tls != tc.wantTLS:
			t.Errorf("--listen %q: host %q port %d TLS %v, want %q %d %v", tc.addr, l.host, l.port, l.tls, tc.host, tc.port, tc.wantTLS)
		}
	}
}
