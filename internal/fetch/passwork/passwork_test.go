package passwork_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/injector-dev/injector/internal/crypto/totp"
	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passwork"
	"github.com/injector-dev/injector/internal/fetch/passwork/passworktest"
)

// canary is part of every seeded secret; no error may ever contain it.
const canary = "CANARY-7f3a9c"

const totpSecret = "JBSWY3DPEHPK3PXP"

var certBytes = []byte{0x41, 0xff, 0x00, 0x80, 'C', 'A', 'N', 'A', 'R', 'Y'}

func seedEntries() []fetchtest.Entry {
	return []fetchtest.Entry{
		{
			Path: "Prod/DB/postgres",
			Fields: map[string]string{
				"password": canary + "-pg", "login": "app", "url": "https://db.example",
				"description": "primary", "tags": "db,prod",
			},
			Custom:      map[string]string{"API Key": canary + "-api", "port": "5432"},
			TOTP:        totpSecret,
			Attachments: map[string][]byte{"cert.pem": certBytes},
		},
		{Path: "Prod/web", Fields: map[string]string{"password": canary + "-web"}},
		{Path: "Prod/DB/Replica/pg2", Fields: map[string]string{"password": canary + "-pg2"}},
		{Path: "Prod/DB/dup", Fields: map[string]string{"password": canary + "-d1"}},
		{Path: "Prod/DB/dup", Fields: map[string]string{"password": canary + "-d2"}},
		{
			Path:        "Plain/Team/svc",
			Fields:      map[string]string{"password": canary + "-plain", "login": "svc", "tags": "a,b"},
			Custom:      map[string]string{"token": canary + "-tok"},
			TOTP:        totpSecret,
			Attachments: map[string][]byte{"key.bin": {0xde, 0xad, 0xbe, 0xef}},
		},
		{Path: "Org/shared", Fields: map[string]string{"password": canary + "-org"}},
	}
}

// fastRetry makes retries cost milliseconds.
var fastRetry = fetch.Options{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, MaxRetryAfter: time.Second}

func newServer(t testing.TB, opts ...passworktest.Option) *passworktest.Server {
	t.Helper()
	opts = append([]passworktest.Option{passworktest.WithPlainVaults("Plain"), passworktest.WithDomainVaults("Org")}, opts...)
	s := passworktest.NewServer(opts...)
	t.Cleanup(s.Close)
	if err := s.Seed(seedEntries()); err != nil {
		t.Fatal(err)
	}
	return s
}

func newClient(t testing.TB, cfg passwork.Config) *passwork.Client {
	t.Helper()
	c, err := passwork.New(cfg, fastRetry)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ref(path, field string) fetch.Ref {
	return fetch.Ref{Provider: "passwork", Path: path, Field: field}
}

// generations runs f against both API generations of one server.
func generations(s *passworktest.Server) map[string]passwork.Config {
	return map[string]passwork.Config{"v1": s.Config(), "v4": s.ConfigV4()}
}

func TestResolveFields(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		path, field, want string
	}{
		{"Prod/DB/postgres", "password", canary + "-pg"},
		{"Prod/DB/postgres", "", canary + "-pg"},
		{"Prod/DB/postgres", "login", "app"},
		{"Prod/DB/postgres", "url", "https://db.example"},
		{"Prod/DB/postgres", "urls", "https://db.example"},
		{"Prod/DB/postgres", "name", "postgres"},
		{"Prod/DB/postgres", "description", "primary"},
		{"Prod/DB/postgres", "tags", "db,prod"},
		{"Prod/DB/postgres", "API Key", canary + "-api"},
		{"Prod/DB/postgres", "api key", canary + "-api"}, // case-insensitive, unique
		{"Prod/DB/postgres", "port", "5432"},
		{"Prod/DB/postgres", "attachment:cert.pem", string(certBytes)},
		{"/Prod/web/", "password", canary + "-web"},
		{"Prod/DB/Replica/pg2", "password", canary + "-pg2"},
		{"Org/shared", "password", canary + "-org"}, // v4: domain vault
		{"Plain/Team/svc", "password", canary + "-plain"},
		{"Plain/Team/svc", "token", canary + "-tok"},
		{"Plain/Team/svc", "tags", "a,b"},
		{"Plain/Team/svc", "attachment:key.bin", "\xde\xad\xbe\xef"},
	}
	for gen, cfg := range generations(s) {
		t.Run(gen, func(t *testing.T) {
			c := newClient(t, cfg)
			refs := []fetch.Ref{ref("id:"+s.ItemIDs("Prod/web")[0], "password")}
			for _, tt := range tests {
				refs = append(refs, ref(tt.path, tt.field))
			}
			res, err := c.Resolve(context.Background(), refs)
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Err != nil || res[0].Value != canary+"-web" {
				t.Errorf("id ref: %q, %v", res[0].Value, res[0].Err)
			}
			for i, tt := range tests {
				r := res[i+1]
				if r.Err != nil || r.Value != tt.want {
					t.Errorf("%s %q: got %q, %v; want %q", tt.path, tt.field, r.Value, r.Err, tt.want)
				}
			}
		})
	}
}

func TestBase64EnvelopeAndConcurrency(t *testing.T) {
	s := newServer(t, passworktest.WithAlwaysBase64())
	c := newClient(t, s.Config())
	done := make(chan error)
	for i := 0; i < 4; i++ {
		go func() {
			res, err := c.Resolve(context.Background(), []fetch.Ref{ref("Prod/DB/postgres", "API Key"), ref("Plain/Team/svc", "")})
			if err == nil && (res[0].Value != canary+"-api" || res[1].Value != canary+"-plain") {
				err = fmt.Errorf("wrong values: %+v", res)
			}
			done <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	// Errors arrive in the envelope too.
	_, err := newClient(t, passwork.Config{URL: s.URL, Token: "bogus"}).Resolve(context.Background(), []fetch.Ref{ref("Prod/web", "")})
	if err == nil || !strings.Contains(err.Error(), "invalidToken") {
		t.Errorf("enveloped error not decoded: %v", err)
	}
}

func TestTOTP(t *testing.T) {
	s := newServer(t)
	for gen, cfg := range generations(s) {
		for _, path := range []string{"Prod/DB/postgres", "Plain/Team/svc"} {
			before, _ := totp.Generate(totpSecret, time.Now())
			res, err := newClient(t, cfg).Resolve(context.Background(), []fetch.Ref{ref(path, "totp"), ref(path, passworktest.TOTPFieldName)})
			after, _ := totp.Generate(totpSecret, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Err != nil || (res[0].Value != before && res[0].Value != after) {
				t.Errorf("%s %s totp = %q, %v; want %q", gen, path, res[0].Value, res[0].Err, before)
			}
			if res[1].Value != totpSecret { // by name: the stored secret itself
				t.Errorf("%s %s TOTP field by name = %q", gen, path, res[1].Value)
			}
		}
	}
}

func TestOAEPAndMasterPassword(t *testing.T) {
	s := newServer(t, passworktest.WithOAEP())
	for gen, cfg := range generations(s) {
		cfg.MasterKey, cfg.MasterPassword = "", s.MasterPassword()
		res, err := newClient(t, cfg).Resolve(context.Background(), []fetch.Ref{ref("Prod/DB/postgres", "password")})
		if err != nil || res[0].Value != canary+"-pg" {
			t.Errorf("%s: %v %v", gen, err, res)
		}
	}
	if n := s.RequestsTo("master-key/options") + s.RequestsTo("get-master-key-options"); n != 2 {
		t.Errorf("master key options fetched %d times, want 2 (once per generation)", n)
	}
}

// TestLegacySupportMD5: legacySupport makes the master hash header MD5;
// attachments carry SHA-256 hashes as the official connectors write them
// whatever the server reports, and MD5 ones (from old clients) are checked
// as MD5 on the legacy API.
func TestLegacySupportMD5(t *testing.T) {
	tests := []struct {
		name string
		opts []passworktest.Option
		gens []string
	}{
		{"legacySupport", []passworktest.Option{passworktest.WithLegacySupport()}, []string{"v1", "v4"}},
		{"legacySupport, MD5 attachments", []passworktest.Option{passworktest.WithLegacySupport(), passworktest.WithMD5AttachmentHashes()}, []string{"v4"}},
		{"MD5 attachments", []passworktest.Option{passworktest.WithMD5AttachmentHashes()}, []string{"v4"}},
	}
	for _, tt := range tests {
		s := newServer(t, tt.opts...)
		for _, gen := range tt.gens {
			res, err := newClient(t, generations(s)[gen]).Resolve(context.Background(), []fetch.Ref{
				ref("Prod/DB/postgres", "password"), ref("Prod/DB/postgres", "attachment:cert.pem"),
			})
			if err != nil || res[0].Value != canary+"-pg" || res[1].Err != nil || res[1].Value != string(certBytes) {
				t.Errorf("%s, %s: %v %+v", tt.name, gen, err, res)
			}
		}
	}
}

func TestAttachmentTampered(t *testing.T) {
	s := newServer(t)
	if err := s.TamperAttachmentHash("Prod/DB/postgres", "cert.pem"); err != nil {
		t.Fatal(err)
	}
	for gen, cfg := range generations(s) {
		res, err := newClient(t, cfg).Resolve(context.Background(), []fetch.Ref{ref("Prod/DB/postgres", "attachment:cert.pem")})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "integrity check failed") || res[0].Value != "" {
			t.Errorf("%s: tampered attachment: %q, %v", gen, res[0].Value, res[0].Err)
		}
	}
}

func TestNotFoundAndAmbiguous(t *testing.T) {
	s := newServer(t)
	dups := s.ItemIDs("Prod/DB/dup")
	tests := []struct {
		name        string
		ref         fetch.Ref
		kind        string
		missing     string
		nearby      []string
		notInNearby string
	}{
		{"vault", ref("Stage/DB/postgres", "password"), "vault", "Stage", []string{"Prod", "Plain", "Org"}, ""},
		{"folder", ref("Prod/Cache/redis", "password"), "folder", "Cache", []string{"DB"}, ""},
		{"subfolder", ref("Prod/DB/Nope/x", "password"), "folder", "Nope", []string{"Replica"}, ""},
		{"entry", ref("Prod/DB/mysql", "password"), "entry", "mysql", []string{"postgres", "dup"}, "pg2"},
		{"field", ref("Prod/DB/postgres", "secret"), "field", "secret", []string{"API Key", "port", "totp", "attachment:cert.pem"}, ""},
		{"attachment", ref("Prod/DB/postgres", "attachment:x.pem"), "attachment", "x.pem", []string{"cert.pem"}, ""},
		{"id", ref("id:000000000000000000000000", "password"), "entry", "id:000000000000000000000000", nil, ""},
	}
	for gen, cfg := range generations(s) {
		c := newClient(t, cfg)
		for _, tt := range tests {
			t.Run(gen+"/"+tt.name, func(t *testing.T) {
				res, err := c.Resolve(context.Background(), []fetch.Ref{tt.ref, ref("Prod/web", "password")})
				if err != nil {
					t.Fatal(err)
				}
				if res[1].Err != nil || res[1].Value != canary+"-web" {
					t.Errorf("unrelated ref failed: %v", res[1].Err)
				}
				var nf *fetch.NotFoundError
				if !errors.As(res[0].Err, &nf) {
					t.Fatalf("error %v is not a NotFoundError", res[0].Err)
				}
				if nf.Kind != tt.kind || nf.Name != tt.missing {
					t.Errorf("got %s %q, want %s %q (%v)", nf.Kind, nf.Name, tt.kind, tt.missing, res[0].Err)
				}
				for _, n := range tt.nearby {
					if !slices.Contains(nf.Nearby, n) {
						t.Errorf("nearby %v lacks %q", nf.Nearby, n)
					}
				}
				if tt.notInNearby != "" && slices.Contains(nf.Nearby, tt.notInNearby) {
					t.Errorf("nearby %v lists %q from another level", nf.Nearby, tt.notInNearby)
				}
			})
		}
		t.Run(gen+"/ambiguous", func(t *testing.T) {
			res, err := c.Resolve(context.Background(), []fetch.Ref{ref("Prod/DB/dup", "password")})
			if err != nil {
				t.Fatal(err)
			}
			var ae *fetch.AmbiguousError
			if !errors.As(res[0].Err, &ae) || len(ae.Candidates) != 2 {
				t.Fatalf("got %v, want AmbiguousError", res[0].Err)
			}
			for _, id := range dups {
				if !strings.Contains(res[0].Err.Error(), id) {
					t.Errorf("error %q lacks candidate id %s", res[0].Err, id)
				}
			}
		})
	}
}

func TestWrongMasterKey(t *testing.T) {
	for _, serverCheck := range []bool{true, false} {
		var opts []passworktest.Option
		if !serverCheck {
			opts = append(opts, passworktest.WithoutMasterKeyHashCheck())
		}
		s := newServer(t, opts...)
		for gen, cfg := range generations(s) {
			cfg.MasterKey = "d3JvbmcgbWFzdGVyIGtleQ=="
			_, err := newClient(t, cfg).Resolve(context.Background(), []fetch.Ref{ref("Prod/DB/postgres", "password")})
			if err == nil || !strings.Contains(err.Error(), "invalid master key") {
				t.Errorf("%s serverCheck=%v: got %v, want invalid master key", gen, serverCheck, err)
			}
		}
	}
}

// A token the server turns down is reported with the setting to fix.
func TestRejectedTokenNamesTheSetting(t *testing.T) {
	ctx := context.Background()
	refs := []fetch.Ref{ref("Prod/DB/postgres", "password")}
	s := newServer(t)
	bad := s.Config()
	bad.Token = "not-the-token"
	_, err := newClient(t, bad).Resolve(ctx, refs)
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "check PASSWORK_TOKEN") {
		t.Errorf("bad access token: %v", err)
	}

	// An expired access token with a refresh token the server refuses
	// (before 7.6, the refresh token is the only way to a new token).
	s = newServer(t, passworktest.WithoutRefreshAccessToken())
	cfg := s.Config()
	cfg.RefreshToken = "not-the-refresh-token"
	c := newClient(t, cfg)
	s.ExpireAccessTokens()
	_, err = c.Resolve(ctx, refs)
	if err == nil || !strings.Contains(err.Error(), "PASSWORK_REFRESH_TOKEN") {
		t.Errorf("bad refresh token: %v", err)
	}
}

func TestTokenRefresh(t *testing.T) {
	ctx := context.Background()
	refs := []fetch.Ref{ref("Prod/DB/postgres", "password")}
	t.Run("between calls, refresh-access-token", func(t *testing.T) {
		s := newServer(t)
		c := newClient(t, s.Config())
		if _, err := c.Resolve(ctx, refs); err != nil {
			t.Fatal(err)
		}
		s.ExpireAccessTokens()
		res, err := c.Resolve(ctx, refs)
		if err != nil || res[0].Value != canary+"-pg" {
			t.Fatalf("after expiry: %v %v", err, res)
		}
		if n := s.RequestsTo("/sessions/refresh-access-token"); n != 1 {
			t.Errorf("refresh-access-token called %d times", n)
		}
		if n := s.RequestsTo("/sessions/refresh") - s.RequestsTo("/sessions/refresh-access-token"); n != 0 {
			t.Errorf("full refresh called %d times, want 0", n)
		}
	})
	t.Run("within one call", func(t *testing.T) {
		s := newServer(t)
		c := newClient(t, s.Config())
		// The vault listing succeeds, then the token "expires" before the search.
		s.AddFault(passworktest.Fault{Path: "/api/v1/items/search", Status: 401, Times: 1,
			Body: `{"errors":[{"code":"accessTokenExpired","message":"Access token expired"}]}`})
		res, err := c.Resolve(ctx, refs)
		if err != nil || res[0].Value != canary+"-pg" {
			t.Fatalf("%v %v", err, res)
		}
		if s.RequestsTo("/sessions/refresh") != 1 || s.RequestsTo("/api/v1/items/search") != 2 {
			t.Errorf("refresh %d, search %d", s.RequestsTo("/sessions/refresh"), s.RequestsTo("/api/v1/items/search"))
		}
	})
	t.Run("full rotation persisted to state file", func(t *testing.T) {
		s := newServer(t, passworktest.WithoutRefreshAccessToken())
		cfg := s.Config()
		cfg.TokenStateFile = filepath.Join(t.TempDir(), "tokens.json")
		c := newClient(t, cfg)
		s.ExpireAccessTokens()
		if res, err := c.Resolve(ctx, refs); err != nil || res[0].Err != nil {
			t.Fatalf("%v %v", err, res)
		}
		fi, err := os.Stat(cfg.TokenStateFile)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("state file mode %v", fi.Mode().Perm())
		}
		// The configured pair is now invalid; a new process must use the file.
		if res, err := newClient(t, cfg).Resolve(ctx, refs); err != nil || res[0].Err != nil {
			t.Fatalf("second process with state file: %v %v", err, res)
		}
		noState := s.Config()
		if _, err := newClient(t, noState).Resolve(ctx, refs); err == nil {
			t.Error("the rotated-away pair still works; the emulator does not invalidate it")
		}
	})
	t.Run("no refresh token", func(t *testing.T) {
		s := newServer(t)
		cfg := s.Config()
		cfg.RefreshToken = ""
		s.ExpireAccessTokens()
		_, err := newClient(t, cfg).Resolve(ctx, refs)
		if err == nil || !strings.Contains(err.Error(), "PASSWORK_REFRESH_TOKEN") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("v4 session expiry", func(t *testing.T) {
		s := newServer(t)
		c := newClient(t, s.ConfigV4())
		if _, err := c.Resolve(ctx, refs); err != nil {
			t.Fatal(err)
		}
		s.ExpireSessions()
		res, err := c.Resolve(ctx, append(refs, ref("Prod/web", "password"), ref("Plain/Team/svc", "login")))
		if err != nil || res[0].Value != canary+"-pg" || res[1].Value != canary+"-web" || res[2].Value != "svc" {
			t.Fatalf("%v %+v", err, res)
		}
		if n := s.RequestsTo("/api/v4/auth/refreshToken"); n != 1 {
			t.Errorf("v4 refresh called %d times", n)
		}
	})
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	refs := []fetch.Ref{ref("Prod/DB/postgres", "password"), ref("Plain/Team/svc", "attachment:key.bin")}
	tests := []struct {
		name     string
		fault    passworktest.Fault
		wantErr  string // "" = must succeed
		attempts int    // requests to fault.Path, 0 = unchecked
	}{
		{"429 retry-after", passworktest.Fault{Path: "/api/v1/vaults", Status: 429, RetryAfter: "0", Times: 2}, "", 3},
		{"429 retry-after too long", passworktest.Fault{Path: "/api/v1/vaults", Status: 429, RetryAfter: "120", Times: 5}, "retry after 2m0s", 1},
		{"503 once", passworktest.Fault{Path: "/api/v1/batch", Status: 503, Times: 1}, "", 3}, // 2 tries + attachment batch
		{"503 forever", passworktest.Fault{Path: "/api/v1/batch", Status: 503}, "HTTP 503", 3},
		{"500", passworktest.Fault{Path: "/api/v1/items/search", Status: 500}, "HTTP 500", 1},
		{"403 keys", passworktest.Fault{Path: "/api/v1/users/keys", Status: 403}, "HTTP 403", 1},
		{"401", passworktest.Fault{Path: "/api/v1/vaults", Status: 401}, "HTTP 401", 1},
		{"truncated envelope", passworktest.Fault{Path: "/api/v1/vaults", Body: `{"format":"base64","content":"eyJpdGVtcyI6W3siaWQi`}, "malformed response", 1},
		{"bad base64 in envelope", passworktest.Fault{Path: "/api/v1/items/search", Body: `{"format":"base64","content":"!!!"}`}, "malformed response", 1},
		{"html", passworktest.Fault{Path: "/api/v1/batch", Body: `<html>gateway</html>`}, "malformed response", 1},
		{"wrong shape", passworktest.Fault{Path: "/api/v1/batch", Body: `{"responses":"nope"}`}, "malformed response", 1},
		{"v4 500", passworktest.Fault{Path: "/api/v4/passwords/search", Status: 500}, "HTTP 500", 1},
		{"v4 truncated", passworktest.Fault{Path: "/api/v4/vaults/list", Body: `{"status":"success","data":[{"id"`}, "malformed response", 1},
		{"v4 429", passworktest.Fault{Path: "/api/v4/passwords/", Status: 429, RetryAfter: "0", Times: 1}, "", 0},
		{"v4 login 401", passworktest.Fault{Path: "/api/v4/auth/login", Status: 401}, "login with PASSWORK_API_KEY", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			cfg := s.Config()
			if strings.Contains(tt.fault.Path, "/api/v4/") {
				cfg = s.ConfigV4()
			}
			s.AddFault(tt.fault)
			res, err := newClient(t, cfg).Resolve(ctx, refs)
			if tt.wantErr == "" {
				if err != nil || res[0].Value != canary+"-pg" || res[1].Value != "\xde\xad\xbe\xef" {
					t.Fatalf("want success after retries, got %v %+v", err, res)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want error containing %q", err, tt.wantErr)
			}
			if tt.attempts > 0 {
				if n := s.RequestsTo(tt.fault.Path); n != tt.attempts {
					t.Errorf("%d requests to %s, want %d", n, tt.fault.Path, tt.attempts)
				}
			}
		})
	}
}

func TestSlowResponseHonoursContext(t *testing.T) {
	s := newServer(t)
	s.AddFault(passworktest.Fault{Path: "/api/v1/vaults", Delay: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := newClient(t, s.Config()).Resolve(ctx, []fetch.Ref{ref("Prod/web", "")}); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

// seedMany seeds n entries spread over three vaults and two folder levels.
func seedMany(t testing.TB, s *passworktest.Server, n int) []fetch.Ref {
	var entries []fetchtest.Entry
	var refs []fetch.Ref
	for i := range n {
		p := fmt.Sprintf("V%d/F%d/S%d/e%03d", i%3, i%4, i%2, i)
		entries = append(entries, fetchtest.Entry{Path: p, Fields: map[string]string{"password": fmt.Sprintf("pw-%d", i)}})
		refs = append(refs, ref(p, "password"))
	}
	if err := s.Seed(entries); err != nil {
		t.Fatal(err)
	}
	return refs
}

func TestRequestBudget(t *testing.T) {
	ctx := context.Background()
	s := passworktest.NewServer()
	defer s.Close()
	refs := seedMany(t, s, 100)
	c := newClient(t, s.Config())
	res, err := c.Resolve(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Value != fmt.Sprintf("pw-%d", i) {
			t.Fatalf("ref %d: %q %v", i, r.Value, r.Err)
		}
	}
	auth := s.RequestsTo("/users/keys") + s.RequestsTo("/master-key/options")
	after := s.Requests() - auth
	t.Logf("v1: 100 secrets in 3 vaults: %d requests after auth (+%d auth)", after, auth)
	if after > 6 {
		t.Errorf("%d requests after auth, want ≤ 6", after)
	}

	// A refresh cycle: no key fetch (hence no RSA/PBKDF2 either), vaults cached.
	s.ResetCounters()
	if _, err := c.Resolve(ctx, append(refs, refs...)); err != nil {
		t.Fatal(err)
	}
	if n := s.RequestsTo("/users/keys"); n != 0 {
		t.Errorf("second Resolve fetched users/keys %d times", n)
	}
	t.Logf("v1: second Resolve of 200 refs (100 distinct): %d requests", s.Requests())
	if s.Requests() > 5 {
		t.Errorf("second Resolve: %d requests, want ≤ 5 (search + 4 batches)", s.Requests())
	}

	// v4 has no batch endpoint: report the cost.
	s.ResetCounters()
	c4 := newClient(t, s.ConfigV4())
	if _, err := c4.Resolve(ctx, refs); err != nil {
		t.Fatal(err)
	}
	t.Logf("v4: 100 secrets in 3 vaults: %d requests including login and version", s.Requests())
	if want := 2 + 2 + 100 + 3; s.Requests() != want {
		t.Errorf("v4: %d requests, want %d (login, version, vaults, search, 100 GETs, 3 vault GETs)", s.Requests(), want)
	}
	// Vaults, with their crypted passwords, are cached like the v1 keys.
	s.ResetCounters()
	if _, err := c4.Resolve(ctx, refs); err != nil {
		t.Fatal(err)
	}
	if n := s.RequestsTo("/api/v4/vaults/"); n != 0 || s.Requests() != 101 {
		t.Errorf("v4 second Resolve: %d requests, %d for vaults; want 101 (search, 100 GETs), none for vaults", s.Requests(), n)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		cfg  passwork.Config
		want string
	}{
		{passwork.Config{}, "PASSWORK_URL is empty"},
		{passwork.Config{URL: "ftp://x"}, "must use https"},
		{passwork.Config{URL: "http://pw.example.com", Token: "t"}, "http is allowed for loopback only"},
		{passwork.Config{URL: "https://x"}, "PASSWORK_TOKEN is required"},
		{passwork.Config{URL: "https://x/api/v4"}, "PASSWORK_API_KEY is required"},
		{passwork.Config{URL: "https://x", API: "v9", Token: "t"}, "PASSWORK_API must be"},
		{passwork.Config{URL: "https://x", Token: "t", MasterKey: "a", MasterPassword: "b"}, "only one of"},
		{passwork.Config{URL: "https://a", Host: "https://b", Token: "t"}, "PASSWORK_URL and PASSWORK_HOST"},
		{passwork.Config{Host: "ftp://x", Token: "t"}, "PASSWORK_HOST \"ftp://x\" must use https"},
	}
	for _, tt := range tests {
		if _, err := passwork.New(tt.cfg, fetch.Options{}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
	if _, err := passwork.New(passwork.Config{URL: "https://x/api/v4/", APIKey: "k"}, fetch.Options{}); err != nil {
		t.Errorf("v4 auto-detect: %v", err)
	}
	// Every problem at once, and a master key that is not base64 is
	// caught here, before any request, without showing the key.
	_, err := passwork.New(passwork.Config{URL: "http://pw.example.com", MasterKey: canary + "!not-base64"}, fetch.Options{})
	for _, want := range []string{"http is allowed for loopback only", "PASSWORK_TOKEN is required", "PASSWORK_MASTER_KEY is not base64"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New with three problems = %v; want %q among them", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), canary) {
		t.Errorf("error shows the master key: %v", err)
	}
	// passwork-cli's PASSWORK_HOST stands for PASSWORK_URL, alone or agreeing.
	for _, cfg := range []passwork.Config{{Host: "https://x", Token: "t"}, {URL: "https://x/", Host: "https://x", Token: "t"}} {
		if _, err := passwork.New(cfg, fetch.Options{}); err != nil || !cfg.Configured() {
			t.Errorf("New(%+v) = %v", cfg, err)
		}
	}
	if (passwork.Config{Token: "t"}).Configured() {
		t.Error("a config without URL or host says it is configured")
	}
}

// TestCanaryNeverInErrors triggers every failure we can and checks that no
// error text contains a seeded secret.
func TestCanaryNeverInErrors(t *testing.T) {
	ctx := context.Background()
	var errs []error
	collect := func(res []fetch.Result, err error) {
		if err != nil {
			errs = append(errs, err)
		}
		for _, r := range res {
			if r.Err != nil {
				errs = append(errs, r.Err)
			}
		}
	}
	badRefs := []fetch.Ref{
		ref("Nope/x", ""), ref("Prod/Nope/x", ""), ref("Prod/DB/nope", ""), ref("Prod/DB/postgres", "nope"),
		ref("Prod/DB/postgres", "attachment:nope"), ref("Prod/DB/dup", ""), ref("id:nope", ""), ref("x", ""),
		ref("Plain/Team/svc", "nope"), ref("Prod/DB/postgres", "API"),
	}
	faults := []passworktest.Fault{
		{}, {Path: "/api/v", Status: 500}, {Path: "/batch", Body: `{"format":"base64","content":"eyJyZXNwb25zZXMiOlt7InN0YXR1c0NvZGUiOjIwMCwiYm9keSI6`},
		{Path: "/users/keys", Status: 403}, {Path: "/api/v", Status: 429, RetryAfter: "999"},
		{Path: "/passwords/", Status: 404}, {Path: "/batch", Body: canary}, // a body that echoes a secret
	}
	for _, f := range faults {
		for _, check := range []bool{true, false} {
			var opts []passworktest.Option
			if !check {
				opts = append(opts, passworktest.WithoutMasterKeyHashCheck())
			}
			s := newServer(t, opts...)
			if err := s.TamperAttachmentHash("Prod/DB/postgres", "cert.pem"); err != nil {
				t.Fatal(err)
			}
			s.AddFault(f)
			for _, cfg := range generations(s) {
				collect(newClient(t, cfg).Resolve(ctx, append(badRefs, ref("Prod/DB/postgres", "attachment:cert.pem"))))
				wrong := cfg
				wrong.MasterKey = base64.StdEncoding.EncodeToString([]byte(canary + "-masterkey"))
				collect(newClient(t, wrong).Resolve(ctx, badRefs))
				wrongPW := cfg
				wrongPW.MasterKey, wrongPW.MasterPassword = "", canary+"-masterpw"
				collect(newClient(t, wrongPW).Resolve(ctx, badRefs))
				noKey := cfg
				noKey.MasterKey = ""
				collect(newClient(t, noKey).Resolve(ctx, badRefs[:4]))
				badTok := cfg
				badTok.Token, badTok.APIKey = canary+"-token", canary+"-apikey"
				collect(newClient(t, badTok).Resolve(ctx, badRefs[:1]))
			}
		}
	}
	if len(errs) < 50 {
		t.Fatalf("only %d errors collected; the scenarios are not failing", len(errs))
	}
	for _, err := range errs {
		if strings.Contains(err.Error(), canary) {
			t.Errorf("error leaks a secret: %v", err)
		}
	}
}

func BenchmarkResolve100(b *testing.B) {
	s := passworktest.NewServer()
	defer s.Close()
	refs := seedMany(b, s, 100)
	c := newClient(b, s.Config())
	ctx := context.Background()
	if _, err := c.Resolve(ctx, refs); err != nil { // warm: auth, keys
		b.Fatal(err)
	}
	s.ResetCounters()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Resolve(ctx, refs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.Requests())/float64(b.N), "requests/op")
}

// A failed refresh-access-token may only fall back to /sessions/refresh
// when the endpoint does not exist: the full rotation invalidates the pair
// for every other process sharing it.
func TestRefreshAccessTokenFailureKeepsPair(t *testing.T) {
	ctx := context.Background()
	refs := []fetch.Ref{ref("Prod/DB/postgres", "password")}
	tests := []struct {
		name         string
		fault        passworktest.Fault
		wantFallback bool
	}{
		{"503", passworktest.Fault{Status: 503}, false},
		{"429", passworktest.Fault{Status: 429, RetryAfter: "0"}, false},
		{"500", passworktest.Fault{Status: 500}, false},
		{"invalid token", passworktest.Fault{Status: 401, Body: `{"errors":[{"code":"invalidToken","message":"Invalid access token"}]}`}, false},
		{"404", passworktest.Fault{Status: 404}, true},
		{"405", passworktest.Fault{Status: 405}, true},
		{"unsupported session", passworktest.Fault{Status: 400, Body: `{"errors":[{"code":"sessionTypeNotSupported","message":"Not supported for this session"}]}`}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			c := newClient(t, s.Config())
			if _, err := c.Resolve(ctx, refs); err != nil {
				t.Fatal(err)
			}
			s.ExpireAccessTokens()
			tt.fault.Path = "/sessions/refresh-access-token"
			s.AddFault(tt.fault)
			res, err := c.Resolve(ctx, refs)
			full := s.RequestsTo("/sessions/refresh") - s.RequestsTo("/sessions/refresh-access-token")
			if tt.wantFallback {
				if err != nil || res[0].Value != canary+"-pg" {
					t.Fatalf("fallback: %v %v", err, res)
				}
				if full != 1 {
					t.Errorf("full refresh called %d times, want 1", full)
				}
				return
			}
			if err == nil {
				t.Fatal("Resolve succeeded despite the refresh failure")
			}
			if full != 0 {
				t.Errorf("full refresh called %d times after a transient failure", full)
			}
			// Once the server recovers, the same client refreshes and resolves.
			s.ClearFaults()
			if res, err := c.Resolve(ctx, refs); err != nil || res[0].Value != canary+"-pg" {
				t.Errorf("after recovery: %v %v", err, res)
			}
		})
	}
	t.Run("WithoutRefreshAccessToken falls back", func(t *testing.T) {
		s := newServer(t, passworktest.WithoutRefreshAccessToken())
		c := newClient(t, s.Config())
		s.ExpireAccessTokens()
		if res, err := c.Resolve(ctx, refs); err != nil || res[0].Value != canary+"-pg" {
			t.Fatalf("%v %v", err, res)
		}
		if n := s.RequestsTo("/sessions/refresh") - s.RequestsTo("/sessions/refresh-access-token"); n != 1 {
			t.Errorf("full refresh called %d times, want 1", n)
		}
	})
}

// The v4 API key travels in the login URL, path-escaped; no error may show
// it in either form, whatever characters it has.
func TestV4APIKeyNeverInErrors(t *testing.T) {
	const key = "k3y/with space%and?query#" + canary
	s := newServer(t)
	closed := newServer(t)
	closed.Close()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name       string
		url        string
		ctx        context.Context
		fault      *passworktest.Fault
		wantStatus int // a *fetch.StatusError with this status, if nonzero
		wantIs     error
	}{
		{"503", s.URL, context.Background(), &passworktest.Fault{Path: "/auth/login", Status: 503}, 503, nil},
		{"429 with long Retry-After", s.URL, context.Background(), &passworktest.Fault{Path: "/auth/login", Status: 429, RetryAfter: "3600"}, 429, nil},
		{"rejected key", s.URL, context.Background(), nil, 0, nil},
		{"transport error", closed.URL, context.Background(), nil, 0, nil},
		{"canceled", s.URL, canceled, nil, 0, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.ClearFaults()
			s.ResetCounters()
			if tt.fault != nil {
				s.AddFault(*tt.fault)
			}
			cfg := s.ConfigV4()
			cfg.URL, cfg.APIKey = tt.url+"/api/v4", key
			_, err := newClient(t, cfg).Resolve(tt.ctx, []fetch.Ref{ref("Prod/web", "password")})
			if err == nil {
				t.Fatal("no error")
			}
			for _, form := range []string{key, url.PathEscape(key), url.QueryEscape(key), canary} {
				if strings.Contains(err.Error(), form) {
					t.Errorf("error shows the API key as %q: %v", form, err)
				}
			}
			var se *fetch.StatusError
			if tt.wantStatus != 0 && (!errors.As(err, &se) || se.Status != tt.wantStatus) {
				t.Errorf("want a *fetch.StatusError %d, got %T %v", tt.wantStatus, err, err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			// A login creates a session; it is never retried.
			if tt.fault != nil && s.RequestsTo("/auth/login") != 1 {
				t.Errorf("login sent %d times, want 1", s.RequestsTo("/auth/login"))
			}
		})
	}
}

// Entries made without a per-item key are encrypted under the vault key
// itself; both APIs must use it rather than treating them as unencrypted.
func TestEntriesWithoutItemKey(t *testing.T) {
	s := newServer(t, passworktest.WithoutItemKeys())
	refs := []fetch.Ref{
		ref("Prod/DB/postgres", "password"), ref("Prod/DB/postgres", "API Key"),
		ref("Prod/DB/postgres", "attachment:cert.pem"), ref("Org/shared", "password"), ref("Plain/Team/svc", "token"),
	}
	want := []string{canary + "-pg", canary + "-api", string(certBytes), canary + "-org", canary + "-tok"}
	for name, cfg := range map[string]passwork.Config{"v7": s.Config(), "v4": s.ConfigV4()} {
		t.Run(name, func(t *testing.T) {
			res, err := newClient(t, cfg).Resolve(context.Background(), refs)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if r.Err != nil || r.Value != want[i] {
					t.Errorf("%s: got %q, %v", refs[i], r.Value, r.Err)
				}
			}
		})
	}
}

// v4 vaults may carry both passwordCrypted and vaultPasswordCrypted; the
// official connectors use passwordCrypted when present.
func TestV4VaultPasswordFieldOrder(t *testing.T) {
	for _, opts := range [][]passworktest.Option{nil, {passworktest.WithLegacyVaultPasswordField()}} {
		s := newServer(t, opts...)
		refs := []fetch.Ref{ref("Prod/DB/postgres", "password"), ref("Org/shared", "password"), ref("Plain/Team/svc", "password")}
		res, err := newClient(t, s.ConfigV4()).Resolve(context.Background(), refs)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []string{canary + "-pg", canary + "-org", canary + "-plain"} {
			if res[i].Err != nil || res[i].Value != want {
				t.Errorf("legacy field %v: %s = %q, %v", opts != nil, refs[i], res[i].Value, res[i].Err)
			}
		}
	}
}

// TestSearchWithoutPaths: if a server's search summaries lack "path", an
// entry inside a folder must not be taken for a vault-root entry of the
// same name; it is not found by path, and still resolves by id.
func TestSearchWithoutPaths(t *testing.T) {
	s := passworktest.NewServer(passworktest.WithoutSearchPaths())
	t.Cleanup(s.Close)
	if err := s.Seed([]fetchtest.Entry{
		{Path: "Prod/DB/postgres", Fields: map[string]string{"password": "in-folder"}},
		{Path: "Prod/web", Fields: map[string]string{"password": "at-root"}},
	}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s.Config())
	res, err := c.Resolve(context.Background(), []fetch.Ref{
		ref("Prod/postgres", "password"),
		ref("Prod/DB/postgres", "password"),
		ref("Prod/web", "password"),
		ref("id:"+s.ItemIDs("Prod/DB/postgres")[0], "password"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Err, fetch.ErrNotFound) || !errors.Is(res[1].Err, fetch.ErrNotFound) {
		t.Errorf("folder entry matched without a path: %+v / %+v", res[0], res[1])
	}
	if res[2].Value != "at-root" || res[3].Value != "in-folder" {
		t.Errorf("root entry %+v, by id %+v", res[2], res[3])
	}
}

// TestShortcutPaths: an entry shared into another vault or folder by a
// shortcut resolves by its path there, decrypted with the key the
// shortcut carries; shortcuts cost a request only when a path matches no
// entry of its own.
func TestShortcutPaths(t *testing.T) {
	s := passworktest.NewServer()
	t.Cleanup(s.Close)
	if err := s.Seed([]fetchtest.Entry{
		{Path: "Prod/DB/postgres", Fields: map[string]string{"password": canary + "-pg"},
			Custom: map[string]string{"port": "5432"}, Attachments: map[string][]byte{"cert.pem": certBytes},
			Shortcuts: []string{"Shared", "Team/ops/db"}},
		{Path: "Shared/own", Fields: map[string]string{"password": canary + "-own"}},
	}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s.Config())
	ctx := context.Background()

	res, err := c.Resolve(ctx, []fetch.Ref{ref("Prod/DB/postgres", "password"), ref("Shared/own", "password")})
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("own paths: %v %+v", err, res)
	}
	if n := s.RequestsTo("/shortcuts/"); n != 0 {
		t.Errorf("resolving entries by their own paths made %d shortcut requests, want 0", n)
	}

	refs := []fetch.Ref{
		ref("Shared/postgres", "password"), ref("Team/ops/db/postgres", "password"),
		ref("Team/ops/db/postgres", "port"), ref("Shared/postgres", "attachment:cert.pem"),
		ref("Shared/nope", "password"), ref("Team/ops/nope/postgres", "password"),
	}
	s.ResetCounters()
	res, err = c.Resolve(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{canary + "-pg", canary + "-pg", "5432", string(certBytes)}
	for i, w := range want {
		if res[i].Err != nil || res[i].Value != w {
			t.Errorf("%s: %q, %v; want %q", refs[i], res[i].Value, res[i].Err, w)
		}
	}
	var nf *fetch.NotFoundError
	if !errors.As(res[4].Err, &nf) || !slices.Contains(nf.Nearby, "postgres") || !slices.Contains(nf.Nearby, "own") {
		t.Errorf("missing entry next to a shortcut: %v; want not found listing both", res[4].Err)
	}
	if !errors.As(res[5].Err, &nf) || nf.Kind != "folder" || !slices.Contains(nf.Nearby, "db") {
		t.Errorf("missing folder: %v", res[5].Err)
	}
	if n := s.RequestsTo("/shortcuts/search"); n != 1 {
		t.Errorf("%d shortcut searches for one Resolve, want 1", n)
	}
	for _, e := range []error{res[4].Err, res[5].Err} {
		if e != nil && strings.Contains(e.Error(), canary) {
			t.Errorf("error leaks a secret: %v", e)
		}
	}
}

// TestV4AsTheConnectorsDo covers the legacy API the way the official v4
// connectors use it: vault passwords read from GET /vaults/{id}, the PBKDF2
// digest honoured, shortcuts decrypted with their own cryptedKey, an
// organisation vault without its domain master refused, and a server with
// client-side encryption off explained.
func TestV4AsTheConnectorsDo(t *testing.T) {
	ctx := context.Background()
	t.Run("digest", func(t *testing.T) {
		s := newServer(t, passworktest.WithPBKDF2Digest("sha512"))
		for gen, cfg := range generations(s) {
			cfg.MasterKey, cfg.MasterPassword = "", s.MasterPassword()
			res, err := newClient(t, cfg).Resolve(ctx, []fetch.Ref{ref("Prod/DB/postgres", "password")})
			if err != nil || res[0].Value != canary+"-pg" {
				t.Errorf("%s: %v %+v", gen, err, res)
			}
		}
	})
	t.Run("shortcut", func(t *testing.T) {
		s := passworktest.NewServer()
		t.Cleanup(s.Close)
		if err := s.Seed([]fetchtest.Entry{{Path: "Prod/DB/postgres", Fields: map[string]string{"password": canary + "-pg"},
			Attachments: map[string][]byte{"cert.pem": certBytes}, Shortcuts: []string{"Shared/team"}}}); err != nil {
			t.Fatal(err)
		}
		res, err := newClient(t, s.ConfigV4()).Resolve(ctx, []fetch.Ref{
			ref("Shared/team/postgres", "password"), ref("Shared/team/postgres", "attachment:cert.pem"), ref("Prod/DB/postgres", "password"),
		})
		if err != nil || res[0].Value != canary+"-pg" || res[1].Value != string(certBytes) || res[2].Value != canary+"-pg" {
			t.Errorf("v4 shortcut: %v %+v", err, res)
		}
		if n := s.RequestsTo("/sharing/shortcut/"); n != 1 {
			t.Errorf("%d shortcut GETs, want 1", n)
		}
	})
	t.Run("domain vault without domainMaster", func(t *testing.T) {
		s := newServer(t, passworktest.WithoutDomainMaster())
		res, err := newClient(t, s.ConfigV4()).Resolve(ctx, []fetch.Ref{ref("Org/shared", "password"), ref("Prod/web", "password")})
		if err != nil || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "domainMaster") || res[1].Value != canary+"-web" {
			t.Errorf("got %v %+v; want Org/shared refused naming domainMaster, Prod/web read", err, res)
		}
	})
	t.Run("client-side encryption off", func(t *testing.T) {
		s := passworktest.NewServer(passworktest.WithoutClientSideEncryption())
		t.Cleanup(s.Close)
		if err := s.Seed([]fetchtest.Entry{{Path: "Team/svc", Fields: map[string]string{"password": "plain-pw"}}}); err != nil {
			t.Fatal(err)
		}
		_, err := newClient(t, s.ConfigV4()).Resolve(ctx, []fetch.Ref{ref("Team/svc", "password")})
		if err == nil || !strings.Contains(err.Error(), "client-side encryption turned off") || !strings.Contains(err.Error(), "unset PASSWORK_MASTER_KEY") {
			t.Errorf("with a master key: %v; want the plain-language error", err)
		}
		cfg := s.ConfigV4()
		cfg.MasterKey = ""
		res, err := newClient(t, cfg).Resolve(ctx, []fetch.Ref{ref("Team/svc", "password")})
		if err != nil || res[0].Value != "plain-pw" {
			t.Errorf("without a master key: %v %+v", err, res)
		}
	})
}
