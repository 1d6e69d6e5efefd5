package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestMetricsOnlyWhenServed: the Prometheus registry, with its Go and
// process collectors, is built only when --listen serves it. Nothing
// could read it otherwise, and building it is part of every cold start
// (docs/performance.md, "Sidecar memory and start-up").
func TestMetricsOnlyWhenServed(t *testing.T) {
	t.Parallel()
	for _, listen := range []string{"", "127.0.0.1:0"} {
		w, err := startWorker(&logOptions{}, &cacheOptions{}, listen, io.Discard)
		if err != nil {
			t.Fatalf("listen %q: %v", listen, err)
		}
		served := listen != ""
		if got := w.metrics != nil; got != served {
			t.Errorf("listen %q: metrics built = %v, want %v", listen, got, served)
		}
		if got := w.opt.Observe != nil; got != served {
			t.Errorf("listen %q: HTTP requests observed = %v, want %v", listen, got, served)
		}
	}
}

// initCost is one line of GODEBUG=inittrace=1: what a package's
// initialiser allocated.
type initCost struct {
	pkg           string
	bytes, allocs int
}

// initTrace runs bin with GODEBUG=inittrace=1 and the arguments and
// returns every package initialiser the runtime reports.
func initTrace(t *testing.T, bin string, args ...string) []initCost {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, stderr.String())
	}
	// init PKG @0.5 ms, 0.012 ms clock, 2064 bytes, 19 allocs
	var out []initCost
	for line := range strings.SplitSeq(stderr.String(), "\n") {
		f := strings.Fields(line)
		if len(f) != 11 || f[0] != "init" || f[8] != "bytes," || f[10] != "allocs" {
			continue
		}
		b, err1 := strconv.Atoi(f[7])
		a, err2 := strconv.Atoi(f[9])
		if err1 != nil || err2 != nil {
			t.Fatalf("inittrace line %q: %v %v", line, err1, err2)
		}
		out = append(out, initCost{pkg: f[1], bytes: b, allocs: a})
	}
	return out
}

// TestOwnInitialisersStaySmall builds injector and reads what each
// package initialiser allocates (GODEBUG=inittrace=1 injector version).
// Every process pays for them before main, a one-shot run as much as a
// sidecar. The libraries' initialisers are a floor injector cannot
// lower (docs/performance.md); its own packages build their regular
// expressions and tables on first use, and keep only error values and
// constants at initialisation: 1.9 KB in all now, at most 1 KB for one
// package. An eagerly compiled UUID pattern allocates 14 KB, a table of
// 40 strings 3 KB.
func TestOwnInitialisersStaySmall(t *testing.T) {
	t.Parallel()
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build the binary: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "injector")
	build := exec.Command(gotool, "build", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const perPackage, total = 2 << 10, 6 << 10
	own, libraries := 0, 0
	for _, c := range initTrace(t, bin, "version") {
		if c.pkg != "main" && !strings.HasPrefix(c.pkg, "github.com/injector-dev/injector/") {
			libraries += c.bytes
			continue
		}
		own += c.bytes
		if c.bytes > perPackage {
			t.Errorf("%s: its initialiser allocates %d bytes in %d allocations (at most %d): build it on first use", c.pkg, c.bytes, c.allocs, perPackage)
		}
	}
	if own > total {
		t.Errorf("injector's own initialisers allocate %d bytes in all, at most %d", own, total)
	}
	// The control: the libraries' initialisers (sprig's semver compiles
	// regular expressions, client_golang builds its default registry) are
	// seen, so the parsing above can find a costly one.
	if libraries < 100<<10 {
		t.Errorf("inittrace shows only %d bytes allocated by the libraries' initialisers; is the trace parsed?", libraries)
	}
	t.Logf("initialisers: injector's own %d bytes, libraries %d bytes", own, libraries)
}
