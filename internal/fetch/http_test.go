package fetch

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scripted serves the given statuses in order (then 200s), setting
// Retry-After where given, and counts requests.
func scripted(t *testing.T, steps ...struct {
	status     int
	retryAfter string
}) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i < len(steps) {
			if steps[i].retryAfter != "" {
				w.Header().Set("Retry-After", steps[i].retryAfter)
			}
			w.WriteHeader(steps[i].status)
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

type step = struct {
	status     int
	retryAfter string
}

func fastHTTP() *HTTP {
	return Options{BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, MaxRetryAfter: 2 * time.Second}.NewHTTP("test")
}

func TestHTTPRetries(t *testing.T) {
	tests := []struct {
		name     string
		steps    []step
		wantCode int    // status of the returned response, 0 for an error
		wantErr  string // substring of the error
		requests int32
	}{
		{"success", nil, 200, "", 1},
		{"429 then ok", []step{{429, "0"}}, 200, "", 2},
		{"503 twice then ok", []step{{503, ""}, {503, ""}}, 200, "", 3},
		{"502 and 504 are retried", []step{{502, ""}, {504, ""}}, 200, "", 3},
		{"500 is not retried", []step{{500, ""}}, 500, "", 1},
		{"404 is the provider's to judge", []step{{404, ""}}, 404, "", 1},
		{"gives up after MaxAttempts", []step{{503, ""}, {503, ""}, {503, ""}, {503, ""}}, 0, "test: GET /x: HTTP 503", 4},
		{"Retry-After too long is returned, not waited", []step{{429, "3600"}}, 0, "rate limited (retry after 1h0m0s)", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, n := scripted(t, tt.steps...)
			resp, err := fastHTTP().Do(context.Background(), Request{Method: "GET", URL: srv.URL + "/x?name=secret-path"})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret-path") {
					t.Errorf("error carries the query: %v", err)
				}
			} else if err != nil || resp.Status != tt.wantCode {
				t.Fatalf("resp %+v err %v, want status %d", resp, err, tt.wantCode)
			}
			if got := n.Load(); got != tt.requests {
				t.Errorf("%d requests, want %d", got, tt.requests)
			}
		})
	}
}

func TestHTTPRetryAfterIsHonoured(t *testing.T) {
	srv, n := scripted(t, step{429, "1"})
	start := time.Now()
	if _, err := fastHTTP().Do(context.Background(), Request{Method: "GET", URL: srv.URL}); err != nil {
		t.Fatal(err)
	}
	// A lower bound only: the client waited at least what the server asked.
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("retried after %v, before the server's Retry-After of 1s", waited)
	}
	if n.Load() != 2 {
		t.Errorf("%d requests", n.Load())
	}
	var se *StatusError
	_, err := fastHTTP().Do(context.Background(), Request{Method: "GET", URL: mustServe(t, 429, "7200").URL})
	if !errors.As(err, &se) || se.RetryAfter != 2*time.Hour || se.Status != 429 {
		t.Errorf("err = %#v, want a *StatusError with RetryAfter 2h", err)
	}
}

func mustServe(t *testing.T, status int, retryAfter string) *httptest.Server {
	srv, _ := scripted(t, step{status, retryAfter}, step{status, retryAfter})
	return srv
}

func TestHTTPNoRetryAndBody(t *testing.T) {
	srv, n := scripted(t, step{503, ""})
	_, err := fastHTTP().Do(context.Background(), Request{Method: "POST", URL: srv.URL, Body: []byte("{}"), NoRetry: true})
	if err == nil || n.Load() != 1 {
		t.Errorf("NoRetry: err %v after %d requests", err, n.Load())
	}
	// A retried POST sends its body again.
	var bodies []string
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 16)
		k, _ := r.Body.Read(b)
		bodies = append(bodies, string(b[:k]))
		if len(bodies) == 1 {
			w.WriteHeader(503)
		}
	}))
	defer srv2.Close()
	if _, err := fastHTTP().Do(context.Background(), Request{Method: "POST", URL: srv2.URL, Body: []byte("payload")}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(bodies, ",") != "payload,payload" {
		t.Errorf("bodies = %q", bodies)
	}
}

func TestHTTPTransportErrorsNameNoQuery(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	_, err = fastHTTP().Do(context.Background(), Request{Method: "GET", URL: "http://" + addr + "/items/search?query=prod-db"})
	if err == nil || !strings.Contains(err.Error(), "test: GET /items/search: ") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "prod-db") {
		t.Errorf("error carries the query: %v", err)
	}
}

func TestHTTPContextCancel(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := fastHTTP().Do(ctx, Request{Method: "GET", URL: srv.URL})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
}

func TestObserverSeesEveryAttempt(t *testing.T) {
	srv, _ := scripted(t, step{503, ""})
	var seen []string
	h := fastHTTP()
	h.Observe = func(provider, method, status string, d time.Duration) {
		seen = append(seen, provider+" "+method+" "+status)
	}
	if _, err := h.Do(context.Background(), Request{Method: "GET", URL: srv.URL}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, ",") != "test GET 503,test GET 200" {
		t.Errorf("observed %q", seen)
	}
}

func TestBackoffBounds(t *testing.T) {
	for attempt := 1; attempt < 10; attempt++ {
		w := 100 * time.Millisecond << (attempt - 1)
		if w > time.Second {
			w = time.Second
		}
		for range 50 {
			d := Backoff(100*time.Millisecond, time.Second, attempt)
			if d < w/2 || d > w {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, w/2, w)
			}
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"": 0, "0": 0, "5": 5 * time.Second, "-3": 0, "soon": 0,
		"Thu, 01 Jan 2026 00:01:00 GMT": time.Minute,
		"Wed, 31 Dec 2025 23:00:00 GMT": 0,
		// A year is read as the ceiling; so is what would overflow
		// time.Duration (seconds × 1e9 past 2^63) or even int64.
		"31536000":                      MaxRetryAfter,
		"9300000000":                    MaxRetryAfter,
		"99999999999999999999":          MaxRetryAfter,
		"Fri, 01 Jan 2100 00:00:00 GMT": MaxRetryAfter,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestHTTPDoesNotFollowRedirects(t *testing.T) {
	var reached atomic.Int32
	var leaked atomic.Value
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		leaked.Store(r.Header.Get("Authorization") + r.Header.Get("Passwork-Auth"))
	}))
	defer target.Close()
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+"/stolen", code)
			}))
			defer origin.Close()
			// A caller-supplied client with its own redirect policy must be
			// overridden, and not modified.
			own := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
			h := Options{Client: own, BaseDelay: time.Millisecond}.NewHTTP("test")
			resp, err := h.Do(context.Background(), Request{
				Method: "POST", URL: origin.URL, Body: []byte("secret-body"),
				Header: http.Header{"Authorization": {"Bearer canary"}, "Passwork-Auth": {"canary"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != code {
				t.Errorf("status = %d, want the redirect itself (%d)", resp.Status, code)
			}
			if n := reached.Load(); n != 0 {
				t.Errorf("redirect target received %d requests (headers %q)", n, leaked.Load())
			}
			if own.CheckRedirect == nil || own.CheckRedirect(nil, nil) != nil {
				t.Error("caller's client was modified")
			}
		})
	}
}

func TestHTTPFinalErrorsAreNotRetried(t *testing.T) {
	var n atomic.Int32
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Write([]byte(strings.Repeat("x", 100)))
	}))
	defer big.Close()
	tests := []struct {
		name     string
		req      Request
		wantErr  string
		requests int32
	}{
		{"oversized body", Request{Method: "GET", URL: big.URL}, "larger than 64 bytes", 1},
		{"over the request's own limit", Request{Method: "GET", URL: big.URL, MaxBody: 10}, "larger than 10 bytes", 1},
		{"bad method", Request{Method: "GE T", URL: big.URL}, "invalid method", 0},
		{"bad URL", Request{Method: "GET", URL: "http://127.0.0.1/\x7f"}, "invalid control character", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n.Store(0)
			// A retry would wait an hour; the deadline turns that into a
			// failure rather than a hang.
			h := Options{BaseDelay: time.Hour, MaxDelay: time.Hour}.NewHTTP("test")
			h.bodyLimit = 64
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := h.Do(ctx, tt.req)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("request was retried: %v", err)
			}
			if got := n.Load(); got != tt.requests {
				t.Errorf("%d requests, want %d", got, tt.requests)
			}
		})
	}
}

// TestReadBody: bodies with and without a Content-Length, at, under and
// over the limit, and bodies that end early; each read as it is, hashed
// while read (Request.Bodies), and hashed and recalled (not returned).
func TestReadBody(t *testing.T) {
	const limit = 4 * scratchSize
	for _, tc := range []readBodyCase{
		{"empty", 0, false, -1, false, ""},
		{"sized", 5000, false, -1, false, ""},
		{"sized at the limit", limit, false, -1, false, ""},
		{"sized over the limit", limit + 1, false, -1, false, "larger than 512 KiB"},
		{"chunked", 5000, true, -1, false, ""},
		{"chunked over several chunks", limit, true, -1, false, ""},
		{"chunked, filling the scratch buffer", scratchSize, true, -1, false, ""},
		{"chunked, beyond the scratch buffer", 3*scratchSize + 7, true, -1, false, ""},
		{"chunked over the limit", limit + 1, true, -1, false, "larger than 512 KiB"},
		{"shorter than announced", 10, false, 20, true, "unexpected EOF"},
		{"chunked, cut short", 5000, true, -1, true, "unexpected EOF"},
		{"chunked, cut short after a whole scratch buffer", scratchSize + 3000, true, -1, true, "unexpected EOF"},
	} {
		for _, mode := range []string{"read", "hashed", "recalled"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) { tc.run(t, limit, mode) })
		}
	}
}

type readBodyCase struct {
	name     string
	n        int
	chunked  bool
	announce int  // a false Content-Length to send, -1 for the true one
	cut      bool // end the connection before the body is complete
	wantErr  string
}

func (tc readBodyCase) run(t *testing.T, limit int, mode string) {
	body := make([]byte, tc.n)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case tc.chunked:
			for i := 0; i < len(body); i += 1000 {
				w.Write(body[i:min(i+1000, len(body))])
				w.(http.Flusher).Flush()
			}
		case tc.announce >= 0:
			w.Header().Set("Content-Length", strconv.Itoa(tc.announce))
			w.Write(body)
		default:
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body)
		}
		if tc.cut {
			// End the connection early, as a server that dies would: no
			// last chunk, or fewer bytes than announced.
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
		}
	}))
	defer srv.Close()
	h := Options{MaxAttempts: 1}.NewHTTP("test")
	h.bodyLimit = int64(limit)
	req := Request{Method: "GET", URL: srv.URL}
	var bodies Bodies
	asked := 0
	if mode != "read" {
		req.Bodies = &bodies
		req.Recall = func(k BodyKey) bool {
			asked++
			if k != bodies.Key(body) {
				t.Errorf("recall asked about key %v, want the body's, %v", k, bodies.Key(body))
			}
			return mode == "recalled"
		}
	}
	resp, err := h.Do(context.Background(), req)
	if tc.wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Fatalf("err = %v, want %q", err, tc.wantErr)
		}
		if asked > 0 {
			t.Errorf("recall asked about a body that did not arrive whole")
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if mode == "read" && (resp.Keyed || resp.Recalled) {
		t.Errorf("a request without Bodies got a key")
	}
	if mode != "read" && (!resp.Keyed || asked != 1) { // recall checks the key it is asked about
		t.Errorf("keyed %v, recall asked %d times; want keyed, once", resp.Keyed, asked)
	}
	if mode == "recalled" {
		if !resp.Recalled || resp.Body != nil {
			t.Errorf("a recalled body was returned (%d bytes, Recalled %v)", len(resp.Body), resp.Recalled)
		}
		return
	}
	if resp.Recalled || string(resp.Body) != string(body) {
		t.Errorf("read %d bytes, want the %d sent", len(resp.Body), len(body))
	}
}

// A body read through the reused scratch buffer is the caller's own: the
// next read does not change it.
func TestReadBodyOwnsItsBytes(t *testing.T) {
	var fill atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := []byte(strings.Repeat(string(rune('A'+fill.Add(1)-1)), 3000))
		w.Write(b[:1000])
		w.(http.Flusher).Flush() // chunked: no Content-Length
		w.Write(b[1000:])
	}))
	defer srv.Close()
	h := Options{MaxAttempts: 1}.NewHTTP("test")
	var bodies [][]byte
	for range 3 {
		resp, err := h.Do(context.Background(), Request{Method: "GET", URL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, resp.Body)
	}
	for i, b := range bodies {
		if want := strings.Repeat(string(rune('A'+i)), 3000); string(b) != want {
			t.Errorf("body %d changed after later reads: %.20q…", i, b)
		}
	}
}

// A body in the pooled range is read whole, with or without a
// Content-Length, into a power-of-two buffer; ReleaseBody clears it
// before it can be handed to another response, and leaves alone what is
// not such a buffer.
func TestPooledBodies(t *testing.T) {
	body := []byte(strings.Repeat("ciphertext", 10<<10)) // 100 KiB
	for _, cl := range []int64{int64(len(body)), -1} {
		got, err := readBody(strings.NewReader(string(body)), cl, MaxBody, nil)
		if err != nil || string(got) != string(body) {
			t.Fatalf("Content-Length %d: read %d bytes, %v", cl, len(got), err)
		}
		if cap(got) != 128<<10 {
			t.Errorf("Content-Length %d: capacity %d, want a pooled 128 KiB buffer", cl, cap(got))
		}
		ReleaseBody(got)
		if strings.Trim(string(got[:cap(got)]), "\x00") != "" {
			t.Errorf("Content-Length %d: a released body still holds what the server sent", cl)
		}
	}
	// The next body of the same size class may get a released buffer: it
	// holds exactly what this response sent, nothing of the last one.
	next := strings.Repeat("n", 70<<10)
	got, err := readBody(strings.NewReader(next), int64(len(next)), MaxBody, nil)
	if err != nil || string(got) != next {
		t.Fatalf("second body: read %d bytes, %v", len(got), err)
	}
	if strings.Trim(string(got[len(got):cap(got)]), "\x00") != "" {
		t.Error("a reused buffer holds bytes of an earlier response past the new body")
	}
	small, _ := readBody(strings.NewReader("[]"), -1, MaxBody, nil)
	sub := body[1:]
	ReleaseBody(small)
	ReleaseBody(sub)
	if string(small) != "[]" || string(sub) != string(body[1:]) {
		t.Error("ReleaseBody cleared a buffer it does not pool")
	}
}
