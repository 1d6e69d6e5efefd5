package kubernetes

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStaticBinary builds the release binary with scripts/build-static, the
// script the Dockerfile's build stage runs, and checks what the scratch-like
// distroless image needs: no dynamic loader, no shared libraries, and the
// version stamped through -ldflags.
func TestStaticBinary(t *testing.T) {
	out := filepath.Join(t.TempDir(), "injector")
	cmd := exec.Command(repoRoot + "/scripts/build-static")
	cmd.Env = append(os.Environ(), "VERSION=v9.9.9-static-test", "OUT="+out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build-static: %v\n%s", err, msg)
	}

	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v program header: it is dynamically linked", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("binary has a symbol table: -s was not applied")
	}

	v, err := exec.Command(out, "version").Output()
	if err != nil || strings.TrimSpace(string(v)) != "injector v9.9.9-static-test" {
		t.Errorf("injector version = %q, %v", v, err)
	}
}
