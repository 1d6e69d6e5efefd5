package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBranchNotTakenDoesNotFail: a reference in a branch the real values
// do not take cannot fail render; check names it as a warning.
func TestBranchNotTakenDoesNotFail(t *testing.T) {
	t.Parallel()
	_, env := passworkEnv(t) // prod/db/postgres has login "app"
	dir := t.TempDir()
	src := writeFile(t, filepath.Join(dir, "db.tpl"),
		`<< if eq (passwork "prod/db/postgres" "login") "app" >>pw=<< passwork "prod/db/postgres" >><< else >><< passwork "staging/db/missing" >><< end >>`)
	dst := filepath.Join(dir, "db.conf")
	if _, stderr, code := injector(t, env, "render", "-t", src+":"+dst); code != 0 {
		t.Fatalf("render: exit %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(dst); string(b) != "pw=pg-"+canary {
		t.Errorf("rendered %q", b)
	}
	stdout, stderr, code := injector(t, env, "check", "-t", src+":"+dst)
	if code != 0 || !strings.HasPrefix(stdout, "ok:") {
		t.Fatalf("check: exit %d: %s%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, `warning: `+src+`:1:`) || !strings.Contains(stderr, `passwork "staging/db/missing" "password"`) ||
		!strings.Contains(stderr, "not needed by this render") {
		t.Errorf("check does not warn about the unused reference:\n%s", stderr)
	}
	assertNoCanary(t, "check's output", stdout+stderr)
}
