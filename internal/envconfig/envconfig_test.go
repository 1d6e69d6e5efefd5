package envconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

	// Every unreadable file and every bad value at once, not one per run,
	// each named by its variable.
	var n testNumbers
	err = Load(&n, []string{"X_TOKEN_FILE=" + filepath.Join(dir, "missing1"), "X_URL_FILE=" + filepath.Join(dir, "missing2"),
		"X_COUNT=many", "X_WAIT=-1"})
	for _, want := range []string{"config: X_TOKEN_FILE: open ", "config: X_URL_FILE: open ",
		`config: X_COUNT: want a whole number (strconv.ParseInt: parsing "many": invalid syntax)`,
		`config: X_WAIT: want a duration like 30s, 5m or 1h30m`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q among the errors, got %v", want, err)
		}
	}
}

type testNumbers struct {
	Token string `env:"X_TOKEN"`
	Inner struct {
		URL   string        `env:"X_URL"`
		Count int           `env:"X_COUNT"`
		Wait  time.Duration `env:"X_WAIT"`
	}
}
