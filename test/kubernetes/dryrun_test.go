package kubernetes

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestServerSideDryRun submits every example manifest and the chart's output
// to the real API server with dryRun=All: full validation and defaulting,
// nothing stored. This is the authoritative check; the strict decoding in
// the main module and kubeconform are the cheap ones.
func TestServerSideDryRun(t *testing.T) {
	requireCluster(t)
	ns := newNamespace(t, "dryrun")
	// Another release name: the envtest cluster already has "injector"'s
	// webhook configuration.
	sources := map[string][]byte{}
	for name, values := range valueSets() {
		sources["helm template ("+name+")"] = helmTemplateRelease(t, "dryrun", append(values, "--namespace", ns)...)
	}
	// Unknown fields are errors, also in cert-manager's objects, which are
	// decoded without Go types: the API server checks them against the CRDs.
	c := client.WithFieldValidation(cluster.client, metav1.FieldValidationStrict)
	for _, f := range exampleFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sources[filepath.Base(f)] = data
	}
	for name, data := range sources {
		t.Run(name, func(t *testing.T) {
			for _, obj := range mustDecode(t, data) {
				if obj.GetNamespace() == "" && obj.GetObjectKind().GroupVersionKind().Kind != "MutatingWebhookConfiguration" {
					obj.SetNamespace(ns)
				}
				if err := c.Create(context.Background(), obj, client.DryRunAll); err != nil {
					t.Errorf("%s %s: %v", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
				}
			}
		})
	}
}
