package passworktest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	pwcrypto "github.com/injector-dev/injector/internal/crypto/passwork"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
)

// api makes one v7 request with the server's initial token and master key
// hash; raw asks for plain JSON, else the base64 envelope is unwrapped
// (and required). It returns the status and the decoded JSON.
func api(t *testing.T, s *Server, method, path string, body any, raw bool) (int, map[string]any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, s.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+s.initAccess)
	req.Header.Set("X-Master-Key-Hash", s.masterKeyHash)
	if raw {
		req.Header.Set("X-Response-Format", "raw")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v", method, path, err)
	}
	if !raw {
		if out["format"] != "base64" {
			t.Fatalf("%s %s: no base64 envelope: %v", method, path, out)
		}
		data, err := base64.StdEncoding.DecodeString(out["content"].(string))
		if err != nil {
			t.Fatal(err)
		}
		out = nil
		if err := json.Unmarshal(data, &out); err != nil {
			// Lists (app/features) decode to nil map; callers do not use them.
			out = map[string]any{}
		}
	}
	return resp.StatusCode, out
}

// firstError returns the code and field of the first error of a body.
func firstError(body map[string]any) (code, field string) {
	errs, _ := body["errors"].([]any)
	if len(errs) == 0 {
		return "", ""
	}
	e := errs[0].(map[string]any)
	code, _ = e["code"].(string)
	field, _ = e["field"].(string)
	return code, field
}

// TestErrorShape: every error, unknown routes and methods included, is
// the API's JSON error (in the envelope unless raw was asked for).
func TestErrorShape(t *testing.T) {
	s := NewServer()
	defer s.Close()
	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/api/v1/nope", 404, "notFound"},
		{"GET", "/nope", 404, "notFound"},
		{"PUT", "/api/v1/vaults", 405, "methodNotAllowed"},
		{"GET", "/api/v1/items/" + "0123", 404, "itemNotFound"},
		{"GET", "/api/v1/shortcuts/0123", 404, "shortcutNotFound"},
		{"POST", "/api/v1/items", 400, "invalidRequest"}, // no body
	}
	for _, raw := range []bool{false, true} {
		for _, tt := range tests {
			status, body := api(t, s, tt.method, tt.path, nil, raw)
			code, _ := firstError(body)
			if status != tt.status || code != tt.code {
				t.Errorf("%s %s (raw %v): HTTP %d %v; want %d %s", tt.method, tt.path, raw, status, body, tt.status, tt.code)
			}
		}
	}
	// Injected faults use the same shape (api requires the envelope).
	s.AddFault(Fault{Path: "/api/v1/vaults", Status: 429, RetryAfter: "1", Times: 1})
	if status, body := api(t, s, "GET", "/api/v1/vaults", nil, false); status != 429 {
		t.Errorf("injected fault: HTTP %d %v", status, body)
	} else if code, _ := firstError(body); code != "injectedFault429" {
		t.Errorf("injected fault body: %v", body)
	}
	// The legacy API answers in its own envelope.
	req, _ := http.NewRequest("GET", s.URL+"/api/v4/nope", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var v4 struct{ Status, Code string }
	err = json.NewDecoder(resp.Body).Decode(&v4)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 404 || v4.Status != "error" || v4.Code != "notFound" {
		t.Errorf("unknown v4 route: HTTP %d %+v %v", resp.StatusCode, v4, err)
	}
	// A batch sub-request to an unknown route gets a JSON body too.
	_, body := api(t, s, "POST", "/api/v1/batch", map[string]any{"requests": []any{
		map[string]string{"method": "GET", "relativeUrl": "/api/v1/nope"}}}, true)
	sub := body["responses"].([]any)[0].(map[string]any)
	if sub["statusCode"] != float64(404) {
		t.Errorf("batch sub-request: %v", sub)
	}
	if code, _ := firstError(sub["body"].(map[string]any)); code != "notFound" {
		t.Errorf("batch sub-request body: %v", sub)
	}
}

func seedFilters(t *testing.T, s *Server) {
	t.Helper()
	if err := s.Seed([]fetchtest.Entry{
		{Path: "Prod/db", Fields: map[string]string{"password": "p1", "tags": "db,prod", "url": "https://DB.example.com/admin"}},
		{Path: "Prod/web", Fields: map[string]string{"password": "p2", "tags": "prod"}, Shortcuts: []string{"Shared/team"}},
		{Path: "Dev/db", Fields: map[string]string{"password": "p3", "tags": "db"}},
	}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.items[1].Color = 3
	s.mu.Unlock()
}

// TestSearchFilters: tags[] (all of them), colorCodes[], url and query.
func TestSearchFilters(t *testing.T) {
	s := NewServer()
	defer s.Close()
	seedFilters(t, s)
	tests := []struct {
		query string
		want  []string // names in seed order
	}{
		{"", []string{"db", "web", "db"}},
		{"tags[]=db", []string{"db", "db"}},
		{"tags[]=db&tags[]=prod", []string{"db"}},
		{"tags[]=nosuchtag", nil},
		{"colorCodes[]=3", []string{"web"}},
		{"colorCodes[]=1&colorCodes[]=2", nil},
		{"url=db.EXAMPLE", []string{"db"}},
		{"query=WE", []string{"web"}},
	}
	for _, tt := range tests {
		_, body := api(t, s, "GET", "/api/v1/items/search?"+tt.query, nil, false)
		var got []string
		for _, it := range body["items"].([]any) {
			got = append(got, it.(map[string]any)["name"].(string))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("search %q = %v, want %v", tt.query, got, tt.want)
		}
	}
}

// TestShortcuts: search finds shortcuts by where they are and filters on
// their entry; get answers the entry with the shortcut vault's keys.
func TestShortcuts(t *testing.T) {
	s := NewServer()
	defer s.Close()
	seedFilters(t, s)
	var shared string
	for _, v := range s.vaults {
		if v.Name == "Shared" {
			shared = v.ID
		}
	}
	for _, q := range []string{"vaultIds[]=" + shared, "tags[]=prod", ""} {
		_, body := api(t, s, "GET", "/api/v1/shortcuts/search?"+q, nil, false)
		items := body["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("shortcuts/search?%s: %v", q, body)
		}
		it := items[0].(map[string]any)
		sc := it["shortcut"].(map[string]any)
		path := sc["path"].([]any)
		if it["name"] != "web" || sc["vaultId"] != shared || len(path) != 2 || path[1].(map[string]any)["name"] != "team" {
			t.Errorf("shortcut summary: %v", it)
		}
	}
	for _, q := range []string{"tags[]=db", "vaultIds[]=" + s.vaults[0].ID} {
		if _, body := api(t, s, "GET", "/api/v1/shortcuts/search?"+q, nil, false); len(body["items"].([]any)) != 0 {
			t.Errorf("shortcuts/search?%s should find nothing: %v", q, body)
		}
	}

	// GET /shortcuts/{id}: decrypts with the shortcut vault's key alone.
	sc := s.shortcuts[0]
	_, view := api(t, s, "GET", "/api/v1/shortcuts/"+sc.ID, nil, true)
	vaultKey := s.seeder.vaultKeys[shared]
	if view["id"] != sc.ItemID || view["vaultMasterKeyEncrypted"] != *s.vaultByID(shared).MasterKeyEncrypted {
		t.Fatalf("shortcut view: %v", view)
	}
	itemKey, err := pwcrypto.Decrypt(view["keyEncrypted"].(string), vaultKey)
	if err != nil {
		t.Fatal(err)
	}
	if pw, err := pwcrypto.Decrypt(view["passwordEncrypted"].(string), itemKey); err != nil || pw != "p2" {
		t.Errorf("password through the shortcut: %q, %v", pw, err)
	}
}

// TestVaultKeyWrapping: the emulator writes vault keys with PKCS#1 v1.5,
// as the official SDK does, unless OAEP is asked for.
func TestVaultKeyWrapping(t *testing.T) {
	for _, oaep := range []bool{false, true} {
		var opts []Option
		if oaep {
			opts = append(opts, WithOAEP())
		}
		s := NewServer(opts...)
		if err := s.Seed([]fetchtest.Entry{{Path: "V/e", Fields: map[string]string{"password": "p"}}}); err != nil {
			t.Fatal(err)
		}
		pemText, err := pwcrypto.Decrypt(s.privateEncrypted, s.seeder.masterKey)
		if err != nil {
			t.Fatal(err)
		}
		priv, err := pwcrypto.ParsePrivateKey(pemText)
		if err != nil {
			t.Fatal(err)
		}
		wrapped, _ := base64.StdEncoding.DecodeString(*s.vaults[0].MasterKeyEncrypted)
		_, v15 := rsa.DecryptPKCS1v15(nil, priv, wrapped)
		_, oaepErr := rsa.DecryptOAEP(sha256.New(), nil, priv, wrapped, nil)
		if oaep && (oaepErr != nil || v15 == nil) || !oaep && (v15 != nil || oaepErr == nil) {
			t.Errorf("WithOAEP %v: PKCS#1 v1.5 error %v, OAEP error %v", oaep, v15, oaepErr)
		}
		s.Close()
	}
}

// TestWrites: what POST/PATCH/DELETE accept and refuse.
func TestWrites(t *testing.T) {
	s := NewServer(WithPlainVaults("Plain"))
	defer s.Close()
	if err := s.Seed([]fetchtest.Entry{{Path: "Plain/x", Fields: map[string]string{"password": "p"}}}); err != nil {
		t.Fatal(err)
	}
	plainVault := s.vaults[0].ID
	vaultKey := randomString(100)
	wrapped, err := pwcrypto.WrapKey(s.seeder.pub, vaultKey, false)
	if err != nil {
		t.Fatal(err)
	}
	short, _ := rsa.EncryptPKCS1v15(rand.Reader, s.seeder.pub, []byte("k"))
	for _, tt := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"name": "v"}, "masterKeyEncrypted"},
		{map[string]any{"name": "v", "masterKeyEncrypted": base64.StdEncoding.EncodeToString(short[:10])}, "masterKeyEncrypted"},
		{map[string]any{"masterKeyEncrypted": wrapped}, "name"},
		{map[string]any{"name": "v", "masterKeyEncrypted": wrapped, "typeId": "t"}, "typeId"},
	} {
		status, body := api(t, s, "POST", "/api/v1/vaults", tt.body, true)
		if _, field := firstError(body); status != 400 || field != tt.field {
			t.Errorf("create vault %v: HTTP %d %v; want 400 on %s", tt.body, status, body, tt.field)
		}
	}
	status, v := api(t, s, "POST", "/api/v1/vaults", map[string]any{"name": "Team", "masterKeyEncrypted": wrapped, "salt": "s", "masterKeyHash": "h"}, true)
	if status != 200 || v["masterKeyEncrypted"] != wrapped {
		t.Fatalf("create vault: %d %v", status, v)
	}
	vaultID := v["id"].(string)
	if err := s.Seed([]fetchtest.Entry{{Path: "Team/y", Fields: map[string]string{"password": "p"}}}); err == nil {
		t.Error("seeding a vault created through the API (its key unknown to the emulator) succeeded")
	}
	_, f := api(t, s, "POST", "/api/v1/folders", map[string]any{"name": "db", "vaultId": vaultID}, true)
	folderID, _ := f["id"].(string)
	if status, body := api(t, s, "POST", "/api/v1/folders", map[string]any{"name": "db", "vaultId": vaultID, "parentFolderId": plainVault}, true); status != 400 {
		t.Errorf("folder under a missing parent: %d %v", status, body)
	}

	enc := func(v, k string) string {
		c, err := pwcrypto.Encrypt(v, k)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	keyEnc := enc(vaultKey, vaultKey)
	good := map[string]any{"vaultId": vaultID, "folderId": folderID, "name": "pg", "login": "app", "tags": []string{"db"},
		"passwordEncrypted": enc("pw", vaultKey), "keyEncrypted": keyEnc,
		"customs":     []any{map[string]string{"name": enc("port", vaultKey), "type": enc("text", vaultKey), "value": enc("5432", vaultKey)}},
		"attachments": []any{map[string]string{"name": "a.txt", "encryptedKey": enc("k", vaultKey), "encryptedData": enc("aGk=", "k"), "hash": strings.Repeat("ab", 32)}}}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range good {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tt := range []struct {
		body  map[string]any
		field string
	}{
		{with("passwordEncrypted", "cGxhaW4="), "passwordEncrypted"},
		{with("keyEncrypted", nil), "keyEncrypted"},
		{with("folderId", "nope"), "folderId"},
		{with("vaultId", "nope"), "vaultId"},
		{with("customs", []any{map[string]string{"name": "port", "type": enc("text", vaultKey), "value": enc("1", vaultKey)}}), "customs.0.name"},
		{with("attachments", []any{map[string]string{"name": "a", "encryptedKey": enc("k", vaultKey), "encryptedData": enc("x", "k"), "hash": "md5"}}), "attachments.0.hash"},
	} {
		status, body := api(t, s, "POST", "/api/v1/items", tt.body, true)
		if _, field := firstError(body); status != 400 || field != tt.field {
			t.Errorf("create item (%s wrong): HTTP %d %v", tt.field, status, body)
		}
	}
	// With client-side encryption off, values are base64 and keys null.
	if status, body := api(t, s, "POST", "/api/v1/items", map[string]any{"vaultId": plainVault, "name": "n", "passwordEncrypted": enc("pw", vaultKey)}, true); status != 400 {
		t.Errorf("encrypted value in a plain vault: %d %v", status, body)
	}
	if status, body := api(t, s, "POST", "/api/v1/items", map[string]any{"vaultId": plainVault, "name": "n", "passwordEncrypted": "cHc=", "keyEncrypted": nil}, true); status != 200 {
		t.Errorf("plain item: %d %v", status, body)
	}

	status, it := api(t, s, "POST", "/api/v1/items", good, true)
	if status != 200 {
		t.Fatalf("create item: %d %v", status, it)
	}
	id := it["id"].(string)
	if status, body := api(t, s, "PATCH", "/api/v1/items/"+id, map[string]any{"vaultId": plainVault}, true); status != 400 {
		t.Errorf("patch moving vaults: %d %v", status, body)
	}
	status, it = api(t, s, "PATCH", "/api/v1/items/"+id, map[string]any{"vaultId": vaultID, "login": "root", "tags": []string{}}, true)
	if status != 200 || it["login"] != "root" || it["name"] != "pg" || len(it["tags"].([]any)) != 0 || it["passwordEncrypted"] != good["passwordEncrypted"] {
		t.Errorf("patch: %d %v", status, it)
	}
	status, sc := api(t, s, "POST", "/api/v1/shortcuts", map[string]any{"vaultId": plainVault, "itemId": id, "keyEncrypted": nil}, true)
	if status != 200 || sc["itemId"] != id {
		t.Errorf("create shortcut: %d %v", status, sc)
	}
	if status, body := api(t, s, "POST", "/api/v1/shortcuts", map[string]any{"vaultId": vaultID, "itemId": id}, true); status != 400 {
		t.Errorf("shortcut into an encrypted vault without a key: %d %v", status, body)
	}
	status, del := api(t, s, "DELETE", "/api/v1/items/"+id, nil, true)
	if status != 200 || del["binItemId"] == "" || len(s.shortcuts) != 0 {
		t.Errorf("delete: %d %v, %d shortcuts left", status, del, len(s.shortcuts))
	}
	if status, _ := api(t, s, "GET", "/api/v1/items/"+id, nil, true); status != 404 {
		t.Errorf("get after delete: %d", status)
	}
	q := url.Values{"vaultIds[]": {vaultID}}
	if _, body := api(t, s, "GET", "/api/v1/items/search?"+q.Encode(), nil, true); len(body["items"].([]any)) != 0 {
		t.Errorf("search after delete: %v", body)
	}
}
