package fetch

import (
	"strings"
	"testing"
)

func TestParseSelector(t *testing.T) {
	tests := []struct {
		in, str, path, tag string
		recursive          bool
		err                string
	}{
		{in: "prod/app", str: "prod/app", path: "prod/app"},
		{in: "/prod//app/", str: "prod/app", path: "prod/app"},
		{in: "prod/app/**", str: "prod/app/**", path: "prod/app", recursive: true},
		{in: "prod", str: "prod", path: "prod"},
		{in: "prod/**", str: "prod/**", path: "prod", recursive: true},
		{in: "tag:db", str: "tag:db", tag: "db"},
		{in: "tag:", err: "empty tag"},
		{in: "tag:db,prod", str: "tag:db,prod", tag: "db,prod"},
		{in: "tag:db,", err: "empty tag"},
		{in: "", err: "empty folder path"},
		{in: "/**", err: "empty folder path"},
		{in: "prod/*/app", err: "only a final /**"},
		{in: "prod/**/app", err: "only a final /**"},
	}
	for _, tt := range tests {
		s, err := ParseSelector("passwork", tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || s.String() != tt.str || s.Path != tt.path || s.Tag != tt.tag || s.Recursive != tt.recursive || s.Provider != "passwork" {
			t.Errorf("%q: got %+v (%q), %v", tt.in, s, s.String(), err)
		}
	}
	s, _ := ParseSelector("passwork", "prod/app/**")
	for dir, want := range map[string]bool{"prod/app": true, "prod/app/x": true, "prod/application": false, "prod": false} {
		if s.Contains(dir) != want {
			t.Errorf("%s contains %q = %v", s, dir, !want)
		}
	}
	s, _ = ParseSelector("passwork", "prod/app")
	if s.Contains("prod/app/x") {
		t.Error("a folder selection is not recursive by default")
	}
	s, _ = ParseSelector("passwork", "tag:db,prod")
	if !s.Tagged([]string{"prod", "x", "db"}) || s.Tagged([]string{"db"}) || s.Tagged([]string{"DB", "prod"}) {
		t.Error("tag:db,prod wants both tags, exactly")
	}
}
