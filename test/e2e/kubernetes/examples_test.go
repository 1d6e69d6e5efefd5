package kubernetes

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The app's user in the examples (their Pod securityContext).
const appUID = 10001

// userEdits are the edits a user makes to an example before applying it:
// the image names (nothing is published; the images are built from this
// repository) and, for a self-hosted server whose certificate a private CA
// signed, the commented INJECTOR_CA_FILE lines switched on. The server's
// URL and the CA themselves go into the Secret (credentials).
func (c *cluster) userEdits() []string {
	return []string{
		"image: ghcr.io/injector-dev/injector:0.1.0", "image: " + c.image,
		"image: example/app:1.0", "image: " + c.appImage,
		"            # - name: INJECTOR_CA_FILE\n            #   value: /injector/credentials/INJECTOR_CA\n",
		"            - name: INJECTOR_CA_FILE\n              value: /injector/credentials/INJECTOR_CA\n",
	}
}

// appNamespace is what every example needs first: a namespace with an
// emulator of its own, the Secret made from its settings and the
// templates of templates.yaml.
func (c *cluster) appNamespace(t *testing.T, name string) (string, *emulator) {
	t.Helper()
	ns := c.namespace(t, name)
	emu := c.startEmulator(t)
	c.credentials(t, ns, "app-injector", emu)
	c.must(t, manifest(t, "templates.yaml"), "-n", ns, "apply", "-f", "-")
	return ns, emu
}

// rendered is what templates.yaml renders for the seed's prod/db/postgres
// with the given password, by destination.
func rendered(t *testing.T, password string) map[string]string {
	t.Helper()
	db := seedEntry(t, "prod/db/postgres")
	return map[string]string{
		"/injector/secrets/app.env": fmt.Sprintf("DB_HOST=%s\nDB_USER=%s\nDB_PASSWORD=%s\n",
			db.Fields["url"], db.Fields["login"], password),
		"/injector/secrets/config.yaml": fmt.Sprintf("database:\n  password: %s\n", strconv.Quote(password)),
	}
}

// appLoaded checks the app's log says it read each file with this content
// (the log names a digest, never the content), after the given prefix:
// "" at start, "SIGHUP N: " after the Nth SIGHUP.
func appLoaded(log, prefix string, files map[string]string) error {
	for p, content := range files {
		if want := "app: " + prefix + "loaded " + p + " " + sha256Hex(content); !strings.Contains(log, want) {
			return fmt.Errorf("app log lacks %q:\n%s", want, log)
		}
	}
	return nil
}

// TestInitContainerExample applies templates.yaml and init-container.yaml
// as a user does, with the Secret made from the emulator's settings: the
// app runs, reads the rendered files (0400, its own uid) and no secret
// shows in the API.
func TestInitContainerExample(t *testing.T) {
	c := node(t)
	t.Parallel() // each test has its own namespace and emulator
	ns, emu := c.appNamespace(t, "e2e-init")
	c.must(t, manifest(t, "init-container.yaml", c.userEdits()...), "-n", ns, "apply", "-f", "-")
	c.must(t, "", "-n", ns, "rollout", "status", "deployment/app-init", "--timeout=5m")

	pod := c.pod(t, ns, "app-init")
	db := seedEntry(t, "prod/db/postgres")
	want := rendered(t, db.Fields["password"])
	c.wantFiles(t, ns, pod.Name, "0400", appUID, want)
	log := c.logs(t, ns, pod.Name, "app")
	if err := appLoaded(log, "", want); err != nil {
		t.Error(err)
	}
	if !strings.Contains(log, fmt.Sprintf("app: started as uid %d", appUID)) {
		t.Errorf("app log: %s", log)
	}
	c.noLeaks(t, ns, emu.secrets(map[string]string{"prod/db/postgres password": db.Fields["password"]}))
}

// peek is what `app peek` prints for one process (testapp.Peek).
type peek struct {
	PID                 int
	EnvironErr, FileErr string
}

// TestSidecarExample applies sidecar.yaml and rotates a secret: the sidecar
// renders the new value at its next refresh, signals the app, and the Pod
// stays ready throughout. With the emulator stopped it keeps the last good
// files and the Pod turns not ready once --max-stale has passed.
func TestSidecarExample(t *testing.T) {
	c := node(t)
	t.Parallel() // each test has its own namespace and emulator
	ns, emu := c.appNamespace(t, "e2e-sidecar")

	// Test settings, not advice: refresh every 5s, which is below the 30s
	// floor a shared password manager needs (hence --min-interval=0: the
	// emulator is ours), and turn not ready after 30s without a successful
	// refresh (the default is 3 × interval).
	const interval, splay, maxStale = 5 * time.Second, 500 * time.Millisecond, 30 * time.Second
	edits := append(c.userEdits(), fastRefresh...)
	c.must(t, manifest(t, "sidecar.yaml", edits...), "-n", ns, "apply", "-f", "-")
	c.must(t, "", "-n", ns, "rollout", "status", "deployment/app-sidecar", "--timeout=5m")

	pod := c.pod(t, ns, "app-sidecar")
	db := seedEntry(t, "prod/db/postgres")
	before := rendered(t, db.Fields["password"])
	c.wantFiles(t, ns, pod.Name, "0400", appUID, before)
	if err := appLoaded(c.logs(t, ns, pod.Name, "app"), "", before); err != nil {
		t.Fatal(err)
	}

	// The shared process namespace lets the sidecar signal the app; it must
	// not let the app, of the same user, into the sidecar: injector's
	// environment and credential files stay closed to it through /proc.
	out := c.must(t, "", "-n", ns, "exec", pod.Name, "-c", "app", "--", "/app", "peek", "injector", "/injector/credentials/PASSWORK_TOKEN")
	var peeks []peek // testapp.Peek
	for line := range strings.Lines(out) {
		var p peek
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("app peek: %v: %q", err, line)
		}
		peeks = append(peeks, p)
	}
	if len(peeks) != 1 {
		t.Errorf("the app sees %d injector processes, want 1 (shareProcessNamespace)", len(peeks))
	}
	for _, p := range peeks {
		if !strings.Contains(p.EnvironErr, "permission denied") || !strings.Contains(p.FileErr, "permission denied") {
			t.Errorf("the app reads injector's /proc/%d: environment error %q, credentials error %q", p.PID, p.EnvironErr, p.FileErr)
		}
	}

	// Readiness, sampled until the rotation is done: /readyz as the probe
	// sees it, and the Pod's Ready condition.
	var (
		mu        sync.Mutex
		notReady  []string
		stopWatch = make(chan struct{})
		watchDone = make(chan struct{})
	)
	go func() {
		defer close(watchDone)
		for {
			if body, err := c.proxyGet(ns, pod.Name, 8099, "/readyz"); err != nil {
				mu.Lock()
				notReady = append(notReady, fmt.Sprintf("%s: /readyz: %v %s", time.Now().Format(time.TimeOnly), err, body))
				mu.Unlock()
			}
			if p, err := c.getPod(ns, pod.Name); err == nil && !podReady(p) {
				mu.Lock()
				notReady = append(notReady, time.Now().Format(time.TimeOnly)+": pod not Ready")
				mu.Unlock()
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(time.Second):
			}
		}
	}()

	rotated := "rotated-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	after := rendered(t, rotated)
	written := time.Now()
	emu.setPassword(t, "prod/db/postgres", rotated)
	waitFor(t, 2*time.Minute, "the rotated password in the app's files", func() error {
		got, err := c.stat(ns, pod.Name, "/injector/secrets/app.env")
		if err != nil {
			return err
		}
		if got["/injector/secrets/app.env"].Content != after["/injector/secrets/app.env"] {
			return errNotYet
		}
		return nil
	})
	took := time.Since(written)
	t.Logf("rotated secret in the app's files %s after the write (interval %s, splay up to %s)", took.Round(100*time.Millisecond), interval, splay)
	// The next refresh picks it up; the slack covers a refresh on a busy
	// machine and the polling through kubectl exec.
	if limit := interval + splay + 30*time.Second; took > limit {
		t.Errorf("the change took %s to reach the files, more than %s", took, limit)
	}
	c.wantFiles(t, ns, pod.Name, "0400", appUID, after)
	waitFor(t, time.Minute, "the app to reload on SIGHUP", func() error {
		return appLoaded(c.logs(t, ns, pod.Name, "app"), "SIGHUP 1: ", after)
	})
	close(stopWatch)
	<-watchDone
	if len(notReady) > 0 {
		t.Errorf("not ready during the rotation:\n%s", strings.Join(notReady, "\n"))
	}

	// The server goes away: the last good files stay, /readyz stays green
	// until --max-stale has passed since the last successful refresh, then
	// turns 503, and the kubelet marks the Pod not ready.
	stopped := time.Now()
	emu.stop()
	var staleAt time.Time
	waitFor(t, maxStale+3*time.Minute, "/readyz to fail with the server gone", func() error {
		if _, err := c.proxyGet(ns, pod.Name, 8099, "/readyz"); err == nil {
			return errNotYet
		}
		staleAt = time.Now()
		return nil
	})
	t.Logf("/readyz failed %s after the server stopped (--max-stale %s)", staleAt.Sub(stopped).Round(100*time.Millisecond), maxStale)
	// The last success came at most one interval (and splay) before the
	// server stopped, so /readyz held for at least the rest of maxStale.
	if held := staleAt.Sub(stopped); held < maxStale-interval-splay {
		t.Errorf("/readyz failed %s after the server stopped, before --max-stale %s could have passed", held, maxStale)
	}
	waitFor(t, 3*time.Minute, "the Pod to turn not ready", func() error {
		p, err := c.getPod(ns, pod.Name)
		if err != nil {
			return err
		}
		if podReady(p) {
			return errNotYet
		}
		return nil
	})
	c.wantFiles(t, ns, pod.Name, "0400", appUID, after)
	p, err := c.getPod(ns, pod.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		if s.RestartCount != 0 || s.State.Running == nil {
			t.Errorf("container %s: %d restarts, state %+v; want running, never restarted", s.Name, s.RestartCount, s.State)
		}
	}
	c.noLeaks(t, ns, emu.secrets(map[string]string{
		"prod/db/postgres password": db.Fields["password"], "the rotated password": rotated,
	}))
}

// TestCacheExample applies cache.yaml: the init container and the sidecar
// fill their shared emptyDir cache; with the emulator stopped the sidecar
// keeps refreshing from it, /readyz stays ready and says so, and the Pod
// stays Ready with the same files. The cache holds no secret value.
func TestCacheExample(t *testing.T) {
	c := node(t)
	t.Parallel()
	ns, emu := c.appNamespace(t, "e2e-cache")
	edits := append(c.userEdits(), fastRefresh...)
	c.must(t, manifest(t, "cache.yaml", edits...), "-n", ns, "apply", "-f", "-")
	c.must(t, "", "-n", ns, "rollout", "status", "deployment/app-cache", "--timeout=5m")

	pod := c.pod(t, ns, "app-cache")
	db := seedEntry(t, "prod/db/postgres")
	want := rendered(t, db.Fields["password"])
	c.wantFiles(t, ns, pod.Name, "0400", appUID, want)

	emu.stop()
	stopped := time.Now()
	waitFor(t, 2*time.Minute, "/readyz to say the cache answered", func() error {
		body, err := c.proxyGet(ns, pod.Name, 8099, "/readyz")
		if err != nil {
			return err
		}
		if !strings.Contains(body, "warning: passwork: server unavailable, secrets resolved from the ciphertext cache") {
			return fmt.Errorf("%w: %q", errNotYet, body)
		}
		return nil
	})
	// Past --max-stale (30s) without the server, it is still ready: every
	// refresh succeeds from the cache. Sampled every second until then.
	for time.Since(stopped) < 40*time.Second {
		if _, err := c.proxyGet(ns, pod.Name, 8099, "/readyz"); err != nil {
			t.Fatalf("/readyz %s after the server stopped: %v", time.Since(stopped).Round(time.Second), err)
		}
		<-time.After(time.Second)
	}
	p, err := c.getPod(ns, pod.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !podReady(p) {
		t.Error("the Pod turned not ready while the cache answered")
	}
	c.wantFiles(t, ns, pod.Name, "0400", appUID, want)
	if log := c.logs(t, ns, pod.Name, "injector"); !strings.Contains(log, "resolving from the ciphertext cache") {
		t.Errorf("the sidecar's log does not say it used the cache:\n%s", log)
	}
	c.noLeaks(t, ns, emu.secrets(map[string]string{"prod/db/postgres password": db.Fields["password"]}))
}

// fastRefresh are test settings, not advice: the sidecar's `--interval=5m`
// becomes a 5s refresh (below the 30s floor a shared password manager
// needs, hence --min-interval=0: the emulator is ours), not ready after
// 30s without a successful refresh.
var fastRefresh = []string{
	"            - --interval=5m\n",
	"            - --interval=5s\n            - --min-interval=0\n            - --max-stale=30s\n",
}
