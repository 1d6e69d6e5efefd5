package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// completionScript writes `injector completion SHELL` to a file.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"completion", shell}, &stdout, &stderr); code != exitOK {
		t.Fatalf("completion %s: exit %d: %s", shell, code, stderr.String())
	}
	path := filepath.Join(t.TempDir(), "injector."+shell)
	if err := os.WriteFile(path, stdout.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// shellOrSkip finds a shell. zsh and fish are Debian packages that .ci/run
// installs; with INJECTOR_TEST_REQUIRE_SHELLS=1 (as CI sets it) a missing
// one fails the test instead of skipping it.
func shellOrSkip(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("INJECTOR_TEST_REQUIRE_SHELLS") == "1" {
			t.Fatalf("%s is not installed (apt-get install %s)", name, name)
		}
		t.Skipf("%s is not installed (apt-get install %s); CI installs it", name, name)
	}
	return path
}

// completionCases are command lines, the last word being completed, and
// the candidates that must and must not be offered.
var completionCases = []struct {
	line      []string
	want, not []string
}{
	{[]string{"injector", "ren"}, []string{"render"}, []string{"run"}},
	{[]string{"injector", ""}, []string{"run", "render", "get", "check", "dev", "version", "completion", "help"}, nil},
	{[]string{"injector", "render", "--int"}, []string{"--interval"}, nil},
	{[]string{"injector", "render", "--"}, []string{"--once", "--owner", "--template"}, []string{"--env", "--mask"}},
	{[]string{"injector", "check", "--"}, []string{"--env", "--env-file", "--template"}, []string{"--owner", "--interval"}},
	{[]string{"injector", "render", "--log-level", ""}, []string{"debug", "info", "warn", "error"}, nil},
	{[]string{"injector", "completion", ""}, []string{"bash", "zsh", "fish"}, nil},
	{[]string{"injector", "get", "pass"}, []string{"passwork:", "passbolt:", "passagent:"}, nil},
	{[]string{"injector", "get", "passwork:a/b", "--fi"}, []string{"--field"}, nil},
	{[]string{"injector", "run", "--ma"}, []string{"--mask", "--max-stale"}, nil},
	// After CMD, everything is CMD's: no injector flags.
	{[]string{"injector", "run", "--", "sh", "--ma"}, nil, []string{"--mask"}},
	{[]string{"injector", "run", "--env", "A=b", "sh", "--ma"}, nil, []string{"--mask"}},
	// CMD itself completes to commands.
	{[]string{"injector", "run", "--", "s"}, []string{"sh"}, nil},
}

func checkCandidates(t *testing.T, line []string, got, want, not []string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%q: %q not offered; got %q", line, w, got)
		}
	}
	for _, n := range not {
		if slices.Contains(got, n) {
			t.Errorf("%q: %q offered; got %q", line, n, got)
		}
	}
}

func TestBashCompletion(t *testing.T) {
	bash := shellOrSkip(t, "bash")
	script := completionScript(t, "bash")
	for _, tt := range completionCases {
		cmd := exec.Command(bash, "--norc", "-c", `source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _injector; printf '%s\n' "${COMPREPLY[@]}"`, script)
		cmd.Args = append(cmd.Args, tt.line...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", tt.line, err, out)
		}
		checkCandidates(t, tt.line, strings.Fields(string(out)), tt.want, tt.not)
	}
}

func TestFishCompletion(t *testing.T) {
	fish := shellOrSkip(t, "fish")
	script := completionScript(t, "fish")
	for _, tt := range completionCases {
		out, err := exec.Command(fish, "--no-config", "-c", `source $argv[1]; complete -C $argv[2]`, script, strings.Join(tt.line, " ")).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", tt.line, err, out)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			got = append(got, strings.TrimSpace(strings.Split(l, "\t")[0]))
		}
		checkCandidates(t, tt.line, got, tt.want, tt.not)
	}
}

// TestZshCompletion loads the script as zsh loads completions, through
// compinit, and checks that it parses and takes over completion for
// injector. The candidates are the same definitions that the bash and fish
// tests exercise.
func TestZshCompletion(t *testing.T) {
	zsh := shellOrSkip(t, "zsh")
	script := completionScript(t, "zsh")
	if out, err := exec.Command(zsh, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "functions")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(script)
	if err := os.WriteFile(filepath.Join(dir, "_injector"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	// Installed in $fpath (autoloaded by compinit) and sourced directly.
	for _, setup := range []string{`fpath=("$1" $fpath); autoload -Uz compinit; compinit -u -D`,
		`autoload -Uz compinit; compinit -u -D; source "$1/_injector"`} {
		cmd := exec.Command(zsh, "-f", "-c", setup+`; print -r -- "${_comps[injector]}"; autoload +X _injector 2>/dev/null; whence -w _injector`, "zsh", dir)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "_injector\n_injector: function") {
			t.Errorf("%s: %v\n%s", setup, err, out)
		}
	}
}
