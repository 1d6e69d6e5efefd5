package kubernetes

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/injector-dev/injector/internal/webhook"
)

const (
	assetsHint    = "KUBEBUILDER_ASSETS is unset: run scripts/test-kubernetes, or export KUBEBUILDER_ASSETS=$(scripts/envtest-assets)"
	injectorImage = "ghcr.io/injector-dev/injector:test"
	// certManagerModule is the cert-manager release whose CRDs the API server
	// gets, so the chart's Certificates and Issuers are validated by
	// their real schemas. Its module is fetched from the Go module proxy.
	certManagerModule = "github.com/cert-manager/cert-manager@v1.21.2"
)

// webhookConfig is the in-process webhook's: every namespace's Pods get
// the Secret app-injector (the namespaces are made per test). Injected
// containers have a CPU limit and the secrets volume a size limit, so the
// API server validates those too.
var webhookConfig = webhook.Config{
	Image: injectorImage,
	Credentials: []webhook.CredentialsRule{
		{Namespace: "*", Secret: "app-injector", Keys: []string{"PASSWORK_URL", "PASSWORK_TOKEN"}},
	},
	Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
	},
	SecretsSizeLimit: resource.MustParse("1Mi"),
}

// cluster is a real kube-apiserver + etcd with the chart's webhook
// configuration installed and pointing at an in-process webhook server.
// It is nil when KUBEBUILDER_ASSETS is unset.
var cluster *struct {
	client     client.Client
	config     *rest.Config
	kubeconfig string // a file, for helm
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
	dir, err := os.MkdirTemp("", "injector-envtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cluster = &struct {
		client     client.Client
		config     *rest.Config
		kubeconfig string
	}{c, env.Config, kubeconfig}
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
	crds, err := certManagerCRDs()
	if err != nil {
		return nil, nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{crds},
		ErrorIfCRDPathMissing: true,
		WebhookInstallOptions: envtest.WebhookInstallOptions{
			MutatingWebhooks: []*admissionregistrationv1.MutatingWebhookConfiguration{mwc},
			LocalServingHost: "127.0.0.1",
			LocalServingPort: port,
		},
	}
	if _, err := env.Start(); err != nil {
		return nil, nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	opts := env.WebhookInstallOptions
	srv := &webhook.Server{
		Addr:     fmt.Sprintf("127.0.0.1:%d", port),
		CertFile: filepath.Join(opts.LocalServingCertDir, "tls.crt"),
		KeyFile:  filepath.Join(opts.LocalServingCertDir, "tls.key"),
		Handler:  &webhook.Handler{Config: webhookConfig, Log: zerolog.New(os.Stderr).Level(zerolog.WarnLevel)},
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

// certManagerCRDs downloads cert-manager's module (only its files, no
// build) into the module cache and returns its directory of CRDs.
func certManagerCRDs() (string, error) {
	out, err := exec.Command("go", "mod", "download", "-json", certManagerModule).Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w", certManagerModule, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("go mod download %s: no directory in %s", certManagerModule, out)
	}
	return filepath.Join(mod.Dir, "deploy", "crds"), nil
}
