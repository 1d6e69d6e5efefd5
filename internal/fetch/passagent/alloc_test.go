package passagent_test

import (
	"context"
	"testing"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/passagent/passagenttest"
	"github.com/injector-dev/injector/internal/testutil"
)

// TestWarmAllocationsLinear guards allocation per refresh: a warm Resolve
// of 8n entries may allocate about 8× what n cost, not more (the emulator
// answers in the same process and is counted too).
func TestWarmAllocationsLinear(t *testing.T) {
	measure := func(n int) float64 {
		s := newServer(t, passagenttest.Options{RevealLimit: -1})
		es := manyEntries(n)
		seed(t, s, es...)
		c := newClient(t, s.Config())
		refs := make([]fetch.Ref, n)
		for i, e := range es {
			refs[i] = ref(e.Path, "password")
		}
		resolve := func() {
			res, err := c.Resolve(context.Background(), refs)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if r.Err != nil || r.Value != es[i].Fields["password"] {
					t.Fatalf("%s: %q, %v", refs[i].Path, r.Value, r.Err)
				}
			}
		}
		return testutil.BytesPerRun(10, resolve)
	}
	small, large := measure(250), measure(2000)
	t.Logf("warm resolve: 250 refs %.0f B, 2,000 refs %.0f B (×%.1f)", small, large, large/small)
	if r := large / small; r > 12 {
		t.Errorf("allocated bytes grew %.1f× for 8× the refs, want about 8×", r)
	}
}
