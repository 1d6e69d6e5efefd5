package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passwork/passworktest"
	"github.com/injector-dev/injector/internal/testutil"
)

// Trust at the process boundary: the child gets exactly its secrets and
// never injector's keys. The children here are real programs: a C program
// (testdata/probe.c, glibc's getenv) and this test binary as a Go one.

// goGetenvArg makes the test binary a Go child that prints os.Getenv(NAME):
// `injector.test -trust-go-getenv NAME`. An argument, not a variable, so
// the injector process (the same binary) never takes this path.
const goGetenvArg = "-trust-go-getenv"

func init() {
	if len(os.Args) == 3 && os.Args[1] == goGetenvArg {
		fmt.Println(os.Getenv(os.Args[2]))
		os.Exit(0)
	}
}

// buildProbe compiles testdata/probe.c into dir (a C compiler is needed
// for -race anyway).
func buildProbe(t *testing.T, dir string) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Fatalf("a C compiler (cc) is needed: %v", err)
	}
	src, err := filepath.Abs("testdata/probe.c")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "probe")
	if b, err := exec.Command(cc, "-O", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("cc probe.c: %v\n%s", err, b)
	}
	return out
}

// 1. A variable both inherited and templated reaches the child once, with
// the templated value: the image's ENV DB_PASSWORD=changeme must not
// shadow the secret, in exec mode and in every supervised mode.
func TestChildSeesTemplatedValueOnce(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t)
	probe := buildProbe(t, t.TempDir())
	env = append(env, "DB_PASSWORD=changeme", "INHERITED_TPL=<< passwork \"prod/db/postgres\" \"login\" >>")
	secret := "pg-" + canary
	for _, mode := range []struct {
		name   string
		flags  []string
		masked bool
	}{
		{"exec", nil, false},
		{"supervised --mask", []string{"--mask"}, true},
		{"supervised --listen", []string{"--listen", "127.0.0.1:0"}, false},
		{"daemon --interval", []string{"--interval", "1h"}, false},
	} {
		for _, child := range []struct {
			name string
			argv []string
			want string
		}{
			{"C getenv", []string{probe, "getenv", "DB_PASSWORD", "INHERITED_TPL"}, secret + "|1\napp|1"},
			{"Go os.Getenv", []string{os.Args[0], goGetenvArg, "DB_PASSWORD"}, secret},
		} {
			t.Run(mode.name+"/"+child.name, func(t *testing.T) {
				args := append([]string{"run", "--env", `DB_PASSWORD=<< passwork "prod/db/postgres" >>`}, mode.flags...)
				stdout, stderr, code := injector(t, env, append(append(args, "--"), child.argv...)...)
				want := child.want
				if mode.masked {
					want = strings.ReplaceAll(want, secret, "********")
				}
				if code != 0 || strings.TrimSpace(stdout) != want {
					t.Errorf("exit %d, child printed %q, want %q\n%s", code, stdout, want, stderr)
				}
			})
		}
	}
}

// environOf runs `injector run [flags] -- cat /proc/self/environ` and
// returns the child's environment, in order.
func environOf(t *testing.T, env []string, flags ...string) ([]string, string, int) {
	t.Helper()
	stdout, stderr, code := injector(t, env, append(append([]string{"run"}, flags...), "--", "cat", "/proc/self/environ")...)
	return strings.Split(strings.TrimSuffix(stdout, "\x00"), "\x00"), stderr, code
}

// 2. Inherited values that merely contain << pass through byte for byte;
// only one that calls a provider is a template, and a broken one fails
// naming its variable.
func TestInheritedValuesPassThroughByteForByte(t *testing.T) {
	t.Parallel()
	_, creds := passworkEnv(t)
	plain := []string{
		"MSG=a << b",
		"SETUP=cat <<EOF > x",
		"BASH_FUNC_f%%=() {  cat <<EOF\nhello << world >>\nEOF\n}",
		"QUOTED=<< \"t\" >>",
	}
	env := append(append(slices.Clone(creds), plain...), `DB=<< passwork "prod/db/postgres" "login" >>`)
	got, stderr, code := environOf(t, env)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, kv := range append(slices.Clone(plain), "DB=app") {
		if !slices.Contains(got, kv) {
			t.Errorf("child environment lacks %q:\n%q", kv, got)
		}
	}

	// Opted out, by flag or setting: every value passes through.
	for _, optOut := range [][]string{{"--no-env-templates"}, nil} {
		e := env
		if optOut == nil {
			e = append(slices.Clone(env), "INJECTOR_NO_ENV_TEMPLATES=true")
		}
		got, stderr, code := environOf(t, e, optOut...)
		if code != 0 || !slices.Contains(got, `DB=<< passwork "prod/db/postgres" "login" >>`) {
			t.Errorf("opted out by %v: exit %d, env %q\n%s", optOut, code, got, stderr)
		}
	}

	// Meant as a template and broken: a template error naming the variable.
	_, stderr, code = environOf(t, append(slices.Clone(env), `BROKEN=<< passwork "prod/db/postgres" `))
	if code != exitFailure || !strings.Contains(stderr, "$BROKEN") {
		t.Errorf("broken template: exit %d, stderr %s", code, stderr)
	}
}

// 3. A child of the same user cannot read injector's credentials through
// /proc/$PPID: environ, mem and fd are closed to it (injector is
// non-dumpable), cmdline is readable but holds no credential. Checked for
// every supervised mode, and for a sidecar read by a sibling process
// (shared PID namespace). When the test runs as root, injector and the
// child run as nobody: root's CAP_SYS_PTRACE passes the fence, as it
// should, and a container's root lacks it.
func TestChildCannotReadInjectorThroughProc(t *testing.T) {
	t.Parallel()
	srv, env := passworkEnv(t)
	c := srv.Config()
	needles := "PROBE_NEEDLES=" + c.Token + "\n" + c.MasterKey

	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // t.TempDir makes both 0700
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	probe := buildProbe(t, dir)
	bin := filepath.Join(dir, "injector")
	copyFile(t, os.Args[0], bin, 0o755)
	tpl := filepath.Join(dir, "app.tpl")
	copyFile(t, writeFile(t, filepath.Join(t.TempDir(), "app.tpl"), `db=<< passwork "prod/db/postgres" >>`), tpl, 0o644)
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}

	command := func(args ...string) *exec.Cmd {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append([]string{"INJECTOR_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "INJECTOR_LOG_FORMAT=json", needles}, env...)
		if os.Geteuid() == 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		}
		return cmd
	}
	// verdict checks a probe's report: environ, mem and fd denied,
	// cmdline clean.
	verdict := func(t *testing.T, report string) {
		t.Helper()
		for _, want := range []string{"environ denied", "cmdline readable clean", "mem denied", "fd denied"} {
			if !strings.Contains(report, want+"\n") {
				t.Errorf("probe of injector: want %q, got:\n%s", want, report)
			}
		}
	}

	// Control: the probe does find a credential in a dumpable process's
	// environ and memory, so a pass below means a closed door.
	t.Run("control", func(t *testing.T) {
		sleeper := command("sleep", "600")
		if err := sleeper.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
		b, err := command(probe, "proc", fmt.Sprint(sleeper.Process.Pid)).CombinedOutput()
		if err != nil || !strings.Contains(string(b), "environ readable leak\n") || !strings.Contains(string(b), "mem readable leak\n") {
			t.Fatalf("the probe cannot see a dumpable process's credentials (%v):\n%s", err, b)
		}
	})

	for _, mode := range [][]string{{"--mask"}, {"--listen", "127.0.0.1:0"}, {"--interval", "1h"}} {
		t.Run("run "+strings.Join(mode, " "), func(t *testing.T) {
			args := append(append([]string{bin, "run", "-t", tpl + ":" + filepath.Join(out, "app-"+mode[0][2:])}, mode...), "--", probe, "proc", "ppid")
			cmd := command(args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			verdict(t, stdout.String())
		})
	}

	t.Run("sidecar read by a sibling", func(t *testing.T) {
		dst := filepath.Join(out, "sidecar")
		sidecar := command(bin, "render", "--interval", "1h", "-t", tpl+":"+dst)
		var stderr testutil.SyncBuffer
		sidecar.Stderr = &stderr
		if err := sidecar.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { sidecar.Process.Kill(); sidecar.Wait() }()
		testutil.WaitFor(t, 30*time.Second, "the sidecar's first render", func() bool {
			_, err := os.Stat(dst)
			return err == nil
		})
		b, err := command(probe, "proc", fmt.Sprint(sidecar.Process.Pid)).CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		verdict(t, string(b))
		if t.Failed() {
			t.Logf("sidecar stderr:\n%s", stderr.String())
		}
	})
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// 4. Templates are hermetic: no function reads injector's environment
// (its credentials), the network or the clock.
func TestTemplatesCannotReadInjectorsEnvironment(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t)
	for fn, tpl := range map[string]string{
		"env":           `<< env "PASSWORK_TOKEN" >>`,
		"expandenv":     `<< expandenv "$PASSWORK_TOKEN $PASSWORK_MASTER_KEY" >>`,
		"getHostByName": `<< getHostByName "example.com" >>`,
		"now":           `<< now >>`,
	} {
		stdout, stderr, code := injector(t, env, "run", "--mask", "--env", "X="+tpl, "--", "sh", "-c", `echo "$X"`)
		if code != exitFailure || !strings.Contains(stderr, fmt.Sprintf("function %q is not available", fn)) || stdout != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %s", fn, code, stdout, stderr)
		}
	}
}

// 5. Errors never carry text derived from a secret: a reference computed
// from a secret is reported by position, and a secret that is a common
// word is not hidden wherever the word appears (an oracle).
func TestErrorsCarryNoSecretDerivedText(t *testing.T) {
	t.Parallel()
	srv := passworktest.NewServer()
	t.Cleanup(srv.Close)
	if err := srv.Seed([]fetchtest.Entry{
		{Path: "prod/meta/pointer", Fields: map[string]string{"password": "prod/db/missingentry-" + canary}},
		{Path: "prod/db/word", Fields: map[string]string{"password": "password"}},
	}); err != nil {
		t.Fatal(err)
	}
	c := srv.Config()
	env := []string{"PASSWORK_URL=" + c.URL, "PASSWORK_API=" + c.API, "PASSWORK_TOKEN=" + c.Token, "PASSWORK_MASTER_KEY=" + c.MasterKey}
	dir := t.TempDir()
	computed := writeFile(t, filepath.Join(dir, "computed.tpl"), "x=<< passwork (passwork \"prod/meta/pointer\") >>\n")
	word := writeFile(t, filepath.Join(dir, "word.tpl"), "<< passwork \"prod/db/word\" >> << passwork \"prod/db/gone\" \"password\" >>\n")
	_, stderr, code := injector(t, env, "check", "-t", computed+":/dev/null", "-t", word+":/dev/null")
	if code != exitFailure {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		computed + ":1:6: at <passwork (passwork \"prod/meta/pointer\")>: passwork: reference built from a secret (not shown): entry not found",
		word + `:1:34: passwork: resolve passwork "prod/db/gone" "password": entry "gone" not found in folder "prod/db"`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	for _, leak := range []string{"missingentry", canary, "redacted"} {
		if strings.Contains(stderr, leak) {
			t.Errorf("stderr carries %q:\n%s", leak, stderr)
		}
	}
}

// 7 and 8. Destinations: one template per file however the path is
// spelled, only regular files, "-" for stdout where printing is the job.
func TestDestinations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := writeFile(t, filepath.Join(dir, "a.tpl"), "A\n")
	b := writeFile(t, filepath.Join(dir, "b.tpl"), "B\n")
	target := writeFile(t, filepath.Join(dir, "target"), "untouched")
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(dir, "d")
	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"same file twice", []string{"render", "-t", a + ":" + d + "/out", "-t", b + ":" + d + "/./out"}, exitUsage, "", "is the same file as " + d + "/out"},
		{"symbolic link", []string{"render", "-t", a + ":" + link}, exitUsage, "", "destination is a symbolic link (to " + target + ")"},
		{"device", []string{"render", "-t", a + ":/dev/null"}, exitUsage, "", "destination is a character device"},
		{"directory with a slash", []string{"render", "-t", a + ":" + dir + "/"}, exitUsage, "", "names a directory; add the file name"},
		{"directory", []string{"render", "-t", a + ":" + dir}, exitUsage, "", "destination is a directory"},
		{"stdout", []string{"render", "-t", a + ":-", "-t", b + ":-"}, 0, "A\nB\n", ""},
		{"stdout with run", []string{"run", "-t", a + ":-", "--", "true"}, exitUsage, "", "only for injector render without --interval"},
		{"check writes nothing", []string{"check", "-t", a + ":/dev/null", "-t", b + ":/dev/null", "-t", a + ":-"}, 0, "ok: 3 templates", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := injector(t, nil, tt.args...)
			if code != tt.code || !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d (want %d)\nstdout %q (want %q)\nstderr %s(want %q)", code, tt.code, stdout, tt.stdout, stderr, tt.stderr)
			}
		})
	}
	// A daemon never prints: it would run forever if it accepted "-".
	p := startInjector(t, nil, "render", "--interval", "1h", "-t", a+":-")
	if code := p.wait(t); code != exitUsage || !strings.Contains(p.stderr.String(), "only for injector render without --interval") {
		t.Errorf("stdout in daemon mode: exit %d, stderr %s", code, p.stderr.String())
	}
	if _, err := os.Stat(d); !os.IsNotExist(err) {
		t.Errorf("a rejected render created %s: %v", d, err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "untouched" {
		t.Errorf("the link's target = %q", b)
	}
}
