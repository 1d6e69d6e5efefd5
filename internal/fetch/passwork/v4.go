package passwork

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	pwcrypto "github.com/injector-dev/injector/internal/crypto/passwork"
	"github.com/injector-dev/injector/internal/fetch"
)

// v4Parallel bounds concurrent per-entry GETs: the legacy API has no batch
// endpoint.
const v4Parallel = 8

// v4 is the legacy Passwork 4–6 API (/api/v4).
type v4 struct {
	base string // …/api/v4
	cfg  Config
	http *fetch.HTTP

	authed          bool
	token, refresh  string
	legacy          bool // md5 master hash and attachment hash
	masterKey, hash string

	vaultByID  map[string]vaultV4
	vaultNames map[string][]string
	vaultsAt   time.Time
	vaultPass  map[string]string // vault id + crypted → vault password
}

type vaultV4 struct {
	ID                   string  `json:"id"`
	Name                 string  `json:"name"`
	Scope                string  `json:"scope"`
	VaultPasswordCrypted *string `json:"vaultPasswordCrypted"`
	PasswordCrypted      *string `json:"passwordCrypted"`
	DomainMaster         *string `json:"domainMaster"`
}

func newV4(base string, cfg Config, h *fetch.HTTP) *v4 {
	return &v4{base: base, cfg: cfg, http: h, vaultPass: map[string]string{}}
}

// v4Error is a {"status":"error","code":…} response.
type v4Error struct {
	method, path string
	status       int
	code         string
}

func (e *v4Error) Error() string {
	s := fmt.Sprintf("passwork: %s %s: HTTP %d", e.method, e.path, e.status)
	if e.code != "" {
		s += " " + e.code
	}
	return s
}

func (b *v4) auth(ctx context.Context) error {
	if b.authed {
		return nil
	}
	if err := b.login(ctx); err != nil {
		return err
	}
	var ver struct {
		LegacySupport bool `json:"legacySupport"`
	}
	if err := b.call(ctx, http.MethodGet, "/info/version", nil, &ver); err != nil {
		return err
	}
	b.legacy = ver.LegacySupport
	switch {
	case b.cfg.MasterKey != "":
		b.masterKey = b.cfg.MasterKey
	case b.cfg.MasterPassword != "":
		var opts struct {
			MKOptions string `json:"mkOptions"`
		}
		err := b.call(ctx, http.MethodGet, "/user/get-master-key-options", nil, &opts)
		var ve *v4Error
		switch {
		case errors.As(err, &ve) && ve.status == http.StatusNotFound, err == nil && opts.MKOptions == "":
			b.masterKey = b.cfg.MasterPassword // pre-PBKDF2 servers use the password itself
		case err != nil:
			return err
		default:
			if b.masterKey, err = pwcrypto.DeriveMasterKey(b.cfg.MasterPassword, opts.MKOptions); err != nil {
				return err
			}
		}
	}
	if b.masterKey != "" {
		b.hash = pwcrypto.MasterKeyHash(b.masterKey)
		if b.legacy {
			b.hash = pwcrypto.MasterKeyHashMD5(b.masterKey)
		}
	}
	b.authed = true
	return nil
}

// login trades the API key for a session. The key is part of the URL, so
// errors are rebuilt without it. NoRetry: a login creates a session, and a
// retry after a lost reply would create another.
func (b *v4) login(ctx context.Context) error {
	body, _ := json.Marshal(map[string]bool{"useMasterPassword": b.cfg.MasterKey != "" || b.cfg.MasterPassword != ""})
	req := fetch.Request{Method: http.MethodPost, NoRetry: true, URL: b.base + "/auth/login/" + url.PathEscape(b.cfg.APIKey), Body: body,
		Header: http.Header{"Content-Type": {"application/json"}}}
	var out struct {
		Token        string `json:"token"`
		RefreshToken string `json:"refreshToken"`
	}
	if err := b.send(ctx, req, "/auth/login/…", &out); err != nil {
		return fmt.Errorf("passwork: login with PASSWORK_API_KEY: %w", redact(err, b.cfg.APIKey))
	}
	if out.Token == "" {
		return errors.New("passwork: login with PASSWORK_API_KEY: response lacks a session token")
	}
	b.token, b.refresh = out.Token, out.RefreshToken
	return nil
}

// renew refreshes an expired session, or logs in again when the refresh
// fails (the API key is at hand, unlike on v7).
func (b *v4) renew(ctx context.Context) error {
	if b.refresh != "" {
		req := fetch.Request{Method: http.MethodPost, NoRetry: true,
			URL:    b.base + "/auth/refreshToken/" + url.PathEscape(b.token) + "/" + url.PathEscape(b.refresh),
			Header: http.Header{"Passwork-Auth": {""}, "Content-Type": {"application/json"}}}
		var out struct {
			Token        string `json:"token"`
			RefreshToken string `json:"refreshToken"`
		}
		if err := b.send(ctx, req, "/auth/refreshToken/…", &out); err == nil && out.Token != "" {
			b.token, b.refresh = out.Token, out.RefreshToken
			return nil
		}
	}
	return b.login(ctx)
}

func (b *v4) call(ctx context.Context, method, path string, body, out any) error {
	for attempt := 0; ; attempt++ {
		req := fetch.Request{Method: method, URL: b.base + path, Header: http.Header{}}
		req.Header.Set("Passwork-Auth", b.token)
		if b.hash != "" {
			req.Header.Set("Passwork-MasterHash", b.hash)
		}
		if body != nil {
			req.Body, _ = json.Marshal(body)
			req.Header.Set("Content-Type", "application/json")
		}
		err := b.send(ctx, req, path, out)
		var ve *v4Error
		if attempt == 0 && errors.As(err, &ve) && ve.code == "apiSessionExpired" {
			if rerr := b.renew(ctx); rerr != nil {
				return rerr
			}
			continue
		}
		return err
	}
}

// send performs req and decodes {"status","code","data"}; data goes to out.
// shownPath is what error messages show instead of the URL.
func (b *v4) send(ctx context.Context, req fetch.Request, shownPath string, out any) error {
	resp, err := b.http.Do(ctx, req)
	if err != nil {
		return redact(err, b.cfg.APIKey, b.token, b.refresh)
	}
	var env struct {
		Status string          `json:"status"`
		Code   string          `json:"code"`
		Data   json.RawMessage `json:"data"`
	}
	if !json.Valid(resp.Body) || json.Unmarshal(resp.Body, &env) != nil {
		if resp.Status >= 400 {
			return &v4Error{method: req.Method, path: shownPath, status: resp.Status}
		}
		return fmt.Errorf("passwork: %s %s: malformed response (HTTP %d): body is not the expected JSON envelope", req.Method, shownPath, resp.Status)
	}
	if resp.Status >= 400 || env.Status == "error" {
		if strings.Contains(strings.ToLower(env.Code), "masterhash") || strings.Contains(strings.ToLower(env.Code), "masterkey") {
			return fmt.Errorf("%w: server rejected the master key hash (%s)", errInvalidMasterKey, env.Code)
		}
		return &v4Error{method: req.Method, path: shownPath, status: resp.Status, code: truncate(env.Code, 100)}
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return fmt.Errorf("passwork: %s %s: malformed response: unexpected JSON shape", req.Method, shownPath)
		}
	}
	return nil
}

func (b *v4) vaults(ctx context.Context, fresh bool) (map[string][]string, error) {
	if !fresh && b.vaultNames != nil && time.Since(b.vaultsAt) < vaultCacheTTL {
		return b.vaultNames, nil
	}
	var list []vaultV4
	if err := b.call(ctx, http.MethodGet, "/vaults/list", nil, &list); err != nil {
		return nil, err
	}
	b.vaultByID, b.vaultNames = map[string]vaultV4{}, map[string][]string{}
	for _, v := range list {
		b.vaultByID[v.ID] = v
		b.vaultNames[v.Name] = append(b.vaultNames[v.Name], v.ID)
	}
	b.vaultsAt = time.Now()
	return b.vaultNames, nil
}

// list runs one search with an empty query; restricted to the vault when
// only one is needed.
func (b *v4) list(ctx context.Context, vaultIDs []string) ([]summary, error) {
	var vaultID *string
	if len(vaultIDs) == 1 {
		vaultID = &vaultIDs[0]
	}
	body := map[string]any{"query": "", "tags": []string{}, "colors": []int{}, "vaultId": vaultID,
		"includeShared": false, "includeShortcuts": false}
	var out []struct {
		ID      string     `json:"id"`
		Name    string     `json:"name"`
		VaultID string     `json:"vaultId"`
		Path    []pathElem `json:"path"`
	}
	if err := b.call(ctx, http.MethodPost, "/passwords/search", body, &out); err != nil {
		return nil, err
	}
	sums := make([]summary, 0, len(out))
	for _, p := range out {
		path := append([]pathElem(nil), p.Path...)
		sortPath(path)
		sums = append(sums, summary{id: p.ID, vaultID: p.VaultID, name: p.Name, folders: folderNames(path)})
	}
	return sums, nil
}

// shortcuts is not offered on the legacy API yet: no v4 shortcut is
// resolvable by path.
func (b *v4) shortcuts(ctx context.Context, vaultIDs []string) ([]summary, error) { return nil, nil }

func sortPath(p []pathElem) {
	for i := 1; i < len(p); i++ {
		for j := i; j > 0 && p[j].Order < p[j-1].Order; j-- {
			p[j], p[j-1] = p[j-1], p[j]
		}
	}
}

type passwordV4 struct {
	ID              string      `json:"id"`
	VaultID         string      `json:"vaultId"`
	Name            string      `json:"name"`
	Login           string      `json:"login"`
	URL             string      `json:"url"`
	Description     string      `json:"description"`
	Tags            []string    `json:"tags"`
	CryptedPassword string      `json:"cryptedPassword"`
	CryptedKey      *string     `json:"cryptedKey"`
	Custom          []encCustom `json:"custom"`
	Attachments     []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"attachments"`
}

// get fetches entries one GET each (no batch endpoint on v4), in parallel.
func (b *v4) get(ctx context.Context, ids []string) (map[string]*entry, map[string]error, error) {
	res := make([]*entry, len(ids))
	errs := make([]error, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(v4Parallel)
	// The session may expire mid-run; renewing concurrently would race, so
	// the first expiry is handled by a serial retry pass below.
	for i, id := range ids {
		g.Go(func() error {
			var p passwordV4
			err := b.callNoRenew(gctx, http.MethodGet, "/passwords/"+url.PathEscape(id), &p)
			res[i], errs[i] = p.toEntry(), err
			return nil
		})
	}
	g.Wait()
	entries, perID := map[string]*entry{}, map[string]error{}
	for i, id := range ids {
		err := errs[i]
		var ve *v4Error
		if errors.As(err, &ve) && ve.code == "apiSessionExpired" {
			var p passwordV4
			err = b.call(ctx, http.MethodGet, "/passwords/"+url.PathEscape(id), nil, &p)
			res[i] = p.toEntry()
		}
		switch {
		case errors.Is(err, errInvalidMasterKey):
			return nil, nil, err
		case errors.As(err, &ve) && (ve.status == http.StatusNotFound || ve.status == http.StatusForbidden):
		case err != nil:
			var he *v4Error
			if !errors.As(err, &he) {
				return nil, nil, err // transport failure: the whole batch is affected
			}
			perID[id] = err
		case res[i].id != "":
			entries[id] = res[i]
		}
	}
	return entries, perID, nil
}

// callNoRenew is call without session renewal, for parallel use.
func (b *v4) callNoRenew(ctx context.Context, method, path string, out any) error {
	req := fetch.Request{Method: method, URL: b.base + path, Header: http.Header{}}
	req.Header.Set("Passwork-Auth", b.token)
	if b.hash != "" {
		req.Header.Set("Passwork-MasterHash", b.hash)
	}
	return b.send(ctx, req, path, out)
}

func (p passwordV4) toEntry() *entry {
	e := &entry{
		id: p.ID, vaultID: p.VaultID, name: p.Name, login: p.Login, url: p.URL, description: p.Description,
		tags: p.Tags, passwordEnc: p.CryptedPassword, keyEnc: p.CryptedKey, customs: p.Custom,
	}
	for _, a := range p.Attachments {
		e.attachments = append(e.attachments, attRef{key: p.ID, itemID: p.ID, attID: a.ID, name: a.Name})
	}
	return e
}

// itemKey: vault password = AESpw⁻¹(vault crypted, master key — or the
// domain master for organisation vaults); item key = AESpw⁻¹(cryptedKey,
// vault password), or the vault password itself when there is no cryptedKey.
func (b *v4) itemKey(ctx context.Context, e *entry) (string, bool, error) {
	v, ok := b.vaultByID[e.vaultID]
	if !ok {
		if _, err := b.vaults(ctx, true); err != nil {
			return "", false, batchError{err}
		}
		v = b.vaultByID[e.vaultID]
	}
	// passwordCrypted first, as js-connector and passwork-python's
	// get_vault_password do ("backward capability parameter").
	crypted := v.PasswordCrypted
	if crypted == nil || *crypted == "" {
		crypted = v.VaultPasswordCrypted
	}
	if crypted == nil || *crypted == "" {
		if e.keyEnc != nil && *e.keyEnc != "" {
			return "", false, errors.New("entry has an encrypted key but its vault has no vault password")
		}
		return "", true, nil // client-side encryption off
	}
	if b.masterKey == "" {
		return "", false, errNoMasterKey
	}
	ck := v.ID + "\x00" + *crypted
	vp, ok := b.vaultPass[ck]
	if !ok {
		pass := b.masterKey
		if v.Scope == "domain" && v.DomainMaster != nil {
			dm, err := pwcrypto.Decrypt(*v.DomainMaster, b.masterKey)
			if err != nil {
				return "", false, errInvalidMasterKey
			}
			pass = dm
		}
		var err error
		if vp, err = pwcrypto.Decrypt(*crypted, pass); err != nil {
			return "", false, errInvalidMasterKey
		}
		b.vaultPass[ck] = vp
	}
	if e.keyEnc == nil || *e.keyEnc == "" {
		return vp, false, nil
	}
	ik, err := pwcrypto.Decrypt(*e.keyEnc, vp)
	if err != nil {
		return "", false, fmt.Errorf("decrypt item key: %w", err)
	}
	return ik, false, nil
}

func (b *v4) attachments(ctx context.Context, reqs []attRef) (map[attRef]*attachmentData, map[attRef]error, error) {
	out, errs := map[attRef]*attachmentData{}, map[attRef]error{}
	for _, a := range reqs {
		var d attachmentData
		err := b.call(ctx, http.MethodGet, "/passwords/"+url.PathEscape(a.itemID)+"/attachment/"+url.PathEscape(a.attID), nil, &d)
		var ve *v4Error
		switch {
		case errors.As(err, &ve):
			errs[a] = err
		case err != nil:
			return nil, nil, err
		default:
			out[a] = &d
		}
	}
	return out, errs, nil
}

func (b *v4) attachmentHash(data []byte) string {
	if b.legacy {
		return pwcrypto.AttachmentHashMD5(data)
	}
	return pwcrypto.AttachmentHash(data)
}

// redact removes credentials that travel in v4 URLs from an error message,
// in every form they take there: raw, and escaped as a path segment (which
// is what fetch errors show) or a query value. A *fetch.StatusError keeps
// its type, with the credential cut from its Path; any other error becomes
// a plain message that still answers errors.Is (context.Canceled…).
func redact(err error, secrets ...string) error {
	var forms []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		forms = append(forms, s, url.PathEscape(s), url.QueryEscape(s), (&url.URL{Path: s}).EscapedPath())
	}
	// Longest first, so a form is never half-replaced by a shorter one.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	clean := func(msg string) string {
		for _, f := range forms {
			msg = strings.ReplaceAll(msg, f, "…")
		}
		return msg
	}
	if se, ok := err.(*fetch.StatusError); ok {
		cp := *se
		cp.Path, cp.Message = clean(cp.Path), clean(cp.Message)
		return &cp
	}
	msg := err.Error()
	if cleaned := clean(msg); cleaned != msg {
		return &redactedError{msg: cleaned, cause: err}
	}
	return err
}

// redactedError is an error whose text had a credential cut out. It does
// not unwrap (the cause's text still holds the credential) but lets
// errors.Is see through it.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string        { return e.msg }
func (e *redactedError) Is(target error) bool { return errors.Is(e.cause, target) }
