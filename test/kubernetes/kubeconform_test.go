package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
)

// TestKubeconform validates the chart's output and the examples with
// kubeconform, offline: its schemas are generated from the envtest API
// server's /openapi/v2, so they match the Kubernetes version under test.
func TestKubeconform(t *testing.T) {
	requireCluster(t)
	bin, err := tool("kubeconform")
	if err != nil {
		t.Fatal(err)
	}
	schemas := t.TempDir()
	if err := writeSchemas(cluster.config, schemas); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var files []string
	for name, values := range valueSets() {
		f := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
		if err := os.WriteFile(f, helmTemplate(t, values...), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	kubeconform := func(files ...string) ([]byte, error) {
		args := append([]string{"-strict", "-summary", "-schema-location",
			schemas + "/{{ .ResourceKind }}{{ .KindSuffix }}.json"}, files...)
		return exec.Command(bin, args...).CombinedOutput()
	}

	files = append(files, exampleFiles(t)...)
	if out, err := kubeconform(files...); err != nil {
		t.Errorf("kubeconform: %v\n%s", err, out)
	}

	// The schemas are strict enough to catch wrong types and unknown fields.
	broken := filepath.Join(dir, "broken.yaml")
	os.WriteFile(broken, []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: three\n  bogusField: 1\n"+
		"  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}\n"), 0o600)
	out, err := kubeconform(broken)
	if err == nil || !strings.Contains(string(out), "replicas") || !strings.Contains(string(out), "bogusField") {
		t.Errorf("kubeconform accepted a broken Deployment: %v\n%s", err, out)
	}
}

// writeSchemas converts the API server's OpenAPI v2 document into one
// standalone JSON schema per kind, named the way kubeconform looks them up
// (deployment-apps-v1.json, pod-v1.json): $refs inlined, objects closed with
// additionalProperties:false, and int-or-string/quantity types widened to
// what YAML authors write.
func writeSchemas(cfg *rest.Config, dir string) error {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	body, err := dc.RESTClient().Get().AbsPath("/openapi/v2").SetHeader("Accept", "application/json").DoRaw(context.Background())
	if err != nil {
		return fmt.Errorf("GET /openapi/v2: %w", err)
	}
	var doc struct {
		Definitions map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return err
	}

	var inline func(v any, seen map[string]bool) any
	inline = func(v any, seen map[string]bool) any {
		switch v := v.(type) {
		case []any:
			out := make([]any, len(v))
			for i, x := range v {
				out[i] = inline(x, seen)
			}
			return out
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				name := strings.TrimPrefix(ref, "#/definitions/")
				switch {
				case name == "io.k8s.apimachinery.pkg.api.resource.Quantity":
					return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
				case seen[name]:
					return map[string]any{} // recursive type (JSONSchemaProps): accept anything below
				}
				seen[name] = true
				defer delete(seen, name)
				return inline(doc.Definitions[name], seen)
			}
			if v["format"] == "int-or-string" {
				return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
			}
			out := map[string]any{}
			for k, x := range v {
				if k == "properties" {
					props := map[string]any{}
					for p, s := range x.(map[string]any) {
						props[p] = inline(s, seen)
					}
					out[k] = props
					continue
				}
				out[k] = inline(x, seen)
			}
			if _, ok := out["properties"]; ok {
				if _, set := out["additionalProperties"]; !set {
					out["additionalProperties"] = false
				}
			}
			return out
		}
		return v
	}

	n := 0
	for name, def := range doc.Definitions {
		gvks, _ := def.(map[string]any)["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			gvk := g.(map[string]any)
			group, version, kind := gvk["group"].(string), gvk["version"].(string), gvk["kind"].(string)
			suffix := "-" + version
			if group != "" {
				suffix = "-" + strings.Split(group, ".")[0] + suffix
			}
			schema := inline(map[string]any{"$ref": "#/definitions/" + name}, map[string]bool{})
			data, err := json.Marshal(schema)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, strings.ToLower(kind)+suffix+".json"), data, 0o600); err != nil {
				return err
			}
			n++
		}
	}
	if n < 50 {
		return fmt.Errorf("only %d kinds in /openapi/v2", n)
	}
	return nil
}
