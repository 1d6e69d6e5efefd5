package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/passagent/passagenttest"
	"github.com/injector-dev/injector/internal/fetch/passbolt/passbolttest"
	"github.com/injector-dev/injector/internal/fetch/passwork/passworktest"
	"github.com/injector-dev/injector/internal/pipeline"
	"github.com/injector-dev/injector/internal/template"
)

// Fault injection: every provider's emulator misbehaves in each of the ways
// a real server does, between two good refresh cycles of the same pipeline
// the daemon uses. A fault must end as a clear error or a successful retry;
// a failed cycle must leave the last good output untouched and write no
// other file; the next cycle after the fault clears must recover.

// faultCase is one misbehaviour, installed on a running emulator.
type faultCase struct {
	name string
	// inject installs the fault; clear removes it (nil: the fault is used
	// up by itself).
	inject, clear func()
	// cfg, if set, changes the configuration for the faulty cycle only.
	cfg func(*pipeline.ProviderConfig)
	// wantErr is a substring of the expected error, or several separated
	// by "|" of which one must appear; "" means the fault is
	// retried or recovered from and the cycle succeeds.
	wantErr string
}

// clientTimeout bounds each attempt in these tests; slow faults exceed it.
const clientTimeout = 300 * time.Millisecond

const slow = 5 * time.Second // longer than clientTimeout × attempts

// timedOut matches the ways net/http words a timed-out request.
const timedOut = "deadline exceeded|Client.Timeout exceeded"

// maxAttempts is the retrying transport's attempt limit in these tests.
const maxAttempts = 3

func passworkFaults(t *testing.T, srv *passworktest.Server) []faultCase {
	add := func(f passworktest.Fault) func() { return func() { srv.AddFault(f) } }
	other := passworktest.NewServer()
	t.Cleanup(other.Close)
	return []faultCase{
		// First: a second pipeline starts from the configured token pair,
		// which the refresh in the next case rotates away.
		{name: "wrong master key", cfg: func(c *pipeline.ProviderConfig) { c.Passwork.MasterKey = other.Config().MasterKey }, wantErr: "invalid master key"},
		{name: "401 expired token is refreshed", inject: srv.ExpireAccessTokens},
		{name: "429 once is retried", inject: add(passworktest.Fault{Status: 429, RetryAfter: "0", Times: 1})},
		{name: "503 once is retried", inject: add(passworktest.Fault{Status: 503, Times: 1})},
		{name: "500", inject: add(passworktest.Fault{Path: "/api/v1/", Status: 500}), clear: srv.ClearFaults, wantErr: "HTTP 500"},
		{name: "503 persists", inject: add(passworktest.Fault{Status: 503}), clear: srv.ClearFaults, wantErr: "HTTP 503"},
		{name: "timeout", inject: add(passworktest.Fault{Delay: slow}), clear: srv.ClearFaults, wantErr: timedOut},
		{name: "garbage JSON", inject: add(passworktest.Fault{Path: "/api/v1/", Body: "<html>oops</html>"}), clear: srv.ClearFaults, wantErr: "passwork"},
		{name: "truncated JSON", inject: add(passworktest.Fault{Path: "/api/v1/", Body: `{"items":[{"id":"6650`}), clear: srv.ClearFaults, wantErr: "passwork"},
	}
}

func passboltFaults(t *testing.T, srv *passbolttest.Server) []faultCase {
	add := func(f passbolttest.Fault) func() { return func() { srv.AddFault(f) } }
	other, err := passbolttest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	return []faultCase{
		{name: "401 expired token is refreshed", inject: srv.ExpireAccessTokens},
		{name: "401 revoked refresh token logs in again", inject: func() { srv.ExpireAccessTokens(); srv.RevokeRefreshTokens() }},
		{name: "429 once is retried", inject: add(passbolttest.Fault{Path: "/folders.json", Status: 429, RetryAfter: "0", Times: 1})},
		{name: "503 once is retried", inject: add(passbolttest.Fault{Path: "/resources.json", Status: 503, Times: 1})},
		{name: "500", inject: add(passbolttest.Fault{Path: "/resources.json", Status: 500}), clear: srv.ClearFaults, wantErr: "HTTP 500"},
		{name: "503 persists", inject: add(passbolttest.Fault{Path: "/folders.json", Status: 503}), clear: srv.ClearFaults, wantErr: "HTTP 503"},
		{name: "timeout", inject: add(passbolttest.Fault{Delay: slow}), clear: srv.ClearFaults, wantErr: timedOut},
		{name: "truncated JSON", inject: add(passbolttest.Fault{Path: "/resources.json", Malformed: true}), clear: srv.ClearFaults, wantErr: "not a Passbolt JSON envelope"},
		{name: "wrong private key", cfg: func(c *pipeline.ProviderConfig) { c.Passbolt.PrivateKey = other.Config().PrivateKey }, wantErr: "passbolt"},
	}
}

func passagentFaults(t *testing.T, srv *passagenttest.Server) []faultCase {
	add := func(f passagenttest.Fault) func() { return func() { srv.AddFault(f) } }
	return []faultCase{
		{name: "401 expired token", inject: add(passagenttest.Fault{Path: "/api/passwords", Status: 401, Times: 1}), wantErr: "token expired or invalid"},
		{name: "429 once is retried", inject: add(passagenttest.Fault{Path: "/api/passwords", Status: 429, RetryAfter: "0", Times: 1})},
		{name: "503 once is retried", inject: add(passagenttest.Fault{Path: "/api/passwords", Status: 503, Times: 1})},
		// PassAgent faults are counted, not cleared: Times is what the
		// client's attempts use up (not retried: 1; retried: maxAttempts).
		{name: "500", inject: add(passagenttest.Fault{Path: "/api/passwords", Status: 500, Times: 1}), wantErr: "HTTP 500"},
		{name: "503 persists", inject: add(passagenttest.Fault{Path: "/api/passwords", Status: 503, Times: maxAttempts}), wantErr: "HTTP 503"},
		{name: "timeout", inject: add(passagenttest.Fault{Path: "/api/passwords", Delay: slow, Times: maxAttempts}), wantErr: timedOut},
		{name: "garbage JSON", inject: add(passagenttest.Fault{Path: "/api/passwords", Body: "<html>oops</html>", Times: 1}), wantErr: "passagent"},
		{name: "truncated JSON", inject: add(passagenttest.Fault{Path: "/api/passwords", Body: `{"data":[{"id":"`, Times: 1}), wantErr: "passagent"},
		{name: "wrong master password", cfg: func(c *pipeline.ProviderConfig) { c.PassAgent.MasterPassword = "not the master password" }, wantErr: "wrong master password"},
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	type setup func(t *testing.T) (*fixture, []faultCase)
	for _, p := range []struct {
		name  string
		setup setup
	}{
		{"passwork", func(t *testing.T) (*fixture, []faultCase) {
			f, srv := passworkFixture(t)
			return f, passworkFaults(t, srv)
		}},
		{"passbolt", func(t *testing.T) (*fixture, []faultCase) {
			f, srv := passboltFixture(t)
			return f, passboltFaults(t, srv)
		}},
		{"passagent", func(t *testing.T) (*fixture, []faultCase) {
			f, srv := passagentFixture(t)
			return f, passagentFaults(t, srv)
		}},
	} {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			fx, cases := p.setup(t)
			opt := fetch.Options{
				Client:      &http.Client{Timeout: clientTimeout},
				MaxAttempts: maxAttempts, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond,
			}
			dir := t.TempDir()
			src := writeFile(t, filepath.Join(dir, "app.tpl"), fx.tpl)
			dst := filepath.Join(dir, "out", "app.conf")
			newPipeline := func(cfg pipeline.ProviderConfig) *pipeline.Pipeline {
				p, problems := pipeline.New(pipeline.Config{
					Templates: []string{src + ":" + dst}, Delims: template.DefaultDelims,
					Providers: pipeline.Providers(&cfg, opt, nil),
				})
				if len(problems) > 0 {
					t.Fatal(problems)
				}
				return p
			}
			// One long-lived pipeline, as in daemon mode: provider state
			// (tokens, keys) carries over from cycle to cycle.
			daemon := newPipeline(fx.cfg)
			refresh := func(p *pipeline.Pipeline) error {
				_, err := p.Refresh(context.Background())
				return err
			}
			if err := refresh(daemon); err != nil {
				t.Fatalf("first cycle: %v", err)
			}
			checkOutput(t, dst, fx.want)

			for _, fc := range cases {
				t.Run(fc.name, func(t *testing.T) {
					const lastGood = "last good output"
					writeFile(t, dst, lastGood)
					p := daemon
					if fc.cfg != nil {
						cfg := fx.cfg
						fc.cfg(&cfg)
						p = newPipeline(cfg)
					}
					if fc.inject != nil {
						fc.inject()
					}
					err := refresh(p)
					if fc.clear != nil {
						fc.clear()
					}
					switch {
					case fc.wantErr == "" && err != nil:
						t.Errorf("cycle failed, want the fault retried: %v", err)
					case fc.wantErr == "":
						checkOutput(t, dst, fx.want)
					case err == nil:
						t.Errorf("cycle succeeded, want an error with %q", fc.wantErr)
					default:
						t.Logf("error: %v", err)
						if !containsAny(err.Error(), strings.Split(fc.wantErr, "|")) {
							t.Errorf("error %q does not say %q", err, fc.wantErr)
						}
						assertNoCanary(t, "error", err.Error())
						checkOutput(t, dst, lastGood)
					}
					checkOnlyOutput(t, filepath.Dir(dst), dst)
					// The next cycle recovers.
					if err := refresh(daemon); err != nil {
						t.Fatalf("cycle after the fault cleared: %v", err)
					}
					checkOutput(t, dst, fx.want)
				})
			}
		})
	}
}

// checkOutput asserts dst holds want with mode 0600.
func checkOutput(t *testing.T, dst, want string) {
	t.Helper()
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("%s holds %q, want %q", filepath.Base(dst), b, want)
	}
	if st, err := os.Stat(dst); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600 (%v)", filepath.Base(dst), st.Mode().Perm(), err)
	}
}

// checkOnlyOutput asserts dir holds no file but dst: no temp file left from
// an aborted write.
func checkOnlyOutput(t *testing.T, dir, dst string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if filepath.Join(dir, e.Name()) != dst {
			t.Errorf("stray file %s next to the output", e.Name())
		}
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestFaultsCLI runs the injector process itself against failing
// emulators, with its default retry settings: a transient 503 is retried
// to success, a 500 fails with exit 1, a clear message and no output file.
func TestFaultsCLI(t *testing.T) {
	t.Parallel()
	for _, p := range []struct {
		name string
		// setup returns the fixture and installs nothing; transient and
		// broken install the faults.
		setup   func(t *testing.T) (fx *fixture, transient, broken func())
		wantErr string
	}{
		{"passwork", func(t *testing.T) (*fixture, func(), func()) {
			fx, srv := passworkFixture(t)
			return fx, func() {
					srv.AddFault(passworktest.Fault{Path: "/api/v1/items", Status: 503, RetryAfter: "0", Times: 1})
				},
				func() { srv.AddFault(passworktest.Fault{Path: "/api/v1/items", Status: 500}) }
		}, "passwork: GET /api/v1/items/search: HTTP 500"},
		{"passbolt", func(t *testing.T) (*fixture, func(), func()) {
			fx, srv := passboltFixture(t)
			return fx, func() {
					srv.AddFault(passbolttest.Fault{Path: "/resources.json", Status: 503, RetryAfter: "0", Times: 1})
				},
				func() { srv.AddFault(passbolttest.Fault{Path: "/resources.json", Status: 500}) }
		}, "passbolt: GET /resources.json: HTTP 500"},
		{"passagent", func(t *testing.T) (*fixture, func(), func()) {
			fx, srv := passagentFixture(t)
			return fx, func() {
					srv.AddFault(passagenttest.Fault{Path: "/api/passwords", Status: 503, RetryAfter: "0", Times: 1})
				},
				func() { srv.AddFault(passagenttest.Fault{Path: "/api/passwords", Status: 500, Times: 1}) }
		}, "passagent: GET /api/passwords: HTTP 500"},
	} {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			fx, transient, broken := p.setup(t)
			dir := t.TempDir()
			src := writeFile(t, filepath.Join(dir, "app.tpl"), fx.tpl)

			transient()
			dst := filepath.Join(dir, "retried.conf")
			_, stderr, code := injector(t, fx.env, "render", "-t", src+":"+dst)
			if code != 0 {
				t.Fatalf("transient 503: exit %d: %s", code, stderr)
			}
			checkOutput(t, dst, fx.want)

			broken()
			dst = filepath.Join(dir, "failed.conf")
			_, stderr, code = injector(t, fx.env, "render", "-t", src+":"+dst)
			if code != exitFailure || !strings.Contains(stderr, p.wantErr) {
				t.Errorf("500: exit %d, want %d and %q; stderr:\n%s", code, exitFailure, p.wantErr, stderr)
			}
			if _, err := os.Stat(dst); !os.IsNotExist(err) {
				t.Errorf("output written after a failure: %v", err)
			}
			assertNoCanary(t, "stderr", stderr)
		})
	}
}
