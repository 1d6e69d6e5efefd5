package render

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestWriteAllCreatesWithMode(t *testing.T) {
	dir := t.TempDir()
	files := []File{
		{Path: filepath.Join(dir, "a.env"), Content: []byte("A=1\n")},
		{Path: filepath.Join(dir, "sub", "b.json"), Content: []byte("{}"), Mode: 0o640},
	}
	changed, err := WriteAll(files)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 2 {
		t.Fatalf("changed = %v", changed)
	}
	for _, tt := range []struct {
		path    string
		mode    os.FileMode
		content string
	}{{files[0].Path, 0o600, "A=1\n"}, {files[1].Path, 0o640, "{}"}} {
		st, err := os.Stat(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != tt.mode {
			t.Errorf("%s mode %o, want %o", tt.path, st.Mode().Perm(), tt.mode)
		}
		b, _ := os.ReadFile(tt.path)
		if string(b) != tt.content {
			t.Errorf("%s = %q", tt.path, b)
		}
	}
	assertNoTemps(t, dir)
}

func TestWriteAllOnlyChanged(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if _, err := WriteAll([]File{{Path: a, Content: []byte("1")}, {Path: b, Content: []byte("2")}}); err != nil {
		t.Fatal(err)
	}
	stA, _ := os.Stat(a)
	inoA := inode(t, a)

	changed, err := WriteAll([]File{{Path: a, Content: []byte("1")}, {Path: b, Content: []byte("3")}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changed, []string{b}) {
		t.Errorf("changed = %v, want only %s", changed, b)
	}
	if inode(t, a) != inoA {
		t.Error("unchanged file was rewritten")
	}
	st2, _ := os.Stat(a)
	if !st2.ModTime().Equal(stA.ModTime()) {
		t.Error("unchanged file's mtime moved")
	}

	// A mode change alone counts as a change.
	changed, err = WriteAll([]File{{Path: a, Content: []byte("1"), Mode: 0o644}})
	if err != nil || len(changed) != 1 {
		t.Fatalf("mode change: changed=%v err=%v", changed, err)
	}
}

func TestWriteAllIsAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A directory where a file must go makes the second file fail.
	bad := filepath.Join(dir, "isdir")
	if err := os.Mkdir(bad, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := WriteAll([]File{{Path: good, Content: []byte("new")}, {Path: bad, Content: []byte("x")}})
	if err == nil || !strings.Contains(err.Error(), "destination is a directory") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(good); string(b) != "old" {
		t.Errorf("good file = %q, want untouched %q", b, "old")
	}
	assertNoTemps(t, dir)
}

func TestWriteAllUnwritableDirLeavesOthers(t *testing.T) {
	// A path under a regular file cannot be created, even by root.
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("old"), 0o600)
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, []byte("x"), 0o600)
	_, err := WriteAll([]File{{Path: good, Content: []byte("new")}, {Path: filepath.Join(blocker, "under"), Content: []byte("x")}})
	if err == nil {
		t.Fatal("want error")
	}
	if b, _ := os.ReadFile(good); string(b) != "old" {
		t.Errorf("good file = %q after failed render", b)
	}
	assertNoTemps(t, dir)
}

func TestStaleTempFilesRemoved(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, tempPrefix+"a.env-12345")
	os.WriteFile(stale, []byte("secret"), 0o600)
	if _, err := WriteAll([]File{{Path: filepath.Join(dir, "a.env"), Content: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Error("stale temp file left behind")
	}
}

func TestOwner(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	uid, gid := os.Getuid(), os.Getgid()
	if _, err := WriteAll([]File{{Path: p, Content: []byte("x"), Owner: &Owner{UID: uid, GID: gid}}}); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		// An unprivileged process cannot give a file away.
		if _, err := WriteAll([]File{{Path: filepath.Join(dir, "g"), Content: []byte("x"), Owner: &Owner{UID: uid + 1, GID: gid}}}); err == nil {
			t.Error("chown to another user succeeded without privilege")
		}
	}
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tempPrefix) {
			t.Errorf("temp file left behind: %s", p)
		}
		return nil
	})
}

// A destination whose name extends another's ("app", "app-x") must not
// lose its staged temp file to the other's stale-file cleanup.
func TestPrefixNamedDestinations(t *testing.T) {
	dir := t.TempDir()
	for _, order := range [][]string{{"app-x", "app"}, {"app", "app-x"}} {
		var files []File
		for _, name := range order {
			files = append(files, File{Path: filepath.Join(dir, name), Content: []byte(name + strings.Join(order, ""))})
		}
		changed, err := WriteAll(files)
		if err != nil || len(changed) != 2 {
			t.Fatalf("order %v: changed %v, err %v", order, changed, err)
		}
	}
	assertNoTemps(t, dir)
	// A stale file of "app-x" is not "app"'s to remove, and is removed
	// when "app-x" itself is written.
	stale := filepath.Join(dir, tempPrefix+"app-x-4242")
	os.WriteFile(stale, []byte("old secret"), 0o600)
	if _, err := WriteAll([]File{{Path: filepath.Join(dir, "app"), Content: []byte("new")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Errorf("app's cleanup removed app-x's file: %v", err)
	}
	if _, err := WriteAll([]File{{Path: filepath.Join(dir, "app-x"), Content: []byte("new")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Error("app-x's stale temp file left behind")
	}
}

func TestOwnerChangeRewritesAndOwnsNewDirs(t *testing.T) {
	if os.Geteuid() != 0 {
		// Without privilege only the own uid is possible: a same-owner
		// rewrite is a no-op, which TestWriteAllOnlyChanged covers.
		p := filepath.Join(t.TempDir(), "f")
		WriteAll([]File{{Path: p, Content: []byte("x")}})
		changed, err := WriteAll([]File{{Path: p, Content: []byte("x"), Owner: &Owner{UID: os.Getuid(), GID: os.Getgid()}}})
		if err != nil || len(changed) != 0 {
			t.Errorf("same owner rewrote: %v %v", changed, err)
		}
		return
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "new", "sub", "f")
	if _, err := WriteAll([]File{{Path: p, Content: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	changed, err := WriteAll([]File{{Path: p, Content: []byte("x"), Owner: &Owner{UID: 4242, GID: 4343}}})
	if err != nil || len(changed) != 1 {
		t.Fatalf("owner change not written: %v %v", changed, err)
	}
	q := filepath.Join(dir, "other", "g")
	if _, err := WriteAll([]File{{Path: q, Content: []byte("x"), Owner: &Owner{UID: 4242, GID: 4343}}}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{q, filepath.Dir(q)} {
		st, _ := os.Stat(path)
		if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 4242 || sys.Gid != 4343 {
			t.Errorf("%s owned by %d:%d, want 4242:4343", path, sys.Uid, sys.Gid)
		}
	}
}
