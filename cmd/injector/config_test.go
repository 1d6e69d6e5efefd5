package main

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/injector-dev/injector/internal/credkeys"
)

func TestParseOwner(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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

// Each shared credential key K of the webhook reaches the injector as
// K_FILE, the path to a file holding K: that must be a setting injector
// reads as a path (INJECTOR_CA -> INJECTOR_CA_FILE, the private CA).
func TestSharedCredentialKeysAreSettings(t *testing.T) {
	t.Parallel()
	params, err := env.GetFieldParams(&settings{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range credkeys.Shared() {
		if !slices.ContainsFunc(params, func(p env.FieldParams) bool { return p.Key == k+"_FILE" }) {
			t.Errorf("credential key %s: injector reads no setting %s_FILE", k, k)
		}
	}
}
