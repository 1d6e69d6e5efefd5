package passbolt_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/passbolt/passbolttest"
)

func TestResolveListFolders(t *testing.T) {
	s := newServer(t)
	add(t, s, passbolttest.Resource{Path: "infra/ci/deploy-key", Type: "v5-default", Username: "deploy", URIs: []string{"https://ci"}, Description: "d", Password: "dk",
		Custom: []passbolttest.Custom{{Label: "region", Value: "eu-west-1"}}})
	add(t, s, passbolttest.Resource{Path: "infra/ci/npm token", Type: "password-string", Password: "npm"})
	add(t, s, passbolttest.Resource{Path: "infra/ci/nested/registry", Type: "password-and-description", Password: "reg"})
	add(t, s, passbolttest.Resource{Path: "infra/web", Type: "password-string", Password: "web"})
	c := newClient(t, s.Config())
	ctx := context.Background()
	sel := func(v string) fetch.Selector {
		out, err := fetch.ParseSelector("passbolt", v)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		sel, want, err string
	}{
		{sel: "infra/ci", want: "infra/ci/deploy-key infra/ci/npm token"},
		{sel: "infra/ci/**", want: "infra/ci/deploy-key infra/ci/nested/registry infra/ci/npm token"},
		{sel: "infra", want: "infra/web"},
		{sel: "infra/cd", err: `folder "cd" not found in folder "infra"; available: "ci"`},
		{sel: "tag:db", err: "Passbolt's API has no tags"},
	}
	var sels []fetch.Selector
	for _, tt := range tests {
		sels = append(sels, sel(tt.sel))
	}
	res, lists, err := c.ResolveList(ctx, []fetch.Ref{ref("infra/web", "password")}, sels)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Value != "web" {
		t.Errorf("the reference beside the selections: %q, %v", res[0].Value, res[0].Err)
	}
	for i, tt := range tests {
		var got []string
		for _, e := range lists[i].Entries {
			got = append(got, e.Path)
		}
		switch {
		case tt.err != "" && (lists[i].Err == nil || !strings.Contains(lists[i].Err.Error(), tt.err)):
			t.Errorf("%s: err = %v, want %q", tt.sel, lists[i].Err, tt.err)
		case tt.err == "" && (lists[i].Err != nil || strings.Join(got, " ") != tt.want):
			t.Errorf("%s: got %q, %v; want %q", tt.sel, got, lists[i].Err, tt.want)
		}
	}
	dk := lists[0].Entries[0]
	want := []fetch.Field{{Name: "password", Value: "dk"}, {Name: "username", Value: "deploy"}, {Name: "uri", Value: "https://ci"},
		{Name: "description", Value: "d"}, {Name: "region", Value: "eu-west-1", Custom: true}}
	if dk.Name != "deploy-key" || !slices.Equal(dk.Fields, want) {
		t.Errorf("deploy-key = %+v", dk)
	}

	// Costs: a selection of the folders' resources costs no more than the
	// same resources by path, and shares listings with references.
	byPath := []fetch.Ref{ref("infra/ci/deploy-key", ""), ref("infra/ci/npm token", ""), ref("infra/ci/nested/registry", "")}
	s.ResetCounters()
	if _, err := c.Resolve(ctx, byPath); err != nil {
		t.Fatal(err)
	}
	pathCost := s.Requests()
	s.ResetCounters()
	if _, _, err := c.ResolveList(ctx, byPath, sels[1:2]); err != nil {
		t.Fatal(err)
	}
	if both := s.Requests(); both > pathCost {
		t.Errorf("references and infra/ci/**: %d requests, references alone %d", both, pathCost)
	}

	// A resource added between two listings is in the second.
	add(t, s, passbolttest.Resource{Path: "infra/ci/new", Type: "password-string", Password: "n"})
	_, lists, err = c.ResolveList(ctx, nil, sels[:1])
	if err != nil || len(lists[0].Entries) != 3 {
		t.Errorf("after adding infra/ci/new: %+v, %v", lists, err)
	}
}
