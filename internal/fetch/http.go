package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// MaxBody caps how much of a response body is read, unless the request
// sets a lower Request.MaxBody. Passwork attachments are at most 5 MB
// (base64 inflates that) and a Passbolt resource list is one response;
// nothing legitimate comes near this.
const MaxBody = 64 << 20

// MaxRetryAfter is the longest Retry-After a response is read as: a
// server asking for more (a year: 31536000) gets this, which also keeps
// the seconds-to-duration arithmetic far from overflowing. Callers cap
// far lower; see HTTP.MaxRetryAfter and the daemon's retry limits.
const MaxRetryAfter = 24 * time.Hour

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
	// OnRetry, if set, is told about every retry before its wait, so an
	// operator can see a slow or failing server.
	OnRetry func(Retry)

	// Cache, if set, keeps the responses to requests marked Cache and
	// answers them when the server is unavailable (see Cache).
	Cache Cache

	// bodyLimit overrides MaxBody; tests set it small.
	bodyLimit int64
}

// Retry describes one retry that HTTP.Do is about to wait for. Err is why
// the last attempt failed: a transport error or a *StatusError, never a
// secret.
type Retry struct {
	Provider, Method, Path string
	Attempt, MaxAttempts   int           // the attempt about to be made, of how many
	Delay                  time.Duration // the wait before it
	RetryAfter             bool          // Delay is the server's Retry-After
	Err                    error
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
	// MaxBody, if positive, caps the response body below the client's
	// limit (MaxBody): a provider knows how big each reply can sensibly be.
	MaxBody int64
	// Cache marks a read whose response is ciphertext only (no token,
	// no key that opens without the user's credentials): it may be kept
	// in HTTP.Cache and served from there during an outage.
	Cache bool
	// Bodies and Recall, if both set, are the memo the caller keeps
	// decoded bodies in and how it looks one up: a 2xx body is hashed as
	// it is read and its key given to Recall, and if Recall reports
	// that the caller has what the body decodes to, the body is not
	// copied out of the buffers it was read into (Response.Recalled, and
	// Body is nil). A request answered through HTTP.Cache is not keyed:
	// the cache keeps bodies.
	Bodies *Bodies
	Recall func(BodyKey) bool
}

// Response is a fully read HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// Keyed reports that the body was hashed (with Request.Bodies' seeds)
	// and Request.Recall asked about its key; Recalled, that Recall took
	// it, and Body is nil.
	Keyed, Recalled bool
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
// after the last attempt is returned as a *StatusError. A request marked
// Cache goes through h.Cache, when there is one.
func (h *HTTP) Do(ctx context.Context, req Request) (*Response, error) {
	if req.Cache && h.Cache != nil {
		req.Bodies, req.Recall = nil, nil // the cache keeps the body
		return h.cached(ctx, req)
	}
	return h.do(ctx, req)
}

func (h *HTTP) do(ctx context.Context, req Request) (*Response, error) {
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
			fromServer := errors.As(lastErr, &se) && se.RetryAfter > 0
			if fromServer {
				wait = se.RetryAfter
			}
			if h.OnRetry != nil {
				h.OnRetry(Retry{Provider: h.Provider, Method: req.Method, Path: urlPath(req.URL),
					Attempt: attempt + 1, MaxAttempts: attempts, Delay: wait, RetryAfter: fromServer, Err: lastErr})
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
			lastErr = fmt.Errorf("%s: %s %s: %w", h.Provider, req.Method, urlPath(req.URL), transportError{err})
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
	if req.MaxBody > 0 && req.MaxBody < limit {
		limit = req.MaxBody
	}
	var k *keying
	if req.Bodies != nil && req.Recall != nil && resp.StatusCode/100 == 2 {
		k = &keying{hash: req.Bodies.Hasher(), recall: req.Recall}
	}
	data, err := readBody(resp.Body, resp.ContentLength, limit, k)
	h.observe(req.Method, strconv.Itoa(resp.StatusCode), time.Since(start))
	if err != nil {
		var tl *tooLarge
		if errors.As(err, &tl) {
			// Downloading it again would only hit the same limit.
			return nil, &finalError{err}
		}
		return nil, fmt.Errorf("reading response body: %w", err)
	}
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
	if k != nil {
		out.Keyed, out.Recalled = true, k.recalled
	}
	return out, nil
}

// keying is what readBody does beside reading for a request with Bodies:
// hash the body as it comes and ask recall whether it is needed.
type keying struct {
	hash     *BodyHasher
	recall   func(BodyKey) bool
	recalled bool // recall took it: no body returned
}

// ErrBodyTooLarge is matched (errors.Is) by the error for a response
// body over the limit (MaxBody, Request.MaxBody).
var ErrBodyTooLarge = errors.New("response body too large")

// tooLarge is a body over the limit.
type tooLarge struct{ limit int64 }

func (e *tooLarge) Error() string {
	return fmt.Sprintf("response body larger than %s", byteSize(e.limit))
}

func (e *tooLarge) Is(target error) bool { return target == ErrBodyTooLarge }

// readBody reads a whole body of at most limit bytes, holding little more
// memory than the body needs: a body whose Content-Length is over the
// limit is refused before it is read, one with a Content-Length is read
// into a buffer of that length (from 64 KiB to 16 MiB, a pooled one whose
// capacity is the power of two at or above it, see ReleaseBody), and one
// without is read into reused scratch buffers and copied out once, at its
// size, into memory that need not be zeroed first. (io.ReadAll doubles
// its buffer as it grows, which costs up to three times the body at the
// moment of the last copy: 64 MiB
// from a hostile server peaked at over 200 MB. Here the peak is twice the
// body; a warm refresh of 10,000 PassAgent entries read 10 MB of pages
// into 30 MB of freshly zeroed chunks before.)
//
// With k, every body goes through the scratch buffers and is hashed
// there, piece by piece; a body k.recall takes is not copied out at all
// (nil, nil). A warm refresh of unchanged data reads its bodies without
// allocating them.
func readBody(r io.Reader, contentLength, limit int64, k *keying) ([]byte, error) {
	if contentLength > limit {
		return nil, &tooLarge{limit}
	}
	if contentLength >= 0 && k == nil {
		// net/http reports an early end as io.ErrUnexpectedEOF, and never
		// returns more than Content-Length bytes.
		data := bodyBuffer(int(contentLength))
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, err
		}
		return data, nil
	}
	var bufs []*[]byte // from the scratch pool
	var read [][]byte  // what each holds: all full but the last
	defer func() {
		for i, b := range bufs {
			if i < scratchKeep {
				clear(read[i]) // what a response carried does not linger in a reused buffer
				scratch.Put(b)
			}
		}
	}()
	var total int64
	for {
		b := scratch.Get().(*[]byte)
		bufs = append(bufs, b)
		n, err := fill(r, (*b)[:min(int64(scratchSize), limit+1-total)])
		read = append(read, (*b)[:n])
		total += int64(n)
		if total > limit {
			return nil, &tooLarge{limit}
		}
		if k != nil {
			k.hash.Write((*b)[:n])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err // a body cut short: io.ErrUnexpectedEOF
		}
	}
	if k != nil && k.recall(k.hash.Key()) {
		k.recalled = true
		return nil, nil
	}
	if total == 0 {
		return []byte{}, nil
	}
	if total < pooledBodyMin {
		return bytes.Join(read, nil), nil
	}
	data := bodyBuffer(int(total))[:0]
	for _, b := range read {
		data = append(data, b...)
	}
	return data, nil
}

// Bodies from pooledBodyMin to pooledBodyMax bytes are read into buffers
// of a power-of-two capacity that a caller done with the body gives back
// (ReleaseBody): a warm refresh that keeps nothing of its bodies (a body
// byte for byte one already decoded) then reads the next ones into memory
// already mapped, where a new buffer per body cost a page fault per 4 KiB
// (the runtime returns the freed ones to the kernel in between). Smaller
// bodies are cheap to allocate; a buffer nobody gives back is garbage as
// any other. The pools hold nothing across two collections unused.
const (
	pooledBodyShift    = 16 // log2(pooledBodyMin)
	pooledBodyMaxShift = 24 // log2(pooledBodyMax)
	pooledBodyMin      = 1 << pooledBodyShift
	pooledBodyMax      = 1 << pooledBodyMaxShift
)

var bodyPools [pooledBodyMaxShift - pooledBodyShift + 1]sync.Pool // by log2(capacity) - pooledBodyShift

// bodyPool returns the pool for buffers of capacity c, if c is one.
func bodyPool(c int) *sync.Pool {
	if c < pooledBodyMin || c > pooledBodyMax || c&(c-1) != 0 {
		return nil
	}
	return &bodyPools[bits.Len(uint(c))-1-pooledBodyShift]
}

// bodyBuffer returns a buffer of length n: a reused one when n is in the
// pooled range.
func bodyBuffer(n int) []byte {
	if n < pooledBodyMin || n > pooledBodyMax {
		return make([]byte, n)
	}
	c := 1 << bits.Len(uint(n-1)) // the power of two at or above n
	if b, ok := bodyPool(c).Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, c)
}

// ReleaseBody gives back a Response.Body its caller is done with, for a
// later response to be read into: the whole body as HTTP.Do returned it,
// never a slice of it or of another buffer. Nothing may point into it any
// more (no slice of it kept, no string made from it without a copy). It
// is cleared up to its capacity first: nothing a server sent lingers in a
// reused buffer. Bodies outside the pooled sizes are left to the
// collector.
func ReleaseBody(body []byte) {
	p := bodyPool(cap(body))
	if p == nil {
		return
	}
	body = body[:cap(body)]
	clear(body)
	p.Put(&body)
}

// fill reads into p until p is full or r ends. Unlike io.ReadFull it
// tells the end of r (io.EOF, with what it read) from a body cut short
// (net/http's io.ErrUnexpectedEOF, as the reader returns it).
func fill(r io.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := r.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// scratchSize is the size of readBody's reused buffers: a batch of
// Passwork entries, a page of a hundred PassAgent records. A body is read
// into as many as it needs; scratchKeep of them go back to the pool (which
// drops them when the collector runs), the rest of a huge body's are
// garbage at once.
const (
	scratchSize = 128 << 10
	scratchKeep = 16
)

var scratch = sync.Pool{New: func() any { b := make([]byte, scratchSize); return &b }}

// byteSize writes n bytes the way a person would: "64 MiB", "100 bytes".
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// ErrUnavailable is matched (errors.Is) by a transport failure: the
// server could not be reached, or did not answer in time, or the
// connection broke.
var ErrUnavailable = errors.New("server unavailable")

type transportError struct{ error }

func (e transportError) Unwrap() error        { return e.error }
func (e transportError) Is(target error) bool { return target == ErrUnavailable }

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
	// ParseInt saturates an out-of-range number at MaxInt64 (ErrRange).
	if s, err := strconv.ParseInt(v, 10, 64); (err == nil || errors.Is(err, strconv.ErrRange)) && s >= 0 {
		if s > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), MaxRetryAfter)
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
	OnRetry       func(Retry)
	// Cache, if set, is every provider's store of ciphertext responses
	// for outages (see Cache).
	Cache Cache
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
		OnRetry: o.OnRetry, Cache: o.Cache,
	}
}
