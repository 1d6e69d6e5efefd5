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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var testConfig = Config{Image: "ghcr.io/injector-dev/injector:v1.0.0"}

// newPod returns an opted-in Pod with two app containers and the given
// extra annotations.
func newPod(ann map[string]string) *corev1.Pod {
	a := map[string]string{AnnotationInject: "true"}
	for k, v := range ann {
		a[k] = v
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "prod", Annotations: a},
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

func TestMutateInjects(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		pod   *corev1.Pod
		check func(t *testing.T, got *corev1.Pod)
	}{{
		name: "init mode from a ConfigMap with credentials",
		pod: newPod(map[string]string{
			AnnotationTemplatesConfigMap: "app-templates",
			AnnotationTemplates:          "app.env, db.yaml",
			AnnotationCredentialsSecret:  "injector-credentials",
			AnnotationCredentialsKeys:    "PASSWORK_URL,PASSWORK_TOKEN",
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
			if v := volume(t, got, "injector-secrets"); v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory {
				t.Errorf("secrets volume = %+v, want an in-memory emptyDir", v)
			}
			if v := volume(t, got, "injector-templates"); v.ConfigMap.Name != "app-templates" || len(v.ConfigMap.Items) != 2 || v.ConfigMap.Items[1].Key != "db.yaml" {
				t.Errorf("templates volume = %+v", v.ConfigMap)
			}
			if v := volume(t, got, "injector-credentials"); v.Secret.SecretName != "injector-credentials" || len(v.Secret.Items) != 2 {
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
		name: "sidecar mode with an inline template and custom path",
		pod: newPod(map[string]string{
			AnnotationMode:                      "sidecar",
			AnnotationInterval:                  "90s",
			AnnotationSecretsPath:               "/etc/app/secrets",
			AnnotationFileMode:                  "440",
			AnnotationTemplatePrefix + "db.env": `DB_PASSWORD=<< passwork "prod/db/postgres" "password" >>`,
		}),
		check: func(t *testing.T, got *corev1.Pod) {
			inj := got.Spec.InitContainers[0]
			if inj.RestartPolicy == nil || *inj.RestartPolicy != corev1.ContainerRestartPolicyAlways {
				t.Errorf("restartPolicy = %v, want Always (native sidecar)", inj.RestartPolicy)
			}
			wantArgs := []string{"render", "--interval", "1m30s", "--listen", ":8099",
				"-t", "/injector/inline/db.env:/etc/app/secrets/db.env:0440"}
			if !slices.Equal(inj.Args, wantArgs) {
				t.Errorf("args = %q, want %q", inj.Args, wantArgs)
			}
			for probe, path := range map[*corev1.Probe]string{inj.StartupProbe: "/readyz", inj.ReadinessProbe: "/readyz", inj.LivenessProbe: "/healthz"} {
				if probe == nil || probe.HTTPGet.Path != path || probe.HTTPGet.Port.IntValue() != 8099 {
					t.Errorf("probe = %+v, want GET %s on 8099", probe, path)
				}
			}
			v := volume(t, got, "injector-inline")
			if f := v.DownwardAPI.Items[0]; f.Path != "db.env" || f.FieldRef.FieldPath != "metadata.annotations['injector.io/template.db.env']" {
				t.Errorf("inline volume item = %+v", f)
			}
			if !hasMount(got.Spec.Containers[0], "injector-secrets", "/etc/app/secrets", true) {
				t.Errorf("app mounts = %+v", got.Spec.Containers[0].VolumeMounts)
			}
		},
	}, {
		name: "webhook defaults: sidecar mode, credentials for every Pod",
		cfg: Config{Image: "injector:dev", Mode: ModeSidecar, Interval: time.Minute, SidecarPort: 9000,
			CredentialsSecret: "shared-creds", CredentialsKeys: []string{"PASSBOLT_URL"}},
		pod: newPod(map[string]string{AnnotationTemplatePrefix + "a": "x"}),
		check: func(t *testing.T, got *corev1.Pod) {
			inj := got.Spec.InitContainers[0]
			if !slices.Equal(inj.Args[:5], []string{"render", "--interval", "1m0s", "--listen", ":9000"}) {
				t.Errorf("args = %q", inj.Args)
			}
			if volume(t, got, "injector-credentials").Secret.SecretName != "shared-creds" || inj.Env[0].Name != "PASSBOLT_URL_FILE" {
				t.Errorf("default credentials not used: %+v", inj.Env)
			}
		},
	}, {
		name: "existing init containers run after the injector and get the mount",
		pod: func() *corev1.Pod {
			p := newPod(map[string]string{AnnotationTemplatePrefix + "a": "x"})
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
		name: "injector.io/containers limits the mount",
		pod:  newPod(map[string]string{AnnotationTemplatePrefix + "a": "x", AnnotationContainers: "proxy"}),
		check: func(t *testing.T, got *corev1.Pod) {
			if len(got.Spec.Containers[0].VolumeMounts) != 0 {
				t.Errorf("app got mounts %+v, want none", got.Spec.Containers[0].VolumeMounts)
			}
			if !hasMount(got.Spec.Containers[1], "injector-secrets", "/injector/secrets", true) {
				t.Errorf("proxy mounts = %+v", got.Spec.Containers[1].VolumeMounts)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg.Image == "" {
				cfg = testConfig
			}
			res, err := Mutate(cfg, tt.pod)
			if err != nil {
				t.Fatalf("Mutate: %v", err)
			}
			if res.Patch == nil {
				t.Fatal("no patch")
			}
			got := applyPatch(t, tt.pod, res.Patch)
			tt.check(t, got)

			// Idempotent: the patched Pod (reinvocation, a re-applied
			// manifest) is left alone.
			again, err := Mutate(cfg, got)
			if err != nil || again.Patch != nil {
				t.Errorf("second Mutate = %+v, %v; want no patch", again.Patch, err)
			}
		})
	}
}

func TestMutateLeavesAlone(t *testing.T) {
	withInjector := newPod(map[string]string{AnnotationTemplatePrefix + "a": "x"})
	withInjector.Spec.InitContainers = []corev1.Container{{Name: "injector", Image: "mine"}}
	notOptedIn := newPod(map[string]string{AnnotationMode: "bogus"})
	delete(notOptedIn.Annotations, AnnotationInject)

	for name, pod := range map[string]*corev1.Pod{
		"no annotations":         {Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}},
		"not opted in":           notOptedIn,
		"inject false":           newPod(map[string]string{AnnotationInject: "false"}),
		"status injected":        newPod(map[string]string{AnnotationStatus: StatusInjected}),
		"has injector container": withInjector,
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
	inline := map[string]string{AnnotationTemplatePrefix + "app.env": "A=<< passwork \"x\" \"y\" >>"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range inline {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name string
		cfg  Config
		pod  *corev1.Pod
		want []string // substrings of the error, all required
	}{
		{"no templates", testConfig, newPod(nil), []string{"no templates"}},
		{"bad mode", testConfig, newPod(with(map[string]string{AnnotationMode: "daemon"})), []string{`injector.io/mode: "daemon" is not init or sidecar`}},
		{"typo is not ignored", testConfig, newPod(with(map[string]string{"injector.io/template-configmap": "x"})), []string{"injector.io/template-configmap: unknown annotation"}},
		{"configmap without keys", testConfig, newPod(map[string]string{AnnotationTemplatesConfigMap: "t"}), []string{"injector.io/templates: required with injector.io/templates-configmap"}},
		{"keys without configmap", testConfig, newPod(map[string]string{AnnotationTemplates: "a"}), []string{"injector.io/templates-configmap: required"}},
		{"bad configmap name", testConfig, newPod(map[string]string{AnnotationTemplatesConfigMap: "Bad_Name", AnnotationTemplates: "a"}), []string{`"Bad_Name" is not a ConfigMap name`}},
		{"same name twice", testConfig, newPod(with(map[string]string{AnnotationTemplatesConfigMap: "t", AnnotationTemplates: "app.env"})), []string{`template "app.env" is given twice`}},
		{"bad file mode", testConfig, newPod(with(map[string]string{AnnotationFileMode: "0999"})), []string{`"0999" is not an octal file mode`}},
		{"bad interval", testConfig, newPod(with(map[string]string{AnnotationMode: "sidecar", AnnotationInterval: "-5m"})), []string{`"-5m" is not a positive duration`}},
		{"relative secrets path", testConfig, newPod(with(map[string]string{AnnotationSecretsPath: "secrets"})), []string{"not a clean absolute directory"}},
		{"secrets path with colon", testConfig, newPod(with(map[string]string{AnnotationSecretsPath: "/a:b"})), []string{"must not contain ':'"}},
		{"secrets path over own mounts", testConfig, newPod(with(map[string]string{AnnotationSecretsPath: "/injector"})), []string{"overlaps the injector's own"}},
		{"credentials without keys", testConfig, newPod(with(map[string]string{AnnotationCredentialsSecret: "creds"})), []string{"injector.io/credentials-keys: required"}},
		{"keys without credentials", testConfig, newPod(with(map[string]string{AnnotationCredentialsKeys: "A"})), []string{"injector.io/credentials-secret: required"}},
		{"bad credential key", testConfig, newPod(with(map[string]string{AnnotationCredentialsSecret: "creds", AnnotationCredentialsKeys: "PASSWORK-TOKEN"})), []string{`"PASSWORK-TOKEN" is not an environment variable name`}},
		{"unknown container", testConfig, newPod(with(map[string]string{AnnotationContainers: "app,web"})), []string{`no container "web"`}},
		{"no image", Config{}, newPod(inline), []string{"no injector image"}},
		{"every problem at once", testConfig, newPod(map[string]string{AnnotationMode: "x", AnnotationFileMode: "abc"}), []string{"injector.io/mode", "injector.io/file-mode", "no templates"}},
		{"reserved volume name", testConfig, func() *corev1.Pod {
			p := newPod(inline)
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "injector-secrets"})
			return p
		}(), []string{`volume name "injector-secrets" is reserved`}},
		{"mount path taken", testConfig, func() *corev1.Pod {
			p := newPod(inline)
			p.Spec.Containers[1].VolumeMounts[0].MountPath = "/injector/secrets"
			return p
		}(), []string{`container "proxy" already mounts /injector/secrets`}},
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

func TestMutateWarnsAboutIntervalInInitMode(t *testing.T) {
	res, err := Mutate(testConfig, newPod(map[string]string{AnnotationTemplatePrefix + "a": "x", AnnotationInterval: "1m"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "ignored in init mode") {
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
	bad := Config{Mode: "daemon", SecretsPath: "rel", FileMode: "999", CredentialsSecret: "c", CredentialsKeys: nil}
	err := bad.Validate()
	for _, want := range []string{"no injector image", "mode:", "secrets path:", `file mode "999"`, "needs its keys"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to mention %q", err, want)
		}
	}
}
