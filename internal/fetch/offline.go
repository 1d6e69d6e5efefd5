package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
)

// Cache is where HTTP keeps the responses to requests marked
// Request.Cache and where it turns when the server is unavailable
// (internal/cache implements it on disk). What a provider marks is
// ciphertext as the server sent it: the cache never sees a decrypted
// value, a key or a token.
type Cache interface {
	// Save records a 2xx response to a cacheable request, under key.
	Save(provider, key string, resp *Response)
	// Serve answers a cacheable request the server could not answer;
	// cause says why. With no response young enough it returns an error
	// that wraps cause. Either way the provider counts as down for the
	// rest of the run (see Down).
	Serve(provider, key string, cause error) (*Response, error)
	// Down returns the outage that made provider fall back to the cache
	// in this run, or nil: its next requests skip the server.
	Down(provider string) error
	// Usable returns nil when provider has responses young enough to
	// serve, so that a provider may go on without the login its server
	// cannot answer; otherwise why not ("holds no response", "past its
	// maximum age"), for the error.
	Usable(provider string) error
	// Refuse drops what provider's responses this run would keep, and
	// its cache file at the end of the run: a response turned out to
	// hold something readable without the credentials (reason says
	// what, never the value).
	Refuse(provider, reason string)
}

// Unavailable reports whether err, the result of Do, means the server
// could not be reached or could not answer: a transport failure or
// timeout, or 429/5xx after the retries. Those, and only those, are
// answered from a Cache; an authentication failure (401/403), a refusal
// or a response the provider cannot use never is.
func Unavailable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) {
		return true
	}
	var se *StatusError
	return errors.As(err, &se) && (se.Status == http.StatusTooManyRequests || se.Status >= 500)
}

// Offline reports whether this provider has fallen back to the cache in
// the current run: it then skips requests the cache cannot answer, such
// as a login, and sends the rest without credentials (the cache answers
// them; see ContinueOffline).
func (h *HTTP) Offline() bool {
	return h.Cache != nil && h.Cache.Down(h.Provider) != nil
}

// ContinueOffline decides whether a provider whose login (or other
// uncached request) failed with err may go on without it: it returns nil
// when err is an outage and the cache holds responses young enough to
// resolve from, and marks the provider down for the rest of the run.
// Otherwise it returns err, saying why the cache could not help when it
// was consulted.
func (h *HTTP) ContinueOffline(ctx context.Context, err error) error {
	if h.Cache == nil || !Unavailable(ctx, err) {
		return err
	}
	if why := h.Cache.Usable(h.Provider); why != nil {
		return fmt.Errorf("%w (%v)", err, why)
	}
	_, _ = h.Cache.Serve(h.Provider, "", err) // records the outage
	return nil
}

// KeepNothing tells the cache that this run's responses of this provider
// must not be kept: one of them turned out to hold a value readable
// without the credentials (an entry stored without client-side
// encryption). reason says what, never the value. A nil h (a client
// built without a transport, in tests) has nothing to tell.
func (h *HTTP) KeepNothing(reason string) {
	if h != nil && h.Cache != nil {
		h.Cache.Refuse(h.Provider, reason)
	}
}

// cached is Do for a request marked Cache: a 2xx response is saved, and
// an outage is answered from the cache.
func (h *HTTP) cached(ctx context.Context, req Request) (*Response, error) {
	key := cacheKey(req)
	if cause := h.Cache.Down(h.Provider); cause != nil {
		return h.Cache.Serve(h.Provider, key, cause)
	}
	resp, err := h.do(ctx, req)
	if err == nil && resp.Status >= 500 && ctx.Err() == nil {
		// A 500 is not retried (it may be this request's fault), but
		// it is no answer either.
		err = &StatusError{Provider: h.Provider, Method: req.Method, Path: urlPath(req.URL), Status: resp.Status}
	}
	switch {
	case err == nil && resp.Status >= 200 && resp.Status < 300:
		h.Cache.Save(h.Provider, key, resp)
	case Unavailable(ctx, err):
		return h.Cache.Serve(h.Provider, key, err)
	}
	return resp, err
}

// cacheKey names a request by what selects its answer: method, URL and
// body. Headers (credentials) are left out, so a run with a renewed token
// finds the same entries; the key is a hash, so no URL is stored.
func cacheKey(req Request) string {
	h := sha256.New()
	h.Write([]byte(req.Method + " " + req.URL + "\n"))
	h.Write(req.Body)
	return hex.EncodeToString(h.Sum(nil))
}
