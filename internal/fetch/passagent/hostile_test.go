package passagent_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/injector-dev/injector/internal/crypto/envelope"
	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/passagent"
	"github.com/injector-dev/injector/internal/fetch/passagent/passagenttest"
)

// TestHostileKDFParameters: a salt reply asking for more than the caps is
// refused before any derivation, with what to do instead; the documented
// profiles are accepted.
func TestHostileKDFParameters(t *testing.T) {
	s := newServer(t, passagenttest.Options{})
	seed(t, s, github)
	for _, p := range []envelope.KDFParams{
		{MemoryKiB: 1 << 20, Iterations: 64, Parallelism: 4}, // what one server asked for: 1 GiB, 64 passes
		{MemoryKiB: envelope.MaxMemoryKiB + 1, Iterations: 1, Parallelism: 1},
		{MemoryKiB: 1024, Iterations: envelope.MaxIterations + 1, Parallelism: 1},
		{MemoryKiB: 1024, Iterations: 1, Parallelism: envelope.MaxParallelism + 1},
	} {
		s.AdvertiseKDF(p)
		c := newClient(t, s.Config())
		_, err := c.Resolve(context.Background(), []fetch.Ref{ref("GitHub", "password")})
		if err == nil || !strings.Contains(err.Error(), "out of range") || !strings.Contains(err.Error(), "PASSAGENT_VAULT_KEY") {
			t.Errorf("%+v: err = %v, want the cap and the way out", p, err)
		}
		if n := passagent.Derivations(c); n != 0 {
			t.Errorf("%+v: %d derivations, want none", p, n)
		}
	}
}

// TestKeyDerivedOncePerParameterSet: a key that fails (wrong password, or
// a server whose records do not open) is not derived again on every
// Resolve while the salt and parameters stay the same; a change of either
// costs exactly one more derivation.
func TestKeyDerivedOncePerParameterSet(t *testing.T) {
	s := newServer(t, passagenttest.Options{})
	seed(t, s, github)
	cfg := s.Config()
	cfg.MasterPassword = "not the master password"
	c := newClient(t, cfg)
	resolve := func() {
		t.Helper()
		if _, err := c.Resolve(context.Background(), []fetch.Ref{ref("GitHub", "password")}); !errors.Is(err, passagent.ErrWrongKey) {
			t.Fatalf("err = %v, want ErrWrongKey", err)
		}
	}
	for range 3 {
		resolve()
	}
	if n := passagent.Derivations(c); n != 1 {
		t.Errorf("%d derivations after 3 failures with the same salt and parameters, want 1", n)
	}
	if got := s.RequestsTo("/api/vault/salt"); got != 3 {
		t.Errorf("salt read %d times, want 3 (once per failed Resolve: it may have been reset)", got)
	}
	other := passagenttest.FastKDF()
	other.Iterations++
	s.AdvertiseKDF(other)
	resolve()
	resolve()
	if n := passagent.Derivations(c); n != 2 {
		t.Errorf("%d derivations after the parameters changed once, want 2", n)
	}
}

// TestHostileBodies: a list page larger than the page limit is refused
// while it is read, and the error says how to make pages smaller.
func TestHostileBodies(t *testing.T) {
	s := newServer(t, passagenttest.Options{})
	seed(t, s, github)
	c := newClient(t, s.Config())
	s.AddFault(passagenttest.Fault{Path: "/api/passwords", Bloat: 64 << 20, Times: 1})
	_, err := c.Resolve(context.Background(), []fetch.Ref{ref("GitHub", "password")})
	if !errors.Is(err, fetch.ErrBodyTooLarge) || !strings.Contains(err.Error(), "larger than 16 MiB") || !strings.Contains(err.Error(), "PASSAGENT_PAGE_SIZE") {
		t.Fatalf("err = %v, want the page limit and the way out", err)
	}
	// A normal page still reads.
	if res, err := c.Resolve(context.Background(), []fetch.Ref{ref("GitHub", "password")}); err != nil || res[0].Value != "gh-pass" {
		t.Fatalf("Resolve after the fault = %v, %v", res, err)
	}
}
