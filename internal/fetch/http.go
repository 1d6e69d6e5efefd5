package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// MaxBody caps how much of a response body is read. Passwork attachments are
// at most 5 MB (base64 inflates that); nothing legitimate comes near this.
const MaxBody = 64 << 20

// Observer is told about every HTTP attempt; metrics hang off it. status is
// the HTTP status code as text, or "error" for a transport failure. It must
// not be given anything secret, and never is: only the provider name, the
// method and the status.
type Observer func(provider, method, status string, d time.Duration)

// HTTP sends requests for one provider, retrying what is worth retrying:
// transport errors, 429 and 502/503/504, with exponential backoff and full
// jitter, honouring Retry-After. The zero value is not usable; set Client
// and Provider.
type HTTP struct {
	Client   *http.Client
	Provider string // label for errors and metrics ("passwork")

	// MaxAttempts is the total number of tries (default 4).
	MaxAttempts int
	// BaseDelay is the first backoff step (default 200ms); it doubles per
	// attempt up to MaxDelay (default 5s).
	BaseDelay, MaxDelay time.Duration
	// MaxRetryAfter is the longest Retry-After this client will wait in
	// place (default 30s). A longer one is returned as a *StatusError with
	// RetryAfter set, so a daemon can schedule its next attempt instead.
	MaxRetryAfter time.Duration

	Observe Observer

	// bodyLimit overrides MaxBody; tests set it small.
	bodyLimit int64
}

// Request is one HTTP request. Body is kept as bytes so that it can be sent
// again on retry.
type Request struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
	// NoRetry disables retries, for requests that are not safe to repeat
	// (a token refresh that consumes the old token).
	NoRetry bool
}

// Response is a fully read HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// StatusError is an HTTP response the provider did not accept. Message is
// the server's own error text (never a secret: servers do not echo them).
type StatusError struct {
	Provider   string
	Method     string
	Path       string // URL path without the query, which may hold names
	Status     int
	Code       string // provider error code, when the body has one
	Message    string
	RetryAfter time.Duration // from a 429/503 Retry-After header, if any
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: %s %s: HTTP %d", e.Provider, e.Method, e.Path, e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

// Do sends req, retrying as described on HTTP. Any 2xx-5xx response that is
// not retried is returned as a Response with a nil error: deciding what a
// status means is the provider's job. A response that is still retryable
// after the last attempt is returned as a *StatusError.
func (h *HTTP) Do(ctx context.Context, req Request) (*Response, error) {
	attempts := h.MaxAttempts
	if attempts <= 0 {
		attempts = 4
	}
	if req.NoRetry {
		attempts = 1
	}
	var lastErr error
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			wait := h.backoff(attempt)
			var se *StatusError
			if errors.As(lastErr, &se) && se.RetryAfter > 0 {
				wait = se.RetryAfter
			}
			if err := sleep(ctx, wait); err != nil {
				return nil, fmt.Errorf("%s: %s %s: %w (last error: %v)", h.Provider, req.Method, urlPath(req.URL), err, lastErr)
			}
		}
		resp, err := h.once(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s: %s %s: %w", h.Provider, req.Method, urlPath(req.URL), ctx.Err())
			}
			var fe *finalError
			if errors.As(err, &fe) {
				return nil, fmt.Errorf("%s: %s %s: %w", h.Provider, req.Method, urlPath(req.URL), fe.err)
			}
			lastErr = fmt.Errorf("%s: %s %s: %w", h.Provider, req.Method, urlPath(req.URL), err)
			continue
		}
		if !retryable(resp.Status) {
			return resp, nil
		}
		se := &StatusError{
			Provider: h.Provider, Method: req.Method, Path: urlPath(req.URL),
			Status: resp.Status, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		}
		if se.Status == http.StatusTooManyRequests {
			se.Message = "rate limited"
		}
		lastErr = se
		if se.RetryAfter > h.maxRetryAfter() {
			return nil, se // too long to wait here; let the caller schedule it
		}
	}
	return nil, lastErr
}

func (h *HTTP) once(ctx context.Context, req Request) (*Response, error) {
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, req.URL, body)
	if err != nil {
		return nil, &finalError{err} // the same request would fail the same way
	}
	for k, v := range req.Header {
		hr.Header[k] = v
	}
	start := time.Now()
	resp, err := h.Client.Do(hr)
	if err != nil {
		h.observe(req.Method, "error", time.Since(start))
		// *url.Error repeats the whole URL, query included; Do names the
		// method and path itself.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	defer resp.Body.Close()
	limit := h.bodyLimit
	if limit <= 0 {
		limit = MaxBody
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	h.observe(req.Method, strconv.Itoa(resp.StatusCode), time.Since(start))
	if err != nil {
		return nil, fmt.Errorf("reading response body: %w", err)
	}
	if int64(len(data)) > limit {
		// Downloading it again would only hit the same limit.
		return nil, &finalError{fmt.Errorf("response body larger than %d bytes", limit)}
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// finalError marks a failure of once that retrying cannot fix.
type finalError struct{ err error }

func (e *finalError) Error() string { return e.err.Error() }
func (e *finalError) Unwrap() error { return e.err }

func (h *HTTP) observe(method, status string, d time.Duration) {
	if h.Observe != nil {
		h.Observe(h.Provider, method, status, d)
	}
}

func (h *HTTP) maxRetryAfter() time.Duration {
	if h.MaxRetryAfter > 0 {
		return h.MaxRetryAfter
	}
	return 30 * time.Second
}

// backoff returns the wait before the given retry: full jitter over an
// exponentially growing window.
func (h *HTTP) backoff(attempt int) time.Duration {
	base, max := h.BaseDelay, h.MaxDelay
	if base <= 0 {
		base = 200 * time.Millisecond
	}
	if max <= 0 {
		max = 5 * time.Second
	}
	return Backoff(base, max, attempt)
}

// Backoff returns a random duration in [window/2, window] where window is
// base·2^(attempt-1) capped at max. Half the window is kept fixed so retries
// never collapse to zero delay.
func Backoff(base, max time.Duration, attempt int) time.Duration {
	w := base
	for i := 1; i < attempt && w < max; i++ {
		w *= 2
	}
	if w > max {
		w = max
	}
	return w/2 + rand.N(w/2+1)
}

func retryable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// urlPath strips scheme, host and query from a URL for error messages: the
// query may carry entry names, which are not secret but are noisy.
func urlPath(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.EscapedPath()
}

// Options are what the caller (the CLI) hands every provider constructor:
// the HTTP client (TLS settings, timeouts), the metrics hook and retry
// tuning. Tests set tiny delays so retries cost milliseconds.
type Options struct {
	Client        *http.Client // nil means a client with a 30s timeout
	Observe       Observer
	MaxAttempts   int
	BaseDelay     time.Duration
	MaxDelay      time.Duration
	MaxRetryAfter time.Duration
}

// NewHTTP returns the retrying transport for one provider. Its client never
// follows redirects: Go would re-send Authorization and Cookie on a same-host
// https→http downgrade, custom auth headers (Passwork-Auth, X-CSRF-Token) to
// any host, and request bodies on 307/308. A redirect is returned to the
// provider as a 3xx response instead. o.Client itself is left untouched.
func (o Options) NewHTTP(provider string) *HTTP {
	c := &http.Client{Timeout: 30 * time.Second}
	if o.Client != nil {
		cp := *o.Client
		c = &cp
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &HTTP{
		Client: c, Provider: provider, Observe: o.Observe,
		MaxAttempts: o.MaxAttempts, BaseDelay: o.BaseDelay, MaxDelay: o.MaxDelay, MaxRetryAfter: o.MaxRetryAfter,
	}
}
