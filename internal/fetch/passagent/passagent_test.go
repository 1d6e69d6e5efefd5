package passagent_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/injector-dev/injector/internal/crypto/envelope"
	"github.com/injector-dev/injector/internal/crypto/totp"
	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passagent"
	"github.com/injector-dev/injector/internal/fetch/passagent/passagenttest"
)

const totpSecret = "JBSWY3DPEHPK3PXP"

// newServer starts an emulator with the tiny KDF profile and, unless the
// options set one, no CRUD limit.
func newServer(t testing.TB, opt passagenttest.Options) *passagenttest.Server {
	t.Helper()
	opt.KDF = passagenttest.FastKDF()
	if opt.CRUDLimit == 0 {
		opt.CRUDLimit = -1
	}
	s, err := passagenttest.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// fastRetries keeps backoff at a millisecond; a Retry-After above a second
// is returned instead of waited for.
var fastRetries = fetch.Options{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, MaxRetryAfter: time.Second}

func newClient(t testing.TB, cfg passagent.Config) *passagent.Client {
	t.Helper()
	c, err := passagent.New(cfg, fastRetries)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ref(path, field string) fetch.Ref {
	return fetch.Ref{Provider: "passagent", Path: path, Field: field}
}

func seed(t testing.TB, s *passagenttest.Server, entries ...fetchtest.Entry) {
	t.Helper()
	if err := s.Seed(entries); err != nil {
		t.Fatal(err)
	}
}

var github = fetchtest.Entry{
	Path: "GitHub",
	Fields: map[string]string{
		"username": "octo@example.com", "password": "gh-pass", "notes": "line1\nline2",
		"url": "https://github.com/login", "website": "github.com", "tags": "dev, work",
	},
	Custom: map[string]string{"PIN": "1234", "Recovery Code": "rc-1"},
	TOTP:   "otpauth://totp/GitHub:octo?secret=" + totpSecret + "&issuer=GitHub",
}

func TestResolveFields(t *testing.T) {
	s := newServer(t, passagenttest.Options{})
	seed(t, s, github,
		fetchtest.Entry{Path: "Bare TOTP", Fields: map[string]string{"password": "p"}, TOTP: totpSecret},
		fetchtest.Entry{Path: "prod/db", Fields: map[string]string{"password": "slash-name"}},
		fetchtest.Entry{Path: "Twin", Fields: map[string]string{"password": "a"}},
		fetchtest.Entry{Path: "Twin", Fields: map[string]string{"password": "b"}},
	)
	c := newClient(t, s.Config())
	before := time.Now()
	wantCode, _ := totp.Generate(totpSecret, before)

	tests := []struct {
		ref     fetch.Ref
		want    string
		wantErr string
	}{
		{ref("GitHub", "username"), "octo@example.com", ""},
		{ref("GitHub", "password"), "gh-pass", ""},
		{ref("GitHub", "notes"), "line1\nline2", ""},
		{ref("GitHub", "note"), "line1\nline2", ""},
		{ref("GitHub", "url"), "https://github.com/login", ""},
		{ref("GitHub", "website"), "github.com", ""},
		{ref("GitHub", "name"), "GitHub", ""},
		{ref("GitHub", "tags"), "dev,work", ""},
		{ref("GitHub", "PIN"), "1234", ""},
		{ref("GitHub", "recovery code"), "rc-1", ""},
		{ref("GitHub", "totp"), "totp", ""},
		{ref("Bare TOTP", "totp"), "totp", ""},
		{ref("prod/db", "password"), "slash-name", ""},
		{ref("id:"+s.ID("GitHub"), "password"), "gh-pass", ""},
		{ref("GitHub", "pin2"), "", `field "pin2" not found in entry "GitHub"; available: "PIN"`},
		{ref("prod/db", "totp"), "", `field "totp" not found`},
		{ref("Githb", "password"), "", `entry "Githb" not found; available: "Bare TOTP", "GitHub"`},
		{ref("id:pwd_nope", "password"), "", `entry "id:pwd_nope" not found`},
		{ref("Twin", "password"), "", `entry "Twin" is ambiguous: 2 matches`},
	}
	refs := make([]fetch.Ref, len(tests))
	for i, tc := range tests {
		refs[i] = tc.ref
	}
	res, err := c.Resolve(context.Background(), refs)
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	for i, tc := range tests {
		got := res[i]
		if tc.wantErr != "" {
			if got.Err == nil || !strings.Contains(got.Err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want %q", tc.ref, got.Err, tc.wantErr)
			}
			continue
		}
		if got.Err != nil {
			t.Errorf("%s: %v", tc.ref, got.Err)
			continue
		}
		if tc.want == "totp" {
			lateCode, _ := totp.Generate(totpSecret, after)
			if got.Value != wantCode && got.Value != lateCode {
				t.Errorf("%s = %q, want %q or %q", tc.ref, got.Value, wantCode, lateCode)
			}
			continue
		}
		if got.Value != tc.want {
			t.Errorf("%s = %q, want %q", tc.ref, got.Value, tc.want)
		}
	}
	var amb *fetch.AmbiguousError
	if !errors.As(res[len(res)-1].Err, &amb) || len(amb.Candidates) != 2 || !strings.HasPrefix(amb.Candidates[0], "pwd_") {
		t.Errorf("ambiguous error = %#v, want two pwd_ ids", res[len(res)-1].Err)
	}
	if !errors.Is(res[len(res)-3].Err, fetch.ErrNotFound) {
		t.Errorf("missing entry error does not match fetch.ErrNotFound")
	}
}

func manyEntries(n int) []fetchtest.Entry {
	es := make([]fetchtest.Entry, n)
	for i := range es {
		es[i] = fetchtest.Entry{Path: fmt.Sprintf("entry-%04d", i), Fields: map[string]string{"password": fmt.Sprintf("pw-%04d", i)}}
	}
	return es
}

func TestPaginationRequestCount(t *testing.T) {
	s := newServer(t, passagenttest.Options{})
	seed(t, s, manyEntries(2500)...)
	tests := []struct {
		pageSize, refs, wantLists int
	}{
		{1000, 1, 3},
		{1000, 2500, 3},
		{2000, 50, 2},
		{1, 3, 2500},
		{0, 10, 3}, // default page size 1000
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("limit=%d,refs=%d", tc.pageSize, tc.refs), func(t *testing.T) {
			cfg := s.Config()
			cfg.PageSize = tc.pageSize
			c := newClient(t, cfg)
			var refs []fetch.Ref
			for i := 0; i < tc.refs; i++ {
				j := (i * 977) % 2500 // spread over every page
				refs = append(refs, ref(fmt.Sprintf("entry-%04d", j), "password"))
			}
			s.ResetCounters()
			res, err := c.Resolve(context.Background(), refs)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if want := "pw-" + refs[i].Path[len("entry-"):]; r.Err != nil || r.Value != want {
					t.Fatalf("%s = %q, %v; want %q", refs[i], r.Value, r.Err, want)
				}
			}
			if got := s.RequestsTo("/api/passwords"); got != tc.wantLists {
				t.Errorf("list calls = %d, want %d", got, tc.wantLists)
			}
			if got := s.RequestsTo("/api/vault/salt"); got != 1 {
				t.Errorf("salt calls = %d, want 1", got)
			}
			if s.Reveals() != 0 || s.Requests() != tc.wantLists+1 {
				t.Errorf("requests = %d, reveals = %d; want %d, 0", s.Requests(), s.Reveals(), tc.wantLists+1)
			}
		})
	}
}

func TestEmptyVaultIsOneCall(t *testing.T) {
	s := newServer(t, passagenttest.Options{})
	c := newClient(t, s.Config())
	res, err := c.Resolve(context.Background(), []fetch.Ref{ref("x", "password")})
	if err != nil || !errors.Is(res[0].Err, fetch.ErrNotFound) {
		t.Fatalf("Resolve = %v, %v", res, err)
	}
	if got := s.RequestsTo("/api/passwords"); got != 1 {
		t.Errorf("list calls = %d, want 1", got)
	}
}

func TestKeyCaching(t *testing.T) {
	s := newServer(t, passagenttest.Options{})
	seed(t, s, github)
	withKey := s.Config()
	withKey.MasterPassword, withKey.VaultKey = "", s.VaultKey()
	for _, tc := range []struct {
		name      string
		cfg       passagent.Config
		wantSalts int
	}{
		{"master password: derived once", s.Config(), 1},
		{"pre-derived key: no salt call", withKey, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.ResetCounters()
			c := newClient(t, tc.cfg)
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := c.Resolve(context.Background(), []fetch.Ref{ref("GitHub", "password")})
					if err != nil || res[0].Value != "gh-pass" {
						t.Errorf("Resolve = %v, %v", res, err)
					}
				}()
			}
			wg.Wait()
			if _, err := c.Resolve(context.Background(), []fetch.Ref{ref("GitHub", "PIN")}); err != nil {
				t.Fatal(err)
			}
			if got := s.RequestsTo("/api/vault/salt"); got != tc.wantSalts {
				t.Errorf("salt calls = %d, want %d", got, tc.wantSalts)
			}
			if got := s.RequestsTo("/api/passwords"); got != 5 {
				t.Errorf("list calls = %d, want 5 (one per Resolve)", got)
			}
		})
	}
}

func TestWrongKey(t *testing.T) {
	s := newServer(t, passagenttest.Options{})
	seed(t, s, github, fetchtest.Entry{Path: "Other", Fields: map[string]string{"password": "o"}})
	wrongPW := s.Config()
	wrongPW.MasterPassword = "not the master password"
	wrongKey := s.Config()
	wrongKey.MasterPassword, wrongKey.VaultKey = "", envelope.EncodeBase64(make([]byte, 32))
	for _, tc := range []struct {
		name      string
		cfg       passagent.Config
		wantSalts int // after two Resolve calls
	}{
		{"master password", wrongPW, 2}, // a failed derived key is dropped and the salt read again
		{"vault key", wrongKey, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.ResetCounters()
			c := newClient(t, tc.cfg)
			for range 2 {
				_, err := c.Resolve(context.Background(), []fetch.Ref{ref("GitHub", "password"), ref("Other", "password")})
				if !errors.Is(err, passagent.ErrWrongKey) || !strings.Contains(err.Error(), "wrong master password or vault key") {
					t.Fatalf("err = %v, want wrong master password or vault key", err)
				}
			}
			if got := s.RequestsTo("/api/vault/salt"); got != tc.wantSalts {
				t.Errorf("salt calls = %d, want %d", got, tc.wantSalts)
			}
		})
	}
}

func TestDeletedEntriesNeverResolve(t *testing.T) {
	s := newServer(t, passagenttest.Options{})
	seed(t, s, github, fetchtest.Entry{Path: "Gone", Fields: map[string]string{"password": "deleted-pw"}})
	goneID := s.ID("Gone")
	deleteOverHTTP(t, s, goneID)
	if ts := s.Tombstones(); len(ts) != 1 || ts[0].ID != goneID {
		t.Fatalf("tombstones = %v", ts)
	}
	c := newClient(t, s.Config())
	for _, leak := range []bool{false, true} {
		s.LeakDeleted(leak) // a server that lists deleted rows anyway
		res, err := c.Resolve(context.Background(), []fetch.Ref{ref("Gone", "password"), ref("id:"+goneID, "password"), ref("GitHub", "password")})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res[:2] {
			if !errors.Is(r.Err, fetch.ErrNotFound) || r.Value != "" {
				t.Errorf("leak=%v: deleted entry resolved: %q, %v", leak, r.Value, r.Err)
			}
		}
		if res[2].Value != "gh-pass" {
			t.Errorf("live entry = %q, %v", res[2].Value, res[2].Err)
		}
	}
}

// deleteOverHTTP deletes the way the web app does: CSRF token, then DELETE.
func deleteOverHTTP(t *testing.T, s *passagenttest.Server, id string) {
	t.Helper()
	do := func(method, path, csrf string) (int, string) {
		req, _ := http.NewRequest(method, s.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+s.Token())
		if csrf != "" {
			req.Header.Set("x-csrf-token", csrf)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, _ := do("DELETE", "/api/passwords/"+id, ""); st != http.StatusForbidden {
		t.Fatalf("DELETE without CSRF: %d, want 403", st)
	}
	_, body := do("GET", "/api/auth/csrf-token", "")
	tok := strings.Split(body, `"`)[3] // {"csrfToken":"…"}
	if st, body := do("DELETE", "/api/passwords/"+id, tok); st != http.StatusOK || !strings.Contains(body, `"success":true`) {
		t.Fatalf("DELETE: %d %s", st, body)
	}
}

func TestLegacyEntries(t *testing.T) {
	s := newServer(t, passagenttest.Options{})
	seed(t, s, github)
	for _, v := range []int{1, 2} {
		if _, err := s.SeedLegacy(fetchtest.Entry{Path: fmt.Sprintf("Old v%d", v), Fields: map[string]string{"password": "legacy-pw"}}, v); err != nil {
			t.Fatal(err)
		}
	}
	c := newClient(t, s.Config())
	res, err := c.Resolve(context.Background(), []fetch.Ref{ref("Old v1", "password"), ref("Old v2", "username"), ref("GitHub", "password")})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []int{1, 2} {
		e := res[i].Err
		if !errors.Is(e, passagent.ErrLegacy) || !strings.Contains(e.Error(), "re-save it in PassAgent") ||
			!strings.Contains(e.Error(), fmt.Sprintf("encryption_version %d", v)) {
			t.Errorf("legacy v%d: err = %v", v, e)
		}
	}
	if res[2].Value != "gh-pass" {
		t.Errorf("V3 entry next to legacy ones = %q, %v", res[2].Value, res[2].Err)
	}
	// Only legacy entries referenced: not mistaken for a wrong key.
	if _, err := c.Resolve(context.Background(), []fetch.Ref{ref("Old v1", "password")}); err != nil {
		t.Errorf("batch error for a legacy-only batch: %v", err)
	}
}

func TestTamperedEntries(t *testing.T) {
	s := newServer(t, passagenttest.Options{})
	seed(t, s, github,
		fetchtest.Entry{Path: "Data", Fields: map[string]string{"password": "d"}},
		fetchtest.Entry{Path: "Key", Fields: map[string]string{"password": "k"}})
	if err := s.Tamper(s.ID("Data"), "data"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tamper(s.ID("Key"), "key"); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s.Config())
	res, err := c.Resolve(context.Background(), []fetch.Ref{ref("Data", "password"), ref("Key", "password"), ref("GitHub", "password")})
	if err != nil {
		t.Fatal(err)
	}
	if e := res[0].Err; e == nil || !strings.Contains(e.Error(), "tampered") {
		t.Errorf("tampered data: %q, %v", res[0].Value, e)
	}
	if e := res[1].Err; !errors.Is(e, passagent.ErrWrongKey) || !strings.Contains(e.Error(), "altered") {
		t.Errorf("tampered key: %q, %v", res[1].Value, e)
	}
	if res[2].Value != "gh-pass" {
		t.Errorf("intact entry = %q, %v", res[2].Value, res[2].Err)
	}
}

func TestAESKWWrappedKeys(t *testing.T) {
	s := newServer(t, passagenttest.Options{})
	s.UseKeyWrap(true)
	seed(t, s, github)
	res, err := newClient(t, s.Config()).Resolve(context.Background(), []fetch.Ref{ref("GitHub", "PIN")})
	if err != nil || res[0].Value != "1234" {
		t.Fatalf("Resolve = %v, %v", res, err)
	}
}

const rateLimitedBodyOverview = `{"error":"Too many requests","code":"RATE_LIMITED","status":429}`
const rateLimitedBodyRateLimitPage = `{"error":"Too many requests. Please try again later.","error_code":"rate_limit_exceeded"}`

func TestRateLimits(t *testing.T) {
	tests := []struct {
		name      string
		opt       passagenttest.Options
		faults    []passagenttest.Fault
		wantErr   string // "" = success
		wantLists int
	}{
		{"429 overview shape, then success", passagenttest.Options{},
			[]passagenttest.Fault{{Path: "/api/passwords", Status: 429, Body: rateLimitedBodyOverview, RetryAfter: "0", Times: 2}}, "", 3 + 2},
		{"429 rate-limit page shape, then success", passagenttest.Options{},
			[]passagenttest.Fault{{Path: "/api/passwords", Status: 429, Body: rateLimitedBodyRateLimitPage, RetryAfter: "0", Times: 1}}, "", 3 + 1},
		{"Retry-After too long is not waited for nor retried early", passagenttest.Options{},
			[]passagenttest.Fault{{Path: "/api/passwords", Status: 429, Body: rateLimitedBodyRateLimitPage, RetryAfter: "60", Times: 1}},
			"rate limited by the server, giving up (fail-closed): passagent: GET /api/passwords: HTTP 429: rate limited (retry after 1m0s)", 1},
		{"retries exhausted", passagenttest.Options{},
			[]passagenttest.Fault{{Path: "/api/passwords", Status: 429, RetryAfter: "0", Times: 10}}, "rate limited by the server, giving up", 3},
		{"sliding-window limiter (CRUD 2/60s)", passagenttest.Options{CRUDLimit: 2},
			nil, "HTTP 429: rate limited (retry after", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.opt)
			seed(t, s, manyEntries(2500)...)
			for _, f := range tc.faults {
				s.AddFault(f)
			}
			cfg := s.Config()
			cfg.PageSize = 1000
			res, err := newClient(t, cfg).Resolve(context.Background(), []fetch.Ref{ref("entry-2499", "password")})
			switch {
			case tc.wantErr == "" && (err != nil || res[0].Value != "pw-2499"):
				t.Errorf("Resolve = %v, %v", res, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			var se *fetch.StatusError
			if tc.wantErr != "" && (!errors.As(err, &se) || se.Status != 429) {
				t.Errorf("err %v does not carry the 429 StatusError", err)
			}
			if got := s.RequestsTo("/api/passwords"); got != tc.wantLists {
				t.Errorf("list calls = %d, want %d", got, tc.wantLists)
			}
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	const list, salt = "/api/passwords", "/api/vault/salt"
	tests := []struct {
		name    string
		fault   passagenttest.Fault
		rotate  bool
		wantErr string
		wantIs  error
		path    string // every error names the full URL path, as fetch.HTTP does
	}{
		{"expired token", passagenttest.Fault{}, true, "token expired or invalid", passagent.ErrUnauthorized, salt},
		{"forbidden", passagenttest.Fault{Path: list, Status: 403, Times: 1}, false, "access forbidden (HTTP 403)", nil, list},
		{"server error", passagenttest.Fault{Path: list, Status: 500, Times: 1}, false, "HTTP 500 INTERNAL_ERROR", nil, list},
		{"bad gateway exhausted", passagenttest.Fault{Path: list, Status: 502, Times: 5}, false, "HTTP 502", nil, list},
		{"unavailable exhausted", passagenttest.Fault{Path: list, Status: 503, RetryAfter: "0", Times: 5}, false, "HTTP 503", nil, list},
		{"malformed list", passagenttest.Fault{Path: list, Body: `{"data":[`, Times: 1}, false, "malformed JSON response", nil, list},
		{"list without pagination", passagenttest.Fault{Path: list, Body: `{"data":[]}`, Times: 1}, false, "no pagination object", nil, list},
		{"malformed salt", passagenttest.Fault{Path: salt, Body: `<html>`, Times: 1}, false, "malformed JSON response", nil, salt},
		{"no salt", passagenttest.Fault{Path: salt, Status: 404, Times: 1}, false, "no vault salt for this account", nil, salt},
		{"empty salt", passagenttest.Fault{Path: salt, Body: `{"salt":""}`, Times: 1}, false, "salt missing or not base64", nil, salt},
		{"odd kdf", passagenttest.Fault{Path: salt, Body: `{"salt":"AAAAAAAAAAAAAAAAAAAAAA==","kdf":"pbkdf2"}`, Times: 1}, false, `unsupported kdf "pbkdf2"`, nil, salt},
		{"hostile kdf", passagenttest.Fault{Path: salt, Body: `{"salt":"AAAAAAAAAAAAAAAAAAAAAA==","memory_kib":4194304}`, Times: 1}, false, "memory 4194304 KiB out of range", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, passagenttest.Options{})
			seed(t, s, github)
			c := newClient(t, s.Config())
			if tc.rotate {
				s.RotateToken()
			} else {
				s.AddFault(tc.fault)
			}
			_, err := c.Resolve(context.Background(), []fetch.Ref{ref("GitHub", "password")})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("err = %v, want errors.Is %v", err, tc.wantIs)
			}
			if tc.path != "" && !strings.Contains(err.Error(), "passagent: GET "+tc.path+":") {
				t.Errorf("err = %v, want it to name GET %s", err, tc.path)
			}
			for _, short := range []string{"GET /passwords", "GET /vault/salt"} {
				if strings.Contains(err.Error(), short) {
					t.Errorf("err = %v names %q, not the full URL path", err, short)
				}
			}
		})
	}
}

func TestClearFaults(t *testing.T) {
	s := newServer(t, passagenttest.Options{})
	seed(t, s, github)
	c := newClient(t, s.Config())
	s.AddFault(passagenttest.Fault{Path: "/api/passwords", Status: 500, Times: 1000})
	if _, err := c.Resolve(context.Background(), []fetch.Ref{ref("GitHub", "password")}); err == nil {
		t.Fatal("Resolve succeeded despite a persistent fault")
	}
	s.ClearFaults()
	if res, err := c.Resolve(context.Background(), []fetch.Ref{ref("GitHub", "password")}); err != nil || res[0].Err != nil {
		t.Fatalf("after ClearFaults: Resolve = %v, %v", res, err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := passagent.Config{URL: "https://passagent.ai/api", Token: "t", MasterPassword: "m"}
	tests := []struct {
		name    string
		edit    func(*passagent.Config)
		wantErr string
	}{
		{"no token", func(c *passagent.Config) { c.Token = " " }, "PASSAGENT_TOKEN is empty"},
		// No default host: a self-hosted token must never reach the public service.
		{"no url", func(c *passagent.Config) { c.URL = "" }, "PASSAGENT_URL is required"},
		{"no key", func(c *passagent.Config) { c.MasterPassword = "" }, "PASSAGENT_MASTER_PASSWORD or PASSAGENT_VAULT_KEY is required"},
		{"both keys", func(c *passagent.Config) { c.VaultKey = envelope.EncodeBase64(make([]byte, 32)) }, "not both"},
		{"short key", func(c *passagent.Config) { c.MasterPassword, c.VaultKey = "", "AAAA" }, "3 bytes, want 32"},
		{"http remote", func(c *passagent.Config) { c.URL = "http://passagent.ai/api" }, "must use https"},
		{"page size", func(c *passagent.Config) { c.PageSize = 2001 }, "PASSAGENT_PAGE_SIZE 2001 out of range"},
		// Every problem at once, not one per run.
		{"three problems", func(c *passagent.Config) { c.URL, c.Token, c.MasterPassword = "ftp://x", "", "" },
			"passagent: PASSAGENT_URL \"ftp://x\" must use https\npassagent: PASSAGENT_TOKEN is empty\npassagent: PASSAGENT_MASTER_PASSWORD or PASSAGENT_VAULT_KEY is required"},
	}
	if _, err := passagent.New(good, fetch.Options{}); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, tc := range tests {
		cfg := good
		tc.edit(&cfg)
		if _, err := passagent.New(cfg, fetch.Options{}); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
}

// TestSecretsNeverInErrors seeds a canary in every secret place, provokes
// every per-entry failure and checks that no error string carries it.
func TestSecretsNeverInErrors(t *testing.T) {
	const canary = "CANARY-7f3a9c"
	s := newServer(t, passagenttest.Options{})
	secretEntry := func(name string) fetchtest.Entry {
		return fetchtest.Entry{Path: name,
			Fields: map[string]string{"username": canary + "-user", "password": canary + "-pw", "notes": canary + "-notes"},
			Custom: map[string]string{"Key": canary + "-custom"}, TOTP: canary + "!not-base32"}
	}
	seed(t, s, secretEntry("Secret"), secretEntry("Twin"), secretEntry("Twin"), secretEntry("Tampered"), secretEntry("TamperedKey"))
	if _, err := s.SeedLegacy(secretEntry("Legacy"), 2); err != nil {
		t.Fatal(err)
	}
	s.Tamper(s.ID("Tampered"), "data")
	s.Tamper(s.ID("TamperedKey"), "key")
	refs := []fetch.Ref{
		ref("Secret", "totp"), ref("Secret", "nope"), ref("Secrt", "password"), ref("Twin", "password"),
		ref("Legacy", "password"), ref("Tampered", "password"), ref("TamperedKey", "password"), ref("id:pwd_x", "password"),
	}
	var errs []error
	res, err := newClient(t, s.Config()).Resolve(context.Background(), refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err == nil {
			t.Errorf("%s: expected an error", refs[i])
		}
		errs = append(errs, r.Err)
	}
	wrong := s.Config()
	wrong.MasterPassword = canary + "-master"
	_, err = newClient(t, wrong).Resolve(context.Background(), refs[:1])
	errs = append(errs, err)
	badKey := s.Config()
	badKey.MasterPassword, badKey.VaultKey = "", canary+"==="
	_, err = passagent.New(badKey, fetch.Options{})
	errs = append(errs, err)
	for _, e := range errs {
		if e == nil {
			t.Error("expected an error")
			continue
		}
		if strings.Contains(e.Error(), canary) || strings.Contains(e.Error(), strings.ToLower(canary)) {
			t.Errorf("error leaks the secret: %v", e)
		}
	}
}

// TestEmulatorReveal pins the emulator's reveal endpoint, which the client
// must never call: CSRF, the 20/60s fail-closed limiter, 503 when the
// limiter is down, 422 for legacy entries.
func TestEmulatorReveal(t *testing.T) {
	s := newServer(t, passagenttest.Options{RevealLimit: 2})
	seed(t, s, github)
	legacyID, _ := s.SeedLegacy(fetchtest.Entry{Path: "Old", Fields: map[string]string{"password": "x"}}, 1)
	do := func(method, path, csrf string) (int, string, string) {
		req, _ := http.NewRequest(method, s.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+s.Token())
		req.Header.Set("x-csrf-token", csrf)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Retry-After")
	}
	_, body, _ := do("GET", "/api/auth/csrf-token", "")
	tok := strings.Split(body, `"`)[3]
	reveal := "/api/passwords/" + s.ID("GitHub") + "/reveal"
	steps := []struct {
		path, csrf string
		status     int
		body       string
	}{
		{reveal, "", 403, "FORBIDDEN"},
		{reveal, tok, 200, `"wrappedItemKey"`},
		{"/api/passwords/" + legacyID + "/reveal", tok, 422, "UNPROCESSABLE"},
		{reveal, tok, 429, "rate_limit_exceeded"},
	}
	for i, st := range steps {
		code, body, _ := do("POST", st.path, st.csrf)
		if code != st.status || !strings.Contains(body, st.body) {
			t.Errorf("step %d: %d %s; want %d %s", i, code, body, st.status, st.body)
		}
	}
	s.RevealLimiterDown(true)
	if code, _, ra := do("POST", reveal, tok); code != 503 || ra == "" {
		t.Errorf("limiter down: %d, Retry-After %q; want 503 with Retry-After", code, ra)
	}
	if code, body, _ := do("GET", "/api/passwords?limit=2001", ""); code != 400 || !strings.Contains(body, "VALIDATION_ERROR") {
		t.Errorf("limit 2001: %d %s", code, body)
	}
	if s.Reveals() != 5 {
		t.Errorf("reveal counter = %d, want 5", s.Reveals())
	}
}

func BenchmarkResolve(b *testing.B) {
	s := newServer(b, passagenttest.Options{})
	seed(b, s, manyEntries(2500)...)
	c := newClient(b, s.Config())
	var refs []fetch.Ref
	for i := 0; i < 100; i++ {
		refs = append(refs, ref(fmt.Sprintf("entry-%04d", i*25), "password"))
	}
	ctx := context.Background()
	if _, err := c.Resolve(ctx, refs); err != nil { // derive the key outside the loop
		b.Fatal(err)
	}
	start := s.Requests()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Resolve(ctx, refs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.Requests()-start)/float64(b.N), "requests/op")
}

// TestSlowServerHonoursContext: a server that stalls does not hold Resolve
// past its context.
func TestSlowServerHonoursContext(t *testing.T) {
	s := newServer(t, passagenttest.Options{})
	seed(t, s, github)
	s.AddFault(passagenttest.Fault{Path: "/api/passwords", Delay: time.Minute, Times: 1})
	ctx, cancel := context.WithCancel(context.Background())
	c := newClient(t, s.Config())
	go func() {
		for s.RequestsTo("/api/passwords") == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if _, err := c.Resolve(ctx, []fetch.Ref{ref("GitHub", "password")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// A server that caps the page size below the one asked for must not make
// later entries vanish: paging follows the limit the server reports.
func TestPaginationServerCapsLimit(t *testing.T) {
	s := newServer(t, passagenttest.Options{MaxPageLimit: 500})
	seed(t, s, manyEntries(2500)...)
	for _, pageSize := range []int{1000, 2000, 500} {
		t.Run(fmt.Sprint(pageSize), func(t *testing.T) {
			cfg := s.Config()
			cfg.PageSize = pageSize
			s.ResetCounters()
			refs := []fetch.Ref{ref("entry-0000", "password"), ref("entry-1999", "password"), ref("entry-2499", "password")}
			res, err := newClient(t, cfg).Resolve(context.Background(), refs)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if want := "pw-" + refs[i].Path[len("entry-"):]; r.Err != nil || r.Value != want {
					t.Errorf("%s = %q, %v; want %q", refs[i], r.Value, r.Err, want)
				}
			}
			if got := s.RequestsTo("/api/passwords"); got != 5 {
				t.Errorf("list calls = %d, want 5", got)
			}
		})
	}
}
