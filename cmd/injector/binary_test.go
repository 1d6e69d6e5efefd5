package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLinksNoKubernetesCode builds injector and asserts from the module
// list in the binary (`go version -m`) that it links no Kubernetes module:
// the sidecar runs in every Pod and must not carry or initialise the
// webhook's dependencies. As a control, the webhook binary built the same
// way must list k8s.io/api, or the check could not fail.
func TestLinksNoKubernetesCode(t *testing.T) {
	t.Parallel()
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build the binaries: %v", err)
	}
	dir := t.TempDir()
	modules := func(name, pkg string) []string {
		t.Helper()
		bin := filepath.Join(dir, name)
		// The release build's flags (scripts/build-static): the other
		// tests and scripts build with them too, so a cold run compiles
		// the dependencies once for all of them, not once more for this.
		build := exec.Command(gotool, "build", "-trimpath", "-o", bin, pkg)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
		out, err := exec.Command(gotool, "version", "-m", bin).Output()
		if err != nil {
			t.Fatalf("go version -m %s: %v", bin, err)
		}
		// Lines are "\tdep\tPATH\tVERSION\tSUM" (and "=>" for replacements).
		var mods []string
		for line := range strings.SplitSeq(string(out), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && (f[0] == "dep" || f[0] == "=>") {
				mods = append(mods, f[1])
			}
		}
		if len(mods) == 0 {
			t.Fatalf("go version -m %s lists no modules:\n%s", bin, out)
		}
		return mods
	}
	isKubernetes := func(mod string) bool {
		return strings.HasPrefix(mod, "k8s.io/") || strings.HasPrefix(mod, "sigs.k8s.io/")
	}

	for _, m := range modules("injector", ".") {
		if isKubernetes(m) {
			t.Errorf("injector links %s", m)
		}
	}
	var control []string
	for _, m := range modules("injector-webhook", "../injector-webhook") {
		if isKubernetes(m) {
			control = append(control, m)
		}
	}
	if !strings.Contains(strings.Join(control, " ")+" ", "k8s.io/api ") {
		t.Errorf("control: injector-webhook links %v, want k8s.io/api among them", control)
	}
}

// TestReleaseBuild builds injector twice with scripts/build-static, the
// script the Dockerfile runs: the two binaries are byte for byte the same
// (the build is reproducible: no wall-clock time is stamped), and
// `injector version` shows the commit and the commit's date.
func TestReleaseBuild(t *testing.T) {
	t.Parallel()
	git := func(args ...string) string {
		out, err := exec.Command("git", args...).Output()
		if err != nil {
			t.Fatalf("git %v: %v (the release build reads the commit from git)", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	commit := git("rev-parse", "HEAD")
	epoch := git("log", "-1", "--format=%ct")
	dir := t.TempDir()
	var bins [2][]byte
	for i := range bins {
		out := filepath.Join(dir, fmt.Sprint("injector", i))
		cmd := exec.Command("../../scripts/build-static", "./cmd/injector")
		cmd.Env = append(os.Environ(), "OUT="+out, "VERSION=v9.9.9-test")
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("scripts/build-static: %v\n%s", err, msg)
		}
		var err error
		if bins[i], err = os.ReadFile(out); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(bins[0], bins[1]) {
		t.Error("two builds of the same tree differ: the build is not reproducible")
	}
	v, err := exec.Command(filepath.Join(dir, "injector0"), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := strconv.ParseInt(epoch, 10, 64)
	date := time.Unix(sec, 0).UTC().Format(time.RFC3339)
	for _, want := range []string{"injector v9.9.9-test\n", "  commit:   " + commit, "  built:    " + date + "\n", "  go:       go1.", "  platform: " + runtime.GOOS + "/" + runtime.GOARCH + "\n"} {
		if !strings.Contains(string(v), want) {
			t.Errorf("version lacks %q:\n%s", want, v)
		}
	}
}
