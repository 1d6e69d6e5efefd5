package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestFlags(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	required := []string{"--tls-cert-file", missing, "--tls-key-file", missing, "--image", "injector:test", "--listen", "127.0.0.1:0"}
	for _, tt := range []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"help", []string{"-h"}, exitOK, "-default-mode"},
		{"nothing", nil, exitUsage, "--tls-cert-file, --tls-key-file and --image are required"},
		{"unknown flag", []string{"--nope"}, exitUsage, "flag provided but not defined"},
		{"arguments", append(required, "webhook"), exitUsage, `unexpected arguments ["webhook"]`},
		{"pull policy", append(required, "--image-pull-policy", "Sometimes"), exitUsage, `--image-pull-policy "Sometimes"`},
		{"port", append(required, "--sidecar-port", "0"), exitUsage, "--sidecar-port 0"},
		{"quantity", append(required, "--memory-limit", "lots"), exitUsage, `--memory-limit "lots"`},
		{"mode", append(required, "--default-mode", "daemon"), exitUsage, "bad defaults"},
		{"log level", append(required, "--log-level", "loud"), exitUsage, `--log-level "loud"`},
		// Valid flags, but the server cannot load its certificate.
		{"no certificate", required, exitSetup, "missing.pem"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("INJECTOR_LOG_LEVEL", "info")
			var stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("exit %d, want %d with %q; stderr:\n%s", code, tt.wantCode, tt.wantErr, stderr.String())
			}
		})
	}
}
