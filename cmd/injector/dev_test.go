package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/injector-dev/injector/examples"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
)

func TestDevRendersExamplesMasked(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	var stdout, stderr bytes.Buffer
	if err := cmdDev(context.Background(), nil, &stdout, &stderr); err != nil {
		t.Fatalf("dev: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"passwork  http://127.0.0.1:", "passbolt  http://127.0.0.1:", "passagent http://127.0.0.1:",
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
	var stdout, stderr bytes.Buffer
	if err := cmdDev(context.Background(), []string{"--show-secrets"}, &stdout, &stderr); err != nil {
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
	f, _ := examples.FS.Open("dev/seed.json")
	seed, err := fetchtest.ParseSeed(f)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	emus, _, err := startEmulators(seed, work)
	t.Cleanup(func() {
		for _, e := range emus {
			e.emu.Close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(work, "dev.env")
	if err := writeDevEnv(envFile, emus); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(envFile)
	var env []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env = append(env, k+"="+strings.Trim(v, "'"))
	}
	if !strings.Contains(string(b), "PASSBOLT_PRIVATE_KEY_FILE=") {
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
