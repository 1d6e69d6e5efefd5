// Package render writes rendered templates to disk atomically and only
// when their content changed.
//
// A set of files is written in two phases so that a failure writes nothing:
// first every changed file is staged as a temp file in its destination
// directory (written, fsynced, chmod/chowned); only when all are staged are
// they renamed into place. rename(2) within a directory is atomic, so a
// reader sees either the old file or the new one, never a partial one.
package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// DefaultMode is the mode of rendered files unless a template says
// otherwise: secrets are readable by their owner only.
const DefaultMode fs.FileMode = 0o600

// File is one rendered output.
type File struct {
	Path    string
	Content []byte
	Mode    fs.FileMode // 0 means DefaultMode
	Owner   *Owner      // nil leaves ownership to the process's uid/gid
}

// Owner is a numeric file owner, for a sidecar that runs as another user
// than the application reading the files.
type Owner struct{ UID, GID int }

// tempPrefix marks injector's staging files, so leftovers from a killed
// process can be recognised and removed.
const tempPrefix = ".injector-tmp-"

// WriteAll writes every file whose content or mode differs from what is on
// disk and returns the paths it changed. If any file cannot be staged,
// nothing is renamed into place and every temp file is removed.
func WriteAll(files []File) (changed []string, err error) {
	type staged struct {
		tmp, dst string
	}
	var stage []staged
	defer func() {
		if err != nil {
			for _, s := range stage {
				os.Remove(s.tmp)
			}
		}
	}()
	// Clear what a killed run left behind first: removing stale temp
	// files while staging could hit a file staged earlier in this call.
	for _, f := range files {
		removeStale(f.Path)
	}
	for _, f := range files {
		mode := f.Mode
		if mode == 0 {
			mode = DefaultMode
		}
		same, err := unchanged(f.Path, f.Content, mode, f.Owner)
		if err != nil {
			return nil, err
		}
		if same {
			continue
		}
		tmp, err := stageFile(f, mode)
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", f.Path, err)
		}
		stage = append(stage, staged{tmp: tmp, dst: f.Path})
	}
	dirs := map[string]bool{}
	for i, s := range stage {
		if err := os.Rename(s.tmp, s.dst); err != nil {
			// Earlier renames have happened; say exactly which.
			done := make([]string, i)
			for j := range done {
				done[j] = stage[j].dst
			}
			return done, fmt.Errorf("render %s: %w (already replaced: %v)", s.dst, err, done)
		}
		changed = append(changed, s.dst)
		dirs[filepath.Dir(s.dst)] = true
	}
	for d := range dirs {
		syncDir(d)
	}
	return changed, nil
}

// unchanged reports whether path already holds content with mode (and
// owner, when one is asked for).
func unchanged(path string, content []byte, mode fs.FileMode, owner *Owner) (bool, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("render %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return false, fmt.Errorf("render %s: destination exists and is not a regular file", path)
	}
	if st.Mode().Perm() != mode.Perm() || st.Size() != int64(len(content)) {
		return false, nil
	}
	if owner != nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && (int(sys.Uid) != owner.UID || int(sys.Gid) != owner.GID) {
			return false, nil
		}
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("render %s: %w", path, err)
	}
	return bytes.Equal(old, content), nil
}

// stageFile writes f to a temp file next to its destination and returns the
// temp file's path.
func stageFile(f File, mode fs.FileMode) (string, error) {
	dir, base := filepath.Split(f.Path)
	if dir == "" {
		dir = "."
	}
	if err := mkdirAll(dir, f.Owner); err != nil {
		return "", err
	}
	// CreateTemp makes the file 0600, so the content is never readable by
	// others, even before the chmod below.
	tmp, err := os.CreateTemp(dir, tempPrefix+base+"-*")
	if err != nil {
		return "", err
	}
	name := tmp.Name()
	fail := func(err error) (string, error) {
		tmp.Close()
		os.Remove(name)
		return "", err
	}
	if _, err := tmp.Write(f.Content); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(mode.Perm()); err != nil {
		return fail(err)
	}
	if f.Owner != nil {
		if err := tmp.Chown(f.Owner.UID, f.Owner.GID); err != nil {
			return fail(err)
		}
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// removeStale deletes temp files a killed injector left for the
// destination path, so secrets do not linger in half-written files. Only
// names CreateTemp could have made for exactly this destination match:
// prefix, base name, "-", digits. ("app" must not match "app-x"'s files.)
func removeStale(path string) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	prefix := tempPrefix + base + "-"
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// mkdirAll creates dir and missing parents (0700: they hold secrets),
// giving the directories it creates to owner so the application user can
// reach its files.
func mkdirAll(dir string, owner *Owner) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAll(parent, owner); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if owner != nil {
		return os.Chown(dir, owner.UID, owner.GID)
	}
	return nil
}

// syncDir makes the renames durable. Errors are ignored: some filesystems
// do not support fsync on directories, and the data itself is synced.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}
