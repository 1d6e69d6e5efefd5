// Package kubernetes holds the Kubernetes integration tests: the webhook
// against a real kube-apiserver and etcd (envtest), the Helm chart and the
// example manifests decoded strictly and checked with kubeconform, and the
// static release binary. It is a separate module so that `go test ./...` in
// the main module never compiles controller-runtime; scripts/test-kubernetes
// builds the tools it needs and runs it.
package kubernetes
