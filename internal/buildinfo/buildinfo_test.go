package buildinfo

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	vcs := func(main string, settings ...string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			bi := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: main}}
			for i := 0; i+1 < len(settings); i += 2 {
				bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
			}
			return bi, true
		}
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	tests := []struct {
		name                  string
		version, commit, date string
		read                  func() (*debug.BuildInfo, bool)
		want                  Info
	}{
		{"stamped by build-static wins", "v1.2.3", "abc", "2026-01-02T03:04:05Z",
			vcs("(devel)", "vcs.revision", "def", "vcs.time", "2025-01-01T00:00:00Z", "vcs.modified", "true"),
			Info{Version: "v1.2.3", Commit: "abc", Date: "2026-01-02T03:04:05Z", Go: "go1.99.1"}},
		{"go build in a checkout: the toolchain's VCS stamp", "", "", "",
			vcs("(devel)", "vcs.revision", "def", "vcs.time", "2025-01-01T00:00:00Z", "vcs.modified", "true"),
			Info{Version: "dev", Commit: "def+dirty", Date: "2025-01-01T00:00:00Z", Go: "go1.99.1"}},
		{"go install module@version", "", "", "", vcs("v0.4.0"),
			Info{Version: "v0.4.0", Go: "go1.99.1"}},
		{"nothing known", "", "", "", none,
			Info{Version: "dev", Go: runtime.Version()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := get(tt.version, tt.commit, tt.date, tt.read)
			tt.want.Platform = runtime.GOOS + "/" + runtime.GOARCH
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPrint(t *testing.T) {
	var b bytes.Buffer
	Info{Version: "v1.2.3", Commit: "abc", Go: "go1.99.1", Platform: "linux/arm64"}.Print(&b, "injector")
	want := "injector v1.2.3\n  commit:   abc\n  built:    unknown\n  go:       go1.99.1\n  platform: linux/arm64\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	if strings.Count(b.String(), "\n") != 5 {
		t.Error("want five lines")
	}
}
