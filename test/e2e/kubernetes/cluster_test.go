package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

const repoRoot = "../../.."

// cmdTimeout bounds one kubectl or helm call; generous for a busy 2-core
// machine. Waits that take longer poll with their own deadlines.
const cmdTimeout = 5 * time.Minute

// cluster is the node under test and the images on it.
type cluster struct {
	kubectlBin, helmBin string
	image, webhookImage string
	appImage            string
	binary              string // the host's injector
	nodeIP              string
}

// node returns the cluster scripts/e2e-kubernetes set up, or skips the test
// when it did not.
func node(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{
		kubectlBin: os.Getenv("INJECTOR_E2E_KUBECTL"), helmBin: os.Getenv("INJECTOR_E2E_HELM"),
		image: os.Getenv("INJECTOR_E2E_IMAGE"), webhookImage: os.Getenv("INJECTOR_E2E_WEBHOOK_IMAGE"),
		appImage: os.Getenv("INJECTOR_E2E_APP_IMAGE"), binary: os.Getenv("INJECTOR_E2E_BINARY"),
		nodeIP: os.Getenv("INJECTOR_E2E_NODE_IP"),
	}
	if os.Getenv("KUBECONFIG") == "" || c.image == "" || c.webhookImage == "" || c.appImage == "" || c.binary == "" || c.nodeIP == "" {
		t.Skip("needs a Kubernetes node and the images on it: run scripts/e2e-kubernetes")
	}
	if c.kubectlBin == "" {
		c.kubectlBin = "kubectl"
	}
	if c.helmBin == "" {
		c.helmBin = "helm"
	}
	return c
}

// run runs a command with stdin and returns its stdout; a non-zero exit or
// a timeout is an error carrying stderr. It may run outside the test's
// goroutine.
func run(stdin string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %s", cmdTimeout)
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// kubectl runs kubectl; see run.
func (c *cluster) kubectl(stdin string, args ...string) (string, error) {
	return run(stdin, c.kubectlBin, args...)
}

// must runs kubectl and fails the test unless it succeeds.
func (c *cluster) must(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := c.kubectl(stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (c *cluster) helm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run("", c.helmBin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// namespace creates a namespace for one test. When the test fails, what
// happened in it is logged first: Pods, events, descriptions, logs.
func (c *cluster) namespace(t *testing.T, name string) string {
	t.Helper()
	c.must(t, "", "create", "namespace", name)
	t.Cleanup(func() {
		if t.Failed() {
			c.dump(t, name)
		}
		c.kubectl("", "delete", "namespace", name, "--wait=false")
	})
	return name
}

// dump logs the state of a namespace, for a failed test.
func (c *cluster) dump(t *testing.T, ns string) {
	t.Helper()
	for _, args := range [][]string{
		{"get", "all,events", "-o", "wide"},
		{"describe", "pods"},
		{"logs", "--all-containers", "--prefix", "--tail=50", "-l", "app.kubernetes.io/name"},
	} {
		out, err := c.kubectl("", append([]string{"-n", ns}, args...)...)
		t.Logf("kubectl -n %s %s:\n%s%v", ns, strings.Join(args, " "), out, errOrNil(err))
	}
}

func errOrNil(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// manifest reads a file of deploy/kubernetes and makes the replacements a
// user makes (image names, settings), each of which must apply: an example
// that changed under the test fails it instead of being applied unchanged.
func manifest(t *testing.T, name string, replace ...string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "deploy/kubernetes", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("%s does not contain %q", name, replace[i])
		}
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	return s
}

// waitFor polls cond until it returns nil, and fails the test with cond's
// last error after limit. The limit only keeps a broken test from hanging.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, limit, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// pod returns the one Running, undeleted Pod of a Deployment's label.
func (c *cluster) pod(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	var found *corev1.Pod
	waitFor(t, 3*time.Minute, "a running pod of "+name, func() error {
		out, err := c.kubectl("", "-n", ns, "get", "pods", "-l", "app.kubernetes.io/name="+name, "-o", "json")
		if err != nil {
			return err
		}
		var list corev1.PodList
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return err
		}
		var running []*corev1.Pod
		for i, p := range list.Items {
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
				running = append(running, &list.Items[i])
			}
		}
		if len(running) != 1 {
			return fmt.Errorf("%d running pods of %d", len(running), len(list.Items))
		}
		found = running[0]
		return nil
	})
	return found
}

// getPod reads a Pod.
func (c *cluster) getPod(ns, name string) (*corev1.Pod, error) {
	out, err := c.kubectl("", "-n", ns, "get", "pod", name, "-o", "json")
	if err != nil {
		return nil, err
	}
	var p corev1.Pod
	return &p, json.Unmarshal([]byte(out), &p)
}

func podReady(p *corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// fileStat is what `app stat` prints (testapp.Stat).
type fileStat struct {
	Path    string `json:"path"`
	Mode    string `json:"mode"`
	UID     int    `json:"uid"`
	GID     int    `json:"gid"`
	Content string `json:"content"`
	Error   string `json:"error"`
}

// stat reads files as the app container sees them.
func (c *cluster) stat(ns, pod string, paths ...string) (map[string]fileStat, error) {
	out, err := c.kubectl("", append([]string{"-n", ns, "exec", pod, "-c", "app", "--", "/app", "stat"}, paths...)...)
	if err != nil {
		return nil, err
	}
	got := map[string]fileStat{}
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var s fileStat
		if err := dec.Decode(&s); err != nil {
			break
		}
		got[s.Path] = s
	}
	return got, nil
}

// wantFiles checks that the app reads exactly these contents, with mode
// and owner as given.
func (c *cluster) wantFiles(t *testing.T, ns, pod, mode string, uid int, want map[string]string) {
	t.Helper()
	var paths []string
	for p := range want {
		paths = append(paths, p)
	}
	got, err := c.stat(ns, pod, paths...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		s := got[p]
		switch {
		case s.Error != "":
			t.Errorf("%s: %s", p, s.Error)
		case s.Content != want[p]:
			t.Errorf("%s holds %q, want %q", p, s.Content, want[p])
		case s.Mode != mode || s.UID != uid:
			t.Errorf("%s: mode %s owner %d:%d, want mode %s owned by the app's uid %d", p, s.Mode, s.UID, s.GID, mode, uid)
		}
	}
}

// noLeaks fails the test if any secret value appears in what the API shows
// about the namespace: Pod specs and statuses, Deployments and ReplicaSets,
// events, and `kubectl describe` of the Pods.
func (c *cluster) noLeaks(t *testing.T, ns string, secrets map[string]string) {
	t.Helper()
	var seen strings.Builder
	for _, args := range [][]string{
		{"get", "pods,deployments,replicasets,configmaps", "-o", "yaml"},
		{"get", "events", "-o", "yaml"},
		{"describe", "pods"},
		{"describe", "deployments"},
	} {
		seen.WriteString(c.must(t, "", append([]string{"-n", ns}, args...)...))
	}
	if !strings.Contains(seen.String(), "kind: Pod") {
		t.Fatalf("no pods in namespace %s to check", ns)
	}
	for name, v := range secrets {
		if v != "" && strings.Contains(seen.String(), v) {
			t.Errorf("%s appears in the pod specs, events or descriptions of namespace %s", name, ns)
		}
	}
}

// logs returns a container's log.
func (c *cluster) logs(t *testing.T, ns, pod, container string) string {
	t.Helper()
	return c.must(t, "", "-n", ns, "logs", pod, "-c", container)
}

// proxyGet GETs a path of a Pod's port through the API server, as the
// kubelet's probes reach it, and returns the body; a non-2xx status is an
// error carrying the body.
func (c *cluster) proxyGet(ns, pod string, port int, path string) (string, error) {
	return c.kubectl("", "get", "--raw", fmt.Sprintf("/api/v1/namespaces/%s/pods/%s:%d/proxy%s", ns, pod, port, path))
}

var errNotYet = errors.New("not yet")
