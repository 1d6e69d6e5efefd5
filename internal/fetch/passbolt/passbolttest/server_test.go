package passbolttest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestEnvelopeAndAuthGate checks the wire shapes the client relies on:
// the envelope with header.code == HTTP status, 401 without credentials,
// and secret-access accounting for contain[secret].
func TestEnvelopeAndAuthGate(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Add(Resource{Path: "a/b", Password: "p"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path   string
		status int
		msg    string
	}{
		{"/auth/verify.json", 200, msgOK},
		{"/folders.json", 401, msgAuthReq},
		{"/nope.json", 401, msgAuthReq},
	}
	for _, tt := range tests {
		resp, err := http.Get(s.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			Header struct {
				Status, Message, URL string
				Code                 int
			}
			Body json.RawMessage
		}
		err = json.NewDecoder(resp.Body).Decode(&env)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tt.status || env.Header.Code != tt.status ||
			env.Header.Message != tt.msg || env.Header.URL != tt.path {
			t.Errorf("%s: HTTP %d, envelope %+v, %v", tt.path, resp.StatusCode, env.Header, err)
		}
	}
	if !strings.HasPrefix(s.ServerFingerprint(), strings.ToUpper(s.ServerFingerprint()[:4])) || len(s.ServerFingerprint()) != 40 {
		t.Errorf("fingerprint %q is not 40 upper-case hex", s.ServerFingerprint())
	}
	if len(Slugs()) != 11 {
		t.Errorf("%d slugs, want 11", len(Slugs()))
	}
}
