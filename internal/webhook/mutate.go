// Package webhook is injector's Kubernetes mutating admission webhook. Pods
// annotated injector.io/inject: "true" get an injector container (an init
// container, or a native sidecar that keeps refreshing) that renders their
// templates into an in-memory volume mounted read-only into the app
// containers.
//
// Mutate is the pure decision; Handler speaks AdmissionReview v1 over HTTP;
// Server serves it over TLS, reloading its certificate when the files change.
package webhook

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Config holds the webhook's defaults; annotations override the per-Pod ones.
type Config struct {
	Image           string // injector image for the injected container (required)
	ImagePullPolicy corev1.PullPolicy

	Mode              Mode          // default mode (init)
	Interval          time.Duration // default sidecar refresh period
	SecretsPath       string        // default directory of rendered files
	FileMode          string        // default octal mode of rendered files
	CredentialsSecret string        // default Secret with provider credentials ("" = none)
	CredentialsKeys   []string      // default keys of that Secret
	SidecarPort       int32         // port of the sidecar's /healthz and /readyz

	Resources corev1.ResourceRequirements // of the injected container
}

// Defaults: see docs/kubernetes.md.
const (
	DefaultSecretsPath = "/injector/secrets"
	DefaultFileMode    = "0444"
	DefaultInterval    = 5 * time.Minute
	DefaultSidecarPort = 8099

	// ContainerName is the injected container's name; a Pod that already
	// has a container by this name is never injected again.
	ContainerName = "injector"
	// binary is where the injector image keeps the binary (see Dockerfile).
	binary = "/usr/local/bin/injector"

	volSecrets     = "injector-secrets"
	volTemplates   = "injector-templates"
	volInline      = "injector-inline"
	volCredentials = "injector-credentials"
)

// WithDefaults fills the zero fields of c.
func (c Config) WithDefaults() Config {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = corev1.PullIfNotPresent
	}
	if c.Mode == "" {
		c.Mode = ModeInit
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.SecretsPath == "" {
		c.SecretsPath = DefaultSecretsPath
	}
	if c.FileMode == "" {
		c.FileMode = DefaultFileMode
	}
	if n, err := strconv.ParseUint(c.FileMode, 8, 32); err == nil {
		c.FileMode = fmt.Sprintf("%04o", n) // "644" -> "0644", as annotations are
	}
	if c.SidecarPort == 0 {
		c.SidecarPort = DefaultSidecarPort
	}
	return c
}

// Validate checks the defaults the way parsePlan checks annotations, so a
// misconfigured webhook fails at startup rather than on every Pod.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	if c.Image == "" {
		errs = append(errs, errors.New("no injector image"))
	}
	if _, err := parseMode(string(c.Mode)); err != nil {
		errs = append(errs, fmt.Errorf("mode: %w", err))
	}
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("interval %v: must be positive", c.Interval))
	}
	if err := checkSecretsPath(c.SecretsPath); err != nil {
		errs = append(errs, fmt.Errorf("secrets path: %w", err))
	}
	if n, err := strconv.ParseUint(c.FileMode, 8, 32); err != nil || n > 0o777 {
		errs = append(errs, fmt.Errorf("file mode %q is not an octal file mode like 0440", c.FileMode))
	}
	for _, k := range c.CredentialsKeys {
		if !envName.MatchString(k) {
			errs = append(errs, fmt.Errorf("credentials key %q is not an environment variable name", k))
		}
	}
	if c.CredentialsSecret != "" && len(c.CredentialsKeys) == 0 {
		errs = append(errs, errors.New("a credentials Secret needs its keys"))
	}
	if c.SidecarPort < 1 || c.SidecarPort > 65535 {
		errs = append(errs, fmt.Errorf("sidecar port %d: want 1-65535", c.SidecarPort))
	}
	return errors.Join(errs...)
}

// PatchOp is one RFC 6902 JSON Patch operation. The webhook only adds.
type PatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// Result is what Mutate decided for a Pod. A nil Patch means "leave it".
type Result struct {
	Patch    []PatchOp
	Warnings []string // shown by kubectl; never contain template text
}

// Mutate decides what to add to pod. Pods that are not opted in, or are
// already injected, get no patch. An opted-in Pod whose annotations are wrong
// gets an error, which the Handler turns into a denied admission: failing at
// `kubectl apply` beats a Pod that starts without its secrets.
func Mutate(cfg Config, pod *corev1.Pod) (Result, error) {
	cfg = cfg.WithDefaults()
	ann := pod.Annotations
	if ann[AnnotationInject] != "true" || alreadyInjected(pod) {
		return Result{}, nil
	}
	if cfg.Image == "" {
		return Result{}, errors.New("webhook has no injector image configured")
	}
	p, warnings, err := parsePlan(cfg, ann)
	if err != nil {
		return Result{}, err
	}
	targets, err := targetContainers(pod, p.containers)
	if err != nil {
		return Result{}, err
	}
	if err := checkConflicts(pod, p.secretsPath); err != nil {
		return Result{}, err
	}

	var ops []PatchOp
	// Annotations exist: the inject annotation is among them.
	ops = append(ops, PatchOp{"add", "/metadata/annotations/" + escape(AnnotationStatus), StatusInjected})
	ops = appendAll(ops, "/spec/volumes", len(pod.Spec.Volumes) == 0, volumes(p))

	appMount := corev1.VolumeMount{Name: volSecrets, MountPath: p.secretsPath, ReadOnly: true}
	// Existing init containers run after the injector, so they may use the
	// secrets too. Their mounts go in before the injector is prepended, which
	// shifts their indices.
	for i, c := range pod.Spec.InitContainers {
		if targets[c.Name] {
			ops = appendAll(ops, fmt.Sprintf("/spec/initContainers/%d/volumeMounts", i), len(c.VolumeMounts) == 0, []corev1.VolumeMount{appMount})
		}
	}
	injector := container(cfg, p)
	if len(pod.Spec.InitContainers) == 0 {
		ops = append(ops, PatchOp{"add", "/spec/initContainers", []corev1.Container{injector}})
	} else {
		ops = append(ops, PatchOp{"add", "/spec/initContainers/0", injector})
	}
	for i, c := range pod.Spec.Containers {
		if targets[c.Name] {
			ops = appendAll(ops, fmt.Sprintf("/spec/containers/%d/volumeMounts", i), len(c.VolumeMounts) == 0, []corev1.VolumeMount{appMount})
		}
	}
	return Result{Patch: ops, Warnings: warnings}, nil
}

func alreadyInjected(pod *corev1.Pod) bool {
	if pod.Annotations[AnnotationStatus] == StatusInjected {
		return true
	}
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if c.Name == ContainerName {
			return true
		}
	}
	return false
}

// targetContainers resolves injector.io/containers (nil names = all) to a
// set of container names, init or app.
func targetContainers(pod *corev1.Pod, names []string) (map[string]bool, error) {
	all := map[string]bool{}
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		all[c.Name] = true
	}
	if names == nil {
		return all, nil
	}
	set := map[string]bool{}
	var errs []error
	for _, n := range names {
		if !all[n] {
			errs = append(errs, fmt.Errorf("annotation %s: no container %q in the Pod", AnnotationContainers, n))
		}
		set[n] = true
	}
	return set, errors.Join(errs...)
}

// checkConflicts refuses Pods that already use the injector's volume names or
// mount something else where the secrets go; the API server would reject the
// patched Pod with a less helpful message.
func checkConflicts(pod *corev1.Pod, secretsPath string) error {
	var errs []error
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, "injector-") {
			errs = append(errs, fmt.Errorf("volume name %q is reserved for the injector", v.Name))
		}
	}
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		for _, m := range c.VolumeMounts {
			if m.MountPath == secretsPath {
				errs = append(errs, fmt.Errorf("container %q already mounts %s; choose another %s", c.Name, secretsPath, AnnotationSecretsPath))
			}
		}
	}
	return errors.Join(errs...)
}

func volumes(p plan) []corev1.Volume {
	vols := []corev1.Volume{{
		Name: volSecrets,
		// Memory: rendered secrets never touch the node's disk.
		VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}},
	}}
	if p.configMap != "" {
		var items []corev1.KeyToPath
		for _, k := range p.configMapKeys {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
		vols = append(vols, corev1.Volume{Name: volTemplates, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: p.configMap},
			Items:                items,
		}}})
	}
	if len(p.inline) > 0 {
		// Inline templates reach the container through the downward API:
		// the kubelet writes each annotation's text to a file, so the
		// container spec never carries template text.
		var items []corev1.DownwardAPIVolumeFile
		for _, name := range p.inline {
			items = append(items, corev1.DownwardAPIVolumeFile{
				Path:     name,
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: fmt.Sprintf("metadata.annotations['%s%s']", AnnotationTemplatePrefix, name)},
			})
		}
		vols = append(vols, corev1.Volume{Name: volInline, VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: items}}})
	}
	if p.credSecret != "" {
		var items []corev1.KeyToPath
		for _, k := range p.credKeys {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
		vols = append(vols, corev1.Volume{Name: volCredentials, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: p.credSecret,
			Items:      items,
		}}})
	}
	return vols
}

// container is the injected container: `injector render` with one -t per
// template, plus --interval/--listen in sidecar mode.
func container(cfg Config, p plan) corev1.Container {
	args := []string{"render"}
	if p.mode == ModeSidecar {
		args = append(args, "--interval", p.interval.String(), "--listen", fmt.Sprintf(":%d", cfg.SidecarPort))
	}
	for _, k := range p.configMapKeys {
		args = append(args, "-t", templatesDir+"/"+k+":"+p.secretsPath+"/"+k+":"+p.fileMode)
	}
	for _, name := range p.inline {
		args = append(args, "-t", inlineDir+"/"+name+":"+p.secretsPath+"/"+name+":"+p.fileMode)
	}

	mounts := []corev1.VolumeMount{{Name: volSecrets, MountPath: p.secretsPath}}
	if p.configMap != "" {
		mounts = append(mounts, corev1.VolumeMount{Name: volTemplates, MountPath: templatesDir, ReadOnly: true})
	}
	if len(p.inline) > 0 {
		mounts = append(mounts, corev1.VolumeMount{Name: volInline, MountPath: inlineDir, ReadOnly: true})
	}
	var env []corev1.EnvVar
	if p.credSecret != "" {
		// Only the injector mounts the credentials; app containers never
		// see them. The CLI reads NAME_FILE for every NAME setting.
		mounts = append(mounts, corev1.VolumeMount{Name: volCredentials, MountPath: credentialsDir, ReadOnly: true})
		for _, k := range p.credKeys {
			env = append(env, corev1.EnvVar{Name: k + "_FILE", Value: credentialsDir + "/" + k})
		}
	}

	c := corev1.Container{
		Name:            ContainerName,
		Image:           cfg.Image,
		ImagePullPolicy: cfg.ImagePullPolicy,
		Command:         []string{binary},
		Args:            args,
		Env:             env,
		VolumeMounts:    mounts,
		Resources:       cfg.Resources,
		// runAsUser is left to the Pod (or the image's numeric USER), so
		// the injector writes files as the same user as the app.
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr(true),
			ReadOnlyRootFilesystem:   ptr(true),
			AllowPrivilegeEscalation: ptr(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	if p.mode == ModeSidecar {
		c.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
		probe := func(path string, period, failures int32) *corev1.Probe {
			return &corev1.Probe{
				ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(cfg.SidecarPort)}},
				PeriodSeconds:    period,
				FailureThreshold: failures,
			}
		}
		// The kubelet starts the app containers only once the sidecar's
		// startup probe passes, i.e. after the first successful render.
		c.StartupProbe = probe("/readyz", 1, 120)
		c.ReadinessProbe = probe("/readyz", 10, 1)
		c.LivenessProbe = probe("/healthz", 10, 3)
	}
	return c
}

// appendAll adds values to the array at path, creating it when absent: RFC
// 6902 cannot append to a missing array.
func appendAll[T any](ops []PatchOp, path string, absent bool, values []T) []PatchOp {
	if absent {
		return append(ops, PatchOp{"add", path, values})
	}
	for _, v := range values {
		ops = append(ops, PatchOp{"add", path + "/-", v})
	}
	return ops
}

// escape encodes a map key as an RFC 6901 JSON Pointer token.
func escape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

func ptr[T any](v T) *T { return &v }
