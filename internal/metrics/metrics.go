// Package metrics holds injector's Prometheus metrics and serves them with
// the health endpoints a daemon needs: /metrics, /healthz and /readyz.
//
// Label values are only ever fixed vocabularies (provider names, HTTP
// methods and status codes, render results) or template names chosen by the
// operator, never secret values or secret paths: anything unexpected in a
// fixed vocabulary is recorded as "other".
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/injector-dev/injector/internal/fetch"
)

// Render results, the values of the result label of injector_renders_total.
const (
	ResultChanged   = "changed"   // rendered and the output differs from before
	ResultUnchanged = "unchanged" // rendered, same content, nothing written
	ResultError     = "error"     // not rendered; the previous output stays
)

// Metrics is one process's metrics and readiness state. A nil *Metrics is
// valid and records nothing, so callers need no "metrics enabled" checks.
type Metrics struct {
	reg *prometheus.Registry

	fetchRequests *prometheus.CounterVec
	fetchDuration *prometheus.HistogramVec
	renders       *prometheus.CounterVec
	secrets       prometheus.Gauge
	lastSuccess   prometheus.Gauge
	childRestarts prometheus.Counter
	cacheServed   *prometheus.CounterVec
	cacheAge      *prometheus.GaugeVec
	credExpiry    *prometheus.GaugeVec

	mu        sync.Mutex
	fromCache map[string]time.Duration // provider → oldest response served by the last refresh
	expiry    map[string]time.Time     // provider → when its credentials expire
	templates []string                 // every template that must render for readiness
	rendered  map[string]bool          // templates rendered successfully at least once
	succeeded time.Time                // last successful refresh; zero before the first
	maxStale  time.Duration            // 0: never stale
	now       func() time.Time
}

// New registers every metric on a fresh registry (never the global one,
// so tests and several instances do not collide). version is the build's
// version string for injector_build_info.
func New(version string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		fetchRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "injector_fetch_requests_total",
			Help: "HTTP requests to secret providers, by provider, method and status code (\"error\" for transport failures).",
		}, []string{"provider", "method", "status"}),
		fetchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "injector_fetch_request_duration_seconds",
			Help:    "Latency of HTTP requests to secret providers.",
			Buckets: prometheus.DefBuckets,
		}, []string{"provider"}),
		renders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "injector_renders_total",
			Help: "Template renders by template name and result (changed, unchanged, error).",
		}, []string{"template", "result"}),
		secrets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "injector_secrets_resolved",
			Help: "Number of secret values resolved by the last successful refresh.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "injector_last_success_timestamp_seconds",
			Help: "Unix time of the last successful refresh.",
		}),
		childRestarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "injector_child_restarts_total",
			Help: "Times the supervised child was restarted because its secrets changed.",
		}),
		cacheServed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "injector_cache_served_total",
			Help: "Refreshes in which a provider's server was unavailable and its responses came from the ciphertext cache (--cache-dir).",
		}, []string{"provider"}),
		cacheAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "injector_cache_served_age_seconds",
			Help: "Age of the oldest cached response the last refresh used, per provider; 0 when it used none.",
		}, []string{"provider"}),
		credExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "injector_credential_expiry_timestamp_seconds",
			Help: "Unix time at which a provider's credentials expire (a token's exp claim), for the providers that say; alert well before it.",
		}, []string{"provider"}),
		rendered: map[string]bool{},
		now:      time.Now,
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "injector_build_info",
		Help: "Always 1; the labels say which build is running.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)

	m.reg.MustRegister(m.fetchRequests, m.fetchDuration, m.renders, m.secrets, m.lastSuccess, m.childRestarts, m.cacheServed, m.cacheAge, m.credExpiry, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry, for tests and for callers adding their
// own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Observer returns the hook to put in fetch.Options.Observe.
func (m *Metrics) Observer() fetch.Observer {
	if m == nil {
		return nil
	}
	return func(provider, method, status string, d time.Duration) {
		provider = word(provider)
		m.fetchRequests.WithLabelValues(provider, httpMethod(method), httpStatus(status)).Inc()
		m.fetchDuration.WithLabelValues(provider).Observe(d.Seconds())
	}
}

// SetTemplates declares the templates that must all have rendered once
// before /readyz reports ready.
func (m *Metrics) SetTemplates(names []string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.templates = slices.Clone(names)
}

// SetMaxStale sets how old the last successful refresh may be before
// /readyz fails; 0 means never.
func (m *Metrics) SetMaxStale(d time.Duration) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.maxStale = d
}

// Rendered counts one render of a template with one of the Result*
// values.
func (m *Metrics) Rendered(template, result string) {
	if m == nil {
		return
	}
	switch result {
	case ResultChanged, ResultUnchanged:
		m.mu.Lock()
		m.rendered[template] = true
		m.mu.Unlock()
	case ResultError:
	default:
		result = "other"
	}
	m.renders.WithLabelValues(template, result).Inc()
}

// Succeeded records a successful refresh at t that resolved n secrets.
func (m *Metrics) Succeeded(t time.Time, n int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.succeeded = t
	m.mu.Unlock()
	m.lastSuccess.Set(float64(t.UnixNano()) / 1e9)
	m.secrets.Set(float64(n))
}

// ChildRestarted counts a restart of the supervised child.
func (m *Metrics) ChildRestarted() {
	if m == nil {
		return
	}
	m.childRestarts.Inc()
}

// CacheServed records which providers the last refresh resolved from the
// ciphertext cache, with the age of the oldest response each used (empty:
// every server answered). /readyz shows it as a warning: the pod stays
// ready, since serving from the cache is the point, but an operator sees
// the outage.
func (m *Metrics) CacheServed(ages map[string]time.Duration) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.fromCache {
		if _, still := ages[p]; !still {
			m.cacheAge.WithLabelValues(word(p)).Set(0)
		}
	}
	m.fromCache = map[string]time.Duration{}
	for p, age := range ages {
		m.fromCache[p] = age
		m.cacheServed.WithLabelValues(word(p)).Inc()
		m.cacheAge.WithLabelValues(word(p)).Set(age.Seconds())
	}
}

// ExpiryWarning is how close to their expiry credentials have to be for
// /readyz to warn about them.
const ExpiryWarning = 24 * time.Hour

// CredentialExpiry records when each provider's credentials expire, for
// the providers that know (a token's exp claim).
func (m *Metrics) CredentialExpiry(exp map[string]time.Time) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.expiry {
		if _, still := exp[p]; !still {
			m.credExpiry.DeleteLabelValues(word(p))
		}
	}
	m.expiry = map[string]time.Time{}
	for p, t := range exp {
		m.expiry[p] = t
		m.credExpiry.WithLabelValues(word(p)).Set(float64(t.Unix()))
	}
}

// Warnings are what /readyz adds below "ok": providers served from the
// cache by the last refresh, and credentials that expire within
// ExpiryWarning (or have expired).
func (m *Metrics) Warnings() []string {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for p, t := range m.expiry {
		switch left := t.Sub(m.now()).Round(time.Second); {
		case left <= 0:
			out = append(out, fmt.Sprintf("warning: %s: credentials expired %s ago (at %s); replace them", word(p), -left, t.UTC().Format(time.RFC3339)))
		case left < ExpiryWarning:
			out = append(out, fmt.Sprintf("warning: %s: credentials expire in %s (at %s)", word(p), left, t.UTC().Format(time.RFC3339)))
		}
	}
	for p, age := range m.fromCache {
		out = append(out, fmt.Sprintf("warning: %s: server unavailable, secrets resolved from the ciphertext cache (oldest response %s old)", word(p), age.Round(time.Second)))
	}
	slices.Sort(out)
	return out
}

// Ready reports whether every declared template has rendered at least once
// and the last successful refresh is recent enough. When not, reason says
// why, naming templates only.
func (m *Metrics) Ready() (ok bool, reason string) {
	if m == nil {
		return true, ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.succeeded.IsZero() {
		return false, "no successful refresh yet"
	}
	var missing []string
	for _, t := range m.templates {
		if !m.rendered[t] {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return false, "not rendered yet: " + strings.Join(missing, ", ")
	}
	if age := m.now().Sub(m.succeeded); m.maxStale > 0 && age > m.maxStale {
		return false, fmt.Sprintf("stale: last successful refresh %s ago (max %s)", age.Round(time.Second), m.maxStale)
	}
	return true, ""
}

// Handler serves /metrics, /healthz and /readyz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok") // answering at all is the proof of life
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ok, reason := m.Ready(); !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, reason)
			return
		}
		fmt.Fprintln(w, "ok")
		for _, line := range m.Warnings() {
			fmt.Fprintln(w, line)
		}
	})
	return mux
}

// Serve listens on addr and serves Handler until ctx is cancelled.
func (m *Metrics) Serve(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listen: %w", err)
	}
	return m.ServeListener(ctx, ln)
}

// ServeListener is Serve on an existing listener (tests use 127.0.0.1:0).
// It closes ln and returns nil once ctx is cancelled.
func (m *Metrics) ServeListener(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("metrics: serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdown)
	if serveErr := <-done; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	if err != nil {
		return fmt.Errorf("metrics: shutdown: %w", err)
	}
	return nil
}

// word lets a provider name through if it looks like one (lower-case
// letters, digits, '-' or '_', at most 32 bytes); anything else is "other".
func word(s string) string {
	if s == "" || len(s) > 32 {
		return "other"
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "other"
		}
	}
	return s
}

func httpMethod(s string) string {
	switch s {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return s
	}
	return "other"
}

// httpStatus lets through a three-digit status code or "error".
func httpStatus(s string) string {
	if n, err := strconv.Atoi(s); err == nil && n >= 100 && n <= 599 && len(s) == 3 {
		return s
	}
	if s == "error" {
		return s
	}
	return "other"
}
