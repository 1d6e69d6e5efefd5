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
	// Logout ends the session of the Passwork-Auth token.
	s.mux.HandleFunc("POST /api/v4/auth/logout", s.sessionV4(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		delete(s.v4sessions, r.Header.Get("Passwork-Auth"))
		s.logouts++
		s.mu.Unlock()
		writeV4(w, http.StatusOK, "", "loggedOut")
	}))
	// The JS connector asks for the version before logging in.
	s.mux.HandleFunc("GET /api/v4/info/version", func(w http.ResponseWriter, r *http.Request) {
		writeV4(w, http.StatusOK, "", map[string]any{"version": "6.3.0", "legacySupport": s.opts.legacySupport})
	})
	// The client cannot send the master key's hash before it has derived
	// the key from these options.
	s.mux.HandleFunc("GET /api/v4/user/get-master-key-options", s.sessionV4(func(w http.ResponseWriter, r *http.Request) {
		writeV4(w, http.StatusOK, "", map[string]any{"mkOptions": s.mkOptions})
	}))
	// The list names vaults; their crypted passwords are read from
	// GET /vaults/{id}, where the official connectors read them.
	s.mux.HandleFunc("GET /api/v4/vaults/list", s.authV4(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		out := []any{}
		for _, v := range s.vaults {
			if !v.apiCreated {
				out = append(out, map[string]any{"id": v.ID, "name": v.Name, "access": "read", "scope": v.Scope})
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
		m := vaultJSONv4(v)
		if s.opts.noDomainMaster {
			delete(m, "domainMaster")
		}
		writeV4(w, http.StatusOK, "", m)
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
	s.mux.HandleFunc("GET /api/v4/sharing/shortcut/{id}", s.authV4(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		sc := s.shortcutByID(r.PathValue("id"))
		if sc == nil || s.vaultByID(sc.VaultID).apiCreated {
			writeV4(w, http.StatusNotFound, "shortcutNotFound", nil)
			return
		}
		writeV4(w, http.StatusOK, "", s.shortcutJSONv4(sc, true))
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

// loginV4 opens a session. useMasterPassword says whether the client
// works with a master key: a server with client-side encryption off
// refuses it, one with it on then expects the key's hash on data requests.
func (s *Server) loginV4(w http.ResponseWriter, r *http.Request) {
	var body struct {
		UseMasterPassword bool `json:"useMasterPassword"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeV4(w, http.StatusBadRequest, "invalidRequest", nil)
			return
		}
	}
	if r.PathValue("apiKey") != s.apiKey {
		writeV4(w, http.StatusUnauthorized, "invalidApiKey", nil)
		return
	}
	if body.UseMasterPassword && s.opts.noCSE {
		writeV4(w, http.StatusBadRequest, "clientSideEncryptionDisabled", nil)
		return
	}
	s.mu.Lock()
	tok, ref := randomHex(24), randomHex(24)
	s.v4sessions[tok] = &session{refresh: ref, useMaster: body.UseMasterPassword}
	s.issued = append(s.issued, tok, ref)
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
	s.v4sessions[tok] = &session{refresh: nref, useMaster: se.useMaster}
	s.issued = append(s.issued, tok, nref)
	writeV4(w, http.StatusOK, "", sessionJSONv4(tok, nref))
}

// sessionV4 checks the session token only.
func (s *Server) sessionV4(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.checkSessionV4(w, r) != nil {
			h(w, r)
		}
	}
}

func (s *Server) checkSessionV4(w http.ResponseWriter, r *http.Request) *session {
	s.mu.Lock()
	se := s.v4sessions[r.Header.Get("Passwork-Auth")]
	s.mu.Unlock()
	switch {
	case se == nil:
		writeV4(w, http.StatusUnauthorized, "unauthorized", nil)
		return nil
	case se.expired:
		writeV4(w, http.StatusUnauthorized, "apiSessionExpired", nil)
		return nil
	}
	return se
}

// authV4 checks the session and, for a session opened with a master
// password, the master key hash.
func (s *Server) authV4(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		se := s.checkSessionV4(w, r)
		if se == nil {
			return
		}
		want := s.masterKeyHash
		if s.opts.legacySupport {
			want = s.masterKeyHashMD5
		}
		got := r.Header.Get("Passwork-MasterHash")
		switch {
		case s.opts.noHashCheck:
		case se.useMaster && got == "":
			writeV4(w, http.StatusBadRequest, "masterHashRequired", nil)
			return
		case got != "" && got != want:
			writeV4(w, http.StatusForbidden, "invalidMasterHash", nil)
			return
		}
		h(w, r)
	}
}

func (s *Server) searchV4(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Query            string  `json:"query"`
		VaultID          *string `json:"vaultId"`
		IncludeShortcuts bool    `json:"includeShortcuts"`
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
	if body.IncludeShortcuts {
		for _, sc := range s.shortcuts {
			it := s.itemByID(sc.ItemID)
			if it == nil || body.VaultID != nil && *body.VaultID != "" && sc.VaultID != *body.VaultID || s.vaultByID(sc.VaultID).apiCreated {
				continue
			}
			if q != "" && !strings.Contains(strings.ToLower(it.Name), q) {
				continue
			}
			out = append(out, s.shortcutJSONv4(sc, false))
		}
	}
	writeV4(w, http.StatusOK, "", out)
}

// shortcutJSONv4 is a password seen through a shortcut: located where the
// shortcut is, with "shortcut" carrying its id, vault and cryptedKey (the
// password's key wrapped with the shortcut vault's password).
func (s *Server) shortcutJSONv4(sc *shortcut, full bool) map[string]any {
	m := s.passwordJSONv4(s.itemByID(sc.ItemID), full)
	m["path"] = pathV4(s.locationOf(sc.VaultID, sc.FolderID))
	m["shortcut"] = map[string]any{"id": sc.ID, "vaultId": sc.VaultID, "folderId": nullable(sc.FolderID), "cryptedKey": sc.KeyEncrypted}
	return m
}

func pathV4(loc []pathElem) []any {
	var path []any
	for i, p := range loc {
		path = append(path, map[string]any{"order": i, "name": p.Name, "type": p.Type, "id": p.ID})
	}
	return path
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
	path := pathV4(s.location(it))
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
