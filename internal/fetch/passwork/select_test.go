package passwork_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passwork"
)

func sel(t *testing.T, s string) fetch.Selector {
	t.Helper()
	out, err := fetch.ParseSelector("passwork", s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// list lists the selections written in sels with c, failing the test on
// a batch error.
func list(t *testing.T, c *passwork.Client, sels ...string) []fetch.Listing {
	t.Helper()
	var parsed []fetch.Selector
	for _, s := range sels {
		parsed = append(parsed, sel(t, s))
	}
	_, lists, err := c.ResolveList(context.Background(), nil, parsed)
	if err != nil {
		t.Fatal(err)
	}
	return lists
}

func paths(l fetch.Listing) []string {
	var out []string
	for _, e := range l.Entries {
		out = append(out, e.Path)
	}
	return out
}

func TestResolveListSelections(t *testing.T) {
	s := newServer(t)
	tests := []struct {
		sel  string
		want []string
	}{
		{"Prod/DB", []string{"Prod/DB/dup", "Prod/DB/dup", "Prod/DB/postgres"}},
		{"Prod/DB/**", []string{"Prod/DB/Replica/pg2", "Prod/DB/dup", "Prod/DB/dup", "Prod/DB/postgres"}},
		{"/Prod/", []string{"Prod/web"}},
		{"Prod/**", []string{"Prod/DB/Replica/pg2", "Prod/DB/dup", "Prod/DB/dup", "Prod/DB/postgres", "Prod/web"}},
		{"tag:db", []string{"Prod/DB/postgres"}},
		{"tag:db,prod", []string{"Prod/DB/postgres"}},
		{"tag:db,a", nil},
		{"tag:a", []string{"Plain/Team/svc"}},
		{"tag:nobody", nil},
		{"Org", []string{"Org/shared"}},
	}
	for gen, cfg := range generations(s) {
		t.Run(gen, func(t *testing.T) {
			var sels []string
			for _, tt := range tests {
				sels = append(sels, tt.sel)
			}
			lists := list(t, newClient(t, cfg), sels...)
			for i, tt := range tests {
				if lists[i].Err != nil || !slices.Equal(paths(lists[i]), tt.want) {
					t.Errorf("%s: got %q, %v; want %q", tt.sel, paths(lists[i]), lists[i].Err, tt.want)
				}
			}
			// Every field a template or --env-from needs, decrypted; the
			// TOTP secret is not a field (its code is).
			pg := lists[0].Entries[2]
			want := []fetch.Field{
				{Name: "password", Value: canary + "-pg"}, {Name: "login", Value: "app"},
				{Name: "url", Value: "https://db.example"}, {Name: "description", Value: "primary"},
				{Name: "API Key", Value: canary + "-api", Custom: true}, {Name: "port", Value: "5432", Custom: true},
			}
			if pg.Name != "postgres" || !slices.Equal(pg.Fields, want) {
				t.Errorf("postgres = %+v", pg)
			}
			if d := lists[0].Entries; d[0].ID == d[1].ID {
				t.Errorf("two entries named dup share id %q", d[0].ID)
			}
			plain := lists[7].Entries[0]
			if v, _ := plain.Value("token"); v != canary+"-tok" {
				t.Errorf("CSE-off vault: token = %q", v)
			}
		})
	}
}

func TestResolveListErrors(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s.Config())
	tests := []struct{ sel, want string }{
		{"Prod/Nope", `folder "Nope" not found in vault "Prod"; available: "DB"`},
		{"Prod/DB/Nope/**", `folder "Nope" not found in folder "Prod/DB"; available: "Replica"`},
		{"Nope", `vault "Nope" not found; available: "Org", "Plain", "Prod"`},
		{"Prod/web", `"Prod/web" is an entry, not a folder`},
	}
	var sels []string
	for _, tt := range tests {
		sels = append(sels, tt.sel)
	}
	lists := list(t, c, sels...)
	for i, tt := range tests {
		err := lists[i].Err
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), canary) {
			t.Errorf("%s: err = %v, want %q", tt.sel, err, tt.want)
		}
		if i < 3 && !errors.Is(err, fetch.ErrNotFound) {
			t.Errorf("%s: %v is not ErrNotFound", tt.sel, err)
		}
	}
}

// A selection costs what resolving its entries by path costs, and joins
// the references' round trips when both are asked for at once.
func TestResolveListRequestCount(t *testing.T) {
	s := newServer(t)
	for gen, cfg := range generations(s) {
		t.Run(gen, func(t *testing.T) {
			c := newClient(t, cfg)
			ctx := context.Background()
			// Warm up: authentication, keys and the vault list are cached.
			if _, err := c.Resolve(ctx, []fetch.Ref{ref("Prod/web", "password")}); err != nil {
				t.Fatal(err)
			}
			byPath := []fetch.Ref{ref("Prod/DB/Replica/pg2", ""), ref("Prod/DB/postgres", ""), ref("Prod/web", "")}
			s.ResetCounters()
			if _, err := c.Resolve(ctx, byPath); err != nil {
				t.Fatal(err)
			}
			pathCost := s.Requests()
			s.ResetCounters()
			// The same three entries, by selection.
			same := []fetch.Selector{sel(t, "Prod"), sel(t, "Prod/DB/Replica"), sel(t, "tag:db")}
			_, lists, err := c.ResolveList(ctx, nil, same)
			if err != nil || lists[0].Err != nil {
				t.Fatal(err, lists[0].Err)
			}
			selCost := s.Requests()
			s.ResetCounters()
			_, _, err = c.ResolveList(ctx, byPath, same)
			if err != nil {
				t.Fatal(err)
			}
			both := s.Requests()
			t.Logf("%s: by path %d requests, by selection %d, both in one pass %d", gen, pathCost, selCost, both)
			if selCost > pathCost || both > pathCost {
				t.Errorf("selection %d, both %d requests; want ≤ %d (by path)", selCost, both, pathCost)
			}
		})
	}
}

// An entry added between two listings is in the second: nothing about the
// selection is cached but the vault list.
func TestResolveListSeesNewEntries(t *testing.T) {
	s := newServer(t)
	c := newClient(t, s.Config())
	listDB := func() []string {
		l := list(t, c, "Prod/DB")[0]
		if l.Err != nil {
			t.Fatal(l.Err)
		}
		return paths(l)
	}
	before := listDB()
	if err := s.Seed([]fetchtest.Entry{{Path: "Prod/DB/mysql", Fields: map[string]string{"password": canary + "-my"}}}); err != nil {
		t.Fatal(err)
	}
	after := listDB()
	if len(after) != len(before)+1 || !slices.Contains(after, "Prod/DB/mysql") {
		t.Errorf("before %q, after %q", before, after)
	}
}

var _ interface {
	ResolveList(context.Context, []fetch.Ref, []fetch.Selector) ([]fetch.Result, []fetch.Listing, error)
} = (*passwork.Client)(nil)
