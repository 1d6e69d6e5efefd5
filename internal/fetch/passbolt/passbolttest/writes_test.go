package passbolttest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/injector-dev/injector/internal/crypto/pgp"
)

// call makes one request with a session and a matching CSRF token
// installed directly (GPGAuth is tested elsewhere) and returns the status
// and the decoded envelope.
func call(t *testing.T, s *Server, method, path string, body any) (int, envelope) {
	t.Helper()
	s.mu.Lock()
	s.sessions["test-session"] = true
	s.csrf["test-csrf"] = true
	s.mu.Unlock()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, s.URL+path, rd)
	req.AddCookie(&http.Cookie{Name: "passbolt_session", Value: "test-session"})
	req.AddCookie(&http.Cookie{Name: "csrfToken", Value: "test-csrf"})
	req.Header.Set("X-CSRF-Token", "test-csrf")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("%s %s: body is not the envelope: %v", method, path, err)
	}
	if env.Header.Code != resp.StatusCode {
		t.Errorf("%s %s: header.code %d, HTTP %d", method, path, env.Header.Code, resp.StatusCode)
	}
	return resp.StatusCode, env
}

type envelope struct {
	Header struct {
		Status, Message string
		Code            int
	}
	Body json.RawMessage
}

func (s *Server) encToUser(t *testing.T, plain string) string {
	t.Helper()
	pub, _ := s.userKey.ToPublic()
	m, err := pgp.EncryptSign([]byte(plain), pub, s.userKey)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (s *Server) encToShared(t *testing.T, plain string) (msg, keyID string) {
	t.Helper()
	mk := s.metaKeys[len(s.metaKeys)-1]
	pub, _ := mk.key.ToPublic()
	m, err := pgp.EncryptSign([]byte(plain), pub, s.userKey)
	if err != nil {
		t.Fatal(err)
	}
	return m, mk.id
}

// TestResourceWrites: what POST/PUT /resources.json accept and refuse.
func TestResourceWrites(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v4, _ := s.typeID("password-and-description")
	v5, _ := s.typeID("v5-default")
	secret := s.encToUser(t, `{"password":"p"}`)
	meta, sharedID := s.encToShared(t, `{"name":"n"}`)
	strangerKey, _ := pgp.Generate("Stranger", "x@example.test")
	strangerPub, _ := strangerKey.ToPublic()
	notForUser, _ := pgp.EncryptSign([]byte("x"), strangerPub, nil)
	sec := []map[string]string{{"data": secret}}

	tests := []struct {
		name   string
		body   map[string]any
		status int
		field  string // the field the validation error names
	}{
		{"v4", map[string]any{"resource_type_id": v4, "name": "db", "username": "u", "secrets": sec}, 200, ""},
		{"v4 name too long", map[string]any{"resource_type_id": v4, "name": strings.Repeat("é", 256), "secrets": sec}, 400, "name"},
		{"v4 without name", map[string]any{"resource_type_id": v4, "secrets": sec}, 400, "name"},
		{"v4 with metadata", map[string]any{"resource_type_id": v4, "name": "db", "metadata": meta, "secrets": sec}, 400, "metadata"},
		{"v5 shared key", map[string]any{"resource_type_id": v5, "metadata": meta, "metadata_key_id": sharedID, "metadata_key_type": "shared_key", "secrets": sec}, 200, ""},
		{"v5 user key", map[string]any{"resource_type_id": v5, "metadata": secret, "metadata_key_id": s.userKeyID, "metadata_key_type": "user_key", "secrets": sec}, 200, ""},
		{"v5 without metadata", map[string]any{"resource_type_id": v5, "secrets": sec}, 400, "metadata"},
		{"v5 with a cleartext name", map[string]any{"resource_type_id": v5, "name": "n", "metadata": meta, "metadata_key_id": sharedID, "metadata_key_type": "shared_key", "secrets": sec}, 400, "name"},
		{"v5 metadata for another key", map[string]any{"resource_type_id": v5, "metadata": secret, "metadata_key_id": sharedID, "metadata_key_type": "shared_key", "secrets": sec}, 400, "metadata"},
		{"v5 unknown metadata key", map[string]any{"resource_type_id": v5, "metadata": meta, "metadata_key_id": s.userID, "metadata_key_type": "shared_key", "secrets": sec}, 400, "metadata_key_id"},
		{"unknown type", map[string]any{"resource_type_id": s.userID, "name": "db", "secrets": sec}, 400, "resource_type_id"},
		{"no secret", map[string]any{"resource_type_id": v4, "name": "db"}, 400, "secrets"},
		{"secret for someone else", map[string]any{"resource_type_id": v4, "name": "db", "secrets": []map[string]string{{"data": notForUser}}}, 400, "secrets"},
		{"secret not a message", map[string]any{"resource_type_id": v4, "name": "db", "secrets": []map[string]string{{"data": "hello"}}}, 400, "secrets"},
		{"missing folder", map[string]any{"resource_type_id": v4, "name": "db", "folder_parent_id": s.userID, "secrets": sec}, 400, "folder_parent_id"},
	}
	var created []string
	for _, tt := range tests {
		status, env := call(t, s, http.MethodPost, "/resources.json", tt.body)
		var errs map[string]map[string]string
		_ = json.Unmarshal(env.Body, &errs)
		if status != tt.status || tt.field != "" && errs[tt.field] == nil {
			t.Errorf("%s: HTTP %d, %s %s; want %d naming %q", tt.name, status, env.Header.Message, env.Body, tt.status, tt.field)
		}
		if status == 200 {
			var row struct{ ID string }
			_ = json.Unmarshal(env.Body, &row)
			created = append(created, row.ID)
		}
	}
	if len(s.resources) != 3 {
		t.Fatalf("%d resources stored, want 3", len(s.resources))
	}

	// Updates: partial, type changes governed by the settings.
	v4ID, v5ID := created[0], created[1]
	if status, env := call(t, s, http.MethodPut, "/resources/"+v4ID+".json", map[string]any{"username": "u2"}); status != 200 {
		t.Fatalf("partial v4 update: %d %s", status, env.Body)
	}
	if s.resources[0].v4["name"] != "db" || s.resources[0].v4["username"] != "u2" {
		t.Errorf("after partial update: %v", s.resources[0].v4)
	}
	upgrade := map[string]any{"resource_type_id": v5, "metadata": meta, "metadata_key_id": sharedID, "metadata_key_type": "shared_key", "secrets": sec}
	downgrade := map[string]any{"resource_type_id": v4, "name": "back", "secrets": sec}
	if status, _ := call(t, s, http.MethodPut, "/resources/"+v5ID+".json", downgrade); status != 400 {
		t.Errorf("v5 → v4 downgrade: HTTP %d, want 400 (allow_v5_v4_downgrade is off)", status)
	}
	settings := DefaultTypeSettings()
	settings.Upgrade = false
	s.SetTypeSettings(settings)
	if status, _ := call(t, s, http.MethodPut, "/resources/"+v4ID+".json", upgrade); status != 400 {
		t.Errorf("v4 → v5 upgrade with upgrades off: HTTP %d, want 400", status)
	}
	s.SetTypeSettings(DefaultTypeSettings())
	if status, env := call(t, s, http.MethodPut, "/resources/"+v4ID+".json", upgrade); status != 200 || s.resources[0].v4 != nil {
		t.Errorf("v4 → v5 upgrade: HTTP %d %s", status, env.Body)
	}
	settings.V4Resources = false
	s.SetTypeSettings(settings)
	if status, _ := call(t, s, http.MethodPost, "/resources.json", tests[0].body); status != 400 {
		t.Errorf("v4 create with v4 creation off: HTTP %d, want 400", status)
	}

	// Delete, then every route for it is a 404; a bad id is a 400.
	if status, _ := call(t, s, http.MethodDelete, "/resources/"+v5ID+".json", nil); status != 200 {
		t.Errorf("delete: HTTP %d", status)
	}
	for _, p := range []string{"/resources/" + v5ID + ".json", "/secrets/resource/" + v5ID + ".json"} {
		if status, _ := call(t, s, http.MethodGet, p, nil); status != 404 {
			t.Errorf("GET %s after delete: HTTP %d, want 404", p, status)
		}
	}
	if status, env := call(t, s, http.MethodGet, "/resources/not-a-uuid.json", nil); status != 400 || !strings.Contains(env.Header.Message, "valid UUID") {
		t.Errorf("bad id: HTTP %d %q", status, env.Header.Message)
	}
	if status, _ := call(t, s, http.MethodPatch, "/resources/"+v4ID+".json", map[string]any{}); status != 404 {
		t.Errorf("PATCH (no such route): HTTP %d, want 404", status)
	}
}

// TestFolderWrites: v4 and v5 folders, moves, deletes with and without
// cascade.
func TestFolderWrites(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mkdir := func(body map[string]any) string {
		t.Helper()
		status, env := call(t, s, http.MethodPost, "/folders.json", body)
		if status != 200 {
			t.Fatalf("create folder %v: %d %s", body, status, env.Body)
		}
		var f struct{ ID string }
		_ = json.Unmarshal(env.Body, &f)
		return f.ID
	}
	meta, sharedID := s.encToShared(t, `{"object_type":"PASSBOLT_FOLDER_METADATA","name":"secret"}`)
	a := mkdir(map[string]any{"name": "a"})
	b := mkdir(map[string]any{"name": "b", "folder_parent_id": a})
	c := mkdir(map[string]any{"metadata": meta, "metadata_key_id": sharedID, "metadata_key_type": "shared_key", "folder_parent_id": b})
	rid, err := s.Add(Resource{Path: "r", ParentID: c, Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]any{{"name": ""}, {"name": strings.Repeat("x", 257)}, {"name": "x", "folder_parent_id": s.userID}} {
		if status, _ := call(t, s, http.MethodPost, "/folders.json", bad); status != 400 {
			t.Errorf("create folder %v: HTTP %d, want 400", bad, status)
		}
	}
	var found []map[string]any
	_, env := call(t, s, http.MethodGet, "/folders.json?filter[search]=A&filter[has-parent][]=false", nil)
	_ = json.Unmarshal(env.Body, &found)
	if len(found) != 1 || found[0]["id"] != a {
		t.Errorf("search A at the root: %v", found)
	}
	if status, _ := call(t, s, http.MethodPut, "/move/folder/"+a+".json", map[string]any{"folder_parent_id": c}); status != 400 {
		t.Errorf("moving a folder into its grandchild: HTTP %d, want 400", status)
	}
	if status, _ := call(t, s, http.MethodPut, "/move/resource/"+rid+".json", map[string]any{"folder_parent_id": a}); status != 200 || s.resourceByID(rid).parent != a {
		t.Errorf("move resource: HTTP %d", status)
	}
	// Without cascade the content of b moves up to a; with it, all goes.
	if status, _ := call(t, s, http.MethodDelete, "/folders/"+b+".json", nil); status != 200 || s.folderByID(c).parent != a {
		t.Errorf("delete b: HTTP %d, c's parent %q", status, s.folderByID(c).parent)
	}
	if status, _ := call(t, s, http.MethodDelete, "/folders/"+a+".json?cascade=1", nil); status != 200 || len(s.folders) != 0 || len(s.resources) != 0 {
		t.Errorf("cascade delete a: HTTP %d, %d folders, %d resources left", status, len(s.folders), len(s.resources))
	}
}

// TestSessionKeysAndShare: the session key bundle's optimistic locking,
// and sharing refused for anybody but the one user.
func TestSessionKeysAndShare(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data := s.encToUser(t, `{"object_type":"PASSBOLT_SESSION_KEYS","session_keys":[]}`)
	status, env := call(t, s, http.MethodPost, "/metadata/session-keys.json", map[string]any{"data": data})
	var k struct{ ID, Modified string }
	_ = json.Unmarshal(env.Body, &k)
	if status != 200 || k.ID == "" {
		t.Fatalf("create bundle: %d %s", status, env.Body)
	}
	if status, _ := call(t, s, http.MethodPost, "/metadata/session-keys.json", map[string]any{"data": "not pgp"}); status != 400 {
		t.Errorf("bundle that is not a message: HTTP %d, want 400", status)
	}
	put := func(modified string) int {
		status, env := call(t, s, http.MethodPut, "/metadata/session-keys/"+k.ID+".json", map[string]any{"data": data, "modified": modified})
		var next struct{ Modified string }
		_ = json.Unmarshal(env.Body, &next)
		if status == 200 {
			k.Modified = next.Modified
		}
		return status
	}
	stale := k.Modified
	if got := put(k.Modified); got != 200 {
		t.Fatalf("update with the current modified: HTTP %d", got)
	}
	if got := put(stale); got != 409 {
		t.Errorf("update with a stale modified: HTTP %d, want 409", got)
	}

	rid, _ := s.Add(Resource{Path: "r", Password: "p"})
	mine := map[string]any{"permissions": []map[string]any{{"aro": "User", "aro_foreign_key": s.userID, "type": 15}}}
	other := map[string]any{"permissions": []map[string]any{{"aro": "User", "aro_foreign_key": rid, "type": 1, "is_new": true}}}
	if status, _ := call(t, s, http.MethodPost, "/share/simulate/resource/"+rid+".json", mine); status != 200 {
		t.Errorf("simulate a no-op share: HTTP %d", status)
	}
	if status, _ := call(t, s, http.MethodPut, "/share/resource/"+rid+".json", other); status != 400 {
		t.Errorf("share with an unknown user: HTTP %d, want 400", status)
	}
	var users []map[string]any
	if _, env := call(t, s, http.MethodGet, "/users.json?filter[has-access][]="+rid, nil); json.Unmarshal(env.Body, &users) != nil || len(users) != 1 {
		t.Errorf("users with access: %s", env.Body)
	}
}

// TestSettingsAndContain: /settings.json without a session, the metadata
// settings, one resource type by id, and contain[…] spelled as the real
// server accepts it.
func TestSettingsAndContain(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Get(s.URL + "/settings.json")
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Body struct {
			Passbolt struct {
				Plugins map[string]struct{ Enabled bool }
			}
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&env)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !env.Body.Passbolt.Plugins["metadata"].Enabled {
		t.Errorf("settings without a session: HTTP %d, %+v, %v", resp.StatusCode, env.Body, err)
	}
	var ts TypeSettings
	if _, e := call(t, s, http.MethodGet, "/metadata/types/settings.json", nil); json.Unmarshal(e.Body, &ts) != nil || ts != DefaultTypeSettings() {
		t.Errorf("type settings: %s", e.Body)
	}
	id, _ := s.typeID("v5-note")
	var rt struct {
		Slug       string
		Definition map[string]any
	}
	if _, e := call(t, s, http.MethodGet, "/resource-types/"+id+".json", nil); json.Unmarshal(e.Body, &rt) != nil || rt.Slug != "v5-note" || rt.Definition["secret"] == nil {
		t.Errorf("resource type by id: %s", e.Body)
	}
	if _, err := s.Add(Resource{Path: "r", Password: "p"}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1", "true", "TRUE"} {
		var rows []map[string]any
		_, e := call(t, s, http.MethodGet, "/resources.json?contain[secret]="+v, nil)
		if json.Unmarshal(e.Body, &rows) != nil || len(rows) != 1 || rows[0]["secrets"] == nil {
			t.Errorf("contain[secret]=%s: %s", v, e.Body)
		}
	}
}
