package main

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// silentServer accepts connections and never answers, like a server
// behind a hung proxy. It returns its address and how many connections
// it accepted.
func silentServer(t *testing.T) (string, func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return len(conns) }
}

// logged reports whether the JSON log holds a line with message msg.
func logged(log, msg string) bool {
	return logEntry(log, msg) != nil
}

func logEntry(log, msg string) map[string]any {
	for _, line := range strings.Split(log, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["message"] == msg {
			return m
		}
	}
	return nil
}

// TestSIGTERMDuringAHangingFirstRefresh: `render --interval 1m
// --wait-for-secrets 5m` against a server that accepts and never
// answers. The operator sees progress while it hangs, and SIGTERM ends
// the process at once, not when the HTTP timeout (here 10 minutes) and
// the retries are used up.
func TestSIGTERMDuringAHangingFirstRefresh(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			addr, accepted := silentServer(t)
			dir := t.TempDir()
			src := writeFile(t, filepath.Join(dir, "a.tpl"), `<< passagent "db" >>`)
			p := startInjector(t, []string{"PASSAGENT_URL=http://" + addr + "/api", "PASSAGENT_TOKEN=t", "PASSAGENT_MASTER_PASSWORD=pw",
				"INJECTOR_HTTP_TIMEOUT=10m"},
				"render", "--interval", "1m", "--wait-for-secrets", "5m", "-t", src+":"+filepath.Join(dir, "a"))
			eventually(t, "the request to hang", func() bool { return accepted() > 0 })
			eventually(t, "progress in the log", func() bool {
				return logged(p.stderr.String(), "first refresh still running (waiting for the password manager)")
			})
			p.cmd.Process.Signal(sig)
			if code := p.wait(t); code != exitFailure {
				t.Errorf("exit %d, want %d", code, exitFailure)
			}
			// The fatal error is a JSON log line like the rest.
			e := logEntry(p.stderr.String(), "giving up")
			if e == nil || e["level"] != "error" || !strings.Contains(e["error"].(string), "stopped by") {
				t.Errorf("no JSON error line for the stop:\n%s", p.stderr.String())
			}
		})
	}
}

// TestRetriesAreLogged: each HTTP retry is a log line with the attempt,
// the delay with its unit and the settings behind it.
func TestRetriesAreLogged(t *testing.T) {
	t.Parallel()
	addr, _ := silentServer(t)
	dir := t.TempDir()
	src := writeFile(t, filepath.Join(dir, "a.tpl"), `<< passagent "db" >>`)
	_, stderr, code := injector(t, []string{"PASSAGENT_URL=http://" + addr + "/api", "PASSAGENT_TOKEN=t", "PASSAGENT_MASTER_PASSWORD=pw",
		"INJECTOR_HTTP_TIMEOUT=50ms", "INJECTOR_RETRY_ATTEMPTS=2", "INJECTOR_RETRY_BASE_DELAY=10ms"},
		"render", "-t", src+":"+filepath.Join(dir, "a"))
	if code != exitFailure {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	e := logEntry(stderr, "retrying request")
	if e == nil || e["attempt"] != "2/2" || e["provider"] != "passagent" || e["request"] != "GET /api/vault/salt" ||
		!strings.Contains(e["retry_setting"].(string), "INJECTOR_RETRY_BASE_DELAY") {
		t.Fatalf("retry logged as %v:\n%s", e, stderr)
	}
	if d, err := time.ParseDuration(e["retry_in"].(string)); err != nil || d <= 0 {
		t.Errorf("retry_in %v is not a duration with its unit", e["retry_in"])
	}
}
