package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLinksNoKubernetesCode builds injector and asserts from the module
// list in the binary (`go version -m`) that it links no Kubernetes module:
// the sidecar runs in every Pod and must not carry or initialise the
// webhook's dependencies. As a control, the webhook binary built the same
// way must list k8s.io/api, or the check could not fail.
func TestLinksNoKubernetesCode(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build the binaries: %v", err)
	}
	dir := t.TempDir()
	modules := func(name, pkg string) []string {
		t.Helper()
		bin := filepath.Join(dir, name)
		build := exec.Command(gotool, "build", "-o", bin, pkg)
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
