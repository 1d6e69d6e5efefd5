package kubernetes

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pwcrypto "github.com/injector-dev/injector/internal/crypto/passwork"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/testutil/devserve"
)

// emulator is one `injector dev --serve`, reachable from Pods over TLS.
type emulator struct {
	settings map[string]string // its settings file: PASSWORK_URL, PASSWORK_TOKEN…
	url      string            // the Passwork URL Pods use
	caPEM    []byte            // the CA that signed its certificate
	client   *http.Client      // trusts caPEM
	stop     func()            // stops it; idempotent
}

// startEmulator runs `injector dev --serve --listen NODE_IP` for one test,
// which stops it when it ends (or earlier with stop): the emulators serve
// HTTPS on the node's address, where Pods reach them, with a certificate
// from a CA dev makes and names in its settings (INJECTOR_CA_FILE).
func (c *cluster) startEmulator(t *testing.T) *emulator {
	t.Helper()
	srv, err := devserve.Start(c.binary, append(os.Environ(), "TMPDIR="+t.TempDir()), "--listen", c.nodeIP)
	if err != nil {
		t.Fatalf("injector dev --serve: %v", err)
	}
	t.Cleanup(srv.Stop)
	e := &emulator{settings: srv.Settings, stop: srv.Stop}
	for _, k := range []string{"PASSWORK_URL", "PASSWORK_TOKEN", "PASSWORK_REFRESH_TOKEN", "PASSWORK_MASTER_KEY", "INJECTOR_CA_FILE"} {
		if e.settings[k] == "" {
			t.Fatalf("injector dev --serve: no %s in its settings", k)
		}
	}
	e.url = e.settings["PASSWORK_URL"]
	if u, err := url.Parse(e.url); err != nil || u.Scheme != "https" || u.Hostname() != c.nodeIP {
		t.Fatalf("PASSWORK_URL %s: want https on the node address %s", e.url, c.nodeIP)
	}
	if e.caPEM, err = os.ReadFile(e.settings["INJECTOR_CA_FILE"]); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(e.caPEM) {
		t.Fatalf("INJECTOR_CA_FILE %s holds no certificate", e.settings["INJECTOR_CA_FILE"])
	}
	e.client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return e
}

// credentials creates the Secret a user creates from the emulator's
// settings, the way credentials.yaml's comment says: the URL as a literal,
// everything else from files, and the emulator's CA as INJECTOR_CA (a
// self-hosted server with a private CA).
func (c *cluster) credentials(t *testing.T, ns, name string, e *emulator) {
	t.Helper()
	dir := t.TempDir()
	args := []string{"-n", ns, "create", "secret", "generic", name, "--from-literal=PASSWORK_URL=" + e.url}
	for _, k := range []string{"PASSWORK_TOKEN", "PASSWORK_REFRESH_TOKEN", "PASSWORK_MASTER_KEY"} {
		f := filepath.Join(dir, strings.ToLower(k))
		if err := os.WriteFile(f, []byte(e.settings[k]), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--from-file="+k+"="+f)
	}
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, e.caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	c.must(t, "", append(args, "--from-file=INJECTOR_CA="+ca)...)
}

// secrets are the values no Pod spec, event or description may show.
func (e *emulator) secrets(extra map[string]string) map[string]string {
	out := map[string]string{}
	for _, k := range []string{"PASSWORK_TOKEN", "PASSWORK_REFRESH_TOKEN", "PASSWORK_MASTER_KEY"} {
		out[k] = e.settings[k]
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// seedEntry returns a Passwork entry of examples/dev/seed.json, which the
// emulators serve.
func seedEntry(t *testing.T, path string) fetchtest.Entry {
	t.Helper()
	seed, err := fetchtest.LoadSeed(filepath.Join(repoRoot, "examples/dev/seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range seed.Passwork {
		if en.Path == path {
			return en
		}
	}
	t.Fatalf("seed.json has no Passwork entry %s", path)
	return fetchtest.Entry{}
}

// setPassword changes an entry's password the way Passwork's official
// clients do (the Python SDK's update_item, as passwork-cli runs it): read
// the user's keys and the item, decrypt the item key on the client, encrypt
// the new password with it and PATCH the ciphertext. The server never sees
// the value.
func (e *emulator) setPassword(t *testing.T, path, password string) {
	t.Helper()
	vaultName, rest, _ := strings.Cut(path, "/")
	folder, name := filepath.Split(rest)
	folder = strings.TrimSuffix(folder, "/")

	keys := e.call(t, http.MethodGet, "/api/v1/users/keys", nil)["keys"].(map[string]any)
	pemText, err := pwcrypto.Decrypt(keys["privateEncrypted"].(string), e.settings["PASSWORK_MASTER_KEY"])
	if err != nil {
		t.Fatalf("decrypt the user's private key: %v", err)
	}
	priv, err := pwcrypto.ParsePrivateKey(pemText)
	if err != nil {
		t.Fatal(err)
	}
	var vaultID string
	for _, v := range e.call(t, http.MethodGet, "/api/v1/vaults", nil)["items"].([]any) {
		if v := v.(map[string]any); v["name"] == vaultName {
			vaultID = v["id"].(string)
		}
	}
	if vaultID == "" {
		t.Fatalf("no vault %s", vaultName)
	}
	var item map[string]any
	search := e.call(t, http.MethodGet, "/api/v1/items/search?"+url.Values{"query": {name}, "vaultIds[]": {vaultID}}.Encode(), nil)
	for _, s := range search["items"].([]any) {
		it := e.call(t, http.MethodGet, "/api/v1/items/"+s.(map[string]any)["id"].(string), nil)
		var names []string
		for _, p := range it["path"].([]any) {
			names = append(names, p.(map[string]any)["name"].(string))
		}
		if it["name"] == name && strings.Join(names, "/") == vaultName+"/"+folder {
			item = it
		}
	}
	if item == nil {
		t.Fatalf("no Passwork item %s", path)
	}
	vaultKey := rsaDecrypt(t, priv, item["vaultMasterKeyEncrypted"].(string))
	itemKey, err := pwcrypto.Decrypt(item["keyEncrypted"].(string), vaultKey)
	if err != nil {
		t.Fatalf("decrypt the item key: %v", err)
	}
	enc, err := pwcrypto.Encrypt(password, itemKey)
	if err != nil {
		t.Fatal(err)
	}
	e.call(t, http.MethodPatch, "/api/v1/items/"+item["id"].(string), map[string]any{"passwordEncrypted": enc})
}

// rsaDecrypt unwraps a key as the SDK does: OAEP-SHA256, else PKCS#1 v1.5.
func rsaDecrypt(t *testing.T, priv *rsa.PrivateKey, b64 string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	out, err := rsa.DecryptOAEP(sha256.New(), nil, priv, raw, nil)
	if err != nil {
		if out, err = rsa.DecryptPKCS1v15(nil, priv, raw); err != nil {
			t.Fatalf("unwrap the vault key: %v", err)
		}
	}
	return string(out)
}

// call is one Passwork 7 API request with the emulator's access token and
// master key hash; it returns the decoded result (a list as "list").
func (e *emulator) call(t *testing.T, method, path string, body map[string]any) map[string]any {
	t.Helper()
	var r io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(e.url, "/")+path, r)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(e.settings["PASSWORK_MASTER_KEY"]))
	req.Header.Set("Authorization", "Bearer "+e.settings["PASSWORK_TOKEN"])
	req.Header.Set("X-Master-Key-Hash", hex.EncodeToString(sum[:]))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, data)
	}
	var env map[string]any
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if env["format"] == "base64" { // the API's envelope
		if data, err = base64.StdEncoding.DecodeString(env["content"].(string)); err != nil {
			t.Fatal(err)
		}
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if m, ok := out.(map[string]any); ok {
		return m
	}
	return map[string]any{"list": out}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}
