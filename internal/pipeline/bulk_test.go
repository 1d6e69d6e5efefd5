package pipeline

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passwork/passworktest"
)

// bulkCanary is part of every value seeded for the --env-from tests; no
// error may contain it.
const bulkCanary = "BULK-CANARY-51c2"

// bulkServer is a Passwork emulator seeded with folders whose entry names
// need sanitising, collide or are dangerous.
func bulkServer(t *testing.T) *passworktest.Server {
	t.Helper()
	s := passworktest.NewServer()
	t.Cleanup(s.Close)
	pw := func(path, v string, custom map[string]string, tags string) fetchtest.Entry {
		return fetchtest.Entry{Path: path, Fields: map[string]string{"password": bulkCanary + v, "login": "user-" + v, "tags": tags}, Custom: custom}
	}
	err := s.Seed([]fetchtest.Entry{
		pw("prod/app/db-password", "-db", map[string]string{"port": "5432", "ca cert": bulkCanary + "-ca"}, "db"),
		pw("prod/app/api key", "-api", nil, ""),
		pw("prod/app/2fa", "-2fa", nil, ""),
		pw("prod/app/Пароль", "-ru", nil, ""),
		pw("prod/app/sub/deep", "-deep", nil, "db"),
		pw("prod/clash/db.password", "-c1", nil, ""),
		pw("prod/clash/db-password", "-c2", nil, ""),
		pw("prod/danger/path", "-path", nil, ""),
		pw("prod/danger/ld_preload", "-ld", nil, ""),
		pw("prod/danger/passwork_token", "-own", nil, ""),
		pw("prod/danger/ok", "-ok", nil, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func bulkPipeline(t *testing.T, s *passworktest.Server, cfg Config) *Pipeline {
	t.Helper()
	cfg.Delims = delims
	opt := fetch.Options{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, MaxRetryAfter: time.Second}
	cfg.Providers = Providers(&ProviderConfig{Passwork: s.Config()}, opt, nil)
	p, problems := New(cfg)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	return p
}

// refreshErr refreshes p expecting an error that names every want and
// holds no secret value.
func refreshErr(t *testing.T, p *Pipeline, want ...string) {
	t.Helper()
	_, err := p.Refresh(context.Background())
	if err == nil {
		t.Fatalf("refresh succeeded; want an error naming %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not name %q:\n%v", w, err)
		}
	}
	if strings.Contains(err.Error(), bulkCanary) {
		t.Errorf("error holds a secret value:\n%v", err)
	}
}

func TestEnvFromFolder(t *testing.T) {
	s := bulkServer(t)
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"injector naming, folder alone", Config{EnvFrom: []string{"passwork:prod/app"}}, []string{
			"HOME=/root", "API_KEY=" + bulkCanary + "-api",
			"DB_PASSWORD=" + bulkCanary + "-db", "DB_PASSWORD_CA_CERT=" + bulkCanary + "-ca", "DB_PASSWORD_PORT=5432",
			"_2FA=" + bulkCanary + "-2fa", "______=" + bulkCanary + "-ru",
		}},
		{"recursive", Config{EnvFrom: []string{"passwork:prod/app/**"}}, []string{
			"HOME=/root", "API_KEY=" + bulkCanary + "-api",
			"DB_PASSWORD=" + bulkCanary + "-db", "DB_PASSWORD_CA_CERT=" + bulkCanary + "-ca", "DB_PASSWORD_PORT=5432",
			"DEEP=" + bulkCanary + "-deep", "_2FA=" + bulkCanary + "-2fa", "______=" + bulkCanary + "-ru",
		}},
		{"prefix", Config{EnvFrom: []string{"passwork:tag:db"}, EnvPrefix: "APP_"}, []string{
			"HOME=/root", "API_KEY=inherited", "APP_DB_PASSWORD=" + bulkCanary + "-db", "APP_DB_PASSWORD_CA_CERT=" + bulkCanary + "-ca", "APP_DB_PASSWORD_PORT=5432",
			"APP_DEEP=" + bulkCanary + "-deep",
		}},
		{"passwork-cli naming", Config{EnvFrom: []string{"passwork:prod/app"}, EnvNaming: NamingPassworkCLI}, []string{
			"HOME=/root", "API_KEY=inherited", "P_2fa=" + bulkCanary + "-2fa", "P_______=" + bulkCanary + "-ru", "api_key=" + bulkCanary + "-api",
			"ca_cert=" + bulkCanary + "-ca", "db_password=" + bulkCanary + "-db", "port=5432",
		}},
		{"one entry in two selections is one variable", Config{EnvFrom: []string{"passwork:tag:db", "passwork:prod/app/sub"}}, []string{
			"HOME=/root", "API_KEY=inherited", "DB_PASSWORD=" + bulkCanary + "-db", "DB_PASSWORD_CA_CERT=" + bulkCanary + "-ca", "DB_PASSWORD_PORT=5432",
			"DEEP=" + bulkCanary + "-deep",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Environ = []string{"HOME=/root", "API_KEY=inherited", "PASSWORK_TOKEN=credential"}
			p := bulkPipeline(t, s, tt.cfg)
			out, err := p.Refresh(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			// An inherited API_KEY gives way to a bulk one; the
			// credential never reaches the child.
			if !slices.Equal(out.Env, tt.want) {
				t.Errorf("env:\n got %q\nwant %q", out.Env, tt.want)
			}
			if !slices.Contains(out.Secrets, bulkCanary+"-db") || !slices.Contains(out.Secrets, bulkCanary+"-ca") || slices.Contains(out.Secrets, "user--db") {
				t.Errorf("secrets for masking: want the passwords and custom fields, not logins: %q", out.Secrets)
			}
		})
	}
}

func TestEnvFromCollisions(t *testing.T) {
	s := bulkServer(t)
	p := bulkPipeline(t, s, Config{EnvFrom: []string{"passwork:prod/clash"}})
	refreshErr(t, p, "DB_PASSWORD", `passwork:prod/clash entry "prod/clash/db.password"`, `passwork:prod/clash entry "prod/clash/db-password"`, "collides")

	// Two selections mapping different entries to one name.
	p = bulkPipeline(t, s, Config{EnvFrom: []string{"passwork:prod/app", "passwork:prod/clash"}})
	refreshErr(t, p, `passwork:prod/app entry "prod/app/db-password"`, `passwork:prod/clash entry`)

	// A bulk name against an explicit one: an error unless asked for.
	cfg := Config{EnvFrom: []string{"passwork:prod/app"}, Env: []string{"DB_PASSWORD=explicit"}, Environ: []string{"API_KEY=<< passwork \"prod/app/2fa\" >>"}}
	p = bulkPipeline(t, s, cfg)
	refreshErr(t, p, `DB_PASSWORD from passwork:prod/app entry "prod/app/db-password" is also set explicitly`, "API_KEY from", "--env-override")
	cfg.EnvOverride = true
	p = bulkPipeline(t, s, cfg)
	out, err := p.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(out.Env, "DB_PASSWORD=explicit") || !slices.Contains(out.Env, "API_KEY="+bulkCanary+"-2fa") ||
		slices.Contains(out.Env, "DB_PASSWORD="+bulkCanary+"-db") || !slices.Contains(out.Env, "DB_PASSWORD_PORT=5432") {
		t.Errorf("with --env-override: env %q", out.Env)
	}
}

func TestEnvFromRefusesDangerousNames(t *testing.T) {
	s := bulkServer(t)
	p := bulkPipeline(t, s, Config{EnvFrom: []string{"passwork:prod/danger"}})
	refreshErr(t, p, "PATH from", "LD_PRELOAD from", "PASSWORK_TOKEN from", "--env-allow PATH", "injector's own settings")

	p = bulkPipeline(t, s, Config{EnvFrom: []string{"passwork:prod/danger"}, EnvAllow: []string{"PATH", "LD_PRELOAD", "PASSWORK_TOKEN"}})
	out, err := p.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"LD_PRELOAD=" + bulkCanary + "-ld", "OK=" + bulkCanary + "-ok", "PASSWORK_TOKEN=" + bulkCanary + "-own", "PATH=" + bulkCanary + "-path"}; !slices.Equal(out.Env, want) {
		t.Errorf("allowed by name: env %q", out.Env)
	}

	// A prefix makes the names harmless.
	p = bulkPipeline(t, s, Config{EnvFrom: []string{"passwork:prod/danger"}, EnvPrefix: "APP_"})
	if _, err := p.Refresh(context.Background()); err != nil {
		t.Errorf("with a prefix: %v", err)
	}
}

func TestDangerous(t *testing.T) {
	for _, k := range []string{"PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "BASH_ENV", "ENV", "IFS", "PYTHONPATH", "PYTHONSTARTUP", "NODE_OPTIONS",
		"INJECTOR_LOG_LEVEL", "PASSBOLT_PRIVATE_KEY", "DYLD_INSERT_LIBRARIES", "https_proxy", "JAVA_TOOL_OPTIONS", "GIT_SSH_COMMAND", "BASH_FUNC_x%%"} {
		if dangerous(k) == "" {
			t.Errorf("%s is not refused", k)
		}
	}
	for _, k := range []string{"DB_PASSWORD", "API_KEY", "PATHNAME_X", "ENVIRONMENT", "_2FA"} {
		if why := dangerous(k); why != "" {
			t.Errorf("%s is refused: %s", k, why)
		}
	}
}

func TestEnvFromEmptySelectionFails(t *testing.T) {
	s := bulkServer(t)
	p := bulkPipeline(t, s, Config{EnvFrom: []string{"passwork:tag:nobody"}})
	refreshErr(t, p, "--env-from passwork:tag:nobody: no entries found")
	// A folder that holds only folders: say how to reach them.
	p = bulkPipeline(t, s, Config{EnvFrom: []string{"passwork:prod"}})
	refreshErr(t, p, "--env-from passwork:prod: no entries found directly in it (prod/** includes its subfolders)")
	// A folder that does not exist: say what does.
	p = bulkPipeline(t, s, Config{EnvFrom: []string{"passwork:prod/nope"}})
	refreshErr(t, p, `folder "nope" not found in vault "prod"; available: "app", "clash", "danger"`)
}

func TestEnvFromUsageErrors(t *testing.T) {
	_, problems := New(Config{
		EnvFrom:   []string{"nope:x", "passwork", "passwork:", "passwork:a/*/b"},
		EnvPrefix: "1A", EnvNaming: "shouty", EnvAllow: []string{"A B"},
		Delims: delims,
	})
	want := []string{`--env-naming "shouty"`, `--env-prefix "1A"`, `--env-allow "A B"`, `--env-from "nope:x"`, `--env-from "passwork"`, `--env-from "passwork:"`, `--env-from "passwork:a/*/b"`}
	if len(problems) != len(want) {
		t.Fatalf("problems = %q, want one for each of %q", problems, want)
	}
	for i, w := range want {
		if !strings.Contains(problems[i].Error(), w) {
			t.Errorf("problem %d = %q, want %q", i, problems[i], w)
		}
	}
}

// Daemon mode: an entry added to or removed from the folder between two
// refreshes is an env change (the daemon then restarts or signals the
// child per --on-env-change).
func TestEnvFromSeesAddedEntries(t *testing.T) {
	s := bulkServer(t)
	p := bulkPipeline(t, s, Config{EnvFrom: []string{"passwork:prod/app/sub"}})
	ctx := context.Background()
	out, err := p.Refresh(ctx)
	if err != nil || !out.EnvChanged || !slices.Equal(out.BulkKeys, []string{"DEEP"}) {
		t.Fatalf("first refresh: %+v, %v", out, err)
	}
	if out, err = p.Refresh(ctx); err != nil || out.EnvChanged {
		t.Fatalf("nothing changed: %+v, %v", out, err)
	}
	if err := s.Seed([]fetchtest.Entry{{Path: "prod/app/sub/new one", Fields: map[string]string{"password": bulkCanary + "-new"}}}); err != nil {
		t.Fatal(err)
	}
	out, err = p.Refresh(ctx)
	if err != nil || !out.EnvChanged || !slices.Equal(out.BulkKeys, []string{"DEEP", "NEW_ONE"}) || !slices.Contains(out.Env, "NEW_ONE="+bulkCanary+"-new") {
		t.Errorf("after adding an entry: %+v, %v", out, err)
	}
}
