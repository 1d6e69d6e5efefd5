package passworktest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Passwork 7 (/api/v1): bearer tokens, X-Master-Key-Hash, responses in a
// base64 envelope unless the client sends X-Response-Format: raw.

func (s *Server) routesV7() {
	s.mux.HandleFunc("GET /api/v1/users/master-key/options", s.authV7(func(w http.ResponseWriter, r *http.Request) {
		writeV7(w, r, http.StatusOK, map[string]any{"masterKeyOptions": s.mkOptions})
	}))
	s.mux.HandleFunc("GET /api/v1/users/keys", s.authV7(func(w http.ResponseWriter, r *http.Request) {
		writeV7(w, r, http.StatusOK, map[string]any{
			"id": s.userID, "keys": map[string]any{"public": s.publicPEM, "privateEncrypted": s.privateEncrypted},
		})
	}))
	s.mux.HandleFunc("GET /api/v1/vaults", s.authV7(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		out := []any{}
		for _, v := range s.vaults {
			out = append(out, vaultJSONv7(v))
		}
		s.mu.Unlock()
		writeV7(w, r, http.StatusOK, map[string]any{"items": out})
	}))
	s.mux.HandleFunc("GET /api/v1/vaults/{id}", s.authV7(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		v := s.vaultByID(r.PathValue("id"))
		s.mu.Unlock()
		if v == nil {
			writeV7Error(w, r, http.StatusNotFound, "vaultNotFound", "Vault not found")
			return
		}
		writeV7(w, r, http.StatusOK, vaultJSONv7(v))
	}))
	s.mux.HandleFunc("GET /api/v1/items/search", s.authV7(s.searchV7))
	s.mux.HandleFunc("GET /api/v1/items/{id}", s.authV7(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		it := s.itemByID(r.PathValue("id"))
		if it == nil {
			writeV7Error(w, r, http.StatusNotFound, "itemNotFound", "Item not found")
			return
		}
		writeV7(w, r, http.StatusOK, s.itemJSONv7(it))
	}))
	s.mux.HandleFunc("GET /api/v1/items/{id}/attachment/{att}", s.authV7(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if a := s.attachmentByID(r.PathValue("id"), r.PathValue("att")); a != nil {
			writeV7(w, r, http.StatusOK, attachmentJSON(a))
			return
		}
		writeV7Error(w, r, http.StatusNotFound, "attachmentNotFound", "Attachment not found")
	}))
	s.mux.HandleFunc("GET /api/v1/shortcuts/search", s.authV7(s.shortcutSearchV7))
	s.mux.HandleFunc("GET /api/v1/shortcuts/{id}", s.authV7(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		sc := s.shortcutByID(r.PathValue("id"))
		if sc == nil {
			writeV7Error(w, r, http.StatusNotFound, "shortcutNotFound", "Shortcut not found")
			return
		}
		writeV7(w, r, http.StatusOK, s.shortcutItemJSON(sc))
	}))
	s.mux.HandleFunc("GET /api/v1/folders", s.authV7(func(w http.ResponseWriter, r *http.Request) {
		vaultID := r.URL.Query().Get("vaultId")
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.vaultByID(vaultID) == nil {
			writeV7Error(w, r, http.StatusNotFound, "vaultNotFound", "Vault not found")
			return
		}
		out := []any{}
		for _, f := range s.folders {
			if f.VaultID == vaultID {
				out = append(out, s.folderJSONv7(f))
			}
		}
		writeV7(w, r, http.StatusOK, map[string]any{"items": out})
	}))
	s.mux.HandleFunc("GET /api/v1/folders/{id}", s.authV7(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		f := s.folderByID(r.PathValue("id"))
		if f == nil {
			writeV7Error(w, r, http.StatusNotFound, "folderNotFound", "Folder not found")
			return
		}
		writeV7(w, r, http.StatusOK, s.folderJSONv7(f))
	}))
	// No optional features (vault types among them): the SDK then creates
	// vaults without a typeId.
	s.mux.HandleFunc("GET /api/v1/app/features", s.authV7(func(w http.ResponseWriter, r *http.Request) {
		writeV7(w, r, http.StatusOK, []any{})
	}))
	s.mux.HandleFunc("POST /api/v1/batch", s.authV7(s.batchV7))
	s.mux.HandleFunc("POST /api/v1/sessions/refresh", s.refreshV7)
	s.mux.HandleFunc("POST /api/v1/sessions/refresh-access-token", s.refreshAccessV7)
}

// authV7 checks the bearer token and, when sent, the master key hash.
func (s *Server) authV7(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		se := s.sessions[tok]
		s.mu.Unlock()
		switch {
		case !ok || se == nil:
			writeV7Error(w, r, http.StatusUnauthorized, "invalidToken", "Invalid access token")
			return
		case se.expired:
			writeV7Error(w, r, http.StatusUnauthorized, "accessTokenExpired", "Access token expired")
			return
		}
		if h := r.Header.Get("X-Master-Key-Hash"); h != "" && !s.opts.noHashCheck && h != s.masterKeyHash {
			writeV7Error(w, r, http.StatusForbidden, "invalidMasterKeyHash", "Invalid master key hash")
			return
		}
		h(w, r)
	}
}

// itemFilter is the search parameters items/search and shortcuts/search
// share, applied to the entry: query (case-insensitive substring of the
// name), tags[] (the entry has every tag), colorCodes[] (its color is one
// of them), url (case-insensitive substring of one of its URLs). An empty
// or absent parameter does not filter.
type itemFilter struct {
	query, url string
	tags       []string
	colors     map[string]bool
}

func newItemFilter(q url.Values) itemFilter {
	f := itemFilter{query: strings.ToLower(q.Get("query")), url: strings.ToLower(q.Get("url")), colors: set(q["colorCodes[]"])}
	for _, t := range q["tags[]"] {
		if t != "" {
			f.tags = append(f.tags, t)
		}
	}
	delete(f.colors, "")
	return f
}

func (f itemFilter) match(it *item) bool {
	if f.query != "" && !strings.Contains(strings.ToLower(it.Name), f.query) {
		return false
	}
	for _, t := range f.tags {
		if !slices.Contains(it.Tags, t) {
			return false
		}
	}
	if len(f.colors) > 0 && !f.colors[strconv.Itoa(it.Color)] {
		return false
	}
	if f.url != "" && !slices.ContainsFunc(append([]string{it.URL}, it.URLs...), func(u string) bool {
		return u != "" && strings.Contains(strings.ToLower(u), f.url)
	}) {
		return false
	}
	return true
}

func (s *Server) searchV7(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filter := newItemFilter(q)
	vaultIDs, folderIDs := set(q["vaultIds[]"]), set(q["folderIds[]"])
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []any{}
	for _, it := range s.items {
		if len(vaultIDs) > 0 && !vaultIDs[it.VaultID] || len(folderIDs) > 0 && !folderIDs[it.FolderID] || !filter.match(it) {
			continue
		}
		out = append(out, s.summaryJSONv7(it))
	}
	writeV7(w, r, http.StatusOK, map[string]any{"items": out})
}

// shortcutSearchV7 lists shortcuts: vaultIds[] and folderIds[] select
// where the shortcut is, the other parameters filter on its entry. Each
// result is the entry's summary with the shortcut (its id and location)
// in "shortcut".
func (s *Server) shortcutSearchV7(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filter := newItemFilter(q)
	vaultIDs, folderIDs := set(q["vaultIds[]"]), set(q["folderIds[]"])
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []any{}
	for _, sc := range s.shortcuts {
		it := s.itemByID(sc.ItemID)
		if it == nil || len(vaultIDs) > 0 && !vaultIDs[sc.VaultID] || len(folderIDs) > 0 && !folderIDs[sc.FolderID] || !filter.match(it) {
			continue
		}
		sum := s.summaryJSONv7(it)
		sum.Shortcut = s.shortcutJSON(sc)
		out = append(out, sum)
	}
	writeV7(w, r, http.StatusOK, map[string]any{"items": out})
}

// summaryV7 is an item as searches list it. Records the emulator sends
// for every item of a refresh are structs, not maps: encoding/json sorts a
// map's keys at every call, which made the emulator's CPU a large part of
// the client benchmarks.
type summaryV7 struct {
	ID       string         `json:"id"`
	Name     string         `json:"name"`
	VaultID  string         `json:"vaultId"`
	FolderID any            `json:"folderId"`
	Login    string         `json:"login"`
	URL      string         `json:"url"`
	Tags     []string       `json:"tags"`
	Color    int            `json:"color"`
	Path     []pathRecord   `json:"path,omitempty"`
	Shortcut map[string]any `json:"shortcut,omitempty"`
}

func (s *Server) summaryJSONv7(it *item) *summaryV7 {
	sum := &summaryV7{
		ID: it.ID, Name: it.Name, VaultID: it.VaultID, FolderID: nullable(it.FolderID),
		Login: it.Login, URL: it.URL, Tags: it.Tags, Color: it.Color, Path: s.pathJSON(s.location(it)),
	}
	if s.opts.noSearchPaths {
		sum.Path = nil
	}
	return sum
}

// shortcutJSON is a shortcut's own record: where it is and the item key
// wrapped for that vault.
func (s *Server) shortcutJSON(sc *shortcut) map[string]any {
	m := map[string]any{
		"id": sc.ID, "itemId": sc.ItemID, "vaultId": sc.VaultID, "folderId": nullable(sc.FolderID),
		"keyEncrypted": sc.KeyEncrypted, "path": s.pathJSON(s.locationOf(sc.VaultID, sc.FolderID)),
	}
	if s.opts.noSearchPaths {
		delete(m, "path")
	}
	return m
}

// shortcutItemJSON is GET /api/v1/shortcuts/{id}: the entry as seen from
// the shortcut's vault. Its "id" is the entry's (the SDK fetches
// /items/{id} with it), and its keys are the shortcut's: keyEncrypted is
// the item key wrapped with the shortcut vault's key and
// vaultMasterKeyEncrypted is that vault's key wrapped for the user, so the
// usual item decryption works for a user who cannot open the entry's own
// vault.
func (s *Server) shortcutItemJSON(sc *shortcut) *itemRecordV7 {
	it := s.itemByID(sc.ItemID)
	m := s.itemJSONv7(it)
	m.KeyEncrypted = sc.KeyEncrypted
	m.VaultMasterKeyEncrypted = s.vaultByID(sc.VaultID).MasterKeyEncrypted
	m.Shortcut = s.shortcutJSON(sc)
	return m
}

func (s *Server) folderJSONv7(f *folder) map[string]any {
	return map[string]any{
		"id": f.ID, "name": f.Name, "vaultId": f.VaultID, "parentFolderId": nullable(f.ParentID),
		"path": s.pathJSON(s.locationOf(f.VaultID, f.ParentID)),
	}
}

// batchV7 runs each sub-request through the same routes with the caller's
// credentials and returns the plain JSON bodies.
func (s *Server) batchV7(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Requests []struct {
			Method      string `json:"method"`
			RelativeURL string `json:"relativeUrl"`
		} `json:"requests"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeV7Error(w, r, http.StatusBadRequest, "invalidRequest", "Malformed JSON")
		return
	}
	if len(req.Requests) > s.opts.maxBatch {
		writeV7Error(w, r, http.StatusBadRequest, "tooManyRequests", "Too many requests in batch")
		return
	}
	// The envelope is written by hand around each sub-response's body:
	// json.Marshal would validate and compact every json.RawMessage again,
	// which at 25 items a batch was most of the emulator's cost.
	var out bytes.Buffer
	out.WriteString(`{"responses":[`)
	for i, sub := range req.Requests {
		if i > 0 {
			out.WriteByte(',')
		}
		if !strings.HasPrefix(sub.RelativeURL, "/api/v1/") || sub.RelativeURL == "/api/v1/batch" {
			out.WriteString(`{"statusCode":400,"body":{}}`)
			continue
		}
		sr := httptest.NewRequest(sub.Method, sub.RelativeURL, nil)
		for _, h := range []string{"Authorization", "X-Master-Key-Hash"} {
			sr.Header.Set(h, r.Header.Get(h))
		}
		sr.Header.Set("X-Response-Format", "raw")
		rec := httptest.NewRecorder()
		s.route(rec, sr)
		body := bytes.TrimSpace(rec.Body.Bytes())
		if !json.Valid(body) { // a mux 404 or 405 is plain text
			body = []byte("{}")
		}
		fmt.Fprintf(&out, `{"statusCode":%d,"body":`, rec.Code)
		out.Write(body)
		out.WriteByte('}')
	}
	out.WriteString(`]}`)
	writeV7JSON(w, r, http.StatusOK, out.Bytes())
}

// refreshV7 rotates the whole pair; the old pair stops working.
func (s *Server) refreshV7(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RefreshToken string `json:"refreshToken"`
	}
	json.NewDecoder(r.Body).Decode(&body)
	old, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	defer s.mu.Unlock()
	access, ok := s.refreshes[body.RefreshToken]
	if !ok || access != old {
		writeV7Error(w, r, http.StatusUnauthorized, "invalidRefreshToken", "Invalid refresh token")
		return
	}
	delete(s.sessions, access)
	delete(s.refreshes, body.RefreshToken)
	na, nr := s.issuePair()
	writeV7(w, r, http.StatusOK, map[string]any{
		"accessToken": na, "refreshToken": nr,
		"accessTokenExpiredAt": unixIn(3600), "refreshTokenExpiredAt": unixIn(30 * 86400),
	})
}

// refreshAccessV7 (Passwork 7.6+) replaces only the access token.
func (s *Server) refreshAccessV7(w http.ResponseWriter, r *http.Request) {
	if s.opts.noAccessRotate {
		writeV7Error(w, r, http.StatusNotFound, "notFound", "Route not found")
		return
	}
	var body struct {
		AccessToken string `json:"accessToken"`
	}
	json.NewDecoder(r.Body).Decode(&body)
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.sessions[body.AccessToken]
	if !ok {
		writeV7Error(w, r, http.StatusUnauthorized, "invalidToken", "Invalid access token")
		return
	}
	delete(s.sessions, body.AccessToken)
	na := randomHex(24)
	s.sessions[na] = &session{refresh: se.refresh}
	s.refreshes[se.refresh] = na
	writeV7(w, r, http.StatusOK, map[string]any{"accessToken": na, "accessTokenExpiredAt": unixIn(3600)})
}

func vaultJSONv7(v *vault) map[string]any {
	return map[string]any{
		"id": v.ID, "name": v.Name, "typeId": "0", "isVisible": true,
		"masterKeyEncrypted": v.MasterKeyEncrypted, "permissions": []string{"read"},
	}
}

// itemRecordV7 is GET /api/v1/items/{id}.
type itemRecordV7 struct {
	ID                      string              `json:"id"`
	VaultID                 string              `json:"vaultId"`
	FolderID                any                 `json:"folderId"`
	Name                    string              `json:"name"`
	Login                   string              `json:"login"`
	URL                     string              `json:"url"`
	URLs                    []string            `json:"urls"`
	Description             string              `json:"description"`
	Tags                    []string            `json:"tags"`
	Color                   int                 `json:"color"`
	IsFavorite              bool                `json:"isFavorite"`
	IsDeleted               bool                `json:"isDeleted"`
	PasswordEncrypted       string              `json:"passwordEncrypted"`
	KeyEncrypted            *string             `json:"keyEncrypted"`
	VaultMasterKeyEncrypted *string             `json:"vaultMasterKeyEncrypted"`
	Customs                 []custom            `json:"customs"`
	Attachments             []attachmentSummary `json:"attachments"`
	Path                    []pathRecord        `json:"path"`
	Shortcut                map[string]any      `json:"shortcut,omitempty"`
}

type attachmentSummary struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	EncryptedKey string `json:"encryptedKey"`
}

type pathRecord struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Type  string `json:"type"`
	Order int    `json:"order"`
}

func (s *Server) itemJSONv7(it *item) *itemRecordV7 {
	atts := []attachmentSummary{}
	for _, a := range it.Attachments {
		atts = append(atts, attachmentSummary{a.ID, a.Name, a.EncryptedKey})
	}
	customs := []custom{}
	customs = append(customs, it.Customs...)
	vmk := s.vaultByID(it.VaultID).MasterKeyEncrypted // nil with CSE off
	return &itemRecordV7{
		ID: it.ID, VaultID: it.VaultID, FolderID: nullable(it.FolderID), Name: it.Name,
		Login: it.Login, URL: it.URL, URLs: it.URLs, Description: it.Descr, Tags: it.Tags,
		Color: it.Color, PasswordEncrypted: it.PasswordEncrypted, KeyEncrypted: it.KeyEncrypted,
		VaultMasterKeyEncrypted: vmk, Customs: customs, Attachments: atts,
		Path: s.pathJSON(s.location(it)),
	}
}

func (s *Server) pathJSON(loc []pathElem) []pathRecord {
	var out []pathRecord
	for i, p := range loc {
		out = append(out, pathRecord{p.ID, p.Name, p.Type, i})
	}
	return out
}

func (s *Server) attachmentByID(itemID, attID string) *attachment {
	if it := s.itemByID(itemID); it != nil {
		for _, a := range it.Attachments {
			if a.ID == attID {
				return a
			}
		}
	}
	return nil
}

func attachmentJSON(a *attachment) map[string]any {
	return map[string]any{
		"id": a.ID, "name": a.Name, "encryptedKey": a.EncryptedKey, "encryptedData": a.EncryptedData, "hash": a.Hash,
	}
}

// writeV7 sends v as JSON, wrapped in the base64 envelope unless the client
// asked for raw.
func writeV7(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"errors":[{"code":"internal","message":"marshal"}]}`)
	}
	writeV7JSON(w, r, status, body)
}

// writeV7JSON sends a body that is already JSON, as writeV7 does.
func writeV7JSON(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	if !strings.EqualFold(r.Header.Get("X-Response-Format"), "raw") {
		body, _ = json.Marshal(map[string]string{"format": "base64", "content": base64.StdEncoding.EncodeToString(body)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

func writeV7Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	writeV7(w, r, status, map[string]any{"errors": []any{map[string]string{"code": code, "field": "", "message": msg}}})
}

func set(xs []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
