package main

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type testSettings struct {
	Token string `env:"X_TOKEN"`
	URL   string `env:"X_URL"`
}

func TestLoadConfigFileVariants(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("tok-from-file\n"), 0o600)

	var s testSettings
	if err := loadConfig(&s, []string{"X_TOKEN_FILE=" + tokenFile, "X_URL=https://pw"}); err != nil {
		t.Fatal(err)
	}
	if s.Token != "tok-from-file" || s.URL != "https://pw" {
		t.Errorf("got %+v", s)
	}

	err := loadConfig(&s, []string{"X_TOKEN_FILE=" + tokenFile, "X_TOKEN=direct"})
	if err == nil || !strings.Contains(err.Error(), "both X_TOKEN and X_TOKEN_FILE") {
		t.Errorf("both set: err = %v", err)
	}
	err = loadConfig(&s, []string{"X_TOKEN_FILE=" + filepath.Join(dir, "missing")})
	if err == nil || !strings.Contains(err.Error(), "X_TOKEN_FILE") {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestParseFileSpec(t *testing.T) {
	tests := []struct {
		in      string
		dst     string
		mode    os.FileMode
		wantErr string
	}{
		{"a.tpl:/out/a", "/out/a", 0o600, ""},
		{"a.tpl:/out/a:0640", "/out/a", 0o640, ""},
		{"a.tpl:/out/a:644", "/out/a", 0o644, ""},
		{"a.tpl", "", 0, "want SRC:DST[:MODE]"},
		{"a.tpl:/out/a:rw", "", 0, "not an octal permission"},
		{"a.tpl:/out/a:1777", "", 0, "not an octal permission"},
	}
	for _, tt := range tests {
		got, err := parseFileSpec(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.dst != tt.dst || got.mode != tt.mode {
			t.Errorf("%q: got %+v, %v", tt.in, got, err)
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.env")
	os.WriteFile(path, []byte("# comment\n\nA=plain\nexport B=<< passwork \"x\" >>\n  C=\n"), 0o600)
	specs, err := parseEnvFile(path, [2]string{"<<", ">>"})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range specs {
		keys = append(keys, s.key)
	}
	if strings.Join(keys, ",") != "A,B,C" {
		t.Fatalf("keys = %v", keys)
	}
	// B's template starts at line 4, column 10 ("export B=" is 9 bytes).
	if src := specs[1].tpl.Source; src.Line != 4 || src.Col != 10 {
		t.Errorf("B source = %+v", src)
	}

	os.WriteFile(path, []byte("OK=1\nnot a pair\n"), 0o600)
	if _, err := parseEnvFile(path, [2]string{"<<", ">>"}); err == nil || !strings.Contains(err.Error(), "app.env:2:1: want KEY=TEMPLATE") {
		t.Errorf("err = %v", err)
	}
}

func TestChildEnvDropsOwnSettings(t *testing.T) {
	keep, tpl, err := childEnv([]string{
		"HOME=/root", "PASSWORK_TOKEN=t0k", "INJECTOR_LOG_LEVEL=debug", "DB=<< passwork \"a\" >>",
	}, [2]string{"<<", ">>"}, isOwnSetting)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(keep, " ") != "HOME=/root" {
		t.Errorf("keep = %v", keep)
	}
	if len(tpl) != 1 || tpl[0].key != "DB" {
		t.Errorf("templated = %+v", tpl)
	}
}

func TestParseOwner(t *testing.T) {
	for in, want := range map[string][2]int{"1000": {1000, 1000}, "1000:2000": {1000, 2000}, "0:0": {0, 0}} {
		o, err := parseOwner(in)
		if err != nil || o.UID != want[0] || o.GID != want[1] {
			t.Errorf("parseOwner(%q) = %+v, %v", in, o, err)
		}
	}
	for _, in := range []string{"app", "1000:staff", "-1", ""} {
		if _, err := parseOwner(in); err == nil {
			t.Errorf("parseOwner(%q): want error", in)
		}
	}
}

func TestFetchOptionsTrustsCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	os.WriteFile(caFile, pemBytes, 0o600)

	base := settings{HTTPTimeout: 5 * time.Second, RetryAttempts: 1, RetryBaseDelay: time.Millisecond}
	without, err := base.fetchOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := without.Client.Get(srv.URL); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without INJECTOR_CA_FILE: err = %v, want a certificate error", err)
	}
	withCA := base
	withCA.CAFile = caFile
	opt, err := withCA.fetchOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := opt.Client.Get(srv.URL)
	if err != nil {
		t.Fatalf("with INJECTOR_CA_FILE: %v", err)
	}
	resp.Body.Close()

	bad := base
	bad.CAFile = writeFile(t, filepath.Join(t.TempDir(), "bad.pem"), "not a certificate")
	if _, err := bad.fetchOptions(nil); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("bad CA file: err = %v", err)
	}
	zero := base
	zero.HTTPTimeout = 0
	if _, err := zero.fetchOptions(nil); err == nil {
		t.Error("zero timeout accepted")
	}
}
