package docker

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	pwcrypto "github.com/injector-dev/injector/internal/crypto/passwork"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/testutil"
)

// composeFile is the example, used as shipped.
const composeFile = "examples/docker-compose.yml"

// interval is the sidecar's refresh interval in the test: the shortest
// one injector accepts by default (--min-interval 30s).
const interval = 30 * time.Second

// compose runs docker-compose as the README says, from the repository's
// root, with the settings directory dev printed. Once the project is up,
// the docker client (quicker than docker-compose) reads the containers.
type compose struct {
	env
	credentials string
	ids         map[string]string // service → container id
}

// containers finds the project's containers.
func (c *compose) containers(t *testing.T) {
	t.Helper()
	c.ids = map[string]string{}
	out := c.must(t, "ps", "-a", "--filter", "label=com.docker.compose.project=examples",
		"--format", `{{.Label "com.docker.compose.service"}} {{.ID}}`)
	for line := range strings.Lines(out) {
		if service, id, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			c.ids[service] = id
		}
	}
	for _, service := range []string{"injector", "app", "app-wrapped"} {
		if c.ids[service] == "" {
			t.Fatalf("no container for service %s:\n%s", service, out)
		}
	}
}

func (c *compose) compose(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command("docker-compose", append([]string{"-f", composeFile}, args...)...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "INJECTOR_CREDENTIALS="+c.credentials, "INJECTOR_INTERVAL="+interval.String())
	return execute(t, cmd, 5*time.Minute)
}

func (c *compose) mustCompose(t *testing.T, args ...string) string {
	t.Helper()
	r := c.compose(t, args...)
	if r.code != 0 {
		t.Fatalf("docker-compose %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// logs returns a service's output, stdout and stderr.
func (c *compose) logs(t *testing.T, service string) string {
	t.Helper()
	r := c.docker(t, "logs", c.ids[service])
	return r.stdout + r.stderr
}

// waitLogs polls a service's output until it matches re.
func (c *compose) waitLogs(t *testing.T, service string, limit time.Duration, re *regexp.Regexp) {
	t.Helper()
	var out string
	testutil.WaitFor(t, limit, fmt.Sprintf("%s to print %q", service, re), func() bool {
		out = c.logs(t, service)
		return re.MatchString(out)
	})
}

// step logs how long a step of the test took, for the CI log.
func step(t *testing.T, name string, start time.Time) {
	t.Logf("step %-34s %6.1fs", name, time.Since(start).Seconds())
}

// TestComposeSidecar brings up examples/docker-compose.yml as the README
// says, against `injector dev --serve --listen` on the engine's bridge
// address (the containers reach it over HTTPS, trusting the CA dev made):
// the app starts only once the sidecar's /readyz is green and reads the
// secrets of all three providers from the file the sidecar renders; the
// wrapped app gets its secret in its environment; a secret changed in the
// password manager reaches the app's file within one interval, and the app
// is signalled; `docker-compose stop` stops both apps cleanly. No container
// but injector's holds a credential, and nothing shows a secret.
func TestComposeSidecar(t *testing.T) {
	t.Parallel()
	e := engine(t)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatal("docker-compose is not installed (scripts/e2e-docker installs it)")
	}
	start := time.Now()

	// The image the example names, as the README builds and tags it.
	data, err := os.ReadFile(filepath.Join(repoRoot, composeFile))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s+image: (ghcr\.io/injector-dev/injector:\S+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("%s names no ghcr.io/injector-dev/injector image", composeFile)
	}
	e.must(t, "tag", e.image, string(m[1]))

	// dev on the host's address on the engine's bridge, which containers
	// on any of the engine's networks reach: the README's command.
	gateway := strings.TrimSpace(e.must(t, "network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}"))
	if gateway == "" {
		t.Fatal("the engine has no default bridge (scripts/e2e-docker starts it with DOCKERD_BRIDGE=1)")
	}
	t0 := time.Now()
	srv, err := runDev(e.binary, "--listen", gateway)
	if err != nil {
		t.Fatalf("injector dev --serve --listen %s: %v", gateway, err)
	}
	t.Cleanup(srv.stop)
	if srv.credentials == "" {
		t.Fatal("dev printed no INJECTOR_CREDENTIALS line")
	}
	step(t, "dev --serve --listen "+gateway, t0)

	c := &compose{env: e, credentials: srv.credentials}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("compose output:\n%s", c.compose(t, "logs", "--no-color").stdout)
		}
		t0 := time.Now()
		c.compose(t, "down", "--volumes", "--timeout", "30")
		step(t, "docker-compose down", t0)
	})

	t0 = time.Now()
	up := time.Now()
	c.mustCompose(t, "up", "--detach")
	step(t, "docker-compose up (app healthy-gated)", t0)
	c.containers(t)

	// The app started only once the sidecar was healthy: the engine's
	// events say in which order.
	events := e.must(t, "events", "--since", strconv.FormatInt(up.Add(-time.Second).Unix(), 10),
		"--until", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10),
		"--filter", "type=container", "--format", "{{.TimeNano}} {{.Action}} {{.Actor.Attributes.name}}")
	healthy, appStarted := eventTime(events, "health_status: healthy", "_injector_"), eventTime(events, "start", "_app_")
	if healthy == 0 || appStarted == 0 || appStarted < healthy {
		t.Errorf("want the app started after the sidecar was healthy; events:\n%s", events)
	}

	// The app read the file at start: every line, every provider's secret.
	want := renderedAppEnv(t, nil)
	c.waitLogs(t, "app", time.Minute, regexp.MustCompile(`app: started: DB_PASSWORD has 16 characters, from /secrets/app.env \(7 settings\)`))
	if got := c.must(t, "exec", c.ids["app"], "cat", "/secrets/app.env"); got != want {
		t.Errorf("the app's /secrets/app.env:\n%s\nwant:\n%s", got, want)
	}
	c.waitLogs(t, "app-wrapped", time.Minute, regexp.MustCompile(`app: started: DB_PASSWORD has 16 characters, from the environment`))

	// Rotation: the secret changes in the password manager; the sidecar
	// renders it at its next refresh, within one interval (plus its splay
	// of up to a tenth), and signals the app, which reads the file again.
	t0 = time.Now()
	rotated := "rotated-" + randomHex(8)
	writePassworkPassword(t, srv.settings, "prod/db/postgres", rotated)
	c.waitLogs(t, "app", 3*interval, regexp.MustCompile(`app: reloaded on SIGHUP: DB_PASSWORD has 24 characters`))
	took := time.Since(t0)
	step(t, "rotation reaches the app", t0)
	if limit := interval + interval/10 + 15*time.Second; took > limit {
		t.Errorf("the rotated secret reached the app after %s, more than one interval (%s, plus splay and margin)", took.Round(time.Second), interval)
	}
	if got := c.must(t, "exec", c.ids["app"], "cat", "/secrets/app.env"); got != renderedAppEnv(t, map[string]string{"pg-Sup3r-s3cret!": rotated}) {
		t.Errorf("after rotation, the app's /secrets/app.env:\n%s", got)
	}
	if n := strings.Count(c.logs(t, "app"), "reloaded on SIGHUP"); n != 1 {
		t.Errorf("the app was signalled %d times, want once (one change)", n)
	}

	// Trust: only injector's containers hold credentials, nothing shows a
	// secret or a credential.
	secrets := []string{"pg-Sup3r-s3cret!", rotated, "ghp_demoDeployToken0000", "r3dis-cache-pw"}
	var credentials []string
	for k, v := range srv.settings {
		if strings.Contains(k, "TOKEN") || strings.Contains(k, "KEY") || strings.Contains(k, "PASS") {
			if !strings.HasSuffix(k, "_FILE") && len(v) > 8 {
				credentials = append(credentials, v)
			}
		}
	}
	for service, id := range c.ids {
		inspect := e.must(t, "inspect", id)
		logs := c.logs(t, service)
		for _, s := range append(secrets, credentials...) {
			if strings.Contains(inspect, s) || strings.Contains(logs, s) {
				t.Errorf("%s: docker inspect or its output holds a secret or credential", service)
			}
		}
		mounts := e.must(t, "inspect", "-f", "{{range .Mounts}}{{.Destination}} {{end}}", id)
		if service == "app" && strings.Contains(mounts, "/run/secrets") {
			t.Errorf("the app's container mounts the credentials: %s", mounts)
		}
	}

	// Stop: each app gets SIGTERM (from Docker, or from injector as PID 1
	// of the wrapped app's container) and exits 0.
	t0 = time.Now()
	c.mustCompose(t, "stop", "--timeout", "30")
	step(t, "docker-compose stop", t0)
	for service, id := range c.ids {
		if code := strings.TrimSpace(e.must(t, "inspect", "-f", "{{.State.ExitCode}}", id)); code != "0" {
			t.Errorf("%s exited %s after docker-compose stop, want 0", service, code)
		}
	}
	for _, service := range []string{"app", "app-wrapped"} {
		if !strings.Contains(c.logs(t, service), "app: stopping on SIGTERM") {
			t.Errorf("%s did not get SIGTERM", service)
		}
	}
	step(t, "compose test", start)
}

// eventTime returns the time (ns) of the first event with action whose
// container name contains name, 0 if none.
func eventTime(events, action, name string) int64 {
	for line := range strings.Lines(events) {
		ts, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		if strings.HasPrefix(rest, action+" ") && strings.Contains(rest[len(action):], name) {
			n, _ := strconv.ParseInt(ts, 10, 64)
			return n
		}
	}
	return 0
}

// renderedAppEnv is examples/templates/app.env.tpl rendered with the
// seed's values, with replace applied to them: what the app must read.
func renderedAppEnv(t *testing.T, replace map[string]string) string {
	t.Helper()
	seed, err := fetchtest.LoadSeed(filepath.Join(repoRoot, "examples/dev/seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	field := func(entries []fetchtest.Entry, path, name string) string {
		for _, en := range entries {
			if en.Path == path {
				v := en.Fields[name]
				if v == "" {
					v = en.Custom[name]
				}
				if r, ok := replace[v]; ok {
					v = r
				}
				return v
			}
		}
		t.Fatalf("seed has no %s %s", path, name)
		return ""
	}
	pg := func(name string) string { return field(seed.Passwork, "prod/db/postgres", name) }
	redis := func(name string) string { return field(seed.PassAgent, "Redis cache", name) }
	return "# Rendered by injector: environment for the app. Mode 0600.\n" +
		"DB_USER=" + pg("login") + "\n" +
		"DB_PASSWORD=" + pg("password") + "\n" +
		"DB_URL=postgres://" + pg("login") + ":" + url.QueryEscape(pg("password")) + "@db.prod.internal:" + pg("port") + "/app?sslmode=" + pg("sslmode") + "\n" +
		"STRIPE_KEY=" + field(seed.Passwork, "prod/payments/stripe", "password") + "\n" +
		"STRIPE_WEBHOOK_SECRET=" + field(seed.Passwork, "prod/payments/stripe", "webhook-secret") + "\n" +
		"DEPLOY_TOKEN=" + field(seed.Passbolt, "infra/ci/deploy-key", "password") + "\n" +
		"REDIS_URL=redis://" + redis("username") + ":" + redis("password") + "@cache.internal:6379/" + redis("db") + "\n"
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// writePassworkPassword changes an entry's password the way the Passwork
// SDK (and so passwork-cli) does, through the API: it finds the item,
// decrypts the user's private key with the master key, the vault key with
// the private key and the item key with the vault key, and sends the new
// password encrypted under the item key. The server only stores what it
// is sent.
func writePassworkPassword(t *testing.T, settings map[string]string, path, password string) {
	t.Helper()
	pool := x509.NewCertPool()
	if caFile := settings["INJECTOR_CA_FILE"]; caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("CA %s: %v", caFile, err)
		}
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base, masterKey := settings["PASSWORK_URL"], settings["PASSWORK_MASTER_KEY"]
	call := func(method, endpoint string, body any) map[string]any {
		t.Helper()
		var r io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			r = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, base+endpoint, r)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+settings["PASSWORK_TOKEN"])
		req.Header.Set("X-Master-Key-Hash", pwcrypto.MasterKeyHash(masterKey))
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, endpoint, err)
		}
		defer resp.Body.Close()
		var envelope struct{ Format, Content string }
		raw, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(raw, &envelope) == nil && envelope.Format == "base64" {
			raw, _ = base64.StdEncoding.DecodeString(envelope.Content)
		}
		var out map[string]any
		if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil {
			t.Fatalf("%s %s: HTTP %d", method, endpoint, resp.StatusCode)
		}
		return out
	}

	name := path[strings.LastIndex(path, "/")+1:]
	var item map[string]any
	for _, it := range call(http.MethodGet, "/api/v1/items/search?query="+url.QueryEscape(name), nil)["items"].([]any) {
		full := call(http.MethodGet, "/api/v1/items/"+it.(map[string]any)["id"].(string), nil)
		var segs []string
		for _, p := range full["path"].([]any) {
			segs = append(segs, p.(map[string]any)["name"].(string))
		}
		if strings.Join(append(segs, full["name"].(string)), "/") == path {
			item = full
		}
	}
	if item == nil {
		t.Fatalf("no Passwork item %s", path)
	}
	keys := call(http.MethodGet, "/api/v1/users/keys", nil)["keys"].(map[string]any)
	pemText, err := pwcrypto.Decrypt(keys["privateEncrypted"].(string), masterKey)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := pwcrypto.ParsePrivateKey(pemText)
	if err != nil {
		t.Fatal(err)
	}
	vaultKey, err := pwcrypto.UnwrapKey(priv, item["vaultMasterKeyEncrypted"].(string))
	if err != nil {
		t.Fatal(err)
	}
	itemKey, err := pwcrypto.Decrypt(item["keyEncrypted"].(string), vaultKey)
	if err != nil {
		t.Fatal(err)
	}
	encrypted, err := pwcrypto.Encrypt(password, itemKey)
	if err != nil {
		t.Fatal(err)
	}
	call(http.MethodPatch, "/api/v1/items/"+item["id"].(string), map[string]any{"passwordEncrypted": encrypted})
}
