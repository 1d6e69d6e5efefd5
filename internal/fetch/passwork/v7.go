package passwork

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	pwcrypto "github.com/injector-dev/injector/internal/crypto/passwork"
	"github.com/injector-dev/injector/internal/fetch"
)

// v7 is the Passwork 7 API (/api/v1).
type v7 struct {
	base  string // scheme://host[/prefix], without /api/v1
	cfg   Config
	http  *fetch.HTTP
	batch int

	authed          bool
	access, refresh string
	noAccessRotate  bool // server lacks /sessions/refresh-access-token (< 7.6)
	masterKey       string
	masterHash      string

	priv      *rsa.PrivateKey
	vaultKeys map[wrappedKey]string // → vault key
	memo      *memos                // decoded bodies, item keys (shared with the Client)

	vaultNames map[string][]string
	vaultsAt   time.Time
}

func newV7(base string, cfg Config, h *fetch.HTTP, batch int, m *memos) *v7 {
	return &v7{base: base, cfg: cfg, http: h, batch: batch, vaultKeys: map[wrappedKey]string{}, memo: m}
}

// wrappedKey is a vault's key as one entry carries it, RSA-wrapped for the
// user. A struct, not a joined string: looking it up allocates nothing.
type wrappedKey struct{ vaultID, wrapped string }

// apiError is a non-2xx response, decoded from {"errors":[…]}.
type apiError struct {
	method, path string
	status       int
	code, msg    string
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("passwork: %s %s: HTTP %d", e.method, e.path, e.status)
	if e.code != "" {
		s += " " + e.code
	}
	if e.msg != "" {
		s += ": " + e.msg
	}
	if e.status == http.StatusUnauthorized {
		// Say which setting the server turned down.
		if strings.HasPrefix(e.path, "/api/v1/sessions/refresh") {
			s += " (the server rejected the refresh: check PASSWORK_REFRESH_TOKEN; a refresh replaces the pair, so keep the new one with PASSWORK_TOKEN_STATE_FILE)"
		} else {
			s += " (the server rejected the access token: check PASSWORK_TOKEN, or PASSWORK_TOKEN_FILE)"
		}
	}
	return s
}

func (b *v7) auth(ctx context.Context) error {
	if b.authed {
		return nil
	}
	b.access, b.refresh = b.cfg.Token, b.cfg.RefreshToken
	if b.cfg.TokenStateFile != "" {
		if st, ok, err := loadTokenState(b.cfg.TokenStateFile, b.cfg.Token, b.cfg.RefreshToken); err != nil {
			return err
		} else if ok {
			b.access, b.refresh = st.AccessToken, st.RefreshToken
		}
	}
	switch {
	case b.cfg.MasterKey != "":
		b.masterKey = b.cfg.MasterKey
	case b.cfg.MasterPassword != "":
		var out struct {
			MasterKeyOptions string `json:"masterKeyOptions"`
		}
		if err := b.call(ctx, http.MethodGet, "/api/v1/users/master-key/options", nil, nil, &out); err != nil {
			return err
		}
		mk, err := pwcrypto.DeriveMasterKey(b.cfg.MasterPassword, out.MasterKeyOptions)
		if err != nil {
			return err
		}
		b.masterKey = mk
	}
	if b.masterKey != "" {
		b.masterHash = pwcrypto.MasterKeyHash(b.masterKey)
	}
	b.authed = true
	return nil
}

// logout does nothing: Passwork 7 has no login, and the token pair is the
// user's own (made in the UI, shared by every replica), not a session
// injector opened. Revoking it would lock out everyone who uses it.
func (b *v7) logout(context.Context) error { return nil }

// call sends one request and decodes the (possibly base64-enveloped) JSON
// response into out. An expired access token is refreshed once and the
// request retried.
func (b *v7) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	for attempt := 0; ; attempt++ {
		err := b.callOnce(ctx, method, path, query, body, out)
		var ae *apiError
		if attempt == 0 && errors.As(err, &ae) && ae.code == "accessTokenExpired" {
			if rerr := b.rotate(ctx); rerr != nil {
				return rerr
			}
			continue
		}
		return err
	}
}

func (b *v7) callOnce(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := b.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	// Data reads may be kept in the ciphertext cache, but only with
	// client-side encryption on: without a master key the values come as
	// base64 plaintext.
	req := fetch.Request{Method: method, URL: u, Header: http.Header{}, Cache: b.cfg.encrypted()}
	req.Header.Set("Authorization", "Bearer "+b.access)
	req.Header.Set("X-Response-Format", "raw")
	req.Header.Set("Accept", "application/json")
	if b.masterHash != "" {
		req.Header.Set("X-Master-Key-Hash", b.masterHash)
	}
	if r, ok := out.(bodyDecoder); ok {
		req.Bodies, req.Recall = r.bodies(), r.recallKey
	}
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("passwork: %s %s: %w", method, path, err)
		}
		req.Body = data
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.http.Do(ctx, req)
	if err != nil {
		return err
	}
	return decodeV7(method, path, resp, out)
}

// decodeV7 maps errors and decodes a success body into out in one pass.
// A body that may be the {"format":"base64","content":…} envelope (servers
// may ignore X-Response-Format: raw; it always holds the key "format") is
// unwrapped first. out may be a *rawBody, which takes the body as it is.
func decodeV7(method, path string, resp *fetch.Response, out any) error {
	if resp.Status >= 400 {
		data, err := unwrapEnvelope(resp.Body)
		ae := &apiError{method: method, path: path, status: resp.Status}
		var eb struct {
			Errors []struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"errors"`
		}
		if err == nil && json.Unmarshal(data, &eb) == nil && len(eb.Errors) > 0 {
			ae.code, ae.msg = eb.Errors[0].Code, truncate(eb.Errors[0].Message, 200)
		}
		if strings.Contains(strings.ToLower(ae.code), "masterkey") {
			return fmt.Errorf("%w: server rejected the master key hash (%s)", errInvalidMasterKey, ae.code)
		}
		return ae
	}
	data := resp.Body
	if r, ok := out.(bodyDecoder); ok {
		switch {
		case resp.Recalled:
			return nil // decoded before, envelope and all; not even copied
		case resp.Keyed:
			// Hashed as it was read, and not known (recallKey said so).
		case r.recall(data):
			return nil // decoded before (a body from the cache)
		}
	}
	if bytes.Contains(data, []byte(`"format"`)) {
		var err error
		if data, err = unwrapEnvelope(data); err != nil {
			return fmt.Errorf("passwork: %s %s: malformed response (HTTP %d): %w", method, path, resp.Status, err)
		}
	}
	var err error
	switch out := out.(type) {
	case nil:
		if !json.Valid(data) {
			err = errNotJSON
		}
	case *rawBody:
		*out = data
	case bodyDecoder:
		err = out.decodeBody(data)
	default:
		err = unmarshal(data, out)
	}
	if err != nil {
		return malformed(method, path, resp.Status, data)
	}
	return nil
}

// unmarshal decodes a response body in one pass (see fetch.UnmarshalJSON).
func unmarshal(data []byte, out any) error { return fetch.UnmarshalJSON(data, out) }

// rawBody, as decodeV7's out, receives the (unwrapped) body undecoded.
type rawBody []byte

// bodyDecoder, as decodeV7's out, decodes the body itself: recall takes
// the body as received (or recallKey its key, hashed while the body was
// read, with bodies the memo whose seeds hash it) and reports whether it
// is known already; if not, decodeBody gets it unwrapped from its
// envelope, if it had one.
type bodyDecoder interface {
	bodies() *fetch.Bodies
	recall(body []byte) bool
	recallKey(k fetch.BodyKey) bool
	decodeBody(data []byte) error
}

// memoized is a bodyDecoder that remembers: a body received before (the
// same bytes) is neither unwrapped nor decoded again, and v is the value
// it decoded to then, shared (read it, never modify it).
type memoized[T any] struct {
	m      *memos
	decode func([]byte) (T, error)
	key    fetch.BodyKey // of the body as received
	v      T
}

func (o *memoized[T]) bodies() *fetch.Bodies {
	if o.m == nil {
		return nil
	}
	return &o.m.bodies
}

func (o *memoized[T]) recall(body []byte) bool {
	if o.m == nil {
		return false
	}
	return o.recallKey(o.m.bodies.Key(body))
}

func (o *memoized[T]) recallKey(k fetch.BodyKey) bool {
	o.key = k
	v, ok := fetch.Recall[T](&o.m.bodies, k)
	if ok {
		o.v = v
	}
	return ok
}

func (o *memoized[T]) decodeBody(data []byte) (err error) {
	if o.v, err = o.decode(data); err == nil && o.m != nil {
		o.m.bodies.Remember(o.key, o.v)
	}
	return err
}

var errNotJSON = errors.New("body is not valid JSON (truncated?)")

// malformed says why a success body could not be decoded.
func malformed(method, path string, status int, data []byte) error {
	if !json.Valid(data) {
		return fmt.Errorf("passwork: %s %s: malformed response (HTTP %d): %w", method, path, status, errNotJSON)
	}
	return fmt.Errorf("passwork: %s %s: malformed response: unexpected JSON shape", method, path)
}

func unwrapEnvelope(body []byte) ([]byte, error) {
	if !json.Valid(body) {
		return nil, errNotJSON
	}
	var env struct {
		Format  string `json:"format"`
		Content string `json:"content"`
	}
	if json.Unmarshal(body, &env) == nil && env.Format == "base64" {
		data, err := base64.StdEncoding.DecodeString(env.Content)
		if err != nil {
			return nil, errors.New("base64 envelope content is not base64")
		}
		if !json.Valid(data) {
			return nil, errors.New("base64 envelope content is not valid JSON")
		}
		return data, nil
	}
	return body, nil
}

// rotate gets a new access token. It prefers refresh-access-token (7.6+),
// which keeps the refresh token valid for other processes, and falls back
// to /sessions/refresh, which invalidates the old pair — hence the state
// file.
func (b *v7) rotate(ctx context.Context) error {
	if b.refresh == "" {
		return errors.New("passwork: access token expired and PASSWORK_REFRESH_TOKEN is not set")
	}
	var out struct {
		AccessToken  string `json:"accessToken"`
		RefreshToken string `json:"refreshToken"`
	}
	if !b.noAccessRotate {
		err := b.post(ctx, "/api/v1/sessions/refresh-access-token", false, map[string]string{"accessToken": b.access}, &out)
		switch {
		case err == nil && out.AccessToken != "":
			b.access = out.AccessToken
			return b.saveTokens()
		case err == nil:
			return errors.New("passwork: refresh access token: response lacks the new access token")
		case endpointMissing(err):
			b.noAccessRotate = true
		default:
			// A transient failure (transport, 5xx, 429) must not trigger the
			// full rotation: it would invalidate the pair for every other
			// replica sharing it.
			return fmt.Errorf("passwork: refresh access token: %w", err)
		}
	}
	if err := b.post(ctx, "/api/v1/sessions/refresh", true, map[string]string{"refreshToken": b.refresh}, &out); err != nil {
		return fmt.Errorf("passwork: refresh access token: %w", err)
	}
	if out.AccessToken == "" || out.RefreshToken == "" {
		return errors.New("passwork: refresh access token: response lacks the new token pair")
	}
	b.access, b.refresh = out.AccessToken, out.RefreshToken
	return b.saveTokens()
}

// endpointMissing reports whether err says the server has no
// refresh-access-token endpoint (before 7.6) or does not offer it for this
// session, the only cases where the full rotation is the right fallback.
func endpointMissing(err error) bool {
	var ae *apiError
	if !errors.As(err, &ae) {
		return false
	}
	if ae.status == http.StatusNotFound || ae.status == http.StatusMethodNotAllowed {
		return true
	}
	text := strings.ToLower(ae.code + " " + ae.msg)
	for _, s := range []string{"notfound", "not found", "unsupported", "not supported", "notsupported"} {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

// post sends a session request once: a refresh consumes the old token, so
// repeating it after a lost response could never succeed.
func (b *v7) post(ctx context.Context, path string, bearer bool, body, out any) error {
	data, _ := json.Marshal(body)
	req := fetch.Request{Method: http.MethodPost, URL: b.base + path, Body: data, NoRetry: true, Header: http.Header{}}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Response-Format", "raw")
	if bearer {
		req.Header.Set("Authorization", "Bearer "+b.access)
	}
	resp, err := b.http.Do(ctx, req)
	if err != nil {
		return err
	}
	return decodeV7(http.MethodPost, path, resp, out)
}

func (b *v7) saveTokens() error {
	if b.cfg.TokenStateFile == "" {
		return nil
	}
	return saveTokenState(b.cfg.TokenStateFile, b.cfg.Token, b.cfg.RefreshToken, b.access, b.refresh)
}

func (b *v7) vaults(ctx context.Context, fresh bool) (map[string][]string, error) {
	if !fresh && b.vaultNames != nil && time.Since(b.vaultsAt) < vaultCacheTTL {
		return b.vaultNames, nil
	}
	var out struct {
		Items []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"items"`
	}
	if err := b.call(ctx, http.MethodGet, "/api/v1/vaults", nil, nil, &out); err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for _, v := range out.Items {
		m[v.Name] = append(m[v.Name], v.ID)
	}
	b.vaultNames, b.vaultsAt = m, time.Now()
	return m, nil
}

func (b *v7) list(ctx context.Context, vaultIDs []string) ([]summary, error) {
	q := url.Values{"query": {""}, "vaultIds[]": vaultIDs}
	out := memoized[[]summary]{m: b.memo, decode: decodeSearch}
	if err := b.call(ctx, http.MethodGet, "/api/v1/items/search", q, nil, &out); err != nil {
		return nil, err
	}
	// The slice may be the memo's: capped, so that appending copies.
	return out.v[:len(out.v):len(out.v)], nil
}

// decodeSearch reads a search result into summaries.
func decodeSearch(data []byte) ([]summary, error) {
	var out struct {
		Items []struct {
			ID       string     `json:"id"`
			Name     string     `json:"name"`
			VaultID  string     `json:"vaultId"`
			FolderID *string    `json:"folderId"`
			Path     []pathElem `json:"path"`
			Tags     []string   `json:"tags"`
		} `json:"items"`
	}
	if err := unmarshal(data, &out); err != nil {
		return nil, err
	}
	sums := make([]summary, 0, len(out.Items))
	for _, it := range out.Items {
		if len(it.Path) == 0 && it.FolderID != nil && *it.FolderID != "" {
			// In a folder, but the server did not say which path: taking
			// it for a vault-root entry could resolve the wrong secret.
			// It stays reachable by "id:" (docs/passwork.md, assumption 2).
			continue
		}
		sums = append(sums, summary{id: it.ID, vaultID: it.VaultID, name: it.Name, folders: folderNames(it.Path), tags: it.Tags})
	}
	return sums, nil
}

// batchGet fetches relative URLs through /api/v1/batch in chunks and
// returns each chunk's response: every sub-response's status and body
// decoded as T (ok false when it does not decode), b.batch URLs a chunk.
// A batch body is decoded in one pass straight into T and, with remember,
// only if the body memo has not decoded the same bytes before: the chunk
// is then the one decoded before, shared (see batchResult).
func batchGet[T any](ctx context.Context, b *v7, urls []string, remember bool) ([]*batchResult[T], error) {
	m := b.memo
	if !remember {
		m = nil
	}
	chunks := make([]*batchResult[T], 0, (len(urls)+b.batch-1)/b.batch)
	for start := 0; start < len(urls); start += b.batch {
		end := min(start+b.batch, len(urls))
		type sub struct {
			Method      string `json:"method"`
			RelativeURL string `json:"relativeUrl"`
		}
		var req struct {
			Requests []sub `json:"requests"`
		}
		req.Requests = make([]sub, 0, end-start)
		for _, u := range urls[start:end] {
			req.Requests = append(req.Requests, sub{http.MethodGet, u})
		}
		out := memoized[*batchResult[T]]{m: m, decode: decodeBatch[T]}
		if err := b.call(ctx, http.MethodPost, "/api/v1/batch", nil, req, &out); err != nil {
			return nil, err
		}
		if n := len(out.v.codes); n != end-start {
			return nil, fmt.Errorf("passwork: POST /api/v1/batch: malformed response: %d responses for %d requests", n, end-start)
		}
		chunks = append(chunks, out.v)
	}
	return chunks, nil
}

// batchResult is one decoded batch response: each sub-response's status
// and body, ok false for a body that does not decode as T. What was
// decoded is never modified; got is get's conversion of a batch of items,
// kept with it (a batch received again is not converted again). got is
// the one field written after the value is in the body memo, which hands
// it to every Resolve call: safe because Resolve calls on a Client are
// serialised by its mutex.
type batchResult[T any] struct {
	codes  []int
	bodies []T
	ok     []bool
	got    *gotEntries
}

// gotEntries is a batch of items as get returns them, for the ids it
// was asked for: per sub-response the entry, or why there is none (both
// nil: not found).
type gotEntries struct {
	ids     []string
	entries []*entry
	errs    []error
}

// decodeBatch decodes a batch response in one pass straight into T; only
// a batch with a body that does not fit T is decoded again, sub-body by
// sub-body, to tell which.
func decodeBatch[T any](data []byte) (*batchResult[T], error) {
	var typed struct {
		Responses []struct {
			StatusCode int `json:"statusCode"`
			Body       T   `json:"body"`
		} `json:"responses"`
	}
	if unmarshal(data, &typed) == nil {
		n := len(typed.Responses)
		r := &batchResult[T]{codes: make([]int, n), bodies: make([]T, n), ok: make([]bool, n)}
		for i, sr := range typed.Responses {
			r.codes[i], r.bodies[i], r.ok[i] = sr.StatusCode, sr.Body, true
		}
		return r, nil
	}
	var raw struct {
		Responses []struct {
			StatusCode int             `json:"statusCode"`
			Body       json.RawMessage `json:"body"`
		} `json:"responses"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	n := len(raw.Responses)
	r := &batchResult[T]{codes: make([]int, n), bodies: make([]T, n), ok: make([]bool, n)}
	for i, sr := range raw.Responses {
		r.codes[i] = sr.StatusCode
		r.ok[i] = json.Unmarshal(sr.Body, &r.bodies[i]) == nil
	}
	return r, nil
}

type itemV7 struct {
	ID                      string      `json:"id"`
	VaultID                 string      `json:"vaultId"`
	Name                    string      `json:"name"`
	Login                   string      `json:"login"`
	URL                     string      `json:"url"`
	URLs                    []string    `json:"urls"`
	Description             string      `json:"description"`
	Tags                    []string    `json:"tags"`
	PasswordEncrypted       string      `json:"passwordEncrypted"`
	KeyEncrypted            *string     `json:"keyEncrypted"`
	VaultMasterKeyEncrypted *string     `json:"vaultMasterKeyEncrypted"`
	Customs                 []encCustom `json:"customs"`
	Attachments             []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"attachments"`
}

// shortcuts lists the shortcuts placed in the vaults. A result is the
// entry's summary with the shortcut, its id and location, in "shortcut".
func (b *v7) shortcuts(ctx context.Context, vaultIDs []string) ([]summary, error) {
	q := url.Values{"query": {""}, "vaultIds[]": vaultIDs}
	var out struct {
		Items []struct {
			Name     string `json:"name"`
			Shortcut *struct {
				ID       string     `json:"id"`
				VaultID  string     `json:"vaultId"`
				FolderID *string    `json:"folderId"`
				Path     []pathElem `json:"path"`
			} `json:"shortcut"`
		} `json:"items"`
	}
	if err := b.call(ctx, http.MethodGet, "/api/v1/shortcuts/search", q, nil, &out); err != nil {
		return nil, err
	}
	var sums []summary
	for _, it := range out.Items {
		sc := it.Shortcut
		if sc == nil || sc.ID == "" || len(sc.Path) == 0 && sc.FolderID != nil && *sc.FolderID != "" {
			continue // no location to match a path against (as in list)
		}
		sums = append(sums, summary{id: shortcutID(sc.ID), vaultID: sc.VaultID, name: it.Name, folders: folderNames(sc.Path)})
	}
	return sums, nil
}

// get fetches entries in batches. An entry reached by shortcut (its id is
// a shortcutID) is fetched through /shortcuts/{id}: the server answers
// the entry as seen from the shortcut's vault, keyEncrypted being the item
// key wrapped with that vault's key and vaultMasterKeyEncrypted that
// vault's key, so it decrypts like any entry.
func (b *v7) get(ctx context.Context, ids []string) (map[string]*entry, map[string]error, error) {
	urls := make([]string, len(ids))
	for i, id := range ids {
		if sc, ok := strings.CutPrefix(id, "shortcut:"); ok {
			urls[i] = "/api/v1/shortcuts/" + url.PathEscape(sc)
			continue
		}
		urls[i] = "/api/v1/items/" + url.PathEscape(id)
	}
	chunks, err := batchGet[itemV7](ctx, b, urls, true)
	if err != nil {
		return nil, nil, err
	}
	entries, errs := make(map[string]*entry, len(ids)), map[string]error{}
	start := 0
	for _, br := range chunks {
		n := len(br.codes)
		chunkIDs, chunkURLs := ids[start:start+n], urls[start:start+n]
		start += n
		// A batch received before, for the same ids, was converted
		// then: its entries are the same (and never modified).
		if br.got == nil || !slices.Equal(br.got.ids, chunkIDs) {
			br.got = toEntries(br, chunkIDs, chunkURLs)
		}
		for j, id := range chunkIDs {
			if e := br.got.entries[j]; e != nil {
				entries[id] = e
			} else if err := br.got.errs[j]; err != nil {
				errs[id] = err
			}
		}
	}
	return entries, errs, nil
}

// toEntries converts a batch of items fetched for ids (by urls).
func toEntries(br *batchResult[itemV7], ids, urls []string) *gotEntries {
	g := &gotEntries{ids: slices.Clone(ids), entries: make([]*entry, len(ids)), errs: make([]error, len(ids))}
	for i, id := range ids {
		switch br.codes[i] {
		case http.StatusOK:
		case http.StatusNotFound, http.StatusForbidden, http.StatusBadRequest:
			continue // reported as "entry not found"
		default:
			g.errs[i] = fmt.Errorf("passwork: GET %s (batched): HTTP %d", urls[i], br.codes[i])
			continue
		}
		it := &br.bodies[i]
		if !br.ok[i] || it.ID == "" {
			g.errs[i] = fmt.Errorf("passwork: GET %s (batched): malformed item", urls[i])
			continue
		}
		e := &entry{
			id: it.ID, vaultID: it.VaultID, name: it.Name, login: it.Login, url: it.URL, urls: it.URLs,
			description: it.Description, tags: it.Tags, passwordEnc: it.PasswordEncrypted,
			keyEnc: it.KeyEncrypted, vaultKeyEnc: it.VaultMasterKeyEncrypted, customs: it.Customs,
		}
		for _, a := range it.Attachments {
			e.attachments = append(e.attachments, attRef{key: id, itemID: it.ID, attID: a.ID, name: a.Name})
		}
		g.entries[i] = e
	}
	return g
}

// itemKey unwraps vault key (RSA, cached) then item key (AESpw). An entry
// without a vault key is stored with client-side encryption off; one with a
// vault key but no item key is encrypted under the vault key itself (as v4
// does when cryptedKey is empty).
func (b *v7) itemKey(ctx context.Context, e *entry) (string, bool, error) {
	hasItemKey := e.keyEnc != nil && *e.keyEnc != ""
	if e.vaultKeyEnc == nil || *e.vaultKeyEnc == "" {
		if hasItemKey {
			return "", false, errors.New("entry has an encrypted item key but the server sent no vault key")
		}
		return "", true, nil
	}
	if b.masterKey == "" {
		return "", false, errNoMasterKey
	}
	ck := wrappedKey{e.vaultID, *e.vaultKeyEnc}
	vk, ok := b.vaultKeys[ck]
	if !ok {
		priv, err := b.privateKey(ctx)
		if err != nil {
			return "", false, err
		}
		if vk, err = pwcrypto.UnwrapKey(priv, *e.vaultKeyEnc); err != nil {
			return "", false, fmt.Errorf("unwrap vault key: %w", err)
		}
		b.vaultKeys[ck] = vk
	}
	if !hasItemKey {
		return vk, false, nil
	}
	ik, err := b.memo.decrypt(*e.keyEnc, vk)
	if err != nil {
		return "", false, fmt.Errorf("decrypt item key: %w", err)
	}
	return ik, false, nil
}

// privateKey fetches and decrypts the user's RSA key once per process.
func (b *v7) privateKey(ctx context.Context) (*rsa.PrivateKey, error) {
	if b.priv != nil {
		return b.priv, nil
	}
	var out struct {
		Keys struct {
			PrivateEncrypted string `json:"privateEncrypted"`
		} `json:"keys"`
	}
	if err := b.call(ctx, http.MethodGet, "/api/v1/users/keys", nil, nil, &out); err != nil {
		return nil, batchError{err}
	}
	pemText, err := pwcrypto.Decrypt(out.Keys.PrivateEncrypted, b.masterKey)
	if err != nil {
		return nil, errInvalidMasterKey
	}
	priv, err := pwcrypto.ParsePrivateKey(pemText)
	if err != nil {
		return nil, errInvalidMasterKey
	}
	b.priv = priv
	return priv, nil
}

func (b *v7) attachments(ctx context.Context, reqs []attRef) (map[attRef]*attachmentData, map[attRef]error, error) {
	urls := make([]string, len(reqs))
	for i, a := range reqs {
		urls[i] = "/api/v1/items/" + url.PathEscape(a.itemID) + "/attachment/" + url.PathEscape(a.attID)
	}
	// Not remembered: an attachment's data can be megabytes, and it is
	// decrypted on every refresh anyway (memos.decrypt keeps no value
	// that large).
	chunks, err := batchGet[attachmentData](ctx, b, urls, false)
	if err != nil {
		return nil, nil, err
	}
	out, errs := map[attRef]*attachmentData{}, map[attRef]error{}
	for i, a := range reqs {
		br, j := chunks[i/b.batch], i%b.batch
		if br.codes[j] != http.StatusOK {
			errs[a] = fmt.Errorf("fetch: HTTP %d", br.codes[j])
			continue
		}
		if !br.ok[j] {
			errs[a] = errors.New("fetch: malformed attachment record")
			continue
		}
		out[a] = &br.bodies[j]
	}
	return out, errs, nil
}

func (b *v7) attachmentHash(data []byte, _ string) string { return pwcrypto.AttachmentHash(data) }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
