package passbolttest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
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

// getJSON logs in by session cookie (GPGAuth is not needed: the test
// installs a session directly) and decodes the body of GET path.
func getJSON(t *testing.T, s *Server, path string, out any) int {
	t.Helper()
	s.mu.Lock()
	s.sessions["test-session"] = true
	s.mu.Unlock()
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	req.AddCookie(&http.Cookie{Name: "passbolt_session", Value: "test-session"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct{ Body json.RawMessage }
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(env.Body, out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// TestHasIDWithSecrets: filter[has-id][] in both spellings, combined with
// has-parent and contain[secret], and the per-resource read accounting.
func TestHasIDWithSecrets(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var ids []string
	for _, p := range []string{"f/a", "f/b", "f/c", "g/d"} {
		id, err := s.Add(Resource{Path: p, Password: "p"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	a, b, d := ids[0], ids[1], ids[3]
	folderF := ""
	s.mu.Lock()
	for _, f := range s.folders {
		if f.parent == "" && s.seedNames[f.id] == "f" {
			folderF = f.id
		}
	}
	s.mu.Unlock()
	tests := []struct {
		query  string
		status int
		want   []string // ids returned, each with its secret
	}{
		{"filter[has-id][]=" + a + "&filter[has-id][]=" + d + "&contain[secret]=1", 200, []string{a, d}},
		{"filter[has-id][]=" + a + "," + b + "&contain[secret]=1", 200, []string{a, b}},
		{"filter[has-id][]=" + a + "&filter[has-id][]=" + d + "&filter[has-parent][]=" + folderF + "&contain[secret]=1", 200, []string{a}},
		{"filter[has-id][]=not-a-uuid&contain[secret]=1", 400, nil},
	}
	for _, tt := range tests {
		s.ResetCounters()
		var rows []struct {
			ID      string
			Secrets []struct {
				ResourceID string `json:"resource_id"`
				Data       string `json:"data"`
			} `json:"secrets"`
		}
		status := getJSON(t, s, "/resources.json?"+tt.query, &rows)
		var got []string
		for _, r := range rows {
			if len(r.Secrets) != 1 || r.Secrets[0].ResourceID != r.ID || !strings.Contains(r.Secrets[0].Data, "PGP MESSAGE") {
				t.Errorf("%s: row %s has secrets %+v", tt.query, r.ID, r.Secrets)
			}
			got = append(got, r.ID)
		}
		reads := s.SecretReadsByResource()
		if status != tt.status || strings.Join(got, ",") != strings.Join(tt.want, ",") ||
			len(reads) != len(tt.want) || s.SecretReads() != len(tt.want) {
			t.Errorf("%s: HTTP %d, ids %v, reads %v; want HTTP %d, ids %v", tt.query, status, got, reads, tt.status, tt.want)
		}
		for _, id := range tt.want {
			if reads[id] != 1 {
				t.Errorf("%s: %s read %d times, want 1", tt.query, id, reads[id])
			}
		}
	}

	// Without contain[secret] (or with it switched off) nothing is read.
	s.SetContainSecret(false)
	s.ResetCounters()
	var rows []map[string]any
	getJSON(t, s, "/resources.json?filter[has-id][]="+a+"&contain[secret]=1", &rows)
	if len(rows) != 1 || rows[0]["secrets"] != nil || s.SecretReads() != 0 {
		t.Errorf("contain[secret] off: rows %v, %d reads", rows, s.SecretReads())
	}
}

// TestFaultDelay: a delayed fault answers normally after the delay, and a
// client that gives up ends the request (Close would otherwise wait).
func TestFaultDelay(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.AddFault(Fault{Path: "/auth/verify.json", Delay: time.Millisecond, Times: 1})
	resp, err := http.Get(s.URL + "/auth/verify.json")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("short delay: %v, %v", resp, err)
	}
	resp.Body.Close()

	s.AddFault(Fault{Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/auth/verify.json", nil)
	if resp, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("long delay: %v, %v; want the client's deadline", resp, err)
	}
}
