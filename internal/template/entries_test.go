package template

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/injector-dev/injector/internal/fetch"
)

// fakeLister is a fakeProvider that also lists folders: a selection's
// entries are those whose path starts with the folder.
type fakeLister struct {
	fakeProvider
	entries []fetch.Entry
	lmu     sync.Mutex
	calls   []string // one per ResolveList: "refs=N sels=M"
}

func (f *fakeLister) ResolveList(ctx context.Context, refs []fetch.Ref, sels []fetch.Selector) ([]fetch.Result, []fetch.Listing, error) {
	f.lmu.Lock()
	f.calls = append(f.calls, strings.Repeat("r", len(refs))+"/"+strings.Repeat("s", len(sels)))
	f.lmu.Unlock()
	results, err := f.Resolve(ctx, refs)
	if err != nil {
		return nil, nil, err
	}
	lists := make([]fetch.Listing, len(sels))
	for i, sel := range sels {
		if sel.Path == "missing" {
			lists[i].Err = &fetch.NotFoundError{Kind: "folder", Name: "missing", Nearby: []string{"prod"}}
			continue
		}
		for _, e := range f.entries {
			if strings.HasPrefix(e.Path, sel.Path+"/") {
				lists[i].Entries = append(lists[i].Entries, e)
			}
		}
	}
	return results, lists, nil
}

func newFakeLister() *fakeLister {
	return &fakeLister{
		fakeProvider: fakeProvider{values: map[string]string{"prod/app/db#login": "app", "other#password": "o"}},
		entries: []fetch.Entry{
			{ID: "1", Name: "db", Path: "prod/app/db", Fields: []fetch.Field{{Name: "password", Value: "pw-db"}, {Name: "login", Value: "app"}, {Name: "port", Value: "5432", Custom: true}}},
			{ID: "2", Name: "api key", Path: "prod/app/api key", Fields: []fetch.Field{{Name: "password", Value: "pw-api"}}},
		},
	}
}

func TestListFunctions(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"range", `<< range passworkEntries "prod/app" >><< .Name >>=<< .Password >>;<< end >>`, "db=pw-db;api key=pw-api;"},
		{"fields and custom fields", `<< range passworkEntries "prod/app" >><< .Path >>:<< get .Fields "login" >>:<< get .Custom "port" >>;<< end >>`, "prod/app/db:app:5432;prod/app/api key::;"},
		{"env names with sprig", `<< range passworkEntries "prod/app" >><< regexReplaceAll "[^A-Z0-9_]" (upper .Name) "_" >>=<< .Password | quote >>` + "\n" + `<< end >>`, "DB=\"pw-db\"\nAPI_KEY=\"pw-api\"\n"},
		{"json with sprig", `<< $m := dict >><< range passworkEntries "prod/app" >><< $_ := set $m .Name .Password >><< end >><< toJson $m >>`, `{"api key":"pw-api","db":"pw-db"}`},
		{"len", `<< len (passworkEntries "prod/app") >>`, "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newFakeLister()
			e := &Engine{Providers: map[string]Resolver{"passwork": p}}
			out, err := e.Render(context.Background(), []*Template{mustParse(t, "t", tt.text)})
			if err != nil {
				t.Fatal(err)
			}
			if got := string(out.Outputs[0]); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if !slices.Contains(out.Secrets, "pw-db") || !slices.Contains(out.Secrets, "5432") {
				t.Errorf("listed values are not in Secrets (masking): %q", out.Secrets)
			}
		})
	}
}

// A list and references are resolved in the same call to the provider,
// and a list that feeds further references costs one more round, not one
// request per entry.
func TestListFunctionsBatch(t *testing.T) {
	p := newFakeLister()
	e := &Engine{Providers: map[string]Resolver{"passwork": p}}
	text := `<< passwork "other" >> << range passworkEntries "prod/app" >><< .Name >>=<< passwork .Path "login" >>;<< end >>`
	p.values["prod/app/api key#login"] = "svc"
	out, err := e.Render(context.Background(), []*Template{mustParse(t, "t", text), mustParse(t, "u", `<< len (passworkEntries "prod/app") >>`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out.Outputs[0]); got != "o db=app;api key=svc;" {
		t.Errorf("got %q", got)
	}
	// Round 1: the literal reference and the selection together; round 2:
	// both entries' logins together.
	if !slices.Equal(p.calls, []string{"r/s"}) || len(p.batches) != 2 || len(p.batches[1]) != 2 {
		t.Errorf("provider calls (r: references, s: selections): %q, then %d batches: %v", p.calls, len(p.batches), p.batches)
	}
}

func TestListFunctionErrors(t *testing.T) {
	ctx := context.Background()
	e := &Engine{Providers: map[string]Resolver{"passwork": newFakeLister(), "passbolt": &fakeProvider{}}}
	tests := []struct{ text, want string }{
		{`<< range passworkEntries "missing" >>x<< end >>`, `t:1:10: at <passworkEntries "missing">: folder "missing" not found; available: "prod"`},
		{`<< range passworkEntries "a/*/b" >>x<< end >>`, `passworkEntries: only a final /** is a wildcard`},
		{`<< range passboltEntries "a" >>x<< end >>`, "passbolt: this provider cannot list folders or tags"},
		{`<< range passagentEntries "tag:x" >>x<< end >>`, "passagent: provider is not configured"},
	}
	for _, tt := range tests {
		_, err := e.Render(ctx, []*Template{mustParse(t, "t", tt.text)})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.text, err, tt.want)
		}
	}
	// A failure of the provider's whole batch.
	p := newFakeLister()
	p.fail = errors.New("HTTP 503")
	e = &Engine{Providers: map[string]Resolver{"passwork": p}}
	if _, err := e.Render(ctx, []*Template{mustParse(t, "t", `<< range passworkEntries "prod/app" >>x<< end >>`)}); err == nil || !strings.Contains(err.Error(), "HTTP 503") {
		t.Errorf("batch failure: %v", err)
	}
}

// RenderSelect lists selections given beside the templates (run
// --env-from) in the templates' first round.
func TestRenderSelect(t *testing.T) {
	p := newFakeLister()
	e := &Engine{Providers: map[string]Resolver{"passwork": p}}
	sel, _ := fetch.ParseSelector("passwork", "prod/app")
	out, err := e.RenderSelect(context.Background(), []*Template{mustParse(t, "t", `<< passwork "other" >>`)}, []fetch.Selector{sel})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Listings) != 1 || len(out.Listings[0].Entries) != 2 || !slices.Equal(p.calls, []string{"r/s"}) {
		t.Errorf("listings %+v, calls %q", out.Listings, p.calls)
	}
	missing, _ := fetch.ParseSelector("passwork", "missing")
	if _, err := e.RenderSelect(context.Background(), nil, []fetch.Selector{missing}); err == nil || !strings.Contains(err.Error(), `folder "missing" not found`) {
		t.Errorf("a failed selection: %v", err)
	}
}
