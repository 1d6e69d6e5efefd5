package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestProbe: exit 0 on 2xx, quietly; 1 on anything else, saying why with
// the first line of the answer; redirects are not followed.
func TestProbe(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool // the handler runs on the server's goroutines
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			if r.Method != http.MethodGet || r.Header.Get("User-Agent") != "injector-probe" {
				http.Error(w, "want GET from injector-probe", http.StatusBadRequest)
				return
			}
			if !ready.Load() {
				http.Error(w, "not ready: /secrets/app.env never rendered\nsecond line", http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, "ok\n")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/moved":
			http.Redirect(w, r, "/readyz", http.StatusFound)
		case "/noisy":
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, "\x1b[31mred\x1b[0m "+strings.Repeat("x", 1<<20))
		}
	}))
	defer srv.Close()
	closed := func() string { // a port nothing listens on
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return "http://" + ln.Addr().String() + "/readyz"
	}()

	for _, tc := range []struct {
		name    string
		ready   bool
		url     string
		code    int
		stderr  string // contained; "" means empty
		without string // not contained
	}{
		{"ready", true, srv.URL + "/readyz", 0, "", ""},
		{"204", true, srv.URL + "/empty", 0, "", ""},
		{"not ready", false, srv.URL + "/readyz", 1, "probe: GET " + srv.URL + "/readyz: HTTP 503 Service Unavailable: not ready: /secrets/app.env never rendered\n", "second line"},
		{"a redirect is not followed", true, srv.URL + "/moved", 1, "HTTP 302 Found", ""},
		{"escape codes and floods are cut", true, srv.URL + "/noisy", 1, "HTTP 500 Internal Server Error: [31mred[0m xxx", "\x1b"},
		{"connection refused", true, closed, 1, "connection refused", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ready.Store(tc.ready)
			stdout, stderr, code := injector(t, nil, "probe", tc.url)
			if code != tc.code || stdout != "" || (tc.stderr == "") != (stderr == "") || !strings.Contains(stderr, tc.stderr) ||
				tc.without != "" && strings.Contains(stderr, tc.without) {
				t.Errorf("probe %s: exit %d, want %d; stdout %q; stderr %q, want %q", tc.url, code, tc.code, stdout, stderr, tc.stderr)
			}
			if len(stderr) > 400 {
				t.Errorf("stderr is %d bytes long", len(stderr))
			}
		})
	}
}

// A server that accepts and never answers cannot hold the probe past
// --timeout.
func TestProbeTimeout(t *testing.T) {
	t.Parallel()
	stall := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(stall)
	_, stderr, code := injector(t, nil, "probe", "--timeout", "300ms", srv.URL+"/readyz")
	if code != 1 || !strings.Contains(stderr, "no answer within 300ms") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
