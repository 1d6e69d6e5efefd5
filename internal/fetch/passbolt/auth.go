package passbolt

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/injector-dev/injector/internal/crypto/pgp"
)

// authState is one set of credentials. It is copied by value so a request
// in flight keeps the credentials it started with.
type authState struct {
	kind    string // "", AuthJWT or AuthGPGAuth
	gen     int    // bumped on every login/refresh, to detect races
	access  string // JWT access token
	refresh string // JWT refresh token (rotated on every refresh)
	cookies []*http.Cookie
	csrf    string
}

func (s authState) apply(h http.Header, method string) {
	switch s.kind {
	case AuthJWT:
		h.Set("Authorization", "Bearer "+s.access)
	case AuthGPGAuth:
		var parts []string
		for _, ck := range s.cookies {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
		if len(parts) > 0 {
			h.Set("Cookie", strings.Join(parts, "; "))
		}
		if method != http.MethodGet && s.csrf != "" {
			h.Set("X-CSRF-Token", s.csrf)
		}
	}
}

// session returns valid-looking credentials, logging in if there are none.
func (c *Client) session(ctx context.Context) (authState, error) {
	c.mu.Lock()
	st := c.auth
	c.mu.Unlock()
	if st.kind != "" || c.http.Offline() {
		// Offline: the server is down in this run and the ciphertext
		// cache answers; no login is tried again until the next run.
		return st, nil
	}
	st, err := c.reauth(ctx, st)
	if err != nil {
		if err = c.http.ContinueOffline(ctx, err); err == nil {
			return authState{}, nil // the cache answers this run
		}
	}
	return st, err
}

// reauth replaces the credentials stale (which just got a 401, or are
// empty): a JWT refresh first, a full login when that fails. When another
// goroutine already replaced them, their result is used.
func (c *Client) reauth(ctx context.Context, stale authState) (authState, error) {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	c.mu.Lock()
	cur := c.auth
	c.mu.Unlock()
	if cur.kind != "" && cur.gen != stale.gen {
		return cur, nil
	}
	var next authState
	var err error
	if cur.kind == AuthJWT && cur.refresh != "" {
		if next, err = c.refreshJWT(ctx, cur); err != nil {
			return authState{}, err
		}
	}
	if next.kind == "" {
		// Refresh not possible or failed (consumed, expired): log in again.
		if next, err = c.login(ctx); err != nil {
			c.mu.Lock()
			c.auth = authState{gen: cur.gen + 1}
			c.mu.Unlock()
			return authState{}, err
		}
	}
	next.gen = cur.gen + 1
	c.mu.Lock()
	c.auth = next
	c.mu.Unlock()
	return next, nil
}

func (c *Client) login(ctx context.Context) (authState, error) {
	serverKey, err := c.serverPublicKey(ctx)
	if err != nil {
		return authState{}, err
	}
	c.mu.Lock()
	mode, haveID := c.mode, c.userID != ""
	c.mu.Unlock()
	if mode == AuthJWT || (mode == AuthAuto && haveID) {
		st, err := c.loginJWT(ctx, serverKey)
		if !errors.Is(err, errNoJWT) || mode == AuthJWT {
			return st, err
		}
		// The server has no JWT routes: use GPGAuth from now on.
		c.mu.Lock()
		c.mode = AuthGPGAuth
		c.mu.Unlock()
	}
	return c.loginGPGAuth(ctx, serverKey)
}

// serverPublicKey fetches the server key once per client and checks the pin.
func (c *Client) serverPublicKey(ctx context.Context) (*pgp.Key, error) {
	c.mu.Lock()
	k := c.serverKey
	c.mu.Unlock()
	if k != nil {
		return k, nil
	}
	r, err := c.send(ctx, http.MethodGet, "/auth/verify.json", nil, authState{}, false)
	if err != nil {
		return nil, wrap("fetching server key", err)
	}
	if r.status != http.StatusOK {
		return nil, r.statusError(http.MethodGet, "/auth/verify.json")
	}
	var body struct {
		Fingerprint string `json:"fingerprint"`
		KeyData     string `json:"keydata"`
	}
	if err := json.Unmarshal(r.env.Body, &body); err != nil {
		return nil, errors.New("passbolt: GET /auth/verify.json: malformed response body")
	}
	k, err = pgp.ParsePublicKey(body.KeyData)
	if err != nil {
		return nil, fmt.Errorf("passbolt: server key: %w", err)
	}
	fp := pgp.Fingerprint(k)
	if body.Fingerprint != "" && !pgp.SameFingerprint(body.Fingerprint, fp) {
		return nil, fmt.Errorf("passbolt: server announces fingerprint %s but its key has %s", body.Fingerprint, fp)
	}
	if c.pin != "" && !pgp.SameFingerprint(c.pin, fp) {
		return nil, fmt.Errorf("passbolt: server key fingerprint %s does not match PASSBOLT_SERVER_FINGERPRINT %s; refusing to log in", fp, c.pin)
	}
	c.mu.Lock()
	c.serverKey = k
	c.mu.Unlock()
	return k, nil
}

// defaultVerifyTokenTTL is how long the JWT challenge is valid; the server
// accepts at most 1 h, a short window limits replay of a captured challenge.
const defaultVerifyTokenTTL = 2 * time.Minute

// errNoJWT means the server does not serve the JWT routes (plugin off).
var errNoJWT = errors.New("passbolt: server has no JWT authentication routes")

// userGone is the 404 message for an unknown user on JWT login; any other
// 404 means the route itself does not exist.
const userGone = "The user does not exist"

// jwtChallenge is the flat challenge both sides sign and encrypt.
type jwtChallenge struct {
	Version           string   `json:"version"`
	Domain            string   `json:"domain"`
	VerifyToken       string   `json:"verify_token"`
	VerifyTokenExpiry int64    `json:"verify_token_expiry,omitempty"`
	AccessToken       string   `json:"access_token,omitempty"`
	RefreshToken      string   `json:"refresh_token,omitempty"`
	Providers         []string `json:"providers,omitempty"`
}

func (c *Client) loginJWT(ctx context.Context, serverKey *pgp.Key) (authState, error) {
	c.mu.Lock()
	userID := c.userID
	c.mu.Unlock()
	if userID == "" {
		return authState{}, errors.New("passbolt: PASSBOLT_USER_ID is required for JWT login")
	}
	nonce := newUUID()
	plain, _ := json.Marshal(jwtChallenge{
		Version: "1.0.0", Domain: c.base, VerifyToken: nonce,
		VerifyTokenExpiry: c.now().Add(defaultVerifyTokenTTL).Unix(),
	})
	armored, err := pgp.EncryptSign(plain, serverKey, c.key)
	if err != nil {
		return authState{}, fmt.Errorf("passbolt: JWT login: %w", err)
	}
	const path = "/auth/jwt/login.json"
	// NoRetry: a retried login would reuse the nonce, which the server rejects.
	r, err := c.send(ctx, http.MethodPost, path, map[string]string{"user_id": userID, "challenge": armored}, authState{}, true)
	if err != nil {
		return authState{}, wrap("JWT login", err)
	}
	switch {
	case r.status == http.StatusNotFound && !strings.Contains(r.env.Header.Message, userGone):
		return authState{}, errNoJWT
	case r.status != http.StatusOK:
		return authState{}, wrap("JWT login", r.statusError(http.MethodPost, path))
	}
	var body struct {
		Challenge string `json:"challenge"`
	}
	if err := json.Unmarshal(r.env.Body, &body); err != nil || body.Challenge == "" {
		return authState{}, errors.New("passbolt: JWT login: reply has no challenge")
	}
	dec, err := pgp.Decrypt(body.Challenge, c.key, serverKey)
	if err != nil {
		return authState{}, fmt.Errorf("passbolt: JWT login reply: %w", err)
	}
	var got jwtChallenge
	if err := json.Unmarshal(dec, &got); err != nil {
		return authState{}, errors.New("passbolt: JWT login reply: decrypted challenge is not JSON")
	}
	if got.VerifyToken != nonce {
		return authState{}, errors.New("passbolt: JWT login reply: verify_token does not match the one sent; refusing the tokens")
	}
	if len(got.Providers) > 0 {
		return authState{}, ErrMFARequired
	}
	if got.AccessToken == "" || got.RefreshToken == "" {
		return authState{}, errors.New("passbolt: JWT login reply: missing access or refresh token")
	}
	return authState{kind: AuthJWT, access: got.AccessToken, refresh: got.RefreshToken}, nil
}

// refreshJWT trades the refresh token for a new access token. The server
// consumes the old refresh token and sends the next one only as a cookie.
// A failure returns the zero state so the caller logs in again.
func (c *Client) refreshJWT(ctx context.Context, cur authState) (authState, error) {
	c.mu.Lock()
	userID := c.userID
	c.mu.Unlock()
	const path = "/auth/jwt/refresh.json"
	r, err := c.send(ctx, http.MethodPost, path, map[string]string{"user_id": userID, "refresh_token": cur.refresh}, authState{}, true)
	if err != nil {
		if errors.Is(err, ErrMFARequired) || ctx.Err() != nil {
			return authState{}, err
		}
		return authState{}, nil
	}
	if r.status != http.StatusOK {
		return authState{}, nil
	}
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(r.env.Body, &body) != nil || body.AccessToken == "" {
		return authState{}, nil
	}
	next := authState{kind: AuthJWT, access: body.AccessToken}
	for _, ck := range (&http.Response{Header: r.header}).Cookies() {
		if ck.Name == "refresh_token" && ck.Value != "" {
			next.refresh = ck.Value
		}
	}
	return next, nil
}

// GPGAuth protocol constants.
const (
	gpgauthVersion       = "gpgauthv1.3.0"
	hdrVerifyResponse    = "X-GPGAuth-Verify-Response"
	hdrUserAuthToken     = "X-GPGAuth-User-Auth-Token"
	hdrAuthenticated     = "X-GPGAuth-Authenticated"
	gpgauthLoginPath     = "/auth/login.json"
	gpgauthVerifyPath    = "/auth/verify.json"
	gpgauthMePath        = "/users/me.json"
	gpgauthCSRFTokenPath = "/users/csrf-token.json"
)

// sessionCookies are the names a Passbolt session cookie can have.
var sessionCookies = map[string]bool{"passbolt_session": true, "CAKEPHP": true, "PHPSESSID": true}

func gpgauthToken() string {
	id := newUUID()
	return gpgauthVersion + "|" + strconv.Itoa(len(id)) + "|" + id + "|" + gpgauthVersion
}

func validGPGAuthToken(t string) bool {
	f := strings.Split(t, "|")
	if len(f) != 4 || f[0] != f[3] || !strings.HasPrefix(f[0], "gpgauth") {
		return false
	}
	n, err := strconv.Atoi(f[1])
	return err == nil && n == len(f[2])
}

// loginGPGAuth runs the legacy cookie login: stage 0 (the server proves it
// holds the pinned/fetched key), stage 1 (the server sends a token only we
// can decrypt), stage 2 (we send it back and get a session cookie), then
// GET /users/me.json for the CSRF cookie.
func (c *Client) loginGPGAuth(ctx context.Context, serverKey *pgp.Key) (authState, error) {
	fpr := pgp.Fingerprint(c.key)
	fail := func(stage string, err error) (authState, error) {
		return authState{}, wrap("GPGAuth login ("+stage+")", err)
	}

	// Stage 0.
	want := gpgauthToken()
	enc, err := pgp.EncryptSign([]byte(want), serverKey, nil)
	if err != nil {
		return fail("stage 0", err)
	}
	r, err := c.send(ctx, http.MethodPost, gpgauthVerifyPath,
		map[string]any{"gpg_auth": map[string]string{"keyid": fpr, "server_verify_token": enc}}, authState{}, false)
	if err != nil {
		return fail("stage 0", err)
	}
	if r.header.Get(hdrVerifyResponse) != want {
		return fail("stage 0", errors.New("the server could not decrypt our token with its key; it is not the server it claims to be"))
	}

	// Stage 1.
	keyid := map[string]any{"gpg_auth": map[string]string{"keyid": fpr}}
	if r, err = c.send(ctx, http.MethodPost, gpgauthLoginPath, keyid, authState{}, false); err != nil {
		return fail("stage 1", err)
	}
	raw := r.header.Get(hdrUserAuthToken)
	if raw == "" {
		if r.status != http.StatusOK {
			return fail("stage 1", r.statusError(http.MethodPost, gpgauthLoginPath))
		}
		return fail("stage 1", errors.New("no user auth token in the reply"))
	}
	armored, err := decodeGPGAuthHeader(raw)
	if err != nil {
		return fail("stage 1", err)
	}
	tok, err := c.dec.DecryptUnverified(armored)
	if err != nil {
		return fail("stage 1", err)
	}
	if !validGPGAuthToken(string(tok)) {
		return fail("stage 1", errors.New("decrypted user auth token has the wrong format"))
	}

	// Stage 2. NoRetry: the token is single-use, so a retry after a lost
	// reply could only fail.
	result := map[string]any{"gpg_auth": map[string]string{"keyid": fpr, "user_token_result": string(tok)}}
	if r, err = c.send(ctx, http.MethodPost, gpgauthLoginPath, result, authState{}, true); err != nil {
		return fail("stage 2", err)
	}
	if r.status != http.StatusOK || r.header.Get(hdrAuthenticated) != "true" {
		return fail("stage 2", r.statusError(http.MethodPost, gpgauthLoginPath))
	}
	st := authState{kind: AuthGPGAuth}
	for _, ck := range (&http.Response{Header: r.header}).Cookies() {
		if sessionCookies[ck.Name] && ck.Value != "" {
			st.cookies = append(st.cookies, &http.Cookie{Name: ck.Name, Value: ck.Value})
		}
	}
	if len(st.cookies) == 0 {
		return fail("stage 2", errors.New("no session cookie in the reply"))
	}
	c.learnUserID(r.env.Body)

	// CSRF cookie: set on the first GET that arrives without one.
	if r, err = c.send(ctx, http.MethodGet, gpgauthMePath, nil, st, false); err != nil {
		return fail("CSRF token", err)
	}
	if r.status != http.StatusOK {
		return fail("CSRF token", r.statusError(http.MethodGet, gpgauthMePath))
	}
	c.learnUserID(r.env.Body)
	for _, ck := range (&http.Response{Header: r.header}).Cookies() {
		if ck.Name == "csrfToken" && ck.Value != "" {
			st.csrf = ck.Value
			st.cookies = append(st.cookies, &http.Cookie{Name: ck.Name, Value: ck.Value})
		}
	}
	return st, nil
}

// decodeGPGAuthHeader undoes PHP's quotemeta(urlencode(armored)).
func decodeGPGAuthHeader(h string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(h); i++ {
		if h[i] == '\\' && i+1 < len(h) {
			i++
		}
		b.WriteByte(h[i])
	}
	s, err := url.QueryUnescape(b.String())
	if err != nil {
		return "", errors.New("user auth token header is not url-encoded")
	}
	return s, nil
}

// learnUserID records the user id from a user object when none was
// configured (GPGAuth without PASSBOLT_USER_ID).
func (c *Client) learnUserID(body []byte) {
	var u struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &u) != nil || !uuidRE().MatchString(u.ID) {
		return
	}
	c.mu.Lock()
	if c.userID == "" {
		c.userID = u.ID
	}
	c.mu.Unlock()
}

// Logout ends the server session (GPGAuth) or revokes the refresh token
// (JWT). Long-running processes need not call it; one-shot runs should.
func (c *Client) Logout(ctx context.Context) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	c.mu.Lock()
	st := c.auth
	c.auth = authState{gen: st.gen + 1}
	c.mu.Unlock()
	switch st.kind {
	case AuthJWT:
		const path = "/auth/jwt/logout.json"
		r, err := c.send(ctx, http.MethodPost, path, map[string]string{"refresh_token": st.refresh}, st, true)
		if err != nil {
			return wrap("logout", err)
		}
		if r.status != http.StatusOK && r.status != http.StatusUnauthorized {
			return wrap("logout", r.statusError(http.MethodPost, path))
		}
	case AuthGPGAuth:
		const path = "/auth/logout.json"
		r, err := c.send(ctx, http.MethodPost, path, nil, st, true)
		if err == nil && r.status == http.StatusForbidden {
			// CSRF token missing or rotated: fetch the current one and retry once.
			if st, err = c.refreshCSRF(ctx, st); err == nil {
				r, err = c.send(ctx, http.MethodPost, path, nil, st, true)
			}
		}
		if err != nil {
			return wrap("logout", err)
		}
		if r.status != http.StatusOK && r.status != http.StatusUnauthorized {
			return wrap("logout", r.statusError(http.MethodPost, path))
		}
	}
	return nil
}

// refreshCSRF asks the server for its current CSRF token.
func (c *Client) refreshCSRF(ctx context.Context, st authState) (authState, error) {
	r, err := c.send(ctx, http.MethodGet, gpgauthCSRFTokenPath, nil, st, false)
	if err != nil {
		return st, err
	}
	if r.status != http.StatusOK {
		return st, r.statusError(http.MethodGet, gpgauthCSRFTokenPath)
	}
	var tok string
	if json.Unmarshal(r.env.Body, &tok) != nil || tok == "" {
		return st, errors.New("GET /users/csrf-token.json: no token in the reply")
	}
	var cookies []*http.Cookie
	for _, ck := range st.cookies {
		if ck.Name != "csrfToken" {
			cookies = append(cookies, ck)
		}
	}
	st.cookies = append(cookies, &http.Cookie{Name: "csrfToken", Value: tok})
	st.csrf = tok
	return st, nil
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
