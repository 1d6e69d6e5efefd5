// Package deploy holds the Kubernetes manifests and the Helm chart; this
// test keeps the example manifests honest without any cluster or tool
// (test/kubernetes adds the API server, helm and kubeconform checks).
package deploy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/injector-dev/injector/internal/fetch/fetchtest"
	"github.com/injector-dev/injector/internal/webhook"
)

// objects holds the decoded example manifests by kind.
type objects struct {
	deployments     []*appsv1.Deployment
	secrets         map[string]*corev1.Secret
	configMaps      map[string]*corev1.ConfigMap
	serviceAccounts []string
}

// decodeExamples decodes every document of every deploy/kubernetes/*.yaml
// strictly into its typed object: unknown fields, wrong types and unknown
// kinds fail.
func decodeExamples(t *testing.T) objects {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	objs := objects{secrets: map[string]*corev1.Secret{}, configMaps: map[string]*corev1.ConfigMap{}}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s #%d: %v", f, i, err)
			}
			var target any
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 Deployment":
				target = &appsv1.Deployment{}
			case "v1 Secret":
				target = &corev1.Secret{}
			case "v1 ConfigMap":
				target = &corev1.ConfigMap{}
			case "v1 ServiceAccount":
				target = &corev1.ServiceAccount{}
			default:
				t.Fatalf("%s #%d: unexpected %s %s", f, i, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, target); err != nil {
				t.Errorf("%s #%d (%s): %v", f, i, tm.Kind, err)
				continue
			}
			switch o := target.(type) {
			case *appsv1.Deployment:
				objs.deployments = append(objs.deployments, o)
			case *corev1.Secret:
				objs.secrets[o.Name] = o
			case *corev1.ConfigMap:
				objs.configMaps[o.Name] = o
			case *corev1.ServiceAccount:
				objs.serviceAccounts = append(objs.serviceAccounts, o.Name)
			}
		}
	}
	return objs
}

func TestExamplesDecodeStrictly(t *testing.T) {
	objs := decodeExamples(t)
	if len(objs.deployments) != 4 || len(objs.secrets) != 1 || len(objs.configMaps) != 1 {
		t.Errorf("found %d Deployments, %d Secrets, %d ConfigMaps", len(objs.deployments), len(objs.secrets), len(objs.configMaps))
	}
}

// TestHandWiredExamples checks the init-container and sidecar examples the
// way a reader would trip over them: templates and credential files that
// do not exist, secrets on disk, writable mounts in the app.
func TestHandWiredExamples(t *testing.T) {
	objs := decodeExamples(t)
	for _, d := range objs.deployments {
		spec := d.Spec.Template.Spec
		if len(spec.InitContainers) == 0 {
			continue // the webhook example
		}
		t.Run(d.Name, func(t *testing.T) {
			inj := spec.InitContainers[0]
			for i, a := range inj.Args {
				if i == 0 || inj.Args[i-1] != "-t" {
					continue
				}
				key := strings.TrimPrefix(strings.Split(a, ":")[0], "/injector/templates/")
				if _, ok := objs.configMaps["app-templates"].Data[key]; !ok {
					t.Errorf("template %s is not a key of ConfigMap app-templates", key)
				}
			}
			for _, e := range inj.Env {
				if e.Name == "PASSWORK_TOKEN_STATE_FILE" {
					// A path of its own, on a writable volume of the injector.
					if !slices.ContainsFunc(inj.VolumeMounts, func(m corev1.VolumeMount) bool {
						return !m.ReadOnly && strings.HasPrefix(e.Value, m.MountPath+"/")
					}) {
						t.Errorf("%s=%s is on no writable volume", e.Name, e.Value)
					}
					continue
				}
				key, ok := strings.CutPrefix(e.Value, "/injector/credentials/")
				if !strings.HasSuffix(e.Name, "_FILE") || !ok || e.Name != key+"_FILE" {
					t.Errorf("env %s=%s: want NAME_FILE=/injector/credentials/NAME", e.Name, e.Value)
				}
				if _, ok := objs.secrets["app-injector"].StringData[key]; !ok {
					t.Errorf("credential %s is not a key of Secret app-injector", key)
				}
			}
			for _, v := range spec.Volumes {
				if v.Name == "secrets" && (v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory) {
					t.Errorf("secrets volume %+v is not an in-memory emptyDir", v)
				}
			}
			for _, c := range spec.Containers {
				if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "secrets" && m.ReadOnly }) {
					t.Errorf("container %s does not mount the secrets read-only", c.Name)
				}
			}
			sidecar := inj.RestartPolicy != nil && *inj.RestartPolicy == corev1.ContainerRestartPolicyAlways
			if sidecar != slices.Contains(inj.Args, "--listen=:8099") || (sidecar && (inj.ReadinessProbe == nil || inj.ReadinessProbe.HTTPGet.Path != "/readyz")) {
				t.Errorf("sidecar %v: args %q readiness %+v", sidecar, inj.Args, inj.ReadinessProbe)
			}
		})
	}
}

// TestWebhookExample runs the annotated example through the webhook's
// mutation and checks that what it references exists.
func TestWebhookExample(t *testing.T) {
	objs := decodeExamples(t)
	i := slices.IndexFunc(objs.deployments, func(d *appsv1.Deployment) bool { return d.Name == "app-webhook" })
	if i < 0 {
		t.Fatal("no app-webhook Deployment")
	}
	tmpl := objs.deployments[i].Spec.Template
	// The rule the example's comment gives the chart.
	rule := webhook.CredentialsRule{Namespace: "default", ServiceAccount: "app-webhook", Secret: "app-injector", Keys: []string{"PASSWORK_URL", "PASSWORK_TOKEN", "PASSWORK_REFRESH_TOKEN", "PASSWORK_MASTER_KEY"}}
	cfg := webhook.Config{Image: "injector:test", Credentials: []webhook.CredentialsRule{rule}}
	pod := &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
	pod.Namespace = "default" // kubectl apply without -n
	res, err := webhook.Mutate(cfg, pod)
	if err != nil || res.Patch == nil || len(res.Warnings) > 0 {
		t.Fatalf("Mutate = %+v, %v; want a patch, no warnings", res, err)
	}
	if !slices.ContainsFunc(objs.serviceAccounts, func(sa string) bool { return sa == tmpl.Spec.ServiceAccountName }) {
		t.Errorf("ServiceAccount %q is not in the examples", tmpl.Spec.ServiceAccountName)
	}
	ann := tmpl.Annotations
	for _, k := range strings.Split(ann[webhook.AnnotationTemplates], ",") {
		if _, ok := objs.configMaps[ann[webhook.AnnotationTemplatesConfigMap]].Data[k]; !ok {
			t.Errorf("template key %s missing from the ConfigMap", k)
		}
	}
	for _, k := range rule.Keys {
		if _, ok := objs.secrets[rule.Secret].StringData[k]; !ok {
			t.Errorf("credential key %s missing from the Secret", k)
		}
	}
}

// TestExamplesNameSandboxEntries: every Passwork reference in the
// examples' templates (the ConfigMap and inline annotations) names an entry
// and field of the `injector dev` sandbox, so the examples work as they are
// against it (the end-to-end tests apply them to a real node).
func TestExamplesNameSandboxEntries(t *testing.T) {
	seed, err := fetchtest.LoadSeed("../examples/dev/seed.json")
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeExamples(t)
	var texts []string
	for _, cm := range objs.configMaps {
		for _, v := range cm.Data {
			texts = append(texts, v)
		}
	}
	for _, d := range objs.deployments {
		for k, v := range d.Spec.Template.Annotations {
			if strings.HasPrefix(k, webhook.AnnotationTemplatePrefix) {
				texts = append(texts, v)
			}
		}
	}
	ref := regexp.MustCompile(`passwork "([^"]+)" "([^"]+)"`)
	found := 0
	for _, text := range texts {
		for _, m := range ref.FindAllStringSubmatch(text, -1) {
			found++
			i := slices.IndexFunc(seed.Passwork, func(e fetchtest.Entry) bool { return e.Path == m[1] })
			if i < 0 {
				t.Errorf("%s: no such entry in examples/dev/seed.json", m[0])
				continue
			}
			e := seed.Passwork[i]
			if _, ok := e.Fields[m[2]]; !ok {
				if _, ok := e.Custom[m[2]]; !ok {
					t.Errorf("%s: entry %s has no field %s", m[0], m[1], m[2])
				}
			}
		}
	}
	if found == 0 {
		t.Error("no passwork references found in the examples")
	}
}

// composeFile is the subset of the Compose specification the example uses;
// decoding strictly into it catches misspelt keys. Compose 1.29 (Debian's)
// must run it, so build is a path (no dockerfile_inline).
type composeFile struct {
	XInjector map[string]any    `json:"x-injector"`
	XSettings map[string]string `json:"x-settings"`
	Services  map[string]struct {
		Image       string            `json:"image"`
		Build       string            `json:"build"`
		Command     []string          `json:"command"`
		User        string            `json:"user"`
		ReadOnly    bool              `json:"read_only"`
		CapDrop     []string          `json:"cap_drop"`
		SecurityOpt []string          `json:"security_opt"`
		Environment map[string]string `json:"environment"`
		Volumes     []string          `json:"volumes"`
		Pid         string            `json:"pid"`
		Restart     string            `json:"restart"`
		Healthcheck *struct {
			Test        []string `json:"test"`
			Interval    string   `json:"interval"`
			Timeout     string   `json:"timeout"`
			Retries     int      `json:"retries"`
			StartPeriod string   `json:"start_period"`
		} `json:"healthcheck"`
		DependsOn map[string]struct {
			Condition string `json:"condition"`
		} `json:"depends_on"`
	} `json:"services"`
	Volumes map[string]struct {
		Driver     string            `json:"driver"`
		DriverOpts map[string]string `json:"driver_opts"`
	} `json:"volumes"`
}

// TestComposeExample checks what decoding can: references resolve, the
// paths it mounts exist, the app waits for the sidecar's probe and can be
// signalled by it, and only injector's containers see the credentials.
// test/e2e/docker runs it on a real engine.
func TestComposeExample(t *testing.T) {
	data, err := os.ReadFile("../examples/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.UnmarshalStrict(data, &cf); err != nil {
		t.Fatal(err)
	}
	const credentials = "${INJECTOR_CREDENTIALS:-./credentials}:/run/secrets:ro"
	var errs []error
	for name, s := range cf.Services {
		for dep := range s.DependsOn {
			if _, ok := cf.Services[dep]; !ok {
				errs = append(errs, errors.New(name+" depends on unknown service "+dep))
			}
		}
		for _, v := range s.Volumes {
			src := strings.Split(v, ":")[0]
			switch {
			case v == credentials:
			case strings.HasPrefix(src, "./"):
				if _, err := os.Stat(filepath.Join("../examples", src)); err != nil {
					errs = append(errs, errors.New(name+" mounts a path that does not exist: "+v))
				}
			default:
				if _, ok := cf.Volumes[src]; !ok {
					errs = append(errs, errors.New(name+" mounts undefined volume "+src))
				}
			}
		}
		// Every setting is a file under the credentials mount, and only
		// containers that run injector have it.
		mounted := slices.Contains(s.Volumes, credentials)
		for k, v := range s.Environment {
			if strings.HasSuffix(k, "_FILE") && !strings.HasPrefix(v, "/run/secrets/") {
				errs = append(errs, errors.New(name+": "+k+" is not under /run/secrets"))
			}
		}
		if runsInjector := s.Image == cf.XInjector["image"] || s.Build != ""; mounted != runsInjector {
			errs = append(errs, errors.New(name+": the credentials are mounted where injector does not run, or missing where it does"))
		}
		if s.Build != "" {
			if _, err := os.Stat(filepath.Join("../examples", s.Build, "Dockerfile")); err != nil {
				errs = append(errs, errors.New(name+": "+err.Error()))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
	if cf.Volumes["secrets"].DriverOpts["type"] != "tmpfs" {
		t.Errorf("secrets volume is not tmpfs: %+v", cf.Volumes["secrets"])
	}

	// The sidecar: its healthcheck probes the /readyz it serves, the app
	// waits for it, joins its PID namespace and is signalled by the name
	// of the program it runs.
	sidecar, app := cf.Services["injector"], cf.Services["app"]
	cmd := strings.Join(sidecar.Command, " ")
	if !strings.Contains(cmd, "--listen=:8099") || sidecar.Healthcheck == nil ||
		strings.Join(sidecar.Healthcheck.Test, " ") != "CMD injector probe --timeout 2s http://127.0.0.1:8099/readyz" {
		t.Errorf("the sidecar's healthcheck does not probe its /readyz: %q, %+v", cmd, sidecar.Healthcheck)
	}
	if app.DependsOn["injector"].Condition != "service_healthy" || app.Pid != "service:injector" {
		t.Errorf("app: depends_on %+v, pid %q", app.DependsOn, app.Pid)
	}
	if len(app.Command) == 0 || !strings.Contains(cmd, "--on-change=signal:SIGHUP:"+filepath.Base(app.Command[0])) {
		t.Errorf("the sidecar does not signal the app's program %v: %s", app.Command, cmd)
	}
	if fi, err := os.Stat("../examples/app/app.sh"); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("examples/app/app.sh is not executable: %v", err)
	}
	if cf.Services["app-wrapped"].Environment["PASSWORK_TOKEN_FILE"] != "/run/secrets/passwork_token" {
		t.Errorf("the settings did not merge into app-wrapped: %v", cf.Services["app-wrapped"].Environment)
	}
	if _, err := os.Stat("../examples/templates/app.env.tpl"); err != nil {
		t.Errorf("compose example's template: %v", err)
	}
}

// TestCacheExample: in cache.yaml the init container and the sidecar share
// one emptyDir cache, each with the same --cache-dir strictly inside it
// (the emptyDir itself is 0777, which injector refuses), mounted
// writable, and the app never mounts it.
func TestCacheExample(t *testing.T) {
	objs := decodeExamples(t)
	i := slices.IndexFunc(objs.deployments, func(d *appsv1.Deployment) bool { return d.Name == "app-cache" })
	if i < 0 {
		t.Fatal("no Deployment app-cache")
	}
	spec := objs.deployments[i].Spec.Template.Spec
	v := spec.Volumes[slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == "cache" })]
	if v.EmptyDir == nil {
		t.Errorf("cache volume %+v is not an emptyDir", v)
	}
	if len(spec.InitContainers) != 2 || spec.InitContainers[0].RestartPolicy != nil ||
		spec.InitContainers[1].RestartPolicy == nil || *spec.InitContainers[1].RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Fatalf("want an init container, then a native sidecar")
	}
	for _, c := range spec.InitContainers {
		var dir string
		for _, a := range c.Args {
			if d, ok := strings.CutPrefix(a, "--cache-dir="); ok {
				dir = d
			}
		}
		m := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "cache" })
		switch {
		case dir == "":
			t.Errorf("%s: no --cache-dir", c.Name)
		case m < 0 || c.VolumeMounts[m].ReadOnly:
			t.Errorf("%s: the cache volume is not mounted writable", c.Name)
		case !strings.HasPrefix(dir, c.VolumeMounts[m].MountPath+"/"):
			t.Errorf("%s: --cache-dir=%s is not strictly inside the emptyDir at %s", c.Name, dir, c.VolumeMounts[m].MountPath)
		}
	}
	for _, c := range spec.Containers {
		if slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "cache" }) {
			t.Errorf("container %s mounts the cache", c.Name)
		}
	}
}
