package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/injector-dev/injector/internal/crypto/envelope"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passagent/passagenttest"
	"github.com/injector-dev/injector/internal/testutil"
)

// maxHostileRSS is the documented bound on the daemon's peak RSS
// whatever a PassAgent server sends (docs/passagent.md).
const maxHostileRSS = 96 << 20

// TestHostilePassAgentMemoryBound runs the release build of the daemon
// against a PassAgent server that asks for a 1 GiB key derivation, and
// one that answers the list with 64 MiB of junk, until each has failed
// twice, and checks the process's peak RSS (VmHWM: its own high-water
// mark) against the documented bound. Uncapped, they peaked at 2 GiB
// and 200-340 MiB.
func TestHostilePassAgentMemoryBound(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "injector")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name  string
		setup func(*passagenttest.Server)
	}{
		{"1 GiB derivation", func(s *passagenttest.Server) {
			s.AdvertiseKDF(envelope.KDFParams{MemoryKiB: 1 << 20, Iterations: 64, Parallelism: 4})
		}},
		{"64 MiB list", func(s *passagenttest.Server) {
			s.AddFault(passagenttest.Fault{Path: "/api/passwords", Bloat: 64 << 20, Times: 1 << 20})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The documented 64 MiB profile, so the derivation that does
			// run is the real size.
			srv, err := passagenttest.New(passagenttest.Options{CRUDLimit: -1, RevealLimit: -1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(srv.Close)
			if err := srv.Seed([]fetchtest.Entry{{Path: "db", Fields: map[string]string{"password": "pw"}}}); err != nil {
				t.Fatal(err)
			}
			tc.setup(srv)
			dir := t.TempDir()
			src := writeFile(t, filepath.Join(dir, "a.tpl"), `<< passagent "db" >>`)
			c := srv.Config()
			cmd := exec.Command(bin, "render", "--interval", "1h", "--wait-for-secrets", "1h", "-t", src+":"+filepath.Join(dir, "a"))
			cmd.Env = []string{"PASSAGENT_URL=" + c.URL, "PASSAGENT_TOKEN=" + c.Token, "PASSAGENT_MASTER_PASSWORD=" + c.MasterPassword,
				"INJECTOR_LOG_FORMAT=json", "INJECTOR_RETRY_ATTEMPTS=1"}
			var logs testutil.SyncBuffer
			cmd.Stderr = &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			eventually(t, "two failed attempts", func() bool { return strings.Count(logs.String(), `"message":"waiting for secrets"`) >= 2 })
			hwm, err := vmHWM(cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("peak RSS %.1f MiB", float64(hwm)/(1<<20))
			if hwm > maxHostileRSS {
				t.Errorf("peak RSS %.1f MiB, over the documented %d MiB", float64(hwm)/(1<<20), maxHostileRSS>>20)
			}
		})
	}
}

// vmHWM reads a process's peak resident set size in bytes.
func vmHWM(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
