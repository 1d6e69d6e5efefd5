package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"unsafe"
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
	if strings.Contains(buf.String(), "\x1b[") {
		t.Errorf("console output into a buffer (a pipe, a file) has colour codes: %q", buf.String())
	}

	for _, bad := range [][2]string{{"", "json"}, {"loud", "json"}, {"info", "xml"}} {
		if _, err := New(bad[0], bad[1], &buf); err == nil {
			t.Errorf("New(%q, %q): want an error", bad[0], bad[1])
		}
	}
}

// TestConsoleColour: colour on a terminal, unless NO_COLOR is set.
func TestConsoleColour(t *testing.T) {
	for _, tt := range []struct {
		noColor string
		want    bool
	}{{"", true}, {"1", false}} {
		t.Setenv("NO_COLOR", tt.noColor)
		master, tty := openPTY(t)
		log, err := New("info", "console", tty)
		if err != nil {
			t.Fatal(err)
		}
		log.Info().Msg("hello")
		tty.Close()
		out, _ := io.ReadAll(master) // EIO once the terminal side is closed
		if !strings.Contains(string(out), "hello") || strings.Contains(string(out), "\x1b[") != tt.want {
			t.Errorf("NO_COLOR=%q: colour %v wanted, got %q", tt.noColor, tt.want, out)
		}
	}
}

// openPTY opens a pseudo-terminal pair: the master to read what is
// written to the terminal side.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatal(e)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return master, tty
}
