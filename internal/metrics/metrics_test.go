package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/injector-dev/injector/internal/testutil"
)

// serve starts m on a loopback port and returns its base URL.
func serve(t *testing.T, m *Metrics) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.ServeListener(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeListener: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func scrape(t *testing.T, base string) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return fams, body
}

// value finds the sample of family name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	fam, ok := fams[name]
	if !ok {
		t.Fatalf("metric %s missing", name)
	}
next:
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("metric %s%v missing", name, want)
	return 0
}

func TestScrape(t *testing.T) {
	m := New("v1.2.3")
	base := serve(t, m)

	obs := m.Observer()
	obs("passwork", "GET", "200", 10*time.Millisecond)
	obs("passwork", "GET", "200", 20*time.Millisecond)
	obs("passwork", "POST", "429", time.Millisecond)
	obs("passbolt", "GET", "error", time.Millisecond)
	m.SetTemplates([]string{"/etc/app/db.conf"})
	m.Rendered("/etc/app/db.conf", ResultChanged)
	m.Rendered("/etc/app/db.conf", ResultUnchanged)
	m.Rendered("/etc/app/db.conf", ResultUnchanged)
	m.Rendered("/etc/app/db.conf", ResultError)
	when := time.Unix(1700000000, 0)
	m.Succeeded(when, 5)
	m.ChildRestarted()

	fams, _ := scrape(t, base)
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"injector_fetch_requests_total", map[string]string{"provider": "passwork", "method": "GET", "status": "200"}, 2},
		{"injector_fetch_requests_total", map[string]string{"provider": "passwork", "method": "POST", "status": "429"}, 1},
		{"injector_fetch_requests_total", map[string]string{"provider": "passbolt", "method": "GET", "status": "error"}, 1},
		{"injector_fetch_request_duration_seconds", map[string]string{"provider": "passwork"}, 3},
		{"injector_renders_total", map[string]string{"template": "/etc/app/db.conf", "result": "changed"}, 1},
		{"injector_renders_total", map[string]string{"template": "/etc/app/db.conf", "result": "unchanged"}, 2},
		{"injector_renders_total", map[string]string{"template": "/etc/app/db.conf", "result": "error"}, 1},
		{"injector_secrets_resolved", nil, 5},
		{"injector_last_success_timestamp_seconds", nil, 1700000000},
		{"injector_child_restarts_total", nil, 1},
		{"injector_build_info", map[string]string{"version": "v1.2.3"}, 1},
	}
	for _, c := range checks {
		if got := value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_open_fds"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("collector metric %s missing", name)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	m := New("dev")
	now := time.Unix(1700000000, 0)
	m.now = func() time.Time { return now }
	m.SetTemplates([]string{"db.conf", "api.env"})
	m.SetMaxStale(time.Minute)
	base := serve(t, m)

	ready := func(wantCode int, wantBody string) {
		t.Helper()
		code, body := get(t, base+"/readyz")
		if code != wantCode || !strings.Contains(body, wantBody) {
			t.Errorf("/readyz = %d %q, want %d containing %q", code, body, wantCode, wantBody)
		}
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d", code)
	}
	ready(503, "no successful refresh yet")

	m.Rendered("db.conf", ResultChanged)
	m.Rendered("api.env", ResultError)
	m.Succeeded(now, 1)
	ready(503, "not rendered yet: api.env")

	m.Rendered("api.env", ResultChanged)
	ready(200, "ok")

	now = now.Add(2 * time.Minute)
	ready(503, "stale")
	m.Succeeded(now, 1)
	ready(200, "ok")
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while stale = %d", code)
	}
}

// TestNoSecretsInLabels feeds secret-looking values through every label
// that is not a template name and checks none reaches the scrape.
func TestNoSecretsInLabels(t *testing.T) {
	const canary = "CANARY-s3cr3t-Value"
	m := New("dev")
	base := serve(t, m)
	obs := m.Observer()
	obs(canary, "GET", "200", time.Millisecond)
	obs("passwork", canary, "200", time.Millisecond)
	obs("passwork", "GET", canary, time.Millisecond)
	obs("passwork/prod/db", "GET", "2000", time.Millisecond)
	m.Rendered("db.conf", canary)

	fams, body := scrape(t, base)
	if strings.Contains(body, canary) || strings.Contains(body, "prod/db") {
		t.Fatalf("canary reached /metrics:\n%s", body)
	}
	if got := value(t, fams, "injector_fetch_requests_total", map[string]string{"provider": "other"}); got != 1 {
		t.Errorf("provider=other count = %v, want 1", got)
	}
	if got := value(t, fams, "injector_renders_total", map[string]string{"result": "other"}); got != 1 {
		t.Errorf("result=other count = %v, want 1", got)
	}
	if ok, reason := m.Ready(); ok || strings.Contains(reason, canary) {
		t.Errorf("Ready() = %v, %q", ok, reason)
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.SetTemplates([]string{"x"})
	m.Rendered("x", ResultChanged)
	m.Succeeded(time.Now(), 1)
	m.ChildRestarted()
	m.SetMaxStale(time.Second)
	if m.Observer() != nil {
		t.Error("nil Metrics returned an observer")
	}
	if ok, _ := m.Ready(); !ok {
		t.Error("nil Metrics not ready")
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	m := New("dev")
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.ServeListener(ctx, ln) }()
	if code, _ := get(t, "http://"+ln.Addr().String()+"/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(testutil.Patience):
		t.Fatal("ServeListener did not return after cancel")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("still serving after cancel")
	}
	if err := m.Serve(context.Background(), "256.0.0.1:bad"); err == nil {
		t.Error("Serve on a bad address succeeded")
	}
}

// TestCacheServedShowsInReadyz: a refresh served from the ciphertext cache
// keeps the pod ready, says so in /readyz and counts in the metrics; the
// next refresh with every server up clears the warning.
func TestCacheServedShowsInReadyz(t *testing.T) {
	m := New("dev")
	base := serve(t, m)
	m.Succeeded(time.Now(), 1)
	m.CacheServed(map[string]time.Duration{"passbolt": 2 * time.Hour})
	code, body := get(t, base+"/readyz")
	want := "ok\nwarning: passbolt: server unavailable, secrets resolved from the ciphertext cache (oldest response 2h0m0s old)\n"
	if code != http.StatusOK || body != want {
		t.Errorf("/readyz = %d %q, want 200 %q", code, body, want)
	}
	fams, _ := scrape(t, base)
	if v := value(t, fams, "injector_cache_served_total", map[string]string{"provider": "passbolt"}); v != 1 {
		t.Errorf("injector_cache_served_total = %v, want 1", v)
	}
	if v := value(t, fams, "injector_cache_served_age_seconds", map[string]string{"provider": "passbolt"}); v != 7200 {
		t.Errorf("injector_cache_served_age_seconds = %v, want 7200", v)
	}
	m.CacheServed(nil)
	if code, body := get(t, base+"/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/readyz after a refresh without the cache = %d %q", code, body)
	}
	fams, _ = scrape(t, base)
	if v := value(t, fams, "injector_cache_served_age_seconds", map[string]string{"provider": "passbolt"}); v != 0 {
		t.Errorf("injector_cache_served_age_seconds = %v after recovery, want 0", v)
	}
}

// TestCredentialExpiry: the expiry is a gauge at all times and a /readyz
// warning within ExpiryWarning, without making the pod unready.
func TestCredentialExpiry(t *testing.T) {
	m := New("dev")
	now := time.Unix(1700000000, 0)
	m.now = func() time.Time { return now }
	base := serve(t, m)
	m.Succeeded(now, 1)
	m.CredentialExpiry(map[string]time.Time{"passagent": now.Add(48 * time.Hour)})
	if code, body := get(t, base+"/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/readyz 48h before expiry = %d %q", code, body)
	}
	fams, _ := scrape(t, base)
	if v := value(t, fams, "injector_credential_expiry_timestamp_seconds", map[string]string{"provider": "passagent"}); v != float64(now.Add(48*time.Hour).Unix()) {
		t.Errorf("expiry gauge = %v", v)
	}
	now = now.Add(45 * time.Hour)
	code, body := get(t, base+"/readyz")
	if want := "ok\nwarning: passagent: credentials expire in 3h0m0s (at 2023-11-16T22:13:20Z)\n"; code != http.StatusOK || body != want {
		t.Errorf("/readyz 3h before expiry = %d %q, want %q", code, body, want)
	}
	now = now.Add(4 * time.Hour)
	if _, body := get(t, base+"/readyz"); !strings.Contains(body, "credentials expired 1h0m0s ago") {
		t.Errorf("/readyz after expiry = %q", body)
	}
	m.CredentialExpiry(nil)
	if _, body := get(t, base+"/readyz"); body != "ok\n" {
		t.Errorf("/readyz with no expiry known = %q", body)
	}
}
