package webhook

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/injector-dev/injector/internal/credkeys"
)

// CredentialsRule maps Pods to the Secret holding their provider
// credentials. The cluster admin writes these rules (the webhook's
// --credentials flags, the chart's credentials.rules); Pods cannot pick
// another Secret unless the admin allows per-Pod credentials.
//
// The provider token in the Secret is the identity the password manager
// sees; Kubernetes RBAC on that Secret, and on creating Pods in its
// namespace, is the fence around it.
type CredentialsRule struct {
	Namespace      string   // the Pod's namespace, or "*" for every namespace
	ServiceAccount string   // the Pod's ServiceAccount; "" for any
	Secret         string   // Secret in the Pod's namespace
	Keys           []string // its keys, provider settings (see internal/credkeys)
}

// ParseCredentialsRule parses NAMESPACE[/SERVICEACCOUNT]=SECRET:KEY[,KEY...],
// the --credentials flag's format.
func ParseCredentialsRule(s string) (CredentialsRule, error) {
	who, what, ok := strings.Cut(s, "=")
	secret, keys, ok2 := strings.Cut(what, ":")
	if !ok || !ok2 {
		return CredentialsRule{}, fmt.Errorf("%q: want NAMESPACE[/SERVICEACCOUNT]=SECRET:KEY[,KEY...]", s)
	}
	ns, sa, _ := strings.Cut(who, "/")
	r := CredentialsRule{Namespace: strings.TrimSpace(ns), ServiceAccount: strings.TrimSpace(sa),
		Secret: strings.TrimSpace(secret), Keys: splitList(keys)}
	if err := r.validate(); err != nil {
		return CredentialsRule{}, fmt.Errorf("%q: %w", s, err)
	}
	return r, nil
}

// String formats r the way ParseCredentialsRule reads it.
func (r CredentialsRule) String() string {
	who := r.Namespace
	if r.ServiceAccount != "" {
		who += "/" + r.ServiceAccount
	}
	return who + "=" + r.Secret + ":" + strings.Join(r.Keys, ",")
}

func (r CredentialsRule) validate() error {
	var errs []error
	switch {
	case r.Namespace == "*":
		if r.ServiceAccount != "" {
			errs = append(errs, errors.New("a ServiceAccount needs a namespace, not *"))
		}
	case len(validation.IsDNS1123Label(r.Namespace)) > 0:
		errs = append(errs, fmt.Errorf("%q is not a namespace name or *", r.Namespace))
	}
	if r.ServiceAccount != "" && len(validation.IsDNS1123Subdomain(r.ServiceAccount)) > 0 {
		errs = append(errs, fmt.Errorf("%q is not a ServiceAccount name", r.ServiceAccount))
	}
	if msgs := validation.IsDNS1123Subdomain(r.Secret); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("%q is not a Secret name: %s", r.Secret, strings.Join(msgs, "; ")))
	}
	if len(r.Keys) == 0 {
		errs = append(errs, errors.New("no keys: list the Secret's keys, like PASSWORK_URL,PASSWORK_TOKEN"))
	}
	for _, p := range credkeys.Check(r.Keys) {
		errs = append(errs, errors.New(p))
	}
	return errors.Join(errs...)
}

// matchCredentials returns the rule for a Pod: NAMESPACE/SERVICEACCOUNT
// before NAMESPACE before *.
func matchCredentials(rules []CredentialsRule, namespace, serviceAccount string) (CredentialsRule, bool) {
	best, rank := CredentialsRule{}, 0
	for _, r := range rules {
		n := 0
		switch {
		case r.Namespace == namespace && r.ServiceAccount == serviceAccount:
			n = 3
		case r.Namespace == namespace && r.ServiceAccount == "":
			n = 2
		case r.Namespace == "*":
			n = 1
		}
		if n > rank {
			best, rank = r, n
		}
	}
	return best, rank > 0
}

// credentialsFor decides which Secret and keys a Pod's injector mounts:
// the admin's rule for its namespace and ServiceAccount, or, only when the
// admin allows it, the Pod's own credentials annotations.
func credentialsFor(cfg Config, namespace, serviceAccount string, ann map[string]string,
	bad func(key, format string, args ...any)) (secret string, keys []string, fromPod bool, err error) {
	secretAnn, hasSecret := ann[AnnotationCredentialsSecret]
	keysAnn, hasKeys := ann[AnnotationCredentialsKeys]
	if (hasSecret || hasKeys) && !cfg.AllowPodCredentials {
		key := AnnotationCredentialsSecret
		if !hasSecret {
			key = AnnotationCredentialsKeys
		}
		bad(key, "per-Pod credentials are disabled: the cluster admin maps namespaces and ServiceAccounts to credentials Secrets (webhook --credentials, chart value credentials.rules); remove the annotation")
		return "", nil, false, nil
	}
	if hasSecret || hasKeys {
		secret, keys = secretAnn, splitList(keysAnn)
		switch {
		case !hasSecret:
			bad(AnnotationCredentialsSecret, "required with %s", AnnotationCredentialsKeys)
		case len(validation.IsDNS1123Subdomain(secret)) > 0:
			bad(AnnotationCredentialsSecret, "%q is not a Secret name: %s", secret, strings.Join(validation.IsDNS1123Subdomain(secret), "; "))
		}
		if hasSecret && len(keys) == 0 {
			bad(AnnotationCredentialsKeys, "required with %s: list the Secret's keys, like \"PASSWORK_URL,PASSWORK_TOKEN\"", AnnotationCredentialsSecret)
		}
		for _, p := range credkeys.Check(keys) {
			bad(AnnotationCredentialsKeys, "%s", p)
		}
		return secret, keys, true, nil
	}
	r, ok := matchCredentials(cfg.Credentials, namespace, serviceAccount)
	if !ok {
		return "", nil, false, fmt.Errorf("no credentials are mapped to namespace %q, ServiceAccount %q: ask the cluster admin to add a rule (webhook --credentials, chart value credentials.rules)", namespace, serviceAccount)
	}
	return r.Secret, r.Keys, false, nil
}
