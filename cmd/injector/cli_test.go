package main

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestArguments runs every subcommand with flags before and after its
// positionals, stray positionals and flags that belong to another command:
// each is either understood or rejected as a usage error (exit 2) before
// anything happens. Nothing is ever silently dropped.
func TestArguments(t *testing.T) {
	t.Parallel()
	_, pwEnv := passworkEnv(t)
	pb, _ := passboltFixture(t) // infra/db/postgres: username "app"
	env := append(pwEnv, pb.env...)
	dir := t.TempDir()
	good := writeFile(t, filepath.Join(dir, "good.tpl"), `<< passwork "prod/db/postgres" "login" >>`)
	typos := writeFile(t, filepath.Join(dir, "typos.tpl"), `<< passwork "prod/db/postgress" >>`)
	out := filepath.Join(dir, "out")
	notExecutable := writeFile(t, filepath.Join(dir, "script.sh"), "#!/bin/sh\necho hi\n")

	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string // exact, when the command prints
		stderr     string // contained
		noOutputOK bool   // the stdout check is skipped
	}{
		// get: flags anywhere; exactly one reference.
		{"get, flags after the reference", []string{"get", "-n", "passbolt:infra/db/postgres", "--field", "username"}, 0, "app", "", false},
		{"get, flags before", []string{"get", "--field", "login", "passwork:prod/db/postgres"}, 0, "app\n", "", false},
		{"get, flags around", []string{"get", "--field=login", "passwork:prod/db/postgres", "--no-newline"}, 0, "app", "", false},
		{"get, -- before the reference", []string{"get", "--field", "login", "--", "passwork:prod/db/postgres"}, 0, "app\n", "", false},
		{"get, a stray positional", []string{"get", "passwork:prod/db/postgres", "login"}, 2, "", `unexpected arguments ["login"] after PROVIDER:PATH`, false},
		{"get, a stray positional first", []string{"get", "login", "passwork:prod/db/postgres"}, 2, "", `unexpected arguments ["passwork:prod/db/postgres"]`, false},
		{"get, no reference", []string{"get", "--field", "login"}, 2, "", "missing PROVIDER:PATH", false},
		{"get, a misspelt flag after", []string{"get", "passwork:prod/db/postgres", "--feild", "login"}, 2, "", "flag provided but not defined: --feild", false},
		{"get, a flag without its value", []string{"get", "passwork:prod/db/postgres", "--field"}, 2, "", "flag needs an argument: --field", false},
		{"get, another command's flag", []string{"get", "passwork:prod/db/postgres", "-t", good + ":" + out}, 2, "", "flag provided but not defined: -t", false},
		{"get, a bad boolean", []string{"get", "passwork:prod/db/postgres", "-n=maybe"}, 2, "", `invalid boolean value "maybe" for -n`, false},

		// check: templates only through flags; something to check.
		{"check, a stray template", []string{"check", "s.tpl", "-t", typos + ":/dev/null"}, 2, "", `unexpected arguments ["s.tpl"]: check takes none; templates are given as -t SRC:DST`, false},
		{"check, a stray after the flags", []string{"check", "-t", good + ":/dev/null", "s.tpl"}, 2, "", `unexpected arguments ["s.tpl"]`, false},
		{"check, nothing to check", []string{"check"}, 2, "", "check: nothing to check", false},
		{"check, --owner is render's", []string{"check", "--owner", "1000", "-t", good + ":/dev/null"}, 2, "", "flag provided but not defined: --owner", false},
		{"check, --log-level is not check's", []string{"check", "-t", good + ":/dev/null", "--log-level", "debug"}, 2, "", "flag provided but not defined: --log-level", false},
		{"check, flags in any order", []string{"check", "-t", good + ":/dev/null", "--env", `X=<< passwork "prod/db/postgres" >>`}, 0, "ok: 2 templates, 2 references resolved\n", "", false},
		{"check, the typos are found", []string{"check", "-t", typos + ":/dev/null"}, 1, "", `entry "postgress" not found`, false},

		// render: no positionals; only render's flags.
		{"render, a stray positional", []string{"render", "-t", good + ":" + out, "extra"}, 2, "", `unexpected arguments ["extra"]: render takes none`, false},
		{"render, a command after --", []string{"render", "-t", good + ":" + out, "--", "./app"}, 2, "", "use injector run -- CMD", false},
		{"render, no templates", []string{"render", "--interval", "1m"}, 2, "", "render: no templates", false},
		{"render, --env is run's", []string{"render", "--env", "A=b", "-t", good + ":" + out}, 2, "", "flag provided but not defined: --env", false},
		{"render, --mask is run's", []string{"render", "-t", good + ":" + out, "--mask"}, 2, "", "flag provided but not defined: --mask", false},
		{"render, --listen without --interval", []string{"render", "-t", good + ":" + out, "--listen", "127.0.0.1:0"}, 2, "", "--listen serves metrics and probes while injector keeps running", false},
		{"render, --listen with --once", []string{"render", "-t", good + ":" + out, "--interval", "1m", "--once", "--listen", "127.0.0.1:0"}, 2, "", "add --interval, or drop --listen", false},
		{"render, a bad duration", []string{"render", "-t", good + ":" + out, "--interval", "often"}, 2, "", `invalid value "often" for flag --interval`, false},
		{"render, flags after -t", []string{"render", "-t", good + ":" + out, "--log-level", "warn"}, 0, "", "", false},

		// run: flags before CMD; everything from CMD on is CMD's.
		{"run, no command", []string{"run", "--env", "A=b"}, 2, "", "missing [--] CMD [ARGS...]", false},
		{"run, nothing after --", []string{"run", "--"}, 2, "", "missing [--] CMD", false},
		{"run, a misspelt flag", []string{"run", "--evn", "A=b", "--", "true"}, 2, "", "flag provided but not defined: --evn", false},
		{"run, --once is render's", []string{"run", "--once", "--", "true"}, 2, "", "flag provided but not defined: --once", false},
		{"run, flags after CMD are CMD's", []string{"run", "--env", "A=x", "sh", "-c", `echo "$A $1 $2"`, "sh", "--env", "B=y"}, 0, "x --env B=y\n", "", false},
		{"run, flags after -- CMD are CMD's", []string{"run", "--", "sh", "-c", `echo "$1"`, "sh", "--mask"}, 0, "--mask\n", "", false},

		// dev, version, completion, help.
		{"dev, a stray positional", []string{"dev", "now"}, 2, "", `unexpected arguments ["now"]: dev takes none`, false},
		{"dev, an unknown flag", []string{"dev", "--port", "8080"}, 2, "", "flag provided but not defined: --port", false},
		{"dev, --listen without --serve", []string{"dev", "--listen", "127.0.0.1"}, 2, "", "--listen and --tls apply to --serve", false},
		{"dev, --tls without --serve", []string{"dev", "--tls"}, 2, "", "--listen and --tls apply to --serve", false},
		{"dev, --listen on every address", []string{"dev", "--serve", "--listen", "0.0.0.0:8400"}, 2, "", "name one address of this machine", false},
		{"dev, plain http off loopback", []string{"dev", "--listen", "192.0.2.10", "--serve", "--tls=false"}, 2, "", "drop --tls=false", false},
		{"dev, --listen without its value", []string{"dev", "--serve", "--listen"}, 2, "", "flag needs an argument: --listen", false},
		{"probe, no URL", []string{"probe", "--timeout", "1s"}, 2, "", "missing URL", false},
		{"probe, two URLs", []string{"probe", "http://127.0.0.1:1/a", "http://127.0.0.1:1/b"}, 2, "", `unexpected arguments ["http://127.0.0.1:1/b"] after URL`, false},
		{"probe, not a URL", []string{"probe", "127.0.0.1:8099/readyz"}, 2, "", "want an http:// or https:// URL", false},
		{"probe, another scheme", []string{"probe", "ftp://127.0.0.1/readyz"}, 2, "", "want an http:// or https:// URL", false},
		{"probe, credentials in the URL", []string{"probe", "http://u:p@127.0.0.1:1/readyz"}, 2, "", "must not hold credentials", false},
		{"probe, no timeout", []string{"probe", "http://127.0.0.1:1/readyz", "--timeout", "0s"}, 2, "", "--timeout must be positive", false},
		{"probe, a bad timeout", []string{"probe", "--timeout", "soon", "http://127.0.0.1:1/readyz"}, 2, "", `invalid value "soon" for flag --timeout`, false},
		{"version, a flag", []string{"version", "--short"}, 2, "", "flag provided but not defined: --short", false},
		{"version, a stray positional", []string{"version", "now"}, 2, "", `unexpected arguments ["now"]`, false},
		{"completion, no shell", []string{"completion"}, 2, "", "missing SHELL", false},
		{"completion, an unknown shell", []string{"completion", "tcsh"}, 2, "", `"tcsh": want one of bash, zsh, fish`, false},
		{"completion, two shells", []string{"completion", "bash", "zsh"}, 2, "", `unexpected arguments ["zsh"]`, false},
		{"help, an unknown command", []string{"help", "nope"}, 2, "", `help: unknown command "nope"`, false},
		{"help, two commands", []string{"help", "run", "get"}, 2, "", `unexpected arguments ["get"]`, false},
		{"help, an unknown flag", []string{"help", "--all"}, 2, "", "flag provided but not defined: --all", false},

		// The command itself.
		{"no command", nil, 2, "", "Commands:", false},
		{"an unknown command", []string{"rendr", "-t", "a:b"}, 2, "", `unknown command "rendr"; did you mean "render"?`, false},
		{"an unknown flag for a command", []string{"--template", "a:b"}, 2, "", `unknown command "--template"`, false},
		{"the webhook moved", []string{"webhook"}, 2, "", "injector-webhook", false},

		// Exit codes of run.
		{"run, command not found", []string{"run", "--", filepath.Join(dir, "no-such-command")}, 127, "", "no such file or directory", false},
		{"run, not on PATH", []string{"run", "--", "no-such-command-injector-test"}, 127, "", "executable file not found", false},
		{"run, not executable", []string{"run", "--", notExecutable}, 126, "", "permission denied", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := injector(t, env, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) || !tt.noOutputOK && stdout != tt.stdout {
				t.Errorf("injector %q: exit %d, want %d\nstdout %q, want %q\nstderr (want %q):\n%s", tt.args, code, tt.code, stdout, tt.stdout, tt.stderr, stderr)
			}
			parseError := regexp.MustCompile(`unexpected arguments|flag|missing|unknown command`).MatchString(tt.stderr)
			if code == exitUsage && parseError && !strings.Contains(stderr, "--help") {
				t.Errorf("a usage error should say where help is:\n%s", stderr)
			}
		})
	}
}

// TestHelp: every command has a help of its own on stdout (exit 0) with a
// purpose, a usage line with its positionals, its flags with two dashes,
// in groups, and two examples; and only the flags that apply to it.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, c := range commands() {
		for _, flag := range []string{"-h", "--help"} {
			t.Run(c.name+" "+flag, func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				if code := run([]string{c.name, flag}, &stdout, &stderr); code != exitOK || stderr.Len() > 0 {
					t.Fatalf("exit %d, stderr %q", code, stderr.String())
				}
				help := stdout.String()
				usage := "Usage:\n  injector " + c.name
				if c.args != "" {
					usage += " " + c.args
				}
				if !strings.HasPrefix(help, upperFirst(c.summary)+"\n") || !strings.Contains(strings.Replace(help, " [flags]", "", 1), usage+"\n") {
					t.Errorf("no purpose or usage line %q:\n%s", usage, help)
				}
				_, examples, ok := strings.Cut(help, "\nExamples:\n")
				if n := strings.Count(examples, "injector "); !ok || n < 2 {
					t.Errorf("want two examples, got %d:\n%s", n, help)
				}
				f := newFlagSet(c.name)
				if c.flags != nil {
					c.flags(f)
				}
				for long := range f.docs {
					if !strings.Contains(help, "--"+long) {
						t.Errorf("help does not list --%s", long)
					}
				}
				if regexp.MustCompile(`(?m)^  -[a-z][a-z]`).MatchString(help) {
					t.Errorf("a long flag is shown with one dash:\n%s", help)
				}
			})
		}
	}

	helpOf := func(name string) string {
		var stdout, stderr bytes.Buffer
		run([]string{name, "--help"}, &stdout, &stderr)
		return stdout.String()
	}
	for _, tt := range []struct {
		cmd  string
		want []string
		not  []string
	}{
		{"render", []string{"Templates:", "Daemon mode:", "Logging:", "-t, --template SRC:DST[:MODE]", "--owner", "--once"}, []string{"--env", "--mask", "--kill-timeout", "Command:"}},
		{"check", []string{"--env KEY=TEMPLATE", "--env-file FILE", "nothing is written to DST"}, []string{"--owner", "--interval", "--log-level", "CMD's"}},
		{"run", []string{"set KEY in CMD's environment", "Command:", "--mask", "--kill-timeout"}, []string{"--once"}},
		{"get", []string{"--field F", "-n, --no-newline", "(default password)"}, []string{"--delims", "--log-level", "-t,"}},
		{"dev", []string{"--serve", "--show-secrets", "--out DIR"}, []string{"--log-level"}},
	} {
		help := helpOf(tt.cmd)
		for _, w := range tt.want {
			if !strings.Contains(help, w) {
				t.Errorf("%s --help lacks %q", tt.cmd, w)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(help, n) {
				t.Errorf("%s --help lists %q, which does not apply to it", tt.cmd, n)
			}
		}
	}

	// injector --help, -h and help list every command.
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != exitOK {
			t.Errorf("%q: exit %d", args, code)
		}
		for _, c := range commands() {
			if !regexp.MustCompile(`(?m)^  ` + c.name + ` +` + regexp.QuoteMeta(c.summary) + `$`).MatchString(stdout.String()) {
				t.Errorf("%q does not list %s:\n%s", args, c.name, stdout.String())
			}
		}
	}
	// `injector help CMD` is `injector CMD --help`.
	var a, b, stderr bytes.Buffer
	run([]string{"help", "get"}, &a, &stderr)
	run([]string{"get", "--help"}, &b, &stderr)
	if a.String() != b.String() || a.Len() == 0 {
		t.Errorf("help get differs from get --help")
	}
}

// TestVersion: version and --version print the build's version, commit,
// date, Go version and platform.
func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != exitOK {
			t.Fatalf("%q: exit %d: %s", args, code, stderr.String())
		}
		re := regexp.MustCompile(`^injector \S+\n  commit:   \S+\n  built:    \S+\n  go:       go\S+\n  platform: [a-z0-9]+/[a-z0-9]+\n$`)
		if !re.MatchString(stdout.String()) {
			t.Errorf("%q:\n%s", args, stdout.String())
		}
	}
}

// TestExitCodes: one scenario per row of the README's exit code table.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t)
	without := func(env []string, prefix string) []string {
		var out []string
		for _, kv := range env {
			if !strings.HasPrefix(kv, prefix) {
				out = append(out, kv)
			}
		}
		return out
	}
	dir := t.TempDir()
	broken := writeFile(t, filepath.Join(dir, "broken.tpl"), `<< passwork "prod/db/postgres" `)
	missing := writeFile(t, filepath.Join(dir, "missing.tpl"), `<< passwork "prod/db/nope" >>`)
	good := writeFile(t, filepath.Join(dir, "good.tpl"), `<< passwork "prod/db/postgres" >>`)
	tests := []struct {
		name   string
		env    []string
		args   []string
		code   int
		stderr string
	}{
		{"success", env, []string{"check", "-t", good + ":/dev/null"}, 0, ""},
		{"template syntax", env, []string{"check", "-t", broken + ":/dev/null"}, 1, "unclosed action"},
		{"reference not found", env, []string{"render", "-t", missing + ":" + filepath.Join(dir, "out")}, 1, `entry "nope" not found`},
		{"token rejected by the server", append(without(env, "PASSWORK_TOKEN="), "PASSWORK_TOKEN=wrong"), []string{"get", "passwork:prod/db/postgres"}, 1, "check PASSWORK_TOKEN"},
		{"unknown flag", env, []string{"check", "--nope"}, 2, "not defined"},
		{"-t without a destination", env, []string{"check", "-t", good}, 2, "want SRC:DST[:MODE]"},
		{"a destination that cannot be kept", env, []string{"render", "-t", good + ":" + dir}, 2, "destination is a directory"},
		{"--env without =", env, []string{"check", "--env", "X"}, 2, `--env "X": want KEY=TEMPLATE`},
		{"NAME_FILE unreadable", append(without(env, "PASSWORK_TOKEN="), "PASSWORK_TOKEN_FILE="+filepath.Join(dir, "none")), []string{"get", "passwork:prod/db/postgres"}, 2, "PASSWORK_TOKEN_FILE"},
		{"malformed setting", append(env, "INJECTOR_HTTP_TIMEOUT=soon"), []string{"get", "passwork:prod/db/postgres"}, 2, "INJECTOR_HTTP_TIMEOUT: want a duration"},
		{"provider not configured", nil, []string{"get", "passwork:prod/db/postgres"}, 2, "passwork: not configured"},
		{"master key not base64", append(without(env, "PASSWORK_MASTER_KEY="), "PASSWORK_MASTER_KEY=not base64!"), []string{"check", "-t", good + ":/dev/null"}, 2, "PASSWORK_MASTER_KEY is not base64"},
		{"provider settings in daemon mode", nil, []string{"render", "--interval", "1h", "-t", good + ":" + filepath.Join(dir, "out")}, 2, "passwork: not configured"},
		{"command not found", env, []string{"run", "--", "no-such-command-injector-test"}, 127, "not found"},
		{"command not executable", env, []string{"run", "--", good}, 126, "permission denied"},
		{"command not executable, supervised", env, []string{"run", "--mask", "--", good}, 126, "permission denied"},
		{"the command's own code", env, []string{"run", "--", "sh", "-c", "exit 7"}, 7, ""},
		{"the command's own code, supervised", env, []string{"run", "--mask", "--", "sh", "-c", "exit 7"}, 7, ""},
		{"killed by SIGTERM, supervised", env, []string{"run", "--mask", "--", "sh", "-c", "kill -TERM $$"}, 128 + 15, ""},
		{"killed by SIGKILL, daemon mode", env, []string{"run", "--interval", "1h", "--", "sh", "-c", "kill -KILL $$"}, 128 + 9, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := injector(t, tt.env, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, tt.code, tt.stderr, stderr)
			}
		})
	}
}

// A file that is not there is a template problem, not a usage error.
func TestMissingTemplateFile(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t)
	_, stderr, code := injector(t, env, "check", "-t", filepath.Join(t.TempDir(), "none.tpl")+":/dev/null")
	if code != exitFailure || !strings.Contains(stderr, "no such file") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
