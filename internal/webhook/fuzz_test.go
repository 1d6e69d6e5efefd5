package webhook

import (
	"strings"
	"testing"
)

// FuzzMutate feeds arbitrary labels and annotations (one "key=value" per
// line) to Mutate: it must never panic, every patch it returns must apply
// to the Pod and decode strictly, and the patched Pod must be left alone by
// a second pass.
func FuzzMutate(f *testing.F) {
	for _, seed := range [][2]string{
		{"true", "injector.io/template.app.env=A=<< passwork \"x\" \"y\" >>"},
		{"true", "injector.io/mode=sidecar\ninjector.io/interval=90s\ninjector.io/port=9100\ninjector.io/template.a=x\ninjector.io/file-mode.a=0440"},
		{"true", "injector.io/templates-configmap=t\ninjector.io/templates=a,b\ninjector.io/secrets-path=/etc/app/secrets\ninjector.io/containers=proxy"},
		{"true", "injector.io/template.a=x\ninjector.io/init-first=false\ninjector.io/run-as-user=1000\ninjector.io/cpu-limit=1\ninjector.io/secrets-size-limit=2Mi"},
		{"ture", "injector.io/template.a=x\ninjector.io/bogus=1"},
		{"true", "injector.io/status=injected\ninjector.io/template.a=x"},
		{"", "injector.io/template.a=x"},
		{"false", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, label, annotations string) {
		ann := map[string]string{}
		for line := range strings.SplitSeq(annotations, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				ann[k] = v
			}
		}
		pod := newPod(ann)
		if label == "" {
			pod.Labels = nil
		} else {
			pod.Labels[LabelInject] = label
		}
		res, err := Mutate(testConfig, pod)
		if err != nil || res.Patch == nil {
			return
		}
		got := applyPatch(t, pod, res.Patch)
		if again, err := Mutate(testConfig, got); err != nil || again.Patch != nil {
			t.Errorf("second Mutate = %+v, %v; want no patch", again.Patch, err)
		}
	})
}
