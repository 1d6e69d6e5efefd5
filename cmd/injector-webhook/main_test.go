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
		{"long help", []string{"--help"}, exitOK, "Exit codes: 0 stopped cleanly, 1 the server could not start or failed,\n2 bad flags or settings."},
		{"version", []string{"--version"}, exitOK, "injector-webhook "},
		{"version with other flags", append(required, "--version"), exitOK, "  platform: "},
		{"nothing", nil, exitUsage, "--tls-cert-file, --tls-key-file and --image are required"},
		{"unknown flag", []string{"--nope"}, exitUsage, "flag provided but not defined"},
		{"arguments", append(required, "webhook"), exitUsage, `unexpected arguments ["webhook"]`},
		{"arguments first", append([]string{"webhook"}, required...), exitUsage, `unexpected arguments ["webhook"`},
		{"pull policy", append(required, "--image-pull-policy", "Sometimes"), exitUsage, `--image-pull-policy "Sometimes"`},
		{"port", append(required, "--sidecar-port", "0"), exitUsage, "--sidecar-port 0"},
		{"quantity", append(required, "--memory-limit", "lots"), exitUsage, `--memory-limit "lots"`},
		{"cpu limit", append(required, "--cpu-limit", "-1x"), exitUsage, `--cpu-limit "-1x"`},
		{"size limit", append(required, "--secrets-size-limit", "big"), exitUsage, `--secrets-size-limit "big"`},
		{"credentials format", append(required, "--credentials", "shop"), exitUsage, `want NAMESPACE[/SERVICEACCOUNT]=SECRET:KEY`},
		{"credentials key", append(required, "--credentials", "shop=s:PASSWORK_URL,SSL_CERT"), exitUsage, "SSL_CERT is not a provider setting"},
		{"credentials twice", append(required, "--credentials", "shop=a:PASSWORK_URL", "--credentials", "shop=b:PASSWORK_URL"), exitUsage, "a second rule for the same namespace"},
		{"interval below minimum", append(required, "--default-interval", "10s"), exitUsage, "below the minimum interval 30s"},
		{"mode", append(required, "--default-mode", "daemon"), exitUsage, "bad defaults"},
		{"log level", append(required, "--log-level", "loud"), exitUsage, `--log-level "loud"`},
		// Valid flags, but the server cannot load its certificate.
		{"no certificate", required, exitSetup, "missing.pem"},
		{"every setting", append(required, "--credentials", "*=injector:PASSWORK_URL,PASSWORK_TOKEN", "--credentials", "shop/checkout=checkout:PASSBOLT_URL",
			"--allow-pod-credentials", "--min-interval", "1m", "--default-interval", "2m", "--cpu-limit", "200m", "--secrets-size-limit", "2Mi"), exitSetup, "missing.pem"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("INJECTOR_LOG_LEVEL", "info")
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			// What was asked for goes to stdout; errors to stderr.
			out := stderr.String()
			if tt.wantCode == exitOK {
				out = stdout.String()
			}
			if code != tt.wantCode || !strings.Contains(out, tt.wantErr) {
				t.Errorf("exit %d, want %d with %q; stdout:\n%s\nstderr:\n%s", code, tt.wantCode, tt.wantErr, stdout.String(), stderr.String())
			}
		})
	}
}
