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

	"golang.org/x/sys/unix"
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
//
// Several processes may render the same destination (two sidecars, a
// sidecar and an init container): each stages its own temp file and
// renames it into place, so the last rename wins and a reader always sees
// one whole file. See removeStale for how leftovers are told from temp
// files in flight.
func WriteAll(files []File) (changed []string, err error) {
	var stage []*staged
	defer func() {
		for _, s := range stage {
			if err != nil {
				os.Remove(s.tmp.Name())
			}
			s.tmp.Close() // and so unlock it
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
		s, err := stageFile(f, mode)
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", f.Path, err)
		}
		stage = append(stage, s)
	}
	dirs := map[string]bool{}
	for i, s := range stage {
		if err := os.Rename(s.tmp.Name(), s.dst); err != nil {
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

// staged is a temp file written and ready to be renamed to dst. tmp stays
// open, and so locked, until then.
type staged struct {
	tmp *os.File
	dst string
}

// CheckDestination returns an error when path cannot be a destination:
// it ends in a slash, or it exists and is not a regular file. Rendering
// replaces the file by renaming a new one over it, which for a symbolic
// link would replace the link rather than write where it points (a
// -t x:/dev/stdout run as root once replaced /dev/stdout with a file of
// secrets), and for a device, a named pipe or a socket would replace
// something that is not a file at all. The error says what the path is.
func CheckDestination(path string) error {
	if strings.HasSuffix(path, "/") || strings.HasSuffix(path, string(filepath.Separator)+".") || path == "." || path == ".." {
		return fmt.Errorf("render %s: a destination is a file, and this names a directory; add the file name, e.g. %s", path, filepath.Join(path, "app.conf"))
	}
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("render %s: %w", path, err)
	}
	if st.Mode().IsRegular() {
		return nil
	}
	what := describe(st.Mode())
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(path)
		return fmt.Errorf("render %s: destination is %s (to %s); injector replaces files by renaming a new file over them, which would replace the link: name the file it points to instead", path, what, target)
	case st.IsDir():
		return fmt.Errorf("render %s: destination is %s; add the file name, e.g. %s", path, what, filepath.Join(path, "app.conf"))
	}
	return fmt.Errorf("render %s: destination is %s, not a regular file; injector writes only regular files (give - to print to stdout with injector render)", path, what)
}

// describe names a file type, with its article.
func describe(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "not a regular file (" + m.Type().String() + ")"
}

// unchanged reports whether path already holds content with mode (and
// owner, when one is asked for). It never follows a symbolic link: path
// must be absent or a regular file (see CheckDestination).
func unchanged(path string, content []byte, mode fs.FileMode, owner *Owner) (bool, error) {
	if err := CheckDestination(path); err != nil {
		return false, err
	}
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("render %s: %w", path, err)
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

// stageFile writes f to a temp file next to its destination, locked
// (flock) for as long as it is open, so another process's removeStale
// sees that it is in flight.
func stageFile(f File, mode fs.FileMode) (*staged, error) {
	dir, base := filepath.Split(f.Path)
	if dir == "" {
		dir = "."
	}
	if err := mkdirAll(dir, f.Owner); err != nil {
		return nil, err
	}
	// Creating and locking is one step for removeStale, which holds the
	// directory's exclusive lock while it looks: it never sees this file
	// created but not yet locked.
	unlockDir, _ := lockDir(dir, unix.LOCK_SH)
	// CreateTemp makes the file 0600, so the content is never readable by
	// others, even before the chmod below.
	tmp, err := os.CreateTemp(dir, tempPrefix+base+"-*")
	if err == nil {
		flock(tmp, unix.LOCK_EX|unix.LOCK_NB)
	}
	unlockDir()
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*staged, error) {
		os.Remove(tmp.Name())
		tmp.Close()
		return nil, err
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
	return &staged{tmp: tmp, dst: f.Path}, nil
}

// removeStale deletes temp files that a killed injector left for the
// destination path, so secrets do not linger in half-written files. Only
// names CreateTemp could have made for exactly this destination match:
// prefix, base name, "-", digits ("app" must not match "app-x"'s files).
//
// A temp file is stale only when provably so: its writer holds an
// exclusive flock on it from creation to rename, and the kernel drops the
// lock when the writer dies, however it dies. So a file this function can
// lock has no live writer, and one it cannot lock is left alone (another
// injector is writing it). PIDs in file names would not do: they are
// reused, and in another container's PID namespace mean nothing. Where
// locks are not supported nothing is removed.
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
	var candidates []string
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if ok && rest != "" && strings.Trim(rest, "0123456789") == "" && e.Type().IsRegular() {
			candidates = append(candidates, filepath.Join(dir, e.Name()))
		}
	}
	if len(candidates) == 0 {
		return
	}
	unlockDir, ok := lockDir(dir, unix.LOCK_EX)
	if !ok {
		return
	}
	defer unlockDir()
	for _, name := range candidates {
		f, err := os.OpenFile(name, os.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			continue // gone, or another user's
		}
		if flock(f, unix.LOCK_EX|unix.LOCK_NB) {
			os.Remove(name)
		}
		f.Close()
	}
}

// lockDir flocks the directory dir with how and returns the function that
// unlocks it, and false when the directory cannot be locked: the caller
// then goes without (a writer stages anyway, removeStale removes nothing).
func lockDir(dir string, how int) (unlock func(), ok bool) {
	d, err := os.Open(dir)
	if err != nil {
		return func() {}, false
	}
	if !flock(d, how) {
		d.Close()
		return func() {}, false
	}
	return func() { d.Close() }, true
}

// flock applies how to f, retrying when interrupted, and reports whether
// the lock is held.
func flock(f *os.File, how int) bool {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err == nil
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
