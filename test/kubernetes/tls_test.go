package kubernetes

import (
	"context"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// rendered is what one render of the chart's generated TLS holds.
type rendered struct {
	caSecret, tlsSecret *corev1.Secret
	bundle              []byte // the webhook configuration's caBundle
}

// TestChartCertificateRotation renders the chart with generated
// certificates against the envtest API server, the way `helm install` and
// `helm upgrade` do (helm template --dry-run=server: lookup sees the
// cluster), storing the Secrets after each render as helm would. At no
// step may the certificate the webhook's Pods still serve (the kubelet
// delivers a new one within about a minute) stop verifying against the new
// caBundle.
func TestChartCertificateRotation(t *testing.T) {
	requireCluster(t)
	ns := newNamespace(t, "tls")
	// Not "injector": that release's webhook configuration is installed.
	const release = "rotation"
	render := func(args ...string) rendered {
		t.Helper()
		out, err := helm(append([]string{"template", release, chartDir, "--namespace", ns,
			"--dry-run=server", "--kubeconfig", cluster.kubeconfig}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		objs := mustDecode(t, out)
		return rendered{
			caSecret:  secretNamed(t, objs, release+"-injector-webhook-ca"),
			tlsSecret: secretNamed(t, objs, release+"-injector-webhook-tls"),
			bundle:    byKind[*admissionregistrationv1.MutatingWebhookConfiguration](objs)[0].Webhooks[0].ClientConfig.CABundle,
		}
	}
	store := func(secrets ...*corev1.Secret) {
		t.Helper()
		ctx := context.Background()
		for _, s := range secrets {
			s = s.DeepCopy()
			s.Namespace = ns
			// What helm install records: the release owns the Secret.
			s.Annotations = map[string]string{"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": ns}
			err := cluster.client.Create(ctx, s)
			if apierrors.IsAlreadyExists(err) {
				err = cluster.client.Update(ctx, s)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	host := release + "-injector-webhook." + ns + ".svc"
	mustVerify := func(step string, bundle []byte, r rendered) {
		t.Helper()
		if err := verifies(t, bundle, r.tlsSecret.Data["tls.crt"], host); err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}

	install := render()
	mustVerify("install", install.bundle, install)
	store(install.caSecret, install.tlsSecret)

	// Upgrade: the same CA and caBundle, a fresh serving certificate.
	upgrade := render()
	if string(upgrade.bundle) != string(install.bundle) || string(upgrade.caSecret.Data["tls.crt"]) != string(install.caSecret.Data["tls.crt"]) {
		t.Error("upgrade: the CA changed")
	}
	if string(upgrade.tlsSecret.Data["tls.crt"]) == string(install.tlsSecret.Data["tls.crt"]) {
		t.Error("upgrade: the serving certificate was not renewed")
	}
	mustVerify("upgrade, new certificate", upgrade.bundle, upgrade)
	mustVerify("upgrade, certificate still served", upgrade.bundle, install)
	store(upgrade.caSecret, upgrade.tlsSecret)

	// rotateCA: a new CA, with the old one still in the bundle.
	rotate := render("--set", "tls.generate.rotateCA=true")
	if string(rotate.caSecret.Data["tls.crt"]) == string(upgrade.caSecret.Data["tls.crt"]) {
		t.Fatal("rotateCA: the CA did not change")
	}
	if n := strings.Count(string(rotate.bundle), "BEGIN CERTIFICATE"); n != 2 {
		t.Errorf("rotateCA: caBundle has %d certificates, want the new and the old CA", n)
	}
	mustVerify("rotateCA, new certificate", rotate.bundle, rotate)
	mustVerify("rotateCA, certificate still served", rotate.bundle, upgrade)
	store(rotate.caSecret, rotate.tlsSecret)

	// The next upgrade trusts the new CA only.
	after := render()
	if string(after.bundle) != string(rotate.caSecret.Data["tls.crt"]) {
		t.Errorf("after rotation: caBundle is not just the new CA:\n%s", after.bundle)
	}
	mustVerify("after rotation", after.bundle, after)
	if err := verifies(t, after.bundle, install.tlsSecret.Data["tls.crt"], host); err == nil {
		t.Error("after rotation: a certificate from the old CA still verifies")
	}

	// Upgrading from a release that kept no CA key (only ca.crt in the
	// serving Secret): a new CA, and the old one stays trusted meanwhile.
	ctx := context.Background()
	if err := cluster.client.Delete(ctx, &corev1.Secret{ObjectMeta: after.caSecret.ObjectMeta}, client.PropagationPolicy("Background")); err != nil {
		t.Fatal(err)
	}
	legacy := after.tlsSecret.DeepCopy()
	legacy.Data["ca.crt"] = install.caSecret.Data["tls.crt"]
	legacy.Data["tls.crt"], legacy.Data["tls.key"] = install.tlsSecret.Data["tls.crt"], install.tlsSecret.Data["tls.key"]
	store(legacy)
	fromLegacy := render()
	mustVerify("from a release without a CA key, new certificate", fromLegacy.bundle, fromLegacy)
	mustVerify("from a release without a CA key, certificate still served", fromLegacy.bundle, install)
}
