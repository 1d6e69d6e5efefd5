package passworktest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
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

func (s *Server) searchV7(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query := strings.ToLower(q.Get("query"))
	vaultIDs, folderIDs := set(q["vaultIds[]"]), set(q["folderIds[]"])
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []any{}
	for _, it := range s.items {
		if len(vaultIDs) > 0 && !vaultIDs[it.VaultID] || len(folderIDs) > 0 && !folderIDs[it.FolderID] {
			continue
		}
		if query != "" && !strings.Contains(strings.ToLower(it.Name), query) {
			continue
		}
		sum := map[string]any{
			"id": it.ID, "name": it.Name, "vaultId": it.VaultID, "folderId": nullable(it.FolderID),
			"login": it.Login, "url": it.URL, "tags": it.Tags, "path": s.pathJSON(it),
		}
		if s.opts.noSearchPaths {
			delete(sum, "path")
		}
		out = append(out, sum)
	}
	writeV7(w, r, http.StatusOK, map[string]any{"items": out})
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
	responses := []any{}
	for _, sub := range req.Requests {
		if !strings.HasPrefix(sub.RelativeURL, "/api/v1/") || sub.RelativeURL == "/api/v1/batch" {
			responses = append(responses, map[string]any{"statusCode": 400, "body": map[string]any{}})
			continue
		}
		sr := httptest.NewRequest(sub.Method, sub.RelativeURL, nil)
		for _, h := range []string{"Authorization", "X-Master-Key-Hash"} {
			sr.Header.Set(h, r.Header.Get(h))
		}
		sr.Header.Set("X-Response-Format", "raw")
		rec := httptest.NewRecorder()
		s.mux.ServeHTTP(rec, sr)
		body := bytes.TrimSpace(rec.Body.Bytes())
		if !json.Valid(body) {
			body = []byte("{}")
		}
		responses = append(responses, map[string]any{"statusCode": rec.Code, "body": json.RawMessage(body)})
	}
	writeV7(w, r, http.StatusOK, map[string]any{"responses": responses})
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
		http.NotFound(w, r)
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

func (s *Server) itemJSONv7(it *item) map[string]any {
	atts := []any{}
	for _, a := range it.Attachments {
		atts = append(atts, map[string]any{"id": a.ID, "name": a.Name, "encryptedKey": a.EncryptedKey})
	}
	customs := []custom{}
	customs = append(customs, it.Customs...)
	vmk := s.vaultByID(it.VaultID).MasterKeyEncrypted // nil with CSE off
	return map[string]any{
		"id": it.ID, "vaultId": it.VaultID, "folderId": nullable(it.FolderID), "name": it.Name,
		"login": it.Login, "url": it.URL, "urls": it.URLs, "description": it.Descr, "tags": it.Tags,
		"color": 0, "isFavorite": false, "isDeleted": false,
		"passwordEncrypted": it.PasswordEncrypted, "keyEncrypted": it.KeyEncrypted,
		"vaultMasterKeyEncrypted": vmk, "customs": customs, "attachments": atts,
		"path": s.pathJSON(it),
	}
}

func (s *Server) pathJSON(it *item) []any {
	var out []any
	for i, p := range s.location(it) {
		out = append(out, map[string]any{"id": p.ID, "name": p.Name, "type": p.Type, "order": i})
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
