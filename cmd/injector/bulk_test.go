package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/injector-dev/injector/internal/fetch/fetchtest"
)

// run --env-from puts a folder's entries in the child's environment, by
// the process a user starts, with the child's exit code passed on.
func TestRunEnvFrom(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t) // prod/db/postgres (custom field port), prod/api/stripe
	stdout, stderr, code := injector(t, env, "run", "--env-from", "passwork:prod/db", "--env-from", "passwork:prod/api", "--env-prefix", "APP_",
		"--", "sh", "-c", `echo "pg=$APP_POSTGRES port=$APP_POSTGRES_PORT stripe=${#APP_STRIPE} token=${PASSWORK_TOKEN:-unset}"; exit 3`)
	if code != 3 {
		t.Fatalf("exit %d, want the child's 3; stderr: %s", code, stderr)
	}
	if want := "pg=pg-" + canary + " port=tcp/5432 stripe=29 token=unset\n"; stdout != want {
		t.Errorf("child saw %q, want %q", stdout, want)
	}
	assertNoCanary(t, "stderr", stderr)

	// passwork-cli's names: case kept, a custom field by its own name.
	stdout, stderr, code = injector(t, env, "run", "--env-from", "passwork:prod/db", "--env-naming", "passwork-cli",
		"--", "sh", "-c", `echo "pg=${#postgres} port=$port"`)
	if code != 0 || stdout != "pg=29 port=tcp/5432\n" {
		t.Errorf("passwork-cli naming: exit %d, %q, %s", code, stdout, stderr)
	}
}

func TestRunEnvFromFailures(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--env-from", "passwork:prod"}, exitFailure, "--env-from passwork:prod: no entries found directly in it (prod/** includes its subfolders)"},
		{[]string{"--env-from", "passwork:prod/**", "--env-from", "passwork:staging/**"}, exitFailure, `POSTGRES from passwork:staging/** entry "staging/db/postgres" collides with passwork:prod/** entry "prod/db/postgres"`},
		{[]string{"--env-from", "passwork:prod/db", "--env", "POSTGRES=x"}, exitFailure, "--env-override lets the explicit value win"},
		{[]string{"--env-from", "vault:prod"}, exitUsage, `--env-from "vault:prod": want PROVIDER:SELECTION`},
		{[]string{"--env-from", "passwork:prod/db", "--env-naming", "nope"}, exitUsage, `--env-naming "nope"`},
	}
	for _, tt := range tests {
		args := append(append([]string{"run"}, tt.args...), "--", "sh", "-c", "echo child ran")
		stdout, stderr, code := injector(t, env, args...)
		if code != tt.code || stdout != "" || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d (want %d), stdout %q, stderr:\n%s\nwant %q", tt.args, code, tt.code, stdout, stderr, tt.want)
		}
		assertNoCanary(t, "stderr", stderr)
	}
}

// check --env-from names the variables run would set, never their values.
func TestCheckEnvFrom(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t)
	stdout, stderr, code := injector(t, env, "check", "--env-from", "passwork:prod/db/**")
	if code != 0 || !strings.Contains(stdout, "--env-from sets POSTGRES POSTGRES_PORT") {
		t.Errorf("exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	assertNoCanary(t, "stdout", stdout)
}

// Daemon mode: an entry added to the selected folder, then one removed
// from it, each restart the command with the environment that follows.
func TestDaemonEnvFromFollowsTheFolder(t *testing.T) {
	t.Parallel()
	srv, env := passworkEnv(t)
	log := filepath.Join(t.TempDir(), "starts.log")
	app := fmt.Sprintf(`echo "pg=${POSTGRES:+set} my=${MYSQL:+set}" >> %s; exec sleep 60`, log)
	p := startInjector(t, env, "run", "--interval", "50ms", "--min-interval", "0", "--kill-timeout", "2s",
		"--env-from", "passwork:prod/db", "--", "sh", "-c", app)
	eventually(t, "first start", fileIs(log, "pg=set my=\n"))
	if err := srv.Seed([]fetchtest.Entry{{Path: "prod/db/mysql", Fields: map[string]string{"password": "my-" + canary}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a restart with the added entry", fileIs(log, "pg=set my=\npg=set my=set\n"))
	if err := srv.Delete("prod/db/postgres"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a restart without the removed entry", fileIs(log, "pg=set my=\npg=set my=set\npg= my=set\n"))
	// The folder emptied (Passwork then has no such folder): the refresh
	// fails, the command keeps running with the last good environment.
	if err := srv.Delete("prod/db/mysql"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a failed refresh", func() bool {
		return strings.Contains(p.stderr.String(), "refresh failed; keeping the last good output") &&
			strings.Contains(p.stderr.String(), `select \"prod/db\": folder \"db\" not found`)
	})
	if b, _ := os.ReadFile(log); string(b) != "pg=set my=\npg=set my=set\npg= my=set\n" {
		t.Errorf("the command was restarted after a failed refresh: %q", b)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)
	assertNoCanary(t, "stderr", p.stderr.String())
}

// The INJECTOR_ENV_* settings are the flags' defaults, for an image whose
// entry point is `injector run --`; a flag replaces its setting.
func TestEnvFromSettings(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t)
	env = append(env, "INJECTOR_ENV_FROM=passwork:prod/db;passwork:prod/api", "INJECTOR_ENV_PREFIX=APP_", "INJECTOR_ENV_NAMING=passwork-cli")
	stdout, stderr, code := injector(t, env, "run", "--", "sh", "-c", `echo "$APP_postgres $APP_port ${#APP_stripe} ${INJECTOR_ENV_FROM:-unset}"`)
	if want := "pg-" + canary + " tcp/5432 29 unset\n"; code != 0 || stdout != want {
		t.Errorf("exit %d, %q, want %q; stderr %s", code, stdout, want, stderr)
	}
	stdout, stderr, code = injector(t, env, "run", "--env-from", "passwork:prod/api", "--env-naming", "injector", "--", "sh", "-c", `echo "${APP_POSTGRES:-none} ${#APP_STRIPE}"`)
	if code != 0 || stdout != "none 29\n" {
		t.Errorf("flags over settings: exit %d, %q; stderr %s", code, stdout, stderr)
	}
}
