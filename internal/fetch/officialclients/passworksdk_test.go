package officialclients

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	pwcrypto "github.com/injector-dev/injector/internal/crypto/passwork"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passwork/passworktest"
)

// sdk replays the official Passwork Python SDK (passwork-python 0.2.x, the
// library under passwork-cli) request by request: bearer token and
// X-Master-Key-Hash on every call, GET parameters as a query with lists
// as k[]=, JSON bodies otherwise, responses in the base64 envelope (it
// never asks for raw), batches of 25, refresh on accessTokenExpired. Its
// crypto is the SDK's: AESpw under the vault key, item key = vault key,
// RSA wrapping with OAEP-SHA256 falling back to PKCS#1 v1.5.
type sdk struct {
	t                     *testing.T
	host                  string
	access, refresh       string
	masterKey, masterHash string
	priv                  *rsa.PrivateKey
	pub                   *rsa.PublicKey
	requests              []string // "METHOD /path", in order
}

func newSDK(t *testing.T, host, access, refresh, masterKey string) *sdk {
	sum := sha256.Sum256([]byte(masterKey))
	return &sdk{t: t, host: host, access: access, refresh: refresh, masterKey: masterKey, masterHash: hex.EncodeToString(sum[:])}
}

// call is the SDK's ApiClient.call: it returns the decoded result or
// fails the test with the SDK's error text ("field => message").
func (c *sdk) call(method, endpoint string, payload map[string]any) map[string]any {
	c.t.Helper()
	out, status := c.request(method, endpoint, payload)
	if status == http.StatusUnauthorized && errCode(out) == "accessTokenExpired" {
		c.updateTokens()
		out, status = c.request(method, endpoint, payload)
	}
	if status != http.StatusOK {
		c.t.Fatalf("%s %s: HTTP %d: %v", method, endpoint, status, out["errors"])
	}
	return out
}

func errCode(out map[string]any) string {
	if errs, ok := out["errors"].([]any); ok && len(errs) > 0 {
		code, _ := errs[0].(map[string]any)["code"].(string)
		return code
	}
	return ""
}

func (c *sdk) request(method, endpoint string, payload map[string]any) (map[string]any, int) {
	c.t.Helper()
	u := c.host + endpoint
	var body []byte
	if method == http.MethodGet {
		q := url.Values{}
		for k, v := range payload {
			switch vv := v.(type) {
			case []string:
				q[k+"[]"] = vv
			default:
				q.Set(k, fmt.Sprint(vv))
			}
		}
		if len(q) > 0 {
			u += "?" + q.Encode()
		}
	} else {
		if payload == nil {
			payload = map[string]any{}
		}
		body, _ = json.Marshal(payload)
	}
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.access)
	req.Header.Set("X-Master-Key-Hash", c.masterHash)
	c.requests = append(c.requests, method+" "+endpoint)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	return c.unwrap(resp), resp.StatusCode
}

// unwrap is the SDK's _process_response: JSON, base64 envelope decoded.
func (c *sdk) unwrap(resp *http.Response) map[string]any {
	c.t.Helper()
	var env map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		c.t.Fatalf("%s: response is not JSON (HTTP %d)", resp.Request.URL.Path, resp.StatusCode)
	}
	if env["format"] != "base64" {
		return env
	}
	data, err := base64.StdEncoding.DecodeString(env["content"].(string))
	if err != nil {
		c.t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		c.t.Fatal(err)
	}
	if m, ok := out.(map[string]any); ok {
		return m
	}
	return map[string]any{"list": out}
}

// updateTokens is the SDK's refresh: the current (expired) access token as
// bearer, the refresh token in the body; the pair is replaced.
func (c *sdk) updateTokens() {
	c.t.Helper()
	body, _ := json.Marshal(map[string]string{"refreshToken": c.refresh})
	req, _ := http.NewRequest(http.MethodPost, c.host+"/api/v1/sessions/refresh", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.access)
	req.Header.Set("X-Master-Key-Hash", c.masterHash)
	c.requests = append(c.requests, "POST /api/v1/sessions/refresh")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := c.unwrap(resp)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("refresh: HTTP %d %v", resp.StatusCode, out)
	}
	c.access, c.refresh = out["accessToken"].(string), out["refreshToken"].(string)
}

// loadKeys is set_master_key: the user's key pair, the private half
// decrypted with the master key.
func (c *sdk) loadKeys() {
	keys := c.call(http.MethodGet, "/api/v1/users/keys", nil)["keys"].(map[string]any)
	pemText, err := pwcrypto.Decrypt(keys["privateEncrypted"].(string), c.masterKey)
	if err != nil {
		c.t.Fatalf("decrypt private key: %v", err)
	}
	if c.priv, err = pwcrypto.ParsePrivateKey(pemText); err != nil {
		c.t.Fatal(err)
	}
	c.pub = &c.priv.PublicKey
}

func (c *sdk) rsaEncrypt(data string) string {
	out, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, c.pub, []byte(data), nil)
	if err != nil { // the key is too small for OAEP-SHA256 of a 100-byte key
		if out, err = rsa.EncryptPKCS1v15(rand.Reader, c.pub, []byte(data)); err != nil {
			c.t.Fatal(err)
		}
	}
	return base64.StdEncoding.EncodeToString(out)
}

func (c *sdk) rsaDecrypt(b64 string) string {
	raw, _ := base64.StdEncoding.DecodeString(b64)
	out, err := rsa.DecryptOAEP(sha256.New(), nil, c.priv, raw, nil)
	if err != nil {
		if out, err = rsa.DecryptPKCS1v15(nil, c.priv, raw); err != nil {
			c.t.Fatalf("rsa decrypt: %v", err)
		}
	}
	return string(out)
}

func (c *sdk) aes(v, key string) string {
	out, err := pwcrypto.Encrypt(v, key)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

func (c *sdk) unaes(v, key string) string {
	out, err := pwcrypto.Decrypt(v, key)
	if err != nil {
		c.t.Fatalf("decrypt: %v", err)
	}
	return out
}

func randomKey() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@!"
	b := make([]byte, 100)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// createVault is create_vault: a fresh vault key wrapped for the user.
func (c *sdk) createVault(name string) string {
	c.call(http.MethodGet, "/api/v1/app/features", nil) // find_feature("vaultType")
	key, salt := randomKey(), randomKey()[:32]
	sum := sha256.Sum256([]byte(key + salt))
	return c.call(http.MethodPost, "/api/v1/vaults", map[string]any{
		"name": name, "masterKeyEncrypted": c.rsaEncrypt(key), "masterKeyHash": hex.EncodeToString(sum[:]), "salt": salt,
	})["id"].(string)
}

func (c *sdk) vaultPassword(vaultID string) string {
	v := c.call(http.MethodGet, "/api/v1/vaults/"+vaultID, nil)
	return c.rsaDecrypt(v["masterKeyEncrypted"].(string))
}

// encryptItem is encrypt_item + encrypt_item_customs +
// encrypt_item_attachments: everything under the vault key, which is also
// the item key.
func (c *sdk) encryptItem(data map[string]any, vaultKey string, files map[string][]byte) {
	if pw, ok := data["password"].(string); ok {
		data["passwordEncrypted"] = c.aes(pw, vaultKey)
		delete(data, "password")
	}
	data["keyEncrypted"] = c.aes(vaultKey, vaultKey)
	if customs, ok := data["customs"].([]map[string]string); ok {
		var enc []map[string]string
		for _, cf := range customs {
			enc = append(enc, map[string]string{"name": c.aes(cf["name"], vaultKey), "type": c.aes(cf["type"], vaultKey), "value": c.aes(cf["value"], vaultKey)})
		}
		data["customs"] = enc
	}
	var atts []map[string]string
	for name, buf := range files {
		key := randomKey()
		var latin1 []rune // the SDK hashes the bytes as Latin-1 text, UTF-8 encoded
		for _, b := range buf {
			latin1 = append(latin1, rune(b))
		}
		b := make([]byte, 0, len(buf)*2)
		for _, r := range latin1 {
			b = utf8.AppendRune(b, r)
		}
		sum := sha256.Sum256(b)
		atts = append(atts, map[string]string{
			"name": name, "encryptedKey": c.aes(key, vaultKey),
			"encryptedData": c.aes(base64.StdEncoding.EncodeToString(buf), key), "hash": hex.EncodeToString(sum[:]),
		})
	}
	if atts != nil {
		data["attachments"] = atts
	}
}

func (c *sdk) createItem(data map[string]any, files map[string][]byte) string {
	c.encryptItem(data, c.vaultPassword(data["vaultId"].(string)), files)
	if _, ok := data["name"]; !ok {
		data["name"] = ""
	}
	return c.call(http.MethodPost, "/api/v1/items", data)["id"].(string)
}

// decryptItem is get_item's decryption: vault key by RSA, item key by
// AESpw, then the values.
func (c *sdk) decryptItem(it map[string]any) map[string]any {
	vaultKey := c.rsaDecrypt(it["vaultMasterKeyEncrypted"].(string))
	itemKey := c.unaes(it["keyEncrypted"].(string), vaultKey)
	if pe, _ := it["passwordEncrypted"].(string); pe != "" {
		it["password"] = c.unaes(pe, itemKey)
	}
	var customs []map[string]string
	for _, raw := range it["customs"].([]any) {
		cf := raw.(map[string]any)
		customs = append(customs, map[string]string{
			"name": c.unaes(cf["name"].(string), itemKey), "type": c.unaes(cf["type"].(string), itemKey), "value": c.unaes(cf["value"].(string), itemKey),
		})
	}
	it["customs"] = customs
	return it
}

func (c *sdk) getItem(id string) map[string]any {
	return c.decryptItem(c.call(http.MethodGet, "/api/v1/items/"+id, nil))
}

// sendBatch is send_batch: chunks of 25, non-200 responses dropped.
func (c *sdk) sendBatch(urls []string) []map[string]any {
	var out []map[string]any
	for start := 0; start < len(urls); start += 25 {
		var reqs []map[string]string
		for _, u := range urls[start:min(start+25, len(urls))] {
			reqs = append(reqs, map[string]string{"method": "GET", "relativeUrl": u})
		}
		res := c.call(http.MethodPost, "/api/v1/batch", map[string]any{"requests": reqs})
		for _, r := range res["responses"].([]any) {
			if rr := r.(map[string]any); rr["statusCode"] == float64(200) {
				out = append(out, rr["body"].(map[string]any))
			}
		}
	}
	return out
}

// searchAndDecrypt is search_and_decrypt: one search, one batch of GETs.
func (c *sdk) searchAndDecrypt(params map[string]any) []map[string]any {
	var urls []string
	for _, it := range c.call(http.MethodGet, "/api/v1/items/search", params)["items"].([]any) {
		urls = append(urls, "/api/v1/items/"+it.(map[string]any)["id"].(string))
	}
	var out []map[string]any
	for _, it := range c.sendBatch(urls) {
		out = append(out, c.decryptItem(it))
	}
	return out
}

// searchAndDecryptShortcut is search_and_decrypt_shortcut: search, a batch
// of /shortcuts/{id}, then a batch of /items/{id} with the ids those
// answered, each decrypted item attached as "password".
func (c *sdk) searchAndDecryptShortcut(params map[string]any) []map[string]any {
	var urls []string
	for _, it := range c.call(http.MethodGet, "/api/v1/shortcuts/search", params)["items"].([]any) {
		urls = append(urls, "/api/v1/shortcuts/"+it.(map[string]any)["shortcut"].(map[string]any)["id"].(string))
	}
	byID := map[string]map[string]any{}
	var ids []string
	for _, sc := range c.sendBatch(urls) {
		id := sc["id"].(string)
		byID[id] = sc
		ids = append(ids, "/api/v1/items/"+id)
	}
	for _, it := range c.sendBatch(ids) {
		byID[it["id"].(string)]["password"] = c.decryptItem(it)
	}
	var out []map[string]any
	for _, sc := range byID {
		out = append(out, sc)
	}
	return out
}

// TestPassworkSDKSequence replays what the official SDK and passwork-cli
// send to seed and change a Passwork 7 server — vault, folder, item with
// custom fields and an attachment, a shortcut into a second vault,
// search-and-decrypt through the batch endpoint, shortcuts search, a token
// refresh, passwork-cli update and a delete — then reads the result with
// `injector get`, configured with passwork-cli's own setting names.
func TestPassworkSDKSequence(t *testing.T) {
	s := passworktest.NewServer()
	defer s.Close()
	if err := s.Seed([]fetchtest.Entry{{Path: "Seeded/x", Fields: map[string]string{"password": "seeded"}}}); err != nil {
		t.Fatal(err)
	}
	cfg := s.Config()
	c := newSDK(t, s.URL, cfg.Token, cfg.RefreshToken, cfg.MasterKey)
	c.loadKeys()

	apps := c.createVault("SDKVault")
	team := c.createVault("Team")
	folder := c.call(http.MethodPost, "/api/v1/folders", map[string]any{"name": "apps", "vaultId": apps})["id"].(string)
	shared := c.call(http.MethodPost, "/api/v1/folders", map[string]any{"name": "shared", "vaultId": team})["id"].(string)
	file := []byte{0x00, 0x41, 0xe9, 0xff, '\n'}
	db := c.createItem(map[string]any{
		"vaultId": apps, "folderId": folder, "name": "db", "login": "app", "url": "https://db.example",
		"description": "primary", "tags": []string{"db", "prod"}, "password": "pw-1",
		"customs": []map[string]string{{"name": "port", "type": "text", "value": "5432"}, {"name": "api key", "type": "password", "value": "ak-1"}},
	}, map[string][]byte{"ca.pem": file})
	doomed := c.createItem(map[string]any{"vaultId": apps, "folderId": folder, "name": "old", "password": "gone"}, nil)

	// create_shortcut: the item key re-wrapped with the target vault's key.
	src := c.call(http.MethodGet, "/api/v1/items/"+db, nil)
	itemKey := c.unaes(src["keyEncrypted"].(string), c.rsaDecrypt(src["vaultMasterKeyEncrypted"].(string)))
	c.call(http.MethodPost, "/api/v1/shortcuts", map[string]any{
		"vaultId": team, "folderId": shared, "itemId": db, "keyEncrypted": c.aes(itemKey, c.vaultPassword(team)),
	})

	// passwork-cli exec --vault-id / --tags: items and shortcuts searched
	// with the same parameters; the access token expires in between.
	found := c.searchAndDecrypt(map[string]any{"vaultIds": []string{apps}})
	if len(found) != 2 {
		t.Fatalf("search_and_decrypt(vault) found %d items, want 2", len(found))
	}
	s.ExpireAccessTokens()
	if got := c.searchAndDecrypt(map[string]any{"tags": []string{"db", "prod"}}); len(got) != 1 || got[0]["password"] != "pw-1" {
		t.Fatalf("search_and_decrypt(tags) = %v", got)
	}
	if got := c.searchAndDecrypt(map[string]any{"tags": []string{"nosuchtag"}}); len(got) != 0 {
		t.Errorf("a tag matching nothing found %d items", len(got))
	}
	scs := c.searchAndDecryptShortcut(map[string]any{"vaultIds": []string{team}})
	if len(scs) != 1 {
		t.Fatalf("search_and_decrypt_shortcut found %d, want 1", len(scs))
	}
	if pw := scs[0]["password"].(map[string]any)["password"]; pw != "pw-1" {
		t.Errorf("shortcut decrypts to %v", pw)
	}

	// passwork-cli update --password --custom-api key: get_item, then PATCH
	// with the decrypted customs re-encrypted and the vault id.
	it := c.getItem(db)
	customs := it["customs"].([]map[string]string)
	for _, cf := range customs {
		if cf["name"] == "api key" {
			cf["value"] = "ak-2"
		}
	}
	update := map[string]any{"password": "pw-2", "customs": customs, "vaultId": it["vaultId"]}
	c.encryptItem(update, c.vaultPassword(apps), nil)
	c.call(http.MethodPatch, "/api/v1/items/"+db, update)
	if del := c.call(http.MethodDelete, "/api/v1/items/"+doomed, nil); del["binItemId"] == "" {
		t.Errorf("delete answered %v", del)
	}

	for _, want := range []string{"POST /api/v1/batch", "GET /api/v1/shortcuts/search", "POST /api/v1/sessions/refresh", "PATCH /api/v1/items/" + db} {
		if !strings.Contains(strings.Join(c.requests, "\n"), want) {
			t.Errorf("the replay never sent %s", want)
		}
	}

	// injector reads what the SDK wrote, with passwork-cli's settings
	// (PASSWORK_HOST) and the pair the refresh handed out.
	env := map[string]string{"PASSWORK_HOST": s.URL, "PASSWORK_TOKEN": c.access, "PASSWORK_REFRESH_TOKEN": c.refresh,
		"PASSWORK_MASTER_KEY": cfg.MasterKey}
	mustGet(t, env, "passwork:SDKVault/apps/db", "password", "pw-2")
	mustGet(t, env, "passwork:SDKVault/apps/db", "login", "app")
	mustGet(t, env, "passwork:SDKVault/apps/db", "tags", "db,prod")
	mustGet(t, env, "passwork:SDKVault/apps/db", "port", "5432")
	mustGet(t, env, "passwork:SDKVault/apps/db", "api key", "ak-2")
	mustGet(t, env, "passwork:SDKVault/apps/db", "attachment:ca.pem", string(file))
	mustGet(t, env, "passwork:Team/shared/db", "password", "pw-2")
	mustGet(t, env, "passwork:Team/shared/db", "attachment:ca.pem", string(file))
	mustGet(t, env, "passwork:id:"+db, "description", "primary")
	mustGet(t, env, "passwork:Seeded/x", "password", "seeded")
	if _, err := injectorGet(t, env, "passwork:SDKVault/apps/old", "password"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("deleted item: %v; want not found", err)
	}
	env["PASSWORK_URL"] = "https://elsewhere.example"
	if _, err := injectorGet(t, env, "passwork:SDKVault/apps/db", "password"); err == nil || !strings.Contains(err.Error(), "PASSWORK_HOST") {
		t.Errorf("PASSWORK_URL and PASSWORK_HOST set to different servers: %v; want an error naming both", err)
	}
}
