package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passagent/passagenttest"
	"github.com/injector-dev/injector/internal/fetch/passbolt/passbolttest"
	"github.com/injector-dev/injector/internal/fetch/passwork/passworktest"
	"github.com/injector-dev/injector/internal/pipeline"
)

// fixture is one seeded emulator with two canary secrets, and what a
// template over both renders to. Tests run the same scenario against every
// provider through it.
type fixture struct {
	name string
	cfg  pipeline.ProviderConfig // for in-process pipelines
	env  []string                // for the injector process
	tpl  string                  // references both secrets
	want string                  // tpl rendered
	// secrets are the seeded values, each containing canary.
	secrets []string
	// requests counts the HTTP requests the emulator received.
	requests func() int
}

// fixtureSecrets are the values every fixture seeds. They contain canary,
// so any of them in a log line, error or stray file is caught.
var fixtureSecrets = []string{"db-" + canary, "api-" + canary}

func passworkFixture(t *testing.T) (*fixture, *passworktest.Server) {
	t.Helper()
	srv, env := passworkEnv(t) // seeds prod/db/postgres and prod/api/stripe
	cfg := srv.Config()
	return &fixture{
		name: "passwork", cfg: pipeline.ProviderConfig{Passwork: cfg}, env: env,
		tpl:     `db=<< passwork "prod/db/postgres" >> api=<< passwork "prod/api/stripe" >>`,
		want:    "db=pg-" + canary + " api=sk-" + canary,
		secrets: []string{"pg-" + canary, "sk-" + canary}, requests: srv.Requests,
	}, srv
}

func passboltFixture(t *testing.T) (*fixture, *passbolttest.Server) {
	t.Helper()
	srv, err := passbolttest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if err := srv.Seed([]fetchtest.Entry{
		{Path: "infra/db/postgres", Fields: map[string]string{"password": fixtureSecrets[0], "username": "app"}},
		{Path: "infra/api/stripe", Fields: map[string]string{"password": fixtureSecrets[1]}},
	}); err != nil {
		t.Fatal(err)
	}
	c := srv.Config()
	return &fixture{
		name: "passbolt", cfg: pipeline.ProviderConfig{Passbolt: c},
		env: []string{"PASSBOLT_URL=" + c.URL, "PASSBOLT_USER_ID=" + c.UserID, "PASSBOLT_PRIVATE_KEY=" + c.PrivateKey,
			"PASSBOLT_PASSPHRASE=" + c.Passphrase, "PASSBOLT_SERVER_FINGERPRINT=" + c.ServerFingerprint},
		tpl:     `db=<< passbolt "infra/db/postgres" >> api=<< passbolt "infra/api/stripe" >>`,
		want:    "db=" + fixtureSecrets[0] + " api=" + fixtureSecrets[1],
		secrets: fixtureSecrets, requests: srv.Requests,
	}, srv
}

// passagentServer starts a PassAgent emulator with a fast KDF and no rate
// limits (opt may set the rest) and seeds it with entries.
func passagentServer(t *testing.T, opt passagenttest.Options, entries ...fetchtest.Entry) *passagenttest.Server {
	t.Helper()
	opt.KDF, opt.CRUDLimit, opt.RevealLimit = passagenttest.FastKDF(), -1, -1
	srv, err := passagenttest.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if err := srv.Seed(entries); err != nil {
		t.Fatal(err)
	}
	return srv
}

func passagentFixture(t *testing.T) (*fixture, *passagenttest.Server) {
	t.Helper()
	srv := passagentServer(t, passagenttest.Options{},
		fetchtest.Entry{Path: "postgres", Fields: map[string]string{"password": fixtureSecrets[0], "username": "app"}},
		fetchtest.Entry{Path: "stripe", Fields: map[string]string{"password": fixtureSecrets[1]}})
	c := srv.Config()
	return &fixture{
		name: "passagent", cfg: pipeline.ProviderConfig{PassAgent: c},
		env:     []string{"PASSAGENT_URL=" + c.URL, "PASSAGENT_TOKEN=" + c.Token, "PASSAGENT_MASTER_PASSWORD=" + c.MasterPassword},
		tpl:     `db=<< passagent "postgres" >> api=<< passagent "stripe" >>`,
		want:    "db=" + fixtureSecrets[0] + " api=" + fixtureSecrets[1],
		secrets: fixtureSecrets, requests: srv.Requests,
	}, srv
}

// assertNoCanary fails if s (named what, for the message) contains the
// canary.
func assertNoCanary(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, canary) {
		t.Errorf("%s leaks a secret:\n%s", what, s)
	}
}

// filesWithCanary walks root and returns every regular file that contains
// the canary, except those in allowed.
func filesWithCanary(t *testing.T, root string, allowed ...string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		for _, a := range allowed {
			if path == a {
				return nil
			}
		}
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), canary) {
			found = append(found, path)
		}
		return nil
	})
	return found
}
