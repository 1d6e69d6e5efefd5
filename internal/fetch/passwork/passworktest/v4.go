package passworktest

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Legacy Passwork 4–6 API (/api/v4): API-key login, Passwork-Auth session
// tokens, Passwork-MasterHash, {"status","code","data"} envelope, vault
// passwords wrapped with AESpw instead of RSA.

func (s *Server) routesV4() {
	s.mux.HandleFunc("POST /api/v4/auth/login/{apiKey}", s.loginV4)
	s.mux.HandleFunc("POST /api/v4/auth/refreshToken/{token}/{refresh}", s.refreshV4)
	s.mux.HandleFunc("GET /api/v4/info/version", s.authV4(func(w http.ResponseWriter, r *http.Request) {
		writeV4(w, http.StatusOK, "", map[string]any{"version": "6.3.0", "legacySupport": s.opts.legacySupport})
	}))
	s.mux.HandleFunc("GET /api/v4/user/get-master-key-options", s.authV4(func(w http.ResponseWriter, r *http.Request) {
		writeV4(w, http.StatusOK, "", map[string]any{"mkOptions": s.mkOptions})
	}))
	s.mux.HandleFunc("GET /api/v4/vaults/list", s.authV4(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		out := []any{}
		for _, v := range s.vaults {
			if !v.apiCreated {
				out = append(out, vaultJSONv4(v))
			}
		}
		s.mu.Unlock()
		writeV4(w, http.StatusOK, "", out)
	}))
	s.mux.HandleFunc("GET /api/v4/vaults/{id}", s.authV4(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		v := s.vaultByID(r.PathValue("id"))
		s.mu.Unlock()
		if v == nil || v.apiCreated {
			writeV4(w, http.StatusNotFound, "vaultNotFound", nil)
			return
		}
		writeV4(w, http.StatusOK, "", vaultJSONv4(v))
	}))
	s.mux.HandleFunc("POST /api/v4/passwords/search", s.authV4(s.searchV4))
	s.mux.HandleFunc("GET /api/v4/passwords/{id}", s.authV4(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		it := s.itemByID(r.PathValue("id"))
		if it == nil || s.vaultByID(it.VaultID).apiCreated {
			writeV4(w, http.StatusNotFound, "passwordNotFound", nil)
			return
		}
		writeV4(w, http.StatusOK, "", s.passwordJSONv4(it, true))
	}))
	s.mux.HandleFunc("GET /api/v4/passwords/{id}/attachment/{att}", s.authV4(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if a := s.attachmentByID(r.PathValue("id"), r.PathValue("att")); a != nil {
			writeV4(w, http.StatusOK, "", attachmentJSON(a))
			return
		}
		writeV4(w, http.StatusNotFound, "attachmentNotFound", nil)
	}))
}

func (s *Server) loginV4(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("apiKey") != s.apiKey {
		writeV4(w, http.StatusUnauthorized, "invalidApiKey", nil)
		return
	}
	s.mu.Lock()
	tok, ref := randomHex(24), randomHex(24)
	s.v4sessions[tok] = &session{refresh: ref}
	s.mu.Unlock()
	writeV4(w, http.StatusOK, "", sessionJSONv4(tok, ref))
}

// refreshV4 trades a (possibly expired) token and its refresh token for a
// new pair; the old pair stops working.
func (s *Server) refreshV4(w http.ResponseWriter, r *http.Request) {
	old, ref := r.PathValue("token"), r.PathValue("refresh")
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.v4sessions[old]
	if !ok || se.refresh != ref {
		writeV4(w, http.StatusUnauthorized, "invalidRefreshToken", nil)
		return
	}
	delete(s.v4sessions, old)
	tok, nref := randomHex(24), randomHex(24)
	s.v4sessions[tok] = &session{refresh: nref}
	writeV4(w, http.StatusOK, "", sessionJSONv4(tok, nref))
}

func (s *Server) authV4(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		se := s.v4sessions[r.Header.Get("Passwork-Auth")]
		s.mu.Unlock()
		switch {
		case se == nil:
			writeV4(w, http.StatusUnauthorized, "unauthorized", nil)
			return
		case se.expired:
			writeV4(w, http.StatusUnauthorized, "apiSessionExpired", nil)
			return
		}
		want := s.masterKeyHash
		if s.opts.legacySupport {
			want = s.masterKeyHashMD5
		}
		if h := r.Header.Get("Passwork-MasterHash"); h != "" && !s.opts.noHashCheck && h != want {
			writeV4(w, http.StatusForbidden, "invalidMasterHash", nil)
			return
		}
		h(w, r)
	}
}

func (s *Server) searchV4(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Query   string  `json:"query"`
		VaultID *string `json:"vaultId"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeV4(w, http.StatusBadRequest, "invalidRequest", nil)
		return
	}
	q := strings.ToLower(body.Query)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []any{}
	for _, it := range s.items {
		if body.VaultID != nil && *body.VaultID != "" && it.VaultID != *body.VaultID || s.vaultByID(it.VaultID).apiCreated {
			continue
		}
		if q != "" && !strings.Contains(strings.ToLower(it.Name), q) {
			continue
		}
		out = append(out, s.passwordJSONv4(it, false))
	}
	writeV4(w, http.StatusOK, "", out)
}

func vaultJSONv4(v *vault) map[string]any {
	m := map[string]any{
		"id": v.ID, "name": v.Name, "access": "read", "scope": v.Scope,
		"vaultPasswordCrypted": v.PasswordCrypted, "domainMaster": v.DomainMaster,
	}
	if v.StalePassword != nil {
		m["passwordCrypted"], m["vaultPasswordCrypted"] = v.PasswordCrypted, v.StalePassword
	}
	return m
}

// passwordJSONv4 renders a password; search results (full=false) leave out
// the secret material, as summaries.
func (s *Server) passwordJSONv4(it *item, full bool) map[string]any {
	var path []any
	for i, p := range s.location(it) {
		path = append(path, map[string]any{"order": i, "name": p.Name, "type": p.Type, "id": p.ID})
	}
	m := map[string]any{
		"id": it.ID, "vaultId": it.VaultID, "folderId": nullable(it.FolderID), "name": it.Name,
		"login": it.Login, "url": it.URL, "description": it.Descr, "color": 0, "tags": it.Tags,
		"path": path, "access": "read",
	}
	if full {
		atts := []any{}
		for _, a := range it.Attachments {
			atts = append(atts, map[string]any{"id": a.ID, "name": a.Name, "encryptedKey": a.EncryptedKey})
		}
		m["cryptedPassword"] = it.PasswordEncrypted
		m["cryptedKey"] = it.KeyEncrypted
		m["custom"] = append([]custom{}, it.Customs...)
		m["attachments"] = atts
	}
	return m
}

func sessionJSONv4(tok, ref string) map[string]any {
	return map[string]any{
		"token": tok, "refreshToken": ref, "tokenTtl": 600, "refreshTokenTtl": 86400,
		"tokenExpiredAt": unixIn(600), "refreshTokenExpiredAt": unixIn(86400),
		"user": map[string]any{"name": "Emulator", "email": "emulator@example.invalid"},
	}
}

func writeV4(w http.ResponseWriter, status int, code string, data any) {
	st := "success"
	if status >= 400 {
		st = "error"
	}
	body, _ := json.Marshal(map[string]any{"status": st, "code": code, "data": data})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

func unixIn(seconds int64) int64 { return time.Now().Unix() + seconds }
