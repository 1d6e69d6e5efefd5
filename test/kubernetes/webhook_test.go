package kubernetes

import (
	"context"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
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

// appPod returns a Pod labelled for injection (unless inject is "") with
// annotations ann.
func appPod(ns, inject string, ann map[string]string) *corev1.Pod {
	var labels map[string]string
	if inject != "" {
		labels = map[string]string{webhook.LabelInject: inject}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "app-", Namespace: ns, Labels: labels, Annotations: ann},
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
	got := createAndGet(t, appPod(newNamespace(t, "init"), "true", map[string]string{
		webhook.AnnotationTemplatesConfigMap: "app-templates",
		webhook.AnnotationTemplates:          "app.env,config.yaml",
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
	// The credentials are the admin's rule, not the Pod's choice.
	if len(inj.Env) != 2 || inj.Env[1].Name != "PASSWORK_TOKEN_FILE" || inj.Env[1].Value != "/injector/credentials/PASSWORK_TOKEN" {
		t.Errorf("env = %+v", inj.Env)
	}
	if lim := inj.Resources.Limits[corev1.ResourceCPU]; lim.String() != "100m" {
		t.Errorf("resources = %+v, want the CPU limit", inj.Resources)
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
	if v := got.Spec.Volumes[0].EmptyDir; v == nil || v.SizeLimit == nil || v.SizeLimit.String() != "1Mi" {
		t.Errorf("secrets volume = %+v, want a 1Mi size limit", v)
	}
	if v := got.Spec.Volumes[2].Secret; v == nil || v.SecretName != "app-injector" {
		t.Errorf("credentials volume = %+v", v)
	}
	if got.Annotations[webhook.AnnotationStatus] != webhook.StatusInjected {
		t.Errorf("annotations = %v", got.Annotations)
	}
}

func TestWebhookInjectsNativeSidecar(t *testing.T) {
	requireCluster(t)
	pod := appPod(newNamespace(t, "sidecar"), "true", map[string]string{
		webhook.AnnotationMode:                      "sidecar",
		webhook.AnnotationInterval:                  "2m",
		webhook.AnnotationSecretsPath:               "/etc/app/secrets",
		webhook.AnnotationTemplatePrefix + "db.env": `DB_PASSWORD=<< passwork "prod/db/postgres" "password" >>`,
		webhook.AnnotationFileMode:                  "0400",
	})
	// The apps run as 1000: the injector is made to run as 1000 too, so
	// the 0400 files are theirs.
	pod.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "example/migrate:1.0", SecurityContext: &corev1.SecurityContext{RunAsUser: ptr(int64(1000))}}}
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(int64(1000))}
	}
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
	if !slices.Contains(inj.Args, "/injector/inline/db.env:/etc/app/secrets/db.env:0400") || !slices.Contains(inj.Args, "2m0s") || !slices.Contains(inj.Args, "--min-interval") {
		t.Errorf("args = %q", inj.Args)
	}
	if u := inj.SecurityContext.RunAsUser; u == nil || *u != 1000 {
		t.Errorf("injector runAsUser = %v, want 1000 (the apps' user)", u)
	}
	if !mountsSecrets(got.Spec.InitContainers[1], "/etc/app/secrets") || !mountsSecrets(got.Spec.Containers[0], "/etc/app/secrets") {
		t.Errorf("mounts: migrate %+v app %+v", got.Spec.InitContainers[1].VolumeMounts, got.Spec.Containers[0].VolumeMounts)
	}
	// The API server accepted the downward API reference to the annotation.
	if v := got.Spec.Volumes[1]; v.DownwardAPI == nil || v.DownwardAPI.Items[0].FieldRef.FieldPath != "metadata.annotations['injector.io/template.db.env']" {
		t.Errorf("inline volume = %+v", v)
	}
}

func ptr[T any](v T) *T { return &v }

// The injector can run after the Pod's own init containers (a mesh's init
// container that sets up the network must come first).
func TestWebhookInitFirstFalse(t *testing.T) {
	requireCluster(t)
	pod := appPod(newNamespace(t, "initlast"), "true", map[string]string{
		webhook.AnnotationTemplatePrefix + "a": "x",
		webhook.AnnotationInitFirst:            "false",
	})
	pod.Spec.InitContainers = []corev1.Container{{Name: "mesh-init", Image: "example/mesh:1.0"}}
	got := createAndGet(t, pod)
	if len(got.Spec.InitContainers) != 2 || got.Spec.InitContainers[1].Name != "injector" || len(got.Spec.InitContainers[0].VolumeMounts) != 0 {
		t.Errorf("init containers = %+v, want mesh-init (no mounts) then the injector", got.Spec.InitContainers)
	}
}

// Pods without the label never reach the webhook (the chart's
// objectSelector), even with injector annotations: the webhook would deny
// those, so being created untouched proves the API server did not call it.
// A Pod copied from an injected one is left as it is.
func TestWebhookLeavesOtherPodsAlone(t *testing.T) {
	requireCluster(t)
	ns := newNamespace(t, "alone")
	injected := createAndGet(t, appPod(ns, "true", map[string]string{webhook.AnnotationTemplatePrefix + "a": "x"}))
	copied := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "copy-", Namespace: ns, Labels: injected.Labels, Annotations: injected.Annotations},
		Spec: *injected.Spec.DeepCopy()}
	copied.Spec.NodeName = ""

	for name, pod := range map[string]*corev1.Pod{
		"not labelled":                appPod(ns, "", nil),
		"annotated but not labelled":  appPod(ns, "", map[string]string{webhook.AnnotationTemplatePrefix + "a": "x", "injector.io/bogus": "y"}),
		"label false":                 appPod(ns, "false", map[string]string{webhook.AnnotationTemplatePrefix + "a": "x"}),
		"copied from an injected Pod": copied,
	} {
		t.Run(name, func(t *testing.T) {
			before := pod.DeepCopy()
			got := createAndGet(t, pod)
			if len(got.Spec.InitContainers) != len(before.Spec.InitContainers) || len(got.Spec.Volumes) != len(before.Spec.Volumes) ||
				got.Annotations[webhook.AnnotationStatus] != before.Annotations[webhook.AnnotationStatus] {
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
		got := createAndGet(t, appPod(ns, "true", map[string]string{webhook.AnnotationTemplatePrefix + "a": "x"}))
		if len(got.Spec.InitContainers) != 0 {
			t.Errorf("pod in %s was injected", ns)
		}
	}
}

// With the webhook down, only labelled Pods fail to be created: a second
// copy of the chart's configuration points at a closed port with
// failurePolicy Fail, limited to one namespace, and unlabelled Pods (CNI,
// CSI, cert-manager, the webhook's own) are created as if it were not there.
func TestWebhookDownBlocksOnlyLabelledPods(t *testing.T) {
	requireCluster(t)
	ctx := context.Background()
	ns := newNamespace(t, "down")
	objs := mustDecode(t, helmTemplateRelease(t, "down", "--set", "webhook.namespaceSelectorExpressions[0].key=kubernetes.io/metadata.name",
		"--set", "webhook.namespaceSelectorExpressions[0].operator=In", "--set", "webhook.namespaceSelectorExpressions[0].values[0]="+ns))
	mwc := byKind[*admissionregistrationv1.MutatingWebhookConfiguration](objs)[0]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "https://" + ln.Addr().String() + "/mutate"
	ln.Close() // nothing listens there now
	mwc.Webhooks[0].ClientConfig.Service, mwc.Webhooks[0].ClientConfig.URL = nil, &dead
	if err := cluster.client.Create(ctx, mwc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cluster.client.Delete(context.Background(), mwc) })

	// The API server picks up a new webhook configuration asynchronously:
	// wait until a labelled Pod is refused by it.
	var refusal error
	for deadline := time.Now().Add(time.Minute); ; {
		refusal = cluster.client.Create(ctx, appPod(ns, "true", map[string]string{webhook.AnnotationTemplatePrefix + "a": "x"}))
		if refusal != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if refusal == nil || !strings.Contains(refusal.Error(), "failed calling webhook") || !strings.Contains(refusal.Error(), "pods.injector.io") {
		t.Fatalf("labelled Pod with the webhook down: %v, want it refused (failurePolicy Fail)", refusal)
	}
	for name, pod := range map[string]*corev1.Pod{
		"no label":                  appPod(ns, "", nil),
		"unrelated annotations too": appPod(ns, "", map[string]string{"prometheus.io/scrape": "true"}),
	} {
		if err := cluster.client.Create(ctx, pod); err != nil {
			t.Errorf("%s: %v, want it created while the webhook is down", name, err)
		}
	}
}

func TestWebhookDenies(t *testing.T) {
	requireCluster(t)
	ns := newNamespace(t, "bad")
	stealer := appPod(ns, "true", map[string]string{webhook.AnnotationTemplatePrefix + "a": "x"})
	stealer.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "injector-credentials", MountPath: "/stolen"}}
	for _, tt := range []struct {
		name string
		pod  *corev1.Pod
		want []string
	}{
		{"bad annotations", appPod(ns, "true", map[string]string{
			webhook.AnnotationTemplatesConfigMap: "app-templates",
			webhook.AnnotationMode:               "daemon",
		}), []string{`injector.io/mode: "daemon" is not init or sidecar`, "injector.io/templates: required"}},
		{"label typo", appPod(ns, "ture", map[string]string{webhook.AnnotationTemplatePrefix + "a": "x"}), []string{`label injector.io/inject: "ture" is not "true" or "false"`}},
		{"label True", appPod(ns, "True", map[string]string{webhook.AnnotationTemplatePrefix + "a": "x"}), []string{`"True" is not "true" or "false"`}},
		{"credentials mount", stealer, []string{`container "app" mounts volume "injector-credentials"`}},
		{"per-Pod credentials", appPod(ns, "true", map[string]string{webhook.AnnotationTemplatePrefix + "a": "x",
			webhook.AnnotationCredentialsSecret: "other-app", webhook.AnnotationCredentialsKeys: "PASSWORK_URL,PASSWORK_TOKEN"}),
			[]string{"per-Pod credentials are disabled"}},
		{"interval", appPod(ns, "true", map[string]string{webhook.AnnotationTemplatePrefix + "a": "x", webhook.AnnotationMode: "sidecar",
			webhook.AnnotationInterval: "1ms"}), []string{"1ms is below the minimum of 30s"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := cluster.client.Create(context.Background(), tt.pod)
			if err == nil {
				t.Fatal("pod was created")
			}
			for _, want := range append([]string{`admission webhook "pods.injector.io" denied the request`}, tt.want...) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// The labelled example Deployment's Pod template goes through the webhook
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
	if err := cluster.client.Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: pod.Spec.ServiceAccountName, Namespace: pod.Namespace}}); err != nil {
		t.Fatal(err)
	}
	got := createAndGet(t, pod)
	if len(got.Spec.InitContainers) != 1 || got.Spec.InitContainers[0].Name != "injector" || !mountsSecrets(got.Spec.Containers[0], "/injector/secrets") {
		t.Errorf("example pod not injected: %+v", got.Spec)
	}
}
