package passbolt_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/injector-dev/injector/internal/crypto/totp"
	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passbolt"
	"github.com/injector-dev/injector/internal/fetch/passbolt/passbolttest"
)

const totpSecret = "JBSWY3DPEHPK3PXP"

// fastRetries keeps retry backoff at a millisecond.
var fastRetries = fetch.Options{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}

func newServer(t *testing.T) *passbolttest.Server {
	t.Helper()
	s, err := passbolttest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func newClient(t *testing.T, cfg passbolt.Config) *passbolt.Client {
	t.Helper()
	c, err := passbolt.New(cfg, fastRetries)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func add(t *testing.T, s *passbolttest.Server, r passbolttest.Resource) string {
	t.Helper()
	id, err := s.Add(r)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func ref(path, field string) fetch.Ref {
	return fetch.Ref{Provider: "passbolt", Path: path, Field: field}
}

// resolveOne resolves a single reference and fails the test on a batch error.
func resolveOne(t *testing.T, c *passbolt.Client, path, field string) (string, error) {
	t.Helper()
	res, err := c.Resolve(context.Background(), []fetch.Ref{ref(path, field)})
	if err != nil {
		t.Fatalf("Resolve(%q, %q): batch error: %v", path, field, err)
	}
	return res[0].Value, res[0].Err
}

// totpNow returns the codes valid just before and just after fn runs, so a
// test never fails when a period boundary passes in between.
func totpWindow(t *testing.T, secret string, fn func()) map[string]bool {
	t.Helper()
	before, err := totp.Generate(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fn()
	after, _ := totp.Generate(secret, time.Now())
	return map[string]bool{before: true, after: true}
}

// TestResourceTypes reads every field of every resource type over JWT,
// with v5 metadata under both the shared and the user key.
func TestResourceTypes(t *testing.T) {
	s := newServer(t)
	custom := []passbolttest.Custom{{Label: "api key", Value: "ak-123"}, {Label: "region", Value: "eu-west-1"}}
	for _, r := range []passbolttest.Resource{
		{Path: "v4/string", Type: "password-string", Username: "u1", URIs: []string{"https://a"}, Description: "d1", Password: "p1"},
		{Path: "v4/pwd-desc", Type: "password-and-description", Username: "u2", URIs: []string{"https://b"}, Description: "d2", Password: "p2"},
		{Path: "v4/totp", Type: "totp", URIs: []string{"https://c"}, TOTP: totpSecret},
		{Path: "v4/pwd-desc-totp", Type: "password-description-totp", Username: "u4", Description: "d4", Password: "p4", TOTP: totpSecret},
		{Path: "v5/default", Type: "v5-default", Username: "u5", URIs: []string{"https://e", "https://f"}, Description: "d5", Password: "p5", Custom: custom},
		{Path: "v5/default-user-key", Type: "v5-default", KeyType: "user_key", Username: "u5u", Password: "p5u", Description: "d5u"},
		{Path: "v5/secret-desc", Type: "v5-default", Password: "p5s", Description: "in secret", SecretDescription: true},
		{Path: "v5/string", Type: "v5-password-string", Username: "u6", Password: "p6", Description: "d6"},
		{Path: "v5/with-totp", Type: "v5-default-with-totp", Username: "u7", Password: "p7", TOTP: "otpauth://totp/x?secret=" + totpSecret + "&digits=8&algorithm=SHA256&period=60"},
		{Path: "v5/totp", Type: "v5-totp-standalone", URIs: []string{"https://h"}, TOTP: totpSecret},
		{Path: "v5/custom", Type: "v5-custom-fields", Custom: custom},
		{Path: "v5/note", Type: "v5-note", Description: "a long note"},
		{Path: "v5/pin", Type: "v5-pin-code", PinCode: "0042", Description: "card", KeyType: "user_key"},
	} {
		add(t, s, r)
	}
	c := newClient(t, s.Config())

	tests := []struct{ path, field, want string }{
		{"v4/string", "password", "p1"},
		{"v4/string", "username", "u1"},
		{"v4/string", "uri", "https://a"},
		{"v4/string", "description", "d1"},
		{"v4/string", "name", "string"},
		{"v4/pwd-desc", "password", "p2"},
		{"v4/pwd-desc", "description", "d2"},
		{"v4/pwd-desc", "uris", "https://b"},
		{"v4/totp", "uri", "https://c"},
		{"v4/pwd-desc-totp", "password", "p4"},
		{"v4/pwd-desc-totp", "description", "d4"},
		{"v5/default", "password", "p5"},
		{"v5/default", "username", "u5"},
		{"v5/default", "uri", "https://e"},
		{"v5/default", "uris", "https://e,https://f"},
		{"v5/default", "description", "d5"},
		{"v5/default", "api key", "ak-123"},
		{"v5/default", "region", "eu-west-1"},
		{"v5/default-user-key", "password", "p5u"},
		{"v5/default-user-key", "username", "u5u"},
		{"v5/secret-desc", "description", "in secret"},
		{"v5/string", "password", "p6"},
		{"v5/string", "description", "d6"},
		{"v5/with-totp", "password", "p7"},
		{"v5/totp", "uri", "https://h"},
		{"v5/custom", "api key", "ak-123"},
		{"v5/note", "note", "a long note"},
		{"v5/note", "description", "a long note"},
		{"v5/pin", "pin_code", "0042"},
		{"v5/pin", "description", "card"},
	}
	for _, tt := range tests {
		t.Run(tt.path+"/"+tt.field, func(t *testing.T) {
			got, err := resolveOne(t, c, tt.path, tt.field)
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}

	totps := []struct {
		path, secret string
	}{
		{"v4/totp", totpSecret},
		{"v4/pwd-desc-totp", totpSecret},
		{"v5/with-totp", "otpauth://totp/x?secret=" + totpSecret + "&digits=8&algorithm=SHA256&period=60"},
		{"v5/totp", totpSecret},
	}
	for _, tt := range totps {
		t.Run(tt.path+"/totp", func(t *testing.T) {
			var got string
			var err error
			ok := totpWindow(t, tt.secret, func() { got, err = resolveOne(t, c, tt.path, "totp") })
			if err != nil || !ok[got] {
				t.Errorf("got %q, %v; want one of %v", got, err, ok)
			}
		})
	}

	// Fields a type does not have are "not found", listing what exists.
	missing := []struct{ path, field, lists string }{
		{"v4/totp", "password", `"totp"`},
		{"v4/totp", "description", `"uri"`},
		{"v5/note", "password", `"note"`},
		{"v5/pin", "username", `"pin_code"`},
		{"v5/default", "nope", `"region"`},
		{"v5/custom", "password", `"api key"`},
	}
	for _, tt := range missing {
		t.Run(tt.path+"/missing-"+tt.field, func(t *testing.T) {
			_, err := resolveOne(t, c, tt.path, tt.field)
			var nf *fetch.NotFoundError
			if !errors.As(err, &nf) || nf.Kind != "field" || !strings.Contains(err.Error(), tt.lists) {
				t.Errorf("err = %v; want field NotFoundError listing %s", err, tt.lists)
			}
		})
	}
}

// TestSeedFolders checks Seed (the `injector dev` path) with v5 and v4
// folders, and that metadata-only fields cost no secret read.
func TestSeedFolders(t *testing.T) {
	for _, plain := range []bool{false, true} {
		s := newServer(t)
		s.PlainFolders(plain)
		err := s.Seed([]fetchtest.Entry{
			{Path: "prod/db/postgres", Fields: map[string]string{"password": "pg-pass", "username": "app", "url": "postgres://db"},
				Custom: map[string]string{"port": "5432"}},
			{Path: "prod/mail", Fields: map[string]string{"password": "mail-pass"}, TOTP: totpSecret},
			{Path: "root-entry", Fields: map[string]string{"password": "root-pass", "description": "at the root"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		c := newClient(t, s.Config())
		refs := []fetch.Ref{
			ref("prod/db/postgres", "password"), ref("prod/db/postgres", "username"), ref("prod/db/postgres", "uri"),
			ref("prod/db/postgres", "port"), ref("prod/mail", "password"), ref("root-entry", "password"),
			ref("root-entry", "description"), ref("/prod//db/postgres/", "password"),
		}
		want := []string{"pg-pass", "app", "postgres://db", "5432", "mail-pass", "root-pass", "at the root", "pg-pass"}
		res, err := c.Resolve(context.Background(), refs)
		if err != nil {
			t.Fatal(err)
		}
		for i := range refs {
			if res[i].Err != nil || res[i].Value != want[i] {
				t.Errorf("plain folders %v: %s = %q, %v; want %q", plain, refs[i], res[i].Value, res[i].Err, want[i])
			}
		}
		if got := s.SecretReads(); got != 3 {
			t.Errorf("secret reads = %d, want 3 (one per referenced resource)", got)
		}
		if got := s.Writes(); got != 0 {
			t.Errorf("writes = %d, want 0", got)
		}
	}
}

// TestPathResolution covers root, nested, id refs, misses and ambiguity.
func TestPathResolution(t *testing.T) {
	s := newServer(t)
	add(t, s, passbolttest.Resource{Path: "top", Password: "at-root"})
	deepID := add(t, s, passbolttest.Resource{Path: "a/b/c/deep", Password: "deep-pass"})
	add(t, s, passbolttest.Resource{Path: "a/twin", Password: "t1"})
	add(t, s, passbolttest.Resource{Path: "a/twin", Password: "t2"})
	d1, _ := s.AddFolder("", "dup", true)
	d2, _ := s.AddFolder("", "dup", false)
	add(t, s, passbolttest.Resource{Path: "x", ParentID: d1, Password: "x1"})
	add(t, s, passbolttest.Resource{Path: "x", ParentID: d2, Password: "x2"})
	c := newClient(t, s.Config())

	tests := []struct {
		path, want string
		check      func(error) bool
	}{
		{path: "top", want: "at-root"},
		{path: "a/b/c/deep", want: "deep-pass"},
		{path: "id:" + deepID, want: "deep-pass"},
		{path: "a/b/nope/deep", check: func(err error) bool {
			var nf *fetch.NotFoundError
			return errors.As(err, &nf) && nf.Kind == "folder" && nf.Name == "nope" && len(nf.Nearby) == 1 && nf.Nearby[0] == "c"
		}},
		{path: "a/b/c/nope", check: func(err error) bool {
			var nf *fetch.NotFoundError
			return errors.As(err, &nf) && nf.Kind == "resource" && len(nf.Nearby) == 1 && nf.Nearby[0] == "deep"
		}},
		// A folder where a resource is asked for: what is in it.
		{path: "a/b", check: func(err error) bool {
			var nf *fetch.NotFoundError
			return errors.As(err, &nf) && nf.Folder == "a/b" && slices.Equal(nf.Nearby, []string{"a/b/c/"}) &&
				strings.Contains(err.Error(), `resource "b" not found in folder "a": "a/b" is a folder, holding "a/b/c/"`)
		}},
		{path: "a", check: func(err error) bool {
			var nf *fetch.NotFoundError
			return errors.As(err, &nf) && nf.Folder == "a" && slices.Equal(nf.Nearby, []string{"a/twin", "a/twin", "a/b/"})
		}},
		{path: "a/twin", check: func(err error) bool {
			var am *fetch.AmbiguousError
			return errors.As(err, &am) && am.Kind == "resource" && len(am.Candidates) == 2
		}},
		{path: "dup/x", check: func(err error) bool {
			var am *fetch.AmbiguousError
			return errors.As(err, &am) && am.Kind == "folder" && len(am.Candidates) == 2 &&
				strings.Contains(err.Error(), d1) && strings.Contains(err.Error(), d2)
		}},
		{path: "id:00000000-0000-4000-8000-000000000000", check: func(err error) bool { return errors.Is(err, fetch.ErrNotFound) }},
		{path: "id:not-a-uuid", check: func(err error) bool { return err != nil && strings.Contains(err.Error(), "not a resource UUID") }},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := resolveOne(t, c, tt.path, "password")
			if tt.check != nil {
				if !tt.check(err) {
					t.Errorf("err = %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestRequestCount pins the cost of a batch: 20 secrets in 2 folders.
func TestRequestCount(t *testing.T) {
	s := newServer(t)
	var refs []fetch.Ref
	for i := 0; i < 20; i++ {
		dir := []string{"team/one", "team/two"}[i%2]
		name := dir + "/item" + string(rune('a'+i))
		add(t, s, passbolttest.Resource{Path: name, Password: "p" + name})
		refs = append(refs, ref(name, "password"), ref(name, "password")) // duplicates are free
	}
	unref := add(t, s, passbolttest.Resource{Path: "team/one/unreferenced", Password: "x"})
	c := newClient(t, s.Config())
	res, err := c.Resolve(context.Background(), refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Value != "p"+refs[i].Path {
			t.Fatalf("%s = %q, %v", refs[i], r.Value, r.Err)
		}
	}
	// verify.json + jwt login + folders + 2 listings + types + metadata keys + 1 secret batch.
	if got, want := s.Requests(), 1+1+1+2+1+1+1; got != want {
		t.Errorf("first Resolve: %d requests, want %d", got, want)
	}
	if got := s.SecretReads(); got != 20 {
		t.Errorf("secret reads = %d, want 20", got)
	}
	if n := s.SecretReadsByResource()[unref]; n != 0 {
		t.Errorf("the unreferenced secret was read %d times", n)
	}

	// A second run re-lists folders and resources but reuses the login,
	// resource types and decrypted metadata keys.
	s.ResetCounters()
	if _, err := c.Resolve(context.Background(), refs); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Requests(), 1+2+1; got != want {
		t.Errorf("second Resolve: %d requests, want %d", got, want)
	}
	for _, p := range []string{"/metadata/keys.json", "/resource-types.json", "/auth/jwt/login.json", "/auth/verify.json"} {
		if n := s.RequestsTo(p); n != 0 {
			t.Errorf("second Resolve fetched %s %d times", p, n)
		}
	}

	// A rotated metadata key is fetched once, then cached again.
	if err := s.RotateMetadataKey(); err != nil {
		t.Fatal(err)
	}
	add(t, s, passbolttest.Resource{Path: "team/one/new", Password: "new-pass"})
	s.ResetCounters()
	if got, err := resolveOne(t, c, "team/one/new", "password"); err != nil || got != "new-pass" {
		t.Fatalf("after rotation: %q, %v", got, err)
	}
	if n := s.RequestsTo("/metadata/keys.json"); n != 1 {
		t.Errorf("after rotation: metadata keys fetched %d times, want 1", n)
	}
}

// TestSecretBatching: 250 referenced resources are read in chunks of 100
// ids (3 batched requests), and only they are read, although their folder
// holds more.
func TestSecretBatching(t *testing.T) {
	s := newServer(t)
	var refs []fetch.Ref
	want := map[string]int{}
	for i := 0; i < 250; i++ {
		name := fmt.Sprintf("big/item%03d", i)
		want[add(t, s, passbolttest.Resource{Path: name, Password: "p-" + name})] = 1
		refs = append(refs, ref(name, "password"))
	}
	for i := 0; i < 5; i++ {
		add(t, s, passbolttest.Resource{Path: fmt.Sprintf("big/other%d", i), Password: "unreferenced"})
	}
	res, err := newClient(t, s.Config()).Resolve(context.Background(), refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Value != "p-"+refs[i].Path {
			t.Fatalf("%s = %q, %v", refs[i], r.Value, r.Err)
		}
	}
	// One listing of "big", then ceil(250/100) secret batches.
	if got := s.RequestsTo("/resources.json") - 1; got != 3 {
		t.Errorf("%d secret-batch requests, want 3", got)
	}
	if got := s.SecretReads(); got != len(refs) {
		t.Errorf("secret reads = %d, want exactly %d (the referenced ones)", got, len(refs))
	}
	if got := s.SecretReadsByResource(); !maps.Equal(got, want) {
		t.Errorf("secrets read (%d resources) are not exactly the %d referenced ones, once each", len(got), len(want))
	}
	// key, login, folders, metadata keys, listing, 3 batches, types.
	if got, want := s.Requests(), 1+1+1+1+1+3+1; got != want {
		t.Errorf("%d requests in all, want %d", got, want)
	}
}

// TestSecretFallback: a server that ignores contain[secret] returns rows
// without "secrets"; each secret is then read from /secrets/resource/{id}.
func TestSecretFallback(t *testing.T) {
	s := newServer(t)
	s.SetContainSecret(false)
	id := add(t, s, passbolttest.Resource{Path: "f/a", Password: "pa"})
	add(t, s, passbolttest.Resource{Path: "f/b", Password: "pb"})
	add(t, s, passbolttest.Resource{Path: "f/c", Password: "pc"})
	res, err := newClient(t, s.Config()).Resolve(context.Background(),
		[]fetch.Ref{ref("f/a", "password"), ref("f/b", "password"), ref("f/b", "username")})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Value != "pa" || res[1].Value != "pb" || res[0].Err != nil || res[1].Err != nil || res[2].Err != nil {
		t.Fatalf("got %v", res)
	}
	if n := s.RequestsTo("/secrets/resource/" + id + ".json"); n != 1 {
		t.Errorf("fallback read of f/a: %d requests, want 1", n)
	}
	// One listing, one batch (answered without secrets), two single reads.
	if got := s.RequestsTo("/resources.json"); got != 2 {
		t.Errorf("/resources.json requests = %d, want 2", got)
	}
	if got := s.SecretReads(); got != 2 {
		t.Errorf("secret reads = %d, want 2", got)
	}
}

// TestJWTExpiry covers an access token expiring mid-run (refresh, with
// the rotated refresh token from Set-Cookie) and a dead refresh token
// (full login again), also under concurrent Resolve calls.
func TestJWTExpiry(t *testing.T) {
	s := newServer(t)
	add(t, s, passbolttest.Resource{Path: "f/e", Password: "v"})
	c := newClient(t, s.Config())
	check := func(step string, logins, refreshes int) {
		t.Helper()
		if got, err := resolveOne(t, c, "f/e", "password"); err != nil || got != "v" {
			t.Fatalf("%s: %q, %v", step, got, err)
		}
		if l, r := s.RequestsTo("/auth/jwt/login.json"), s.RequestsTo("/auth/jwt/refresh.json"); l != logins || r != refreshes {
			t.Errorf("%s: %d logins, %d refreshes; want %d, %d", step, l, r, logins, refreshes)
		}
	}
	check("first", 1, 0)
	s.ExpireAccessTokens()
	check("expired access token", 1, 1)
	s.ExpireAccessTokens() // the second refresh only works with the rotated token
	check("expired again", 1, 2)
	s.ExpireAccessTokens()
	s.RevokeRefreshTokens()
	check("refresh token revoked", 2, 3)
	s.AddFault(passbolttest.Fault{Path: "/folders.json", Status: 401, Times: 1})
	check("401 on one path", 2, 4)

	s.ExpireAccessTokens()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Resolve(context.Background(), []fetch.Ref{ref("f/e", "password")})
			if err != nil || res[0].Value != "v" {
				t.Errorf("concurrent: %v %v", res, err)
			}
		}()
	}
	wg.Wait()
	if r := s.RequestsTo("/auth/jwt/refresh.json"); r != 5 {
		t.Errorf("concurrent expiry: %d refreshes in total, want 5 (one for all goroutines)", r)
	}
}

// TestGPGAuth logs in with the legacy flow, survives a session expiry and
// logs out through the CSRF check.
func TestGPGAuth(t *testing.T) {
	s := newServer(t)
	add(t, s, passbolttest.Resource{Path: "f/e", Password: "v", KeyType: "shared_key"})
	cfg := s.Config()
	cfg.Auth = passbolt.AuthGPGAuth
	cfg.UserID = "" // learnt at login; needed for the shared metadata key
	c := newClient(t, cfg)
	if got, err := resolveOne(t, c, "f/e", "password"); err != nil || got != "v" {
		t.Fatalf("%q, %v", got, err)
	}
	// stage 0 (POST verify.json), stages 1 and 2, then /users/me.json for CSRF.
	if n := s.RequestsTo("/auth/login.json"); n != 2 {
		t.Errorf("login.json requests = %d, want 2", n)
	}
	if n := s.RequestsTo("/users/me.json"); n != 1 {
		t.Errorf("me.json requests = %d, want 1", n)
	}
	if n := s.RequestsTo("/auth/jwt/login.json"); n != 0 {
		t.Errorf("JWT login attempted in gpgauth mode")
	}

	s.ExpireSessions()
	if got, err := resolveOne(t, c, "f/e", "password"); err != nil || got != "v" {
		t.Fatalf("after session expiry: %q, %v", got, err)
	}
	if n := s.RequestsTo("/auth/login.json"); n != 4 {
		t.Errorf("login.json requests after expiry = %d, want 4", n)
	}

	// Logout is a session POST: the emulator answers 403 without a valid
	// CSRF token; the client then fetches the current token and retries.
	s.RotateCSRF()
	if err := c.Logout(context.Background()); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if n := s.RequestsTo("/auth/logout.json"); n != 2 {
		t.Errorf("logout requests = %d, want 2 (403 CSRF, then success)", n)
	}
	if n := s.RequestsTo("/users/csrf-token.json"); n != 1 {
		t.Errorf("csrf-token requests = %d, want 1", n)
	}
}

// TestAutoFallsBackToGPGAuth: without JWT routes, auto mode uses GPGAuth.
func TestAutoFallsBackToGPGAuth(t *testing.T) {
	s := newServer(t)
	s.SetJWT(false)
	add(t, s, passbolttest.Resource{Path: "e", Password: "v"})
	c := newClient(t, s.Config())
	for i := 0; i < 2; i++ {
		if got, err := resolveOne(t, c, "e", "password"); err != nil || got != "v" {
			t.Fatalf("%q, %v", got, err)
		}
	}
	if l, j := s.RequestsTo("/auth/login.json"), s.RequestsTo("/auth/jwt/login.json"); l != 2 || j != 1 {
		t.Errorf("gpgauth login requests %d (want 2), jwt attempts %d (want 1)", l, j)
	}

	// jwt mode does not fall back.
	cfg := s.Config()
	cfg.Auth = passbolt.AuthJWT
	if _, err := newClient(t, cfg).Resolve(context.Background(), []fetch.Ref{ref("e", "password")}); err == nil {
		t.Error("jwt mode without JWT routes: no error")
	}
}

func TestServerFingerprintPin(t *testing.T) {
	s := newServer(t)
	other := newServer(t)
	add(t, s, passbolttest.Resource{Path: "e", Password: "v"})
	cfg := s.Config()
	cfg.ServerFingerprint = other.ServerFingerprint()
	for _, mode := range []string{passbolt.AuthJWT, passbolt.AuthGPGAuth} {
		cfg.Auth = mode
		_, err := newClient(t, cfg).Resolve(context.Background(), []fetch.Ref{ref("e", "password")})
		if err == nil || !strings.Contains(err.Error(), "does not match PASSBOLT_SERVER_FINGERPRINT") {
			t.Errorf("%s: err = %v, want pin mismatch", mode, err)
		}
	}
	if n := s.Requests() - s.RequestsTo("/auth/verify.json"); n != 0 {
		t.Errorf("%d requests besides fetching the server key; want none", n)
	}
	// A pin in another case and with spaces still matches.
	cfg.Auth = passbolt.AuthAuto
	fp := s.ServerFingerprint()
	cfg.ServerFingerprint = strings.ToLower(fp[:4] + " " + fp[4:])
	if got, err := resolveOne(t, newClient(t, cfg), "e", "password"); err != nil || got != "v" {
		t.Errorf("formatted pin: %q, %v", got, err)
	}
}

func TestMFARequired(t *testing.T) {
	s := newServer(t)
	s.SetMFA(true)
	add(t, s, passbolttest.Resource{Path: "e", Password: "v"})
	for _, mode := range []string{passbolt.AuthJWT, passbolt.AuthGPGAuth} {
		cfg := s.Config()
		cfg.Auth = mode
		_, err := newClient(t, cfg).Resolve(context.Background(), []fetch.Ref{ref("e", "password")})
		if !errors.Is(err, passbolt.ErrMFARequired) {
			t.Errorf("%s: err = %v, want ErrMFARequired", mode, err)
		}
	}
}

// TestServerFaults: 5xx and 429 are retried, persistent failures and
// malformed bodies fail the batch.
func TestServerFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault passbolttest.Fault
		ok    bool
	}{
		{"503 once", passbolttest.Fault{Path: "/folders.json", Status: 503, Times: 1}, true},
		{"429 with Retry-After", passbolttest.Fault{Path: "/resources.json", Status: 429, RetryAfter: "0", Times: 2}, true},
		{"500", passbolttest.Fault{Path: "/folders.json", Status: 500}, false},
		{"502 forever", passbolttest.Fault{Path: "/resource-types.json", Status: 502}, false},
		{"malformed", passbolttest.Fault{Path: "/folders.json", Malformed: true}, false},
		{"403", passbolttest.Fault{Path: "/folders.json", Status: 403}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			add(t, s, passbolttest.Resource{Path: "f/e", Password: "v"})
			s.AddFault(tt.fault)
			res, err := newClient(t, s.Config()).Resolve(context.Background(), []fetch.Ref{ref("f/e", "password")})
			if tt.ok {
				if err != nil || res[0].Value != "v" {
					t.Errorf("got %v, %v; want success after retry", res, err)
				}
				return
			}
			if err == nil {
				t.Errorf("got %v; want a batch error", res)
			}
		})
	}
}

func TestNewConfigErrors(t *testing.T) {
	s := newServer(t)
	good := s.Config()
	tests := []struct {
		name   string
		mutate func(*passbolt.Config)
		want   string
	}{
		{"wrong passphrase", func(c *passbolt.Config) { c.Passphrase = "nope" }, "wrong passphrase"},
		{"no passphrase", func(c *passbolt.Config) { c.Passphrase = "" }, "passphrase"},
		{"garbage key", func(c *passbolt.Config) { c.PrivateKey = "garbage" }, "not a valid"},
		{"empty URL", func(c *passbolt.Config) { c.URL = "" }, "PASSBOLT_URL"},
		{"remote http", func(c *passbolt.Config) { c.URL = "http://passbolt.example.com" }, "https"},
		{"bad auth", func(c *passbolt.Config) { c.Auth = "kerberos" }, "PASSBOLT_AUTH"},
		{"jwt without user", func(c *passbolt.Config) { c.Auth, c.UserID = "jwt", "" }, "PASSBOLT_USER_ID"},
		{"bad user id", func(c *passbolt.Config) { c.UserID = "ada" }, "not a UUID"},
		// Every problem at once, not one per run.
		{"three problems", func(c *passbolt.Config) { c.URL, c.Auth, c.Passphrase = "", "kerberos", "nope" }, "PASSBOLT_URL is empty\npassbolt: PASSBOLT_AUTH must be jwt, gpgauth or auto, not \"kerberos\"\npassbolt: PASSBOLT_PRIVATE_KEY: pgp: wrong passphrase"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mutate(&cfg)
			_, err := passbolt.New(cfg, fastRetries)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want mention of %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), passbolttest.Passphrase) {
				t.Error("error contains the passphrase")
			}
		})
	}
	if s.Requests() != 0 {
		t.Errorf("New made %d requests", s.Requests())
	}
}

// TestNoSecretInErrors seeds a canary in every secret place and checks
// that no error of any failure path contains it.
func TestNoSecretInErrors(t *testing.T) {
	const canary = "CANARY-7f3a9c-SECRET"
	s := newServer(t)
	custom := []passbolttest.Custom{{Label: "token", Value: canary}}
	add(t, s, passbolttest.Resource{Path: "f/e", Password: canary, Description: canary, SecretDescription: true, Custom: custom})
	add(t, s, passbolttest.Resource{Path: "f/dup", Password: canary})
	add(t, s, passbolttest.Resource{Path: "f/dup", Password: canary})
	add(t, s, passbolttest.Resource{Path: "f/s", Type: "password-string", Password: canary})
	add(t, s, passbolttest.Resource{Path: "f/t", Type: "v5-totp-standalone", TOTP: totpSecret})
	add(t, s, passbolttest.Resource{Path: "f/pin", Type: "v5-pin-code", PinCode: "123456"})

	var errs []error
	collect := func(c *passbolt.Client, refs ...fetch.Ref) {
		res, err := c.Resolve(context.Background(), refs)
		errs = append(errs, err)
		for _, r := range res {
			errs = append(errs, r.Err)
		}
	}
	c := newClient(t, s.Config())
	collect(c, ref("f/e", "nope"), ref("f/e", "username"), ref("f/dup", "password"), ref("f/missing", "password"),
		ref("g/e", "password"), ref("f/s", "totp"), ref("f/t", "password"), ref("f/pin", "password"), ref("", "password"),
		ref("id:bad", "password"), ref("f/e", "token"))
	for _, f := range []passbolttest.Fault{
		{Path: "/folders.json", Malformed: true},
		{Path: "/folders.json", Status: 500},
		{Path: "/folders.json", Status: 401},
		{Path: "/auth/jwt/login.json", Status: 400},
		{Path: "/auth/verify.json", Status: 500},
	} {
		s.AddFault(f)
		collect(newClient(t, s.Config()), ref("f/e", "password"))
		s.ClearFaults()
	}
	s.SetMFA(true)
	collect(newClient(t, s.Config()), ref("f/e", "password"))

	n := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		n++
		if strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), "123456") {
			t.Errorf("error leaks a secret: %v", err)
		}
		if n := strings.Count(err.Error(), "passbolt: "); n != 1 {
			t.Errorf("error has %d \"passbolt: \" prefixes, want 1: %v", n, err)
		}
	}
	if n < 15 {
		t.Errorf("only %d errors produced; the failure cases did not all fail", n)
	}
}

// TestIDFetchedOncePerRun: several fields of one resource referenced by
// id cost one resource request, not one per field.
func TestIDFetchedOncePerRun(t *testing.T) {
	s := newServer(t)
	id := add(t, s, passbolttest.Resource{Path: "infra/db", Username: "app", Password: "pw-db-secret"})
	c := newClient(t, s.Config())
	res, err := c.Resolve(context.Background(), []fetch.Ref{ref("id:"+id, "password"), ref("id:"+id, "username"), ref("id:"+id, "name")})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Value != "pw-db-secret" || res[1].Value != "app" || res[2].Value != "db" {
		t.Errorf("got %+v", res)
	}
	if n := s.RequestsTo("/resources/" + id + ".json"); n != 1 {
		t.Errorf("%d requests for the resource, want 1", n)
	}
}

// TestIDsListedTogether: resources named by several distinct ids are read
// in one listing, and an unknown id among them is "not found".
func TestIDsListedTogether(t *testing.T) {
	s := newServer(t)
	var refs []fetch.Ref
	for _, name := range []string{"a", "b", "c"} {
		id := add(t, s, passbolttest.Resource{Path: "infra/" + name, Password: "pw-" + name})
		refs = append(refs, ref("id:"+id, "password"))
	}
	refs = append(refs, ref("id:00000000-0000-4000-8000-000000000000", "password"))
	c := newClient(t, s.Config())
	s.ResetCounters()
	res, err := c.Resolve(context.Background(), refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"pw-a", "pw-b", "pw-c"} {
		if res[i].Value != want {
			t.Errorf("ref %d = %+v, want %q", i, res[i], want)
		}
	}
	if !errors.Is(res[3].Err, fetch.ErrNotFound) {
		t.Errorf("unknown id: %v", res[3].Err)
	}
	// One listing for the ids and one secret batch (plus login requests);
	// no per-resource GET.
	if n := s.RequestsTo("/resources.json"); n != 2 {
		t.Errorf("%d /resources.json requests, want 2 (ids, secrets)", n)
	}
	for _, r := range refs[:3] {
		id, _ := r.ID()
		if n := s.RequestsTo("/resources/" + id + ".json"); n != 0 {
			t.Errorf("resource %s fetched on its own %d times", id, n)
		}
	}
}
