package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/injector-dev/injector/internal/crypto/envelope"
	pwcrypto "github.com/injector-dev/injector/internal/crypto/passwork"
	"github.com/injector-dev/injector/internal/crypto/pgp"
	"github.com/injector-dev/injector/internal/fetch"
	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/fetch/passagent"
	"github.com/injector-dev/injector/internal/fetch/passagent/passagenttest"
	"github.com/injector-dev/injector/internal/fetch/passbolt"
	"github.com/injector-dev/injector/internal/fetch/passbolt/passbolttest"
	"github.com/injector-dev/injector/internal/fetch/passwork"
	"github.com/injector-dev/injector/internal/fetch/passwork/passworktest"
	"github.com/injector-dev/injector/internal/render"
	"github.com/injector-dev/injector/internal/template"
	"github.com/injector-dev/injector/internal/testutil"
)

// entries returns n entries spread round-robin over the given number of
// vaults (Passwork) or top-level folders (Passbolt); PassAgent has no
// folders and uses the names only.
func entries(n, vaults int, flat bool) []fetchtest.Entry {
	out := make([]fetchtest.Entry, n)
	for i := range out {
		path := fmt.Sprintf("vault%d/apps/secret%05d", i%vaults, i)
		if flat {
			path = fmt.Sprintf("secret%05d", i)
		}
		out[i] = fetchtest.Entry{Path: path, Fields: map[string]string{"password": fmt.Sprintf("pw-%05d-%s", i, strings.Repeat("x", 24)), "login": "app"}}
	}
	return out
}

// templateFor returns one template referencing every entry's password.
func templateFor(b testing.TB, provider string, es []fetchtest.Entry) *template.Template {
	b.Helper()
	var sb strings.Builder
	for _, e := range es {
		fmt.Fprintf(&sb, "%s=<< %s %q >>\n", e.Path, provider, e.Path)
	}
	tpl, err := template.Parse(template.Source{Name: "bench.tpl"}, sb.String(), template.DefaultDelims)
	if err != nil {
		b.Fatal(err)
	}
	return tpl
}

// emulator is what the resolve benchmarks need from a seeded emulator.
type emulator struct {
	resolver template.Resolver
	requests func() int
	rec      *recorder    // the client's transport, to record one refresh for replay
	floor    func() error // the unavoidable decryption of one refresh; nil: none
}

// clientOptions gives a provider client the recording transport.
func clientOptions(rec *recorder) fetch.Options {
	return fetch.Options{Client: &http.Client{Transport: rec, Timeout: 30 * time.Second}}
}

func newPasswork(b testing.TB, es []fetchtest.Entry) emulator {
	srv := passworktest.NewServer()
	b.Cleanup(srv.Close)
	if err := srv.Seed(es); err != nil {
		b.Fatal(err)
	}
	rec := newRecorder()
	c, err := passwork.New(srv.Config(), clientOptions(rec))
	if err != nil {
		b.Fatal(err)
	}
	return emulator{c, srv.Requests, rec, passworkFloor(b, es)}
}

// passboltServer starts a Passbolt emulator seeded with es.
func passboltServer(b testing.TB, es []fetchtest.Entry) *passbolttest.Server {
	srv, err := passbolttest.New()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	if err := srv.Seed(es); err != nil {
		b.Fatal(err)
	}
	return srv
}

func newPassbolt(b testing.TB, es []fetchtest.Entry) emulator {
	srv := passboltServer(b, es)
	rec := newRecorder()
	c, err := passbolt.New(srv.Config(), clientOptions(rec))
	if err != nil {
		b.Fatal(err)
	}
	return emulator{c, srv.Requests, rec, nil}
}

func newPassAgent(b testing.TB, es []fetchtest.Entry) emulator {
	srv, err := passagenttest.New(passagenttest.Options{KDF: passagenttest.FastKDF(), CRUDLimit: -1, RevealLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	if err := srv.Seed(es); err != nil {
		b.Fatal(err)
	}
	rec := newRecorder()
	c, err := passagent.New(srv.Config(), clientOptions(rec))
	if err != nil {
		b.Fatal(err)
	}
	return emulator{c, srv.Requests, rec, passagentFloor(b, es)}
}

// benchResolve measures a warm Render (resolve + execute) of one template
// referencing every entry: the daemon's refresh cycle. The first, cold
// render (login, KDF, key unwrapping) is reported separately as cold-ms
// and cold-requests; requests/op counts the warm cycle's HTTP requests.
func benchResolve(b *testing.B, provider string, em emulator, es []fetchtest.Entry) {
	benchResolveWrite(b, provider, em, es, "")
}

// benchResolveWrite is benchResolve that, with dst set, also writes the
// output atomically to dst in every op, as a daemon's refresh does.
func benchResolveWrite(b *testing.B, provider string, em emulator, es []fetchtest.Entry, dst string) {
	tpl := templateFor(b, provider, es)
	e := &template.Engine{Providers: map[string]template.Resolver{provider: em.resolver}}
	ctx := context.Background()
	start, before := time.Now(), em.requests()
	out, err := e.Render(ctx, []*template.Template{tpl})
	if err != nil {
		b.Fatal(err)
	}
	if out.Refs != len(es) {
		b.Fatalf("resolved %d references, want %d", out.Refs, len(es))
	}
	// Reported after the loop: ResetTimer discards metrics reported before.
	coldMS, coldReqs := float64(time.Since(start).Microseconds())/1000, float64(em.requests()-before)

	cycle := func() error {
		out, err := e.Render(ctx, []*template.Template{tpl})
		if err != nil || dst == "" {
			return err
		}
		_, err = render.WriteAll([]render.File{{Path: dst, Content: out.Outputs[0], Mode: render.DefaultMode}})
		return err
	}
	reqs, err := em.rec.record(cycle)
	if err != nil {
		b.Fatal(err)
	}

	before = em.requests()
	b.ReportAllocs()
	b.ResetTimer()
	refresh := cpuPerOp(b, b.N, cycle)
	b.StopTimer()
	b.ReportMetric(float64(em.requests()-before)/float64(b.N), "requests/op")
	b.ReportMetric(coldMS, "cold-ms")
	b.ReportMetric(coldReqs, "cold-requests")
	reportClientCPU(b, refresh, newReplayer(reqs).run, em.floor)
}

// reportClientCPU measures replay and floor b.N times each beside a
// refresh that cost refresh CPU per op, and reports: cpu-ms (the refresh),
// replay-ms, client-ms = refresh − replay, floor-ms, client/floor and
// refresh/replay.
func reportClientCPU(b *testing.B, refresh time.Duration, replay, floor func() error) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	rep := cpuPerOp(b, b.N, replay)
	client := refresh - rep
	b.ReportMetric(ms(refresh), "cpu-ms")
	b.ReportMetric(ms(rep), "replay-ms")
	b.ReportMetric(ms(client), "client-ms")
	b.ReportMetric(float64(refresh)/float64(rep), "refresh/replay")
	if floor != nil {
		fl := cpuPerOp(b, b.N, floor)
		b.ReportMetric(ms(fl), "floor-ms")
		b.ReportMetric(float64(client)/float64(fl), "client/floor")
	}
}

// BenchmarkResolvePasswork covers the grid: 1 to 10,000 secrets
// across 1, 3 and 10 vaults.
func BenchmarkResolvePasswork(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		for _, v := range []int{1, 3, 10} {
			if v > n {
				continue
			}
			b.Run(fmt.Sprintf("secrets=%d/vaults=%d", n, v), func(b *testing.B) {
				es := entries(n, v, false)
				benchResolve(b, "passwork", newPasswork(b, es), es)
			})
		}
	}
}

func BenchmarkResolvePassbolt(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("secrets=%d/folders=3", n), func(b *testing.B) {
			es := entries(n, 3, false)
			benchResolve(b, "passbolt", newPassbolt(b, es), es)
		})
	}
}

func BenchmarkResolvePassAgent(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("secrets=%d/vaults=1", n), func(b *testing.B) {
			es := entries(n, 1, true)
			benchResolve(b, "passagent", newPassAgent(b, es), es)
		})
	}
}

// memResolver answers from memory: what is left when network and
// decryption are taken away.
func memResolver(_ context.Context, refs []fetch.Ref) ([]fetch.Result, error) {
	out := make([]fetch.Result, len(refs))
	for i, r := range refs {
		out[i].Value = "value-of-" + r.Path
	}
	return out, nil
}

// BenchmarkRender measures the template engine alone (discovery, batch
// resolve against memory, execution) for 100 and 10,000 references.
func BenchmarkRender(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("refs=%d", n), func(b *testing.B) {
			tpl := templateFor(b, "passwork", entries(n, 3, false))
			e := &template.Engine{Providers: map[string]template.Resolver{"passwork": template.ResolverFunc(memResolver)}}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := e.Render(context.Background(), []*template.Template{tpl}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParse measures parsing a 10,000-reference template.
func BenchmarkParse(b *testing.B) {
	es := entries(10000, 3, false)
	var sb strings.Builder
	for _, e := range es {
		fmt.Fprintf(&sb, "%s=<< passwork %q >>\n", e.Path, e.Path)
	}
	text := sb.String()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := template.Parse(template.Source{Name: "bench.tpl"}, text, template.DefaultDelims); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecrypt measures each provider's per-value decryption with keys
// already unwrapped (what a warm refresh does per secret). b.SetBytes is the
// plaintext size, so MB/s is decryption throughput.
func BenchmarkDecrypt(b *testing.B) {
	plain := "pw-00001-" + strings.Repeat("x", 24)
	b.Run("passwork-aespw", func(b *testing.B) {
		key := "Qx7cV2mT9pL4sR8wZ1nB6yH3jK5dF0gA" // an item key
		ct, err := pwcrypto.Encrypt(plain, key)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(plain)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := pwcrypto.Decrypt(ct, key); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("passagent-envelope", func(b *testing.B) {
		vk := make([]byte, 32)
		payload := []byte(`{"password":"` + plain + `","username":"app"}`)
		w, d, err := envelope.Seal(vk, payload)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := envelope.Open(vk, w, d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("passbolt-openpgp", func(b *testing.B) {
		user, err := pgp.Generate("Bench", "bench@example.test")
		if err != nil {
			b.Fatal(err)
		}
		payload := []byte(`{"password":"` + plain + `","description":""}`)
		msg, err := pgp.EncryptSign(payload, user, user)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(payload)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := pgp.Decrypt(msg, user, user); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkOverhead100 is injector's own CPU for 100 Passwork secrets in
// 3 vaults: a whole warm refresh against the emulator (search, batches,
// JSON decoding, item-key and field decryption, templates) plus the atomic
// write of the output file. client-ms is that op's CPU less the replay of
// its HTTP requests by a bare client (the emulator's and the HTTP stack's
// share); floor-ms is the 200 decrypts no client can avoid.
func BenchmarkOverhead100(b *testing.B) {
	es := entries(100, 3, false)
	em := newPasswork(b, es)
	dst := filepath.Join(b.TempDir(), "out.conf")
	benchResolveWrite(b, "passwork", em, es, dst)
}

// build compiles a main package once per benchmark process.
var builds sync.Map // package → *buildResult

type buildResult struct {
	once sync.Once
	path string
	err  error
}

func build(b *testing.B, pkg string) string {
	b.Helper()
	v, _ := builds.LoadOrStore(pkg, &buildResult{})
	r := v.(*buildResult)
	r.once.Do(func() {
		dir, err := os.MkdirTemp("", "injector-bench-")
		if err != nil {
			r.err = err
			return
		}
		r.path = filepath.Join(dir, filepath.Base(pkg))
		// The release build, as scripts/build-static makes it: what ships is
		// what is measured (stripping changes the executable's mapped size).
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", r.path, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			r.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if r.err != nil {
		b.Fatal(r.err)
	}
	return r.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	builds.Range(func(_, v any) bool {
		if r := v.(*buildResult); r.path != "" {
			os.RemoveAll(filepath.Dir(r.path))
		}
		return true
	})
	os.Exit(code)
}

// BenchmarkRunCold is `injector run --env-file F -- true` as a new process
// per op: process start, config, login, key derivation and unwrapping,
// resolving N secrets in 3 vaults (one env template per secret), exec.
// requests/op includes the login. secrets=0 is `injector run -- true` with
// no templates and no provider: the floor of the cold ratio. cpu-ms is the
// child's user+system CPU (the emulator runs in the benchmark process and
// is not counted); cpu/no-templates divides it by secrets=0's, measured in
// the same sub-benchmark, alternating.
func BenchmarkRunCold(b *testing.B) {
	bin := build(b, "github.com/injector-dev/injector/cmd/injector")
	for _, n := range []int{0, 1, 100, 1000} {
		b.Run(fmt.Sprintf("secrets=%d/vaults=3", n), func(b *testing.B) {
			if n == 0 {
				var cpu time.Duration
				for i := 0; i < b.N; i++ {
					cpu += runChild(b, bareRun(bin))
				}
				b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms")
				return
			}
			srv, envFile := passworkFixture(b, n, "app.env", func(i int, path string) string {
				return fmt.Sprintf("S%d=<< passwork %q >>", i, path)
			})
			c := srv.Config()
			// No token state file: every process starts from the
			// configured pair, which never expires in the emulator.
			env := []string{"PATH=" + os.Getenv("PATH"), "INJECTOR_LOG_LEVEL=warn",
				"PASSWORK_URL=" + c.URL, "PASSWORK_TOKEN=" + c.Token, "PASSWORK_REFRESH_TOKEN=" + c.RefreshToken,
				"PASSWORK_MASTER_KEY=" + c.MasterKey}
			before := srv.Requests()
			cpu, floor := coldRuns(b, bin, envFile, env, nil)
			b.ReportMetric(float64(srv.Requests()-before)/float64(b.N), "requests/op")
			b.ReportMetric(float64(cpu.Microseconds())/1000, "cpu-ms")
			b.ReportMetric(float64(cpu)/float64(floor), "cpu/no-templates")
		})
	}
}

// BenchmarkRunColdPassbolt is BenchmarkRunCold for Passbolt, what an init
// container pays: `injector run --env-file F -- true` as a new process per
// op, with N secrets in 4 folders (vault0…vault3/apps/secretNNNNN: v5
// folders and resources, metadata encrypted to the shared metadata key)
// and one env template per secret. The child unlocks the user's key, logs
// in (JWT), reads the folder tree, the 4 listings, the metadata keys and
// one secret batch, and logs out.
//
// cpu-ms is the child's user+system CPU; bare-ms that of `injector run --
// true` (no templates, no provider: process start), measured alternately;
// client-ms = cpu-ms − bare-ms. The floor is the OpenPGP work no client
// can avoid for the same data (pgpwork.Decrypt on the ciphertext the
// emulator serves: unlock the private key, and decrypt each message the
// run must read once, without signature verification), measured two ways:
//
//   - floor-proc-ms, as a new process, the way client-ms is: the CPU of
//     bench/floor/passbolt doing that work less that of the same program
//     started with no work, run alternately with the two above. It
//     includes what a new process pays for the work (code and heap touched
//     for the first time, first collections), as client-ms does; the
//     target (client/floor-proc) is judged on it.
//   - floor-ms, in this process, warm (the figure before floor-proc-ms was
//     added; client/floor divides by it).
func BenchmarkRunColdPassbolt(b *testing.B) {
	bin := build(b, "github.com/injector-dev/injector/cmd/injector")
	floorBin := build(b, "github.com/injector-dev/injector/bench/floor/passbolt")
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("secrets=%d/folders=4", n), func(b *testing.B) {
			es := entries(n, 4, false)
			srv := passboltServer(b, es)
			var sb strings.Builder
			for i, e := range es {
				fmt.Fprintf(&sb, "S%d=<< passbolt %q >>\n", i, e.Path)
			}
			dir := b.TempDir()
			envFile := filepath.Join(dir, "app.env")
			if err := os.WriteFile(envFile, []byte(sb.String()), 0o600); err != nil {
				b.Fatal(err)
			}
			msgs, err := srv.Messages()
			if err != nil {
				b.Fatal(err)
			}
			msgFile := filepath.Join(dir, "messages.json")
			if data, err := json.Marshal(msgs); err != nil {
				b.Fatal(err)
			} else if err := os.WriteFile(msgFile, data, 0o600); err != nil {
				b.Fatal(err)
			}
			floor := passboltColdFloor(msgs)
			c := srv.Config()
			env := []string{"PATH=" + os.Getenv("PATH"), "INJECTOR_LOG_LEVEL=warn",
				"PASSBOLT_URL=" + c.URL, "PASSBOLT_USER_ID=" + c.UserID, "PASSBOLT_PRIVATE_KEY=" + c.PrivateKey,
				"PASSBOLT_PASSPHRASE=" + c.Passphrase, "PASSBOLT_SERVER_FINGERPRINT=" + c.ServerFingerprint}
			before := srv.Requests()
			var floorWork, floorNone time.Duration
			cpu, bare := coldRuns(b, bin, envFile, env, func() {
				floorWork += runChild(b, floorRun(floorBin, msgFile, "decrypt"))
				floorNone += runChild(b, floorRun(floorBin, msgFile))
			})
			reqs := float64(srv.Requests()-before) / float64(b.N)
			fl := cpuPerOp(b, b.N, floor)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			client, floorProc := cpu-bare, (floorWork-floorNone)/time.Duration(b.N)
			if floorProc <= 0 {
				b.Fatalf("the floor program's work cost %v of CPU beyond its start: too noisy to compare against", floorProc)
			}
			b.ReportMetric(reqs, "requests/op")
			b.ReportMetric(ms(cpu), "cpu-ms")
			b.ReportMetric(ms(bare), "bare-ms")
			b.ReportMetric(ms(client), "client-ms")
			b.ReportMetric(ms(floorProc), "floor-proc-ms")
			b.ReportMetric(float64(client)/float64(floorProc), "client/floor-proc")
			b.ReportMetric(ms(fl), "floor-ms")
			b.ReportMetric(float64(client)/float64(fl), "client/floor")
		})
	}
}

// coldRuns runs `injector run --env-file envFile -- true` with env b.N
// times, each followed (outside the timer) by bareRun and then by also
// (when not nil), and returns the mean child CPU of the first two.
func coldRuns(b *testing.B, bin, envFile string, env []string, also func()) (cpu, bare time.Duration) {
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, "run", "--env-file", envFile, "--", "true")
		cmd.Env = env
		cpu += runChild(b, cmd)
		b.StopTimer()
		bare += runChild(b, bareRun(bin))
		if also != nil {
			also()
		}
		b.StartTimer()
	}
	b.StopTimer()
	return cpu / time.Duration(b.N), bare / time.Duration(b.N)
}

// bareRun is `injector run -- true` with no templates and no provider.
func bareRun(bin string) *exec.Cmd {
	cmd := exec.Command(bin, "run", "--", "true")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "INJECTOR_LOG_LEVEL=warn"}
	return cmd
}

// floorRun is bench/floor/passbolt with args, in the environment
// bareRun's child gets.
func floorRun(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	return cmd
}

// runChild runs cmd to completion and returns its user+system CPU.
func runChild(b *testing.B, cmd *exec.Cmd) time.Duration {
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", cmd.Args, err, out)
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// BenchmarkDaemonRSS runs the real daemon, `injector render --interval 5ms --min-interval 0
// --listen …`, against a Passwork emulator with 100 secrets in 3 vaults,
// waits until /metrics counts 1,000 refresh cycles, and reports the
// process's VmRSS from /proc/<pid>/status. Beside it, the floor: the
// memory of bench/floor/deps, a hello world that links the same libraries
// and only runs their initialisers (floor-rss-MiB, floor-file-MiB), and
// the ratio rss/floor. One op is the whole soak; run it with -benchtime 1x.
func BenchmarkDaemonRSS(b *testing.B) {
	bin := build(b, "github.com/injector-dev/injector/cmd/injector")
	srv, src := daemonFixture(b, 100)
	dir := filepath.Dir(src)
	c := srv.Config()
	var rss, anon, file, perCycle float64
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, "render", "--interval", "5ms", "--min-interval", "0", "--splay", "0", "--listen", "127.0.0.1:0",
			"-t", src+":"+filepath.Join(dir, "app.conf"))
		cmd.Env = []string{"PASSWORK_URL=" + c.URL, "PASSWORK_TOKEN=" + c.Token,
			"PASSWORK_REFRESH_TOKEN=" + c.RefreshToken, "PASSWORK_MASTER_KEY=" + c.MasterKey, "INJECTOR_LOG_FORMAT=json"}
		cmd.Env = append(cmd.Env, extraEnv()...)
		var logs testutil.SyncBuffer
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		addr := waitForListen(b, &logs)
		start := time.Now()
		cycles := waitForCycles(b, addr, 1000)
		perCycle = float64(time.Since(start).Milliseconds()) / cycles
		mem, err := procStatus(cmd.Process.Pid, "VmRSS", "RssAnon", "RssFile")
		cmd.Process.Kill()
		cmd.Wait()
		if err != nil {
			b.Fatal(err)
		}
		rss, anon, file = float64(mem[0])/1024, float64(mem[1])/1024, float64(mem[2])/1024
	}
	b.ReportMetric(rss, "rss-MiB")
	b.ReportMetric(anon, "anon-MiB") // private: heap, stacks
	b.ReportMetric(file, "file-MiB") // the executable's own mapped pages
	b.ReportMetric(perCycle, "ms/cycle")
	floor := floorMemory(b)
	b.ReportMetric(floor[0], "floor-rss-MiB")
	b.ReportMetric(floor[2], "floor-file-MiB")
	b.ReportMetric(rss/floor[0], "rss/floor")
}

// floorMemory starts bench/floor/deps (hello world linking injector's
// libraries) and returns its VmRSS, RssAnon and RssFile in MiB once its
// initialisers have run: the memory a process pays for linking them
// before it does anything.
func floorMemory(b *testing.B) [3]float64 {
	cmd := exec.Command(build(b, "github.com/injector-dev/injector/bench/floor/deps"), "wait")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	// It prints its line after every initialiser and main have run.
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		b.Fatal(err)
	}
	mem, err := procStatus(cmd.Process.Pid, "VmRSS", "RssAnon", "RssFile")
	if err != nil {
		b.Fatal(err)
	}
	return [3]float64{float64(mem[0]) / 1024, float64(mem[1]) / 1024, float64(mem[2]) / 1024}
}

// passworkFixture starts a Passwork emulator seeded with n secrets in 3
// vaults and writes file, one line per secret as line makes it; it returns
// the emulator and the file's path.
func passworkFixture(b *testing.B, n int, file string, line func(i int, path string) string) (*passworktest.Server, string) {
	es := entries(n, 3, false)
	srv := passworktest.NewServer()
	b.Cleanup(srv.Close)
	if err := srv.Seed(es); err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	for i, e := range es {
		sb.WriteString(line(i, e.Path) + "\n")
	}
	dst := filepath.Join(b.TempDir(), file)
	if err := os.WriteFile(dst, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return srv, dst
}

// daemonFixture is passworkFixture with a file template for a daemon:
// one PATH=<< passwork "PATH" >> line per secret.
func daemonFixture(b *testing.B, n int) (*passworktest.Server, string) {
	return passworkFixture(b, n, "app.tpl", func(_ int, path string) string {
		return fmt.Sprintf("%s=<< passwork %q >>", path, path)
	})
}

// waitForListen returns the address the daemon logged for --listen.
func waitForListen(b *testing.B, logs *testutil.SyncBuffer) string {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec struct{ Addr, Message string }
			if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Message, "serving /metrics") {
				return rec.Addr
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatalf("daemon did not start listening:\n%s", logs.String())
	return ""
}

// waitForCycles polls /metrics until injector_renders_total counts at least
// n refreshes of the template, and returns the count.
func waitForCycles(b *testing.B, addr string, n float64) float64 {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		if total, err := rendersTotal(addr); err == nil && total >= n {
			return total
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("fewer than %v cycles in 10 minutes", n)
	return 0
}

// rendersTotal scrapes a daemon's /metrics and sums injector_renders_total
// over its labels: the refresh cycles of a one-template daemon.
func rendersTotal(addr string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var total float64
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "injector_renders_total{") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			total += v
		}
	}
	return total, nil
}

// procStatus reads memory fields (in kB) from /proc/<pid>/status.
func procStatus(pid int, fields ...string) ([]int, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := make([]int, len(fields))
	for i, f := range fields {
		found := false
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, f+":"); ok {
				if out[i], err = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB")); err != nil {
					return nil, err
				}
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("no %s in /proc/%d/status", f, pid)
		}
	}
	return out, nil
}

// extraEnv passes GOGC and GOMEMLIMIT through to the daemon process, so
// bench/run can show their effect.
func extraEnv() []string {
	var out []string
	for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
		if v, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}
