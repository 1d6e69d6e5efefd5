package fetch

import (
	"slices"
	"testing"
)

func TestSegments(t *testing.T) {
	tests := []struct {
		path string
		want []string
	}{
		{"", []string{}},
		{"/", []string{}},
		{"a", []string{"a"}},
		{"a/b/c", []string{"a", "b", "c"}},
		{"/a//b/", []string{"a", "b"}},
		{"///x", []string{"x"}},
		{"ü/ß/", []string{"ü", "ß"}},
	}
	for _, tt := range tests {
		got := Ref{Path: tt.path}.Segments()
		if !slices.Equal(got, tt.want) {
			t.Errorf("Segments(%q) = %q, want %q", tt.path, got, tt.want)
		}
		if allocs := testing.AllocsPerRun(10, func() { Ref{Path: tt.path}.Segments() }); allocs > 1 {
			t.Errorf("Segments(%q) allocated %v times, want at most 1", tt.path, allocs)
		}
	}
}
