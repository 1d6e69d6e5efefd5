package render

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A destination that exists and is not a regular file is an error saying
// what it is, and is left as it was: a rename over it would replace a
// symbolic link (once, /dev/stdout) or a device with a file of secrets.
func TestDestinationMustBeARegularFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("untouched"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		path, want string
	}{
		{link, "destination is a symbolic link (to " + target + ")"},
		{fifo, "destination is a named pipe (FIFO), not a regular file"},
		{sock, "destination is a socket, not a regular file"},
		{os.DevNull, "destination is a character device, not a regular file"},
		{sub, "destination is a directory; add the file name, e.g. " + filepath.Join(sub, "app.conf")},
		{sub + "/", "names a directory; add the file name"},
		{filepath.Join(dir, "new-dir") + "/", "names a directory; add the file name"},
	}
	for _, tt := range tests {
		if err := CheckDestination(tt.path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CheckDestination(%s) = %v, want %q", tt.path, err, tt.want)
		}
		_, err := WriteAll([]File{{Path: tt.path, Content: []byte("secret")}})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("WriteAll(%s) = %v, want %q", tt.path, err, tt.want)
		}
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v, %v", st.Mode(), err)
	}
	if b, _ := os.ReadFile(target); string(b) != "untouched" {
		t.Errorf("link target = %q", b)
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the fifo was replaced: %v, %v", st.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new-dir")); !os.IsNotExist(err) {
		t.Errorf("a trailing-slash destination created something: %v", err)
	}
	assertNoTemps(t, dir)

	// A regular file, or nothing yet, is a destination.
	for _, p := range []string{target, filepath.Join(dir, "absent")} {
		if err := CheckDestination(p); err != nil {
			t.Errorf("CheckDestination(%s) = %v", p, err)
		}
	}
}
