package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
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
	t.Parallel()
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
	t.Parallel()
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

// zshHarness drives an interactive zsh in a pseudo-terminal (zsh/zpty):
// it loads the script through compinit, then for each line given types it
// and TAB, and writes every candidate the completion offers to DIR/N.
// Reading waits for a marker in zsh's output, never for a fixed time.
const zshHarness = `
zmodload zsh/zpty
script=$1 dir=$2
shift 2
zpty z "zsh -f -i"
zpty -w z "PROMPT='ZREADY%% '"
zpty -w z "autoload -Uz compinit; compinit -u -D; source ${(q)script}"
zpty -w z 'compadd() { if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi; local -a h; builtin compadd -A h "$@"; print -rl -- $h >> $HITS; builtin compadd "$@"; }'
zpty -w z "bindkey '^I' complete-word; print READY-MARK"
zpty -r z out '*READY-MARK*ZREADY% *'
n=0
for line in "$@"; do
    n=$((n+1))
    zpty -w z "HITS=${(q)dir}/$n; : > \$HITS"
    zpty -r z out '*ZREADY% *'
    zpty -w -n z "$line"$'\t'
    zpty -w -n z $'\C-u'
    zpty -w z "print DONE-MARK-$n"
    zpty -r z out "*DONE-MARK-$n*ZREADY% *"
done
zpty -d z
`

// TestZshCompletion types each case into a real interactive zsh with the
// script loaded through compinit, as zsh users load it, and checks what
// TAB offers. (CMD itself completes through zsh's own _command_names,
// which is zsh's business, so that case is left to bash and fish.)
func TestZshCompletion(t *testing.T) {
	t.Parallel()
	zsh := shellOrSkip(t, "zsh")
	script := completionScript(t, "zsh")
	if out, err := exec.Command(zsh, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	dir := t.TempDir()
	args := []string{"-f", "-c", zshHarness, "zsh", script, dir}
	var cases []int
	for i, tt := range completionCases {
		if len(tt.line) == 4 && tt.line[2] == "--" && tt.line[3] == "s" {
			continue
		}
		cases = append(cases, i)
		args = append(args, strings.Join(tt.line, " "))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, zsh, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("zsh: %v\n%s", err, out)
	}
	for n, i := range cases {
		b, err := os.ReadFile(filepath.Join(dir, strconv.Itoa(n+1)))
		if err != nil {
			t.Fatalf("%q: no candidates recorded: %v", completionCases[i].line, err)
		}
		checkCandidates(t, completionCases[i].line, strings.Fields(string(b)), completionCases[i].want, completionCases[i].not)
	}
}
