package fetch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// mapCache is a Cache in memory that serves whatever it holds.
type mapCache struct {
	saved  map[string][]byte
	down   error
	served int
}

func (m *mapCache) Save(_, key string, r *Response) { m.saved[key] = r.Body }
func (m *mapCache) Serve(_, key string, cause error) (*Response, error) {
	if m.down == nil {
		m.down = cause
	}
	b, ok := m.saved[key]
	if !ok {
		return nil, fmt.Errorf("%w (not cached)", cause)
	}
	m.served++
	return &Response{Status: 200, Body: b}, nil
}
func (m *mapCache) Down(string) error     { return m.down }
func (m *mapCache) Refuse(string, string) { clear(m.saved) }
func (m *mapCache) Usable(string) error {
	if len(m.saved) == 0 {
		return errors.New("empty")
	}
	return nil
}

// TestCacheOnlyForOutages: after one good answer, each failure is served
// from the cache only when it means the server is unavailable.
func TestCacheOnlyForOutages(t *testing.T) {
	tests := []struct {
		name   string
		status int // the server's answer after the first 200; 0: server stopped, -1: no answer in time
		cancel bool
		served bool
	}{
		{"connection refused", 0, false, true},
		{"timeout", -1, false, true},
		{"503 after the retries", 503, false, true},
		{"429 after the retries", 429, false, true},
		{"500", 500, false, true},
		{"401 is an answer", 401, false, false},
		{"403 is an answer", 403, false, false},
		{"404 is an answer", 404, false, false},
		{"cancelled by the caller", 503, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 1 {
					w.Write([]byte("ciphertext"))
					return
				}
				if tt.status < 0 {
					<-r.Context().Done() // until the client gives up
					return
				}
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			h := fastHTTP()
			cache := &mapCache{saved: map[string][]byte{}}
			h.Cache = cache
			req := Request{Method: http.MethodGet, URL: srv.URL + "/x", Cache: true}
			if r, err := h.Do(context.Background(), req); err != nil || string(r.Body) != "ciphertext" {
				t.Fatalf("first request: %v %v", r, err)
			}
			if len(cache.saved) != 1 {
				t.Fatalf("a 200 was not saved")
			}
			if tt.status == 0 {
				srv.Close()
			}
			if tt.status < 0 {
				// Only this request waits for the timeout; a short one on
				// the others turned a slow answer on a busy machine into an
				// outage.
				h.Client.Timeout = 100 * time.Millisecond
			}
			ctx, cancel := context.WithCancel(context.Background())
			if tt.cancel {
				cancel()
			}
			defer cancel()
			r, err := h.Do(ctx, req)
			if got := err == nil && r.Status == 200 && string(r.Body) == "ciphertext"; got != tt.served {
				t.Errorf("served from the cache: %v, want %v (%v, %v)", got, tt.served, r, err)
			}
			if tt.served != (cache.down != nil) || tt.served != h.Offline() {
				t.Errorf("provider down: %v, want %v", cache.down, tt.served)
			}
			// Not marked: never saved, never served.
			if tt.served {
				if _, err := h.Do(ctx, Request{Method: http.MethodGet, URL: srv.URL + "/y"}); err == nil && tt.status == 0 {
					t.Error("an unmarked request was answered with the server stopped")
				}
			}
		})
	}
}

func TestContinueOffline(t *testing.T) {
	h := fastHTTP()
	outage := fmt.Errorf("login: %w", transportError{errors.New("connection refused")})
	if err := h.ContinueOffline(context.Background(), outage); err != outage {
		t.Errorf("without a cache: %v", err)
	}
	cache := &mapCache{saved: map[string][]byte{}}
	h.Cache = cache
	if err := h.ContinueOffline(context.Background(), outage); err == nil || !errors.Is(err, ErrUnavailable) {
		t.Errorf("with an empty cache: %v", err)
	}
	cache.saved["k"] = []byte("x")
	rejected := &StatusError{Provider: "test", Status: 401}
	if err := h.ContinueOffline(context.Background(), rejected); err != rejected {
		t.Errorf("a 401 login: %v", err)
	}
	if h.Offline() {
		t.Error("offline after a 401")
	}
	if err := h.ContinueOffline(context.Background(), outage); err != nil || !h.Offline() {
		t.Errorf("an outage with a warm cache: %v, offline %v", err, h.Offline())
	}
}

// A request that goes through the ciphertext cache is never answered from
// the caller's body memo: the cache must save the whole body, even when
// the memo knows it (a daemon's second refresh of unchanged data).
func TestCachedRequestsAreNotRecalled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ciphertext"))
	}))
	defer srv.Close()
	h := fastHTTP()
	cache := &mapCache{saved: map[string][]byte{}}
	h.Cache = cache
	var bodies Bodies
	recalled := 0
	req := Request{Method: http.MethodGet, URL: srv.URL + "/x", Cache: true,
		Bodies: &bodies, Recall: func(BodyKey) bool { recalled++; return true }}
	for round := range 2 {
		r, err := h.Do(context.Background(), req)
		if err != nil || string(r.Body) != "ciphertext" || r.Keyed || r.Recalled {
			t.Fatalf("round %d: body %q, keyed %v, recalled %v, %v", round, r.Body, r.Keyed, r.Recalled, err)
		}
		if len(cache.saved) != 1 {
			t.Fatalf("round %d: the cache holds %d bodies, want 1", round, len(cache.saved))
		}
		for _, b := range cache.saved {
			if string(b) != "ciphertext" {
				t.Fatalf("round %d: the cache saved %q", round, b)
			}
		}
	}
	if recalled != 0 {
		t.Errorf("the memo was asked %d times about a cached request", recalled)
	}
}
