package fetch

import (
	"strings"
	"testing"
)

func TestBaseURL(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"https://pw.example.com/", "https://pw.example.com", ""},
		{"  https://pw.example.com/api/v4 ", "https://pw.example.com/api/v4", ""},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", ""},
		{"http://localhost", "http://localhost", ""},
		{"http://[::1]:9", "http://[::1]:9", ""},
		{"", "", "X_URL is empty"},
		{"pw.example.com", "", "not an absolute URL"},
		{"http://pw.example.com", "", "must use https (http is allowed for loopback only)"},
		{"ftp://pw.example.com", "", "must use https"},
		{"https://pw.example.com/?a=b", "", "must not have a query"},
		{"https://user:hunter2@pw.example.com", "", "must not contain credentials"},
	}
	for _, tt := range tests {
		got, err := BaseURL("x", "X_URL", tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("BaseURL(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the URL's password: %v", err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("BaseURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
