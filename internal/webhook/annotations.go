package webhook

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Annotations read from a Pod (put them on a Deployment's pod template).
// docs/kubernetes.md is the user-facing reference for each of them.
const (
	Prefix = "injector.io/"

	AnnotationInject             = Prefix + "inject"              // "true" opts the Pod in
	AnnotationMode               = Prefix + "mode"                // init | sidecar
	AnnotationTemplatesConfigMap = Prefix + "templates-configmap" // ConfigMap holding templates
	AnnotationTemplates          = Prefix + "templates"           // comma-separated keys of that ConfigMap
	AnnotationTemplatePrefix     = Prefix + "template."           // template.NAME: inline template text
	AnnotationSecretsPath        = Prefix + "secrets-path"        // where rendered files appear
	AnnotationFileMode           = Prefix + "file-mode"           // octal mode of rendered files
	AnnotationInterval           = Prefix + "interval"            // sidecar refresh period
	AnnotationCredentialsSecret  = Prefix + "credentials-secret"  // Secret holding provider credentials
	AnnotationCredentialsKeys    = Prefix + "credentials-keys"    // its keys, each passed as KEY_FILE
	AnnotationContainers         = Prefix + "containers"          // containers that get the secrets mount

	// AnnotationStatus is written by the webhook; its presence makes a
	// second admission pass (reinvocation, re-applied manifests) a no-op.
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

// plan is what one Pod asked for: the annotations parsed, validated and
// merged with the webhook's defaults.
type plan struct {
	mode          Mode
	configMap     string
	configMapKeys []string // in annotation order
	inline        []string // template names, sorted
	secretsPath   string
	fileMode      string // four octal digits, as the CLI's -t SRC:DST:MODE takes it
	interval      time.Duration
	credSecret    string
	credKeys      []string
	containers    []string // nil means every container
}

var (
	envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

	knownAnnotations = []string{
		AnnotationInject, AnnotationMode, AnnotationTemplatesConfigMap, AnnotationTemplates,
		AnnotationSecretsPath, AnnotationFileMode, AnnotationInterval, AnnotationCredentialsSecret,
		AnnotationCredentialsKeys, AnnotationContainers, AnnotationStatus,
	}
)

// parsePlan reads the injector.io/ annotations. Every problem is reported,
// not just the first, so one failed `kubectl apply` shows them all. Unknown
// injector.io/ keys are errors too: a typo would otherwise be silently
// ignored and the Pod started without the secrets it expects.
func parsePlan(cfg Config, ann map[string]string) (plan, []string, error) {
	p := plan{
		mode:        cfg.Mode,
		secretsPath: cfg.SecretsPath,
		fileMode:    cfg.FileMode,
		interval:    cfg.Interval,
		credSecret:  cfg.CredentialsSecret,
		credKeys:    cfg.CredentialsKeys,
	}
	var errs []error
	var warnings []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("annotation %s: %s", key, fmt.Sprintf(format, args...)))
	}

	for _, key := range slices.Sorted(maps.Keys(ann)) { // sorted: stable messages
		if !strings.HasPrefix(key, Prefix) || slices.Contains(knownAnnotations, key) {
			continue
		}
		name, ok := strings.CutPrefix(key, AnnotationTemplatePrefix)
		if !ok {
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
	for _, name := range append(slices.Clone(p.configMapKeys), p.inline...) {
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
		n, err := strconv.ParseUint(v, 8, 32)
		if err != nil || n > 0o777 {
			bad(AnnotationFileMode, "%q is not an octal file mode like 0440", v)
		}
		p.fileMode = fmt.Sprintf("%04o", n)
	}

	if v, ok := ann[AnnotationInterval]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad(AnnotationInterval, "%q is not a positive duration like 5m", v)
		}
		p.interval = d
		if p.mode == ModeInit {
			warnings = append(warnings, fmt.Sprintf("%s is ignored in init mode; set %s: sidecar to refresh", AnnotationInterval, AnnotationMode))
		}
	}

	if v, ok := ann[AnnotationCredentialsSecret]; ok {
		p.credSecret = v
	}
	if v, ok := ann[AnnotationCredentialsKeys]; ok {
		p.credKeys = splitList(v)
	}
	if p.credSecret != "" {
		if msgs := validation.IsDNS1123Subdomain(p.credSecret); len(msgs) > 0 {
			bad(AnnotationCredentialsSecret, "%q is not a Secret name: %s", p.credSecret, strings.Join(msgs, "; "))
		}
		if len(p.credKeys) == 0 {
			bad(AnnotationCredentialsKeys, "required with %s: list the Secret's keys, like \"PASSWORK_URL,PASSWORK_TOKEN\"", AnnotationCredentialsSecret)
		}
		for _, k := range p.credKeys {
			if !envName.MatchString(k) {
				bad(AnnotationCredentialsKeys, "%q is not an environment variable name", k)
			}
		}
	} else if _, ok := ann[AnnotationCredentialsKeys]; ok {
		bad(AnnotationCredentialsSecret, "required with %s", AnnotationCredentialsKeys)
	}

	if v, ok := ann[AnnotationContainers]; ok {
		p.containers = splitList(v)
		if len(p.containers) == 0 {
			bad(AnnotationContainers, "empty: name at least one container, or remove it to mount into all")
		}
	}
	return p, warnings, errors.Join(errs...)
}

// Paths inside the injected container; the secrets path must stay clear of
// them so that mounts never nest.
const (
	templatesDir   = "/injector/templates"
	inlineDir      = "/injector/inline"
	credentialsDir = "/injector/credentials"
)

func checkSecretsPath(p string) error {
	switch {
	case !path.IsAbs(p) || path.Clean(p) != p || p == "/":
		return fmt.Errorf("%q is not a clean absolute directory like /injector/secrets", p)
	case strings.ContainsAny(p, ":,"):
		// The CLI's -t SRC:DST:MODE has no escaping for colons.
		return fmt.Errorf("%q must not contain ':' or ','", p)
	}
	for _, own := range []string{templatesDir, inlineDir, credentialsDir} {
		if p == own || strings.HasPrefix(own, p+"/") || strings.HasPrefix(p, own+"/") {
			return fmt.Errorf("%q overlaps the injector's own %s", p, own)
		}
	}
	return nil
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
