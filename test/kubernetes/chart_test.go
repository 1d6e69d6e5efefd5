package kubernetes

import (
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// altValues exercises the non-default branches of the chart.
var altValues = []string{
	"--set", "tls.existingSecret=webhook-cert",
	"--set", "tls.caBundle=-----BEGIN CERTIFICATE-----",
	"--set", "defaults.mode=sidecar",
	"--set", "defaults.credentialsSecret=shared-injector",
	"--set", "defaults.credentialsKeys={PASSWORK_URL,PASSWORK_TOKEN}",
	"--set", "webhook.failurePolicy=Ignore",
	"--set-string", "webhook.objectSelector.matchLabels.injector\\.io/inject=true", // --set would make it a YAML boolean
	"--set", "webhook.annotations.cert-manager\\.io/inject-ca-from=injector-system/webhook-cert",
	"--set", "podDisruptionBudget.enabled=false",
	"--set", "image.repository=registry.example/injector-webhook",
	"--set", "injectorImage.repository=registry.example/injector",
	"--set", "injectorImage.tag=pinned",
	"--set", "injectorImage.pullPolicy=Always",
}

func TestChartLints(t *testing.T) {
	for name, args := range map[string][]string{"default values": nil, "alternative values": altValues} {
		t.Run(name, func(t *testing.T) {
			if out, err := helm(append([]string{"lint", "--strict", chartDir}, args...)...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

func byKind[T client.Object](objs []client.Object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func TestChartDefaults(t *testing.T) {
	objs := mustDecode(t, helmTemplate(t))
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
	}
	slices.Sort(kinds)
	want := []string{"Deployment", "MutatingWebhookConfiguration", "PodDisruptionBudget", "Secret", "Service", "ServiceAccount"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("kinds = %v, want %v", kinds, want)
	}

	mwc := byKind[*admissionregistrationv1.MutatingWebhookConfiguration](objs)[0]
	wh := mwc.Webhooks[0]
	if *wh.FailurePolicy != admissionregistrationv1.Fail || *wh.SideEffects != admissionregistrationv1.SideEffectClassNone ||
		*wh.ClientConfig.Service.Path != "/mutate" || *wh.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
		t.Errorf("webhook = %+v", wh)
	}
	excluded := wh.NamespaceSelector.MatchExpressions[0]
	if excluded.Key != "kubernetes.io/metadata.name" || !slices.Contains(excluded.Values, "injector-system") || !slices.Contains(excluded.Values, "kube-system") {
		t.Errorf("namespaceSelector = %+v, want the release namespace and kube-system excluded", wh.NamespaceSelector)
	}

	// The generated serving certificate must verify against the caBundle
	// for the Service's DNS name, or the API server cannot call the webhook.
	secret := byKind[*corev1.Secret](objs)[0]
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(wh.ClientConfig.CABundle) {
		t.Fatalf("caBundle is not PEM: %q", wh.ClientConfig.CABundle)
	}
	block, _ := pem.Decode(secret.Data["tls.crt"])
	if block == nil {
		t.Fatal("tls.crt is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	svc := byKind[*corev1.Service](objs)[0]
	host := svc.Name + "." + svc.Namespace + ".svc"
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
		t.Errorf("serving certificate does not verify for %s: %v", host, err)
	}
	if wh.ClientConfig.Service.Name != svc.Name || secret.Type != corev1.SecretTypeTLS {
		t.Errorf("webhook service %q, Service %q, secret type %q", wh.ClientConfig.Service.Name, svc.Name, secret.Type)
	}

	dep := byKind[*appsv1.Deployment](objs)[0]
	c := dep.Spec.Template.Spec.Containers[0]
	// The webhook runs its own image (the injector-webhook binary is the
	// entry point, so no subcommand) and injects the injector image.
	if c.Image != "ghcr.io/injector-dev/injector-webhook:0.1.0" || len(c.Command) != 0 || strings.HasPrefix(c.Args[0], "webhook") {
		t.Errorf("webhook container runs %q %q %q", c.Image, c.Command, c.Args)
	}
	for _, want := range []string{"--image=ghcr.io/injector-dev/injector:0.1.0", "--image-pull-policy=IfNotPresent", "--default-mode=init"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("webhook args %q lack %q", c.Args, want)
		}
	}
	if !*dep.Spec.Template.Spec.SecurityContext.RunAsNonRoot || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("webhook Pod is not locked down: %+v %+v", dep.Spec.Template.Spec.SecurityContext, c.SecurityContext)
	}
}

func TestChartAlternativeValues(t *testing.T) {
	objs := mustDecode(t, helmTemplate(t, altValues...))
	if n := len(byKind[*corev1.Secret](objs)); n != 0 {
		t.Errorf("%d Secrets rendered with tls.existingSecret, want 0", n)
	}
	mwc := byKind[*admissionregistrationv1.MutatingWebhookConfiguration](objs)[0]
	wh := mwc.Webhooks[0]
	if *wh.FailurePolicy != admissionregistrationv1.Ignore || wh.ObjectSelector.MatchLabels["injector.io/inject"] != "true" ||
		string(wh.ClientConfig.CABundle) != "-----BEGIN CERTIFICATE-----" || mwc.Annotations["cert-manager.io/inject-ca-from"] == "" {
		t.Errorf("webhook configuration = %+v", mwc)
	}
	dep := byKind[*appsv1.Deployment](objs)[0]
	c := dep.Spec.Template.Spec.Containers[0]
	if c.Image != "registry.example/injector-webhook:0.1.0" || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("webhook image %q, pull policy %q", c.Image, c.ImagePullPolicy)
	}
	args := strings.Join(c.Args, " ")
	for _, want := range []string{"--image=registry.example/injector:pinned", "--image-pull-policy=Always", "--default-mode=sidecar",
		"--credentials-secret=shared-injector", "--credentials-keys=PASSWORK_URL,PASSWORK_TOKEN"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	if dep.Spec.Template.Spec.Volumes[0].Secret.SecretName != "webhook-cert" {
		t.Errorf("tls volume = %+v", dep.Spec.Template.Spec.Volumes[0])
	}
}
