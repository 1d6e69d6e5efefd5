package cache

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/injector-dev/injector/internal/fetch"
)

var errDown = errors.New("connection refused")

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// warm opens a cache in a new directory, records one run with the given
// responses and commits it.
func warm(t *testing.T, c *clock, bodies map[string]string) (string, []string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache")
	var warnings []string
	d, err := Open(dir, Options{Now: c.now, Warn: func(msg string, err error) { warnings = append(warnings, msg+": "+err.Error()) }})
	if err != nil {
		t.Fatal(err)
	}
	for k, b := range bodies {
		d.Save("passbolt", k, &fetch.Response{Status: 200, Body: []byte(b)})
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	return dir, warnings
}

func reopen(t *testing.T, dir string, c *clock, maxAge time.Duration) (*Dir, *[]string) {
	t.Helper()
	var warnings []string
	d, err := Open(dir, Options{Now: c.now, MaxAge: maxAge, Warn: func(msg string, err error) { warnings = append(warnings, msg+": "+err.Error()) }})
	if err != nil {
		t.Fatal(err)
	}
	return d, &warnings
}

func TestServeWithinMaxAgeOnly(t *testing.T) {
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	dir, _ := warm(t, c, map[string]string{"k1": "ciphertext-1"})

	c.t = c.t.Add(time.Hour)
	d, _ := reopen(t, dir, c, 2*time.Hour)
	if err := d.Usable("passbolt"); err != nil {
		t.Fatalf("Usable: %v", err)
	}
	resp, err := d.Serve("passbolt", "k1", errDown)
	if err != nil || string(resp.Body) != "ciphertext-1" || resp.Status != 200 {
		t.Fatalf("Serve = %v, %v", resp, err)
	}
	if d.Down("passbolt") != errDown {
		t.Errorf("Down = %v, want the outage", d.Down("passbolt"))
	}
	if _, err := d.Serve("passbolt", "other", errDown); !errors.Is(err, errDown) || !strings.Contains(err.Error(), "no response") {
		t.Errorf("Serve of an unknown request: %v", err)
	}
	if got := d.Served()["passbolt"]; got != time.Hour {
		t.Errorf("Served age %v, want 1h", got)
	}
	// Serving keeps the time of receipt: committing the run does not make
	// the response younger.
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(90 * time.Minute)
	d, _ = reopen(t, dir, c, 2*time.Hour)
	if err := d.Usable("passbolt"); err == nil || !strings.Contains(err.Error(), "maximum age") {
		t.Errorf("Usable past the maximum age: %v", err)
	}
	if _, err := d.Serve("passbolt", "k1", errDown); !errors.Is(err, errDown) || !strings.Contains(err.Error(), "past the cache's maximum age of 2h0m0s") {
		t.Errorf("Serve past the maximum age: %v", err)
	}
}

func TestCommitKeepsExactlyWhatTheRunUsed(t *testing.T) {
	c := &clock{time.Now()}
	dir, _ := warm(t, c, map[string]string{"old": "a", "kept": "b"})
	d, _ := reopen(t, dir, c, time.Hour)
	d.Begin()
	d.Save("passbolt", "kept", &fetch.Response{Status: 200, Body: []byte("b2")})
	d.Save("passagent", "new", &fetch.Response{Status: 200, Body: []byte("c")})
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	d, _ = reopen(t, dir, c, time.Hour)
	if _, err := d.Serve("passbolt", "old", errDown); err == nil {
		t.Error("a response the last run did not use is still served")
	}
	if r, err := d.Serve("passbolt", "kept", errDown); err != nil || string(r.Body) != "b2" {
		t.Errorf("kept: %v %v", r, err)
	}
	// A run that no longer uses a provider removes its file.
	d.Begin()
	d.Save("passagent", "new", &fetch.Response{Status: 200, Body: []byte("c")})
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "passbolt.cache")); !os.IsNotExist(err) {
		t.Errorf("passbolt.cache still there after a run without passbolt: %v", err)
	}
}

// TestDamagedFileIgnored: a truncated, altered or foreign file is ignored
// with a warning, never served, never a crash.
func TestDamagedFileIgnored(t *testing.T) {
	c := &clock{time.Now()}
	for name, damage := range map[string]func([]byte) []byte{
		"truncated":    func(b []byte) []byte { return b[:len(b)/2] },
		"one byte off": func(b []byte) []byte { b[len(b)-5] ^= 1; return b },
		"first line":   func(b []byte) []byte { return b[:strings.IndexByte(string(b), '\n')] },
		"empty":        func([]byte) []byte { return nil },
		"not a cache":  func([]byte) []byte { return []byte(`{"provider":"passbolt","entries":{}}`) },
	} {
		t.Run(name, func(t *testing.T) {
			dir, _ := warm(t, c, map[string]string{"k": "ciphertext"})
			file := filepath.Join(dir, "passbolt.cache")
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			d, warnings := reopen(t, dir, c, time.Hour)
			if r, err := d.Serve("passbolt", "k", errDown); err == nil {
				t.Fatalf("a damaged file served %q", r.Body)
			}
			if d.Usable("passbolt") == nil {
				t.Error("a damaged file counts as usable")
			}
			if len(*warnings) != 1 || !strings.Contains((*warnings)[0], "ignoring a cache file") {
				t.Errorf("warnings: %q", *warnings)
			}
		})
	}
}

func TestLooseOrForeignRefused(t *testing.T) {
	c := &clock{time.Now()}
	t.Run("file mode", func(t *testing.T) {
		dir, _ := warm(t, c, map[string]string{"k": "ciphertext"})
		if err := os.Chmod(filepath.Join(dir, "passbolt.cache"), 0o644); err != nil {
			t.Fatal(err)
		}
		d, warnings := reopen(t, dir, c, time.Hour)
		if _, err := d.Serve("passbolt", "k", errDown); err == nil {
			t.Error("a file readable by others was served")
		}
		if len(*warnings) != 1 || !strings.Contains((*warnings)[0], "mode 0644") {
			t.Errorf("warnings: %q", *warnings)
		}
	})
	t.Run("symlink", func(t *testing.T) {
		dir, _ := warm(t, c, map[string]string{"k": "ciphertext"})
		file := filepath.Join(dir, "passbolt.cache")
		if err := os.Rename(file, filepath.Join(dir, "elsewhere")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("elsewhere", file); err != nil {
			t.Fatal(err)
		}
		d, warnings := reopen(t, dir, c, time.Hour)
		if _, err := d.Serve("passbolt", "k", errDown); err == nil {
			t.Error("a symbolic link was followed")
		}
		if len(*warnings) != 1 {
			t.Errorf("warnings: %q", *warnings)
		}
	})
	t.Run("dir mode", func(t *testing.T) {
		dir := t.TempDir() // 0700 from the testing package? Make it loose.
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "mode 0755") {
			t.Errorf("Open of a 0755 directory: %v", err)
		}
	})
	t.Run("not a dir", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(f, Options{}); err == nil {
			t.Error("Open of a file succeeded")
		}
	})
	t.Run("other owner", func(t *testing.T) {
		// The owner check on what Stat reports, without needing root to
		// chown: a file of uid+1.
		fi := fakeInfo{mode: 0o600, uid: uint32(os.Geteuid() + 1)}
		if err := private(fi, "x", 0o600); err == nil || !strings.Contains(err.Error(), "owned by uid") {
			t.Errorf("private(other owner) = %v", err)
		}
		fi.uid = uint32(os.Geteuid())
		if err := private(fi, "x", 0o600); err != nil {
			t.Errorf("private(own file) = %v", err)
		}
	})
	if os.Geteuid() == 0 {
		t.Run("other owner, for real", func(t *testing.T) {
			dir, _ := warm(t, c, map[string]string{"k": "ciphertext"})
			if err := os.Chown(filepath.Join(dir, "passbolt.cache"), 65534, 65534); err != nil {
				t.Fatal(err)
			}
			d, warnings := reopen(t, dir, c, time.Hour)
			if _, err := d.Serve("passbolt", "k", errDown); err == nil {
				t.Error("a file of another user was served")
			}
			if len(*warnings) != 1 || !strings.Contains((*warnings)[0], "owned by uid 65534") {
				t.Errorf("warnings: %q", *warnings)
			}
		})
	}
}

func TestFilesPrivate(t *testing.T) {
	c := &clock{time.Now()}
	dir, _ := warm(t, c, map[string]string{"k": "ciphertext"})
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v (%v)", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("cache holds %d files, want 1 (no temporary files left)", len(entries))
	}
	info, _ := entries[0].Info()
	if info.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v", info.Mode())
	}
}

type fakeInfo struct {
	mode fs.FileMode
	uid  uint32
}

func (f fakeInfo) Name() string       { return "x" }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return false }
func (f fakeInfo) Sys() any           { return &syscall.Stat_t{Uid: f.uid} }

func TestRefuseKeepsNothingOfTheRun(t *testing.T) {
	c := &clock{time.Now()}
	dir, _ := warm(t, c, map[string]string{"k": "ciphertext"})
	d, warnings := reopen(t, dir, c, time.Hour)
	d.Begin()
	d.Save("passbolt", "k", &fetch.Response{Status: 200, Body: []byte("ciphertext")})
	d.Refuse("passbolt", "an entry is not encrypted")
	d.Save("passbolt", "k2", &fetch.Response{Status: 200, Body: []byte("plain")})
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "passbolt.cache")); !os.IsNotExist(err) {
		t.Errorf("the file of a refused provider is still there: %v", err)
	}
	if len(*warnings) != 1 || !strings.Contains((*warnings)[0], "an entry is not encrypted") {
		t.Errorf("warnings: %q", *warnings)
	}
}
