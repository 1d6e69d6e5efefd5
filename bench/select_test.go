package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/template"
)

// folderEntries returns n entries spread round-robin over the given
// number of folders of one vault (Passwork) or top-level folder
// (Passbolt), each tagged with its folder's name (PassAgent, which has
// tags only).
func folderEntries(n, folders int, flat bool) []fetchtest.Entry {
	out := make([]fetchtest.Entry, n)
	for i := range out {
		f := fmt.Sprintf("folder%d", i%folders)
		path := fmt.Sprintf("prod/%s/secret%05d", f, i)
		if flat {
			path = fmt.Sprintf("secret%05d", i)
		}
		out[i] = fetchtest.Entry{Path: path, Fields: map[string]string{"password": fmt.Sprintf("pw-%05d", i), "tags": f}}
	}
	return out
}

// selections names the folders folderEntries filled: as folders, or as
// tags for a provider without folders.
func selections(tb testing.TB, provider string, folders int, tags bool) []fetch.Selector {
	var out []fetch.Selector
	for f := range folders {
		s := fmt.Sprintf("prod/folder%d", f)
		if tags {
			s = fmt.Sprintf("tag:folder%d", f)
		}
		sel, err := fetch.ParseSelector(provider, s)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, sel)
	}
	return out
}

// selectCost is one provider's warm refresh of the same entries, by path
// (a template naming each) and by selection (one per folder): the HTTP
// requests of each. The cold render of each (login, keys) is left out.
func selectCost(tb testing.TB, provider string, em emulator, es []fetchtest.Entry, sels []fetch.Selector) (byPath, bySelection int) {
	ctx := context.Background()
	e := &template.Engine{Providers: map[string]template.Resolver{provider: em.resolver}}
	tpl := templateFor(tb, provider, es)
	count := func(f func() error) int {
		if err := f(); err != nil { // cold
			tb.Fatal(err)
		}
		before := em.requests()
		if err := f(); err != nil {
			tb.Fatal(err)
		}
		return em.requests() - before
	}
	byPath = count(func() error {
		_, err := e.Render(ctx, []*template.Template{tpl})
		return err
	})
	bySelection = count(func() error {
		out, err := e.RenderSelect(ctx, nil, sels)
		if err != nil {
			return err
		}
		n := 0
		for _, l := range out.Listings {
			n += len(l.Entries)
		}
		if n != len(es) {
			return fmt.Errorf("selections listed %d entries, want %d", n, len(es))
		}
		return nil
	})
	return byPath, bySelection
}

// selectCases are the providers BenchmarkSelect1000 and TestSelectCost
// compare; flat is PassAgent's: no folders, a tag per folder instead.
var selectCases = []struct {
	provider string
	flat     bool
	start    func(testing.TB, []fetchtest.Entry) emulator
}{
	{"passwork", false, newPasswork},
	{"passbolt", false, newPassbolt},
	{"passagent", true, newPassAgent},
}

// BenchmarkSelect1000: 1,000 entries in 10 folders (PassAgent: 10 tags),
// selected (run --env-from, the list functions) and resolved by path. It
// fails when a selection costs more requests than the paths; requests/op
// is the selection's warm refresh, path-requests the paths'.
func BenchmarkSelect1000(b *testing.B) {
	const n, folders = 1000, 10
	for _, tc := range selectCases {
		b.Run(tc.provider, func(b *testing.B) {
			es := folderEntries(n, folders, tc.flat)
			em := tc.start(b, es)
			sels := selections(b, tc.provider, folders, tc.flat)
			var byPath, bySel int
			for i := 0; i < b.N; i++ {
				byPath, bySel = selectCost(b, tc.provider, em, es, sels)
				if bySel > byPath {
					b.Fatalf("%s: selecting %d entries in %d folders cost %d requests, by path %d", tc.provider, n, folders, bySel, byPath)
				}
			}
			b.ReportMetric(float64(bySel), "requests/op")
			b.ReportMetric(float64(byPath), "path-requests")
		})
	}
}

// TestSelectCost is BenchmarkSelect1000's assertion at a size the test
// suite runs on every change: 200 entries in 10 folders.
func TestSelectCost(t *testing.T) {
	const n, folders = 200, 10
	for _, tc := range selectCases {
		t.Run(tc.provider, func(t *testing.T) {
			es := folderEntries(n, folders, tc.flat)
			byPath, bySel := selectCost(t, tc.provider, tc.start(t, es), es, selections(t, tc.provider, folders, tc.flat))
			t.Logf("%d entries in %d folders: %d requests by selection, %d by path", n, folders, bySel, byPath)
			if bySel > byPath {
				t.Errorf("selection cost %d requests, by path %d", bySel, byPath)
			}
		})
	}
}
