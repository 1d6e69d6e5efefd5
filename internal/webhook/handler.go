package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/rs/zerolog"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxReview caps an AdmissionReview body; a Pod is at most ~1.5 MB in etcd.
const maxReview = 4 << 20

// Handler answers AdmissionReview v1 requests for Pods on /mutate.
type Handler struct {
	Config Config
	Log    zerolog.Logger
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		http.Error(w, "Content-Type must be application/json", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReview))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, "body is not an admission.k8s.io/v1 AdmissionReview with a request", http.StatusBadRequest)
		return
	}
	resp := h.Review(review.Request)
	out, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp})
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// Review decides one admission request. Anything that is not a Pod CREATE
// is allowed untouched, and so is a Pod without the injector.io/inject
// label (unless it carries injector.io/ annotations: it asked for secrets).
func (h *Handler) Review(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	podKind := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	if req.Kind != podKind || req.Operation != admissionv1.Create || req.SubResource != "" {
		return resp
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return deny(resp, http.StatusBadRequest, fmt.Sprintf("injector: decode Pod: %v", err))
	}
	// The request names the namespace; the object may not.
	if pod.Namespace == "" {
		pod.Namespace = req.Namespace
	}
	// Pods from controllers have only generateName at admission time.
	name := pod.Name
	if name == "" {
		name = pod.GenerateName + "*"
	}
	log := h.Log.With().Str("namespace", req.Namespace).Str("pod", name).Str("uid", string(req.UID)).Logger()

	res, err := Mutate(h.Config, &pod)
	if err != nil {
		log.Warn().Err(err).Msg("denied")
		return deny(resp, http.StatusUnprocessableEntity, "injector: "+err.Error())
	}
	resp.Warnings = res.Warnings
	if res.Patch == nil {
		log.Debug().Msg("not injected (not opted in, or already injected)")
		return resp
	}
	patch, err := json.Marshal(res.Patch)
	if err != nil {
		return deny(resp, http.StatusInternalServerError, fmt.Sprintf("injector: encode patch: %v", err))
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &pt
	log.Info().Str("mode", string(modeOf(h.Config, &pod))).Msg("injected")
	return resp
}

func deny(resp *admissionv1.AdmissionResponse, code int32, msg string) *admissionv1.AdmissionResponse {
	resp.Allowed = false
	resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: code, Message: msg}
	return resp
}

func modeOf(cfg Config, pod *corev1.Pod) Mode {
	if m, ok := pod.Annotations[AnnotationMode]; ok {
		return Mode(m)
	}
	return cfg.WithDefaults().Mode
}
