package pipeline

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passagent/passagenttest"
)

// TestRejectedCredentialsAreReadAgain: the server turns the token down
// (it expired) while the Secret behind PASSAGENT_TOKEN_FILE already holds
// a new one; the same Resolve reads the settings again and succeeds,
// instead of failing until the next refresh.
func TestRejectedCredentialsAreReadAgain(t *testing.T) {
	srv, err := passagenttest.New(passagenttest.Options{KDF: passagenttest.FastKDF(), CRUDLimit: -1, RevealLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if err := srv.Seed([]fetchtest.Entry{{Path: "db", Fields: map[string]string{"password": "s3cret"}}}); err != nil {
		t.Fatal(err)
	}
	stale := srv.Config()
	srv.RotateToken() // the token the process started with no longer works
	fresh := srv.Config()
	var reloads atomic.Int32
	reload := func() (*ProviderConfig, error) {
		reloads.Add(1)
		return &ProviderConfig{PassAgent: fresh}, nil
	}
	opt := fetch.Options{MaxAttempts: 1}
	ref := []fetch.Ref{{Provider: "passagent", Path: "db", Field: "password"}}

	res, err := Providers(&ProviderConfig{PassAgent: stale}, opt, reload)["passagent"].Resolve(context.Background(), ref)
	if err != nil || res[0].Err != nil || res[0].Value != "s3cret" {
		t.Fatalf("Resolve = %v, %v; want the secret with the token read again", res, err)
	}
	if reloads.Load() == 0 {
		t.Error("settings never read again")
	}

	// Unchanged settings: the rejection stands, no second attempt.
	reloads.Store(0)
	unchanged := func() (*ProviderConfig, error) { reloads.Add(1); return &ProviderConfig{PassAgent: stale}, nil }
	before := srv.Requests()
	_, err = Providers(&ProviderConfig{PassAgent: stale}, opt, unchanged)["passagent"].Resolve(context.Background(), ref)
	if err == nil {
		t.Fatal("a rejected token succeeded")
	}
	if got := srv.Requests() - before; got != 1 {
		t.Errorf("%d requests with unchanged settings, want 1", got)
	}

	// No reload (get, dev): nothing read again.
	_, err = Providers(&ProviderConfig{PassAgent: stale}, opt, nil)["passagent"].Resolve(context.Background(), ref)
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}
