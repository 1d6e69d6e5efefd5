// Package buildinfo says which build of a binary is running: the version,
// commit and date that scripts/build-static sets with -ldflags -X, with
// what the Go toolchain records itself (go install, go build in a git
// checkout) as the fallback, so `injector version` says something useful
// however the binary was built.
package buildinfo

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set at link time by scripts/build-static:
//
//	-X github.com/injector-dev/injector/internal/buildinfo.version=v1.2.3
//	-X github.com/injector-dev/injector/internal/buildinfo.commit=5d784b0…
//	-X github.com/injector-dev/injector/internal/buildinfo.date=2026-01-02T03:04:05Z
//
// date is the source date (SOURCE_DATE_EPOCH, else the commit's time), not
// the wall clock, so a rebuild of the same commit is byte for byte the same.
var version, commit, date string

// Info describes the running binary.
type Info struct {
	Version  string // "v1.2.3", or "dev" for an unreleased build
	Commit   string // full commit hash, "+dirty" when built from a modified tree; "" if unknown
	Date     string // RFC 3339 source date; "" if unknown
	Go       string // the Go release it was built with
	Platform string // GOOS/GOARCH
}

// Get returns the running binary's build information.
func Get() Info {
	return get(version, commit, date, debug.ReadBuildInfo)
}

func get(version, commit, date string, read func() (*debug.BuildInfo, bool)) Info {
	info := Info{Version: version, Commit: commit, Date: date, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := read(); ok {
		info.Go = bi.GoVersion
		// `go install example.com/m/cmd/x@v1.2.3` records the module
		// version; a build inside the checkout records "(devel)".
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = s.Value
				}
			case "vcs.time":
				if info.Date == "" {
					info.Date = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && commit == "" && info.Commit != "" {
			info.Commit += "+dirty"
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}

// Print writes the information as `injector version` shows it.
func (i Info) Print(w io.Writer, name string) {
	unknown := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	fmt.Fprintf(w, "%s %s\n", name, i.Version)
	fmt.Fprintf(w, "  commit:   %s\n", unknown(i.Commit))
	fmt.Fprintf(w, "  built:    %s\n", unknown(i.Date))
	fmt.Fprintf(w, "  go:       %s\n", i.Go)
	fmt.Fprintf(w, "  platform: %s\n", i.Platform)
}
