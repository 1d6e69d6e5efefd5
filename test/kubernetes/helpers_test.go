package kubernetes

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

const (
	repoRoot  = "../.."
	chartDir  = repoRoot + "/deploy/helm/injector-webhook"
	examples  = repoRoot + "/deploy/kubernetes"
	toolsHint = "run scripts/test-kubernetes, or put scripts/k8s-tools' directory on PATH"
)

// tool finds helm or kubeconform: $HELM / $KUBECONFORM, else PATH.
func tool(name string) (string, error) {
	if p := os.Getenv(strings.ToUpper(name)); p != "" {
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", errors.New(name + " not found: " + toolsHint)
	}
	return p, nil
}

// helm runs helm with throwaway cache/config/data homes, so it never reads
// or writes the user's and needs no network.
func helm(args ...string) ([]byte, error) {
	bin, err := tool("helm")
	if err != nil {
		return nil, err
	}
	home, err := os.MkdirTemp("", "injector-helm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(home)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, errors.New("helm " + strings.Join(args, " ") + ": " + err.Error() + ": " + stderr.String())
	}
	return out, nil
}

// helmTemplate renders the chart as release "injector" in injector-system;
// a later --namespace overrides the namespace.
func helmTemplate(t *testing.T, args ...string) []byte {
	t.Helper()
	return helmTemplateRelease(t, "injector", args...)
}

func helmTemplateRelease(t *testing.T, release string, args ...string) []byte {
	t.Helper()
	out, err := helm(append([]string{"template", release, chartDir, "--namespace", "injector-system"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// decodeStrict splits a multi-document YAML stream and decodes each
// document into its typed Kubernetes object, rejecting unknown fields and
// wrong types. Kinds client-go does not know are errors too.
func decodeStrict(data []byte) ([]client.Object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []client.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		var tm runtime.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, err
		}
		if tm.Kind == "" {
			continue // comments only
		}
		gvk := schema.FromAPIVersionAndKind(tm.APIVersion, tm.Kind)
		if gvk.Group == "cert-manager.io" {
			// No Go types here: the API server checks these strictly
			// against cert-manager's CRDs (TestServerSideDryRun).
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(doc, &u.Object); err != nil {
				return nil, errors.New(gvk.String() + ": " + err.Error())
			}
			objs = append(objs, u)
			continue
		}
		o, err := clientgoscheme.Scheme.New(gvk)
		if err != nil {
			return nil, err
		}
		if err := yaml.UnmarshalStrict(doc, o); err != nil {
			return nil, errors.New(gvk.String() + ": " + err.Error())
		}
		objs = append(objs, o.(client.Object))
	}
}

func mustDecode(t *testing.T, data []byte) []client.Object {
	t.Helper()
	objs, err := decodeStrict(data)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// exampleFiles returns every manifest in deploy/kubernetes.
func exampleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(examples + "/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", examples, err)
	}
	return files
}
