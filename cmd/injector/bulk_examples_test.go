package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/injector-dev/injector/examples"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
)

// devEnv starts the dev emulators seeded from examples/dev/seed.json and
// returns the settings that point injector at them, the emulators, and
// the settings file as dev --serve writes it.
func devEnv(t *testing.T) ([]string, []*devEmulator, string) {
	t.Helper()
	f, _ := examples.FS.Open("dev/seed.json")
	seed, err := fetchtest.ParseSeed(f)
	if err != nil {
		t.Fatal(err)
	}
	emus, _, err := startEmulators(seed, &devNetwork{})
	t.Cleanup(func() {
		for _, e := range emus {
			e.emu.Close()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(t.TempDir(), "dev.env")
	if err := writeDevEnv(envFile, emus, ""); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(envFile)
	var env []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env = append(env, k+"="+strings.Trim(v, "'"))
	}
	return env, emus, string(b)
}

// The examples of examples/bulk render a folder as .env, JSON and YAML
// with sprig alone, against the dev seed.
func TestBulkExamples(t *testing.T) {
	t.Parallel()
	env, _, _ := devEnv(t)
	dir := t.TempDir()
	out := func(name string) string { return filepath.Join(dir, name) }
	stdout, stderr, code := injector(t, env, "render",
		"-t", "../../examples/bulk/folder.env.tpl:"+out("prod.env"),
		"-t", "../../examples/bulk/folder.json.tpl:"+out("db.json"),
		"-t", "../../examples/bulk/folder.yaml.tpl:"+out("infra.yaml"))
	if code != 0 {
		t.Fatalf("render: exit %d\n%s%s", code, stdout, stderr)
	}
	read := func(name string) string {
		b, err := os.ReadFile(out(name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// In path order: prod/db/postgres, prod/payments/stripe, prod/tls/api.example.com.
	wantEnv := "POSTGRES=\"pg-Sup3r-s3cret!\"\nSTRIPE=\"sk_live_51Hdemo0000000000000000\"\nAPI_EXAMPLE_COM=\"unused\"\n"
	if got := read("prod.env"); got != wantEnv {
		t.Errorf("prod.env:\n%s\nwant:\n%s", got, wantEnv)
	}

	var db map[string]struct {
		Login, Password string
		Settings        map[string]string
	}
	if err := json.Unmarshal([]byte(read("db.json")), &db); err != nil {
		t.Fatalf("db.json is not JSON: %v\n%s", err, read("db.json"))
	}
	if pg := db["postgres"]; len(db) != 1 || pg.Login != "app" || pg.Password != "pg-Sup3r-s3cret!" || pg.Settings["port"] != "5432" || pg.Settings["sslmode"] != "verify-full" {
		t.Errorf("db.json = %+v", db)
	}

	var infra struct {
		Resources map[string]struct{ Username, Password string }
	}
	if err := yaml.UnmarshalStrict([]byte(read("infra.yaml")), &infra); err != nil {
		t.Fatalf("infra.yaml is not YAML: %v\n%s", err, read("infra.yaml"))
	}
	if r := infra.Resources["infra/ci/deploy-key"]; len(infra.Resources) != 2 || r.Username != "deploy-bot" || r.Password != "ghp_demoDeployToken0000" ||
		infra.Resources["infra/monitoring/grafana"].Password != "graf4na-admin" {
		t.Errorf("infra.yaml = %+v\n%s", infra, read("infra.yaml"))
	}
}
