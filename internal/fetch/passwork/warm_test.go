package passwork_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passwork"
	"github.com/injector-dev/injector/internal/fetch/passwork/passworktest"
)

// TestWarmRefreshRedoesNothing: a warm refresh of unchanged data decodes
// no body and decrypts nothing it decrypted before; a changed entry (a new
// ciphertext under a new item key) is decoded and decrypted again and its
// new value returned, in the same refresh as the unchanged ones. The
// legacy API remembers decryptions only (its bodies are decoded each time).
func TestWarmRefreshRedoesNothing(t *testing.T) {
	for _, api := range []string{"v1", "v4"} {
		t.Run(api, func(t *testing.T) { testWarmRefresh(t, api) })
	}
}

func testWarmRefresh(t *testing.T, api string) {
	const n = 60 // three batches of 25 and a part
	var es []fetchtest.Entry
	for i := range n {
		es = append(es, fetchtest.Entry{
			Path:   fmt.Sprintf("Vault%d/apps/secret%02d", i%3, i),
			Fields: map[string]string{"password": fmt.Sprintf("pw-%02d", i)},
			Custom: map[string]string{"port": fmt.Sprint(5000 + i)},
		})
	}
	s := passworktest.NewServer()
	t.Cleanup(s.Close)
	if err := s.Seed(es); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, generations(s)[api])
	v1 := api == "v1"
	var refs []fetch.Ref
	for _, e := range es {
		refs = append(refs, ref(e.Path, "password"), ref(e.Path, "port"))
	}
	resolve := func(changed int, want string) {
		t.Helper()
		res, err := c.Resolve(context.Background(), refs)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			e := es[i/2]
			w := e.Fields["password"]
			if i%2 == 1 {
				w = e.Custom["port"]
			}
			if i/2 == changed && i%2 == 0 {
				w = want
			}
			if r.Err != nil || r.Value != w {
				t.Fatalf("%s %s: %q, %v; want %q", refs[i].Path, refs[i].Field, r.Value, r.Err, w)
			}
		}
	}
	resolve(-1, "")
	bodies, decrypts := passwork.MemoStats(c)
	// A search and three batches; per entry its item key, the password
	// and the custom field's name, type and value.
	if v1 && bodies != 4 || decrypts != 5*n {
		t.Errorf("cold: %d bodies decoded, %d decrypts; want 4, %d", bodies, decrypts, 5*n)
	}
	for range 3 {
		resolve(-1, "")
	}
	if b, d := passwork.MemoStats(c); b != bodies || d != decrypts {
		t.Errorf("warm refreshes of unchanged data decoded %d bodies and decrypted %d values, want none", b-bodies, d-decrypts)
	}

	// One entry changes: it comes back under the same id with a new item
	// key and ciphertexts, in a new search result and a new batch for the
	// same ids (what the batch reuse must not take for the last one).
	changed := es[30]
	changed.Fields = map[string]string{"password": "pw-changed"}
	changed.Custom = es[30].Custom
	id := s.ItemIDs(changed.Path)
	if err := s.Update(changed); err != nil {
		t.Fatal(err)
	}
	if after := s.ItemIDs(changed.Path); !slices.Equal(after, id) {
		t.Fatalf("the emulator's edit changed the entry's id: %v -> %v", id, after)
	}
	resolve(30, "pw-changed")
	b, d := passwork.MemoStats(c)
	if v1 && b-bodies < 2 || d-decrypts != 5 {
		t.Errorf("after a change: %d bodies decoded, %d decrypts; want the search and a batch or more, and 5", b-bodies, d-decrypts)
	}
}
