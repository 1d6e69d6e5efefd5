package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/passagent/passagenttest"
	"github.com/injector-dev/injector/internal/fetch/passbolt/passbolttest"
	"github.com/injector-dev/injector/internal/fetch/passwork/passworktest"
	"github.com/injector-dev/injector/internal/metrics"
	"github.com/injector-dev/injector/internal/pipeline"
	"github.com/injector-dev/injector/internal/template"
)

// The leak canary: every provider is seeded with secrets that contain
// canary; every command, in success and in failure, at debug log level,
// must keep it out of stdout, stderr, error messages, metrics and every
// file but the intended outputs, which must be 0600.

// leakFixture is a fixture plus a way to break its emulator for good.
type leakFixture struct {
	*fixture
	get         string // a `get` reference to the first secret
	breakServer func()
}

func leakFixtures(t *testing.T) []leakFixture {
	pw, pwSrv := passworkFixture(t)
	pb, pbSrv := passboltFixture(t)
	pa, paSrv := passagentFixture(t)
	return []leakFixture{
		{pw, "passwork:prod/db/postgres", func() { pwSrv.AddFault(passworktest.Fault{Path: "/api/v1/items", Status: 500}) }},
		{pb, "passbolt:infra/db/postgres", func() { pbSrv.AddFault(passbolttest.Fault{Path: "/resources.json", Status: 500}) }},
		{pa, "passagent:postgres", func() { paSrv.AddFault(passagenttest.Fault{Path: "/api/passwords", Status: 500, Times: 100}) }},
	}
}

func TestLeakCanary(t *testing.T) {
	t.Parallel()
	for _, lf := range leakFixtures(t) {
		t.Run(lf.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tmp := filepath.Join(dir, "tmp") // the process's TMPDIR
			if err := os.Mkdir(tmp, 0o700); err != nil {
				t.Fatal(err)
			}
			env := append([]string{"TMPDIR=" + tmp, "INJECTOR_LOG_LEVEL=debug"}, lf.env...)
			src := writeFile(t, filepath.Join(dir, "app.tpl"), lf.tpl)
			out := filepath.Join(dir, "out", "app.conf")
			provider, path, _ := strings.Cut(lf.get, ":")
			ref := func(field string) string { return provider + ` "` + path + `" "` + field + `"` }
			// Templates that push a secret into an error message: sprig's
			// fail, and a decoder quoting its bad input.
			failing := writeFile(t, filepath.Join(dir, "failing.tpl"), "<< fail ("+ref("password")+") >>\n<< "+ref("password")+" | b64dec | fromJson >>\n")
			missing := writeFile(t, filepath.Join(dir, "missing.tpl"), "<< "+ref("no-such-field")+" >>\n<< "+provider+` "`+path+`-typo" >>`)

			type step struct {
				args     []string
				wantCode int
			}
			steps := []step{
				{[]string{"render", "-t", src + ":" + out}, 0},
				{[]string{"check", "-t", src + ":/dev/null"}, 0},
				{[]string{"run", "--env", "APP=" + lf.tpl, "-t", src + ":" + out, "--", "sh", "-c", `test -n "$APP"`}, 0},
				{[]string{"check", "-t", failing + ":/dev/null", "-t", missing + ":/dev/null"}, exitFailure},
				{[]string{"render", "-t", failing + ":" + filepath.Join(dir, "out", "failing.conf")}, exitFailure},
				{[]string{"run", "--env", "X=<< " + ref("no-such-field") + " >>", "--", "true"}, exitFailure},
				{[]string{"get", lf.get + "-typo"}, exitFailure},
				{[]string{"get", lf.get, "--field", "no-such-field"}, exitFailure},
			}
			for _, s := range steps {
				stdout, stderr, code := injector(t, env, s.args...)
				if code != s.wantCode {
					t.Errorf("%v: exit %d, want %d; stderr:\n%s", s.args[0], code, s.wantCode, stderr)
				}
				assertNoCanary(t, strings.Join(s.args[:1], " ")+" stdout", stdout)
				assertNoCanary(t, strings.Join(s.args[:1], " ")+" stderr", stderr)
				if (s.args[0] == "render" || s.args[0] == "run") && s.wantCode == 0 && !strings.Contains(stderr, `"level":`) {
					t.Errorf("%v: no log line to check:\n%s", s.args[0], stderr)
				}
			}
			// `get` prints the secret on stdout: that is its intended output.
			stdout, _, code := injector(t, env, "get", lf.get)
			if code != 0 || !strings.Contains(stdout, canary) {
				t.Errorf("get: exit %d; the canary test would not see a leak", code)
			}

			// A provider failure after success.
			lf.breakServer()
			_, stderr, code := injector(t, env, "render", "-t", src+":"+out)
			if code != exitFailure {
				t.Errorf("render against a broken server: exit %d", code)
			}
			assertNoCanary(t, "render stderr (server failing)", stderr)

			checkOutput(t, out, lf.want)
			if leaked := filesWithCanary(t, dir, out); len(leaked) > 0 {
				t.Errorf("secrets written outside the outputs: %v", leaked)
			}
		})
	}
}

// TestLeakCanaryMetrics scrapes the metrics the daemon serves after
// successful and failed refreshes of every provider.
func TestLeakCanaryMetrics(t *testing.T) {
	t.Parallel()
	m := metrics.New("test")
	opt := fetch.Options{Observe: m.Observer(), MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}
	dir := t.TempDir()
	for _, lf := range leakFixtures(t) {
		src := writeFile(t, filepath.Join(dir, lf.name+".tpl"), lf.tpl)
		dst := filepath.Join(dir, lf.name+".conf")
		p, problems := pipeline.New(pipeline.Config{
			Templates: []string{src + ":" + dst}, Delims: template.DefaultDelims,
			Providers: pipeline.Providers(&lf.cfg, opt, nil),
		})
		if len(problems) > 0 {
			t.Fatal(problems)
		}
		res, err := p.Refresh(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", lf.name, err)
		}
		m.Rendered(dst, metrics.ResultChanged)
		m.Succeeded(time.Now(), res.Refs)
		lf.breakServer()
		if _, err := p.Refresh(context.Background()); err == nil {
			t.Fatalf("%s: refresh against a broken server succeeded", lf.name)
		} else {
			assertNoCanary(t, lf.name+" error", err.Error())
		}
		m.Rendered(dst, metrics.ResultError)
	}
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `status="500"`) {
		t.Errorf("metrics lack the failed requests; is this the right output?\n%s", body)
	}
	assertNoCanary(t, "metrics", string(body))
}
