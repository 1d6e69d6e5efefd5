package passbolt_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/passbolt"
	"github.com/injector-dev/injector/internal/fetch/passbolt/passbolttest"
	"github.com/injector-dev/injector/internal/testutil"
)

// seedMany adds n v5 resources (shared-key metadata, so one metadata and
// one secret message each) in folders apps/f0 … apps/f<folders-1> and
// returns refs to all.
func seedMany(t *testing.T, s *passbolttest.Server, from, n, folders int) []fetch.Ref {
	t.Helper()
	var refs []fetch.Ref
	for i := from; i < from+n; i++ {
		path := fmt.Sprintf("apps/f%d/secret%04d", i%folders, i)
		add(t, s, passbolttest.Resource{Path: path, Password: fmt.Sprint("pw-", i)})
		refs = append(refs, ref(path, "password"))
	}
	return refs
}

func resolveAll(t testing.TB, c *passbolt.Client, refs []fetch.Ref) {
	t.Helper()
	res, err := c.Resolve(context.Background(), refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Value == "" {
			t.Fatalf("%s: %q, %v", refs[i].Path, r.Value, r.Err)
		}
	}
}

// A warm refresh of unchanged data decrypts nothing: the plaintext of each
// message is cached by the hash of its ciphertext. A new or changed
// resource is new ciphertext, and only it is decrypted.
func TestWarmRefreshDecryptsNothing(t *testing.T) {
	s := newServer(t)
	refs := seedMany(t, s, 0, 20, 2)
	c := newClient(t, s.Config())

	resolveAll(t, c, refs)
	_, cold := passbolt.PlainCacheStats(c)
	if cold < 2*len(refs) {
		t.Fatalf("cold resolve decrypted %d messages, want at least %d (metadata and secret of each)", cold, 2*len(refs))
	}
	resolveAll(t, c, refs)
	if _, warm := passbolt.PlainCacheStats(c); warm != cold {
		t.Errorf("warm refresh of unchanged data decrypted %d messages, want 0", warm-cold)
	}

	refs = append(refs, seedMany(t, s, 20, 1, 2)...)
	resolveAll(t, c, refs)
	if _, after := passbolt.PlainCacheStats(c); after-cold != 2 {
		t.Errorf("one new resource cost %d decryptions, want 2 (its metadata and secret)", after-cold)
	}
}

// The cache holds what recent refreshes used, not everything ever read.
func TestPlainCacheForgetsUnusedEntries(t *testing.T) {
	s := newServer(t)
	refs := seedMany(t, s, 0, 6, 2)
	c := newClient(t, s.Config())
	resolveAll(t, c, refs)
	full, _ := passbolt.PlainCacheStats(c)
	for range 20 { // more than the cache keeps unused entries for
		resolveAll(t, c, refs[:1])
	}
	if cached, _ := passbolt.PlainCacheStats(c); cached >= full {
		t.Errorf("cache holds %d messages after 20 refreshes of one reference, had %d", cached, full)
	}
}

// TestWarmAllocationsLinear guards allocation per refresh: a warm Resolve
// of 8n resources in one folder may allocate about 8× what n cost, not
// more (locate once appended every name of the folder for every
// reference, which made it ×16 here).
func TestWarmAllocationsLinear(t *testing.T) {
	measure := func(n int) float64 {
		s := newServer(t)
		refs := seedMany(t, s, 0, n, 1)
		c := newClient(t, s.Config())
		return testutil.BytesPerRun(3, func() { resolveAll(t, c, refs) })
	}
	small, large := measure(100), measure(800)
	t.Logf("warm resolve: 100 refs %.0f B, 800 refs %.0f B (×%.1f)", small, large, large/small)
	if r := large / small; r > 12 {
		t.Errorf("allocated bytes grew %.1f× for 8× the refs, want about 8×", r)
	}
}

// A path decrypts the names of the folders it passes through and of their
// siblings, not of the whole tree: "a/x/s" in a tree of a/x, b/y, c/z
// decrypts a, b, c (to find a), x (to find x), the metadata and the
// secret of s — 6 messages, not the 8 of every folder.
func TestPathDecryptsOnlyTheFoldersItPasses(t *testing.T) {
	s := newServer(t)
	for _, p := range []string{"a/x/s", "b/y/t", "c/z/u"} {
		add(t, s, passbolttest.Resource{Path: p, Password: "pw-" + p})
	}
	c := newClient(t, s.Config())
	if v, err := resolveOne(t, c, "a/x/s", "password"); err != nil || v != "pw-a/x/s" {
		t.Fatalf("a/x/s = %q, %v", v, err)
	}
	if _, n := passbolt.PlainCacheStats(c); n != 6 {
		t.Errorf("resolving a/x/s decrypted %d messages, want 6", n)
	}
	// A miss still names what is there, decrypting the level it lists.
	_, err := resolveOne(t, c, "b/nope/t", "password")
	var nf *fetch.NotFoundError
	if !errors.As(err, &nf) || !slices.Contains(nf.Nearby, "y") {
		t.Errorf("b/nope/t: %v, want a folder not found naming y nearby", err)
	}
}

// A reference by id to a password needs only the secret: its v5 metadata
// is not decrypted (nor the shared metadata key fetched) unless a
// reference to the same resource asks for a field the metadata holds.
func TestIDPasswordDecryptsOnlyTheSecret(t *testing.T) {
	s := newServer(t)
	var refs []fetch.Ref
	for i := range 3 {
		id := add(t, s, passbolttest.Resource{Path: fmt.Sprintf("f/s%d", i), Username: "u", Password: fmt.Sprint("pw-", i)})
		refs = append(refs, ref("id:"+id, "password"))
	}
	c := newClient(t, s.Config())
	res, err := c.Resolve(context.Background(), refs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Value != fmt.Sprint("pw-", i) {
			t.Fatalf("%s: %q, %v", refs[i].Path, r.Value, r.Err)
		}
	}
	if _, n := passbolt.PlainCacheStats(c); n != 3 {
		t.Errorf("3 passwords by id decrypted %d messages, want 3 (the secrets)", n)
	}
	if n := s.RequestsTo("/metadata/keys.json"); n != 0 {
		t.Errorf("fetched the metadata keys %d times for passwords alone", n)
	}

	more := append(refs[:1:1], fetch.Ref{Provider: "passbolt", Path: refs[0].Path, Field: "username"})
	res, err = c.Resolve(context.Background(), more)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Value != "pw-0" || res[1].Value != "u" || res[1].Err != nil {
		t.Errorf("password and username of one id: %+v", res)
	}
	if _, n := passbolt.PlainCacheStats(c); n != 4 {
		t.Errorf("after its username was asked for, %d messages decrypted, want 4 (one metadata more)", n)
	}
}

// A warm refresh does not decode again a listing or secret batch whose
// body is byte for byte the last one; a changed body is decoded (and only
// its new messages decrypted).
func TestWarmRefreshReusesUnchangedBodies(t *testing.T) {
	s := newServer(t)
	refs := seedMany(t, s, 0, 20, 2) // folders apps, f0, f1; 2 listings; 1 secret batch
	c := newClient(t, s.Config())
	resolveAll(t, c, refs)
	if n := passbolt.BodyReuses(c); n != 0 {
		t.Fatalf("cold resolve reused %d bodies", n)
	}
	resolveAll(t, c, refs)
	if n := passbolt.BodyReuses(c); n != 4 {
		t.Errorf("warm refresh reused %d bodies, want 4 (the folders, 2 listings and the secret batch)", n)
	}
	refs = append(refs, seedMany(t, s, 20, 1, 2)...) // into apps/f0
	_, before := passbolt.PlainCacheStats(c)
	resolveAll(t, c, refs)
	if n := passbolt.BodyReuses(c); n != 6 {
		t.Errorf("after a change in apps/f0, %d bodies reused in all, want 6 (the folders and apps/f1's listing again)", n)
	}
	if _, after := passbolt.PlainCacheStats(c); after-before != 2 {
		t.Errorf("the new resource cost %d decryptions, want 2", after-before)
	}
}

// The decoded-bodies cache is keyed by content, and an empty account
// answers the folder tree and a listing with the same bytes ("[]"): each
// is still decoded as what it is (this panicked once, a listing taken for
// the tree). Both orders, cold and warm.
func TestEqualBodiesOfDifferentRequests(t *testing.T) {
	for _, order := range [][]string{{"missing", "apps/missing"}, {"apps/missing", "missing"}} {
		t.Run(order[0]+" first", func(t *testing.T) {
			c := newClient(t, newServer(t).Config())
			for round := 0; round < 3; round++ {
				for _, p := range order {
					res, err := c.Resolve(context.Background(), []fetch.Ref{ref(p, "password")})
					if err != nil {
						t.Fatalf("round %d: %s: %v", round, p, err)
					}
					var nf *fetch.NotFoundError
					if !errors.As(res[0].Err, &nf) {
						t.Fatalf("round %d: %s: err = %v, want a NotFoundError", round, p, res[0].Err)
					}
				}
			}
		})
	}
}

// Bodies of 64 KiB and more are read into pooled buffers that go back to
// the HTTP client once nothing is kept of them: every value stays exact
// over warm refreshes, a new resource and a rotated metadata key (each a
// changed body), with the buffers reused in between.
func TestPooledBodiesKeepValuesExact(t *testing.T) {
	s := newServer(t)
	const n = 300 // listings of ~340 KB, a secret batch of ~680 KB
	refs := seedMany(t, s, 0, n, 2)
	c := newClient(t, s.Config())
	check := func(step string) {
		t.Helper()
		res, err := c.Resolve(context.Background(), refs)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		for i, r := range res {
			if want := fmt.Sprint("pw-", i); r.Err != nil || r.Value != want {
				t.Fatalf("%s: %s = %q, %v; want %q", step, refs[i].Path, r.Value, r.Err, want)
			}
		}
	}
	check("cold")
	check("warm")
	refs = append(refs, seedMany(t, s, n, 1, 2)...)
	check("after a new resource")
	check("warm again")
	if err := s.RotateMetadataKey(); err != nil {
		t.Fatal(err)
	}
	check("after the metadata key rotated")
	check("warm at last")
	if passbolt.BodyReuses(c) == 0 {
		t.Error("no body was reused: the warm path was not exercised")
	}
}
