package kubernetes

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStaticBinary builds both release binaries with scripts/build-static,
// the script the Dockerfile's build stages run, and checks what the
// scratch-like distroless images need: no dynamic loader, no shared
// libraries, and the version stamped through -ldflags.
func TestStaticBinary(t *testing.T) {
	for _, tc := range []struct {
		pkg string
		// check runs the binary and asserts the stamped version shows.
		check func(t *testing.T, bin string)
	}{
		{"./cmd/injector", func(t *testing.T, bin string) {
			v, err := exec.Command(bin, "version").Output()
			if first, _, _ := strings.Cut(string(v), "\n"); err != nil || first != "injector v9.9.9-static-test" {
				t.Errorf("injector version = %q, %v", v, err)
			}
		}},
		{"./cmd/injector-webhook", func(t *testing.T, bin string) {
			// The webhook logs its version when it starts; with an
			// unreadable certificate it then exits 1.
			dir := t.TempDir()
			cmd := exec.Command(bin, "--listen=127.0.0.1:0", "--tls-cert-file="+dir+"/none.crt",
				"--tls-key-file="+dir+"/none.key", "--image=injector:test")
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), `"version":"v9.9.9-static-test"`) {
				t.Errorf("injector-webhook: %v\n%s", err, out)
			}
		}},
	} {
		t.Run(filepath.Base(tc.pkg), func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), filepath.Base(tc.pkg))
			cmd := exec.Command(repoRoot+"/scripts/build-static", tc.pkg)
			cmd.Env = append(os.Environ(), "VERSION=v9.9.9-static-test", "OUT="+out)
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("scripts/build-static %s: %v\n%s", tc.pkg, err, msg)
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
			tc.check(t, out)
		})
	}
}
