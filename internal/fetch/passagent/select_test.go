package passagent_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passagent/passagenttest"
)

func TestResolveListTags(t *testing.T) {
	s := newServer(t, passagenttest.Options{})
	seed(t, s, github,
		fetchtest.Entry{Path: "prod db", Fields: map[string]string{"password": "db-pass", "tags": "prod"}},
		fetchtest.Entry{Path: "stripe", Fields: map[string]string{"password": "sk", "tags": "prod, billing"}},
		fetchtest.Entry{Path: "laptop", Fields: map[string]string{"password": "x", "tags": "home"}},
	)
	c := newClient(t, s.Config())
	ctx := context.Background()
	sels := []fetch.Selector{{Provider: "passagent", Tag: "prod"}, {Provider: "passagent", Tag: "work"}, {Provider: "passagent", Tag: "none"}, {Provider: "passagent", Path: "prod"}, {Provider: "passagent", Tag: "prod,billing"}}
	res, lists, err := c.ResolveList(ctx, []fetch.Ref{ref("laptop", "password")}, sels)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[0].Value != "x" {
		t.Errorf("the reference beside the selections: %q, %v", res[0].Value, res[0].Err)
	}
	names := func(l fetch.Listing) []string {
		var out []string
		for _, e := range l.Entries {
			out = append(out, e.Name)
		}
		return out
	}
	if got := names(lists[0]); lists[0].Err != nil || !slices.Equal(got, []string{"prod db", "stripe"}) {
		t.Errorf("tag:prod = %q, %v", got, lists[0].Err)
	}
	gh := lists[1].Entries
	if lists[1].Err != nil || len(gh) != 1 {
		t.Fatalf("tag:work = %+v, %v", gh, lists[1].Err)
	}
	want := []fetch.Field{
		{Name: "password", Value: "gh-pass"}, {Name: "username", Value: "octo@example.com"}, {Name: "notes", Value: "line1\nline2"},
		{Name: "website", Value: "github.com"}, {Name: "url", Value: "https://github.com/login"},
		{Name: "PIN", Value: "1234", Custom: true}, {Name: "Recovery Code", Value: "rc-1", Custom: true},
	}
	if !slices.Equal(gh[0].Fields, want) {
		t.Errorf("GitHub fields = %+v", gh[0].Fields)
	}
	if lists[2].Err != nil || len(lists[2].Entries) != 0 {
		t.Errorf("tag:none = %+v", lists[2])
	}
	if got := names(lists[4]); !slices.Equal(got, []string{"stripe"}) {
		t.Errorf("tag:prod,billing = %q", got)
	}
	if err := lists[3].Err; err == nil || !strings.Contains(err.Error(), "PassAgent has no folders; select entries by tag (tag:NAME)") {
		t.Errorf("a folder selection: %v", err)
	}

	// An entry tagged after the first listing is in the next.
	seed(t, s, fetchtest.Entry{Path: "redis", Fields: map[string]string{"password": "r", "tags": "prod"}})
	_, lists, err = c.ResolveList(ctx, nil, sels[:1])
	if got := names(lists[0]); err != nil || !slices.Equal(got, []string{"prod db", "redis", "stripe"}) {
		t.Errorf("after adding redis: %q, %v", got, err)
	}

	// Selections ride on the references' one pass over the list.
	s.ResetCounters()
	if _, err := c.Resolve(ctx, []fetch.Ref{ref("laptop", "password"), ref("stripe", "password")}); err != nil {
		t.Fatal(err)
	}
	byRef := s.Requests()
	s.ResetCounters()
	if _, _, err := c.ResolveList(ctx, []fetch.Ref{ref("laptop", "password")}, sels[:3]); err != nil {
		t.Fatal(err)
	}
	if both := s.Requests(); both > byRef {
		t.Errorf("references and selections: %d requests, references alone %d", both, byRef)
	}
}
