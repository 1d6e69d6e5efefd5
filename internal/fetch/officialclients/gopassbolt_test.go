package officialclients

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/passbolt/go-passbolt/api"
	"github.com/passbolt/go-passbolt/helper"

	"github.com/injector-dev/injector/internal/crypto/totp"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passbolt/passbolttest"
)

const totpSecret = "JBSWY3DPEHPK3PXP"

func passboltEnv(s *passbolttest.Server) map[string]string {
	cfg := s.Config()
	return map[string]string{
		"PASSBOLT_URL": cfg.URL, "PASSBOLT_USER_ID": cfg.UserID, "PASSBOLT_PRIVATE_KEY": cfg.PrivateKey,
		"PASSBOLT_PASSPHRASE": cfg.Passphrase, "PASSBOLT_SERVER_FINGERPRINT": cfg.ServerFingerprint,
	}
}

func goPassboltLogin(t *testing.T, ctx context.Context, s *passbolttest.Server) *api.Client {
	t.Helper()
	cfg := s.Config()
	c, err := api.NewClient(nil, "", s.URL, cfg.PrivateKey, cfg.Passphrase)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx); err != nil {
		t.Fatalf("go-passbolt login: %v", err)
	}
	return c
}

// totpCodes returns the codes valid just before and after fn, so a period
// boundary in between cannot fail the test.
func totpCodes(t *testing.T, fn func()) map[string]bool {
	t.Helper()
	before, err := totp.Generate(totpSecret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fn()
	after, _ := totp.Generate(totpSecret, time.Now())
	return map[string]bool{before: true, after: true}
}

// TestGoPassbolt drives the Passbolt emulator with go-passbolt v0.8.1 the
// way a user's scripts would (GPGAuth login, reads, folder and resource
// creation of every type, updates, deletes, session keys, logout), then
// reads everything it wrote back with `injector get`.
func TestGoPassbolt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := passbolttest.New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Seed([]fetchtest.Entry{
		{Path: "infra/ci/deploy-key", Fields: map[string]string{"password": "seeded-v5", "username": "ci", "url": "https://ci.example", "description": "v5 shared key"},
			Custom: map[string]string{"region": "eu"}, TOTP: totpSecret},
		{Path: "legacy/ldap/bind", Format: "v4", Fields: map[string]string{"password": "seeded-v4", "username": "cn=bind", "url": "ldap://ldap", "description": "v4 in a v4 folder"}},
	}); err != nil {
		t.Fatal(err)
	}
	env := passboltEnv(s)

	c := goPassboltLogin(t, ctx, s)

	// Reads of what the emulator seeded, as the official client decrypts
	// and schema-validates them.
	rows, err := c.GetResources(ctx, &api.GetResourcesOptions{ContainSecret: true, ContainResourceType: true})
	if err != nil {
		t.Fatalf("GetResources: %v", err)
	}
	if len(rows) != 2 || len(rows[0].Secrets) != 1 {
		t.Fatalf("GetResources: %d rows (first has %d secrets), want 2 with one secret each", len(rows), len(rows[0].Secrets))
	}
	seeded, seededIDs := map[string]string{}, map[string]string{}
	for _, r := range rows {
		_, name, username, uri, password, description, err := helper.GetResource(ctx, c, r.ID)
		if err != nil {
			t.Fatalf("helper.GetResource(%s): %v", r.ID, err)
		}
		seeded[name] = strings.Join([]string{username, uri, password, description}, "|")
		seededIDs[name] = r.ID
	}
	if seeded["deploy-key"] != "ci|https://ci.example|seeded-v5|v5 shared key" || seeded["bind"] != "cn=bind|ldap://ldap|seeded-v4|v4 in a v4 folder" {
		t.Errorf("seeded resources as go-passbolt reads them: %q", seeded)
	}
	folders, err := c.GetFolders(ctx, &api.GetFoldersOptions{FilterSearch: "LEG"})
	if err != nil || len(folders) != 1 || folders[0].Name != "legacy" {
		t.Errorf("GetFolders(search LEG) = %+v, %v; want the v4 folder \"legacy\"", folders, err)
	}

	// Folders (go-passbolt creates v4 folders) and one resource of every type.
	top, err := helper.CreateFolder(ctx, c, "", "gopassbolt")
	if err != nil {
		t.Fatalf("CreateFolder: %v", err)
	}
	sub, err := helper.CreateFolder(ctx, c, top, "sub")
	if err != nil {
		t.Fatalf("CreateFolder(sub): %v", err)
	}
	totpObj := map[string]any{"secret_key": totpSecret, "digits": 6, "algorithm": "SHA1", "period": 30}
	cfID := "0b4b6c8e-3c1a-4f55-9d0e-2f8a4b1c6d7e"
	type created struct {
		slug   string
		meta   map[string]any
		secret map[string]any
		// what injector get must print, field → value ("totp" is checked
		// against the secret above)
		want map[string]string
	}
	all := []created{
		{"password-string", map[string]any{"name": "r-password-string", "username": "u1", "uri": "https://one", "description": "d1"},
			map[string]any{"password": "p1"}, map[string]string{"password": "p1", "username": "u1", "uri": "https://one", "description": "d1"}},
		{"password-and-description", map[string]any{"name": "r-password-and-description", "username": "u2", "uri": "https://two"},
			map[string]any{"password": "p2", "description": "d2"}, map[string]string{"password": "p2", "username": "u2", "description": "d2"}},
		{"totp", map[string]any{"name": "r-totp", "uri": "https://three"},
			map[string]any{"totp": totpObj}, map[string]string{"uri": "https://three", "totp": ""}},
		{"password-description-totp", map[string]any{"name": "r-password-description-totp", "username": "u4"},
			map[string]any{"password": "p4", "description": "d4", "totp": totpObj}, map[string]string{"password": "p4", "description": "d4", "totp": ""}},
		{"v5-default", map[string]any{"name": "r-v5-default", "username": "u5", "uris": []string{"https://five"}},
			map[string]any{"password": "p5", "description": "d5"}, map[string]string{"password": "p5", "username": "u5", "uri": "https://five", "description": "d5"}},
		{"v5-password-string", map[string]any{"name": "r-v5-password-string", "username": "u6", "description": "d6"},
			map[string]any{"password": "p6"}, map[string]string{"password": "p6", "description": "d6"}},
		{"v5-default-with-totp", map[string]any{"name": "r-v5-default-with-totp", "username": "u7"},
			map[string]any{"password": "p7", "totp": totpObj}, map[string]string{"password": "p7", "totp": ""}},
		{"v5-totp-standalone", map[string]any{"name": "r-v5-totp-standalone", "uris": []string{"https://eight"}},
			map[string]any{"totp": totpObj}, map[string]string{"uri": "https://eight", "totp": ""}},
		{"v5-custom-fields", map[string]any{"name": "r-v5-custom-fields", "custom_fields": []any{map[string]any{"id": cfID, "type": "text", "metadata_key": "region"}}},
			map[string]any{"custom_fields": []any{map[string]any{"id": cfID, "type": "text", "secret_value": "eu-west-1"}}}, map[string]string{"region": "eu-west-1"}},
		{"v5-note", map[string]any{"name": "r-v5-note"},
			map[string]any{"description": "a long note"}, map[string]string{"note": "a long note", "description": "a long note"}},
		{"v5-pin-code", map[string]any{"name": "r-v5-pin-code"},
			map[string]any{"pin_code": "123456"}, map[string]string{"pin_code": "123456"}},
	}
	ids := map[string]string{}
	for _, cr := range all {
		id, err := helper.CreateResourceGeneric(ctx, c, cr.slug, sub, cr.meta, cr.secret)
		if err != nil {
			t.Fatalf("CreateResourceGeneric(%s): %v", cr.slug, err)
		}
		ids[cr.slug] = id
		// Read back through go-passbolt: the whole round trip is its own.
		res, err := c.GetResource(ctx, id)
		if err != nil {
			t.Fatalf("GetResource(%s): %v", cr.slug, err)
		}
		rt, err := c.GetResourceType(ctx, res.ResourceTypeID)
		if err != nil || rt.Slug != cr.slug {
			t.Fatalf("GetResourceType(%s) = %+v, %v", cr.slug, rt, err)
		}
		sec, err := c.GetSecret(ctx, id)
		if err != nil {
			t.Fatalf("GetSecret(%s): %v", cr.slug, err)
		}
		parent, meta, secret, err := helper.GetResourceFieldMaps(c, *res, *sec, *rt, true)
		if err != nil {
			t.Fatalf("GetResourceFieldMaps(%s): %v", cr.slug, err)
		}
		if parent != sub || meta["name"] != cr.meta["name"] || len(secret) == 0 {
			t.Errorf("%s read back: parent %s, metadata %v, %d secret fields", cr.slug, parent, meta, len(secret))
		}
	}

	// Updates keep what they do not change; deletes remove.
	if err := helper.UpdateResource(ctx, c, ids["v5-default"], "", "", "", "p5-rotated", ""); err != nil {
		t.Fatalf("UpdateResource(v5-default): %v", err)
	}
	if err := helper.UpdateResource(ctx, c, ids["password-and-description"], "", "u2-new", "", "p2-rotated", ""); err != nil {
		t.Fatalf("UpdateResource(password-and-description): %v", err)
	}
	// A seeded resource whose metadata is under the shared metadata key.
	if err := helper.UpdateResource(ctx, c, seededIDs["deploy-key"], "", "", "", "seeded-v5-rotated", ""); err != nil {
		t.Fatalf("UpdateResource(seeded shared_key v5): %v", err)
	}
	if err := helper.DeleteResource(ctx, c, ids["v5-pin-code"]); err != nil {
		t.Fatalf("DeleteResource: %v", err)
	}
	if _, err := c.GetResource(ctx, ids["v5-pin-code"]); err == nil {
		t.Error("GetResource after DeleteResource succeeded")
	}

	// The server refuses what the real one refuses, with its error shape.
	_, err = helper.CreateResourceGeneric(ctx, c, "password-and-description", sub,
		map[string]any{"name": strings.Repeat("n", 256)}, map[string]any{"password": "x"})
	var apiErr *api.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.Body, `"name"`) {
		t.Errorf("v4 resource with a 256-character name: %v; want HTTP 400 naming the field", err)
	}
	if _, err := helper.CreateFolder(ctx, c, "7b1e9b1c-0000-4000-8000-000000000000", "orphan"); !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
		t.Errorf("folder under a missing parent: %v; want HTTP 400", err)
	}

	// Session keys: the client caches the metadata session keys it used,
	// on the server, encrypted to the user; a second save updates the
	// bundle it read.
	for i := 0; i < 2; i++ {
		if _, _, _, _, _, _, err := helper.GetResource(ctx, c, ids["v5-default"]); err != nil {
			t.Fatal(err)
		}
		if _, err := c.SavePendingSessionKeys(ctx); err != nil {
			t.Fatalf("SavePendingSessionKeys #%d: %v", i+1, err)
		}
		c.ClearSessionKeyCache()
	}
	bundles, err := c.GetMetadataSessionKeys(ctx)
	if err != nil || len(bundles) != 1 {
		t.Errorf("session key bundles: %d, %v; want 1", len(bundles), err)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatalf("Logout: %v", err)
	}

	// A second login uses the saved session keys.
	c2 := goPassboltLogin(t, ctx, s)
	if n, err := c2.FetchAndCacheSessionKeys(ctx); err != nil || n == 0 {
		t.Errorf("FetchAndCacheSessionKeys: %d, %v", n, err)
	}
	if _, _, _, _, pw, _, err := helper.GetResource(ctx, c2, ids["v5-default"]); err != nil || pw != "p5-rotated" {
		t.Errorf("second login reads %q, %v", pw, err)
	}
	if err := c2.Logout(ctx); err != nil {
		t.Fatalf("Logout: %v", err)
	}

	// Everything go-passbolt wrote, read back with injector get.
	for _, cr := range all {
		if cr.slug == "v5-pin-code" {
			continue
		}
		ref := "passbolt:gopassbolt/sub/" + cr.meta["name"].(string)
		for field, want := range cr.want {
			switch {
			case field == "totp":
				var got string
				codes := totpCodes(t, func() { got, err = injectorGet(t, env, ref, "totp") })
				if err != nil || !codes[got] {
					t.Errorf("injector get %s --field totp = %q, %v; want one of %v", ref, got, err, codes)
				}
				continue
			case cr.slug == "v5-default" && field == "password":
				want = "p5-rotated"
			case cr.slug == "password-and-description" && field == "password":
				want = "p2-rotated"
			case cr.slug == "password-and-description" && field == "username":
				want = "u2-new"
			}
			mustGet(t, env, ref, field, want)
		}
	}
	mustGet(t, env, "passbolt:id:"+ids["password-string"], "password", "p1")
	mustGet(t, env, "passbolt:infra/ci/deploy-key", "region", "eu")
	mustGet(t, env, "passbolt:infra/ci/deploy-key", "password", "seeded-v5-rotated")
	mustGet(t, env, "passbolt:infra/ci/deploy-key", "username", "ci")
	mustGet(t, env, "passbolt:legacy/ldap/bind", "password", "seeded-v4")
	if _, err := injectorGet(t, env, "passbolt:gopassbolt/sub/r-v5-pin-code", "pin_code"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("deleted resource: %v; want not found", err)
	}
	// The v4 totp type has no description field.
	if _, err := injectorGet(t, env, "passbolt:gopassbolt/sub/r-totp", "description"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("description of a v4 totp resource: %v; want not found", err)
	}
}
