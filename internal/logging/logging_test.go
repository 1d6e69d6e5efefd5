package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	var buf bytes.Buffer
	log, err := New("warn", "", &buf) // not a terminal: JSON
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Msg("dropped")
	log.Warn().Msg("kept")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["level"] != "warn" || line["message"] != "kept" || line["time"] == nil {
		t.Errorf("output %q: %v", buf.String(), err)
	}

	buf.Reset()
	log, err = New("debug", "console", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug().Msg("hello")
	if out := buf.String(); !strings.Contains(out, "hello") || strings.HasPrefix(out, "{") {
		t.Errorf("console output %q", out)
	}

	for _, bad := range [][2]string{{"", "json"}, {"loud", "json"}, {"info", "xml"}} {
		if _, err := New(bad[0], bad[1], &buf); err == nil {
			t.Errorf("New(%q, %q): want an error", bad[0], bad[1])
		}
	}
}
