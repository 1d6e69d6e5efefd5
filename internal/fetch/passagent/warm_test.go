package passagent_test

import (
	"context"
	"strings"
	"testing"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passagent"
	"github.com/injector-dev/injector/internal/fetch/passagent/passagenttest"
)

// TestWarmRefreshOpensNothing: a warm refresh of unchanged data decodes no
// list page and opens no envelope; an entry whose ciphertext changed is
// opened again: a tampered one fails (every time, not only the first), a
// replaced one gives its new value.
func TestWarmRefreshOpensNothing(t *testing.T) {
	s := newServer(t, passagenttest.Options{RevealLimit: -1})
	es := manyEntries(40)
	seed(t, s, es...)
	c := newClient(t, s.Config())
	refs := make([]fetch.Ref, len(es))
	for i, e := range es {
		refs[i] = ref(e.Path, "password")
	}
	resolve := func() []fetch.Result {
		t.Helper()
		res, err := c.Resolve(context.Background(), refs)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	check := func(res []fetch.Result, skip int) {
		t.Helper()
		for i, r := range res {
			if i != skip && (r.Err != nil || r.Value != es[i].Fields["password"]) {
				t.Fatalf("%s: %q, %v", refs[i].Path, r.Value, r.Err)
			}
		}
	}
	check(resolve(), -1)
	pages, opened := passagent.MemoStats(c)
	if pages != 1 || opened != len(es) {
		t.Errorf("cold: %d pages decoded, %d envelopes opened; want 1, %d", pages, opened, len(es))
	}
	for range 3 {
		check(resolve(), -1)
	}
	if p, o := passagent.MemoStats(c); p != pages || o != opened {
		t.Errorf("warm refreshes of unchanged data decoded %d pages and opened %d envelopes, want none", p-pages, o-opened)
	}

	// Tampered: a new ciphertext, opened again, failing every refresh.
	if err := s.Tamper(s.ID(es[7].Path), "data"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		res := resolve()
		check(res, 7)
		if err := res[7].Err; err == nil || !strings.Contains(err.Error(), "failed authentication") {
			t.Errorf("tampered entry: %q, %v; want an authentication failure", res[7].Value, err)
		}
	}

	// Replaced: the new value, not the remembered one.
	if err := s.Delete(s.ID(es[7].Path)); err != nil {
		t.Fatal(err)
	}
	es[7] = fetchtest.Entry{Path: es[7].Path, Fields: map[string]string{"password": "pw-new"}}
	seed(t, s, es[7])
	check(resolve(), -1)
	if p, o := passagent.MemoStats(c); p-pages != 2 || o-opened != 3 {
		t.Errorf("after two changes: %d pages decoded, %d envelopes opened; want 2 (the page with the tampered entry, the page with the new one) and 3 (the tampered entry twice, the new one once)", p-pages, o-opened)
	}
}
