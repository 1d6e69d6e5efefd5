package kubernetes

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/injector-dev/injector/internal/webhook"
)

const (
	assetsHint    = "KUBEBUILDER_ASSETS is unset: run scripts/test-kubernetes, or export KUBEBUILDER_ASSETS=$(scripts/envtest-assets)"
	injectorImage = "ghcr.io/injector-dev/injector:test"
)

// cluster is a real kube-apiserver + etcd with the chart's webhook
// configuration installed and pointing at an in-process webhook server.
// It is nil when KUBEBUILDER_ASSETS is unset.
var cluster *struct {
	client client.Client
	config *rest.Config
}

func requireCluster(t *testing.T) {
	t.Helper()
	if cluster == nil {
		t.Skip(assetsHint)
	}
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "envtest tests will skip:", assetsHint)
		return m.Run()
	}
	env, stop, err := startCluster()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start envtest:", err)
		return 1
	}
	defer stop()
	c, err := client.New(env.Config, client.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 1
	}
	cluster = &struct {
		client client.Client
		config *rest.Config
	}{c, env.Config}
	return m.Run()
}

// startCluster starts the control plane with the MutatingWebhookConfiguration
// the Helm chart renders, rewritten only in where it sends requests: envtest
// cannot route to a Service, so the webhook is served on 127.0.0.1.
func startCluster() (*envtest.Environment, func(), error) {
	out, err := helm("template", "injector", chartDir, "--namespace", "injector-system")
	if err != nil {
		return nil, nil, err
	}
	objs, err := decodeStrict(out)
	if err != nil {
		return nil, nil, err
	}
	mwcs := byKind[*admissionregistrationv1.MutatingWebhookConfiguration](objs)
	if len(mwcs) != 1 {
		return nil, nil, fmt.Errorf("chart renders %d MutatingWebhookConfigurations, want 1", len(mwcs))
	}
	mwc := mwcs[0]

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	for i := range mwc.Webhooks {
		cc := &mwc.Webhooks[i].ClientConfig
		url := fmt.Sprintf("https://127.0.0.1:%d%s", port, *cc.Service.Path)
		cc.URL, cc.Service = &url, nil
	}
	env := &envtest.Environment{WebhookInstallOptions: envtest.WebhookInstallOptions{
		MutatingWebhooks: []*admissionregistrationv1.MutatingWebhookConfiguration{mwc},
		LocalServingHost: "127.0.0.1",
		LocalServingPort: port,
	}}
	if _, err := env.Start(); err != nil {
		return nil, nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	opts := env.WebhookInstallOptions
	srv := &webhook.Server{
		Addr:     fmt.Sprintf("127.0.0.1:%d", port),
		CertFile: filepath.Join(opts.LocalServingCertDir, "tls.crt"),
		KeyFile:  filepath.Join(opts.LocalServingCertDir, "tls.key"),
		Handler:  &webhook.Handler{Config: webhook.Config{Image: injectorImage}, Log: zerolog.New(os.Stderr).Level(zerolog.WarnLevel)},
		Log:      zerolog.New(os.Stderr).Level(zerolog.WarnLevel),
	}
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe(ctx) }()
	stop := func() {
		cancel()
		<-done
		env.Stop()
	}
	// failurePolicy is Fail: wait until the webhook answers TLS before any
	// Pod is created.
	for deadline := time.Now().Add(30 * time.Second); ; {
		conn, err := tls.Dial("tcp", srv.Addr, &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			conn.Close()
			break
		}
		select {
		case err := <-done:
			env.Stop()
			return nil, nil, fmt.Errorf("webhook server: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("webhook server not reachable: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return env, stop, nil
}
