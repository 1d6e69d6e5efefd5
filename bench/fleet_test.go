package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/injector-dev/injector/internal/fetch/passwork/passworktest"
	"github.com/injector-dev/injector/internal/testutil"
)

// fleetSettings are BenchmarkFleet's knobs, from the environment so that
// bench/run and an operator can size the run without editing code. Every
// one is bounded: the benchmark must stop by itself on a shared machine.
type fleetSettings struct {
	daemons  int           // FLEET_DAEMONS, default 100, at most 500
	secrets  int           // FLEET_SECRETS per daemon (3 vaults), default 10
	interval time.Duration // FLEET_INTERVAL, default 10s
	duration time.Duration // FLEET_DURATION of the measured window, default 60s, at most 10m
}

func fleetFromEnv(b *testing.B) fleetSettings {
	s := fleetSettings{daemons: 100, secrets: 10, interval: 10 * time.Second, duration: 60 * time.Second}
	num := func(name string, dst *int, max int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > max {
				b.Fatalf("%s=%q: want a whole number from 1 to %d", name, v, max)
			}
			*dst = n
		}
	}
	dur := func(name string, dst *time.Duration, max time.Duration) {
		if v := os.Getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Second || d > max {
				b.Fatalf("%s=%q: want a duration from 1s to %v", name, v, max)
			}
			*dst = d
		}
	}
	num("FLEET_DAEMONS", &s.daemons, 500)
	num("FLEET_SECRETS", &s.secrets, 1000)
	dur("FLEET_INTERVAL", &s.interval, 10*time.Minute)
	dur("FLEET_DURATION", &s.duration, 10*time.Minute)
	return s
}

// BenchmarkFleet runs N real daemons (`injector render --interval I
// --splay S`, the release build, one process each) against one Passwork
// emulator in the benchmark process, all started together as after a
// rollout or a node restart, and counts the requests the server receives
// per second over a fixed window that starts once every daemon has
// rendered. One op is one whole fleet run; run it with -benchtime 1x.
//
// Reported per splay (0, the default interval/10, and a whole interval):
//
//	req/s-mean, req/s-peak  server requests per 1 s bucket over the window
//	peak/mean               what the burstiest second costs over the average
//	req/s-peak-100ms        the busiest 100 ms bucket, as a rate
//	start-spread-s          first to last daemon's first render
//	rss-MiB, rss-max-MiB    VmRSS per daemon at the end: median and largest
//	cpu-ms/cycle            daemon CPU (utime+stime) per warm refresh cycle, fleet-wide
//	requests/cycle          server requests per warm refresh cycle
//
// The daemons are stopped with SIGTERM (SIGKILL after 10 s) by PID, the
// ones this benchmark started and no other; they get SIGKILL from the
// kernel should the benchmark process die first (Pdeathsig).
func BenchmarkFleet(b *testing.B) {
	s := fleetFromEnv(b)
	bin := build(b, "github.com/injector-dev/injector/cmd/injector")
	srv, src := daemonFixture(b, s.secrets)
	for _, splay := range []time.Duration{0, s.interval / 10, s.interval} {
		b.Run(fmt.Sprintf("daemons=%d/interval=%v/splay=%v", s.daemons, s.interval, splay), func(b *testing.B) {
			var r fleetResult
			for i := 0; i < b.N; i++ {
				r = runFleet(b, bin, src, srv, s, splay)
			}
			b.ReportMetric(r.mean, "req/s-mean")
			b.ReportMetric(r.peak, "req/s-peak")
			b.ReportMetric(r.peak/r.mean, "peak/mean")
			b.ReportMetric(r.peak100ms, "req/s-peak-100ms")
			b.ReportMetric(r.startSpread.Seconds(), "start-spread-s")
			b.ReportMetric(r.rssMedian, "rss-MiB")
			b.ReportMetric(r.rssMax, "rss-max-MiB")
			b.ReportMetric(r.cpuPerCycle, "cpu-ms/cycle")
			b.ReportMetric(r.requestsPerCycle, "requests/cycle")
		})
	}
}

type fleetResult struct {
	mean, peak, peak100ms float64
	startSpread           time.Duration
	rssMedian, rssMax     float64
	cpuPerCycle           float64
	requestsPerCycle      float64
}

// fleetDaemon is one daemon process this benchmark started.
type fleetDaemon struct {
	cmd  *exec.Cmd
	logs testutil.SyncBuffer
	out  string
	addr string
}

func runFleet(b *testing.B, bin, src string, srv *passworktest.Server, s fleetSettings, splay time.Duration) fleetResult {
	dir := b.TempDir()
	c := srv.Config()
	env := []string{"PASSWORK_URL=" + c.URL, "PASSWORK_TOKEN=" + c.Token,
		"PASSWORK_REFRESH_TOKEN=" + c.RefreshToken, "PASSWORK_MASTER_KEY=" + c.MasterKey,
		"INJECTOR_LOG_FORMAT=json", "INJECTOR_LOG_LEVEL=info"}
	env = append(env, extraEnv()...)

	ds := make([]*fleetDaemon, s.daemons)
	defer stopFleet(b, ds)
	for i := range ds {
		d := &fleetDaemon{out: filepath.Join(dir, fmt.Sprintf("app%03d.conf", i))}
		d.cmd = exec.Command(bin, "render", "--interval", s.interval.String(), "--min-interval", "0",
			"--splay", splay.String(), "--listen", "127.0.0.1:0", "-t", src+":"+d.out)
		d.cmd.Env = env
		d.cmd.Stderr = &d.logs
		// Should this process die without stopping them (go test -timeout
		// panics past every defer), the kernel kills them.
		d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := d.cmd.Start(); err != nil {
			b.Fatal(err)
		}
		ds[i] = d
	}

	// Every daemon's first render, cold: login, key unwrapping, resolve.
	var first, last time.Time
	pending := slices.Clone(ds)
	deadline := time.Now().Add(5 * time.Minute)
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			b.Fatalf("%d daemons did not render in 5 minutes; one's log:\n%s", len(pending), pending[0].logs.String())
		}
		pending = slices.DeleteFunc(pending, func(d *fleetDaemon) bool {
			if _, err := os.Stat(d.out); err != nil {
				return false
			}
			if first.IsZero() {
				first = time.Now()
			}
			last = time.Now()
			return true
		})
		time.Sleep(20 * time.Millisecond)
	}
	for _, d := range ds {
		d.addr = waitForListen(b, &d.logs)
	}

	// The measured window: sample the server's request count every 10 ms.
	cycles0, cpu0 := fleetCounters(b, ds)
	type sample struct {
		at time.Duration
		n  int
	}
	var samples []sample
	t0, n0 := time.Now(), srv.Requests()
	for tick := time.NewTicker(10 * time.Millisecond); time.Since(t0) < s.duration; <-tick.C {
		samples = append(samples, sample{time.Since(t0), srv.Requests() - n0})
	}
	requests := srv.Requests() - n0
	cycles1, cpu1 := fleetCounters(b, ds)

	bucket := func(width time.Duration) []int {
		counts := make([]int, int(s.duration/width))
		prev := 0
		for _, sm := range samples {
			if i := int(sm.at / width); i < len(counts) {
				counts[i] += sm.n - prev
			}
			prev = sm.n
		}
		return counts
	}
	perSecond := bucket(time.Second)
	r := fleetResult{
		mean:        float64(requests) / s.duration.Seconds(),
		peak:        float64(slices.Max(perSecond)),
		peak100ms:   float64(slices.Max(bucket(100*time.Millisecond))) * 10,
		startSpread: last.Sub(first),
	}
	if cycles := cycles1 - cycles0; cycles > 0 {
		r.cpuPerCycle = float64((cpu1 - cpu0).Microseconds()) / 1000 / cycles
		r.requestsPerCycle = float64(requests) / cycles
	}
	var rss []float64
	for _, d := range ds {
		mem, err := procStatus(d.cmd.Process.Pid, "VmRSS")
		if err != nil {
			b.Fatal(err)
		}
		rss = append(rss, float64(mem[0])/1024)
	}
	slices.Sort(rss)
	r.rssMedian, r.rssMax = rss[len(rss)/2], rss[len(rss)-1]
	return r
}

// fleetCounters returns the refresh cycles (injector_renders_total) and
// the CPU time of every daemon, summed.
func fleetCounters(b *testing.B, ds []*fleetDaemon) (cycles float64, cpu time.Duration) {
	for _, d := range ds {
		n, err := rendersTotal(d.addr)
		if err != nil {
			b.Fatal(err)
		}
		cycles += n
		t, err := procCPU(d.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		cpu += t
	}
	return cycles, cpu
}

// procCPU reads a process's utime+stime from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var ticks int64
	for _, v := range f[11:13] { // utime, stime: fields 14 and 15
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// stopFleet stops the daemons this benchmark started, by PID: SIGTERM,
// then SIGKILL for any still running after 10 s.
func stopFleet(b *testing.B, ds []*fleetDaemon) {
	var running []*fleetDaemon
	for _, d := range ds {
		if d != nil && d.cmd.Process != nil {
			d.cmd.Process.Signal(syscall.SIGTERM)
			running = append(running, d)
		}
	}
	done := make(chan struct{})
	go func() {
		for _, d := range running {
			d.cmd.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		for _, d := range running {
			d.cmd.Process.Kill()
		}
		<-done
	}
}
