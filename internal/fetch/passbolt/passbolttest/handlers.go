package passbolttest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/injector-dev/injector/internal/crypto/pgp"
)

// Server messages, as the real server words them.
const (
	msgOK       = "The operation was successful."
	msgAuthFail = "The authentication failed."
	msgAuthReq  = "Authentication is required to continue"
	msgNotFound = "The requested address was not found."
	msgNoUser   = "The user does not exist or is not active or has been deleted."
	msgCSRF     = "Missing or incorrect CSRF cookie type."
	msgMFA      = "MFA authentication is required."
	jwtTTL      = 5 * time.Minute
)

// uuidRE matches an id as the server writes them; compiled on first use,
// so the emulator costs nothing at start-up in the injector binary.
var uuidRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
})

// write sends the envelope; the HTTP status equals header.code.
func write(w http.ResponseWriter, r *http.Request, code int, message string, body any) {
	status := "success"
	if code >= 400 {
		status = "error"
	}
	writeStatus(w, r, code, status, message, body)
}

func writeStatus(w http.ResponseWriter, r *http.Request, code int, status, message string, body any) {
	if message == "" {
		message = msgOK
	}
	if body == nil {
		body = ""
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"header": map[string]any{
			"id": newUUID(), "status": status, "servertime": time.Now().Unix(), "action": newUUID(),
			"message": message, "url": r.URL.Path, "code": code,
		},
		"body": body,
	})
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	s.mu.Lock()
	s.total++
	s.perPath[path]++
	if r.Method != http.MethodGet && !strings.HasPrefix(path, "/auth/") {
		s.writes++
	}
	var fault *Fault
	for _, f := range s.faults {
		if (f.Path == "" || f.Path == path) && f.Times >= 0 {
			fault = f
			if f.Times > 0 {
				if f.Times--; f.Times == 0 {
					f.Times = -1 // used up
				}
			}
			break
		}
	}
	s.mu.Unlock()
	if fault != nil && fault.Delay > 0 {
		t := time.NewTimer(fault.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done(): // the client gave up: do not hold the handler
			t.Stop()
			return
		}
	}
	if fault != nil && (fault.Status != 0 || fault.Malformed) {
		switch {
		case fault.Malformed:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"header":{"status":"success"`)
		default:
			if fault.RetryAfter != "" {
				w.Header().Set("Retry-After", fault.RetryAfter)
			}
			msg := "Fault injected by the emulator."
			if fault.Status == http.StatusUnauthorized {
				msg = msgAuthReq
			}
			write(w, r, fault.Status, msg, nil)
		}
		return
	}

	switch {
	case path == "/auth/verify.json" && r.Method == http.MethodGet:
		pub, _ := pgp.ArmorPublic(s.serverKey)
		write(w, r, 200, "", map[string]string{"fingerprint": pgp.Fingerprint(s.serverKey), "keydata": pub})
	case (path == "/auth/verify.json" || path == "/auth/login.json") && r.Method == http.MethodPost:
		s.gpgauth(w, r)
	case strings.HasPrefix(path, "/auth/jwt/") && s.jwtDisabled():
		write(w, r, 404, msgNotFound, nil)
	case path == "/auth/jwt/login.json" && r.Method == http.MethodPost:
		s.jwtLogin(w, r)
	case path == "/auth/jwt/refresh.json" && r.Method == http.MethodPost:
		s.jwtRefresh(w, r)
	case path == "/settings.json" && r.Method == http.MethodGet:
		write(w, r, 200, "", s.settingsJSON())
	case path == "/mfa/verify/error.json":
		write(w, r, 403, msgMFA, map[string]any{"mfa_providers": []string{"totp"},
			"providers": map[string]string{"totp": s.URL + "/mfa/verify/totp.json"}})
	default:
		s.authenticated(w, r)
	}
}

func (s *Server) jwtDisabled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jwtOff
}

// authenticated serves the routes that need a JWT or a session.
func (s *Server) authenticated(w http.ResponseWriter, r *http.Request) {
	session := ""
	s.mu.Lock()
	ok := false
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		exp, found := s.access[strings.TrimPrefix(h, "Bearer ")]
		ok = found && time.Now().Before(exp)
	} else if ck, err := r.Cookie("passbolt_session"); err == nil && s.sessions[ck.Value] {
		ok, session = true, ck.Value
	}
	mfa := s.mfa
	s.mu.Unlock()
	if !ok {
		write(w, r, 401, msgAuthReq, nil)
		return
	}
	if mfa {
		http.Redirect(w, r, s.URL+"/mfa/verify/error.json", http.StatusFound)
		return
	}
	if session != "" {
		if !s.checkCSRF(w, r) {
			return
		}
	}
	s.route(w, r, session)
}

// checkCSRF sets the CSRF cookie on a GET without one and rejects session
// writes whose X-CSRF-Token header does not match the cookie.
func (s *Server) checkCSRF(w http.ResponseWriter, r *http.Request) bool {
	ck, err := r.Cookie("csrfToken")
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method == http.MethodGet {
		if err != nil || !s.csrf[ck.Value] {
			tok := randomHex(64)
			s.csrf[tok] = true
			s.issued = append(s.issued, tok)
			http.SetCookie(w, &http.Cookie{Name: "csrfToken", Value: tok, Path: "/"})
		}
		return true
	}
	if err != nil || !s.csrf[ck.Value] || r.Header.Get("X-CSRF-Token") != ck.Value {
		write(w, r, 403, msgCSRF, nil)
		return false
	}
	return true
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, session string) {
	path, method := r.URL.Path, r.Method
	get := method == http.MethodGet
	switch {
	case path == "/auth/is-authenticated.json" && get:
		write(w, r, 200, "", nil)
		return
	case path == "/auth/logout.json" && method == http.MethodPost && session != "":
		s.mu.Lock()
		delete(s.sessions, session)
		s.logouts++
		s.mu.Unlock()
		write(w, r, 200, "You are now logged out.", nil)
		return
	case path == "/auth/jwt/logout.json" && method == http.MethodPost:
		var body struct {
			RefreshToken string `json:"refresh_token"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		s.mu.Lock()
		if body.RefreshToken == "" {
			clear(s.refresh)
		}
		delete(s.refresh, body.RefreshToken)
		s.logouts++
		s.mu.Unlock()
		write(w, r, 200, "", nil)
		return
	case path == "/users/me.json" && get:
		write(w, r, 200, "", s.userJSON())
		return
	case path == "/users/csrf-token.json" && get:
		tok := randomHex(64)
		s.mu.Lock()
		s.csrf[tok] = true
		s.issued = append(s.issued, tok)
		s.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "csrfToken", Value: tok, Path: "/"})
		write(w, r, 200, "", tok)
		return
	case path == "/users.json" && get:
		s.usersIndex(w, r)
		return
	case path == "/metadata/types/settings.json" && get:
		s.mu.Lock()
		t := s.typeSet
		s.mu.Unlock()
		write(w, r, 200, "", t)
		return
	case path == "/metadata/keys/settings.json" && get:
		s.mu.Lock()
		k := s.keySet
		s.mu.Unlock()
		write(w, r, 200, "", k)
		return
	case path == "/metadata/keys.json" && get:
		write(w, r, 200, "", s.metadataKeysJSON(flag(r.URL.Query(), "contain[metadata_private_keys]")))
		return
	case path == "/metadata/session-keys.json" && (get || method == http.MethodPost):
		s.sessionKeysRoute(w, r, "")
		return
	case path == "/folders.json" && get:
		s.foldersIndex(w, r)
		return
	case path == "/folders.json" && method == http.MethodPost:
		s.createFolder(w, r)
		return
	case path == "/resources.json" && get:
		s.resourcesIndex(w, r)
		return
	case path == "/resources.json" && method == http.MethodPost:
		s.createResource(w, r)
		return
	case path == "/resource-types.json" && get:
		s.mu.Lock()
		types := append([]resourceTypeRow(nil), s.types...)
		s.mu.Unlock()
		write(w, r, 200, "", types)
		return
	case path == "/share/search-aros.json" && get:
		s.usersIndex(w, r)
		return
	}

	// Routes with an id: /<prefix><uuid>.json, by method.
	type handler = func(w http.ResponseWriter, r *http.Request, id string)
	routes := []struct {
		prefix, what string
		methods      map[string]handler
	}{
		{"/resources/", "resource", map[string]handler{
			http.MethodGet: s.viewResource, http.MethodPut: s.updateResource, http.MethodDelete: s.deleteResource}},
		{"/folders/", "folder", map[string]handler{
			http.MethodGet: s.viewFolder, http.MethodPut: s.updateFolder, http.MethodDelete: s.deleteFolder}},
		{"/secrets/resource/", "resource", map[string]handler{http.MethodGet: s.viewSecret}},
		{"/resource-types/", "resource type", map[string]handler{http.MethodGet: s.viewResourceType}},
		{"/users/", "user", map[string]handler{http.MethodGet: s.viewUser}},
		{"/permissions/resource/", "resource", map[string]handler{http.MethodGet: s.permissions}},
		{"/metadata/session-keys/", "session keys bundle", map[string]handler{
			http.MethodPut: s.sessionKeysRoute, http.MethodDelete: s.sessionKeysRoute}},
		{"/move/resource/", "resource", map[string]handler{http.MethodPut: func(w http.ResponseWriter, r *http.Request, id string) {
			s.move(w, r, "resource", id)
		}}},
		{"/move/folder/", "folder", map[string]handler{http.MethodPut: func(w http.ResponseWriter, r *http.Request, id string) {
			s.move(w, r, "folder", id)
		}}},
		{"/share/resource/", "resource", map[string]handler{http.MethodPut: func(w http.ResponseWriter, r *http.Request, id string) {
			s.share(w, r, "resource", id, false)
		}}},
		{"/share/folder/", "folder", map[string]handler{http.MethodPut: func(w http.ResponseWriter, r *http.Request, id string) {
			s.share(w, r, "folder", id, false)
		}}},
		{"/share/simulate/resource/", "resource", map[string]handler{http.MethodPost: func(w http.ResponseWriter, r *http.Request, id string) {
			s.share(w, r, "resource", id, true)
		}}},
	}
	for _, rt := range routes {
		rest, ok := strings.CutPrefix(path, rt.prefix)
		if !ok || strings.Contains(rest, "/") || !strings.HasSuffix(rest, ".json") {
			continue
		}
		h := rt.methods[method]
		if h == nil {
			break
		}
		id := strings.TrimSuffix(rest, ".json")
		if !uuidRE().MatchString(id) {
			write(w, r, 400, "The "+rt.what+" identifier should be a valid UUID.", nil)
			return
		}
		h(w, r, id)
		return
	}
	write(w, r, 404, msgNotFound, nil)
}

func (s *Server) viewResourceType(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.typeByID(id); t != nil {
		write(w, r, 200, "", *t)
		return
	}
	write(w, r, 404, "The resource type does not exist.", nil)
}

func (s *Server) viewUser(w http.ResponseWriter, r *http.Request, id string) {
	if id != s.userID {
		write(w, r, 404, "The user does not exist or has been deleted.", nil)
		return
	}
	write(w, r, 200, "", s.userJSON())
}

// flag reads a boolean query parameter the way the server does: 1, true
// (any case) are true; anything else, or absence, is false.
func flag(q url.Values, name string) bool {
	v := q.Get(name)
	return v == "1" || strings.EqualFold(v, "true")
}

func (s *Server) viewResource(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if res := s.resourceByID(id); res != nil {
		write(w, r, 200, "", s.resourceJSON(res, false))
		return
	}
	write(w, r, 404, "The resource does not exist.", nil)
}

func (s *Server) viewSecret(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if res := s.resourceByID(id); res != nil {
		s.logSecretRead(res)
		write(w, r, 200, "", s.secretJSON(res))
		return
	}
	write(w, r, 404, "The secret does not exist.", nil)
}

func (s *Server) viewFolder(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.folderByID(id); f != nil {
		write(w, r, 200, "", s.folderJSON(f))
		return
	}
	write(w, r, 404, "The folder does not exist.", nil)
}

// usersIndex serves /users.json (and /share/search-aros.json): the one
// user, filtered by filter[has-access][] (resources or folders the user
// can see) and filter[search] (username or name, case-insensitive).
func (s *Server) usersIndex(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ids, ok := uuidFilter(q, "has-access", false)
	if !ok {
		write(w, r, 400, `Invalid filter. "has-access" is not a valid UUID.`, nil)
		return
	}
	s.mu.Lock()
	match := true
	for id := range ids {
		if s.resourceByID(id) == nil && s.folderByID(id) == nil {
			match = false
		}
	}
	s.mu.Unlock()
	if term := strings.ToLower(q.Get("filter[search]")); term != "" {
		match = match && (strings.Contains("ada@passbolt.test", term) || strings.Contains("ada admin", term))
	}
	out := []any{}
	if match {
		out = append(out, s.userJSON())
	}
	write(w, r, 200, "", out)
}

// permissions lists who has access to a resource: the user, as owner.
func (s *Server) permissions(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	res := s.resourceByID(id)
	s.mu.Unlock()
	if res == nil {
		write(w, r, 404, "The resource does not exist.", nil)
		return
	}
	write(w, r, 200, "", []any{map[string]any{
		"id": newUUID(), "aco": "Resource", "aco_foreign_key": id, "aro": "User", "aro_foreign_key": s.userID,
		"type": 15, "created": stamp(), "modified": stamp(), "user": s.userJSON(),
	}})
}

// settingsJSON is /settings.json: the plugins clients look for. Without a
// session the real server shows a reduced set; the emulator shows the
// same flags either way.
func (s *Server) settingsJSON() map[string]any {
	s.mu.Lock()
	jwt := !s.jwtOff
	s.mu.Unlock()
	on := func(version string) map[string]any { return map[string]any{"enabled": true, "version": version} }
	return map[string]any{
		"app": map[string]any{"url": s.URL + "/", "locale": "en-UK",
			"version": map[string]any{"number": "5.4.0", "name": "injector emulator"}},
		"passbolt": map[string]any{
			"edition": "ce",
			"plugins": map[string]any{
				"metadata":          on("1.0.0"),
				"folders":           on("2.0.0"),
				"resourceTypes":     on("1.0.0"),
				"totpResourceTypes": on("1.0.0"),
				"jwtAuthentication": map[string]any{"enabled": jwt, "version": "1.0.0"},
				"passwordExpiry":    map[string]any{"enabled": false, "version": "1.0.0"},
			},
		},
	}
}

func stamp() string { return time.Now().UTC().Format(time.RFC3339) }

func nullable(id string) any {
	if id == "" {
		return nil
	}
	return id
}

func (s *Server) userJSON() map[string]any {
	pub, _ := pgp.ArmorPublic(s.userKey)
	return map[string]any{
		"id": s.userID, "username": "ada@passbolt.test", "active": true, "deleted": false,
		"gpgkey":  map[string]any{"id": s.userKeyID, "user_id": s.userID, "fingerprint": pgp.Fingerprint(s.userKey), "armored_key": pub},
		"profile": map[string]any{"first_name": "Ada", "last_name": "Admin"},
		"role":    map[string]any{"name": "admin"},
	}
}

func stampOf(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// folderJSON renders a folder. The caller holds s.mu.
func (s *Server) folderJSON(f *folderRow) map[string]any {
	row := map[string]any{"id": f.id, "created": stampOf(f.created), "modified": stampOf(f.modified),
		"created_by": s.userID, "modified_by": s.userID, "folder_parent_id": nullable(f.parent), "personal": true}
	if f.v5 {
		row["metadata"], row["metadata_key_id"], row["metadata_key_type"] = f.metadata, f.metaKeyID, f.keyType
	} else {
		row["name"] = f.name
	}
	return row
}

// foldersIndex serves GET /folders.json with filter[has-id][],
// filter[has-parent][] ("false"/"0" = root) and filter[search] (a
// case-insensitive substring of cleartext names, so v4 folders only).
func (s *Server) foldersIndex(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	parents, ids, ok := treeFilters(w, r, q)
	if !ok {
		return
	}
	term, search := q["filter[search]"]
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, f := range s.folders {
		if parents != nil && !parents[f.parent] || ids != nil && !ids[f.id] {
			continue
		}
		if search && (f.v5 || !strings.Contains(strings.ToLower(f.name), strings.ToLower(term[0]))) {
			continue
		}
		out = append(out, s.folderJSON(f))
	}
	write(w, r, 200, "", out)
}

func (s *Server) resourceJSON(res *resourceRow, withSecret bool) map[string]any {
	row := map[string]any{"id": res.id, "created": stampOf(res.created), "modified": stampOf(res.modified),
		"created_by": s.userID, "modified_by": s.userID, "deleted": false, "resource_type_id": res.typeID,
		"expired": nil, "folder_parent_id": nullable(res.parent), "personal": true}
	if res.expired != nil {
		row["expired"] = stampOf(*res.expired)
	}
	if res.v4 != nil {
		for _, k := range []string{"name", "username", "uri", "description"} {
			row[k] = nullable(res.v4[k]) // the server stores empty fields as null
		}
	} else {
		row["metadata"], row["metadata_key_id"], row["metadata_key_type"] = res.metadata, res.metaKeyID, res.keyType
	}
	if withSecret {
		s.logSecretRead(res)
		row["secrets"] = []any{s.secretJSON(res)}
	}
	return row
}

// logSecretRead counts a secret access, as the server's audit log would
// record it. The caller holds s.mu.
func (s *Server) logSecretRead(res *resourceRow) {
	s.secretReads++
	s.readsOf[res.id]++
}

func (s *Server) secretJSON(res *resourceRow) map[string]any {
	return map[string]any{"id": res.secretID, "user_id": s.userID, "resource_id": res.id, "data": res.secret,
		"created": stampOf(res.created), "modified": stampOf(res.modified), "created_by": s.userID, "modified_by": s.userID}
}

// resourcesIndex serves GET /resources.json with the filters
// filter[has-parent][] ("false"/"0" = root) and filter[has-id][], each
// repeated or comma-separated, and contain[secret] (only the caller's
// secret, one logged access per returned row).
func (s *Server) resourcesIndex(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	parents, ids, ok := treeFilters(w, r, q)
	if !ok {
		return
	}
	withSecret := flag(q, "contain[secret]")
	s.mu.Lock()
	defer s.mu.Unlock()
	withSecret = withSecret && !s.noContain
	out := []map[string]any{}
	for _, res := range s.resources {
		if (parents == nil || parents[res.parent]) && (ids == nil || ids[res.id]) {
			out = append(out, s.resourceJSON(res, withSecret))
		}
	}
	write(w, r, 200, "", out)
}

// treeFilters reads filter[has-parent][] and filter[has-id][], answering
// 400 for a value that is not a UUID.
func treeFilters(w http.ResponseWriter, r *http.Request, q url.Values) (parents, ids map[string]bool, ok bool) {
	if parents, ok = uuidFilter(q, "has-parent", true); !ok {
		write(w, r, 400, `Invalid filter. "has-parent" is not a valid UUID.`, nil)
		return nil, nil, false
	}
	if ids, ok = uuidFilter(q, "has-id", false); !ok {
		write(w, r, 400, `Invalid filter. "has-id" is not a valid UUID.`, nil)
		return nil, nil, false
	}
	return parents, ids, true
}

// uuidFilter reads filter[name][] as a set (nil when absent); root maps
// "false" and "0" to "" (the root folder). ok is false for a value that is
// not a UUID.
func uuidFilter(q url.Values, name string, root bool) (set map[string]bool, ok bool) {
	vals, ok := q["filter["+name+"][]"]
	if !ok {
		return nil, true
	}
	set = map[string]bool{}
	for _, v := range vals {
		for _, id := range strings.Split(v, ",") {
			switch {
			case root && (id == "false" || id == "0"):
				id = ""
			case !uuidRE().MatchString(id):
				return nil, false
			}
			set[id] = true
		}
	}
	return set, true
}

func (s *Server) metadataKeysJSON(withPrivate bool) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	userPub, _ := s.userKey.ToPublic()
	for _, mk := range s.metaKeys {
		pub, _ := pgp.ArmorPublic(mk.key)
		row := map[string]any{"id": mk.id, "fingerprint": pgp.Fingerprint(mk.key), "armored_key": pub,
			"created": stamp(), "modified": stamp(), "deleted": nil, "expired": nil}
		if withPrivate {
			data, _ := s.metadataPrivateKey(mk, userPub)
			row["metadata_private_keys"] = []map[string]any{{"id": newUUID(), "metadata_key_id": mk.id,
				"user_id": s.userID, "data": data, "created": stamp(), "modified": stamp()}}
		}
		out = append(out, row)
	}
	return out
}

// metadataPrivateKey is a metadata_private_keys entry's data: the shared
// key, armored, in JSON encrypted to the user and signed by the user (who
// shared it with themself). The caller holds s.mu.
func (s *Server) metadataPrivateKey(mk *metadataKey, userPub *pgp.Key) (string, error) {
	priv, err := pgp.ArmorPrivate(mk.key, nil)
	if err != nil {
		return "", err
	}
	plain, _ := json.Marshal(map[string]string{"object_type": "PASSBOLT_METADATA_PRIVATE_KEY", "domain": s.URL,
		"fingerprint": pgp.Fingerprint(mk.key), "armored_key": priv, "passphrase": ""})
	return pgp.EncryptSign(plain, userPub, s.userKey)
}

// --- JWT ---

type challenge struct {
	Version           string   `json:"version"`
	Domain            string   `json:"domain"`
	VerifyToken       string   `json:"verify_token"`
	VerifyTokenExpiry any      `json:"verify_token_expiry,omitempty"`
	AccessToken       string   `json:"access_token,omitempty"`
	RefreshToken      string   `json:"refresh_token,omitempty"`
	Providers         []string `json:"providers,omitempty"`
}

func (s *Server) jwtLogin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		UserID    string `json:"user_id"`
		Challenge string `json:"challenge"`
	}
	if json.NewDecoder(r.Body).Decode(&body) != nil || body.Challenge == "" {
		write(w, r, 400, "The credentials are invalid.", nil)
		return
	}
	if body.UserID != s.userID {
		write(w, r, 404, msgNoUser, nil)
		return
	}
	userPub, _ := s.userKey.ToPublic()
	plain, err := pgp.Decrypt(body.Challenge, s.serverKey, userPub)
	if err != nil {
		write(w, r, 400, "The user signature could not be verified.", nil)
		return
	}
	var c challenge
	if json.Unmarshal(plain, &c) != nil {
		write(w, r, 400, "The challenge is not valid JSON.", nil)
		return
	}
	exp, _ := strconv.ParseFloat(jsonNumber(c.VerifyTokenExpiry), 64)
	now := float64(time.Now().Unix())
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case c.Version != "1.0.0":
		write(w, r, 400, "The version is invalid.", nil)
	case strings.TrimRight(c.Domain, "/") != s.URL:
		write(w, r, 400, "The domain is invalid.", nil)
	case exp < now || exp > now+3600:
		write(w, r, 400, "The verify token expiry is invalid.", nil)
	case !uuidRE().MatchString(c.VerifyToken) || s.nonces[c.VerifyToken]:
		write(w, r, 400, "The verify token has already been used.", nil)
	default:
		s.nonces[c.VerifyToken] = true
		access, refresh := "at."+randomHex(24), newUUID()
		s.access[access] = time.Now().Add(jwtTTL)
		s.refresh[refresh] = true
		s.issued = append(s.issued, access, refresh)
		reply := challenge{Version: "1.0.0", Domain: s.URL, VerifyToken: c.VerifyToken, AccessToken: access, RefreshToken: refresh}
		if s.mfa {
			reply.Providers = []string{"totp"}
		}
		out, _ := json.Marshal(reply)
		armored, err := pgp.EncryptSign(out, userPub, s.serverKey)
		if err != nil {
			write(w, r, 500, "Could not encrypt the challenge.", nil)
			return
		}
		write(w, r, 200, "", map[string]string{"challenge": armored})
	}
}

func jsonNumber(v any) string {
	switch n := v.(type) {
	case float64:
		return strconv.FormatFloat(n, 'f', -1, 64)
	case string:
		return n
	}
	return ""
}

func (s *Server) jwtRefresh(w http.ResponseWriter, r *http.Request) {
	var body struct {
		UserID       string `json:"user_id"`
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	if body.RefreshToken == "" {
		if ck, err := r.Cookie("refresh_token"); err == nil {
			body.RefreshToken = ck.Value
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if body.UserID != s.userID || !s.refresh[body.RefreshToken] {
		write(w, r, 400, "The refresh token provided is invalid.", nil)
		return
	}
	delete(s.refresh, body.RefreshToken) // consumed
	access, next := "at."+randomHex(24), newUUID()
	s.access[access] = time.Now().Add(jwtTTL)
	s.refresh[next] = true
	s.issued = append(s.issued, access, next)
	http.SetCookie(w, &http.Cookie{Name: "refresh_token", Value: next, Path: "/", HttpOnly: true, Secure: true,
		Expires: time.Now().Add(30 * 24 * time.Hour)})
	write(w, r, 200, "", map[string]string{"access_token": access})
}

// --- GPGAuth ---

func (s *Server) gpgauth(w http.ResponseWriter, r *http.Request) {
	var body struct {
		GPGAuth map[string]string `json:"gpg_auth"`
		Data    struct {
			GPGAuth map[string]string `json:"gpg_auth"`
		} `json:"data"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	ga := body.GPGAuth
	if ga == nil {
		ga = body.Data.GPGAuth
	}
	w.Header().Set("X-GPGAuth-Version", "1.3.0")
	if !strings.EqualFold(ga["keyid"], pgp.Fingerprint(s.userKey)) {
		w.Header().Set("X-GPGAuth-Debug", "There is no user associated with this key.")
		write(w, r, 400, "There is no user associated with this key.", nil)
		return
	}
	switch {
	case ga["server_verify_token"] != "": // stage 0
		plain, err := pgp.Decrypt(ga["server_verify_token"], s.serverKey, nil)
		if err != nil {
			write(w, r, 400, "Decryption failed.", nil)
			return
		}
		w.Header().Set("X-GPGAuth-Progress", "stage0")
		w.Header().Set("X-GPGAuth-Verify-Response", string(plain))
		writeStatus(w, r, 200, "error", msgAuthFail, nil)
	case ga["user_token_result"] != "": // stage 2
		s.mu.Lock()
		ok := s.loginTokens[ga["user_token_result"]]
		delete(s.loginTokens, ga["user_token_result"])
		sid := randomHex(16)
		if ok {
			s.sessions[sid] = true
			s.issued = append(s.issued, sid)
		}
		s.mu.Unlock()
		if !ok {
			w.Header().Set("X-GPGAuth-Authenticated", "false")
			write(w, r, 400, "The user token result is not valid.", nil)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "passbolt_session", Value: sid, Path: "/", HttpOnly: true})
		w.Header().Set("X-GPGAuth-Progress", "complete")
		w.Header().Set("X-GPGAuth-Authenticated", "true")
		w.Header().Set("X-GPGAuth-Refer", "/")
		write(w, r, 200, "You are successfully logged in.", s.userJSON())
	default: // stage 1
		id := newUUID()
		tok := "gpgauthv1.3.0|36|" + id + "|gpgauthv1.3.0"
		userPub, _ := s.userKey.ToPublic()
		armored, err := pgp.EncryptSign([]byte(tok), userPub, s.serverKey)
		if err != nil {
			write(w, r, 500, "Encryption failed.", nil)
			return
		}
		s.mu.Lock()
		s.loginTokens[tok] = true
		s.mu.Unlock()
		// PHP: quotemeta(urlencode($armored)).
		enc := strings.NewReplacer("+", `\+`, ".", `\.`).Replace(url.QueryEscape(armored))
		w.Header().Set("X-GPGAuth-Progress", "stage1")
		w.Header().Set("X-GPGAuth-Authenticated", "false")
		w.Header().Set("X-GPGAuth-User-Auth-Token", enc)
		writeStatus(w, r, 200, "error", msgAuthFail, nil)
	}
}
