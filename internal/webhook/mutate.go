// Package webhook is injector's Kubernetes mutating admission webhook. Pods
// labelled injector.io/inject: "true" get an injector container (an init
// container, or a native sidecar that keeps refreshing) that renders their
// templates into an in-memory volume mounted read-only into the app
// containers, with the credentials Secret the cluster admin mapped to their
// namespace and ServiceAccount.
//
// Mutate is the pure decision; Handler speaks AdmissionReview v1 over HTTP;
// Server serves it over TLS, reloading its certificate when the files change.
package webhook

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Config holds the webhook's settings: the admin's rules and the defaults
// that annotations may override.
type Config struct {
	Image           string // injector image for the injected container (required)
	ImagePullPolicy corev1.PullPolicy

	Mode        Mode          // default mode (init)
	Interval    time.Duration // default sidecar refresh period
	MinInterval time.Duration // no Pod refreshes more often (default 30s)
	SecretsPath string        // default directory of rendered files
	FileMode    string        // default octal mode of rendered files
	SidecarPort int32         // default port of the sidecar's /metrics, /healthz and /readyz

	// Credentials maps namespaces and ServiceAccounts to credentials
	// Secrets. AllowPodCredentials lets Pods name their own with the
	// credentials-secret and credentials-keys annotations instead; it is
	// off by default, so the admin decides which token a Pod gets.
	Credentials         []CredentialsRule
	AllowPodCredentials bool

	Resources        corev1.ResourceRequirements // of the injected container
	SecretsSizeLimit resource.Quantity           // of the secrets volume; zero: none
}

// Defaults: see docs/kubernetes.md.
const (
	DefaultSecretsPath = "/injector/secrets"
	DefaultFileMode    = "0444"
	DefaultInterval    = 5 * time.Minute
	DefaultMinInterval = 30 * time.Second
	DefaultSidecarPort = 8099

	// ContainerName is the injected container's name, reserved: a Pod
	// that has a container by this name and was not injected is denied.
	ContainerName = "injector"
	// binary is where the injector image keeps the binary (see Dockerfile).
	binary = "/usr/local/bin/injector"
	// imageUser is the injector image's numeric USER and group
	// (distroless nonroot), used when neither Pod nor annotation set one.
	imageUser = 65532

	volPrefix      = "injector-"
	volSecrets     = volPrefix + "secrets"
	volTemplates   = volPrefix + "templates"
	volInline      = volPrefix + "inline"
	volCredentials = volPrefix + "credentials"
	volState       = volPrefix + "state"

	// tokenStateFile keeps the Passwork token pair injector renews with
	// PASSWORK_REFRESH_TOKEN: the root filesystem is read-only, and a
	// server that replaces the pair on renewal (Passwork before 7.6) would
	// leave a restarted container with a dead pair.
	tokenStateFile = stateDir + "/passwork-tokens.json"
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
	if c.MinInterval == 0 {
		c.MinInterval = DefaultMinInterval
	}
	if c.SecretsPath == "" {
		c.SecretsPath = DefaultSecretsPath
	}
	if c.FileMode == "" {
		c.FileMode = DefaultFileMode
	}
	if m, err := parseFileMode(c.FileMode); err == nil {
		c.FileMode = m // "644" -> "0644", as annotations are
	}
	if c.SidecarPort == 0 {
		c.SidecarPort = DefaultSidecarPort
	}
	return c
}

// Validate checks the settings the way parsePlan checks annotations, so a
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
	if c.MinInterval < 0 {
		errs = append(errs, fmt.Errorf("minimum interval %v: must be positive", c.MinInterval))
	}
	if c.Interval < c.MinInterval {
		errs = append(errs, fmt.Errorf("interval %v: below the minimum interval %v", c.Interval, c.MinInterval))
	}
	if err := checkSecretsPath(c.SecretsPath); err != nil {
		errs = append(errs, fmt.Errorf("secrets path: %w", err))
	}
	if _, err := parseFileMode(c.FileMode); err != nil {
		errs = append(errs, fmt.Errorf("file mode: %w", err))
	}
	if c.SidecarPort < 1 || c.SidecarPort > 65535 {
		errs = append(errs, fmt.Errorf("sidecar port %d: want 1-65535", c.SidecarPort))
	}
	seen := map[[2]string]bool{}
	for _, r := range c.Credentials {
		if err := r.validate(); err != nil {
			errs = append(errs, fmt.Errorf("credentials %s: %w", r, err))
		}
		if who := [2]string{r.Namespace, r.ServiceAccount}; seen[who] {
			errs = append(errs, fmt.Errorf("credentials %s: a second rule for the same namespace and ServiceAccount", r))
		} else {
			seen[who] = true
		}
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := c.Resources.Requests[name]
		lim, hasLim := c.Resources.Limits[name]
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			errs = append(errs, fmt.Errorf("%s request %s is above its limit %s", name, req.String(), lim.String()))
		}
	}
	if c.SecretsSizeLimit.Sign() < 0 {
		errs = append(errs, fmt.Errorf("secrets size limit %s: must be positive", c.SecretsSizeLimit.String()))
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

// Mutate decides what to add to pod. Pods without the injector.io/inject
// label, with it set to "false", or already injected get no patch. An
// opted-in Pod whose annotations are wrong, or that could never start once
// injected, gets an error, which the Handler turns into a denied admission:
// failing at `kubectl apply` beats a Pod that starts without its secrets.
func Mutate(cfg Config, pod *corev1.Pod) (Result, error) {
	cfg = cfg.WithDefaults()
	inject, err := optedIn(pod)
	if err != nil || !inject || alreadyInjected(pod) {
		return Result{}, err
	}
	if err := checkReserved(pod); err != nil {
		return Result{}, err
	}
	if cfg.Image == "" {
		return Result{}, errors.New("webhook has no injector image configured")
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default" // what the API server's ServiceAccount admission sets
	}
	p, warnings, err := parsePlan(cfg, pod.Namespace, sa, pod.Annotations)
	if err != nil {
		return Result{}, err
	}
	targets, err := targetContainers(pod, p)
	if err != nil {
		return Result{}, err
	}
	id, idWarnings, err := checkPod(pod, p, targets)
	if err != nil {
		return Result{}, err
	}
	warnings = append(warnings, idWarnings...)

	var ops []PatchOp
	// Annotations exist: the injector.io/ ones are among them.
	ops = append(ops, PatchOp{"add", "/metadata/annotations/" + escape(AnnotationStatus), StatusInjected})
	ops = appendAll(ops, "/spec/volumes", len(pod.Spec.Volumes) == 0, volumes(p))

	appMount := corev1.VolumeMount{Name: volSecrets, MountPath: p.secretsPath, ReadOnly: true}
	// Existing init containers run after the injector (unless init-first
	// is off), so they may use the secrets too. Their mounts go in before
	// the injector is prepended, which shifts their indices.
	for i, c := range pod.Spec.InitContainers {
		if targets[c.Name] {
			ops = appendAll(ops, fmt.Sprintf("/spec/initContainers/%d/volumeMounts", i), len(c.VolumeMounts) == 0, []corev1.VolumeMount{appMount})
		}
	}
	injector := container(cfg, p, id)
	switch {
	case len(pod.Spec.InitContainers) == 0:
		ops = append(ops, PatchOp{"add", "/spec/initContainers", []corev1.Container{injector}})
	case p.initFirst:
		ops = append(ops, PatchOp{"add", "/spec/initContainers/0", injector})
	default:
		ops = append(ops, PatchOp{"add", "/spec/initContainers/-", injector})
	}
	for i, c := range pod.Spec.Containers {
		if targets[c.Name] {
			ops = appendAll(ops, fmt.Sprintf("/spec/containers/%d/volumeMounts", i), len(c.VolumeMounts) == 0, []corev1.VolumeMount{appMount})
		}
	}
	return Result{Patch: ops, Warnings: warnings}, nil
}

// optedIn reads the injector.io/inject label.
func optedIn(pod *corev1.Pod) (bool, error) {
	v, ok := pod.Labels[LabelInject]
	if !ok {
		// The chart's objectSelector sends only labelled Pods; a broader
		// webhook configuration may send others. One that carries
		// injector annotations asked for secrets and must not start
		// without them.
		for k := range pod.Annotations {
			if strings.HasPrefix(k, Prefix) {
				return false, fmt.Errorf("the Pod has %s annotations but no label %s: \"true\"; add the label to opt in", Prefix, LabelInject)
			}
		}
		return false, nil
	}
	inject, err := parseBool(v)
	if err != nil {
		return false, fmt.Errorf("label %s: %v", LabelInject, err)
	}
	return inject, nil
}

// alreadyInjected reports a Pod this webhook has patched: reinvocation
// after another webhook, or a Pod copied from an injected one.
func alreadyInjected(pod *corev1.Pod) bool {
	return pod.Annotations[AnnotationStatus] == StatusInjected &&
		slices.ContainsFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == ContainerName }) &&
		slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == volSecrets })
}

// checkReserved denies a Pod that was not injected but uses what only the
// webhook may add: the status annotation, the injector container's name,
// injector-* volumes, or mounts of them (an app container listing a mount
// of injector-credentials would otherwise get the provider token once the
// webhook adds the volume).
func checkReserved(pod *corev1.Pod) error {
	var errs []error
	if v, ok := pod.Annotations[AnnotationStatus]; ok {
		errs = append(errs, fmt.Errorf("annotation %s: %q is written by the webhook, not by Pods; remove it", AnnotationStatus, v))
	}
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, volPrefix) {
			errs = append(errs, fmt.Errorf("volume name %q is reserved for the injector", v.Name))
		}
	}
	check := func(kind, name string, mounts []corev1.VolumeMount, devices []corev1.VolumeDevice) {
		if name == ContainerName {
			errs = append(errs, fmt.Errorf("%s name %q is reserved for the injected container; rename yours", kind, name))
		}
		for _, m := range mounts {
			if strings.HasPrefix(m.Name, volPrefix) {
				errs = append(errs, fmt.Errorf("%s %q mounts volume %q: %s* volumes and their mounts are added by the webhook only", kind, name, m.Name, volPrefix))
			}
		}
		for _, d := range devices {
			if strings.HasPrefix(d.Name, volPrefix) {
				errs = append(errs, fmt.Errorf("%s %q uses volume %q as a device: %s* volumes are the webhook's", kind, name, d.Name, volPrefix))
			}
		}
	}
	for _, c := range pod.Spec.InitContainers {
		check("init container", c.Name, c.VolumeMounts, c.VolumeDevices)
	}
	for _, c := range pod.Spec.Containers {
		check("container", c.Name, c.VolumeMounts, c.VolumeDevices)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		check("ephemeral container", c.Name, c.VolumeMounts, c.VolumeDevices)
	}
	return errors.Join(errs...)
}

// targetContainers resolves injector.io/containers to the set of
// containers that get the secrets mount: by default every app container,
// and the init containers when the injector runs before them.
func targetContainers(pod *corev1.Pod, p plan) (map[string]bool, error) {
	apps, inits := map[string]bool{}, map[string]bool{}
	for _, c := range pod.Spec.Containers {
		apps[c.Name] = true
	}
	for _, c := range pod.Spec.InitContainers {
		inits[c.Name] = true
	}
	if p.containers == nil {
		if p.initFirst {
			maps.Copy(apps, inits)
		}
		return apps, nil
	}
	set := map[string]bool{}
	var errs []error
	for _, n := range p.containers {
		switch {
		case inits[n] && !p.initFirst:
			errs = append(errs, fmt.Errorf("annotation %s: init container %q runs before the injector (%s: \"false\"), so the secrets are not there yet", AnnotationContainers, n, AnnotationInitFirst))
		case !apps[n] && !inits[n]:
			errs = append(errs, fmt.Errorf("annotation %s: no container %q in the Pod", AnnotationContainers, n))
		}
		set[n] = true
	}
	return set, errors.Join(errs...)
}

func volumes(p plan) []corev1.Volume {
	vols := []corev1.Volume{{
		Name: volSecrets,
		// Memory: rendered secrets never touch the node's disk. The size
		// limit caps the tmpfs, which counts toward the Pod's memory.
		VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: p.sizeLimit}},
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
	var items []corev1.KeyToPath
	for _, k := range p.credKeys {
		items = append(items, corev1.KeyToPath{Key: k, Path: k})
	}
	vols = append(vols, corev1.Volume{Name: volCredentials, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName: p.credSecret,
		Items:      items,
	}}})
	if p.keepsTokens() {
		stateLimit := resource.MustParse("64Ki")
		vols = append(vols, corev1.Volume{Name: volState, VolumeSource: corev1.VolumeSource{
			EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &stateLimit},
		}})
	}
	return vols
}

// keepsTokens reports whether the injector renews a Passwork token pair,
// which it then keeps in tokenStateFile on a volume of its own.
func (p plan) keepsTokens() bool { return slices.Contains(p.credKeys, "PASSWORK_REFRESH_TOKEN") }

// container is the injected container: `injector render` with one -t per
// template, plus --interval/--min-interval/--listen in sidecar mode.
func container(cfg Config, p plan, id identity) corev1.Container {
	args := []string{"render"}
	if p.mode == ModeSidecar {
		// The daemon enforces the same floor as the webhook; --listen
		// serves /metrics, /healthz and /readyz on the port the probes use.
		args = append(args, "--interval", p.interval.String(), "--min-interval", cfg.MinInterval.String(),
			"--listen", fmt.Sprintf(":%d", p.port))
	}
	for _, k := range p.configMapKeys {
		args = append(args, "-t", templatesDir+"/"+k+":"+p.secretsPath+"/"+k+":"+p.modeOf(k))
	}
	for _, name := range p.inline {
		args = append(args, "-t", inlineDir+"/"+name+":"+p.secretsPath+"/"+name+":"+p.modeOf(name))
	}

	mounts := []corev1.VolumeMount{{Name: volSecrets, MountPath: p.secretsPath}}
	if p.configMap != "" {
		mounts = append(mounts, corev1.VolumeMount{Name: volTemplates, MountPath: templatesDir, ReadOnly: true})
	}
	if len(p.inline) > 0 {
		mounts = append(mounts, corev1.VolumeMount{Name: volInline, MountPath: inlineDir, ReadOnly: true})
	}
	// Only the injector mounts the credentials; app containers never see
	// them. The CLI reads NAME_FILE for every NAME setting.
	mounts = append(mounts, corev1.VolumeMount{Name: volCredentials, MountPath: credentialsDir, ReadOnly: true})
	var env []corev1.EnvVar
	for _, k := range p.credKeys {
		env = append(env, corev1.EnvVar{Name: k + "_FILE", Value: credentialsDir + "/" + k})
	}
	if p.keepsTokens() {
		mounts = append(mounts, corev1.VolumeMount{Name: volState, MountPath: stateDir})
		env = append(env, corev1.EnvVar{Name: "PASSWORK_TOKEN_STATE_FILE", Value: tokenStateFile})
	}

	c := corev1.Container{
		Name:            ContainerName,
		Image:           cfg.Image,
		ImagePullPolicy: cfg.ImagePullPolicy,
		Command:         []string{binary},
		Args:            args,
		Env:             env,
		VolumeMounts:    mounts,
		Resources:       p.resources,
		SecurityContext: &corev1.SecurityContext{
			// Unset, runAsUser and runAsGroup come from the Pod (or the
			// image's 65532), so the injector writes files as the app's
			// user; see checkPod for when they are set.
			RunAsUser:                id.uid,
			RunAsGroup:               id.gid,
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
				ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(p.port)}},
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
