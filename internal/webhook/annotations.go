package webhook

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// LabelInject opts a Pod in: "true" injects, "false" leaves the Pod alone,
// anything else is denied. It is a label, not an annotation, so that the
// webhook configuration's objectSelector sends only these Pods to the
// webhook: no other Pod's creation depends on it being up.
const LabelInject = "injector.io/inject"

// Annotations read from a Pod (put them on a Deployment's pod template).
// docs/kubernetes.md is the user-facing reference for each of them.
const (
	Prefix = "injector.io/"

	AnnotationMode               = Prefix + "mode"                // init | sidecar
	AnnotationTemplatesConfigMap = Prefix + "templates-configmap" // ConfigMap holding templates
	AnnotationTemplates          = Prefix + "templates"           // comma-separated keys of that ConfigMap
	AnnotationTemplatePrefix     = Prefix + "template."           // template.NAME: inline template text
	AnnotationSecretsPath        = Prefix + "secrets-path"        // where rendered files appear
	AnnotationFileMode           = Prefix + "file-mode"           // octal mode of rendered files
	AnnotationFileModePrefix     = Prefix + "file-mode."          // file-mode.NAME: mode of one file
	AnnotationInterval           = Prefix + "interval"            // sidecar refresh period
	AnnotationPort               = Prefix + "port"                // sidecar's /metrics, /healthz, /readyz port
	AnnotationCredentialsSecret  = Prefix + "credentials-secret"  // per-Pod credentials (when the admin allows)
	AnnotationCredentialsKeys    = Prefix + "credentials-keys"    // its keys, each passed as KEY_FILE
	AnnotationContainers         = Prefix + "containers"          // containers that get the secrets mount
	AnnotationInitFirst          = Prefix + "init-first"          // "false": run after the Pod's init containers
	AnnotationRunAsUser          = Prefix + "run-as-user"         // UID of the injector
	AnnotationRunAsGroup         = Prefix + "run-as-group"        // GID of the injector
	AnnotationCPURequest         = Prefix + "cpu-request"         // resources of the injector
	AnnotationCPULimit           = Prefix + "cpu-limit"
	AnnotationMemoryRequest      = Prefix + "memory-request"
	AnnotationMemoryLimit        = Prefix + "memory-limit"
	AnnotationSecretsSizeLimit   = Prefix + "secrets-size-limit" // sizeLimit of the in-memory secrets volume

	// AnnotationStatus is written by the webhook; a Pod carrying it with
	// the injected container and volumes (reinvocation, a copied Pod) is
	// left alone. Set by hand, it is denied.
	AnnotationStatus = Prefix + "status"
	StatusInjected   = "injected"
)

// Mode is how the injected container runs.
type Mode string

const (
	// ModeInit renders once in an init container before the app starts.
	ModeInit Mode = "init"
	// ModeSidecar keeps rendering in a native sidecar (an init container
	// with restartPolicy Always) for the Pod's whole life.
	ModeSidecar Mode = "sidecar"
)

func parseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeInit, ModeSidecar:
		return m, nil
	}
	return "", fmt.Errorf("%q is not init or sidecar", s)
}

// parseBool accepts exactly "true" and "false", the spelling Kubernetes
// manifests use. "True", "1", "yes" or a typo like "ture" are errors, not
// false: a Pod that asked for something must not silently go without it.
func parseBool(s string) (bool, error) {
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%q is not \"true\" or \"false\"", s)
}

// plan is what one Pod asked for: the annotations parsed, validated and
// merged with the webhook's defaults.
type plan struct {
	mode          Mode
	configMap     string
	configMapKeys []string // in annotation order
	inline        []string // template names, sorted
	secretsPath   string
	fileMode      string            // four octal digits, as the CLI's -t SRC:DST:MODE takes it
	fileModes     map[string]string // per template name, overriding fileMode
	interval      time.Duration
	port          int32
	credSecret    string
	credKeys      []string
	podCreds      bool     // credentials came from the Pod's annotations
	containers    []string // nil means every container
	initFirst     bool
	runAsUser     *int64
	runAsGroup    *int64
	resources     corev1.ResourceRequirements
	sizeLimit     *resource.Quantity
}

// templates returns every template name: ConfigMap keys, then inline names.
func (p plan) templates() []string {
	return append(slices.Clone(p.configMapKeys), p.inline...)
}

// modeOf returns the file mode of template name.
func (p plan) modeOf(name string) string {
	if m, ok := p.fileModes[name]; ok {
		return m
	}
	return p.fileMode
}

var knownAnnotations = []string{
	AnnotationMode, AnnotationTemplatesConfigMap, AnnotationTemplates, AnnotationSecretsPath,
	AnnotationFileMode, AnnotationInterval, AnnotationPort, AnnotationCredentialsSecret,
	AnnotationCredentialsKeys, AnnotationContainers, AnnotationInitFirst, AnnotationRunAsUser,
	AnnotationRunAsGroup, AnnotationCPURequest, AnnotationCPULimit, AnnotationMemoryRequest,
	AnnotationMemoryLimit, AnnotationSecretsSizeLimit, AnnotationStatus,
}

// parsePlan reads the injector.io/ annotations of a Pod in namespace
// running as serviceAccount. Every problem is reported, not just the first,
// so one failed `kubectl apply` shows them all. Unknown injector.io/ keys
// are errors too: a typo would otherwise be silently ignored and the Pod
// started without the secrets it expects.
func parsePlan(cfg Config, namespace, serviceAccount string, ann map[string]string) (plan, []string, error) {
	p := plan{
		mode:        cfg.Mode,
		secretsPath: cfg.SecretsPath,
		fileMode:    cfg.FileMode,
		fileModes:   map[string]string{},
		interval:    cfg.Interval,
		port:        cfg.SidecarPort,
		initFirst:   true,
		resources:   *cfg.Resources.DeepCopy(),
	}
	if !cfg.SecretsSizeLimit.IsZero() {
		p.sizeLimit = ptr(cfg.SecretsSizeLimit.DeepCopy())
	}
	var errs []error
	var warnings []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("annotation %s: %s", key, fmt.Sprintf(format, args...)))
	}

	perFileModes := map[string]string{}                 // template name -> annotation value
	for _, key := range slices.Sorted(maps.Keys(ann)) { // sorted: stable messages
		if !strings.HasPrefix(key, Prefix) || slices.Contains(knownAnnotations, key) {
			continue
		}
		if name, ok := strings.CutPrefix(key, AnnotationFileModePrefix); ok {
			perFileModes[name] = ann[key]
			continue
		}
		name, ok := strings.CutPrefix(key, AnnotationTemplatePrefix)
		switch {
		case key == LabelInject:
			bad(key, "is a label, not an annotation: set metadata.labels[%q] = \"true\" and remove the annotation", LabelInject)
			continue
		case !ok:
			bad(key, "unknown annotation (see docs/kubernetes.md)")
			continue
		}
		if msgs := validation.IsConfigMapKey(name); len(msgs) > 0 {
			bad(key, "template name %q: %s", name, strings.Join(msgs, "; "))
			continue
		}
		p.inline = append(p.inline, name)
	}

	if v, ok := ann[AnnotationMode]; ok {
		m, err := parseMode(v)
		if err != nil {
			bad(AnnotationMode, "%v", err)
		}
		p.mode = m
	}

	p.configMap = ann[AnnotationTemplatesConfigMap]
	if p.configMap != "" {
		if msgs := validation.IsDNS1123Subdomain(p.configMap); len(msgs) > 0 {
			bad(AnnotationTemplatesConfigMap, "%q is not a ConfigMap name: %s", p.configMap, strings.Join(msgs, "; "))
		}
	}
	if v, ok := ann[AnnotationTemplates]; ok {
		p.configMapKeys = splitList(v)
		for _, k := range p.configMapKeys {
			if msgs := validation.IsConfigMapKey(k); len(msgs) > 0 {
				bad(AnnotationTemplates, "%q is not a ConfigMap key: %s", k, strings.Join(msgs, "; "))
			}
		}
	}
	switch {
	case p.configMap != "" && len(p.configMapKeys) == 0:
		bad(AnnotationTemplates, "required with %s: list the keys to render, like \"app.env,db.yaml\"", AnnotationTemplatesConfigMap)
	case p.configMap == "" && len(p.configMapKeys) > 0:
		bad(AnnotationTemplatesConfigMap, "required with %s: name the ConfigMap holding those keys", AnnotationTemplates)
	}
	seen := map[string]bool{}
	for _, name := range p.templates() {
		if seen[name] {
			errs = append(errs, fmt.Errorf("template %q is given twice: ConfigMap keys and inline names share one directory", name))
		}
		seen[name] = true
	}
	if len(seen) == 0 {
		errs = append(errs, fmt.Errorf("no templates: set %s and %s, or %sNAME", AnnotationTemplatesConfigMap, AnnotationTemplates, AnnotationTemplatePrefix))
	}

	if v, ok := ann[AnnotationSecretsPath]; ok {
		p.secretsPath = v
	}
	if err := checkSecretsPath(p.secretsPath); err != nil {
		bad(AnnotationSecretsPath, "%v", err)
	}

	if v, ok := ann[AnnotationFileMode]; ok {
		m, err := parseFileMode(v)
		if err != nil {
			bad(AnnotationFileMode, "%v", err)
		}
		p.fileMode = m
	}
	for _, name := range slices.Sorted(maps.Keys(perFileModes)) {
		key := AnnotationFileModePrefix + name
		if !seen[name] {
			bad(key, "no template named %q (templates: %s)", name, strings.Join(slices.Sorted(maps.Keys(seen)), ", "))
			continue
		}
		m, err := parseFileMode(perFileModes[name])
		if err != nil {
			bad(key, "%v", err)
		}
		p.fileModes[name] = m
	}

	if v, ok := ann[AnnotationInterval]; ok {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil || d <= 0:
			bad(AnnotationInterval, "%q is not a positive duration like 5m", v)
		case d < cfg.MinInterval:
			// Every refresh calls the password manager, which is shared
			// by every Pod: the admin sets the floor, not the Pod.
			bad(AnnotationInterval, "%v is below the minimum of %v set by the cluster admin (each refresh calls the password manager)", d, cfg.MinInterval)
		}
		p.interval = d
		if p.mode == ModeInit {
			warnings = append(warnings, fmt.Sprintf("%s is ignored in init mode; set %s: sidecar to refresh", AnnotationInterval, AnnotationMode))
		}
	}
	if v, ok := ann[AnnotationPort]; ok {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 1 || n > 65535 {
			bad(AnnotationPort, "%q is not a port number 1-65535", v)
		}
		p.port = int32(n)
		if p.mode == ModeInit {
			warnings = append(warnings, fmt.Sprintf("%s is ignored in init mode: only the sidecar listens", AnnotationPort))
		}
	}

	var err error
	p.credSecret, p.credKeys, p.podCreds, err = credentialsFor(cfg, namespace, serviceAccount, ann, bad)
	if err != nil {
		errs = append(errs, err)
	}

	if v, ok := ann[AnnotationContainers]; ok {
		p.containers = splitList(v)
		if len(p.containers) == 0 {
			bad(AnnotationContainers, "empty: name at least one container, or remove it to mount into all")
		}
	}
	if v, ok := ann[AnnotationInitFirst]; ok {
		b, err := parseBool(v)
		if err != nil {
			bad(AnnotationInitFirst, "%v", err)
		}
		p.initFirst = b
	}
	for key, dst := range map[string]**int64{AnnotationRunAsUser: &p.runAsUser, AnnotationRunAsGroup: &p.runAsGroup} {
		v, ok := ann[key]
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil || n < 0 || n > 1<<31-1:
			bad(key, "%q is not a numeric ID", v)
		case n == 0 && key == AnnotationRunAsUser:
			bad(key, "the injector never runs as root (UID 0)")
		default:
			*dst = ptr(n)
		}
	}
	parseResources(&p, ann, bad)
	return p, warnings, errors.Join(errs...)
}

func parseFileMode(v string) (string, error) {
	n, err := strconv.ParseUint(v, 8, 32)
	if err != nil || n > 0o777 {
		return "", fmt.Errorf("%q is not an octal file mode like 0440", v)
	}
	if n&0o400 == 0 {
		return "", fmt.Errorf("%q does not let even the file's owner read it; use a mode like 0440", v)
	}
	return fmt.Sprintf("%04o", n), nil
}

// parseResources applies the resource annotations over the webhook's
// defaults and checks that no request exceeds its limit (the API server
// would reject the Pod, naming the injected container, not the annotation).
func parseResources(p *plan, ann map[string]string, bad func(key, format string, args ...any)) {
	if p.resources.Requests == nil {
		p.resources.Requests = corev1.ResourceList{}
	}
	if p.resources.Limits == nil {
		p.resources.Limits = corev1.ResourceList{}
	}
	for _, r := range []struct {
		key  string
		list corev1.ResourceList
		name corev1.ResourceName
	}{
		{AnnotationCPURequest, p.resources.Requests, corev1.ResourceCPU},
		{AnnotationCPULimit, p.resources.Limits, corev1.ResourceCPU},
		{AnnotationMemoryRequest, p.resources.Requests, corev1.ResourceMemory},
		{AnnotationMemoryLimit, p.resources.Limits, corev1.ResourceMemory},
	} {
		v, ok := ann[r.key]
		if !ok {
			continue
		}
		q, err := resource.ParseQuantity(v)
		if err != nil || q.Sign() <= 0 {
			bad(r.key, "%q is not a positive quantity like 100m or 64Mi", v)
			continue
		}
		r.list[r.name] = q
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := p.resources.Requests[name]
		lim, hasLim := p.resources.Limits[name]
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			bad(Prefix+string(name)+"-request", "%s request %s is above its limit %s", name, req.String(), lim.String())
		}
	}
	if len(p.resources.Requests) == 0 {
		p.resources.Requests = nil
	}
	if len(p.resources.Limits) == 0 {
		p.resources.Limits = nil
	}
	if v, ok := ann[AnnotationSecretsSizeLimit]; ok {
		q, err := resource.ParseQuantity(v)
		if err != nil || q.Sign() <= 0 {
			bad(AnnotationSecretsSizeLimit, "%q is not a positive quantity like 1Mi", v)
			return
		}
		p.sizeLimit = &q
	}
}

// Paths inside the injected container; the secrets path must stay clear of
// them so that mounts never nest.
const (
	templatesDir   = "/injector/templates"
	inlineDir      = "/injector/inline"
	credentialsDir = "/injector/credentials"
	stateDir       = "/injector/state"
)

// systemPaths are directories a read-only mount of the secrets must never
// cover, in the injector (whose binary is in /usr/local/bin) or in an app:
// it would hide binaries and libraries, the trust roots, the
// ServiceAccount token or the kernel's interfaces.
var systemPaths = []string{
	"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/usr", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/local",
	"/usr/local/bin", "/usr/local/sbin", "/usr/local/lib", "/usr/share/ca-certificates",
	"/etc", "/etc/ssl", "/etc/ssl/certs", "/etc/pki", "/etc/ca-certificates", "/etc/passwd", "/etc/group",
	"/etc/hosts", "/etc/hostname", "/etc/resolv.conf",
	"/var/run/secrets", "/var/run/secrets/kubernetes.io", "/var/run/secrets/kubernetes.io/serviceaccount",
	"/run/secrets/kubernetes.io", "/run/secrets/kubernetes.io/serviceaccount",
	"/proc", "/sys", "/dev", "/tmp", "/var/tmp", "/home", "/root",
}

// systemTrees are directories nothing may be mounted inside either.
var systemTrees = []string{
	"/proc", "/sys", "/dev", "/etc/ssl/certs", "/etc/pki", "/usr/share/ca-certificates",
	"/var/run/secrets/kubernetes.io", "/run/secrets/kubernetes.io", "/usr/local/bin", "/bin", "/sbin", "/usr/bin", "/usr/sbin",
}

func checkSecretsPath(p string) error {
	switch {
	case !path.IsAbs(p) || path.Clean(p) != p || p == "/":
		return fmt.Errorf("%q is not a clean absolute directory like /injector/secrets", p)
	case strings.ContainsAny(p, ":,"):
		// The CLI's -t SRC:DST:MODE has no escaping for colons.
		return fmt.Errorf("%q must not contain ':' or ','", p)
	}
	for _, own := range []string{templatesDir, inlineDir, credentialsDir, stateDir} {
		if nested(p, own) {
			return fmt.Errorf("%q overlaps the injector's own %s", p, own)
		}
	}
	for _, sys := range systemPaths {
		if p == sys || strings.HasPrefix(sys, p+"/") {
			return fmt.Errorf("%q would hide %s behind a read-only mount: choose a directory of its own, like /injector/secrets or /etc/app/secrets", p, sys)
		}
	}
	for _, tree := range systemTrees {
		if strings.HasPrefix(p, tree+"/") {
			return fmt.Errorf("%q is inside %s, which belongs to the system: choose a directory of its own, like /injector/secrets", p, tree)
		}
	}
	return nil
}

// nested reports whether a and b are the same path or one contains the other.
func nested(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}

// splitList splits "a, b,c" into [a b c], dropping empty items.
func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
