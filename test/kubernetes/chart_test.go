package kubernetes

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/injector-dev/injector/internal/credkeys"
)

// The chart's value sets under test, beside the defaults.
var (
	// altValues exercises the non-default branches: an existing Secret
	// with a CA bundle, credentials rules, sidecar mode, limits, Ignore.
	altValues = []string{"-f", "testdata/alt-values.yaml"}
	// certManagerValues lets cert-manager issue the certificate.
	certManagerValues = []string{"-f", "testdata/certmanager-values.yaml"}
	// exampleValues is the documented one-token-per-app example.
	exampleValues = []string{"-f", chartDir + "/examples/one-token-per-app.yaml"}
)

func valueSets() map[string][]string {
	return map[string][]string{"default values": nil, "alternative values": altValues,
		"cert-manager values": certManagerValues, "example values": exampleValues}
}

func TestChartLints(t *testing.T) {
	for name, args := range valueSets() {
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

// certManager returns the rendered cert-manager objects of kind.
func certManager(objs []client.Object, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range byKind[*unstructured.Unstructured](objs) {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

func secretNamed(t *testing.T, objs []client.Object, name string) *corev1.Secret {
	t.Helper()
	for _, s := range byKind[*corev1.Secret](objs) {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no Secret %s", name)
	return nil
}

// verifies checks that the serving certificate in tlsCrt verifies for the
// webhook Service's name against the CA bundle the API server is given.
func verifies(t *testing.T, caBundle, tlsCrt []byte, host string) error {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caBundle) {
		t.Fatalf("caBundle is not PEM: %q", caBundle)
	}
	block, _ := pem.Decode(tlsCrt)
	if block == nil {
		t.Fatal("tls.crt is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host})
	return err
}

func TestChartDefaults(t *testing.T) {
	objs := mustDecode(t, helmTemplate(t))
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
	}
	slices.Sort(kinds)
	want := []string{"Deployment", "MutatingWebhookConfiguration", "PodDisruptionBudget", "Secret", "Secret", "Service", "ServiceAccount"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("kinds = %v, want %v", kinds, want)
	}

	mwc := byKind[*admissionregistrationv1.MutatingWebhookConfiguration](objs)[0]
	wh := mwc.Webhooks[0]
	if *wh.FailurePolicy != admissionregistrationv1.Fail || *wh.SideEffects != admissionregistrationv1.SideEffectClassNone ||
		*wh.ClientConfig.Service.Path != "/mutate" || *wh.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
		t.Errorf("webhook = %+v", wh)
	}
	// Opt-in: only Pods carrying the label (any value, so typos are
	// denied rather than skipped) reach the webhook.
	sel := wh.ObjectSelector
	if sel == nil || len(sel.MatchLabels) != 0 || len(sel.MatchExpressions) != 1 ||
		sel.MatchExpressions[0].Key != "injector.io/inject" || sel.MatchExpressions[0].Operator != "Exists" {
		t.Errorf("objectSelector = %+v, want injector.io/inject Exists", sel)
	}
	excluded := wh.NamespaceSelector.MatchExpressions[0]
	if excluded.Key != "kubernetes.io/metadata.name" || !slices.Contains(excluded.Values, "injector-system") || !slices.Contains(excluded.Values, "kube-system") {
		t.Errorf("namespaceSelector = %+v, want the release namespace and kube-system excluded", wh.NamespaceSelector)
	}

	// The generated serving certificate must verify against the caBundle
	// for the Service's DNS name, or the API server cannot call the webhook.
	svc := byKind[*corev1.Service](objs)[0]
	tlsSecret := secretNamed(t, objs, "injector-injector-webhook-tls")
	if err := verifies(t, wh.ClientConfig.CABundle, tlsSecret.Data["tls.crt"], svc.Name+"."+svc.Namespace+".svc"); err != nil {
		t.Errorf("serving certificate does not verify: %v", err)
	}
	if wh.ClientConfig.Service.Name != svc.Name || tlsSecret.Type != corev1.SecretTypeTLS {
		t.Errorf("webhook service %q, Service %q, secret type %q", wh.ClientConfig.Service.Name, svc.Name, tlsSecret.Type)
	}
	// The CA's key is kept for upgrades, in a Secret the Pods never mount.
	caSecret := secretNamed(t, objs, "injector-injector-webhook-ca")
	if len(caSecret.Data["tls.key"]) == 0 || len(tlsSecret.Data["ca.key"]) != 0 {
		t.Errorf("CA Secret keys %v, serving Secret keys %v", keys(caSecret.Data), keys(tlsSecret.Data))
	}
	if ca := parseCert(t, caSecret.Data["tls.crt"]); !ca.IsCA || ca.NotAfter.Sub(ca.NotBefore).Hours()/24 > 1826 {
		t.Errorf("CA valid %v to %v, want a CA of at most 5 years", ca.NotBefore, ca.NotAfter)
	}
	if leaf := parseCert(t, tlsSecret.Data["tls.crt"]); leaf.NotAfter.Sub(leaf.NotBefore).Hours()/24 > 366 {
		t.Errorf("serving certificate valid %v to %v, want at most a year", leaf.NotBefore, leaf.NotAfter)
	}

	dep := byKind[*appsv1.Deployment](objs)[0]
	c := dep.Spec.Template.Spec.Containers[0]
	// The webhook runs its own image (the injector-webhook binary is the
	// entry point, so no subcommand) and injects the injector image.
	if c.Image != "ghcr.io/injector-dev/injector-webhook:0.1.0" || len(c.Command) != 0 || strings.HasPrefix(c.Args[0], "webhook") {
		t.Errorf("webhook container runs %q %q %q", c.Image, c.Command, c.Args)
	}
	for _, want := range []string{"--image=ghcr.io/injector-dev/injector:0.1.0", "--image-pull-policy=IfNotPresent", "--default-mode=init",
		"--min-interval=30s", "--secrets-size-limit=1Mi", "--cpu-limit="} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("webhook args %q lack %q", c.Args, want)
		}
	}
	for _, arg := range c.Args {
		if strings.HasPrefix(arg, "--credentials") || arg == "--allow-pod-credentials" {
			t.Errorf("default args map credentials: %q", arg)
		}
	}
	if !*dep.Spec.Template.Spec.SecurityContext.RunAsNonRoot || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("webhook Pod is not locked down: %+v %+v", dep.Spec.Template.Spec.SecurityContext, c.SecurityContext)
	}
	if items := dep.Spec.Template.Spec.Volumes[0].Secret.Items; len(items) != 2 || items[0].Key != "tls.crt" || items[1].Key != "tls.key" {
		t.Errorf("tls volume items = %+v, want only the serving pair", items)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("not PEM: %q", data)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestChartAlternativeValues(t *testing.T) {
	objs := mustDecode(t, helmTemplate(t, altValues...))
	if n := len(byKind[*corev1.Secret](objs)); n != 0 {
		t.Errorf("%d Secrets rendered with tls.existingSecret, want 0", n)
	}
	mwc := byKind[*admissionregistrationv1.MutatingWebhookConfiguration](objs)[0]
	wh := mwc.Webhooks[0]
	if *wh.FailurePolicy != admissionregistrationv1.Ignore || !strings.HasPrefix(string(wh.ClientConfig.CABundle), "-----BEGIN CERTIFICATE-----") ||
		wh.NamespaceSelector.MatchExpressions[1].Key != "injector.io/enabled" {
		t.Errorf("webhook configuration = %+v", mwc)
	}
	dep := byKind[*appsv1.Deployment](objs)[0]
	c := dep.Spec.Template.Spec.Containers[0]
	if c.Image != "registry.example/injector-webhook:0.1.0" || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("webhook image %q, pull policy %q", c.Image, c.ImagePullPolicy)
	}
	for _, want := range []string{"--image=registry.example/injector:pinned", "--image-pull-policy=Always", "--default-mode=sidecar",
		"--default-interval=10m", "--min-interval=1m",
		"--credentials=*=shared-injector:PASSWORK_URL,PASSWORK_TOKEN",
		"--credentials=shop/checkout=checkout-injector:PASSBOLT_URL,PASSBOLT_USER_ID,PASSBOLT_PRIVATE_KEY,PASSBOLT_PASSPHRASE",
		"--allow-pod-credentials", "--cpu-limit=200m", "--secrets-size-limit="} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args %q lack %q", c.Args, want)
		}
	}
	if dep.Spec.Template.Spec.Volumes[0].Secret.SecretName != "webhook-cert" {
		t.Errorf("tls volume = %+v", dep.Spec.Template.Spec.Volumes[0])
	}
}

// With tls.certManager, cert-manager issues the certificate into the Secret
// the Pods mount and injects the CA bundle: the render holds no key
// material, so `helm template` (Argo CD, Flux) renders the same every time.
func TestChartCertManager(t *testing.T) {
	first, second := helmTemplate(t, certManagerValues...), helmTemplate(t, certManagerValues...)
	if string(first) != string(second) {
		t.Error("two renders differ: the output is not stable under helm template")
	}
	objs := mustDecode(t, first)
	if n := len(byKind[*corev1.Secret](objs)); n != 0 {
		t.Errorf("%d Secrets rendered, want none (cert-manager writes it)", n)
	}
	certs := certManager(objs, "Certificate")
	issuers := certManager(objs, "Issuer")
	if len(certs) != 2 || len(issuers) != 2 {
		t.Fatalf("%d Certificates and %d Issuers, want 2 and 2 (self-signed root, CA, serving)", len(certs), len(issuers))
	}
	var serving *unstructured.Unstructured
	for _, c := range certs {
		if isCA, _, _ := unstructured.NestedBool(c.Object, "spec", "isCA"); !isCA {
			serving = c
		}
	}
	dep := byKind[*appsv1.Deployment](objs)[0]
	secretName, _, _ := unstructured.NestedString(serving.Object, "spec", "secretName")
	if secretName != dep.Spec.Template.Spec.Volumes[0].Secret.SecretName {
		t.Errorf("Certificate writes %q, the Pods mount %q", secretName, dep.Spec.Template.Spec.Volumes[0].Secret.SecretName)
	}
	dns, _, _ := unstructured.NestedStringSlice(serving.Object, "spec", "dnsNames")
	if !slices.Contains(dns, "injector-injector-webhook.injector-system.svc") {
		t.Errorf("dnsNames = %q, want the Service's name", dns)
	}
	mwc := byKind[*admissionregistrationv1.MutatingWebhookConfiguration](objs)[0]
	if got, want := mwc.Annotations["cert-manager.io/inject-ca-from"], "injector-system/"+serving.GetName(); got != want || len(mwc.Webhooks[0].ClientConfig.CABundle) != 0 {
		t.Errorf("inject-ca-from %q (want %q), caBundle %q", got, want, mwc.Webhooks[0].ClientConfig.CABundle)
	}

	// An issuer of the cluster's own: no chart-made CA.
	objs = mustDecode(t, helmTemplate(t, append(certManagerValues, "--set", "tls.certManager.issuerRef.kind=ClusterIssuer",
		"--set", "tls.certManager.issuerRef.name=internal-ca")...))
	certs = certManager(objs, "Certificate")
	if len(certs) != 1 || len(certManager(objs, "Issuer")) != 0 {
		t.Fatalf("with issuerRef: %d Certificates, %d Issuers; want 1 and 0", len(certs), len(certManager(objs, "Issuer")))
	}
	if ref, _, _ := unstructured.NestedStringMap(certs[0].Object, "spec", "issuerRef"); ref["kind"] != "ClusterIssuer" || ref["name"] != "internal-ca" {
		t.Errorf("issuerRef = %v", ref)
	}
}

// An incomplete or contradictory configuration fails the render with a
// message, instead of rendering a webhook nobody can call.
func TestChartRefusesIncompleteConfiguration(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"existing Secret without a CA bundle", []string{"--set", "tls.existingSecret=mine"}, "tls.existingSecret needs tls.caBundle"},
		{"CA bundle without a Secret", []string{"--set", "tls.caBundle=x"}, "tls.caBundle is only used with tls.existingSecret"},
		{"base64 CA bundle", []string{"--set", "tls.existingSecret=mine", "--set", "tls.caBundle=LS0tLS1CRUdJTg=="}, "tls.caBundle must be PEM"},
		{"cert-manager and a CA bundle", []string{"--set", "tls.certManager.enabled=true", "--set", "tls.existingSecret=mine", "--set", "tls.caBundle=-----BEGIN CERTIFICATE-----"}, "cert-manager injects the CA bundle"},
		{"issuer without a name", []string{"--set", "tls.certManager.enabled=true", "--set", "tls.certManager.issuerRef.kind=ClusterIssuer"}, "tls.certManager.issuerRef needs a name"},
		{"rule without keys", []string{"--set", "credentials.rules[0].namespace=shop", "--set", "credentials.rules[0].secret=s"}, "/credentials/rules/0': missing property 'keys'"},
		{"rule without a URL", []string{"--set", "credentials.rules[0].namespace=shop", "--set", "credentials.rules[0].secret=s",
			"--set", "credentials.rules[0].keys={PASSAGENT_TOKEN,PASSAGENT_VAULT_KEY}"}, "PASSAGENT settings need PASSAGENT_URL"},
		// values.schema.json: keys are provider settings, values are known.
		{"key that is no setting", []string{"--set", "credentials.rules[0].namespace=shop", "--set", "credentials.rules[0].secret=s",
			"--set", "credentials.rules[0].keys={PASSWORK_URL,SSL_CERT}"}, "/credentials/rules/0/keys/1"},
		{"misspelt value", []string{"--set", "credentials.rule[0].namespace=shop"}, "additional properties 'rule' not allowed"},
		{"file mode that is not octal", []string{"--set", "defaults.fileMode=0999"}, "/defaults/fileMode"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := helm(append([]string{"template", "injector", chartDir, "--namespace", "injector-system"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("helm template = %v\n%s\nwant an error containing %q", err, out, tt.want)
			}
		})
	}
}

// The schema's list of credential keys is the one the webhook enforces.
func TestChartSchemaKeysAreProviderSettings(t *testing.T) {
	data, err := os.ReadFile(chartDir + "/values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			Credentials struct {
				Properties struct {
					Rules struct {
						Items struct {
							Properties struct {
								Keys struct {
									Items struct {
										Enum []string `json:"enum"`
									} `json:"items"`
								} `json:"keys"`
							} `json:"properties"`
						} `json:"items"`
					} `json:"rules"`
				} `json:"properties"`
			} `json:"credentials"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	got := schema.Properties.Credentials.Properties.Rules.Items.Properties.Keys.Items.Enum
	if !slices.Equal(slices.Sorted(slices.Values(got)), credkeys.Names()) {
		t.Errorf("values.schema.json credential keys = %v, want credkeys.Names() = %v", got, credkeys.Names())
	}
}

// The flags the chart renders are the ones the webhook binary accepts: run
// it with each value set's arguments (certificate paths pointing nowhere).
// Accepted flags get as far as loading the certificate (exit 1, the
// server could not start); a flag the binary does not know or a setting it
// rejects exits 2.
func TestChartArgsAreAcceptedByTheWebhook(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "injector-webhook")
	build := exec.Command("go", "build", "-o", bin, "./cmd/injector-webhook")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	for name, values := range valueSets() {
		t.Run(name, func(t *testing.T) {
			dep := byKind[*appsv1.Deployment](mustDecode(t, helmTemplate(t, values...)))[0]
			var args []string
			for _, a := range dep.Spec.Template.Spec.Containers[0].Args {
				switch {
				case strings.HasPrefix(a, "--listen="):
					a = "--listen=127.0.0.1:0"
				case strings.HasPrefix(a, "--tls-cert-file="), strings.HasPrefix(a, "--tls-key-file="):
					a = a[:strings.Index(a, "=")+1] + missing
				}
				args = append(args, a)
			}
			out, err := exec.Command(bin, args...).CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "load TLS certificate") {
				t.Errorf("injector-webhook %q: %v\n%s", args, err, out)
			}
		})
	}
}
