package passbolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/injector-dev/injector/internal/fetch"
)

// envelope is the wrapper around every Passbolt JSON response.
type envelope struct {
	Header envelopeHeader `json:"header"`
	Body   jsontext.Value `json:"body"` // decoded by the caller, into its own type
}

type envelopeHeader struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	URL     string `json:"url"`
	Code    int    `json:"code"`
}

// envelopeInto is an envelope whose body is decoded straight into the
// caller's type in the same pass as the header: a listing is scanned once,
// not once for the envelope and again for its body.
type envelopeInto struct {
	Header envelopeHeader `json:"header"`
	Body   bodyInto       `json:"body"`
}

// bodyInto decodes a body into out and remembers that there was one and
// whether decoding it failed (the body is malformed, not the envelope).
type bodyInto struct {
	out  any
	seen bool
	err  error
}

func (b *bodyInto) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	b.seen = true
	b.err = jsonv2.UnmarshalDecode(dec, b.out)
	return b.err
}

// reply is a decoded response: HTTP status, headers and envelope. When
// the request was sent with an out value and the status is 200, the body
// was decoded into out (decoded true) and env.Body is empty.
type reply struct {
	status  int
	header  http.Header
	env     envelope
	decoded bool
}

// send performs one request (the transport retries 429/5xx) with the given
// authentication and decodes the envelope. It does not judge the status.
func (c *Client) send(ctx context.Context, method, path string, body any, st authState, noRetry bool) (*reply, error) {
	return c.exchange(ctx, fetch.Request{Method: method, URL: c.base + path, NoRetry: noRetry}, path, body, st, nil)
}

// exchange is send for a prepared request (Method, URL and the flags set).
// With out non-nil, a 200 body is decoded into out in the same pass as the
// envelope, armored messages in it kept as slices of the response
// (armored); a body that does not fit out is an error saying so.
func (c *Client) exchange(ctx context.Context, req fetch.Request, path string, body any, st authState, out any) (*reply, error) {
	method := req.Method
	req.Header = http.Header{}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("passbolt: encoding %s request: %w", pathOnly(path), err)
		}
		req.Body = b
		req.Header.Set("Content-Type", "application/json")
	}
	st.apply(req.Header, method)
	resp, err := c.http.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	r := &reply{status: resp.Status, header: resp.Header}
	if resp.Status == http.StatusFound || resp.Status == http.StatusSeeOther {
		// Only seen when the HTTP client does not follow redirects.
		if strings.Contains(resp.Header.Get("Location"), "/mfa/verify") {
			return nil, ErrMFARequired
		}
		return r, nil
	}
	if raw, ok := out.(*rawBody); ok && resp.Status == http.StatusOK {
		raw.resp = resp.Body
		if header, body, ok := splitEnvelope(resp.Body); ok && fetch.UnmarshalJSON(header, &r.env.Header) == nil {
			raw.value, r.decoded = body, true
			return r, nil
		}
		r.env.Header = envelopeHeader{} // not the fast shape: decoded as any other below
		out = &raw.value
	}
	if resp.Status == http.StatusOK && out != nil {
		env := envelopeInto{Body: bodyInto{out: out}}
		err := fetch.UnmarshalJSON(resp.Body, &env, armoredIn(resp.Body))
		if err != nil && env.Body.err != nil || err == nil && !env.Body.seen {
			// The JSON error is not wrapped: its text can quote a byte of the body.
			return nil, fmt.Errorf("passbolt: %s %s: malformed response body", method, pathOnly(path))
		}
		if err == nil {
			r.env.Header, r.decoded = env.Header, true
			return r, nil
		}
		// Not an envelope: reported as below.
	}
	if err := fetch.UnmarshalJSON(resp.Body, &r.env); err != nil {
		return nil, &fetch.StatusError{Provider: "passbolt", Method: method, Path: pathOnly(path), Status: resp.Status,
			Message: "response is not a Passbolt JSON envelope"}
	}
	if resp.Status == http.StatusForbidden && strings.HasSuffix(pathOnly(r.env.Header.URL), "/mfa/verify/error.json") {
		return nil, ErrMFARequired
	}
	return r, nil
}

// statusError turns an unexpected reply into a *fetch.StatusError carrying
// the server's message (Passbolt never echoes secrets in messages).
func (r *reply) statusError(method, path string) error {
	return &fetch.StatusError{Provider: "passbolt", Method: method, Path: pathOnly(path), Status: r.status,
		Message: r.env.Header.Message}
}

// get fetches an authenticated JSON endpoint into out, logging in first
// when needed and re-authenticating once on 401.
// The body is decoded in one pass with the envelope (exchange).
func (c *Client) get(ctx context.Context, path string, out any) (status int, err error) {
	r, err := c.authed(ctx, http.MethodGet, path, out)
	if err != nil {
		return 0, err
	}
	if r.status != http.StatusOK || !r.decoded {
		return r.status, r.statusError(http.MethodGet, path)
	}
	return r.status, nil
}

// authed sends a request with the current credentials; on 401 it
// refreshes or logs in again and retries once. What it reads is
// ciphertext and names (resources, folders, secrets encrypted to the
// user's key, metadata keys encrypted to it, resource types), so it may be
// kept in the ciphertext cache (fetch.Request.Cache).
func (c *Client) authed(ctx context.Context, method, path string, out any) (*reply, error) {
	st, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	req := fetch.Request{Method: method, URL: c.base + path, Cache: method == http.MethodGet}
	r, err := c.exchange(ctx, req, path, nil, st, out)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusUnauthorized {
		return r, nil
	}
	if st, err = c.reauth(ctx, st); err != nil {
		return nil, err
	}
	if r, err = c.exchange(ctx, req, path, nil, st, out); err != nil {
		return nil, err
	}
	if r.status == http.StatusUnauthorized {
		return nil, fmt.Errorf("%w (still unauthorized right after logging in)", r.statusError(method, path))
	}
	return r, nil
}

// wrap adds context to err with a single "passbolt: " prefix: errors from
// the transport and *fetch.StatusError already start with one.
func wrap(context string, err error) error {
	return &wrapped{msg: "passbolt: " + context + ": " + strings.TrimPrefix(err.Error(), "passbolt: "), err: err}
}

type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }

func pathOnly(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	return p
}

// splitEnvelope finds the header and body values of an envelope of exactly
// two members, {"header":…,"body":…} in either order, without decoding
// or validating the body: what the server sends for every listing. A
// listing's body is then hashed and, when it is byte for byte one decoded
// before (every warm refresh of unchanged data), never scanned as JSON at
// all; otherwise the caller decodes it, which validates it. The envelope's
// own structure is checked here, and its header by decoding it, so a body
// that is valid JSON makes the whole envelope valid. Anything else (other
// members, escaped names, text around the object) is not ok, and is
// decoded the ordinary way.
func splitEnvelope(data []byte) (header, body []byte, ok bool) {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return nil, nil, false
	}
	for i++; ; i++ { // one member per turn; i is past '{' or ','
		i = skipSpace(data, i)
		end, ok := skipString(data, i)
		if !ok {
			return nil, nil, false
		}
		name := string(data[i:end])
		if i = skipSpace(data, end); i == len(data) || data[i] != ':' {
			return nil, nil, false
		}
		i = skipSpace(data, i+1)
		if end, ok = skipValue(data, i); !ok {
			return nil, nil, false
		}
		switch {
		case name == `"header"` && header == nil:
			header = data[i:end:end]
		case name == `"body"` && body == nil:
			body = data[i:end:end]
		default:
			return nil, nil, false
		}
		if i = skipSpace(data, end); i == len(data) {
			return nil, nil, false
		}
		if data[i] == '}' {
			break
		}
		if data[i] != ',' {
			return nil, nil, false
		}
	}
	if skipSpace(data, i+1) != len(data) || header == nil || body == nil {
		return nil, nil, false
	}
	return header, body, true
}

// skipSpace returns the index of the first byte from i on that is not
// JSON whitespace.
func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t') {
		i++
	}
	return i
}

// skipString returns the end of the string that starts at i: past the
// first quote not escaped by a backslash. The content is not checked.
func skipString(data []byte, i int) (int, bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, false
	}
	for j := i + 1; ; {
		k := bytes.IndexByte(data[j:], '"')
		if k < 0 {
			return 0, false
		}
		q := j + k
		n := 0 // backslashes right before the quote
		for q-n-1 > i && data[q-n-1] == '\\' {
			n++
		}
		if n%2 == 0 {
			return q + 1, true
		}
		j = q + 1
	}
}

// skipValue returns the end of the value that starts at i: a string, an
// object or array (to its matching close, strings skipped), or a literal
// (to the next delimiter). Nothing else is checked.
func skipValue(data []byte, i int) (int, bool) {
	if i >= len(data) {
		return 0, false
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				end, ok := skipString(data, i)
				if !ok {
					return 0, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return 0, false
	}
	start := i
	for i < len(data) && strings.IndexByte(",}] \t\r\n", data[i]) < 0 {
		i++
	}
	return i, i > start
}
