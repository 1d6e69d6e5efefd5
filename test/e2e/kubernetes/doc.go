// Package kubernetes holds the end-to-end checks of injector on a real
// one-node Kubernetes cluster (scripts/k8s-node): Pods that really run, from
// the example manifests of deploy/kubernetes and the Helm chart of
// deploy/helm/injector-webhook, applied the way their comments tell a user to
// apply them, against `injector dev --serve` reached over TLS on the node's
// address.
//
// scripts/e2e-kubernetes brings the node up, imports the images and sets the
// variables below; without them every test is skipped.
//
//	KUBECONFIG                  cluster-admin of the node
//	INJECTOR_E2E_KUBECTL        kubectl (default: kubectl)
//	INJECTOR_E2E_HELM           helm (default: helm)
//	INJECTOR_E2E_IMAGE          the injector image on the node, e.g. ghcr.io/injector-dev/injector:e2e
//	INJECTOR_E2E_WEBHOOK_IMAGE  the injector-webhook image on the node
//	INJECTOR_E2E_APP_IMAGE      the test app (./testapp) on the node
//	INJECTOR_E2E_BINARY         the host's injector, which runs `dev --serve`
//	INJECTOR_E2E_NODE_IP        the node's address, where Pods reach the emulators
package kubernetes
