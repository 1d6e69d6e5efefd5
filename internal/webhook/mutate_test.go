package webhook

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testConfig maps every namespace to the Secret app-injector.
var testConfig = Config{Image: "ghcr.io/injector-dev/injector:v1.0.0", Credentials: []CredentialsRule{
	{Namespace: "*", Secret: "app-injector", Keys: []string{"PASSWORK_URL", "PASSWORK_TOKEN"}},
}}

// newPod returns a Pod labelled for injection, in namespace prod, with two
// app containers and the given annotations.
func newPod(ann map[string]string) *corev1.Pod {
	a := map[string]string{}
	for k, v := range ann {
		a[k] = v
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "prod", Labels: map[string]string{LabelInject: "true"}, Annotations: a},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "example/app:1"},
			{Name: "proxy", Image: "example/proxy:1", VolumeMounts: []corev1.VolumeMount{{Name: "cache", MountPath: "/cache"}}},
		}, Volumes: []corev1.Volume{{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}},
	}
}

// applyPatch applies ops the way the API server does and decodes the result
// strictly, so a patch producing unknown fields or wrong types fails.
func applyPatch(t *testing.T, pod *corev1.Pod, ops []PatchOp) *corev1.Pod {
	t.Helper()
	doc, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := jsonpatch.DecodePatch(raw)
	if err != nil {
		t.Fatalf("decode patch: %v", err)
	}
	out, err := patch.Apply(doc)
	if err != nil {
		t.Fatalf("apply patch %s: %v", raw, err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	var got corev1.Pod
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("patched pod: %v", err)
	}
	return &got
}

func volume(t *testing.T, pod *corev1.Pod, name string) corev1.Volume {
	t.Helper()
	i := slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == name })
	if i < 0 {
		t.Fatalf("no volume %q in %+v", name, pod.Spec.Volumes)
	}
	return pod.Spec.Volumes[i]
}

func hasMount(c corev1.Container, name, path string, readOnly bool) bool {
	return slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == name && m.MountPath == path && m.ReadOnly == readOnly
	})
}

// inline is an annotation set with one inline template.
func inline(extra map[string]string) map[string]string {
	m := map[string]string{AnnotationTemplatePrefix + "app.env": `A=<< passwork "x" "y" >>`}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// mutate runs Mutate, which must succeed with a patch, applies the patch,
// and checks the result is left alone by a second pass (reinvocation, a
// re-applied manifest).
func mutate(t *testing.T, cfg Config, pod *corev1.Pod) (*corev1.Pod, Result) {
	t.Helper()
	res, err := Mutate(cfg, pod)
	if err != nil {
		t.Fatalf("Mutate: %v", err)
	}
	if res.Patch == nil {
		t.Fatal("no patch")
	}
	got := applyPatch(t, pod, res.Patch)
	again, err := Mutate(cfg, got)
	if err != nil || again.Patch != nil {
		t.Errorf("second Mutate = %+v, %v; want no patch", again.Patch, err)
	}
	return got, res
}

func TestMutateInjects(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		pod   *corev1.Pod
		check func(t *testing.T, got *corev1.Pod)
	}{{
		name: "init mode from a ConfigMap with mapped credentials",
		pod: newPod(map[string]string{
			AnnotationTemplatesConfigMap: "app-templates",
			AnnotationTemplates:          "app.env, db.yaml",
		}),
		check: func(t *testing.T, got *corev1.Pod) {
			inj := got.Spec.InitContainers[0]
			if inj.Name != "injector" || inj.Image != testConfig.Image || inj.RestartPolicy != nil || inj.ReadinessProbe != nil {
				t.Errorf("injector container = %+v, want a plain init container", inj)
			}
			wantArgs := []string{"render",
				"-t", "/injector/templates/app.env:/injector/secrets/app.env:0444",
				"-t", "/injector/templates/db.yaml:/injector/secrets/db.yaml:0444"}
			if !slices.Equal(inj.Args, wantArgs) || !slices.Equal(inj.Command, []string{"/usr/local/bin/injector"}) {
				t.Errorf("command %q args %q, want args %q", inj.Command, inj.Args, wantArgs)
			}
			wantEnv := []corev1.EnvVar{
				{Name: "PASSWORK_URL_FILE", Value: "/injector/credentials/PASSWORK_URL"},
				{Name: "PASSWORK_TOKEN_FILE", Value: "/injector/credentials/PASSWORK_TOKEN"},
			}
			if !slices.Equal(inj.Env, wantEnv) {
				t.Errorf("env = %+v, want %+v", inj.Env, wantEnv)
			}
			if !hasMount(inj, "injector-secrets", "/injector/secrets", false) ||
				!hasMount(inj, "injector-templates", "/injector/templates", true) ||
				!hasMount(inj, "injector-credentials", "/injector/credentials", true) {
				t.Errorf("injector mounts = %+v", inj.VolumeMounts)
			}
			sc := inj.SecurityContext
			if !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation ||
				!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("security context = %+v", sc)
			}
			if sc.RunAsUser != nil || sc.RunAsGroup != nil {
				t.Errorf("runAsUser %v runAsGroup %v, want them left to the Pod", sc.RunAsUser, sc.RunAsGroup)
			}
			if v := volume(t, got, "injector-secrets"); v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory || v.EmptyDir.SizeLimit != nil {
				t.Errorf("secrets volume = %+v, want an in-memory emptyDir (no size limit configured)", v)
			}
			if v := volume(t, got, "injector-templates"); v.ConfigMap.Name != "app-templates" || len(v.ConfigMap.Items) != 2 || v.ConfigMap.Items[1].Key != "db.yaml" {
				t.Errorf("templates volume = %+v", v.ConfigMap)
			}
			if v := volume(t, got, "injector-credentials"); v.Secret.SecretName != "app-injector" || len(v.Secret.Items) != 2 {
				t.Errorf("credentials volume = %+v", v.Secret)
			}
			volume(t, got, "cache") // the Pod's own volume survives
			for _, c := range got.Spec.Containers {
				if !hasMount(c, "injector-secrets", "/injector/secrets", true) {
					t.Errorf("container %s mounts = %+v, want the secrets read-only", c.Name, c.VolumeMounts)
				}
				if slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "injector-credentials" }) {
					t.Errorf("container %s sees the credentials", c.Name)
				}
			}
			if got.Annotations[AnnotationStatus] != StatusInjected {
				t.Errorf("annotations = %v, want status injected", got.Annotations)
			}
		},
	}, {
		name: "sidecar mode with an inline template, custom path, port and per-file mode",
		pod: newPod(map[string]string{
			AnnotationMode:                      "sidecar",
			AnnotationInterval:                  "90s",
			AnnotationPort:                      "9100",
			AnnotationSecretsPath:               "/etc/app/secrets",
			AnnotationFileMode:                  "444",
			AnnotationTemplatePrefix + "db.env": `DB_PASSWORD=<< passwork "prod/db/postgres" "password" >>`,
			AnnotationTemplatePrefix + "ca.pem": `<< passwork "prod/ca" "notes" >>`,
			AnnotationFileModePrefix + "db.env": "0440",
		}),
		check: func(t *testing.T, got *corev1.Pod) {
			inj := got.Spec.InitContainers[0]
			if inj.RestartPolicy == nil || *inj.RestartPolicy != corev1.ContainerRestartPolicyAlways {
				t.Errorf("restartPolicy = %v, want Always (native sidecar)", inj.RestartPolicy)
			}
			wantArgs := []string{"render", "--interval", "1m30s", "--min-interval", "30s", "--listen", ":9100",
				"-t", "/injector/inline/ca.pem:/etc/app/secrets/ca.pem:0444",
				"-t", "/injector/inline/db.env:/etc/app/secrets/db.env:0440"}
			if !slices.Equal(inj.Args, wantArgs) {
				t.Errorf("args = %q, want %q", inj.Args, wantArgs)
			}
			// The listener the probes reach is the one --listen opens.
			for probe, path := range map[*corev1.Probe]string{inj.StartupProbe: "/readyz", inj.ReadinessProbe: "/readyz", inj.LivenessProbe: "/healthz"} {
				if probe == nil || probe.HTTPGet.Path != path || probe.HTTPGet.Port.IntValue() != 9100 {
					t.Errorf("probe = %+v, want GET %s on 9100", probe, path)
				}
			}
			v := volume(t, got, "injector-inline")
			if f := v.DownwardAPI.Items[1]; f.Path != "db.env" || f.FieldRef.FieldPath != "metadata.annotations['injector.io/template.db.env']" {
				t.Errorf("inline volume item = %+v", f)
			}
			if !hasMount(got.Spec.Containers[0], "injector-secrets", "/etc/app/secrets", true) {
				t.Errorf("app mounts = %+v", got.Spec.Containers[0].VolumeMounts)
			}
		},
	}, {
		name: "webhook defaults: sidecar mode, lower minimum, resources and size limit",
		cfg: Config{Image: "injector:dev", Mode: ModeSidecar, Interval: 20 * time.Second, MinInterval: 10 * time.Second, SidecarPort: 9000,
			Credentials: []CredentialsRule{{Namespace: "prod", Secret: "prod-creds", Keys: []string{"PASSBOLT_URL", "PASSBOLT_PRIVATE_KEY"}}},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
			SecretsSizeLimit: resource.MustParse("2Mi")},
		pod: newPod(map[string]string{AnnotationTemplatePrefix + "a": "x"}),
		check: func(t *testing.T, got *corev1.Pod) {
			inj := got.Spec.InitContainers[0]
			if !slices.Equal(inj.Args[:7], []string{"render", "--interval", "20s", "--min-interval", "10s", "--listen", ":9000"}) {
				t.Errorf("args = %q", inj.Args)
			}
			if volume(t, got, "injector-credentials").Secret.SecretName != "prod-creds" || inj.Env[0].Name != "PASSBOLT_URL_FILE" {
				t.Errorf("namespace credentials not used: %+v", inj.Env)
			}
			if lim := inj.Resources.Limits[corev1.ResourceCPU]; lim.String() != "100m" {
				t.Errorf("resources = %+v, want a CPU limit of 100m", inj.Resources)
			}
			if v := volume(t, got, "injector-secrets"); v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.String() != "2Mi" {
				t.Errorf("secrets volume = %+v, want sizeLimit 2Mi", v.EmptyDir)
			}
		},
	}, {
		name: "per-Pod resources and size limit",
		cfg: func() Config {
			c := testConfig
			c.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")},
				Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")}}
			return c
		}(),
		pod: newPod(inline(map[string]string{AnnotationCPURequest: "50m", AnnotationCPULimit: "1", AnnotationMemoryLimit: "256Mi",
			AnnotationSecretsSizeLimit: "4Mi"})),
		check: func(t *testing.T, got *corev1.Pod) {
			r := got.Spec.InitContainers[0].Resources
			cpuReq, cpuLim, memReq, memLim := r.Requests[corev1.ResourceCPU], r.Limits[corev1.ResourceCPU], r.Requests[corev1.ResourceMemory], r.Limits[corev1.ResourceMemory]
			if cpuReq.String() != "50m" || cpuLim.String() != "1" || memReq.String() != "32Mi" || memLim.String() != "256Mi" {
				t.Errorf("resources = %+v", r)
			}
			if v := volume(t, got, "injector-secrets"); v.EmptyDir.SizeLimit.String() != "4Mi" {
				t.Errorf("sizeLimit = %v, want 4Mi", v.EmptyDir.SizeLimit)
			}
		},
	}, {
		name: "existing init containers run after the injector and get the mount",
		pod: func() *corev1.Pod {
			p := newPod(inline(nil))
			p.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "example/migrate:1"}}
			p.Spec.Volumes = nil
			p.Spec.Containers[1].VolumeMounts = nil
			return p
		}(),
		check: func(t *testing.T, got *corev1.Pod) {
			names := []string{got.Spec.InitContainers[0].Name, got.Spec.InitContainers[1].Name}
			if !slices.Equal(names, []string{"injector", "migrate"}) {
				t.Errorf("init containers = %v, want the injector first", names)
			}
			if !hasMount(got.Spec.InitContainers[1], "injector-secrets", "/injector/secrets", true) {
				t.Errorf("migrate mounts = %+v", got.Spec.InitContainers[1].VolumeMounts)
			}
		},
	}, {
		// With Istio CNI an init container has no network until the
		// mesh's own init container has run: the injector can go last.
		name: "init-first false: the injector runs after the Pod's init containers",
		pod: func() *corev1.Pod {
			p := newPod(inline(map[string]string{AnnotationInitFirst: "false"}))
			p.Spec.InitContainers = []corev1.Container{{Name: "istio-validation", Image: "istio/proxyv2:1"}, {Name: "migrate", Image: "example/migrate:1"}}
			return p
		}(),
		check: func(t *testing.T, got *corev1.Pod) {
			var names []string
			for _, c := range got.Spec.InitContainers {
				names = append(names, c.Name)
				if c.Name != "injector" && len(c.VolumeMounts) > 0 {
					t.Errorf("init container %s runs before the injector but got mounts %+v", c.Name, c.VolumeMounts)
				}
			}
			if !slices.Equal(names, []string{"istio-validation", "migrate", "injector"}) {
				t.Errorf("init containers = %v, want the injector last", names)
			}
			if !hasMount(got.Spec.Containers[0], "injector-secrets", "/injector/secrets", true) {
				t.Errorf("app mounts = %+v", got.Spec.Containers[0].VolumeMounts)
			}
		},
	}, {
		name: "injector.io/containers limits the mount",
		pod:  newPod(inline(map[string]string{AnnotationContainers: "proxy"})),
		check: func(t *testing.T, got *corev1.Pod) {
			if len(got.Spec.Containers[0].VolumeMounts) != 0 {
				t.Errorf("app got mounts %+v, want none", got.Spec.Containers[0].VolumeMounts)
			}
			if !hasMount(got.Spec.Containers[1], "injector-secrets", "/injector/secrets", true) {
				t.Errorf("proxy mounts = %+v", got.Spec.Containers[1].VolumeMounts)
			}
		},
	}, {
		name: "run-as-user and run-as-group annotations",
		pod:  newPod(inline(map[string]string{AnnotationRunAsUser: "1234", AnnotationRunAsGroup: "0"})),
		check: func(t *testing.T, got *corev1.Pod) {
			sc := got.Spec.InitContainers[0].SecurityContext
			if sc.RunAsUser == nil || *sc.RunAsUser != 1234 || sc.RunAsGroup == nil || *sc.RunAsGroup != 0 || !*sc.RunAsNonRoot {
				t.Errorf("security context = %+v", sc)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg.Image == "" {
				cfg = testConfig
			}
			got, _ := mutate(t, cfg, tt.pod)
			tt.check(t, got)
		})
	}
}

// The admin's rules decide which Secret a Pod's injector mounts: most
// specific first, and Pods cannot pick another unless the admin allows it.
func TestMutateCredentials(t *testing.T) {
	rules := []CredentialsRule{
		{Namespace: "*", Secret: "cluster-wide", Keys: []string{"PASSWORK_URL", "PASSWORK_TOKEN"}},
		{Namespace: "shop", Secret: "shop-default", Keys: []string{"PASSWORK_URL", "PASSWORK_TOKEN"}},
		{Namespace: "shop", ServiceAccount: "checkout", Secret: "checkout-injector", Keys: []string{"PASSWORK_URL", "PASSWORK_API_KEY"}},
	}
	cfg := Config{Image: "injector:test", Credentials: rules}
	podIn := func(ns, sa string, ann map[string]string) *corev1.Pod {
		p := newPod(inline(ann))
		p.Namespace, p.Spec.ServiceAccountName = ns, sa
		return p
	}
	secretOf := func(t *testing.T, cfg Config, pod *corev1.Pod) (string, []corev1.EnvVar) {
		got, _ := mutate(t, cfg, pod)
		return volume(t, got, "injector-credentials").Secret.SecretName, got.Spec.InitContainers[0].Env
	}
	for _, tt := range []struct {
		ns, sa, want string
	}{
		{"shop", "checkout", "checkout-injector"},
		{"shop", "payments", "shop-default"},
		{"shop", "", "shop-default"}, // the default ServiceAccount
		{"blog", "checkout", "cluster-wide"},
	} {
		if got, _ := secretOf(t, cfg, podIn(tt.ns, tt.sa, nil)); got != tt.want {
			t.Errorf("%s/%s: credentials Secret %q, want %q", tt.ns, tt.sa, got, tt.want)
		}
	}

	// No rule for the namespace: denied, not started without credentials.
	_, err := Mutate(Config{Image: "i", Credentials: rules[1:]}, podIn("blog", "web", nil))
	if err == nil || !strings.Contains(err.Error(), `no credentials are mapped to namespace "blog", ServiceAccount "web"`) {
		t.Errorf("unmapped namespace: err = %v", err)
	}

	// Per-Pod annotations are refused by default...
	own := map[string]string{AnnotationCredentialsSecret: "payments-injector", AnnotationCredentialsKeys: "PASSWORK_URL,PASSWORK_TOKEN"}
	_, err = Mutate(cfg, podIn("shop", "checkout", own))
	if err == nil || !strings.Contains(err.Error(), "annotation injector.io/credentials-secret: per-Pod credentials are disabled") {
		t.Errorf("per-Pod credentials: err = %v", err)
	}
	_, err = Mutate(cfg, podIn("shop", "checkout", map[string]string{AnnotationCredentialsKeys: "PASSWORK_URL"}))
	if err == nil || !strings.Contains(err.Error(), "annotation injector.io/credentials-keys: per-Pod credentials are disabled") {
		t.Errorf("per-Pod keys: err = %v", err)
	}
	// ...and win when the admin allows them.
	allow := cfg
	allow.AllowPodCredentials = true
	if got, env := secretOf(t, allow, podIn("shop", "checkout", own)); got != "payments-injector" || env[1].Name != "PASSWORK_TOKEN_FILE" {
		t.Errorf("allowed per-Pod credentials: Secret %q env %+v", got, env)
	}
}

// With a Passwork refresh token the injector renews the token pair, and
// keeps the renewed pair on an in-memory volume of its own: its root
// filesystem is read-only, and a server that replaces the pair on renewal
// would leave a restarted sidecar with a dead one. Without one, nothing.
func TestMutateKeepsRenewedTokens(t *testing.T) {
	cfg := Config{Image: "i", Credentials: []CredentialsRule{{Namespace: "*", Secret: "app-injector",
		Keys: []string{"PASSWORK_URL", "PASSWORK_TOKEN", "PASSWORK_REFRESH_TOKEN"}}}}
	got, _ := mutate(t, cfg, newPod(inline(map[string]string{AnnotationMode: "sidecar"})))
	inj := got.Spec.InitContainers[0]
	if v := volume(t, got, "injector-state"); v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory || v.EmptyDir.SizeLimit == nil {
		t.Errorf("state volume %+v: want a size-limited in-memory emptyDir", v)
	}
	if !hasMount(inj, "injector-state", "/injector/state", false) {
		t.Errorf("injector mounts %+v: want injector-state writable at /injector/state", inj.VolumeMounts)
	}
	if !slices.Contains(inj.Env, corev1.EnvVar{Name: "PASSWORK_TOKEN_STATE_FILE", Value: "/injector/state/passwork-tokens.json"}) {
		t.Errorf("injector env %+v: no PASSWORK_TOKEN_STATE_FILE", inj.Env)
	}
	for _, c := range got.Spec.Containers {
		if slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "injector-state" }) {
			t.Errorf("app container %s mounts the token state", c.Name)
		}
	}

	got, _ = mutate(t, testConfig, newPod(inline(nil)))
	if slices.ContainsFunc(got.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "injector-state" }) ||
		slices.ContainsFunc(got.Spec.InitContainers[0].Env, func(e corev1.EnvVar) bool { return e.Name == "PASSWORK_TOKEN_STATE_FILE" }) {
		t.Errorf("a state volume without a refresh token: %+v", got.Spec)
	}
}

func TestMutateLeavesAlone(t *testing.T) {
	injected, _ := mutate(t, testConfig, newPod(inline(nil)))
	for name, pod := range map[string]*corev1.Pod{
		"no labels, no annotations": {Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}},
		"label false": func() *corev1.Pod {
			p := newPod(map[string]string{AnnotationMode: "bogus"})
			p.Labels[LabelInject] = "false"
			return p
		}(),
		"other labels only": func() *corev1.Pod {
			p := newPod(nil)
			p.Labels = map[string]string{"app": "x"}
			return p
		}(),
		// Reinvocation, or a Pod copied from an injected one.
		"already injected": injected,
	} {
		t.Run(name, func(t *testing.T) {
			res, err := Mutate(testConfig, pod)
			if err != nil || res.Patch != nil {
				t.Errorf("Mutate = %+v, %v; want no patch, no error", res, err)
			}
		})
	}
}

func TestMutateRejects(t *testing.T) {
	withPod := func(ann map[string]string, edit func(p *corev1.Pod)) *corev1.Pod {
		p := newPod(ann)
		edit(p)
		return p
	}
	label := func(v string) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Labels[LabelInject] = v } }
	tests := []struct {
		name string
		cfg  Config
		pod  *corev1.Pod
		want []string // substrings of the error, all required
	}{
		{"no templates", testConfig, newPod(nil), []string{"no templates"}},
		{"bad mode", testConfig, newPod(inline(map[string]string{AnnotationMode: "daemon"})), []string{`injector.io/mode: "daemon" is not init or sidecar`}},
		{"typo is not ignored", testConfig, newPod(inline(map[string]string{"injector.io/template-configmap": "x"})), []string{"injector.io/template-configmap: unknown annotation"}},
		{"configmap without keys", testConfig, newPod(map[string]string{AnnotationTemplatesConfigMap: "t"}), []string{"injector.io/templates: required with injector.io/templates-configmap"}},
		{"keys without configmap", testConfig, newPod(map[string]string{AnnotationTemplates: "a"}), []string{"injector.io/templates-configmap: required"}},
		{"bad configmap name", testConfig, newPod(map[string]string{AnnotationTemplatesConfigMap: "Bad_Name", AnnotationTemplates: "a"}), []string{`"Bad_Name" is not a ConfigMap name`}},
		{"same name twice", testConfig, newPod(inline(map[string]string{AnnotationTemplatesConfigMap: "t", AnnotationTemplates: "app.env"})), []string{`template "app.env" is given twice`}},
		{"bad file mode", testConfig, newPod(inline(map[string]string{AnnotationFileMode: "0999"})), []string{`"0999" is not an octal file mode`}},
		{"per-file mode of no template", testConfig, newPod(inline(map[string]string{AnnotationFileModePrefix + "db.env": "0400"})), []string{`injector.io/file-mode.db.env: no template named "db.env" (templates: app.env)`}},
		{"unreadable file mode", testConfig, newPod(inline(map[string]string{AnnotationFileMode: "0200"})), []string{`"0200" does not let even the file's owner read it`}},
		{"bad per-file mode", testConfig, newPod(inline(map[string]string{AnnotationFileModePrefix + "app.env": "rw"})), []string{`injector.io/file-mode.app.env: "rw" is not an octal file mode`}},
		{"bad interval", testConfig, newPod(inline(map[string]string{AnnotationMode: "sidecar", AnnotationInterval: "-5m"})), []string{`"-5m" is not a positive duration`}},
		{"relative secrets path", testConfig, newPod(inline(map[string]string{AnnotationSecretsPath: "secrets"})), []string{"not a clean absolute directory"}},
		{"secrets path with colon", testConfig, newPod(inline(map[string]string{AnnotationSecretsPath: "/a:b"})), []string{"must not contain ':'"}},
		{"secrets path over own mounts", testConfig, newPod(inline(map[string]string{AnnotationSecretsPath: "/injector"})), []string{"overlaps the injector's own"}},
		{"secrets path over the token state", testConfig, newPod(inline(map[string]string{AnnotationSecretsPath: "/injector/state"})), []string{`"/injector/state" overlaps the injector's own /injector/state`}},
		{"bad credential key", Config{Image: "i", AllowPodCredentials: true}, newPod(inline(map[string]string{AnnotationCredentialsSecret: "creds", AnnotationCredentialsKeys: "PASSWORK-TOKEN"})), []string{`PASSWORK-TOKEN is not a provider setting injector reads`}},
		{"credentials without keys", Config{Image: "i", AllowPodCredentials: true}, newPod(inline(map[string]string{AnnotationCredentialsSecret: "creds"})), []string{"injector.io/credentials-keys: required"}},
		{"keys without credentials", Config{Image: "i", AllowPodCredentials: true}, newPod(inline(map[string]string{AnnotationCredentialsKeys: "PASSWORK_URL"})), []string{"injector.io/credentials-secret: required"}},
		{"unknown container", testConfig, newPod(inline(map[string]string{AnnotationContainers: "app,web"})), []string{`no container "web"`}},
		{"no image", Config{Credentials: testConfig.Credentials}, newPod(inline(nil)), []string{"no injector image"}},
		{"every problem at once", testConfig, newPod(map[string]string{AnnotationMode: "x", AnnotationFileMode: "abc"}), []string{"injector.io/mode", "injector.io/file-mode", "no templates"}},
		{"reserved volume name", testConfig, withPod(inline(nil), func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "injector-secrets"})
		}), []string{`volume name "injector-secrets" is reserved`}},
		{"mount path taken", testConfig, withPod(inline(nil), func(p *corev1.Pod) {
			p.Spec.Containers[1].VolumeMounts[0].MountPath = "/injector/secrets"
		}), []string{`container "proxy" already mounts /injector/secrets`}},

		// 2. A mount of an injector-* volume the Pod did not declare
		// would be satisfied by the webhook's volume: the credentials.
		{"app mounts the credentials", testConfig, withPod(inline(nil), func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "injector-credentials", MountPath: "/creds", ReadOnly: true}}
		}), []string{`container "app" mounts volume "injector-credentials": injector-* volumes and their mounts are added by the webhook only`}},
		{"app mounts the secrets writable", testConfig, withPod(inline(nil), func(p *corev1.Pod) {
			p.Spec.Containers[1].VolumeMounts = append(p.Spec.Containers[1].VolumeMounts, corev1.VolumeMount{Name: "injector-secrets", MountPath: "/s"})
		}), []string{`container "proxy" mounts volume "injector-secrets"`}},
		{"init container mounts the templates", testConfig, withPod(inline(nil), func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "peek", Image: "x", VolumeMounts: []corev1.VolumeMount{{Name: "injector-templates", MountPath: "/t"}}}}
		}), []string{`init container "peek" mounts volume "injector-templates"`}},

		// 3. Credential keys are provider settings only.
		{"credential key that is no setting", Config{Image: "i", AllowPodCredentials: true}, newPod(inline(map[string]string{
			AnnotationCredentialsSecret: "creds", AnnotationCredentialsKeys: "PASSWORK_URL,PASSWORK_TOKEN,SSL_CERT"})),
			[]string{"annotation injector.io/credentials-keys: SSL_CERT is not a provider setting injector reads", "PASSWORK_TOKEN"}},
		// 4. A token never goes to a host the operator did not name.
		{"PassAgent token without URL", Config{Image: "i", AllowPodCredentials: true}, newPod(inline(map[string]string{
			AnnotationCredentialsSecret: "creds", AnnotationCredentialsKeys: "PASSAGENT_TOKEN,PASSAGENT_MASTER_PASSWORD"})),
			[]string{"PASSAGENT_TOKEN, PASSAGENT_MASTER_PASSWORD need PASSAGENT_URL"}},

		// 5, 8. The label is the opt-in and is parsed strictly.
		{"label True", testConfig, withPod(inline(nil), label("True")), []string{`label injector.io/inject: "True" is not "true" or "false"`}},
		{"label 1", testConfig, withPod(inline(nil), label("1")), []string{`"1" is not "true" or "false"`}},
		{"label yes", testConfig, withPod(inline(nil), label("yes")), []string{`"yes" is not "true" or "false"`}},
		{"label typo with an unknown annotation", testConfig, withPod(inline(map[string]string{"injector.io/bogus": "x"}), label("ture")), []string{`"ture" is not "true" or "false"`}},
		{"annotations without the label", testConfig, withPod(inline(nil), func(p *corev1.Pod) { p.Labels = nil }), []string{`no label injector.io/inject: "true"`}},
		{"inject as an annotation", testConfig, newPod(inline(map[string]string{"injector.io/inject": "true"})), []string{"annotation injector.io/inject: is a label, not an annotation"}},
		{"unknown annotation", testConfig, newPod(inline(map[string]string{"injector.io/agent-inject-secret": "x"})), []string{"injector.io/agent-inject-secret: unknown annotation"}},
		{"bad init-first", testConfig, newPod(inline(map[string]string{AnnotationInitFirst: "no"})), []string{`injector.io/init-first: "no" is not "true" or "false"`}},
		{"user-set status", testConfig, newPod(inline(map[string]string{AnnotationStatus: "injected"})), []string{`annotation injector.io/status: "injected" is written by the webhook`}},
		{"container named injector", testConfig, withPod(inline(nil), func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "injector", Image: "mine"}}
		}), []string{`init container name "injector" is reserved for the injected container`}},

		// 6. The admin's minimum interval.
		{"interval below the minimum", testConfig, newPod(inline(map[string]string{AnnotationMode: "sidecar", AnnotationInterval: "1ms"})), []string{"injector.io/interval: 1ms is below the minimum of 30s"}},
		{"interval below a configured minimum", Config{Image: "i", Credentials: testConfig.Credentials, MinInterval: 10 * time.Minute},
			newPod(inline(map[string]string{AnnotationMode: "sidecar", AnnotationInterval: "5m"})), []string{"5m0s is below the minimum of 10m0s"}},

		// 9. Pods that could never start.
		{"secrets path over binaries", testConfig, newPod(inline(map[string]string{AnnotationSecretsPath: "/usr/local/bin"})), []string{`"/usr/local/bin" would hide /usr/local/bin`}},
		{"secrets path over trust roots", testConfig, newPod(inline(map[string]string{AnnotationSecretsPath: "/etc/ssl/certs"})), []string{`would hide /etc/ssl/certs`}},
		{"secrets path above trust roots", testConfig, newPod(inline(map[string]string{AnnotationSecretsPath: "/etc"})), []string{`"/etc" would hide /etc`}},
		{"secrets path over the token", testConfig, newPod(inline(map[string]string{AnnotationSecretsPath: "/var/run/secrets/kubernetes.io/serviceaccount"})), []string{"would hide /var/run/secrets/kubernetes.io/serviceaccount"}},
		{"secrets path above the token", testConfig, newPod(inline(map[string]string{AnnotationSecretsPath: "/var/run"})), []string{"would hide /var/run/secrets"}},
		{"secrets path inside the trust roots", testConfig, newPod(inline(map[string]string{AnnotationSecretsPath: "/etc/ssl/certs/app"})), []string{"is inside /etc/ssl/certs"}},
		{"secrets path inside /proc", testConfig, newPod(inline(map[string]string{AnnotationSecretsPath: "/proc/app"})), []string{"is inside /proc"}},
		{"secrets path inside a ConfigMap mount", testConfig, withPod(inline(map[string]string{AnnotationSecretsPath: "/etc/app/secrets"}), func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}})
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}}
		}), []string{`container "app": /etc/app/secrets would be created inside the read-only mount /etc/app (volume "config")`}},
		{"a mount inside the secrets", testConfig, withPod(inline(nil), func(p *corev1.Pod) {
			p.Spec.Containers[1].VolumeMounts[0].MountPath = "/injector/secrets/cache"
		}), []string{`container "proxy" mounts /injector/secrets/cache inside the read-only secrets directory`}},
		{"app port is the sidecar's", testConfig, withPod(inline(map[string]string{AnnotationMode: "sidecar"}), func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080}, {ContainerPort: 8099}}
		}), []string{`container "app" uses port 8099, the injector sidecar's; set injector.io/port to a free port`}},
		{"app port is the annotated one", testConfig, withPod(inline(map[string]string{AnnotationMode: "sidecar", AnnotationPort: "8080"}), func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080}}
		}), []string{`uses port 8080`}},
		{"bad port", testConfig, newPod(inline(map[string]string{AnnotationMode: "sidecar", AnnotationPort: "99999"})), []string{`injector.io/port: "99999" is not a port number`}},
		{"owner-only files, app as another user", testConfig, withPod(inline(map[string]string{AnnotationFileMode: "0400"}), func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr(int64(2000))}
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(int64(1000))}
		}), []string{`file mode 0400: container "app" runs as UID 1000 but the injector writes the files as UID 2000`, `injector.io/run-as-user: "1000"`}},
		{"group-readable files without a shared group", testConfig, withPod(inline(map[string]string{AnnotationFileMode: "0440"}), func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(int64(1000))}
			p.Spec.Containers[1].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(int64(1001))}
		}), []string{`container "app" runs as UID 1000`, `container "proxy" runs as UID 1001`}},
		{"root app without DAC_OVERRIDE", testConfig, withPod(inline(map[string]string{AnnotationFileMode: "0400", AnnotationContainers: "app"}), func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(int64(0)), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
		}), []string{`container "app" runs as UID 0`}},
		{"run-as-user root", testConfig, newPod(inline(map[string]string{AnnotationRunAsUser: "0"})), []string{"injector.io/run-as-user: the injector never runs as root"}},
		{"run-as-group not a number", testConfig, newPod(inline(map[string]string{AnnotationRunAsGroup: "wheel"})), []string{`injector.io/run-as-group: "wheel" is not a numeric ID`}},

		// 10. Resources.
		{"bad quantity", testConfig, newPod(inline(map[string]string{AnnotationCPULimit: "lots"})), []string{`injector.io/cpu-limit: "lots" is not a positive quantity`}},
		{"request above limit", testConfig, newPod(inline(map[string]string{AnnotationCPURequest: "2", AnnotationCPULimit: "1"})), []string{"cpu request 2 is above its limit 1"}},
		{"bad size limit", testConfig, newPod(inline(map[string]string{AnnotationSecretsSizeLimit: "0"})), []string{`injector.io/secrets-size-limit: "0" is not a positive quantity`}},

		// Init-first off: earlier init containers cannot use the secrets.
		{"mount into an init container that runs first", testConfig, withPod(inline(map[string]string{AnnotationInitFirst: "false", AnnotationContainers: "migrate,app"}), func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "x"}}
		}), []string{`init container "migrate" runs before the injector`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Mutate(tt.cfg, tt.pod)
			if err == nil {
				t.Fatalf("Mutate = %+v, want an error", res)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// Pods that would not start as written, fixed rather than denied where
// the fix is unambiguous.
func TestMutateFixesUsers(t *testing.T) {
	runAs := func(c *corev1.Container, uid int64) {
		c.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(uid)}
	}
	tests := []struct {
		name        string
		pod         *corev1.Pod
		wantUID     *int64 // the injector's explicit runAsUser; nil: inherited
		wantWarning string
	}{{
		// runAsNonRoot on the injector would fail against the Pod's 0.
		name: "Pod runs as root",
		pod: func() *corev1.Pod {
			p := newPod(inline(nil))
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr(int64(0))}
			return p
		}(),
		wantUID: ptr(int64(65532)), wantWarning: "the Pod runs as root (runAsUser: 0); the injector runs as UID 65532",
	}, {
		// Files owned by 65532 with 0400 would be unreadable by 1000.
		name: "apps run as 1000 with owner-only files",
		pod: func() *corev1.Pod {
			p := newPod(inline(map[string]string{AnnotationFileMode: "0400"}))
			runAs(&p.Spec.Containers[0], 1000)
			runAs(&p.Spec.Containers[1], 1000)
			return p
		}(),
		wantUID: ptr(int64(1000)),
	}, {
		name: "Pod-level user: the injector inherits it",
		pod: func() *corev1.Pod {
			p := newPod(inline(map[string]string{AnnotationFileMode: "0400"}))
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr(int64(10001))}
			return p
		}(),
	}, {
		name: "fsGroup makes group-readable files shared",
		pod: func() *corev1.Pod {
			p := newPod(inline(map[string]string{AnnotationFileMode: "0440"}))
			p.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr(int64(3000))}
			runAs(&p.Spec.Containers[0], 1000)
			runAs(&p.Spec.Containers[1], 1001)
			return p
		}(),
	}, {
		name: "a user set only by the image is a warning",
		pod: func() *corev1.Pod {
			return newPod(inline(map[string]string{AnnotationFileMode: "0400"}))
		}(),
		wantWarning: `container "app": its user is set by its image`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, res := mutate(t, testConfig, tt.pod)
			uid := got.Spec.InitContainers[0].SecurityContext.RunAsUser
			if (uid == nil) != (tt.wantUID == nil) || uid != nil && *uid != *tt.wantUID {
				t.Errorf("injector runAsUser = %v, want %v", deref(uid), deref(tt.wantUID))
			}
			warnings := strings.Join(res.Warnings, "\n")
			if tt.wantWarning == "" && warnings != "" || !strings.Contains(warnings, tt.wantWarning) {
				t.Errorf("warnings = %q, want %q", warnings, tt.wantWarning)
			}
		})
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestMutateWarnsAboutHostNetwork(t *testing.T) {
	pod := newPod(inline(map[string]string{AnnotationMode: "sidecar"}))
	pod.Spec.HostNetwork = true
	_, res := mutate(t, testConfig, pod)
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "hostNetwork: the injector sidecar listens on port 8099 of the node") {
		t.Errorf("warnings = %q", res.Warnings)
	}
}

func TestMutateWarnsAboutSidecarSettingsInInitMode(t *testing.T) {
	res, err := Mutate(testConfig, newPod(inline(map[string]string{AnnotationInterval: "1m", AnnotationPort: "9000"})))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 2 || !strings.Contains(res.Warnings[0], "interval is ignored in init mode") || !strings.Contains(res.Warnings[1], "port is ignored in init mode") {
		t.Errorf("warnings = %q", res.Warnings)
	}
}

// Inline templates may (wrongly) hold a literal secret. Its text must reach
// the container only through the downward API volume, never through the
// patch, an error or a warning.
func TestInlineTemplateTextStaysOut(t *testing.T) {
	const canary = "CANARY-s3cr3t-value"
	ann := map[string]string{AnnotationTemplatePrefix + "a": "PASSWORD=" + canary, AnnotationMode: "sidecar"}

	res, err := Mutate(testConfig, newPod(ann))
	if err != nil {
		t.Fatal(err)
	}
	patch, _ := json.Marshal(res.Patch)
	if strings.Contains(string(patch), canary) {
		t.Errorf("patch carries the template text: %s", patch)
	}

	ann[AnnotationFileMode] = "bad"
	ann[AnnotationInterval] = "x"
	ann["injector.io/oops"] = canary
	res, err = Mutate(testConfig, newPod(ann))
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), canary) || strings.Contains(strings.Join(res.Warnings, " "), canary) {
		t.Errorf("error or warnings carry the template text: %v %q", err, res.Warnings)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := testConfig.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if got := (Config{FileMode: "640"}).WithDefaults().FileMode; got != "0640" {
		t.Errorf("file mode 640 normalized to %q, want 0640", got)
	}
	bad := Config{Mode: "daemon", SecretsPath: "/usr/local/bin", FileMode: "999", Interval: 10 * time.Second,
		Credentials: []CredentialsRule{
			{Namespace: "shop", Secret: "a", Keys: []string{"PASSWORK_URL"}},
			{Namespace: "shop", Secret: "b", Keys: []string{"PASSWORK_URL", "SSL_CERT"}},
		},
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")}}}
	err := bad.Validate()
	for _, want := range []string{"no injector image", "mode:", "secrets path:", `file mode: "999"`, "interval 10s: below the minimum interval 30s",
		"a second rule for the same namespace", "SSL_CERT is not a provider setting", "memory request 1Gi is above its limit 128Mi"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to mention %q", err, want)
		}
	}
}

func TestParseCredentialsRule(t *testing.T) {
	for in, want := range map[string]CredentialsRule{
		"shop=shop-injector:PASSWORK_URL,PASSWORK_TOKEN":              {Namespace: "shop", Secret: "shop-injector", Keys: []string{"PASSWORK_URL", "PASSWORK_TOKEN"}},
		"shop/checkout=checkout-injector:PASSBOLT_URL, PASSBOLT_AUTH": {Namespace: "shop", ServiceAccount: "checkout", Secret: "checkout-injector", Keys: []string{"PASSBOLT_URL", "PASSBOLT_AUTH"}},
		"*=injector:PASSAGENT_URL,PASSAGENT_TOKEN":                    {Namespace: "*", Secret: "injector", Keys: []string{"PASSAGENT_URL", "PASSAGENT_TOKEN"}},
	} {
		got, err := ParseCredentialsRule(in)
		if err != nil || got.String() != want.String() || got.ServiceAccount != want.ServiceAccount {
			t.Errorf("ParseCredentialsRule(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for in, wantErr := range map[string]string{
		"shop":                            "want NAMESPACE[/SERVICEACCOUNT]=SECRET:KEY",
		"shop=secret":                     "want NAMESPACE[/SERVICEACCOUNT]=SECRET:KEY",
		"Shop=s:PASSWORK_URL":             `"Shop" is not a namespace name`,
		"*/sa=s:PASSWORK_URL":             "a ServiceAccount needs a namespace",
		"shop=s:":                         "no keys",
		"shop=s:PASSWORK_TOKEN":           "need PASSWORK_URL or PASSWORK_HOST",
		"shop=s:PASSWORK_URL,LD_PRELOAD":  "LD_PRELOAD is not a provider setting",
		"shop=Bad_Secret:PASSWORK_URL":    `"Bad_Secret" is not a Secret name`,
		"shop/Bad_SA=secret:PASSWORK_URL": `"Bad_SA" is not a ServiceAccount name`,
	} {
		if _, err := ParseCredentialsRule(in); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("ParseCredentialsRule(%q) = %v, want %q", in, err, wantErr)
		}
	}
}
