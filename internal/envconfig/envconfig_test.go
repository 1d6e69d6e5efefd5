package envconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type testSettings struct {
	Token string `env:"X_TOKEN"`
	URL   string `env:"X_URL"`
}

func TestLoadFileVariants(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("tok-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var s testSettings
	if err := Load(&s, []string{"X_TOKEN_FILE=" + tokenFile, "X_URL=https://pw"}); err != nil {
		t.Fatal(err)
	}
	if s.Token != "tok-from-file" || s.URL != "https://pw" {
		t.Errorf("got %+v", s)
	}

	err := Load(&s, []string{"X_TOKEN_FILE=" + tokenFile, "X_TOKEN=direct"})
	if err == nil || !strings.Contains(err.Error(), "both X_TOKEN and X_TOKEN_FILE") {
		t.Errorf("both set: err = %v", err)
	}
	err = Load(&s, []string{"X_TOKEN_FILE=" + filepath.Join(dir, "missing")})
	if err == nil || !strings.Contains(err.Error(), "X_TOKEN_FILE") {
		t.Errorf("missing file: err = %v", err)
	}
}
