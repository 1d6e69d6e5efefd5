package bench

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/injector-dev/injector/internal/crypto/envelope"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passagent/passagenttest"
	"github.com/injector-dev/injector/internal/testutil"
)

// BenchmarkHostilePassAgent runs the daemon, `injector render --interval
// 1h --wait-for-secrets 1h`, against a PassAgent emulator that misbehaves
// on purpose, until it has failed twice (or rendered, for the baseline),
// and reports the process's peak RSS (VmHWM from /proc/<pid>/status: the
// high-water mark of its own memory, which getrusage would mix with the
// parent's at exec) and the time to the first failure. Scenarios:
//
//   - kdf: the salt reply asks for Argon2id with 1 GiB and t=4;
//   - body: the vault key is derived with the documented 64 MiB/t=3/p=4
//     profile, then the list answers with 64 MiB of well-formed junk
//     records, streamed without a Content-Length;
//   - body-vault-key: the same list, with a pre-derived key
//     (PASSAGENT_VAULT_KEY), so no derivation sets the peak;
//   - baseline: a well-behaved emulator (the same profile), for scale.
//
// Run it with -benchtime 1x: one op is one process.
func BenchmarkHostilePassAgent(b *testing.B) {
	bin := build(b, "github.com/injector-dev/injector/cmd/injector")
	bloat := func(s *passagenttest.Server) {
		s.AddFault(passagenttest.Fault{Path: "/api/passwords", Bloat: 64 << 20, Times: 1 << 20})
	}
	for _, sc := range []struct {
		name     string
		setup    func(*passagenttest.Server)
		fails    bool
		vaultKey bool
	}{
		{"baseline", func(*passagenttest.Server) {}, false, false},
		{"kdf", func(s *passagenttest.Server) {
			s.AdvertiseKDF(envelope.KDFParams{MemoryKiB: 1 << 20, Iterations: 4, Parallelism: 4})
		}, true, false},
		{"body", bloat, true, false},
		{"body-vault-key", bloat, true, true},
	} {
		b.Run(sc.name, func(b *testing.B) {
			var peak, took float64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				srv, err := passagenttest.New(passagenttest.Options{CRUDLimit: -1, RevealLimit: -1})
				if err != nil {
					b.Fatal(err)
				}
				if err := srv.Seed([]fetchtest.Entry{{Path: "db", Fields: map[string]string{"password": "pw"}}}); err != nil {
					b.Fatal(err)
				}
				sc.setup(srv)
				dir := b.TempDir()
				src := filepath.Join(dir, "a.tpl")
				if err := os.WriteFile(src, []byte(`<< passagent "db" >>`), 0o600); err != nil {
					b.Fatal(err)
				}
				c := srv.Config()
				cmd := exec.Command(bin, "render", "--interval", "1h", "--wait-for-secrets", "1h", "-t", src+":"+filepath.Join(dir, "a"))
				key := "PASSAGENT_MASTER_PASSWORD=" + c.MasterPassword
				if sc.vaultKey {
					key = "PASSAGENT_VAULT_KEY=" + srv.VaultKey()
				}
				cmd.Env = append([]string{"PASSAGENT_URL=" + c.URL, "PASSAGENT_TOKEN=" + c.Token, key,
					"INJECTOR_LOG_FORMAT=json", "INJECTOR_RETRY_ATTEMPTS=1"}, extraEnv()...)
				var logs testutil.SyncBuffer
				cmd.Stderr = &logs
				b.StartTimer()
				start := time.Now()
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				if sc.fails {
					first := waitForLog(b, &logs, "waiting for secrets", 1)
					took = first.Sub(start).Seconds()
					waitForLog(b, &logs, "waiting for secrets", 2)
				} else {
					testutil.WaitFor(b, 10*time.Minute, "the render", func() bool {
						_, err := os.Stat(filepath.Join(dir, "a"))
						return err == nil
					})
					took = time.Since(start).Seconds()
				}
				b.StopTimer()
				mem, err := procStatus(cmd.Process.Pid, "VmHWM")
				cmd.Process.Kill()
				cmd.Wait()
				srv.Close()
				if err != nil {
					b.Fatal(err)
				}
				peak = float64(mem[0]) / 1024
			}
			b.ReportMetric(peak, "peak-rss-MiB")
			b.ReportMetric(took, "s-to-first")
		})
	}
}

// waitForLog waits until the JSON log holds n lines whose message starts
// with msg, and returns when it saw the first.
func waitForLog(b *testing.B, logs *testutil.SyncBuffer, msg string, n int) time.Time {
	b.Helper()
	var first time.Time
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		count := 0
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec struct{ Message string }
			if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Message, msg) {
				count++
			}
		}
		if count > 0 && first.IsZero() {
			first = time.Now()
		}
		if count >= n {
			return first
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatalf("no %d %q log lines:\n%s", n, msg, logs.String())
	return first
}
