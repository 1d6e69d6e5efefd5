package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	pwcrypto "github.com/injector-dev/injector/internal/crypto/passwork"
	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passagent/passagenttest"
	"github.com/injector-dev/injector/internal/fetch/passwork/passworktest"
	"github.com/injector-dev/injector/internal/metrics"
	"github.com/injector-dev/injector/internal/pipeline"
	"github.com/injector-dev/injector/internal/template"
)

// cacheCase is one provider set-up for the ciphertext cache tests: a
// fixture, what must never be in the cache (seeded values, credentials,
// keys, issued tokens), a way to stop its server and the settings that
// make it refuse us.
type cacheCase struct {
	*fixture
	forbidden func() []string // read after the runs: tokens issued meanwhile
	stop      func()
	badCreds  []string // env overrides the server rejects with 401/403
	wrongKey  []string // env overrides whose key does not open the cached ciphertext
	// wrongKeyError is what the failure with wrongKey says.
	wrongKeyError string
}

// cacheProviders are the set-ups newCacheCase knows: every provider, and
// the other login of those that have two.
var cacheProviders = []string{"passwork", "passwork-v4", "passbolt", "passbolt-gpgauth", "passagent"}

// newCacheCase starts a fresh emulator for the set-up name.
func newCacheCase(t *testing.T, name string) cacheCase {
	switch name {
	case "passwork", "passwork-v4":
		f, srv := passworkFixture(t)
		c, c4 := srv.Config(), srv.ConfigV4()
		otherKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 64))
		cc := cacheCase{fixture: f, stop: srv.Close, badCreds: []string{"PASSWORK_TOKEN=not-the-token"},
			wrongKey: []string{"PASSWORK_MASTER_KEY=" + otherKey}, wrongKeyError: "invalid master key",
			forbidden: func() []string {
				return append(srv.Issued(), c.Token, c.RefreshToken, c.MasterKey, c4.APIKey,
					pwcrypto.MasterKeyHash(c.MasterKey), pwcrypto.MasterKeyHashMD5(c.MasterKey))
			}}
		if name == "passwork-v4" {
			f.name = name
			f.env = []string{"PASSWORK_URL=" + c4.URL, "PASSWORK_API=v4", "PASSWORK_API_KEY=" + c4.APIKey, "PASSWORK_MASTER_KEY=" + c4.MasterKey}
			cc.badCreds = []string{"PASSWORK_API_KEY=not-the-key"}
		}
		return cc
	case "passbolt", "passbolt-gpgauth":
		f, srv := passboltFixture(t)
		if name == "passbolt-gpgauth" {
			f.name = name
			f.env = append([]string{"PASSBOLT_AUTH=gpgauth"}, f.env...)
		}
		c := srv.Config()
		return cacheCase{fixture: f, stop: srv.Close,
			badCreds: []string{"PASSBOLT_USER_ID=00000000-0000-4000-8000-000000000000"},
			wrongKey: []string{"PASSBOLT_PASSPHRASE=not-the-passphrase"}, wrongKeyError: "wrong passphrase",
			forbidden: func() []string {
				out := append(srv.Issued(), c.Passphrase)
				for _, line := range strings.Split(c.PrivateKey, "\n") {
					if len(line) > 40 { // the armored key's lines, any of them
						out = append(out, line)
					}
				}
				return out
			}}
	case "passagent":
		f, srv := passagentFixture(t)
		c := srv.Config()
		return cacheCase{fixture: f, stop: srv.Close, badCreds: []string{"PASSAGENT_TOKEN=not-the-token"},
			wrongKey: []string{"PASSAGENT_MASTER_PASSWORD=not-the-password"}, wrongKeyError: "wrong master password",
			forbidden: func() []string { return []string{c.Token, c.MasterPassword, srv.VaultKey()} }}
	}
	t.Fatalf("no cache case %q", name)
	return cacheCase{}
}

// TestCacheServesDuringOutage is the cache's whole story per provider: a
// run with the server up fills the cache with ciphertext only; wrong
// credentials never fall back to it; with the server stopped a warm cache
// renders the same output, with a warning, while a cold or expired one
// fails as injector does without a cache.
func TestCacheServesDuringOutage(t *testing.T) {
	t.Parallel()
	for _, name := range cacheProviders {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cc := newCacheCase(t, name)
			dir := t.TempDir()
			cacheDir := filepath.Join(dir, "cache")
			src := writeFile(t, filepath.Join(dir, "app.tpl"), cc.tpl)
			env := append([]string{"INJECTOR_RETRY_BASE_DELAY=5ms", "INJECTOR_HTTP_TIMEOUT=5s"}, cc.env...)
			render := func(env []string, out string, args ...string) (string, int) {
				t.Helper()
				_, stderr, code := injector(t, env, append([]string{"render", "-t", src + ":" + out}, args...)...)
				assertNoCanary(t, "stderr", stderr)
				return stderr, code
			}

			out := filepath.Join(dir, "warm.out")
			if stderr, code := render(env, out, "--cache-dir", cacheDir); code != 0 {
				t.Fatalf("render with the server up: exit %d\n%s", code, stderr)
			}
			checkOutput(t, out, cc.want)
			checkCacheDir(t, cacheDir)

			// Wrong credentials are the server's answer, not an outage.
			bad := append(append([]string{}, env...), cc.badCreds...)
			if stderr, code := render(bad, filepath.Join(dir, "bad.out"), "--cache-dir", cacheDir); code == 0 || strings.Contains(stderr, "ciphertext cache") {
				t.Errorf("wrong credentials: exit %d, want a failure that does not use the cache:\n%s", code, stderr)
			}

			// A bulk selection (--env-from) in its own cache: warm with the
			// server up, then from the cache with the server down.
			var envFrom func() (string, int)
			if sel := map[string]string{"passwork": "passwork:prod/db", "passwork-v4": "passwork:prod/db",
				"passbolt": "passbolt:infra/db", "passbolt-gpgauth": "passbolt:infra/db"}[name]; sel != "" {
				envFrom = func() (string, int) {
					_, stderr, code := injector(t, env, "run", "--cache-dir", filepath.Join(dir, "envfrom"), "--env-from", sel,
						"--", "sh", "-c", "env | grep -q -- "+canary)
					return stderr, code
				}
				if stderr, code := envFrom(); code != 0 {
					t.Fatalf("run --env-from %s with the server up: exit %d\n%s", sel, code, stderr)
				}
			}

			cc.stop()
			if envFrom != nil {
				if stderr, code := envFrom(); code != 0 || !strings.Contains(stderr, "resolving from the ciphertext cache") {
					t.Errorf("run --env-from from the cache with the server down: exit %d\n%s", code, stderr)
				}
			}
			out = filepath.Join(dir, "offline.out")
			stderr, code := render(env, out, "--cache-dir", cacheDir)
			if code != 0 {
				t.Fatalf("render from the warm cache with the server down: exit %d\n%s", code, stderr)
			}
			checkOutput(t, out, cc.want)
			if !strings.Contains(stderr, "server unavailable: resolving from the ciphertext cache") {
				t.Errorf("no warning that the cache was used:\n%s", stderr)
			}

			// A key that does not open what the cache holds fails; it
			// never renders what a wrong key makes of the ciphertext.
			out = filepath.Join(dir, "wrongkey.out")
			wrong := append(append([]string{}, env...), cc.wrongKey...)
			if stderr, code := render(wrong, out, "--cache-dir", cacheDir); code == 0 || !strings.Contains(stderr, cc.wrongKeyError) {
				t.Errorf("wrong key with the server down: exit %d, want a failure saying %q\n%s", code, cc.wrongKeyError, stderr)
			}

			// The same with the setting instead of the flag, and the
			// cache past its maximum age: a failure, nothing written.
			out = filepath.Join(dir, "expired.out")
			if stderr, code := render(append([]string{"INJECTOR_CACHE_DIR=" + cacheDir, "INJECTOR_CACHE_MAX_AGE=1ns"}, env...), out); code != exitFailure {
				t.Errorf("render from an expired cache: exit %d, want %d\n%s", code, exitFailure, stderr)
			} else if !strings.Contains(stderr, "maximum age") {
				t.Errorf("the error does not say the cache is too old:\n%s", stderr)
			}
			out = filepath.Join(dir, "cold.out")
			if stderr, code := render(env, out, "--cache-dir", filepath.Join(dir, "cold")); code != exitFailure {
				t.Errorf("render from a cold cache: exit %d, want %d\n%s", code, exitFailure, stderr)
			}
			for _, name := range []string{"wrongkey.out", "expired.out", "cold.out"} {
				if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
					t.Errorf("%s written by a failed render (%v)", name, err)
				}
			}

			// The leak check, after every run: not one seeded value,
			// credential, key or issued token in the cache.
			forbidden := append(cc.forbidden(), canary)
			filepath.WalkDir(cacheDir, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range forbidden {
					if f != "" && bytes.Contains(data, []byte(f)) {
						t.Errorf("%s holds a secret, key or token (%d bytes of it)", path, len(f))
					}
				}
				return nil
			})
		})
	}
}

// checkCacheDir checks the cache directory is 0700 and holds only 0600
// files, at least one.
func checkCacheDir(t *testing.T, dir string) {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("cache dir mode %v, want 0700", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("cache dir empty after a successful render (%v)", err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if !info.Mode().IsRegular() || info.Mode().Perm() != 0o600 {
			t.Errorf("cache file %s: mode %v, want a regular file of mode 0600", e.Name(), info.Mode())
		}
	}
}

// TestRefresherReportsCache: in daemon mode, a refresh served from the
// cache reaches /readyz and the metrics, and the next one with the server
// back clears it.
func TestRefresherReportsCache(t *testing.T) {
	t.Parallel()
	f, srv := passagentFixture(t)
	dir := t.TempDir()
	m := metrics.New("test")
	opt := fetch.Options{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}
	s := &settings{CacheDir: filepath.Join(dir, "cache")}
	var logs bytes.Buffer
	cd, err := (&cacheOptions{}).open(s, &opt, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	src := writeFile(t, filepath.Join(dir, "app.tpl"), f.tpl)
	p, problems := pipeline.New(pipeline.Config{
		Templates: []string{src + ":" + filepath.Join(dir, "app.out")}, Delims: template.DefaultDelims,
		Providers: pipeline.Providers(&f.cfg, opt, nil),
	})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	r := &refresher{p: p, cache: cd, m: m}
	if _, err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w := m.Warnings(); len(w) != 0 {
		t.Errorf("warnings with the server up: %q", w)
	}
	srv.AddFault(passagenttest.Fault{Path: "/api/passwords", Status: 503, Times: 100})
	if _, err := r.Refresh(context.Background()); err != nil {
		t.Fatalf("refresh from the cache: %v", err)
	}
	if w := m.Warnings(); len(w) != 1 || !strings.Contains(w[0], "passagent: server unavailable") {
		t.Errorf("warnings with the server down: %q", w)
	}
	if !strings.Contains(logs.String(), "resolving from the ciphertext cache") {
		t.Errorf("no warning logged:\n%s", logs.String())
	}
	srv.ClearFaults()
	if _, err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w := m.Warnings(); len(w) != 0 {
		t.Errorf("warnings after the server came back: %q", w)
	}
}

// TestCacheKeepsNoUnencryptedEntry: a Passwork vault with client-side
// encryption off sends values base64-encoded; a run that reads one keeps
// no Passwork response at all, and says why.
func TestCacheKeepsNoUnencryptedEntry(t *testing.T) {
	t.Parallel()
	srv := passworktest.NewServer(passworktest.WithPlainVaults("plain"))
	t.Cleanup(srv.Close)
	if err := srv.Seed([]fetchtest.Entry{
		{Path: "prod/db/postgres", Fields: map[string]string{"password": "pg-" + canary}},
		{Path: "plain/legacy", Fields: map[string]string{"password": "plain-" + canary}},
	}); err != nil {
		t.Fatal(err)
	}
	c := srv.Config()
	env := []string{"PASSWORK_URL=" + c.URL, "PASSWORK_TOKEN=" + c.Token, "PASSWORK_MASTER_KEY=" + c.MasterKey}
	dir := t.TempDir()
	cacheDir := filepath.Join(dir, "cache")
	both := writeFile(t, filepath.Join(dir, "both.tpl"), `<< passwork "prod/db/postgres" >> << passwork "plain/legacy" >>`)
	encrypted := writeFile(t, filepath.Join(dir, "encrypted.tpl"), `<< passwork "prod/db/postgres" >>`)
	cacheFile := filepath.Join(cacheDir, "passwork.cache")

	if _, stderr, code := injector(t, env, "render", "--cache-dir", cacheDir, "-t", encrypted+":"+filepath.Join(dir, "1.out")); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(cacheFile); err != nil {
		t.Fatalf("encrypted entries only, yet no cache: %v", err)
	}
	_, stderr, code := injector(t, env, "render", "--cache-dir", cacheDir, "-t", both+":"+filepath.Join(dir, "2.out"))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "not keeping passwork responses") || !strings.Contains(stderr, "without client-side encryption") {
		t.Errorf("no warning that nothing is kept:\n%s", stderr)
	}
	if _, err := os.Stat(cacheFile); !os.IsNotExist(err) {
		t.Errorf("passwork.cache kept after a run that read an unencrypted entry (%v)", err)
	}
	if leaked := filesWithCanary(t, cacheDir); len(leaked) > 0 {
		t.Errorf("cache holds a secret: %v", leaked)
	}
}
