package kubernetes

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestWebhookChart installs the Helm chart as its README says, with a rule
// giving the example's ServiceAccount its Secret, and applies
// webhook-annotated.yaml: the webhook injects the sidecar and the app reads
// its secrets. Then the admission decisions: bad annotations are denied with
// every problem listed, and with the webhook scaled to 0 a labelled Pod is
// rejected (failurePolicy Fail) while an unlabelled one is still admitted.
func TestWebhookChart(t *testing.T) {
	c := node(t)
	t.Parallel() // each test has its own namespace and emulator
	system := c.namespace(t, "injector-system")
	ns, emu := c.appNamespace(t, "e2e-webhook")

	// The user's values: the images built from this repository, and the
	// rule of webhook-annotated.yaml's comment for this namespace, with the
	// private CA's key.
	repo, tag, _ := strings.Cut(c.webhookImage, ":")
	injRepo, injTag, _ := strings.Cut(c.image, ":")
	values := fmt.Sprintf(`image: {repository: %q, tag: %q}
injectorImage: {repository: %q, tag: %q}
credentials:
  rules:
    - namespace: %s
      serviceAccount: app-webhook
      secret: app-injector
      keys: [PASSWORK_URL, PASSWORK_TOKEN, PASSWORK_REFRESH_TOKEN, PASSWORK_MASTER_KEY, INJECTOR_CA]
`, repo, tag, injRepo, injTag, ns)
	valuesFile := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(valuesFile, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	c.helm(t, "install", "injector-webhook", filepath.Join(repoRoot, "deploy/helm/injector-webhook"),
		"--namespace", system, "-f", valuesFile, "--wait", "--timeout", "5m")
	t.Cleanup(func() {
		run("", c.helmBin, "uninstall", "injector-webhook", "--namespace", system, "--wait", "--timeout", "2m")
	})

	t.Run("injects into a labelled pod", func(t *testing.T) {
		c.must(t, manifest(t, "webhook-annotated.yaml", "image: example/app:1.0", "image: "+c.appImage), "-n", ns, "apply", "-f", "-")
		c.must(t, "", "-n", ns, "rollout", "status", "deployment/app-webhook", "--timeout=5m")
		pod := c.pod(t, ns, "app-webhook")
		if pod.Annotations["injector.io/status"] != "injected" || len(pod.Spec.InitContainers) != 1 || pod.Spec.InitContainers[0].Image != c.image {
			t.Fatalf("pod not injected: annotations %v, init containers %+v", pod.Annotations, pod.Spec.InitContainers)
		}
		if !slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "injector-state" }) {
			t.Errorf("no volume for the renewed token pair (the rule has PASSWORK_REFRESH_TOKEN): %+v", pod.Spec.Volumes)
		}
		db := seedEntry(t, "prod/db/postgres")
		stripe := seedEntry(t, "prod/payments/stripe")
		want := rendered(t, db.Fields["password"])
		want["/injector/secrets/api-key"] = stripe.Fields["password"]
		c.wantFiles(t, ns, pod.Name, "0400", appUID, want)
		delete(want, "/injector/secrets/api-key") // the app reads only its --config and --env-file
		if err := appLoaded(c.logs(t, ns, pod.Name, "app"), "", want); err != nil {
			t.Error(err)
		}
		c.noLeaks(t, ns, emu.secrets(map[string]string{
			"prod/db/postgres password": db.Fields["password"], "prod/payments/stripe password": stripe.Fields["password"],
		}))
	})

	// A labelled Pod with three mistakes is denied with all three named.
	t.Run("denies bad annotations, listing every problem", func(t *testing.T) {
		_, err := c.kubectl(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: bad-annotations
  labels: {injector.io/inject: "true"}
  annotations:
    injector.io/mode: daemon
    injector.io/templates-configmap: app-templates
    injector.io/file-mode: "0999"
spec:
  serviceAccountName: app-webhook
  containers: [{name: app, image: %s}]
`, c.appImage), "-n", ns, "create", "-f", "-")
		if err == nil {
			t.Fatal("a pod with bad injector.io annotations was created")
		}
		for _, want := range []string{`admission webhook "pods.injector.io" denied the request`,
			`annotation injector.io/mode: "daemon" is not init or sidecar`,
			"annotation injector.io/templates: required with injector.io/templates-configmap",
			`annotation injector.io/file-mode: "0999" is not an octal file mode`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("denial does not say %q:\n%v", want, err)
			}
		}
	})

	t.Run("webhook down: labelled pods rejected, others admitted", func(t *testing.T) {
		c.must(t, "", "-n", system, "scale", "deployment/injector-webhook", "--replicas=0")
		waitFor(t, 3*time.Minute, "the webhook's pods to be gone", func() error {
			out, err := c.kubectl("", "-n", system, "get", "pods", "-l", "app.kubernetes.io/instance=injector-webhook", "-o", "name")
			if err != nil {
				return err
			}
			if strings.TrimSpace(out) != "" {
				return fmt.Errorf("still running: %s", out)
			}
			return nil
		})
		pod := func(name, labels string) string {
			return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  labels: {%s}
  annotations: {injector.io/template.api-key: '<< passwork "prod/payments/stripe" "password" >>'}
spec:
  serviceAccountName: app-webhook
  securityContext: {runAsNonRoot: true, runAsUser: %d}
  containers: [{name: app, image: %s, args: ["--config", "/dev/null"]}]
`, name, labels, appUID, c.appImage)
		}
		_, err := c.kubectl(pod("labelled", `injector.io/inject: "true"`), "-n", ns, "create", "-f", "-")
		if err == nil {
			t.Error("a labelled pod was created while the webhook was down")
		} else if !strings.Contains(err.Error(), `failed calling webhook "pods.injector.io"`) {
			t.Errorf("labelled pod rejected for another reason: %v", err)
		}
		c.must(t, pod("unlabelled", "app: plain"), "-n", ns, "create", "-f", "-")
		c.must(t, "", "-n", ns, "wait", "--for=condition=Ready", "pod/unlabelled", "--timeout=3m")
		p, err := c.getPod(ns, "unlabelled")
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Spec.InitContainers) != 0 || p.Annotations["injector.io/status"] != "" {
			t.Errorf("the unlabelled pod was mutated: %+v", p.Spec.InitContainers)
		}
	})
}
