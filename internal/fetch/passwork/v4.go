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
	legacy          bool // md5 master hash
	masterKey, hash string

	vaultNames map[string][]string
	vaultsAt   time.Time
	vaultInfo  map[string]vaultRecord // GET /vaults/{id}, by id
	memo       *memos                 // item keys (shared with the Client)
	vaultPass  map[string]string      // vault id + crypted → vault password
}

// vaultRecord is one vault's crypted password, read from GET /vaults/{id}
// (where the official connectors read it), and when it was read.
type vaultRecord struct {
	v  vaultV4
	at time.Time
}

type vaultV4 struct {
	ID                   string  `json:"id"`
	Name                 string  `json:"name"`
	Scope                string  `json:"scope"`
	VaultPasswordCrypted *string `json:"vaultPasswordCrypted"`
	PasswordCrypted      *string `json:"passwordCrypted"`
	DomainMaster         *string `json:"domainMaster"`
}

func newV4(base string, cfg Config, h *fetch.HTTP, m *memos) *v4 {
	return &v4{base: base, cfg: cfg, http: h, vaultPass: map[string]string{}, vaultInfo: map[string]vaultRecord{}, memo: m}
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
	// The version first, as the JS connector asks it: it needs no session.
	var ver struct {
		LegacySupport bool `json:"legacySupport"`
	}
	if err := b.call(ctx, http.MethodGet, "/info/version", nil, &ver); err != nil {
		return err
	}
	b.legacy = ver.LegacySupport
	offline := b.http.Offline()
	if !offline {
		if err := b.login(ctx); err != nil {
			if err := b.http.ContinueOffline(ctx, err); err != nil {
				return err
			}
			offline = true
		}
	}
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
	// Offline, the cache answers this run without a session; the next
	// run logs in.
	b.authed = !offline
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
		var ve *v4Error
		if errors.As(err, &ve) && ve.code == "clientSideEncryptionDisabled" {
			return errors.New("passwork: this server has client-side encryption turned off, so it takes no master key: unset PASSWORK_MASTER_KEY and PASSWORK_MASTER_PASSWORD")
		}
		return fmt.Errorf("passwork: login with PASSWORK_API_KEY: %w", redact(err, b.cfg.APIKey))
	}
	if out.Token == "" {
		return errors.New("passwork: login with PASSWORK_API_KEY: response lacks a session token")
	}
	b.token, b.refresh = out.Token, out.RefreshToken
	return nil
}

// logout ends the session login opened (POST /auth/logout), so a
// one-shot run leaves no live session behind. Once: a lost reply leaves a
// session that expires by itself (sliding, minutes).
func (b *v4) logout(ctx context.Context) error {
	if b.token == "" {
		return nil
	}
	req := fetch.Request{Method: http.MethodPost, NoRetry: true, URL: b.base + "/auth/logout",
		Header: http.Header{"Passwork-Auth": {b.token}, "Content-Type": {"application/json"}}}
	b.token, b.refresh, b.authed = "", "", false
	if err := b.send(ctx, req, "/auth/logout", nil); err != nil {
		var ve *v4Error
		if errors.As(err, &ve) && ve.status == http.StatusUnauthorized {
			return nil // the session had ended already
		}
		return fmt.Errorf("passwork: logout: %w", err)
	}
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
		// Cacheable with client-side encryption only (see v7.callOnce).
		req := fetch.Request{Method: method, URL: b.base + path, Header: http.Header{}, Cache: b.cfg.encrypted()}
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
	b.vaultNames = map[string][]string{}
	for _, v := range list {
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
		Tags    []string   `json:"tags"`
	}
	if err := b.call(ctx, http.MethodPost, "/passwords/search", body, &out); err != nil {
		return nil, err
	}
	sums := make([]summary, 0, len(out))
	for _, p := range out {
		path := append([]pathElem(nil), p.Path...)
		sortPath(path)
		sums = append(sums, summary{id: p.ID, vaultID: p.VaultID, name: p.Name, folders: folderNames(path), tags: p.Tags})
	}
	return sums, nil
}

// shortcuts lists the shortcuts placed in the vaults: the search with
// includeShortcuts answers them located where the shortcut is, with
// "shortcut" carrying its id and vault.
func (b *v4) shortcuts(ctx context.Context, vaultIDs []string) ([]summary, error) {
	var vaultID *string
	if len(vaultIDs) == 1 {
		vaultID = &vaultIDs[0]
	}
	body := map[string]any{"query": "", "tags": []string{}, "colors": []int{}, "vaultId": vaultID,
		"includeShared": false, "includeShortcuts": true}
	var out []passwordV4
	if err := b.call(ctx, http.MethodPost, "/passwords/search", body, &out); err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, id := range vaultIDs {
		want[id] = true
	}
	var sums []summary
	for _, p := range out {
		sc := p.Shortcut
		if sc == nil || sc.ID == "" || !want[sc.VaultID] {
			continue
		}
		path := append([]pathElem(nil), p.Path...)
		sortPath(path)
		sums = append(sums, summary{id: shortcutID(sc.ID), vaultID: sc.VaultID, name: p.Name, folders: folderNames(path)})
	}
	return sums, nil
}

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
	Path []pathElem `json:"path"`
	// Shortcut is set on a password seen through a shortcut: its key is
	// then wrapped with the shortcut vault's password (cryptedKey here).
	Shortcut *struct {
		ID         string  `json:"id"`
		VaultID    string  `json:"vaultId"`
		CryptedKey *string `json:"cryptedKey"`
	} `json:"shortcut"`
}

// getParallel GETs each path (the legacy API has no batch endpoint), a
// few at a time, decoding into into(i). The session may expire mid-run;
// renewing concurrently would race, so requests that met the expiry are
// retried serially afterwards, the first renewing the session.
func (b *v4) getParallel(ctx context.Context, paths []string, into func(i int) any) []error {
	errs := make([]error, len(paths))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(v4Parallel)
	for i, p := range paths {
		g.Go(func() error {
			errs[i] = b.callNoRenew(gctx, http.MethodGet, p, into(i))
			return nil
		})
	}
	g.Wait()
	for i, p := range paths {
		var ve *v4Error
		if errors.As(errs[i], &ve) && ve.code == "apiSessionExpired" {
			errs[i] = b.call(ctx, http.MethodGet, p, nil, into(i))
		}
	}
	return errs
}

// get fetches the entries (an entry reached by shortcut through
// /sharing/shortcut/{id}), then the vaults they need, in parallel.
func (b *v4) get(ctx context.Context, ids []string) (map[string]*entry, map[string]error, error) {
	paths := make([]string, len(ids))
	for i, id := range ids {
		if sc, ok := strings.CutPrefix(id, "shortcut:"); ok {
			paths[i] = "/sharing/shortcut/" + url.PathEscape(sc)
			continue
		}
		paths[i] = "/passwords/" + url.PathEscape(id)
	}
	ps := make([]passwordV4, len(ids))
	errs := b.getParallel(ctx, paths, func(i int) any { return &ps[i] })
	entries, perID := map[string]*entry{}, map[string]error{}
	for i, id := range ids {
		err := errs[i]
		var ve *v4Error
		switch {
		case errors.Is(err, errInvalidMasterKey):
			return nil, nil, err
		case errors.As(err, &ve) && (ve.status == http.StatusNotFound || ve.status == http.StatusForbidden):
		case err != nil:
			if !errors.As(err, &ve) {
				return nil, nil, err // transport failure: the whole batch is affected
			}
			perID[id] = err
		case ps[i].ID != "":
			entries[id] = ps[i].toEntry(id)
		}
	}
	var vaultIDs []string
	for _, e := range entries {
		vaultIDs = append(vaultIDs, e.vaultID)
	}
	if err := b.fetchVaults(ctx, vaultIDs); err != nil {
		return nil, nil, err
	}
	return entries, perID, nil
}

// fetchVaults reads, in parallel, the vault records not read within the
// vault cache lifetime. A vault the server refuses is left for itemKey to
// report on the entries that need it; a transport failure fails the batch.
func (b *v4) fetchVaults(ctx context.Context, ids []string) error {
	var want []string
	seen := map[string]bool{}
	for _, id := range ids {
		if r, ok := b.vaultInfo[id]; (!ok || time.Since(r.at) >= vaultCacheTTL) && !seen[id] {
			seen[id] = true
			want = append(want, id)
		}
	}
	paths := make([]string, len(want))
	for i, id := range want {
		paths[i] = "/vaults/" + url.PathEscape(id)
	}
	vs := make([]vaultV4, len(want))
	errs := b.getParallel(ctx, paths, func(i int) any { return &vs[i] })
	for i, id := range want {
		var ve *v4Error
		switch err := errs[i]; {
		case err == nil:
			b.vaultInfo[id] = vaultRecord{v: vs[i], at: time.Now()}
		case errors.Is(err, errInvalidMasterKey), !errors.As(err, &ve):
			return err
		}
	}
	return nil
}

// vault returns a vault's record, reading it if it is not cached.
func (b *v4) vault(ctx context.Context, id string) (vaultV4, error) {
	if r, ok := b.vaultInfo[id]; ok && time.Since(r.at) < vaultCacheTTL {
		return r.v, nil
	}
	var v vaultV4
	if err := b.call(ctx, http.MethodGet, "/vaults/"+url.PathEscape(id), nil, &v); err != nil {
		return vaultV4{}, err
	}
	b.vaultInfo[id] = vaultRecord{v: v, at: time.Now()}
	return v, nil
}

// callNoRenew is call without session renewal, for parallel use.
func (b *v4) callNoRenew(ctx context.Context, method, path string, out any) error {
	req := fetch.Request{Method: method, URL: b.base + path, Header: http.Header{}, Cache: b.cfg.encrypted()}
	req.Header.Set("Passwork-Auth", b.token)
	if b.hash != "" {
		req.Header.Set("Passwork-MasterHash", b.hash)
	}
	return b.send(ctx, req, path, out)
}

// toEntry converts a password fetched as key. Seen through a shortcut,
// its key is the shortcut's cryptedKey, wrapped with the password of the
// shortcut's vault, as the official connectors decrypt it.
func (p passwordV4) toEntry(key string) *entry {
	e := &entry{
		id: p.ID, vaultID: p.VaultID, name: p.Name, login: p.Login, url: p.URL, description: p.Description,
		tags: p.Tags, passwordEnc: p.CryptedPassword, keyEnc: p.CryptedKey, customs: p.Custom,
	}
	if sc := p.Shortcut; sc != nil && sc.VaultID != "" {
		e.vaultID, e.keyEnc = sc.VaultID, sc.CryptedKey
	}
	for _, a := range p.Attachments {
		e.attachments = append(e.attachments, attRef{key: key, itemID: p.ID, attID: a.ID, name: a.Name})
	}
	return e
}

// itemKey: vault password = AESpw⁻¹(vault crypted, master key — or the
// domain master for organisation vaults); item key = AESpw⁻¹(cryptedKey,
// vault password), or the vault password itself when there is no cryptedKey.
func (b *v4) itemKey(ctx context.Context, e *entry) (string, bool, error) {
	v, err := b.vault(ctx, e.vaultID)
	if err != nil {
		var ve *v4Error
		if errors.As(err, &ve) {
			return "", false, fmt.Errorf("read its vault: %w", err)
		}
		return "", false, batchError{err}
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
		if v.Scope == "domain" {
			// An organisation vault's password is wrapped with the domain
			// master, never with the user's master key: without it the
			// vault cannot be opened.
			if v.DomainMaster == nil || *v.DomainMaster == "" {
				return "", false, fmt.Errorf("vault %q is an organisation (domain) vault but the server sent no domainMaster to open it with", v.Name)
			}
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
	ik, err := b.memo.decrypt(*e.keyEnc, vp)
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

// attachmentHash: the official connectors write and check SHA-256 even on
// servers with legacySupport; an MD5 hash (32 hex digits) is accepted for
// attachments that older clients stored with one.
func (b *v4) attachmentHash(data []byte, stored string) string {
	if len(stored) == 32 {
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
