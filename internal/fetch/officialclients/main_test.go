package officialclients

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// injectorBin is the injector binary, built once for all tests: what an
// official client wrote is read back the way a user reads it, with
// `injector get`.
var injectorBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "officialclients-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	injectorBin = filepath.Join(dir, "injector")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	// Built in the main module (the repository root), so it is the
	// product binary with the product's dependency versions.
	build := exec.Command(gobin, "build", "-o", injectorBin, "./cmd/injector")
	build.Dir = filepath.Join("..", "..", "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building injector:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// injectorGet runs `injector get PROVIDER:PATH --field FIELD -n` with only
// the given settings in its environment and returns what it printed, or
// an error carrying its stderr.
func injectorGet(t *testing.T, env map[string]string, ref, field string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, injectorBin, "get", ref, "--field", field, "-n")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("injector get %s --field %s: %v: %s", ref, field, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// mustGet is injectorGet that fails the test on error and compares.
func mustGet(t *testing.T, env map[string]string, ref, field, want string) {
	t.Helper()
	got, err := injectorGet(t, env, ref, field)
	if err != nil {
		t.Error(err)
		return
	}
	if got != want {
		t.Errorf("injector get %s --field %s = %q, want %q", ref, field, got, want)
	}
}
