package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passagent/passagenttest"
)

// sessionCase is a provider set-up whose login opens a server session,
// with the emulator's count of logouts and of sessions still live.
type sessionCase struct {
	name           string
	env            []string
	tpl, want      string
	logouts, live  func() int
	sessionsPerRun int // sessions a run opens (GPGAuth: one; JWT: one refresh token)
}

func sessionCases(t *testing.T) []sessionCase {
	var out []sessionCase
	for _, auth := range []string{"jwt", "gpgauth"} {
		f, srv := passboltFixture(t)
		out = append(out, sessionCase{name: "passbolt-" + auth, env: append([]string{"PASSBOLT_AUTH=" + auth}, f.env...),
			tpl: f.tpl, want: f.want, logouts: srv.Logouts, live: srv.LiveSessions})
	}
	f, srv := passworkFixture(t)
	c4 := srv.ConfigV4()
	out = append(out, sessionCase{name: "passwork-v4",
		env: []string{"PASSWORK_URL=" + c4.URL, "PASSWORK_API=v4", "PASSWORK_API_KEY=" + c4.APIKey, "PASSWORK_MASTER_KEY=" + c4.MasterKey},
		tpl: f.tpl, want: f.want, logouts: srv.Logouts, live: srv.LiveV4Sessions})
	return out
}

// TestOneShotEndsItsSession: every one-shot command (render, run, check,
// get, also when the render fails) ends the session it opened: no
// init container leaves a live login behind.
func TestOneShotEndsItsSession(t *testing.T) {
	t.Parallel()
	for _, sc := range sessionCases(t) {
		t.Run(sc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := writeFile(t, filepath.Join(dir, "app.tpl"), sc.tpl)
			broken := writeFile(t, filepath.Join(dir, "broken.tpl"), sc.tpl+strings.Replace(sc.tpl, `" >>`, `-missing" >>`, 1))
			provider, _, _ := strings.Cut(strings.TrimPrefix(sc.tpl, "db=<< "), " ")
			path := strings.Split(sc.tpl, `"`)[1]
			steps := []struct {
				args []string
				code int
			}{
				{[]string{"render", "-t", src + ":" + filepath.Join(dir, "out")}, 0},
				{[]string{"render", "-t", broken + ":" + filepath.Join(dir, "broken.out")}, exitFailure},
				{[]string{"run", "--env", "X=" + sc.tpl, "--", "true"}, 0},
				{[]string{"run", "--listen", "127.0.0.1:0", "--env", "X=" + sc.tpl, "--", "true"}, 0},
				{[]string{"check", "-t", src + ":/dev/null"}, 0},
				{[]string{"get", provider + ":" + path}, 0},
			}
			for i, s := range steps {
				_, stderr, code := injector(t, sc.env, s.args...)
				if code != s.code {
					t.Fatalf("%v: exit %d, want %d\n%s", s.args, code, s.code, stderr)
				}
				if got := sc.logouts(); got != i+1 {
					t.Errorf("after %v: %d logouts, want %d", s.args[:1], got, i+1)
				}
				if got := sc.live(); got != 0 {
					t.Errorf("after %v: %d sessions still live\n%s", s.args[:1], got, stderr)
				}
			}
			checkOutput(t, filepath.Join(dir, "out"), sc.want)
		})
	}
}

// TestDaemonKeepsOneSessionAndEndsItOnExit: refreshes reuse one login;
// SIGTERM ends it.
func TestDaemonKeepsOneSessionAndEndsItOnExit(t *testing.T) {
	t.Parallel()
	for _, sc := range sessionCases(t) {
		t.Run(sc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := writeFile(t, filepath.Join(dir, "app.tpl"), sc.tpl)
			out := filepath.Join(dir, "out")
			p := startInjector(t, sc.env, "render", "--interval", "50ms", "--min-interval", "0", "-t", src+":"+out)
			eventually(t, "the first render", fileIs(out, sc.want))
			eventually(t, "three refreshes", func() bool { return strings.Count(p.stderr.String(), `"message":"refreshed"`) >= 3 })
			if got := sc.live(); got != 1 {
				t.Errorf("%d live sessions after several refreshes, want the daemon's one", got)
			}
			if got := sc.logouts(); got != 0 {
				t.Errorf("%d logouts while running", got)
			}
			p.cmd.Process.Signal(syscall.SIGTERM)
			if code := p.wait(t); code != 0 {
				t.Errorf("exit %d after SIGTERM", code)
			}
			if got := sc.logouts(); got != 1 {
				t.Errorf("%d logouts after exit, want 1", got)
			}
			if got := sc.live(); got != 0 {
				t.Errorf("%d sessions live after exit", got)
			}
		})
	}
}

// TestCredentialExpiryIsVisible: a PassAgent token (a Supabase JWT, which
// injector cannot refresh) that expires in two hours shows in the log with
// the time left, in /readyz as a warning (the pod stays ready) and as a
// metric, before the outage rather than after it.
func TestCredentialExpiryIsVisible(t *testing.T) {
	t.Parallel()
	srv := passagentServer(t, passagenttest.Options{TokenTTL: 2 * time.Hour}, fetchtest.Entry{Path: "db", Fields: map[string]string{"password": "pw-" + canary}})
	c := srv.Config()
	exp, ok := fetch.JWTExpiry(c.Token)
	if !ok {
		t.Fatal("the emulator's token carries no exp")
	}
	dir := t.TempDir()
	src := writeFile(t, filepath.Join(dir, "a.tpl"), `<< passagent "db" >>`)
	dst := filepath.Join(dir, "a")
	env := []string{"PASSAGENT_URL=" + c.URL, "PASSAGENT_TOKEN=" + c.Token, "PASSAGENT_MASTER_PASSWORD=" + c.MasterPassword}

	_, stderr, code := injector(t, env, "render", "-t", src+":"+dst)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	entry := logEntry(stderr, "credentials expire soon: replace them (the _FILE is read again on every refresh)")
	left, _ := time.ParseDuration(fmt.Sprint(entry["time_left"]))
	if entry == nil || entry["provider"] != "passagent" || left <= time.Hour || left > 2*time.Hour+time.Second ||
		entry["expires_at"] != exp.UTC().Format(time.RFC3339) {
		t.Errorf("no warning with the time left:\n%s", stderr)
	}

	p := startInjector(t, env, "render", "--interval", "1m", "--listen", "127.0.0.1:0", "-t", src+":"+dst)
	addr := p.metricsAddr(t)
	var body string
	eventually(t, "/readyz ready", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK
	})
	if want := "ok\nwarning: passagent: credentials expire in "; !strings.HasPrefix(body, want) || !strings.Contains(body, exp.UTC().Format(time.RFC3339)) {
		t.Errorf("/readyz = %q, want a warning about the expiry", body)
	}
	_, fams := scrape(t, addr)
	if got := counter(fams, "injector_credential_expiry_timestamp_seconds", map[string]string{"provider": "passagent"}); got != float64(exp.Unix()) {
		t.Errorf("injector_credential_expiry_timestamp_seconds = %v, want %d", got, exp.Unix())
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)
	assertNoCanary(t, "log", p.stderr.String()+stderr)
	if strings.Contains(p.stderr.String()+stderr, c.Token) {
		t.Error("the log shows the token")
	}
}
