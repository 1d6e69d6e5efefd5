package kubernetes

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/injector-dev/injector/internal/webhook"
)

// newNamespace creates a uniquely named namespace (envtest never finishes
// deleting namespaces, so names are not reused).
func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := cluster.client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func appPod(ns string, ann map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "app-", Namespace: ns, Annotations: ann},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "example/app:1.0"},
			{Name: "proxy", Image: "example/proxy:1.0"},
		}},
	}
}

// createAndGet creates pod through the API server (so it passes the webhook
// and then the API server's own validation) and reads back what was stored.
func createAndGet(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	if err := cluster.client.Create(ctx, pod); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	var got corev1.Pod
	if err := cluster.client.Get(ctx, client.ObjectKeyFromObject(pod), &got); err != nil {
		t.Fatal(err)
	}
	return &got
}

func mountsSecrets(c corev1.Container, path string) bool {
	return slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == "injector-secrets" && m.MountPath == path && m.ReadOnly
	})
}

func TestWebhookInjectsInitContainer(t *testing.T) {
	requireCluster(t)
	got := createAndGet(t, appPod(newNamespace(t, "init"), map[string]string{
		webhook.AnnotationInject:             "true",
		webhook.AnnotationTemplatesConfigMap: "app-templates",
		webhook.AnnotationTemplates:          "app.env,config.yaml",
		webhook.AnnotationCredentialsSecret:  "app-injector",
		webhook.AnnotationCredentialsKeys:    "PASSWORK_URL,PASSWORK_TOKEN",
	}))

	if len(got.Spec.InitContainers) != 1 {
		t.Fatalf("init containers = %+v, want the injector", got.Spec.InitContainers)
	}
	inj := got.Spec.InitContainers[0]
	want := []string{"render",
		"-t", "/injector/templates/app.env:/injector/secrets/app.env:0444",
		"-t", "/injector/templates/config.yaml:/injector/secrets/config.yaml:0444"}
	if inj.Name != "injector" || inj.Image != injectorImage || !slices.Equal(inj.Args, want) || inj.RestartPolicy != nil {
		t.Errorf("injector = %s %s %q restartPolicy %v", inj.Name, inj.Image, inj.Args, inj.RestartPolicy)
	}
	if len(inj.Env) != 2 || inj.Env[1].Name != "PASSWORK_TOKEN_FILE" || inj.Env[1].Value != "/injector/credentials/PASSWORK_TOKEN" {
		t.Errorf("env = %+v", inj.Env)
	}
	for _, c := range got.Spec.Containers {
		if !mountsSecrets(c, "/injector/secrets") {
			t.Errorf("container %s mounts %+v", c.Name, c.VolumeMounts)
		}
	}
	var names []string
	for _, v := range got.Spec.Volumes {
		names = append(names, v.Name)
	}
	if !slices.Equal(names, []string{"injector-secrets", "injector-templates", "injector-credentials"}) {
		t.Errorf("volumes = %v", names)
	}
	if got.Annotations[webhook.AnnotationStatus] != webhook.StatusInjected {
		t.Errorf("annotations = %v", got.Annotations)
	}
}

func TestWebhookInjectsNativeSidecar(t *testing.T) {
	requireCluster(t)
	pod := appPod(newNamespace(t, "sidecar"), map[string]string{
		webhook.AnnotationInject:                    "true",
		webhook.AnnotationMode:                      "sidecar",
		webhook.AnnotationInterval:                  "2m",
		webhook.AnnotationSecretsPath:               "/etc/app/secrets",
		webhook.AnnotationTemplatePrefix + "db.env": `DB_PASSWORD=<< passwork "prod/db/postgres" "password" >>`,
	})
	pod.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "example/migrate:1.0"}}
	got := createAndGet(t, pod)

	if len(got.Spec.InitContainers) != 2 || got.Spec.InitContainers[0].Name != "injector" {
		t.Fatalf("init containers = %+v, want injector then migrate", got.Spec.InitContainers)
	}
	inj := got.Spec.InitContainers[0]
	if inj.RestartPolicy == nil || *inj.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("restartPolicy = %v, want Always", inj.RestartPolicy)
	}
	if inj.StartupProbe == nil || inj.ReadinessProbe.HTTPGet.Path != "/readyz" || inj.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("probes: startup %+v readiness %+v liveness %+v", inj.StartupProbe, inj.ReadinessProbe, inj.LivenessProbe)
	}
	if !slices.Contains(inj.Args, "/injector/inline/db.env:/etc/app/secrets/db.env:0444") || !slices.Contains(inj.Args, "2m0s") {
		t.Errorf("args = %q", inj.Args)
	}
	if !mountsSecrets(got.Spec.InitContainers[1], "/etc/app/secrets") || !mountsSecrets(got.Spec.Containers[0], "/etc/app/secrets") {
		t.Errorf("mounts: migrate %+v app %+v", got.Spec.InitContainers[1].VolumeMounts, got.Spec.Containers[0].VolumeMounts)
	}
	// The API server accepted the downward API reference to the annotation.
	if v := got.Spec.Volumes[1]; v.DownwardAPI == nil || v.DownwardAPI.Items[0].FieldRef.FieldPath != "metadata.annotations['injector.io/template.db.env']" {
		t.Errorf("inline volume = %+v", v)
	}
}

func TestWebhookLeavesOtherPodsAlone(t *testing.T) {
	requireCluster(t)
	ns := newNamespace(t, "alone")
	already := appPod(ns, map[string]string{webhook.AnnotationInject: "true", webhook.AnnotationTemplatePrefix + "a": "x"})
	already.Spec.InitContainers = []corev1.Container{{Name: "injector", Image: "mine:1"}}

	for name, pod := range map[string]*corev1.Pod{
		"not annotated":    appPod(ns, nil),
		"inject false":     appPod(ns, map[string]string{webhook.AnnotationInject: "false"}),
		"already injected": already,
	} {
		t.Run(name, func(t *testing.T) {
			before := len(pod.Spec.InitContainers)
			got := createAndGet(t, pod)
			if len(got.Spec.InitContainers) != before || len(got.Spec.Volumes) != 0 || got.Annotations[webhook.AnnotationStatus] != "" {
				t.Errorf("pod was mutated: init %+v volumes %+v annotations %v", got.Spec.InitContainers, got.Spec.Volumes, got.Annotations)
			}
		})
	}
}

// The chart's namespaceSelector keeps the webhook away from its own
// namespace (and kube-system), so it can never block its own Pods.
func TestWebhookSkipsExcludedNamespaces(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	for _, ns := range []string{"injector-system", "kube-system"} {
		if err := cluster.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
		got := createAndGet(t, appPod(ns, map[string]string{webhook.AnnotationInject: "true", webhook.AnnotationTemplatePrefix + "a": "x"}))
		if len(got.Spec.InitContainers) != 0 {
			t.Errorf("pod in %s was injected", ns)
		}
	}
}

func TestWebhookDeniesBadAnnotations(t *testing.T) {
	requireCluster(t)
	pod := appPod(newNamespace(t, "bad"), map[string]string{
		webhook.AnnotationInject:             "true",
		webhook.AnnotationTemplatesConfigMap: "app-templates",
		webhook.AnnotationMode:               "daemon",
	})
	err := cluster.client.Create(context.Background(), pod)
	if err == nil {
		t.Fatal("pod with bad annotations was created")
	}
	for _, want := range []string{`admission webhook "pods.injector.io" denied the request`,
		`injector.io/mode: "daemon" is not init or sidecar`, "injector.io/templates: required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// The annotated example Deployment's Pod template goes through the webhook
// and the API server's validation as a real Pod.
func TestWebhookAcceptsExample(t *testing.T) {
	requireCluster(t)
	data, err := os.ReadFile(examples + "/webhook-annotated.yaml")
	if err != nil {
		t.Fatal(err)
	}
	deps := byKind[*appsv1.Deployment](mustDecode(t, data))
	tmpl := deps[0].Spec.Template
	pod := &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
	pod.GenerateName, pod.Namespace = "example-", newNamespace(t, "example")
	got := createAndGet(t, pod)
	if len(got.Spec.InitContainers) != 1 || got.Spec.InitContainers[0].Name != "injector" || !mountsSecrets(got.Spec.Containers[0], "/injector/secrets") {
		t.Errorf("example pod not injected: %+v", got.Spec)
	}
}
