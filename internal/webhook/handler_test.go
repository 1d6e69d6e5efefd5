package webhook

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/rs/zerolog"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

// handlerConfig is what an admin of the fixtures' cluster would set: the
// checkout ServiceAccount of namespace shop gets its own token.
var handlerConfig = Config{Image: testConfig.Image, Credentials: []CredentialsRule{
	{Namespace: "shop", ServiceAccount: "checkout", Secret: "checkout-injector", Keys: []string{"PASSWORK_URL", "PASSWORK_TOKEN"}},
}}

func newTestServer(t *testing.T, logs io.Writer) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(&Handler{Config: handlerConfig, Log: zerolog.New(logs)})
	t.Cleanup(srv.Close)
	return srv
}

// post sends a fixture from testdata and decodes the AdmissionReview answer.
func post(t *testing.T, url, fixture string) (sent, got admissionv1.AdmissionReview) {
	t.Helper()
	body, err := os.ReadFile("testdata/" + fixture)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &sent); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s", resp.Status)
	}
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.APIVersion != "admission.k8s.io/v1" || got.Kind != "AdmissionReview" || got.Response == nil || got.Response.UID != sent.Request.UID {
		t.Fatalf("response %+v does not answer request %s", got, sent.Request.UID)
	}
	return sent, got
}

func TestHandlerPatchesAnnotatedPod(t *testing.T) {
	var logs bytes.Buffer
	srv := newTestServer(t, &logs)
	sent, got := post(t, srv.URL+"/mutate", "create-pod.json")

	r := got.Response
	if !r.Allowed || r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("response = %+v, want allowed with a JSONPatch", r)
	}
	patch, err := jsonpatch.DecodePatch(r.Patch)
	if err != nil {
		t.Fatal(err)
	}
	out, err := patch.Apply(sent.Request.Object.Raw)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	var pod corev1.Pod
	if err := json.Unmarshal(out, &pod); err != nil {
		t.Fatal(err)
	}
	inj := pod.Spec.InitContainers[0]
	if inj.Name != "injector" || inj.RestartPolicy == nil || len(pod.Spec.Volumes) != 4 {
		t.Errorf("patched pod: init containers %+v, volumes %+v", pod.Spec.InitContainers, pod.Spec.Volumes)
	}
	// The namespace comes from the request: the Pod of a controller has none yet.
	if v := pod.Spec.Volumes[3]; v.Secret == nil || v.Secret.SecretName != "checkout-injector" {
		t.Errorf("credentials volume = %+v, want the Secret mapped to shop/checkout", v)
	}
	// The service account token volume is untouched and still mounted.
	if pod.Spec.Volumes[0].Name != "kube-api-access-x7k2p" || len(pod.Spec.Containers[0].VolumeMounts) != 2 {
		t.Errorf("pod's own volumes changed: %+v", pod.Spec.Volumes)
	}
	if !strings.Contains(logs.String(), `"pod":"checkout-7d9f8c6b5-*"`) || !strings.Contains(logs.String(), `"mode":"sidecar"`) {
		t.Errorf("log does not name the pod and mode: %s", logs.String())
	}
}

// Crafted AdmissionReviews, each denied with a message naming the problem
// (one of the points each); none is silently admitted.
func TestHandlerDenies(t *testing.T) {
	srv := newTestServer(t, io.Discard)
	for _, tt := range []struct {
		fixture string
		want    []string
	}{
		{"create-pod-bad-annotation.json", []string{`injector: annotation injector.io/mode: "daemonset" is not init or sidecar`}},
		{"create-pod-label-typo.json", []string{`injector: label injector.io/inject: "ture" is not "true" or "false"`}},
		{"create-pod-mounts-credentials.json", []string{`container "checkout" mounts volume "injector-credentials"`}},
		{"create-pod-own-credentials.json", []string{"annotation injector.io/credentials-secret: per-Pod credentials are disabled"}},
		{"create-pod-interval-1ms.json", []string{"annotation injector.io/interval: 1ms is below the minimum of 30s"}},
		{"create-pod-never-starts.json", []string{`container "checkout" uses port 8099`,
			`file mode 0400: container "checkout" runs as UID 1000 but the injector writes the files as UID 65532`,
			`container "metrics" runs as UID 1001`}},
	} {
		t.Run(tt.fixture, func(t *testing.T) {
			_, got := post(t, srv.URL+"/mutate", tt.fixture)
			r := got.Response
			if r.Allowed || r.Patch != nil || r.Result == nil || r.Result.Code != http.StatusUnprocessableEntity {
				t.Fatalf("response = %+v, want denied with 422", r)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.Result.Message, w) {
					t.Errorf("message %q does not contain %q", r.Result.Message, w)
				}
			}
		})
	}
}

func TestHandlerIgnoresOtherRequests(t *testing.T) {
	srv := newTestServer(t, io.Discard)
	for _, fixture := range []string{"update-pod.json", "create-deployment.json", "create-pod-not-labelled.json"} {
		t.Run(fixture, func(t *testing.T) {
			_, got := post(t, srv.URL+"/mutate", fixture)
			if r := got.Response; !r.Allowed || r.Patch != nil || r.PatchType != nil {
				t.Errorf("response = %+v, want allowed untouched", r)
			}
		})
	}
}

func TestHandlerRejectsBadHTTP(t *testing.T) {
	srv := newTestServer(t, io.Discard)
	tests := []struct {
		name, method, contentType, body string
		want                            int
	}{
		{"GET", http.MethodGet, "", "", http.StatusMethodNotAllowed},
		{"not JSON content type", http.MethodPost, "text/plain", "{}", http.StatusUnsupportedMediaType},
		{"garbage", http.MethodPost, "application/json", "{not json", http.StatusBadRequest},
		{"review without request", http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, http.StatusBadRequest},
		{"too large", http.MethodPost, "application/json", `{"x":"` + strings.Repeat("a", maxReview) + `"}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+"/mutate", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.contentType)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}
