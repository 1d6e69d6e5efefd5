package passworktest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/injector-dev/injector/internal/fetch/fetchtest"
)

// v4call makes one legacy request and returns the status and envelope.
func v4call(t *testing.T, s *Server, method, path, token, hash, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL+"/api/v4"+path, strings.NewReader(body))
	req.Header.Set("Passwork-Auth", token)
	if hash != "" {
		req.Header.Set("Passwork-MasterHash", hash)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// TestV4Session: what the legacy API asks of a session, as the official
// connectors use it.
func TestV4Session(t *testing.T) {
	s := NewServer(WithDomainVaults("Org"))
	defer s.Close()
	if err := s.Seed([]fetchtest.Entry{{Path: "Org/x", Fields: map[string]string{"password": "p"}}}); err != nil {
		t.Fatal(err)
	}
	if status, out := v4call(t, s, "GET", "/info/version", "", "", ""); status != 200 || out["status"] != "success" {
		t.Errorf("version without a session: %d %v", status, out)
	}
	login := func(useMaster bool) string {
		body := `{"useMasterPassword":false}`
		if useMaster {
			body = `{"useMasterPassword":true}`
		}
		status, out := v4call(t, s, "POST", "/auth/login/"+s.apiKey, "", "", body)
		if status != 200 {
			t.Fatalf("login: %d %v", status, out)
		}
		return out["data"].(map[string]any)["token"].(string)
	}
	tok := login(true)
	// The options come before the key exists: no hash is demanded, and a
	// stale one is not held against the client.
	if status, out := v4call(t, s, "GET", "/user/get-master-key-options", tok, "0000", ""); status != 200 {
		t.Errorf("master key options with a stale hash: %d %v", status, out)
	}
	if status, out := v4call(t, s, "GET", "/vaults/list", tok, "", ""); status != 400 || out["code"] != "masterHashRequired" {
		t.Errorf("data without the hash in a master-password session: %d %v", status, out)
	}
	status, out := v4call(t, s, "GET", "/vaults/list", tok, s.masterKeyHash, "")
	if status != 200 {
		t.Fatalf("vaults/list: %d %v", status, out)
	}
	v := out["data"].([]any)[0].(map[string]any)
	if _, ok := v["vaultPasswordCrypted"]; ok || v["scope"] != "domain" {
		t.Errorf("the list carries crypted fields: %v", v)
	}
	_, out = v4call(t, s, "GET", "/vaults/"+v["id"].(string), tok, s.masterKeyHash, "")
	if d := out["data"].(map[string]any); d["vaultPasswordCrypted"] == nil || d["domainMaster"] == nil {
		t.Errorf("GET /vaults/{id} lacks the crypted fields: %v", d)
	}
	// Without a master password the hash is not required.
	if status, _ := v4call(t, s, "GET", "/vaults/list", login(false), "", ""); status != 200 {
		t.Errorf("vaults/list in a session without master password: %d", status)
	}

	off := NewServer(WithoutClientSideEncryption())
	defer off.Close()
	if status, out := v4call(t, off, "POST", "/auth/login/"+off.apiKey, "", "", `{"useMasterPassword":true}`); status != 400 || out["code"] != "clientSideEncryptionDisabled" {
		t.Errorf("master password login with CSE off: %d %v", status, out)
	}
}
