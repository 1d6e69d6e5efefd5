package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/injector-dev/injector/internal/envconfig"
	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/template"
)

var delims = template.DefaultDelims

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseFileSpec(t *testing.T) {
	tests := []struct {
		in      string
		dst     string
		mode    os.FileMode
		wantErr string
	}{
		{"a.tpl:/out/a", "/out/a", 0o600, ""},
		{"a.tpl:/out/a:0640", "/out/a", 0o640, ""},
		{"a.tpl:/out/a:644", "/out/a", 0o644, ""},
		{"a.tpl", "", 0, "want SRC:DST[:MODE]"},
		{"a.tpl:/out/a:rw", "", 0, "not an octal permission"},
		{"a.tpl:/out/a:1777", "", 0, "not an octal permission"},
	}
	for _, tt := range tests {
		got, err := parseFileSpec(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.Dst != tt.dst || got.Mode != tt.mode {
			t.Errorf("%q: got %+v, %v", tt.in, got, err)
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "app.env"), "# comment\n\nA=plain\nexport B=<< passwork \"x\" >>\n  C=\n")
	vars, err := parseEnvFile(path, delims)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, v := range vars {
		keys = append(keys, v.key)
	}
	if strings.Join(keys, ",") != "A,B,C" {
		t.Fatalf("keys = %v", keys)
	}
	// B's template starts at line 4, column 10 ("export B=" is 9 bytes).
	if src := vars[1].tpl.Source; src.Line != 4 || src.Col != 10 {
		t.Errorf("B source = %+v", src)
	}

	writeFile(t, path, "OK=1\nnot a pair\n")
	if _, err := parseEnvFile(path, delims); err == nil || !strings.Contains(err.Error(), "app.env:2:1: want KEY=TEMPLATE") {
		t.Errorf("err = %v", err)
	}
}

func TestChildEnvDropsOwnSettings(t *testing.T) {
	keep, tpl, err := childEnv([]string{
		"HOME=/root", "PASSWORK_TOKEN=t0k", "INJECTOR_LOG_LEVEL=debug", "DB=<< passwork \"a\" >>",
	}, delims, OwnSetting, true)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(keep, " ") != "HOME=/root" {
		t.Errorf("keep = %v", keep)
	}
	if len(tpl) != 1 || tpl[0].key != "DB" {
		t.Errorf("templated = %+v", tpl)
	}
}

// fakeSecrets resolves every passwork reference to PATH/FIELD, or to an
// error for paths in missing.
func fakeSecrets(missing ...string) map[string]template.Resolver {
	return map[string]template.Resolver{"passwork": template.ResolverFunc(func(_ context.Context, refs []fetch.Ref) ([]fetch.Result, error) {
		out := make([]fetch.Result, len(refs))
		for i, r := range refs {
			if slices.Contains(missing, r.Path) {
				out[i].Err = errors.New("not found")
				continue
			}
			out[i].Value = r.Path + "/" + r.Field
		}
		return out, nil
	})}
}

func TestNewCollectsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, filepath.Join(dir, "good.tpl"), `<< passwork "a" >>`)
	broken := writeFile(t, filepath.Join(dir, "broken.tpl"), `<< passwork "a" `)
	envFile := writeFile(t, filepath.Join(dir, "app.env"), "not a pair\n")
	p, problems := New(Config{
		Templates: []string{good + ":" + filepath.Join(dir, "good.out"), "no-destination", broken + ":" + filepath.Join(dir, "b.out"), filepath.Join(dir, "missing.tpl") + ":/x"},
		EnvFiles:  []string{envFile},
		Env:       []string{"OK=<< passwork \"b\" >>", "1BAD=x"},
		Environ:   []string{"T=<< passwork ", "HOME=/root"},
		Delims:    delims,
		Providers: fakeSecrets(),
	})
	var msgs []string
	for _, e := range problems {
		msgs = append(msgs, e.Error())
	}
	want := []string{"no-destination", "broken.tpl:1:", "missing.tpl", "$T", "app.env:1:1", `--env "1BAD=x"`}
	if len(msgs) != len(want) {
		t.Fatalf("problems = %q, want one for each of %q", msgs, want)
	}
	for i, w := range want {
		if !strings.Contains(msgs[i], w) {
			t.Errorf("problem %d = %q, want it to name %q", i, msgs[i], w)
		}
	}
	// What parsed is still there, for check to resolve.
	if len(p.Files()) != 1 || !slices.Equal(p.EnvKeys(), []string{"OK"}) || len(p.Templates()) != 2 {
		t.Errorf("files %+v, env %v", p.Files(), p.EnvKeys())
	}
}

func TestRefreshWritesFilesAndBuildsEnv(t *testing.T) {
	dir := t.TempDir()
	src := writeFile(t, filepath.Join(dir, "db.tpl"), `password=<< passwork "prod/db" >>`)
	dst := filepath.Join(dir, "out", "db.conf")
	envFile := writeFile(t, filepath.Join(dir, "app.env"), "A=<< passwork \"env-file\" \"a\" >>\nB=from-file\n")
	p, problems := New(Config{
		Templates: []string{src + ":" + dst + ":0640"},
		EnvFiles:  []string{envFile},
		// Later definitions win: --env over env files over the environment.
		Env:       []string{"B=<< passwork \"flag\" \"b\" >>"},
		Environ:   []string{"HOME=/root", "PASSWORK_TOKEN=credential", "A=<< passwork \"inherited\" >>", "C=<< passwork \"c\" >>"},
		Delims:    delims,
		Providers: fakeSecrets(),
	})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	out, err := p.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(dst); err != nil || string(b) != "password=prod/db/password" {
		t.Errorf("%s = %q, %v", dst, b, err)
	}
	if st, err := os.Stat(dst); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, %v", st.Mode(), err)
	}
	wantEnv := []string{"HOME=/root", "C=c/password", "A=env-file/a", "B=flag/b"}
	if !slices.Equal(out.Env, wantEnv) || !out.EnvChanged || !slices.Equal(out.Changed, []string{dst}) || out.Refs != 4 {
		t.Errorf("outcome = %+v, want env %q", out, wantEnv)
	}

	// The same secrets again: nothing changed.
	out, err = p.Refresh(context.Background())
	if err != nil || out.EnvChanged || len(out.Changed) != 0 {
		t.Errorf("second refresh: %+v, %v", out, err)
	}
}

func TestRefreshFailureWritesNothing(t *testing.T) {
	dir := t.TempDir()
	src := writeFile(t, filepath.Join(dir, "a.tpl"), `<< passwork "a" >> << passwork "gone" >>`)
	dst := filepath.Join(dir, "a.out")
	p, problems := New(Config{Templates: []string{src + ":" + dst}, Delims: delims, Providers: fakeSecrets("gone")})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if _, err := p.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "a.tpl:1:") {
		t.Errorf("err = %v, want the position of the missing reference", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("output written after a failure: %v", err)
	}
}

// A PassAgent token without PASSAGENT_URL is refused before any request:
// there is no default host, so a self-hosted token never reaches the public
// service.
func TestPassAgentNeedsExplicitURL(t *testing.T) {
	var cfg ProviderConfig
	if err := envconfig.Load(&cfg, []string{"PASSAGENT_TOKEN=t", "PASSAGENT_MASTER_PASSWORD=m"}); err != nil {
		t.Fatal(err)
	}
	if cfg.PassAgent.URL != "" {
		t.Fatalf("PASSAGENT_URL defaults to %q, want no default", cfg.PassAgent.URL)
	}
	r := Providers(&cfg, fetch.Options{}, nil)
	_, err := r["passagent"].Resolve(context.Background(), []fetch.Ref{{Provider: "passagent", Path: "a", Field: "password"}})
	if err == nil || !strings.Contains(err.Error(), "PASSAGENT_URL is required") {
		t.Errorf("err = %v, want PASSAGENT_URL is required", err)
	}
}

func TestUnconfiguredProviderNamesSettings(t *testing.T) {
	r := Providers(&ProviderConfig{}, fetch.Options{}, nil)
	for name, want := range map[string]string{"passwork": "PASSWORK_URL", "passbolt": "PASSBOLT_URL", "passagent": "PASSAGENT_URL"} {
		_, err := r[name].Resolve(context.Background(), []fetch.Ref{{Provider: name, Path: "a", Field: "password"}})
		if err == nil || !strings.Contains(err.Error(), "not configured") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to name %s", name, err, want)
		}
	}
}
