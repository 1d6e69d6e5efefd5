package passagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/injector-dev/injector/internal/crypto/envelope"
	"github.com/injector-dev/injector/internal/fetch"
)

// record is one entry as GET {URL}/passwords returns it. In V3, username,
// password and notes are null; the secrets are in encrypted_data.
type record struct {
	ID                string          `json:"id"`
	Name              string          `json:"name"`
	Website           string          `json:"website"`
	URL               string          `json:"url"`
	Tags              json.RawMessage `json:"tags"`
	EncryptionVersion int             `json:"encryption_version"`
	WrappedItemKey    string          `json:"wrapped_item_key"`
	EncryptedData     string          `json:"encrypted_data"`
	DeletedAt         *string         `json:"deleted_at"`
	Deleted           bool            `json:"deleted"`
}

// deleted reports a soft-deleted record. The list should never return one;
// a record that says it is deleted is ignored all the same.
func (r *record) deleted() bool {
	return r.Deleted || (r.DeletedAt != nil && *r.DeletedAt != "")
}

type listPage struct {
	Data       []record `json:"data"`
	Pagination *struct {
		Page  int `json:"page"`
		Limit int `json:"limit"`
		Total int `json:"total"`
	} `json:"pagination"`
}

// maxPages bounds the list loop against a server whose total keeps growing.
const maxPages = 10000

// Response size limits. A list page of 2,000 V3 records is a few MiB (a
// record is about 1 KiB plus its encrypted payload); 16 MiB leaves room
// for 8 KiB per record, and a larger page is an error that says to lower
// PASSAGENT_PAGE_SIZE. The salt reply is a few hundred bytes. With the KDF
// cap (64 MiB) they keep the client's peak memory bounded whatever the
// server sends (docs/passagent.md).
const (
	maxPageBody = 16 << 20
	maxSaltBody = 64 << 10
)

// list fetches every entry: ceil(total/limit) calls, at least one. The
// limit is the one the server reports using, which may be lower than the
// one asked for. A record that shows up on two pages (the list shifted
// between calls) is kept once.
func (c *Client) list(ctx context.Context) ([]record, error) {
	var out []record
	seen := map[string]int{}
	for page := 1; ; page++ {
		q := url.Values{"page": {strconv.Itoa(page)}, "limit": {strconv.Itoa(c.pageSize)}}
		body, err := c.getBody(ctx, "/passwords?"+q.Encode(), maxPageBody)
		if err != nil {
			if errors.Is(err, fetch.ErrBodyTooLarge) {
				return nil, fmt.Errorf("%w (a page of %d entries; a lower PASSAGENT_PAGE_SIZE makes pages smaller)", err, c.pageSize)
			}
			return nil, err
		}
		// A page seen before (every warm refresh of unchanged data) is
		// not decoded again; its records are shared with the memo and
		// only copied from.
		p, err := fetch.Decode(&c.bodies, body, decodePage)
		if err != nil {
			return nil, malformedJSON(c.endpoint("/passwords"), err)
		}
		if p.Pagination == nil {
			return nil, fmt.Errorf("passagent: GET %s: response has no pagination object", c.endpoint("/passwords"))
		}
		for _, r := range p.Data {
			if i, ok := seen[r.ID]; ok {
				out[i] = r
				continue
			}
			seen[r.ID] = len(out)
			out = append(out, r)
		}
		limit := p.Pagination.Limit
		if limit <= 0 || limit > c.pageSize {
			limit = c.pageSize
		}
		// Past the last page by the server's own count, and nothing is
		// missing; a server that caps the limit without saying so is
		// caught by the second test and ended by an empty page.
		if len(p.Data) == 0 || page*limit >= p.Pagination.Total && len(out) >= p.Pagination.Total {
			return out, nil
		}
		if page == maxPages {
			return nil, fmt.Errorf("passagent: GET %s: more than %d pages", c.endpoint("/passwords"), maxPages)
		}
	}
}

type saltReply struct {
	Salt        string `json:"salt"`
	KDF         string `json:"kdf"`
	MemoryKiB   uint32 `json:"memory_kib"`
	Iterations  uint32 `json:"iterations"`
	Parallelism uint8  `json:"parallelism"`
}

// salt fetches the user's vault salt and KDF parameters. Missing parameters
// mean the documented default profile.
func (c *Client) salt(ctx context.Context) ([]byte, envelope.KDFParams, error) {
	var r saltReply
	if err := c.get(ctx, "/vault/salt", maxSaltBody, &r); err != nil {
		var se *fetch.StatusError
		if errors.As(err, &se) && se.Status == http.StatusNotFound {
			return nil, envelope.KDFParams{}, fmt.Errorf("passagent: no vault salt for this account (the vault was never set up in PassAgent): %w", err)
		}
		return nil, envelope.KDFParams{}, err
	}
	if r.KDF != "" && !strings.EqualFold(r.KDF, "argon2id") {
		return nil, envelope.KDFParams{}, fmt.Errorf("passagent: GET %s: unsupported kdf %q (want argon2id)", c.endpoint("/vault/salt"), r.KDF)
	}
	salt, err := envelope.DecodeBase64(r.Salt)
	if err != nil || len(salt) == 0 {
		return nil, envelope.KDFParams{}, fmt.Errorf("passagent: GET %s: salt missing or not base64", c.endpoint("/vault/salt"))
	}
	p := envelope.DefaultKDF()
	if r.MemoryKiB != 0 {
		p.MemoryKiB = r.MemoryKiB
	}
	if r.Iterations != 0 {
		p.Iterations = r.Iterations
	}
	if r.Parallelism != 0 {
		p.Parallelism = r.Parallelism
	}
	return salt, p, nil
}

// errorBody covers both documented error shapes:
// {"error","code","status"} and {"error","error_code"}.
type errorBody struct {
	Error     string `json:"error"`
	Code      string `json:"code"`
	ErrorCode string `json:"error_code"`
}

// decodePage decodes one page of the entry list.
func decodePage(body []byte) (*listPage, error) {
	var p listPage
	if err := fetch.UnmarshalJSON(body, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// get sends an authenticated GET to base+path and decodes a 200 JSON reply
// of at most maxBody bytes into v. Retries (429, 502-504, transport
// errors) happen in fetch.HTTP.
func (c *Client) get(ctx context.Context, path string, maxBody int64, v any) error {
	body, err := c.getBody(ctx, path, maxBody)
	if err != nil {
		return err
	}
	if err := fetch.UnmarshalJSON(body, v); err != nil {
		return malformedJSON(c.endpoint(strings.SplitN(path, "?", 2)[0]), err)
	}
	return nil
}

// malformedJSON is the error for a reply that does not decode. The
// syntax error can quote one byte of the body; bodies here carry
// ciphertext and names only, never plaintext secrets.
func malformedJSON(endpoint string, err error) error {
	return fmt.Errorf("passagent: GET %s: malformed JSON response: %v", endpoint, err)
}

// getBody sends an authenticated GET to base+path and returns the body of
// a 200 reply of at most maxBody bytes.
func (c *Client) getBody(ctx context.Context, path string, maxBody int64) ([]byte, error) {
	endpoint := c.endpoint(strings.SplitN(path, "?", 2)[0])
	resp, err := c.http.Do(ctx, fetch.Request{
		Method:  http.MethodGet,
		URL:     c.base + path,
		Header:  http.Header{"Authorization": {"Bearer " + c.token}, "Accept": {"application/json"}},
		MaxBody: maxBody,
		// Lists and the salt: ciphertext, wrapped keys, names and KDF
		// parameters, nothing that opens without the master password.
		Cache: true,
	})
	if err != nil {
		var se *fetch.StatusError
		if errors.As(err, &se) && se.Status == http.StatusTooManyRequests {
			// err names the method and path.
			return nil, fmt.Errorf("passagent: rate limited by the server, giving up (fail-closed): %w", err)
		}
		return nil, err
	}
	if resp.Status != http.StatusOK {
		return nil, c.statusError(endpoint, resp)
	}
	return resp.Body, nil
}

func (c *Client) statusError(endpoint string, resp *fetch.Response) error {
	var body errorBody
	_ = json.Unmarshal(resp.Body, &body) // best effort: the status is what matters
	se := &fetch.StatusError{
		Provider: "passagent", Method: http.MethodGet, Path: endpoint, Status: resp.Status,
		Code: firstNonEmpty(body.Code, body.ErrorCode), Message: truncate(body.Error, 200),
	}
	switch resp.Status {
	case http.StatusUnauthorized:
		return fmt.Errorf("passagent: GET %s: %w", endpoint, ErrUnauthorized)
	case http.StatusForbidden:
		return fmt.Errorf("passagent: GET %s: access forbidden (HTTP 403): the token is valid but not allowed to read this: %w", endpoint, se)
	}
	return se
}

// endpoint is the URL path a request for path (relative to the base, no
// query) goes to, e.g. "/api/passwords": errors name it the way fetch.HTTP
// names it in transport and retry errors, so every error shows one path.
func (c *Client) endpoint(path string) string {
	return c.basePath + path
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
